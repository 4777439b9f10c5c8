// Reads a Hugging Face tokenizer.json with a byte-level BPE model (Qwen2/2.5/3, GPT-2 style) into
// a Tokenizer. Anything the encoder would not reproduce exactly (other models, normalizers or
// pre-tokenizers) is refused with an error naming the field, rather than silently approximated.
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "policy/tokenizer_internal.h"

// The ByteLevel pre-tokenizer's own regex (use_regex: true), from GPT-2.
static const char *GPT2_REGEX =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

// Largest id accepted: guards the id-indexed tables against absurd values in a malformed file.
#define MAX_TOKEN_ID (1 << 24)

// Decodes one UTF-8 code point at s; returns its length or 0 when invalid.
static int utf8_decode1(const unsigned char *s, int *cp) {
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    int need = s[0] >= 0xF0 ? 3 : s[0] >= 0xE0 ? 2 : s[0] >= 0xC0 ? 1 : -1;
    if (need < 0 || s[0] > 0xF4) return 0;
    int c = s[0] & (0x3F >> need);
    for (int i = 1; i <= need; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        c = (c << 6) | (s[i] & 0x3F);
    }
    *cp = c;
    return need + 1;
}

// Converts a vocab string in byte-level form ("Ġthe") to raw bytes (" the"). out has room for
// strlen(s) bytes (each code point stands for one byte and takes at least one). -1 when a code
// point stands for no byte.
static int bytelevel_to_raw(const char *s, char *out, int *len) {
    const unsigned char *p = (const unsigned char *)s;
    int n = 0;
    while (*p) {
        int cp, k = utf8_decode1(p, &cp);
        if (!k) return -1;
        int b = bpe_unicode_to_byte(cp);
        if (b < 0) return -1;
        out[n++] = (char)b;
        p += k;
    }
    *len = n;
    return 0;
}

static const char *type_of(const cJSON *obj) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(obj, "type");
    return cJSON_IsString(t) ? t->valuestring : NULL;
}

static int flag(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsTrue(v);
}

static int load_normalizer(Tokenizer *t, const cJSON *norm, const char *path, Error *err) {
    if (!norm || cJSON_IsNull(norm)) return 0;
    const char *type = type_of(norm);
    if (!type) return error_set(err, "%s: normalizer has no type", path);
    if (!strcmp(type, "NFC")) {
        t->nfc = 1;
        return 0;
    }
    if (!strcmp(type, "Sequence")) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(norm, "normalizers");
        if (!cJSON_IsArray(list)) return error_set(err, "%s: normalizer Sequence without a normalizers list", path);
        for (const cJSON *it = list->child; it; it = it->next)
            if (load_normalizer(t, it, path, err)) return -1;
        return 0;
    }
    return error_set(err, "%s: normalizer type '%s' is not supported (supported: NFC, Sequence of NFC)", path, type);
}

