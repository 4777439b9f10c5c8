// GPU benchmarks (issue 8) on Qwen3-0.6B- and 1.7B-shaped models with random weights, next to the
// PyTorch peers of tools/bench_cuda_torch.py on the same GPU (transformers `generate`, PyTorch eager
// and torch.compile training, torch.optim.Muon):
// - decode: qwen_generate with the device model, batch 64 and 256, 32-token prompts, 128 new tokens
//   (plain sampling at temperature 1 on the device, no EOS), tokens/s over the whole call as
//   transformers' generate is timed; and the decode steps alone against the memory-bandwidth bound
//   (weights + KV cache read per step);
// - training: forward + backward of sum(w * logp) over 4 x 512 tokens, tokens/s and TFLOP/s at 6N;
// - optimizer: one Muon (whole matrices) and one per-head Pion step over every matrix, Newton-Schulz in fp32 and in
//   bf16 products (ns_dtype bf16, what torch.optim.Muon does), with the Newton-Schulz FLOPs of the Muon step (5
//   iterations of 4 s^2 l + 2 s^3 per s x l matrix).
// Each pionrl row runs twice: fp32 (no TF32) against the peers' fp32, and with bf16 matrix products (fp32 master
// weights, bf16 KV cache) against the peers' bf16 (autocast training, a bf16 model for generate).
// Skips (exit 0, no results file) without a CUDA build or a GPU, and on the CUDA emulator; writes
// bench/results/cuda.json otherwise. PIONRL_BENCH_QUICK=1 runs the 0.6B shape only, shorter;
// PIONRL_BENCH_TINY=1 a toy shape (checks the harness end to end, on the emulator too);
// PIONRL_PYTHON names the Python with torch (default python3); PIONRL_BENCH_NO_PEER=1 skips the peers.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/cuda_ops.h"
#include "core/rng.h"
#include "core/timer.h"
#include "optim/optim.h"
#include "optim/optim_cuda.h"
#include "policy/generate.h"
#include "policy/qwen.h"
#include "policy/qwen_cuda.h"

typedef struct {
    const char *name;
    int V, D, F, L, Hq, Hkv, hd;
} Shape;

static void init_config(QwenConfig *c, const Shape *s) {
    memset(c, 0, sizeof *c);
    c->arch = ARCH_QWEN3;
    c->vocab_size = s->V;
    c->hidden_size = s->D;
    c->intermediate_size = s->F;
    c->num_layers = s->L;
    c->num_heads = s->Hq;
    c->num_kv_heads = s->Hkv;
    c->head_dim = s->hd;
    c->max_position_embeddings = 40960;
    c->rms_norm_eps = 1e-6f;
    c->rope_theta = 1e6;
    c->tie_word_embeddings = 1;
    c->qk_norm = 1;
}

