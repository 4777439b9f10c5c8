// pionrl tokenize: text <-> token ids with a model's tokenizer (tokenizer.json or tokenizer.model).
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "core/fileio.h"
#include "core/json.h"
#include "policy/tokenizer.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: pionrl tokenize --tokenizer DIR (--text TEXT | --jsonl IN.jsonl) [options]\n"
            "       pionrl tokenize --tokenizer DIR --decode (--ids \"1 2 3\" | --jsonl IN.jsonl) [options]\n\n"
            "Encodes text to token ids or decodes ids to text with the tokenizer in DIR (tokenizer.json,\n"
            "or tokenizer.model when there is no tokenizer.json; tokenizer_config.json is read too).\n\n"
            "options:\n"
            "  --tokenizer DIR   directory of the tokenizer (a model directory works)\n"
            "  --text TEXT       encode TEXT; prints the ids on one line, separated by spaces\n"
            "  --jsonl FILE      one JSON object per line: encodes {\"text\": ...} to {\"ids\": [...]}, or with\n"
            "                    --decode {\"ids\": [...]} to {\"text\": ...}; one output line per input line,\n"
            "                    in order; other keys in a line are ignored\n"
            "  --field NAME      the key holding the text to encode (default: text)\n"
            "  --decode          decode instead of encode\n"
            "  --ids LIST        ids to decode, separated by spaces or commas\n"
            "  --skip-special    decode: leave out special tokens such as <|im_end|>\n"
            "  --chat            encode: render --text as one user turn with the chat template and the\n"
            "                    generation prompt first (plain text for tokenizers without a template)\n"
            "  --no-thinking     with --chat on a Qwen3 template: add the empty <think></think> block\n"
            "  --output FILE     write there (atomically) instead of to stdout\n"
            "  --info            print the tokenizer's kind, vocabulary size, eos/pad ids, chat template\n"
            "  -h, --help        this help\n");
}

typedef struct {
    char *buf;
    size_t len, cap;
} Out;

static int out_put(Out *o, const char *s, size_t n) {
    if (o->len + n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 4096;
        while (cap < o->len + n + 1) cap *= 2;
        char *p = realloc(o->buf, cap);
        if (!p) return -1;
        o->buf = p;
        o->cap = cap;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
    o->buf[o->len] = 0;
    return 0;
}

static int out_ids(Out *o, const int *ids, int n, const char *sep) {
    char num[16];
    for (int i = 0; i < n; i++) {
        int k = snprintf(num, sizeof num, "%s%d", i ? sep : "", ids[i]);
        if (out_put(o, num, k)) return -1;
    }
    return 0;
}

static int out_json_string(Out *o, const char *s) {
    cJSON *str = cJSON_CreateString(s);
    char *j = str ? cJSON_PrintUnformatted(str) : NULL;
    int rc = j ? out_put(o, j, strlen(j)) : -1;
    free(j);
    cJSON_Delete(str);
    return rc;
}

// Parses "1 2 3" / "1,2,3" / "[1, 2, 3]".
static int parse_id_list(const char *s, int **ids, int *n) {
    int cap = 16;
    *ids = malloc(cap * sizeof **ids);
    *n = 0;
    if (!*ids) return -1;
    const char *p = s;
    for (;;) {
        while (*p == ' ' || *p == ',' || *p == '\t' || *p == '\n' || *p == '[' || *p == ']') p++;
        if (!*p) return 0;
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < -2147483647L || v > 2147483647L) return -1;
        if (*n == cap) {
            cap *= 2;
            int *q = realloc(*ids, cap * sizeof *q);
            if (!q) return -1;
            *ids = q;
        }
        (*ids)[(*n)++] = (int)v;
        p = end;
    }
}

static int emit(const Out *o, const char *output) {
    if (output) {
        Error err;
        if (file_write_atomic(output, o->buf ? o->buf : "", o->len, &err)) {
            fprintf(stderr, "pionrl tokenize: %s\n", err.msg);
            return 1;
        }
        return 0;
    }
    if (o->len && fwrite(o->buf, 1, o->len, stdout) != o->len) {
        fprintf(stderr, "pionrl tokenize: write error on stdout\n");
        return 1;
    }
    return 0;
}

