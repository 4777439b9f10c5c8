// Streaming decode: ids arrive one by one (live generation, stop strings); only complete UTF-8 text
// is handed out, so a character split over two byte tokens is never cut. The concatenation of all
// pushes plus the final flush equals tokenizer_decode of the whole sequence.
#include <stdlib.h>
#include <string.h>

#include "policy/tokenizer_internal.h"

struct TokenStream {
    const Tokenizer *t;
    int skip_special;
    // byte-level BPE: bytes of an unfinished character carried to the next push
    unsigned char pending[8];
    size_t n_pending;
    // SentencePiece: all ids so far and how many bytes of their decode were handed out
    int *ids;
    int n_ids, cap_ids;
    size_t emitted;
    char *out;  // text returned by the last push
    size_t out_len, out_cap;
};

TokenStream *token_stream_new(const Tokenizer *t) {
    TokenStream *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->t = t;
    s->out = malloc(64);
    if (!s->out) {
        free(s);
        return NULL;
    }
    s->out[0] = 0;
    s->out_cap = 64;
    return s;
}

void token_stream_set_skip_special(TokenStream *s, int skip_special) { s->skip_special = skip_special; }

void token_stream_free(TokenStream *s) {
    if (!s) return;
    free(s->ids);
    free(s->out);
    free(s);
}

// SentencePiece decoding is not byte-local (the first piece loses its leading space), so decode
// the whole sequence and hand out what is new; a trailing U+FFFD may still become a character
// when the next byte piece arrives, so it is held back until then.
static const char *push_spm(TokenStream *s, int id, int final) {
    s->out_len = 0;
    s->out[0] = 0;
    if (!final) {
        if (id < 0 || id >= s->t->vocab_size) return s->out;
        if (s->skip_special && spm_is_control(s->t->spm, id)) return s->out;
        if (s->n_ids == s->cap_ids) {
            int cap = s->cap_ids ? 2 * s->cap_ids : 64;
            int *p = realloc(s->ids, (size_t)cap * sizeof *p);
            if (!p) return s->out;
            s->ids = p;
            s->cap_ids = cap;
        }
        s->ids[s->n_ids++] = id;
    }
    char *text = NULL, msg[256];
    size_t len = 0;
    if (spm_decode(s->t->spm, s->ids, s->n_ids, &text, &len, msg, sizeof msg)) return s->out;
    size_t stable = len;
    if (!final)
        while (stable >= 3 && !memcmp(text + stable - 3, "\xEF\xBF\xBD", 3)) stable -= 3;
    if (stable > s->emitted && buf_reserve(&s->out, &s->out_cap, stable - s->emitted) == 0) {
        memcpy(s->out, text + s->emitted, stable - s->emitted);
        s->out_len = stable - s->emitted;
        s->out[s->out_len] = 0;
        s->emitted = stable;
    }
    free(text);
    return s->out;
}

static const char *push_bytes(TokenStream *s, const char *bytes, int len, int final) {
    s->out_len = 0;
    s->out[0] = 0;
    unsigned char stackbuf[256];
    size_t n = s->n_pending + (size_t)len;
    unsigned char *buf = n <= sizeof stackbuf ? stackbuf : malloc(n);
    if (!buf) return s->out;
    memcpy(buf, s->pending, s->n_pending);
    if (len) memcpy(buf + s->n_pending, bytes, (size_t)len);
    size_t used = 0;
    if (utf8_lossy_append(buf, n, final, &s->out, &s->out_len, &s->out_cap, &used) == 0) {
        // What is left is an unfinished character: at most 3 bytes.
        s->n_pending = n - used;
        memcpy(s->pending, buf + used, s->n_pending);
    }
    if (buf != stackbuf) free(buf);
    return s->out;
}

const char *token_stream_push(TokenStream *s, int id) {
    const Tokenizer *t = s->t;
    if (t->kind == TOKENIZER_SPM) return push_spm(s, id, 0);
    if (id < 0 || id >= t->vocab_size || !t->id_bytes[id] || (s->skip_special && t->id_special[id])) {
        s->out_len = 0;
        s->out[0] = 0;
        return s->out;
    }
    return push_bytes(s, t->id_bytes[id], t->id_len[id], 0);
}

const char *token_stream_flush(TokenStream *s) {
    if (s->t->kind == TOKENIZER_SPM) return push_spm(s, -1, 1);
    return push_bytes(s, NULL, 0, 1);
}