// Decode steps alone: tokens/s for `batch` sequences after 32-token prompts, `steps` one-token steps
// sampled on the device (as qwen_generate's decode steps).
static double bench_decode(QwenCuda *qc, const QwenConfig *c, int batch, int steps, int bf16, int graphs,
                           double *step_bytes, int *graph_nodes, Error *err) {
    enum { PROMPT = 32 };
    int max_tok = batch * PROMPT < 4096 ? batch * PROMPT : 4096;
    if (max_tok < batch) max_tok = batch;
    QwenCudaKV *kv = NULL;
    if (qwen_cuda_kv_create_ex(qc, batch, PROMPT + steps + 1, max_tok, bf16, &kv, err)) return -1;
    if (qwen_cuda_kv_set_matmul_bf16(kv, bf16, err)) {
        qwen_cuda_kv_free(kv);
        return -1;
    }
    qwen_cuda_kv_set_graphs(kv, graphs);
    int *slot = malloc(sizeof(int) * max_tok), *tok = malloc(sizeof(int) * max_tok), *next = malloc(sizeof(int) * batch);
    float *logits = malloc(sizeof(float) * c->vocab_size), *lp = malloc(sizeof(float) * batch);
    double *u = malloc(sizeof(double) * batch);
    unsigned char *none = calloc(max_tok, 1);
    SamplingParams sp = {1.0f, 0, 1.0f, 0.0f};
    double rate = -1;
    if (slot && tok && next && logits && lp && u && none) {
        Rng rng;
        rng_seed(&rng, 3);
        int rc = 0;
        for (int s0 = 0; s0 < batch * PROMPT && !rc; s0 += max_tok) {  // prefill, no logits needed
            int n = batch * PROMPT - s0 < max_tok ? batch * PROMPT - s0 : max_tok;
            for (int i = 0; i < n; i++) slot[i] = (s0 + i) / PROMPT, tok[i] = (int)rng_below(&rng, 1000);
            rc = qwen_cuda_decode(kv, slot, tok, n, none, logits, err);
        }
        for (int i = 0; i < batch; i++) slot[i] = i, tok[i] = (int)rng_below(&rng, 1000);
        double t0 = time_now();
        for (int st = 0; st < steps && !rc; st++) {
            for (int i = 0; i < batch; i++) u[i] = rng_uniform_double(&rng);
            rc = qwen_cuda_decode_sample(kv, slot, tok, batch, &sp, 0, u, next, lp, err);
            memcpy(tok, next, sizeof(int) * batch);
        }
        if (!rc) rate = (double)batch * steps / (time_now() - t0);
    }
    if (graph_nodes) *graph_nodes = qwen_cuda_kv_graph_nodes(kv, batch);  // launches one step stands for
    // bytes one decode step must read at least: the weights once, the KV cache of the average length
    size_t params = qwen_num_params(c);
    double es = bf16 ? 2.0 : 4.0, kv_per_token = 2.0 * c->num_layers * c->num_kv_heads * c->head_dim * es;
    *step_bytes = params * es + (double)batch * (PROMPT + steps / 2.0) * kv_per_token;
    free(slot), free(tok), free(next), free(logits), free(lp), free(u), free(none);
    qwen_cuda_kv_free(kv);
    return rate;
}

// Whole generate calls as a user runs them (and as transformers' generate is timed): batch prompts of
// 32 tokens, `steps` new tokens each, prefill included; tokens/s of new tokens.
static double bench_generate(const QwenModel *m, QwenCuda *qc, int batch, int steps, int bf16, Error *err) {
    enum { PROMPT = 32 };
    int *ids = malloc(sizeof(int) * batch * PROMPT), *lens = malloc(sizeof(int) * batch);
    const int **prompts = malloc(sizeof(int *) * batch);
    GenSeq *out = calloc(batch, sizeof(GenSeq));
    double rate = -1;
    if (ids && lens && prompts && out) {
        Rng rng;
        rng_seed(&rng, 5);
        for (int i = 0; i < batch * PROMPT; i++) ids[i] = (int)rng_below(&rng, 1000);
        for (int p = 0; p < batch; p++) prompts[p] = ids + p * PROMPT, lens[p] = PROMPT;
        GenerateParams gp;
        memset(&gp, 0, sizeof gp);
        gp.sampling = (SamplingParams){1.0f, 0, 1.0f, 0.0f};
        gp.max_new_tokens = steps;
        gp.seed = 7;
        gp.cuda = qc;
        gp.max_batch_tokens = 4096;
        gp.matmul_bf16 = gp.kv_bf16 = bf16;
        double t0 = time_now();
        if (qwen_generate(m, prompts, lens, batch, 1, &gp, out, err) == 0) {
            rate = (double)batch * steps / (time_now() - t0);
            gen_seqs_free(out, batch);
        }
    }
    free(ids), free(lens), free(prompts), free(out);
    return rate;
}