// One JSONL line -> one output line (without the newline). 0 / -1 with err naming file:line.
static int convert_line(const Tokenizer *t, const char *line, const char *where, const char *field, int decode,
                        int skip_special, Out *o, Error *err) {
    cJSON *row = json_parse_text(line, where, err);
    if (!row) return -1;
    int rc = -1;
    if (!cJSON_IsObject(row)) {
        error_set(err, "%s: expected a JSON object", where);
    } else if (decode) {
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(row, "ids");
        if (!cJSON_IsArray(arr)) {
            error_set(err, "%s: missing \"ids\" list", where);
        } else {
            int n = cJSON_GetArraySize(arr), k = 0;
            int *ids = malloc((n ? n : 1) * sizeof *ids);
            for (const cJSON *it = arr->child; ids && it; it = it->next) {
                if (!cJSON_IsNumber(it) || it->valuedouble != (int)it->valuedouble) {
                    error_set(err, "%s: ids[%d] is not an integer", where, k);
                    break;
                }
                ids[k++] = it->valueint;
            }
            char *text = NULL;
            if (ids && k == n && tokenizer_decode(t, ids, n, skip_special, &text, err) == 0) {
                rc = out_put(o, "{\"text\": ", 9) || out_json_string(o, text) || out_put(o, "}", 1) ? -1 : 0;
                if (rc) error_set(err, "out of memory");
            } else if (ids && k == n) {
                error_prefix(err, "%s", where);
            }
            free(text);
            free(ids);
        }
    } else {
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(row, field);
        if (!cJSON_IsString(text)) {
            error_set(err, "%s: missing string \"%s\"", where, field);
        } else {
            int *ids = NULL, n = 0;
            if (tokenizer_encode(t, text->valuestring, strlen(text->valuestring), &ids, &n, err) == 0) {
                rc = out_put(o, "{\"ids\": [", 9) || out_ids(o, ids, n, ", ") || out_put(o, "]}", 2) ? -1 : 0;
                if (rc) error_set(err, "out of memory");
            } else {
                error_prefix(err, "%s", where);
            }
            free(ids);
        }
    }
    cJSON_Delete(row);
    return rc;
}

static int run_jsonl(const Tokenizer *t, const char *path, const char *field, int decode, int skip_special,
                     const char *output) {
    Error err;
    size_t len;
    char *data = file_read_all(path, &len, &err);
    if (!data) {
        fprintf(stderr, "pionrl tokenize: %s\n", err.msg);
        return 1;
    }
    // Split into lines first so they can be converted in parallel and written in order.
    int n = 0, cap = 1024;
    char **lines = malloc(cap * sizeof *lines);
    for (char *p = data; lines && *p;) {
        char *nl = strchr(p, '\n');
        if (nl) *nl = 0;
        if (n == cap) {
            cap *= 2;
            char **q = realloc(lines, cap * sizeof *q);
            if (!q) break;
            lines = q;
        }
        lines[n++] = p;
        if (!nl) break;
        p = nl + 1;
    }
    Out *outs = calloc(n ? n : 1, sizeof *outs);
    Error *errs = calloc(n ? n : 1, sizeof *errs);
    int *failed = calloc(n ? n : 1, sizeof *failed);
    if (!lines || !outs || !errs || !failed) {
        fprintf(stderr, "pionrl tokenize: out of memory\n");
        return 1;
    }
#pragma omp parallel for schedule(dynamic, 16)
    for (int i = 0; i < n; i++) {
        char where[4200];
        snprintf(where, sizeof where, "%s:%d", path, i + 1);
        size_t l = strlen(lines[i]);
        if (l && lines[i][l - 1] == '\r') lines[i][l - 1] = 0;
        if (!lines[i][0]) {
            error_set(&errs[i], "%s: empty line (each line must be one JSON object)", where);
            failed[i] = 1;
        } else {
            failed[i] = convert_line(t, lines[i], where, field, decode, skip_special, &outs[i], &errs[i]) != 0;
        }
    }
    int rc = 0;
    Out all = {0};
    for (int i = 0; i < n; i++) {
        if (failed[i]) {
            fprintf(stderr, "pionrl tokenize: %s\n", errs[i].msg);
            rc = 1;
            break;
        }
        if (out_put(&all, outs[i].buf ? outs[i].buf : "", outs[i].len) || out_put(&all, "\n", 1)) {
            fprintf(stderr, "pionrl tokenize: out of memory\n");
            rc = 1;
            break;
        }
    }
    if (rc == 0) rc = emit(&all, output);
    for (int i = 0; i < n; i++) free(outs[i].buf);
    free(all.buf);
    free(outs);
    free(errs);
    free(failed);
    free(lines);
    free(data);
    return rc;
}