static int load_pretokenizer(Tokenizer *t, const cJSON *pre, int depth, const char *path, Error *err) {
    if (!pre || cJSON_IsNull(pre)) return error_set(err, "%s: pre_tokenizer is missing (a byte-level BPE needs ByteLevel)", path);
    const char *type = type_of(pre);
    if (!type) return error_set(err, "%s: pre_tokenizer has no type", path);
    if (!strcmp(type, "Sequence") && depth == 0) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(pre, "pretokenizers");
        if (!cJSON_IsArray(list)) return error_set(err, "%s: pre_tokenizer Sequence without a pretokenizers list", path);
        for (const cJSON *it = list->child; it; it = it->next)
            if (load_pretokenizer(t, it, depth + 1, path, err)) return -1;
        return 0;
    }
    if (!strcmp(type, "ByteLevel")) {
        if (flag(pre, "add_prefix_space")) bpe_set_add_prefix_space(t->bpe, 1);
        const cJSON *use_regex = cJSON_GetObjectItemCaseSensitive(pre, "use_regex");
        // use_regex defaults to true in Hugging Face tokenizers.
        if (!use_regex || cJSON_IsTrue(use_regex))
            if (bpe_add_split_regex(t->bpe, GPT2_REGEX, err)) return error_prefix(err, "%s: ByteLevel", path);
        return 0;
    }
    if (!strcmp(type, "Split")) {
        const cJSON *behavior = cJSON_GetObjectItemCaseSensitive(pre, "behavior");
        if (!cJSON_IsString(behavior) || strcmp(behavior->valuestring, "Isolated"))
            return error_set(err, "%s: Split pre_tokenizer behavior '%s' is not supported (only Isolated)", path,
                             cJSON_IsString(behavior) ? behavior->valuestring : "?");
        if (flag(pre, "invert")) return error_set(err, "%s: Split pre_tokenizer with invert=true is not supported", path);
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(pre, "pattern");
        const cJSON *re = cJSON_GetObjectItemCaseSensitive(pat, "Regex");
        const cJSON *lit = cJSON_GetObjectItemCaseSensitive(pat, "String");
        if (cJSON_IsString(re)) {
            if (bpe_add_split_regex(t->bpe, re->valuestring, err)) return error_prefix(err, "%s: pre_tokenizer Split", path);
        } else if (cJSON_IsString(lit)) {
            // A literal string: quote it for PCRE2 (\Q...\E cannot hold "\E", so escape by hand).
            size_t n = strlen(lit->valuestring);
            char *q = malloc(4 * n + 1), *o = q;
            if (!q) return error_set(err, "out of memory");
            for (const char *p = lit->valuestring; *p; p++) {
                if (strchr("\\^$.|?*+()[]{}", *p)) *o++ = '\\';
                *o++ = *p;
            }
            *o = 0;
            int rc = bpe_add_split_regex(t->bpe, q, err);
            free(q);
            if (rc) return error_prefix(err, "%s: pre_tokenizer Split", path);
        } else {
            return error_set(err, "%s: Split pre_tokenizer has no pattern.Regex or pattern.String", path);
        }
        return 0;
    }
    return error_set(err, "%s: pre_tokenizer type '%s' is not supported (supported: Split, ByteLevel, Sequence)",
                     path, type);
}

// Looks up a merge side given in byte-level form.
static int merge_side_id(const Tokenizer *t, const char *s, char *tmp) {
    int len;
    if (bytelevel_to_raw(s, tmp, &len)) return -1;
    return bpe_token_id(t->bpe, tmp, len);
}

static int load_merges(Tokenizer *t, const cJSON *merges, const char *path, Error *err) {
    if (!cJSON_IsArray(merges)) return error_set(err, "%s: model.merges is missing or not a list", path);
    int rank = 0;
    char *a = NULL, *b = NULL, *buf = NULL;
    size_t cap = 0;
    int rc = 0;
    for (const cJSON *m = merges->child; m && rc == 0; m = m->next, rank++) {
        const char *left, *right;
        char *split = NULL;
        if (cJSON_IsString(m)) {
            // Old format: "left right" separated by one space (tokens never contain a raw space).
            const char *sp = strchr(m->valuestring, ' ');
            if (!sp || sp == m->valuestring || !sp[1] || strchr(sp + 1, ' ')) {
                rc = error_set(err, "%s: model.merges[%d] \"%s\" is not two tokens separated by a space", path, rank,
                               m->valuestring);
                break;
            }
            split = strdup(m->valuestring);
            if (!split) {
                rc = error_set(err, "out of memory");
                break;
            }
            split[sp - m->valuestring] = 0;
            left = split;
            right = split + (sp - m->valuestring) + 1;
        } else if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2 && cJSON_IsString(m->child) &&
                   cJSON_IsString(m->child->next)) {
            left = m->child->valuestring;
            right = m->child->next->valuestring;
        } else {
            rc = error_set(err, "%s: model.merges[%d] is neither \"a b\" nor [\"a\", \"b\"]", path, rank);
            break;
        }
        size_t need = strlen(left) + strlen(right) + 1;
        if (need > cap) {
            cap = 2 * need;
            free(a);
            free(b);
            free(buf);
            a = malloc(cap);
            b = malloc(cap);
            buf = malloc(cap);
            if (!a || !b || !buf) {
                free(split);
                rc = error_set(err, "out of memory");
                break;
            }
        }
        int la, lb;
        int ida = merge_side_id(t, left, a), idb = merge_side_id(t, right, b);
        if (ida < 0 || idb < 0) {
            rc = error_set(err, "%s: model.merges[%d]: token \"%s\" is not in model.vocab", path, rank,
                           ida < 0 ? left : right);
        } else {
            bytelevel_to_raw(left, a, &la);
            bytelevel_to_raw(right, b, &lb);
            memcpy(buf, a, la);
            memcpy(buf + la, b, lb);
            int idm = bpe_token_id(t->bpe, buf, la + lb);
            if (idm < 0)
                rc = error_set(err, "%s: model.merges[%d]: merged token \"%s%s\" is not in model.vocab", path, rank,
                               left, right);
            else
                rc = bpe_add_merge(t->bpe, ida, idb, idm, rank, err);
        }
        free(split);
    }
    free(a);
    free(b);
    free(buf);
    return rc;
}