// Newton-Schulz FLOPs of one Muon step over the hidden matrices (5 iterations, whole matrices).
static double muon_flops(const QwenConfig *c) {
    double D = c->hidden_size, F = c->intermediate_size, QD = (double)c->num_heads * c->head_dim;
    double KD = (double)c->num_kv_heads * c->head_dim, shapes[5][2] = {{QD, D}, {KD, D}, {KD, D}, {D, QD}, {F, D}};
    double per_layer = 0;
    for (int i = 0; i < 5; i++) {
        double s = shapes[i][0] < shapes[i][1] ? shapes[i][0] : shapes[i][1], l = shapes[i][0] + shapes[i][1] - s;
        per_layer += (i == 4 ? 3 : 1) * 5 * (4 * s * s * l + 2 * s * s * s);  // gate, up and down share a shape
    }
    return per_layer * c->num_layers;
}

// One device optimizer step (kind, per_head) over every parameter, best of 2 after a warm-up; -1 on error.
static double bench_optimizer(const QwenModel *m, OptimKind kind, int per_head, int ns_bf16, Error *err) {
    const QwenConfig *c = &m->cfg;
    int nt = qwen_num_tensors(c);
    ParamInfo *tab = malloc(sizeof(ParamInfo) * nt);
    if (!tab) return -1;
    qwen_param_table(c, tab);
    OptimConfig oc;
    optimizer_config_default(&oc);
    oc.kind = kind, oc.per_head = per_head, oc.kp = 0, oc.ns_bf16 = ns_bf16;
    Optimizer *host = NULL;
    OptimCuda *gpu = NULL;
    float *d_p = NULL, *d_g = NULL;
    double best = 1e30;
    if (!optimizer_create(&oc, tab, nt, m->num_params, &host, err) && !optim_cuda_create(host, &gpu, err) &&
        !cuda_alloc((void **)&d_p, sizeof(float) * m->num_params, err) &&
        !cuda_alloc((void **)&d_g, sizeof(float) * m->num_params, err) &&
        !cuda_to_device(d_p, m->params, sizeof(float) * m->num_params, err) &&
        !cuda_to_device(d_g, m->params, sizeof(float) * m->num_params, err)) {
        for (int r = 0; r < 3; r++) {
            double t0 = time_now();
            if (optim_cuda_step(gpu, d_p, d_g, 1.0f, err)) break;  // ends with a synchronising copy
            double dt = time_now() - t0;
            if (r > 0 && dt < best) best = dt;
        }
    }
    cuda_release(d_p);
    cuda_release(d_g);
    optim_cuda_free(gpu);
    if (host) optimizer_free(host);
    free(tab);
    return best < 1e30 ? best * 1e3 : -1;
}

typedef struct {
    double train_tps, d64, bytes64, d256, bytes256, g64, g256;
    double d64_eager;  // decode steps at batch 64 without CUDA graphs
    int nodes64;       // nodes (kernel launches) in the captured batch-64 step
} Result;

// Training, decode steps and generate calls in one precision: bf16 = 1 puts the training passes and the decode in
// bf16 matrix products (and the KV cache in bf16), the device form of matmul_dtype / kv_cache_dtype bf16.
static int bench_precision(const QwenModel *m, QwenCuda *qc, const QwenConfig *c, int B, int T, int steps, int bf16,
                           const int *tok, const float *w, float *logp, Result *r, Error *err) {
    memset(r, 0, sizeof *r);
    if (qwen_cuda_set_matmul_bf16(qc, bf16, err)) return -1;
    double best = 1e30;
    float *grads = malloc(sizeof(float) * m->num_params);
    if (!grads) return error_set(err, "out of memory");
    for (int k = 0; k < 4; k++) {
        double t0 = time_now();
        if (qwen_cuda_zero_grads(qc, err) || qwen_cuda_forward(qc, tok, B, T, 1.0f, logp, NULL, err) ||
            qwen_cuda_backward(qc, w, err) || qwen_cuda_download_grads(qc, grads, err)) {
            free(grads);
            return error_prefix(err, "train");
        }
        double dt = time_now() - t0;
        if (k > 0 && dt < best) best = dt;
    }
    free(grads);
    r->train_tps = B * T / best;
    double ignored;
    if ((r->d64 = bench_decode(qc, c, 64, steps, bf16, 1, &r->bytes64, &r->nodes64, err)) < 0 ||
        (r->d64_eager = bench_decode(qc, c, 64, steps, bf16, 0, &ignored, NULL, err)) < 0 ||
        (r->d256 = bench_decode(qc, c, 256, steps, bf16, 1, &r->bytes256, NULL, err)) < 0 ||
        (r->g64 = bench_generate(m, qc, 64, steps, bf16, err)) < 0 ||
        (r->g256 = bench_generate(m, qc, 256, steps, bf16, err)) < 0)
        return error_prefix(err, "decode");
    return 0;
}

