// GPU benchmarks (issue 8) on Qwen3-0.6B- and 1.7B-shaped models with random weights: batched
// decode tokens/s at batch 64 and 256 (prompt 32, 128 new tokens, logits copied to the host for
// sampling as `pionrl generate --device cuda` does) against the memory-bandwidth bound (weights +
// KV cache read per step), training forward+backward tokens/s and MFU (fp32), and one per-head
// Pion step over every matrix. pionrl's side only: the PyTorch / transformers peers of the issue are
// still to be written. Skips (exit 0, no results file) without a CUDA build or a GPU; writes
// bench/results/cuda.json otherwise. PIONRL_BENCH_QUICK=1 runs the 0.6B shape only, shorter.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cuda_ops.h"
#include "core/rng.h"
#include "core/timer.h"
#include "optim/optim.h"
#include "optim/optim_cuda.h"
#include "policy/qwen.h"
#include "policy/qwen_cuda.h"

typedef struct {
    const char *name;
    int D, F, L, Hq, Hkv, hd;
} Shape;

static void init_config(QwenConfig *c, const Shape *s) {
    memset(c, 0, sizeof *c);
    c->arch = ARCH_QWEN3;
    c->vocab_size = 151936;
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

// Decode tokens/s for `batch` sequences: prefill 32-token prompts, then `steps` one-token steps.
static double bench_decode(QwenCuda *qc, const QwenConfig *c, int batch, int steps, double *step_bytes, Error *err) {
    enum { PROMPT = 32 };
    int max_tok = batch * PROMPT < 4096 ? batch * PROMPT : 4096;
    if (max_tok < batch) max_tok = batch;
    QwenCudaKV *kv = NULL;
    if (qwen_cuda_kv_create(qc, batch, PROMPT + steps + 1, max_tok, &kv, err)) return -1;
    int *slot = malloc(sizeof(int) * max_tok), *tok = malloc(sizeof(int) * max_tok);
    float *logits = malloc(sizeof(float) * (size_t)batch * c->vocab_size);
    unsigned char *none = calloc(max_tok, 1);
    double rate = -1;
    if (slot && tok && logits && none) {
        Rng rng;
        rng_seed(&rng, 3);
        int rc = 0;
        for (int s0 = 0; s0 < batch * PROMPT && !rc; s0 += max_tok) {  // prefill, no logits needed
            int n = batch * PROMPT - s0 < max_tok ? batch * PROMPT - s0 : max_tok;
            for (int i = 0; i < n; i++) slot[i] = (s0 + i) / PROMPT, tok[i] = (int)rng_below(&rng, 1000);
            rc = qwen_cuda_decode(kv, slot, tok, n, none, logits, err);
        }
        double t0 = time_now();
        for (int st = 0; st < steps && !rc; st++) {
            for (int i = 0; i < batch; i++) slot[i] = i, tok[i] = (int)rng_below(&rng, 1000);
            rc = qwen_cuda_decode(kv, slot, tok, batch, NULL, logits, err);
        }
        if (!rc) rate = (double)batch * steps / (time_now() - t0);
    }
    // bytes one decode step must read at least: the weights once, the KV cache of the average length
    size_t params = qwen_num_params(c);
    double kv_per_token = 2.0 * c->num_layers * c->num_kv_heads * c->head_dim * sizeof(float);
    *step_bytes = params * sizeof(float) + (double)batch * (PROMPT + steps / 2.0) * kv_per_token;
    free(slot), free(tok), free(logits), free(none);
    qwen_cuda_kv_free(kv);
    return rate;
}

int main(void) {
    char name[256];
    size_t mem = 0;
    Error err;
    if (cuda_device_probe(name, sizeof name, &mem, &err)) {
        printf("bench_cuda: skipped (%s)\n", err.msg);
        return 0;
    }
    int quick = getenv("PIONRL_BENCH_QUICK") != NULL;
    Shape shapes[] = {{"Qwen3-0.6B", 1024, 3072, 28, 16, 8, 128}, {"Qwen3-1.7B", 2048, 6144, 28, 16, 8, 128}};
    int nshapes = quick ? 1 : 2, steps = quick ? 16 : 128;
    FILE *f = fopen("bench/results/cuda.json", "w");
    if (!f) {
        fprintf(stderr, "bench_cuda: cannot write bench/results/cuda.json (run from the repository root)\n");
        return 1;
    }
    fprintf(f, "{\n  \"benchmark\": \"cuda\",\n  \"device\": \"%s\",\n  \"memory_gb\": %.1f,\n  \"precision\": \"fp32\",\n"
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
        int B = 4, T = 512;
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
        double best = 1e30;
        for (int r = 0; r < 4; r++) {
            double t0 = time_now();
            if (qwen_cuda_zero_grads(qc, &err) || qwen_cuda_forward(qc, tok, B, T, 1.0f, logp, NULL, &err) ||
                qwen_cuda_backward(qc, w, &err) || qwen_cuda_download_grads(qc, m.params, &err)) {
                fprintf(stderr, "bench_cuda: train: %s\n", err.msg);
                status = 1;
                break;
            }
            double dt = time_now() - t0;
            if (r > 0 && dt < best) best = dt;
        }
        double train_tps = status ? 0 : B * T / best;
        // 6 N flops per token (+ attention, not counted): the usual MFU convention
        double train_tflops = 6.0 * m.num_params * train_tps / 1e12;
        // decode at batch 64 and 256
        double bytes64 = 0, bytes256 = 0;
        double d64 = status ? -1 : bench_decode(qc, &c, 64, steps, &bytes64, &err);
        double d256 = status || d64 < 0 ? -1 : bench_decode(qc, &c, 256, steps, &bytes256, &err);
        if (d64 < 0 || d256 < 0) {
            fprintf(stderr, "bench_cuda: decode: %s\n", err.msg);
            status = 1;
        }
        // one per-head Pion step (k_p 0) over every parameter on the device
        double opt_ms = -1;
        int nt = qwen_num_tensors(&c);
        ParamInfo *tab = malloc(sizeof(ParamInfo) * nt);
        qwen_param_table(&c, tab);
        OptimConfig oc;
        optimizer_config_default(&oc);
        oc.kind = OPT_PION, oc.per_head = 1, oc.kp = 0;
        Optimizer *host = NULL;
        OptimCuda *oc_gpu = NULL;
        float *d_p = NULL, *d_g = NULL;
        if (!status && !optimizer_create(&oc, tab, nt, m.num_params, &host, &err) &&
            !optim_cuda_create(host, &oc_gpu, &err) && !cuda_alloc((void **)&d_p, sizeof(float) * m.num_params, &err) &&
            !cuda_alloc((void **)&d_g, sizeof(float) * m.num_params, &err) &&
            !cuda_to_device(d_p, m.params, sizeof(float) * m.num_params, &err) &&
            !cuda_to_device(d_g, m.params, sizeof(float) * m.num_params, &err)) {
            double bo = 1e30;
            for (int r = 0; r < 3; r++) {
                double t0 = time_now();
                if (optim_cuda_step(oc_gpu, d_p, d_g, 1.0f, &err)) break;  // ends with a synchronising copy
                double dt = time_now() - t0;
                if (r > 0 && dt < bo) bo = dt;
            }
            opt_ms = bo < 1e30 ? bo * 1e3 : -1;
        }
        if (opt_ms < 0) fprintf(stderr, "bench_cuda: optimizer: %s\n", err.msg);
        printf("%s (%.2fB params): train %.0f tokens/s (%.1f TFLOP/s at 6N), decode b64 %.0f tokens/s (%.1f GB/step), "
               "b256 %.0f tokens/s (%.1f GB/step), Pion per-head step %.1f ms\n",
               shapes[si].name, m.num_params / 1e9, train_tps, train_tflops, d64, bytes64 / 1e9, d256, bytes256 / 1e9,
               opt_ms);
        fprintf(f,
                "%s    {\"model\": \"%s\", \"params\": %zu, \"train\": {\"batch\": %d, \"seq_len\": %d, "
                "\"tokens_per_s\": %.1f, \"tflops_6n\": %.2f}, \"decode\": {\"prompt\": 32, \"new_tokens\": %d, "
                "\"b64_tokens_per_s\": %.1f, \"b64_bytes_per_step\": %.0f, \"b256_tokens_per_s\": %.1f, "
                "\"b256_bytes_per_step\": %.0f}, \"pion_per_head_step_ms\": %.2f}",
                si ? ",\n" : "", shapes[si].name, m.num_params, B, T, train_tps, train_tflops, steps, d64, bytes64,
                d256, bytes256, opt_ms);
        cuda_release(d_p);
        cuda_release(d_g);
        optim_cuda_free(oc_gpu);
        if (host) optimizer_free(host);
        free(tab), free(tok), free(w), free(logp);
        qwen_cuda_free(qc);
        qwen_model_free(&m);
        if (status) break;
    }
    fprintf(f, "\n  ]\n}\n");
    fclose(f);
    printf("wrote bench/results/cuda.json\n");
    return status;
}
