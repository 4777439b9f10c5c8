// Tokenizer front end: loading, added-token matching, NFC, encode/decode dispatch between the
// byte-level BPE (tokenizer.json) and SentencePiece (tokenizer.model).
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "core/fileio.h"
#include "policy/tokenizer_internal.h"

void tokenizer_free(Tokenizer *t) {
    if (!t) return;
    bpe_free(t->bpe);
    if (t->spm) spm_free(t->spm);
    if (t->id_bytes)
        for (int i = 0; i < t->vocab_size; i++) free(t->id_bytes[i]);
    free(t->id_bytes);
    free(t->id_len);
    free(t->id_special);
    for (int i = 0; i < t->n_added; i++) free(t->added[i].content);
    free(t->added);
    free(t->chat_default_system);
    free(t);
}

int tokenizer_load(const char *dir, Tokenizer **out, Error *err) {
    *out = NULL;
    if (!dir_exists(dir)) return error_set(err, "tokenizer directory %s does not exist", dir);
    Tokenizer *t = calloc(1, sizeof *t);
    if (!t) return error_set(err, "out of memory");
    t->pad_id = -1;
    t->bos_id = -1;
    char path[4096];
    int rc;
    if (path_join(path, sizeof path, dir, "tokenizer.json")) {
        rc = error_set(err, "%s: path too long", dir);
    } else if (file_exists(path)) {
        rc = tokenizer_load_json(t, path, err);
    } else if (path_join(path, sizeof path, dir, "tokenizer.model") == 0 && file_exists(path)) {
        rc = tokenizer_load_spm(t, path, err);
    } else {
        rc = error_set(err, "%s: no tokenizer.json or tokenizer.model in the directory", dir);
    }
    if (rc == 0) rc = tokenizer_load_config(t, dir, err);
    if (rc) {
        tokenizer_free(t);
        return -1;
    }
    *out = t;
    return 0;
}

int tokenizer_vocab_size(const Tokenizer *t) { return t->vocab_size; }

int tokenizer_token_id(const Tokenizer *t, const char *token) {
    if (!token || !token[0]) return -1;
    for (int i = 0; i < t->n_added; i++)
        if (!strcmp(t->added[i].content, token)) return t->added[i].id;
    if (t->kind == TOKENIZER_SPM) return spm_piece_to_id(t->spm, token);
    // The vocabulary is keyed by raw bytes; accept the byte-level spelling ("Ġthe") as the file
    // writes it, and fall back to the raw bytes (" the") when that is not byte-level form.
    size_t n = strlen(token);
    char *raw = malloc(n + 1);
    if (!raw) return -1;
    int len = 0, ok = 1;
    for (const unsigned char *p = (const unsigned char *)token; *p && ok;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate(p, -1, &cp);
        int b = k > 0 ? bpe_unicode_to_byte(cp) : -1;
        if (b < 0) ok = 0;
        else raw[len++] = (char)b;
        p += k > 0 ? k : 1;
    }
    int id = ok ? bpe_token_id(t->bpe, raw, len) : -1;
    if (id < 0) id = bpe_token_id(t->bpe, token, (int)n);
    free(raw);
    return id;
}

int tokenizer_eos_ids(const Tokenizer *t, const int **ids) {
    *ids = t->eos_ids;
    return t->n_eos;
}

int tokenizer_pad_id(const Tokenizer *t) { return t->pad_id; }
int tokenizer_bos_id(const Tokenizer *t) { return t->bos_id; }

int tokenizer_is_special(const Tokenizer *t, int id) {
    if (id < 0 || id >= t->vocab_size) return 0;
    if (t->kind == TOKENIZER_SPM) return spm_is_control(t->spm, id);
    return t->id_special[id];
}

const char *tokenizer_kind_name(const Tokenizer *t) {
    return t->kind == TOKENIZER_SPM ? "sentencepiece" : "bpe";
}

// ---------------------------------------------------------------- encode