static int print_info(const Tokenizer *t, const char *dir) {
    const int *eos;
    int n = tokenizer_eos_ids(t, &eos);
    printf("tokenizer: %s (%s)\nvocab ids: %d\neos ids:", dir, tokenizer_kind_name(t), tokenizer_vocab_size(t));
    for (int i = 0; i < n; i++) printf(" %d", eos[i]);
    printf("\npad id: %d\nbos id: %d\nchat template: %s\n", tokenizer_pad_id(t), tokenizer_bos_id(t),
           chat_template_family(t));
    return 0;
}

int cmd_tokenize(int argc, char **argv) {
    const char *dir = NULL, *text = NULL, *jsonl = NULL, *ids_arg = NULL, *output = NULL, *field = "text";
    int decode = 0, skip_special = 0, chat = 0, thinking = 1, info = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--tokenizer") && has) {
            dir = argv[++i];
        } else if (!strcmp(a, "--text") && has) {
            text = argv[++i];
        } else if (!strcmp(a, "--jsonl") && has) {
            jsonl = argv[++i];
        } else if (!strcmp(a, "--ids") && has) {
            ids_arg = argv[++i];
        } else if (!strcmp(a, "--output") && has) {
            output = argv[++i];
        } else if (!strcmp(a, "--field") && has) {
            field = argv[++i];
        } else if (!strcmp(a, "--decode")) {
            decode = 1;
        } else if (!strcmp(a, "--skip-special")) {
            skip_special = 1;
        } else if (!strcmp(a, "--chat")) {
            chat = 1;
        } else if (!strcmp(a, "--no-thinking")) {
            thinking = 0;
        } else if (!strcmp(a, "--info")) {
            info = 1;
        } else {
            fprintf(stderr, "pionrl tokenize: unknown or incomplete option '%s' (see pionrl tokenize --help)\n", a);
            return 2;
        }
    }
    if (!dir) {
        fprintf(stderr, "pionrl tokenize: --tokenizer DIR is required (see pionrl tokenize --help)\n");
        return 2;
    }
    int inputs = (text != NULL) + (jsonl != NULL) + (ids_arg != NULL);
    if (!info && inputs != 1) {
        fprintf(stderr, "pionrl tokenize: give exactly one of --text, --jsonl, --ids\n");
        return 2;
    }
    if ((decode && text) || (!decode && ids_arg)) {
        fprintf(stderr, "pionrl tokenize: --text encodes and --ids decodes (with --decode)\n");
        return 2;
    }
    if (chat && !text) {
        fprintf(stderr, "pionrl tokenize: --chat works with --text\n");
        return 2;
    }
    Error err;
    Tokenizer *t;
    if (tokenizer_load(dir, &t, &err)) {
        fprintf(stderr, "pionrl tokenize: %s\n", err.msg);
        return 1;
    }
    int rc = 0;
    if (info) {
        rc = print_info(t, dir);
    } else if (jsonl) {
        rc = run_jsonl(t, jsonl, field, decode, skip_special, output);
    } else if (ids_arg) {
        int *ids = NULL, n = 0;
        char *out = NULL;
        if (parse_id_list(ids_arg, &ids, &n)) {
            fprintf(stderr, "pionrl tokenize: --ids '%s' is not a list of integers\n", ids_arg);
            rc = 2;
        } else if (tokenizer_decode(t, ids, n, skip_special, &out, &err)) {
            fprintf(stderr, "pionrl tokenize: %s\n", err.msg);
            rc = 1;
        } else {
            Out o = {0};
            out_put(&o, out, strlen(out));
            out_put(&o, "\n", 1);
            rc = emit(&o, output);
            free(o.buf);
        }
        free(out);
        free(ids);
    } else {
        char *rendered = NULL;
        if (chat) {
            ChatMessage m = {"user", text};
            if (chat_template_render(t, &m, 1, 1, thinking, &rendered, &err)) {
                fprintf(stderr, "pionrl tokenize: %s\n", err.msg);
                tokenizer_free(t);
                return 1;
            }
            text = rendered;
        }
        int *ids = NULL, n = 0;
        if (tokenizer_encode(t, text, strlen(text), &ids, &n, &err)) {
            fprintf(stderr, "pionrl tokenize: %s\n", err.msg);
            rc = 1;
        } else {
            Out o = {0};
            out_ids(&o, ids, n, " ");
            out_put(&o, "\n", 1);
            rc = emit(&o, output);
            free(o.buf);
        }
        free(ids);
        free(rendered);
    }
    tokenizer_free(t);
    return rc;
}
