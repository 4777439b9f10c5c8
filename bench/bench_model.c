// Model throughput on CPU: forward+backward tokens/s of sum(w * logp) and batched decode tokens/s
// for a ~10M-parameter Qwen3, next to the same work in PyTorch eager (tools/bench_model_torch.py)
// run in the same process tree (PyTorch at 1 and 2 threads, its best counted; the two sides take
// turns three times and each keeps its best, since this VM drifts), in fp32 and in mixed bf16 on both
// sides. Writes bench/results/model.json.
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "core/timer.h"
#include "policy/generate.h"
#include "policy/qwen.h"
#include "policy/qwen_train.h"

#include "bench_qwen10m.h"

enum { B = 8, T = 256, P = 32, NEW = 128 };

static double bench_train(QwenModel *m, float *grads, int bf16) {
    QwenActs a;
    Error e;
    if (qwen_acts_alloc(&a, &m->cfg, B, T, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return 0;
    }
    a.matmul_bf16 = bf16;
    int *tok = malloc(sizeof(int) * B * T);
    float *w = malloc(sizeof(float) * B * (T - 1)), *logp = malloc(sizeof(float) * B * (T - 1));
    Rng rng;
    rng_seed(&rng, 1);
    for (int i = 0; i < B * T; i++) tok[i] = (int)rng_below(&rng, V);
    for (int i = 0; i < B * (T - 1); i++) w[i] = (float)rng_normal(&rng);
    int reps = 3;
    double best = 1e30;
    for (int r = 0; r <= reps; r++) {
        double t0 = time_now();
        memset(grads, 0, sizeof(float) * m->num_params);
        if (qwen_forward(m, &a, tok, NULL, B, T, 1.0f, logp, NULL, &e)) fprintf(stderr, "%s\n", e.msg);
        qwen_backward(m, &a, w, grads);
        double dt = time_now() - t0;
        if (r > 0 && dt < best) best = dt;  // first run warms up
    }
    free(tok);
    free(w);
    free(logp);
    qwen_acts_free(&a);
    return B * T / best;
}

static double bench_decode(QwenModel *m, int batch, int kv_bf16, int mm_bf16) {
    Rng rng;
    rng_seed(&rng, 2);
    int **prompts = malloc(sizeof(int *) * batch), *lens = malloc(sizeof(int) * batch);
    for (int i = 0; i < batch; i++) {
        prompts[i] = malloc(sizeof(int) * P);
        lens[i] = P;
        for (int t = 0; t < P; t++) prompts[i][t] = (int)rng_below(&rng, V);
    }
    GenerateParams gp = {{1.0f, 0, 1.0f, 0.0f}, NEW, NULL, 0, 0, 7, NULL, NULL, NULL, NULL, 0, NULL, NULL, kv_bf16, mm_bf16};
    GenSeq *out = calloc(batch, sizeof(GenSeq));
    Error e;
    double t0 = time_now();
    if (qwen_generate(m, (const int *const *)prompts, lens, batch, 1, &gp, out, &e)) fprintf(stderr, "%s\n", e.msg);
    double dt = time_now() - t0;
    gen_seqs_free(out, batch);
    free(out);
    for (int i = 0; i < batch; i++) free(prompts[i]);
    free(prompts);
    free(lens);
    return (double)batch * NEW / dt;
}

static double json_number(const char *json, const char *key) {
    char pat[128];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    const char *p = json ? strstr(json, pat) : NULL;
    return p ? atof(p + strlen(pat)) : 0.0;
}

int main(void) {
    QwenConfig c = bench_qwen10m_config();
    QwenModel m;
    Error e;
    if (qwen_model_init(&m, &c, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    qwen_model_init_random(&m, 1, 0.02f);
    float *grads = malloc(sizeof(float) * m.num_params);
    printf("model: %.2fM parameters (V %d, D %d, F %d, L %d, heads %d/%d x %d)\n", m.num_params / 1e6, V, D, F, L, HQ,
           HKV, HD);
    // PIONRL_BENCH_ONLY=decode or =train measures one side only (for profiling).
    const char *only = getenv("PIONRL_BENCH_ONLY");
    int no_train = only && !strcmp(only, "decode"), no_decode = only && !strcmp(only, "train");
    int with_peer = !getenv("PIONRL_BENCH_NO_PEER");  // PIONRL_BENCH_NO_PEER=1: our side only
    // Two precisions, each side at its own: fp32 (pionrl's default, PyTorch's default) and mixed
    // bf16 (pionrl: matmul_dtype bf16 for training; rollout matmul_dtype + kv_cache_dtype bf16 for
    // decode. PyTorch: autocast bf16 for training; the model cast to bf16 for decode).
    // This VM's throughput drifts by up to 35% over minutes, so the two sides take turns: pionrl,
    // PyTorch (at 1 and 2 threads), then twice more pionrl, PyTorch (at its better thread count);
    // each side keeps its best. Within a turn: best of 3 training steps, best of 3 generate calls per batch size.
    // ours[prec][0..2] and peer[prec][0..2]: train, decode b16, decode b64 tokens/s (prec 0 fp32, 1 bf16)
    double ours[2][3] = {{0}}, peer[2][3] = {{0}};
    static const char *const peer_keys[2][3] = {
        {"train_tokens_per_s", "decode_b16_tokens_per_s", "decode_b64_tokens_per_s"},
        {"bf16_train_tokens_per_s", "bf16_decode_b16_tokens_per_s", "bf16_decode_b64_tokens_per_s"}};
    char cmd[256], buf[4096] = {0}, peer_json[4096] = {0};
    int torch_ok = 0, torch_threads = 0;
    for (int turn = 0; turn < (with_peer ? 3 : 1); turn++) {
        for (int bf = 0; bf < 2; bf++) {
            double tr = no_train ? 0 : bench_train(&m, grads, bf);
            ours[bf][0] = tr > ours[bf][0] ? tr : ours[bf][0];
            for (int r = 0; r < 3 && !no_decode; r++) {
                double a = bench_decode(&m, 16, bf, bf), b = bench_decode(&m, 64, bf, bf);
                ours[bf][1] = a > ours[bf][1] ? a : ours[bf][1];
                ours[bf][2] = b > ours[bf][2] ? b : ours[bf][2];
            }
            printf("pionrl %s (turn %d): train %.0f tokens/s, decode b16 %.0f tokens/s, b64 %.0f tokens/s\n",
                   bf ? "bf16" : "fp32", turn + 1, tr, ours[bf][1], ours[bf][2]);
        }
        if (!with_peer) break;
        char threads[16];
        snprintf(threads, sizeof threads, turn == 0 || !torch_threads ? "1,2" : "%d", torch_threads);
        snprintf(cmd, sizeof cmd,
                 "/usr/bin/python3 tools/bench_model_torch.py %d %d %d %d %d %d %d %d %d %d %d %s bf16", V, D, F, L,
                 HQ, HKV, HD, B, T, P, NEW, threads);
        FILE *f = popen(cmd, "r");
        size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
        buf[n] = 0;
        if (!(f && pclose(f) == 0 && n > 0)) break;
        torch_ok = 1;
        if (turn == 0) {
            snprintf(peer_json, sizeof peer_json, "%s", buf);
            torch_threads = (int)json_number(buf, "train_best_threads");
        }
        for (int bf = 0; bf < 2; bf++) {
            for (int k = 0; k < 3; k++) {
                double v = json_number(buf, peer_keys[bf][k]);
                peer[bf][k] = v > peer[bf][k] ? v : peer[bf][k];
            }
            printf("pytorch %s (turn %d, threads %s): train %.0f tokens/s, decode b16 %.0f tokens/s, b64 %.0f "
                   "tokens/s\n",
                   bf ? "bf16" : "fp32", turn + 1, threads, json_number(buf, peer_keys[bf][0]),
                   json_number(buf, peer_keys[bf][1]), json_number(buf, peer_keys[bf][2]));
        }
    }
    for (int bf = 0; bf < 2; bf++) {
        printf("%s: pionrl train %.0f, decode b16 %.0f, b64 %.0f tokens/s", bf ? "bf16" : "fp32", ours[bf][0],
               ours[bf][1], ours[bf][2]);
        if (torch_ok)
            printf(" | pytorch %.0f, %.0f, %.0f | speedup %.2fx, %.2fx, %.2fx", peer[bf][0], peer[bf][1], peer[bf][2],
                   ours[bf][0] / peer[bf][0], ours[bf][1] / peer[bf][1], ours[bf][2] / peer[bf][2]);
        printf("\n");
    }
    if (!torch_ok) printf("pytorch: not available (%s)\n", cmd);
    if (!torch_ok && !with_peer) return 0;
    FILE *o = fopen("bench/results/model.json", "w");
    if (!o) return 1;
    fprintf(o,
            "{\n  \"machine\": \"CPU, %d cores (project machine)\",\n  \"pionrl_threads\": %d,\n  \"model\": {\"params\": "
            "%zu, \"vocab\": %d, \"hidden\": %d, \"intermediate\": %d, \"layers\": %d, \"heads\": %d, \"kv_heads\": "
            "%d, \"head_dim\": %d},\n  \"train\": {\"batch\": %d, \"seq_len\": %d},\n  \"decode\": {\"prompt\": %d, "
            "\"new_tokens\": %d},\n",
            omp_get_num_procs(), omp_get_max_threads(), m.num_params, V, D, F, L, HQ, HKV, HD, B, T, P, NEW);
    static const char *const what[3] = {"train", "decode_b16", "decode_b64"};
    for (int bf = 0; bf < 2; bf++) {
        fprintf(o, "  \"%s\": {", bf ? "bf16" : "fp32");
        for (int k = 0; k < 3; k++)
            fprintf(o, "%s\"%s\": {\"pionrl_tokens_per_s\": %.1f, \"pytorch_tokens_per_s\": %.1f, \"speedup\": %.2f}",
                    k ? ", " : "", what[k], ours[bf][k], peer[bf][k], peer[bf][k] > 0 ? ours[bf][k] / peer[bf][k] : 0);
        fprintf(o, "},\n");
    }
    fprintf(o, "  \"pytorch\": %s\n}\n", torch_ok ? peer_json : "null");
    fclose(o);
    free(grads);
    qwen_model_free(&m);
    return 0;
}