static int is_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }
static int is_word(unsigned char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

// Leftmost-longest match of an added token in s[from..n) among tokens with the given normalized
// flag. Returns the token index and sets the span [*ms, *me) the match covers (lstrip/rstrip
// whitespace included), or -1.
static int find_added(const Tokenizer *t, const char *s, size_t from, size_t n, int normalized, size_t *ms,
                      size_t *me) {
    for (size_t i = from; i < n; i++) {
        if (!t->added_first[(unsigned char)s[i]]) continue;
        for (int k = 0; k < t->n_added; k++) {
            const AddedToken *a = &t->added[k];
            if (a->normalized != normalized || (size_t)a->len > n - i) continue;
            if (memcmp(s + i, a->content, a->len)) continue;
            if (a->single_word) {
                if (i > 0 && is_word((unsigned char)s[i - 1])) continue;
                if (i + a->len < n && is_word((unsigned char)s[i + a->len])) continue;
            }
            size_t b = i, e = i + a->len;
            if (a->lstrip)
                while (b > from && is_space((unsigned char)s[b - 1])) b--;
            if (a->rstrip)
                while (e < n && is_space((unsigned char)s[e])) e++;
            *ms = b;
            *me = e;
            return k;
        }
    }
    return -1;
}

// Encodes normalised text, splitting out added tokens marked normalized=true first.
static int encode_normalized(const Tokenizer *t, const char *s, size_t n, IdVec *out, Error *err) {
    size_t pos = 0, ms, me;
    int k;
    while ((k = find_added(t, s, pos, n, 1, &ms, &me)) >= 0) {
        if (bpe_encode_text(t->bpe, s + pos, ms - pos, out, err)) return -1;
        if (idvec_push(out, t->added[k].id)) return error_set(err, "out of memory");
        pos = me;
    }
    return bpe_encode_text(t->bpe, s + pos, n - pos, out, err);
}

// NFC (when the tokenizer asks for it) and BPE of a stretch without raw added tokens.
static int encode_segment(const Tokenizer *t, const char *s, size_t n, IdVec *out, Error *err) {
    if (n == 0) return 0;
    int ascii = 1;
    for (size_t i = 0; i < n && ascii; i++) ascii = (unsigned char)s[i] < 0x80;
    if (!t->nfc || ascii) return encode_normalized(t, s, n, out, err);  // ASCII is already NFC
    utf8proc_uint8_t *norm = NULL;
    utf8proc_ssize_t m = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &norm,
                                      UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    if (m < 0) return error_set(err, "NFC normalisation failed: %s", utf8proc_errmsg(m));
    int rc = encode_normalized(t, (const char *)norm, (size_t)m, out, err);
    free(norm);
    return rc;
}

static int encode_bpe(const Tokenizer *t, const char *text, size_t len, IdVec *out, Error *err) {
    size_t pos = 0, ms, me;
    int k;
    while ((k = find_added(t, text, pos, len, 0, &ms, &me)) >= 0) {
        if (encode_segment(t, text + pos, ms - pos, out, err)) return -1;
        if (idvec_push(out, t->added[k].id)) return error_set(err, "out of memory");
        pos = me;
    }
    return encode_segment(t, text + pos, len - pos, out, err);
}

int tokenizer_encode(const Tokenizer *t, const char *text, size_t len, int **ids, int *n, Error *err) {
    *ids = NULL;
    *n = 0;
    if (!text && len) return error_set(err, "tokenizer_encode: text is NULL");
    size_t valid = utf8_valid_prefix((const unsigned char *)text, len, NULL);
    if (valid != len) return error_set(err, "input text is not valid UTF-8 (bad byte 0x%02x at offset %zu)",
                                        (unsigned char)text[valid], valid);
    if (t->kind == TOKENIZER_SPM) {
        char msg[512];
        if (spm_encode(t->spm, text, len, ids, n, msg, sizeof msg))
            return error_set(err, "sentencepiece encode: %s", msg);
        return 0;
    }
    IdVec out = {0};
    if (encode_bpe(t, text, len, &out, err)) {
        free(out.ids);
        return -1;
    }
    if (!out.ids) out.ids = malloc(sizeof(int));  // a valid pointer even for empty text
    if (!out.ids) return error_set(err, "out of memory");
    *ids = out.ids;
    *n = out.n;
    return 0;
}

// ---------------------------------------------------------------- decode

int tokenizer_decode(const Tokenizer *t, const int *ids, int n, int skip_special, char **text, Error *err) {
    *text = NULL;
    if (n < 0 || (n > 0 && !ids)) return error_set(err, "decode: bad id list (n = %d)", n);
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= t->vocab_size || (t->kind == TOKENIZER_BPE && !t->id_bytes[ids[i]]))
            return error_set(err, "decode: id %d at position %d is not a token (vocabulary has %d ids)", ids[i], i,
                             t->vocab_size);
    if (t->kind == TOKENIZER_SPM) {
        int *keep = malloc((size_t)(n ? n : 1) * sizeof *keep), m = 0;
        if (!keep) return error_set(err, "out of memory");
        for (int i = 0; i < n; i++)
            if (!(skip_special && spm_is_control(t->spm, ids[i]))) keep[m++] = ids[i];
        char msg[512];
        int rc = spm_decode(t->spm, keep, m, text, NULL, msg, sizeof msg);
        free(keep);
        return rc ? error_set(err, "sentencepiece decode: %s", msg) : 0;
    }
    size_t total = 0;
    for (int i = 0; i < n; i++) total += (size_t)t->id_len[ids[i]];
    unsigned char *raw = malloc(total + 1);
    if (!raw) return error_set(err, "out of memory");
    size_t k = 0;
    for (int i = 0; i < n; i++) {
        if (skip_special && t->id_special[ids[i]]) continue;
        memcpy(raw + k, t->id_bytes[ids[i]], t->id_len[ids[i]]);
        k += t->id_len[ids[i]];
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int rc = utf8_lossy_append(raw, k, 1, &buf, &len, &cap, NULL);
    free(raw);
    if (rc) return error_set(err, "out of memory");
    *text = buf;
    return 0;
}

// Raw bytes of one id (byte-level BPE only; NULL for SentencePiece or an invalid id).
const char *tokenizer_id_bytes(const Tokenizer *t, int id, int *len) {
    if (t->kind != TOKENIZER_BPE || id < 0 || id >= t->vocab_size || !t->id_bytes[id]) return NULL;
    *len = t->id_len[id];
    return t->id_bytes[id];
}