static int cmp_added_len_desc(const void *x, const void *y) {
    const AddedToken *a = x, *b = y;
    if (a->len != b->len) return b->len - a->len;
    return a->id - b->id;
}

static int load_added(Tokenizer *t, const cJSON *added, const char *path, Error *err) {
    if (!added || cJSON_IsNull(added)) return 0;
    if (!cJSON_IsArray(added)) return error_set(err, "%s: added_tokens is not a list", path);
    int n = cJSON_GetArraySize(added);
    t->added = calloc(n ? n : 1, sizeof *t->added);
    if (!t->added) return error_set(err, "out of memory");
    int i = 0;
    for (const cJSON *a = added->child; a; a = a->next, i++) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(a, "id");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(a, "content");
        if (!cJSON_IsNumber(id) || id->valuedouble < 0 || id->valuedouble >= MAX_TOKEN_ID ||
            id->valuedouble != (int)id->valuedouble)
            return error_set(err, "%s: added_tokens[%d].id is missing or not a valid id", path, i);
        if (!cJSON_IsString(content) || !content->valuestring[0])
            return error_set(err, "%s: added_tokens[%d].content is missing or empty", path, i);
        AddedToken *at = &t->added[t->n_added++];
        at->content = strdup(content->valuestring);
        if (!at->content) return error_set(err, "out of memory");
        at->len = (int)strlen(at->content);
        at->id = id->valueint;
        at->special = flag(a, "special");
        at->lstrip = flag(a, "lstrip");
        at->rstrip = flag(a, "rstrip");
        at->single_word = flag(a, "single_word");
        at->normalized = flag(a, "normalized");
        t->added_first[(unsigned char)at->content[0]] = 1;
    }
    qsort(t->added, t->n_added, sizeof *t->added, cmp_added_len_desc);
    return 0;
}

// id -> raw bytes table for decode: vocab entries first, then added tokens (their content as is).
static int set_id_bytes(Tokenizer *t, int id, const char *bytes, int len, int special, const char *path, Error *err) {
    if (t->id_bytes[id]) {
        // An added token may repeat a vocab entry with the same text (some models list them twice).
        if (t->id_len[id] == len && !memcmp(t->id_bytes[id], bytes, len)) {
            t->id_special[id] = (unsigned char)special;
            return 0;
        }
        return error_set(err, "%s: id %d is given to two different tokens", path, id);
    }
    t->id_bytes[id] = malloc(len + 1);
    if (!t->id_bytes[id]) return error_set(err, "out of memory");
    memcpy(t->id_bytes[id], bytes, len);
    t->id_bytes[id][len] = 0;
    t->id_len[id] = len;
    t->id_special[id] = (unsigned char)special;
    return 0;
}

