// eos/pad/bos ids and the chat template family, from tokenizer_config.json, generation_config.json
// and chat_template.jinja beside the tokenizer (all optional). The Jinja template is never run:
// it is recognised as ChatML (Qwen) or marked unsupported.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "core/json.h"
#include "policy/tokenizer_internal.h"

static void add_eos(Tokenizer *t, int id) {
    if (id < 0 || id >= t->vocab_size) return;
    for (int i = 0; i < t->n_eos; i++)
        if (t->eos_ids[i] == id) return;
    if (t->n_eos < (int)(sizeof t->eos_ids / sizeof t->eos_ids[0])) t->eos_ids[t->n_eos++] = id;
}

// A token field of tokenizer_config.json: "<|im_end|>" or {"content": "<|im_end|>", ...}; -1 when
// absent or null; an error when it names a token the vocabulary lacks.
static int token_field(const Tokenizer *t, const cJSON *cfg, const char *key, int *id, const char *path, Error *err) {
    *id = -1;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (!v || cJSON_IsNull(v)) return 0;
    if (cJSON_IsObject(v)) v = cJSON_GetObjectItemCaseSensitive(v, "content");
    if (!cJSON_IsString(v)) return error_set(err, "%s: %s is not a string or {\"content\": ...}", path, key);
    *id = tokenizer_token_id(t, v->valuestring);
    if (*id < 0) return error_set(err, "%s: %s \"%s\" is not a token of the tokenizer", path, key, v->valuestring);
    return 0;
}

// Id field of generation_config.json: an int or a list of ints.
static int id_field(const Tokenizer *t, const cJSON *cfg, const char *key, int *ids, int max, int *n,
                    const char *path, Error *err) {
    *n = 0;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (!v || cJSON_IsNull(v)) return 0;
    const cJSON *one = cJSON_IsArray(v) ? v->child : v;
    for (; one; one = cJSON_IsArray(v) ? one->next : NULL) {
        if (!cJSON_IsNumber(one) || one->valuedouble != (int)one->valuedouble || one->valueint < 0 ||
            one->valueint >= t->vocab_size)
            return error_set(err, "%s: %s must be token ids below %d", path, key, t->vocab_size);
        if (*n < max) ids[(*n)++] = one->valueint;
    }
    return 0;
}

// Reads a Jinja string literal's escapes (\n, \', \", \\) into plain text.
static char *unescape_jinja(const char *s, size_t n) {
    char *out = malloc(n + 1), *o = out;
    if (!out) return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\' && i + 1 < n) {
            char c = s[++i];
            *o++ = c == 'n' ? '\n' : c == 't' ? '\t' : c;
        } else {
            *o++ = s[i];
        }
    }
    *o = 0;
    return out;
}

// Recognises the ChatML family and the Qwen variations that matter for the rendered text.
static int classify_template(Tokenizer *t, const char *tpl) {
    if (!tpl || !tpl[0]) {
        t->chat = CHAT_NONE;
        return 0;
    }
    if (!strstr(tpl, "<|im_start|>")) {
        t->chat = CHAT_UNSUPPORTED;
        snprintf(t->chat_note, sizeof t->chat_note,
                 "the chat template is not of the ChatML family (no <|im_start|>); only ChatML (Qwen) templates "
                 "are supported");
        return 0;
    }
    t->chat = CHAT_CHATML;
    t->chat_thinking = strstr(tpl, "enable_thinking") != NULL;
    t->chat_strip_reasoning = strstr(tpl, "reasoning_content") != NULL;
    t->chat_tool_response = strstr(tpl, "<tool_response>") != NULL;
    // A default system prompt is a literal '<|im_start|>system\n...<|im_end|>' with no
    // expression inside (Qwen2: "You are a helpful assistant.", Qwen2.5: "You are Qwen, ...").
    const char *key = "<|im_start|>system\\n";
    for (const char *p = strstr(tpl, key); p; p = strstr(p + 1, key)) {
        const char *b = p + strlen(key), *e = strstr(b, "<|im_end|>");
        if (!e || e == b) continue;
        int literal = 1;
        for (const char *q = b; q < e && literal; q++)
            if (*q == '\'' || *q == '"' || *q == '+' || !strncmp(q, "{{", 2) || !strncmp(q, "{%", 2)) literal = 0;
        if (!literal) continue;
        t->chat_default_system = unescape_jinja(b, (size_t)(e - b));
        if (!t->chat_default_system) return -1;
        break;
    }
    return 0;
}