// A number from the peer's JSON object (-1 when it did not run, or the value is absent or null).
static double peer_number(const cJSON *peer, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(peer, key);
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

// Runs tools/bench_cuda_torch.py on this shape; its JSON object in buf ("" when it could not run).
static void run_peer(const QwenConfig *c, int B, int T, int steps, int quick, char *buf, size_t cap) {
    buf[0] = 0;
    if (getenv("PIONRL_BENCH_NO_PEER")) return;
    const char *py = getenv("PIONRL_PYTHON") ? getenv("PIONRL_PYTHON") : "python3";
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s tools/bench_cuda_torch.py %d %d %d %d %d %d %d %d %d 32 %d %s", py, c->vocab_size,
             c->hidden_size, c->intermediate_size, c->num_layers, c->num_heads, c->num_kv_heads, c->head_dim, B, T,
             steps, quick ? "--quick" : "--compile");
    printf("peer: %s\n", cmd);
    fflush(stdout);
    FILE *f = popen(cmd, "r");
    size_t n = f ? fread(buf, 1, cap - 1, f) : 0;
    buf[n] = 0;
    int ok = f && pclose(f) == 0 && n > 0 && buf[0] == '{';
    if (!ok) {
        printf("peer: did not run (%s)\n", n ? buf : "no output");
        buf[0] = 0;
        return;
    }
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) buf[--n] = 0;
}