static int load_model(Tokenizer *t, const cJSON *root, const char *path, Error *err) {
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (!cJSON_IsObject(model)) return error_set(err, "%s: missing \"model\" object", path);
    const char *type = type_of(model);
    if (type && strcmp(type, "BPE"))
        return error_set(err, "%s: model.type '%s' is not supported (only byte-level BPE)", path, type);
    const cJSON *prefix = cJSON_GetObjectItemCaseSensitive(model, "continuing_subword_prefix");
    const cJSON *suffix = cJSON_GetObjectItemCaseSensitive(model, "end_of_word_suffix");
    if ((cJSON_IsString(prefix) && prefix->valuestring[0]) || (cJSON_IsString(suffix) && suffix->valuestring[0]))
        return error_set(err, "%s: model.continuing_subword_prefix / end_of_word_suffix are not supported", path);
    const cJSON *dropout = cJSON_GetObjectItemCaseSensitive(model, "dropout");
    if (cJSON_IsNumber(dropout) && dropout->valuedouble > 0)
        return error_set(err, "%s: model.dropout > 0 (BPE dropout) is not supported", path);
    if (flag(model, "ignore_merges")) bpe_set_ignore_merges(t->bpe, 1);

    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    if (!cJSON_IsObject(vocab) || !vocab->child) return error_set(err, "%s: model.vocab is missing or empty", path);
    int max_id = -1;
    for (const cJSON *v = vocab->child; v; v = v->next) {
        if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble >= MAX_TOKEN_ID ||
            v->valuedouble != (int)v->valuedouble)
            return error_set(err, "%s: model.vocab[\"%s\"] is not a valid id", path, v->string);
        if (v->valueint > max_id) max_id = v->valueint;
    }
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    if (load_added(t, added, path, err)) return -1;
    for (int i = 0; i < t->n_added; i++)
        if (t->added[i].id > max_id) max_id = t->added[i].id;
    t->vocab_size = max_id + 1;
    t->id_bytes = calloc(t->vocab_size, sizeof *t->id_bytes);
    t->id_len = calloc(t->vocab_size, sizeof *t->id_len);
    t->id_special = calloc(t->vocab_size, 1);
    if (!t->id_bytes || !t->id_len || !t->id_special) return error_set(err, "out of memory");

    char *raw = NULL;
    size_t raw_cap = 0;
    for (const cJSON *v = vocab->child; v; v = v->next) {
        size_t n = strlen(v->string);
        if (n + 1 > raw_cap) {
            raw_cap = 2 * (n + 1);
            free(raw);
            raw = malloc(raw_cap);
            if (!raw) return error_set(err, "out of memory");
        }
        int len;
        if (bytelevel_to_raw(v->string, raw, &len) || len == 0) {
            free(raw);
            return error_set(err, "%s: model.vocab token \"%s\" (id %d) is not in byte-level form", path, v->string,
                             v->valueint);
        }
        if (bpe_add_token(t->bpe, raw, len, v->valueint, err) ||
            set_id_bytes(t, v->valueint, raw, len, 0, path, err)) {
            free(raw);
            return error_prefix(err, "%s: model.vocab", path);
        }
    }
    free(raw);
    for (int i = 0; i < t->n_added; i++)
        if (set_id_bytes(t, t->added[i].id, t->added[i].content, t->added[i].len, t->added[i].special, path, err))
            return -1;
    if (bpe_finish(t->bpe, err)) return error_prefix(err, "%s: model.vocab", path);
    return load_merges(t, cJSON_GetObjectItemCaseSensitive(model, "merges"), path, err);
}

int tokenizer_load_json(Tokenizer *t, const char *path, Error *err) {
    cJSON *root = json_parse_file(path, err);
    if (!root) return -1;
    int rc = -1;
    t->kind = TOKENIZER_BPE;
    t->bpe = bpe_new();
    if (!t->bpe) {
        error_set(err, "out of memory");
        goto done;
    }
    if (!cJSON_IsObject(root)) {
        error_set(err, "%s: not a JSON object", path);
        goto done;
    }
    const cJSON *decoder = cJSON_GetObjectItemCaseSensitive(root, "decoder");
    if (decoder && !cJSON_IsNull(decoder) && (!type_of(decoder) || strcmp(type_of(decoder), "ByteLevel"))) {
        error_set(err, "%s: decoder type '%s' is not supported (only ByteLevel)", path,
                  type_of(decoder) ? type_of(decoder) : "?");
        goto done;
    }
    if (load_model(t, root, path, err)) goto done;
    if (load_normalizer(t, cJSON_GetObjectItemCaseSensitive(root, "normalizer"), path, err)) goto done;
    if (load_pretokenizer(t, cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"), 0, path, err)) goto done;
    rc = 0;
done:
    cJSON_Delete(root);
    return rc;
}