int tokenizer_load_config(Tokenizer *t, const char *dir, Error *err) {
    char path[4096];
    int rc = 0;
    char *tpl = NULL;
    int eos = -1;

    if (path_join(path, sizeof path, dir, "tokenizer_config.json") == 0 && file_exists(path)) {
        cJSON *cfg = json_parse_file(path, err);
        if (!cfg) return -1;
        int pad = -1, bos = -1;
        if (!cJSON_IsObject(cfg)) rc = error_set(err, "%s: not a JSON object", path);
        if (rc == 0) rc = token_field(t, cfg, "eos_token", &eos, path, err);
        if (rc == 0) rc = token_field(t, cfg, "pad_token", &pad, path, err);
        if (rc == 0) rc = token_field(t, cfg, "bos_token", &bos, path, err);
        if (rc == 0) {
            if (pad >= 0) t->pad_id = pad;
            if (bos >= 0) t->bos_id = bos;
            const cJSON *ct = cJSON_GetObjectItemCaseSensitive(cfg, "chat_template");
            if (cJSON_IsString(ct)) {
                tpl = strdup(ct->valuestring);
            } else if (cJSON_IsArray(ct)) {
                // [{"name": "default", "template": ...}, {"name": "tool_use", ...}]: use "default".
                for (const cJSON *it = ct->child; it; it = it->next) {
                    const cJSON *name = cJSON_GetObjectItemCaseSensitive(it, "name");
                    const cJSON *body = cJSON_GetObjectItemCaseSensitive(it, "template");
                    if (cJSON_IsString(name) && !strcmp(name->valuestring, "default") && cJSON_IsString(body))
                        tpl = strdup(body->valuestring);
                }
                if (!tpl) rc = error_set(err, "%s: chat_template list has no \"default\" entry", path);
            } else if (ct && !cJSON_IsNull(ct)) {
                rc = error_set(err, "%s: chat_template is neither a string nor a list", path);
            }
        }
        cJSON_Delete(cfg);
        if (rc) {
            free(tpl);
            return -1;
        }
    }
    // Newer checkpoints keep the template in its own file.
    if (!tpl && path_join(path, sizeof path, dir, "chat_template.jinja") == 0 && file_exists(path)) {
        tpl = file_read_all(path, NULL, err);
        if (!tpl) return -1;
    }
    if (classify_template(t, tpl)) rc = error_set(err, "out of memory");
    free(tpl);
    if (rc) return -1;

    int gen_eos[8], n_gen_eos = 0;
    if (path_join(path, sizeof path, dir, "generation_config.json") == 0 && file_exists(path)) {
        cJSON *cfg = json_parse_file(path, err);
        if (!cfg) return -1;
        int pad[1], n_pad = 0, bos[1], n_bos = 0;
        rc = cJSON_IsObject(cfg) ? 0 : error_set(err, "%s: not a JSON object", path);
        if (rc == 0) rc = id_field(t, cfg, "eos_token_id", gen_eos, 8, &n_gen_eos, path, err);
        if (rc == 0) rc = id_field(t, cfg, "pad_token_id", pad, 1, &n_pad, path, err);
        if (rc == 0) rc = id_field(t, cfg, "bos_token_id", bos, 1, &n_bos, path, err);
        if (rc == 0 && n_pad && t->pad_id < 0) t->pad_id = pad[0];
        if (rc == 0 && n_bos && t->bos_id < 0) t->bos_id = bos[0];
        cJSON_Delete(cfg);
        if (rc) return -1;
    }

    // Stop ids: generation_config's list, tokenizer_config's eos_token, and for Qwen both turn ends
    // (<|im_end|> and <|endoftext|>) even when only one is listed, since either can end a sample.
    for (int i = 0; i < n_gen_eos; i++) add_eos(t, gen_eos[i]);
    add_eos(t, eos);
    if (t->chat == CHAT_CHATML) add_eos(t, tokenizer_token_id(t, "<|im_end|>"));
    if (t->kind == TOKENIZER_BPE) add_eos(t, tokenizer_token_id(t, "<|endoftext|>"));
    if (t->kind == TOKENIZER_SPM) {
        add_eos(t, spm_eos_id(t->spm));
        if (t->pad_id < 0 && spm_pad_id(t->spm) >= 0) t->pad_id = spm_pad_id(t->spm);
        if (t->bos_id < 0 && spm_bos_id(t->spm) >= 0) t->bos_id = spm_bos_id(t->spm);
    }
    return 0;
}