int main(void) {
    char name[256];
    size_t mem = 0;
    Error err;
    if (cuda_device_probe(name, sizeof name, &mem, &err)) {
        printf("bench_cuda: skipped (%s)\n", err.msg);
        return 0;
    }
    if (strstr(name, "emulator") && !getenv("PIONRL_BENCH_TINY")) {  // tests/cuda_emu: no speed to measure
        printf("bench_cuda: skipped (%s: use PIONRL_BENCH_TINY=1 to check the harness)\n", name);
        return 0;
    }
    int quick = getenv("PIONRL_BENCH_QUICK") != NULL;
    Shape shapes[] = {{"Qwen3-0.6B", 151936, 1024, 3072, 28, 16, 8, 128},
                      {"Qwen3-1.7B", 151936, 2048, 6144, 28, 16, 8, 128}};
    int nshapes = quick ? 1 : 2, steps = quick ? 16 : 128;
    // PIONRL_BENCH_TINY=1: a toy shape that checks the harness end to end (the CUDA emulator, a CPU peer)
    if (getenv("PIONRL_BENCH_TINY")) {
        shapes[0] = (Shape){"tiny", 1000, 64, 128, 2, 4, 2, 16};
        nshapes = 1, steps = 8;
    }
    FILE *f = fopen("bench/results/cuda.json", "w");
    if (!f) {
        fprintf(stderr, "bench_cuda: cannot write bench/results/cuda.json (run from the repository root)\n");
        return 1;
    }
    fprintf(f, "{\n  \"benchmark\": \"cuda\",\n  \"device\": \"%s\",\n  \"memory_gb\": %.1f,\n"
            "  \"quick\": %s,\n  \"models\": [\n", name, mem / 1e9, quick ? "true" : "false");
    printf("device: %s (%.1f GB)\n", name, mem / 1e9);
    int status = 0;
    for (int si = 0; si < nshapes; si++) {
        QwenConfig c;
        init_config(&c, &shapes[si]);
        QwenModel m;
        QwenCuda *qc = NULL;
        if (qwen_model_init(&m, &c, &err)) {
            fprintf(stderr, "bench_cuda: %s\n", err.msg);
            status = 1;
            break;
        }
        qwen_model_init_random(&m, 1, 0.02f);
        int B = 4, T = getenv("PIONRL_BENCH_TINY") ? 32 : 512;
        if (qwen_cuda_create(&m, B, T, &qc, &err)) {
            fprintf(stderr, "bench_cuda: %s: %s\n", shapes[si].name, err.msg);
            qwen_model_free(&m);
            status = 1;
            break;
        }
        // training: forward + backward of sum(w * logp) over B x T tokens, best of 3 after a warm-up
        int *tok = malloc(sizeof(int) * B * T);
        float *w = malloc(sizeof(float) * B * (T - 1)), *logp = malloc(sizeof(float) * B * (T - 1));
        Rng rng;
        rng_seed(&rng, 1);
        for (int i = 0; i < B * T; i++) tok[i] = (int)rng_below(&rng, c.vocab_size);
        for (int i = 0; i < B * (T - 1); i++) w[i] = (float)rng_normal(&rng);
        Result res[2];  // fp32, then bf16 matrix products (+ bf16 KV cache for decode)
        for (int bf16 = 0; bf16 < 2 && !status; bf16++) {
            if (bench_precision(&m, qc, &c, B, T, steps, bf16, tok, w, logp, &res[bf16], &err)) {
                fprintf(stderr, "bench_cuda: %s %s: %s\n", shapes[si].name, bf16 ? "bf16" : "fp32", err.msg);
                status = 1;
            }
        }
        // Newton-Schulz in fp32 and in bf16 products (ns_dtype bf16, as torch.optim.Muon runs it)
        double muon_ms = status ? -1 : bench_optimizer(&m, OPT_MUON, 0, 0, &err);
        double muon16_ms = muon_ms < 0 ? -1 : bench_optimizer(&m, OPT_MUON, 0, 1, &err);
        double pion_ms = muon16_ms < 0 ? -1 : bench_optimizer(&m, OPT_PION, 1, 0, &err);
        double pion16_ms = pion_ms < 0 ? -1 : bench_optimizer(&m, OPT_PION, 1, 1, &err);
        if (pion16_ms < 0) fprintf(stderr, "bench_cuda: optimizer: %s\n", err.msg);
        double ns_flops = muon_flops(&c);
        for (int bf16 = 0; bf16 < 2 && !status; bf16++) {
            const Result *r = &res[bf16];
            printf(
                "%s (%.2fB params) %s: train %.0f tokens/s (%.1f TFLOP/s at 6N); decode steps b64 %.0f tokens/s "
                "(%.0f without graphs; %.2f GB/step; %d graph nodes), b256 %.0f (%.2f GB/step); generate b64 %.0f "
                "tokens/s, b256 %.0f\n",
                shapes[si].name, m.num_params / 1e9, bf16 ? "bf16" : "fp32", r->train_tps,
                6.0 * m.num_params * r->train_tps / 1e12, r->d64, r->d64_eager, r->bytes64 / 1e9, r->nodes64, r->d256,
                r->bytes256 / 1e9, r->g64, r->g256);
        }
        printf("%s: Muon step %.1f ms (%.1f TFLOP/s of Newton-Schulz), bf16 NS %.1f ms (%.1f TFLOP/s); Pion per-head "
               "%.1f ms, bf16 NS %.1f ms\n",
               shapes[si].name, muon_ms, muon_ms > 0 ? ns_flops / (muon_ms * 1e-3) / 1e12 : 0, muon16_ms,
               muon16_ms > 0 ? ns_flops / (muon16_ms * 1e-3) / 1e12 : 0, pion_ms, pion16_ms);
        // free the device before the peer takes it
        qwen_cuda_free(qc);
        qc = NULL;
        char peer[8192];
        run_peer(&c, B, T, steps, quick, peer, sizeof peer);
        cJSON *pj = peer[0] ? cJSON_Parse(peer) : NULL;
        for (int bf16 = 0; bf16 < 2 && pj && !status; bf16++) {
            const char *pr = bf16 ? "bf16" : "fp32";
            char key[64];
            snprintf(key, sizeof key, "%s_train_tokens_per_s", pr);
            double p_train = peer_number(pj, key);
            snprintf(key, sizeof key, "%s_decode_b64_tokens_per_s", pr);
            double p_g64 = peer_number(pj, key);
            snprintf(key, sizeof key, "%s_decode_b256_tokens_per_s", pr);
            double p_g256 = peer_number(pj, key);
            const Result *r = &res[bf16];
            printf("%s vs PyTorch %s: train %.2fx, generate b64 %.2fx, b256 %.2fx\n", shapes[si].name, pr,
                   p_train > 0 ? r->train_tps / p_train : 0, p_g64 > 0 ? r->g64 / p_g64 : 0,
                   p_g256 > 0 ? r->g256 / p_g256 : 0);
        }
        double p_muon = peer_number(pj, "muon_adamw_step_ms");
        if (p_muon > 0 && muon16_ms > 0)  // torch.optim.Muon runs Newton-Schulz in bf16
            printf("%s vs torch.optim.Muon: bf16 NS %.2fx (fp32 NS %.2fx)\n", shapes[si].name, p_muon / muon16_ms,
                   p_muon / muon_ms);
        cJSON_Delete(pj);
        fprintf(f, "%s    {\"model\": \"%s\", \"params\": %zu, \"train_batch\": %d, \"train_seq_len\": %d, "
                "\"decode_prompt\": 32, \"decode_new_tokens\": %d,\n", si ? ",\n" : "", shapes[si].name, m.num_params,
                B, T, steps);
        for (int bf16 = 0; bf16 < 2; bf16++) {
            const Result *r = &res[bf16];
            if (status) break;
            fprintf(
                f,
                "     \"%s\": {\"train_tokens_per_s\": %.1f, \"train_tflops_6n\": %.2f, "
                "\"b64_step_tokens_per_s\": %.1f, \"b64_step_eager_tokens_per_s\": %.1f, \"b64_bytes_per_step\": %.0f, "
                "\"b64_step_graph_nodes\": %d, "
                "\"b256_step_tokens_per_s\": %.1f, \"b256_bytes_per_step\": %.0f, "
                "\"b64_generate_tokens_per_s\": %.1f, \"b256_generate_tokens_per_s\": %.1f},\n",
                bf16 ? "bf16" : "fp32", r->train_tps, 6.0 * m.num_params * r->train_tps / 1e12, r->d64, r->d64_eager,
                r->bytes64, r->nodes64, r->d256, r->bytes256, r->g64, r->g256);
        }
        fprintf(f,
                "     \"muon_step_ms\": %.2f, \"muon_bf16_ns_step_ms\": %.2f, \"muon_ns_flops\": %.4g, "
                "\"pion_per_head_step_ms\": %.2f, \"pion_per_head_bf16_ns_step_ms\": %.2f, \"pytorch\": %s}",
                muon_ms, muon16_ms, ns_flops, pion_ms, pion16_ms, peer[0] ? peer : "null");
        free(tok), free(w), free(logp);
        qwen_cuda_free(qc);
        qwen_model_free(&m);
        if (status) break;
    }
    fprintf(f, "\n  ]\n}\n");
    fclose(f);
    printf("wrote bench/results/cuda.json\n");
    return status;
}
