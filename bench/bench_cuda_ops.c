// Per-kernel GPU timings (issue 8) at the Qwen3-0.6B/1.7B shapes, each next to its own bound: bytes moved per
// second for the memory-bound kernels, TFLOP/s for the products and the flash attention. bench_cuda times whole
// decode steps and training passes; this says which kernel inside them misses its roofline, so the first GPU session
// can point the tuning at it.
// - decode: the cached attention (bf16 cache, 96 positions per row) and the fused qk-norm/RoPE/append at batch 64
//   and 256; sampling over the 151,936-token vocabulary, plain and top-p 0.95;
// - training: the bf16 flash attention forward and backward (4 x 512 tokens), RMSNorm with its bf16 copy, a bf16
//   projection (2,048 rows, weights from the bf16 copy, input from its shadow), the log-softmax of a logit chunk;
// - a decode-sized bf16 projection (64 rows), which reads its weights once.
// Skips (exit 0, no results file) without a CUDA build or a GPU, and on the CUDA emulator unless PIONRL_BENCH_TINY=1
// (toy shapes: checks the harness). Writes bench/results/cuda_ops.json.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cuda_ops.h"
#include "core/rng.h"
#include "core/timer.h"
#include "policy/sampler.h"

#ifdef PIONRL_CUDA
#include "policy/attention_cuda.h"
#include "policy/ops_cuda.h"
#include "policy/sampler_cuda.h"

typedef struct {
    int V, D, F, Hq, Hkv, hd, T, batch[2], ctx;
} Sizes;

// The device arrays every op reads or writes, sized for the largest use.
typedef struct {
    float *a, *b, *c, *d, *e, *logits, *W;
    void *a16, *b16, *W16, *K, *V;  // a16: a's bf16 copy (a shadow), b16: where RMSNorm writes b's
    int *slot, *pos, *tok;
    double *u;
    CudaBlas *cb;
} Arena;

// One op under timing: run(ctx) queues it once; returns 0 or -1 with err set.
typedef struct Op Op;
struct Op {
    const char *name;
    char shape[96];
    double bytes, flops;  // per call: the memory it must move at least, the arithmetic it does
    int (*run)(const Op *op, Arena *a, Error *err);
    int n, rows, cols;  // op-specific sizes
    const Sizes *s;
    SamplingParams sp;
};

static Op op_make(const char *name, double bytes, double flops, int (*run)(const Op *, Arena *, Error *), int n,
                  int rows, int cols, const Sizes *s) {
    Op op;
    memset(&op, 0, sizeof op);
    op.name = name, op.bytes = bytes, op.flops = flops, op.run = run, op.n = n, op.rows = rows, op.cols = cols,
    op.s = s;
    return op;
}

static int sync_device(Arena *a, Error *err) {
    int x;
    return cuda_to_host(&x, a->slot, sizeof x, err);  // a synchronising copy: waits for the queued work
}

// Milliseconds per call: one warm-up call, then calls until 0.2 s have passed (at least 3).
static double time_op(const Op *op, Arena *a, Error *err) {
    if (op->run(op, a, err) || sync_device(a, err)) return -1;
    int calls = 0;
    double t0 = time_now(), dt = 0;
    while (calls < 3 || dt < 0.2) {
        if (op->run(op, a, err)) return -1;
        calls++;
        if (calls % 4 == 0 || calls < 3) {
            if (sync_device(a, err)) return -1;
            dt = time_now() - t0;
        }
    }
    if (sync_device(a, err)) return -1;
    return (time_now() - t0) * 1e3 / calls;
}

static int run_attention(const Op *op, Arena *a, Error *err) {
    const Sizes *s = op->s;
    return cuda_cached_attention(a->b, NULL, a->a, a->K, a->V, 1, a->slot, a->pos, op->n, 0, op->n + 1, s->ctx + 1,
                                 s->Hq, s->Hkv, s->hd, err);
}

static int run_norm_rope_append(const Op *op, Arena *a, Error *err) {
    const Sizes *s = op->s;
    size_t KD = (size_t)s->Hkv * s->hd;
    return cuda_norm_rope_append(a->a, a->b, a->b + (size_t)op->n * KD, a->K, a->V, 1, a->c, a->c, 1e-6f, a->slot,
                                 a->pos, op->n, 0, op->n + 1, s->ctx + 1, s->Hq, s->Hkv, s->hd, 1e6, err);
}

static int run_sample(const Op *op, Arena *a, Error *err) {
    return cuda_sample_rows(a->tok, a->e, a->logits, a->u, op->n, op->s->V, op->s->V, &op->sp, err);
}

static int run_flash_forward(const Op *op, Arena *a, Error *err) {
    const Sizes *s = op->s;
    return cuda_flash_attention_forward(a->d, NULL, a->e, a->a, a->b, a->c, op->n, s->T, s->Hq, s->Hkv, s->hd, 1, err);
}

static int run_flash_backward(const Op *op, Arena *a, Error *err) {
    const Sizes *s = op->s;
    size_t nq = (size_t)op->n * s->T * s->Hq * s->hd, nk = (size_t)op->n * s->T * s->Hkv * s->hd;
    // dq, dk, dv after the inputs in arena b (the forward's q, k, v and out stay where run_flash_forward put them)
    float *dq = a->logits, *dk = dq + nq, *dv = dk + nk;
    return cuda_flash_attention_backward(dq, dk, dv, NULL, a->d, a->d, a->e, a->a, a->b, a->c, op->n, s->T, s->Hq,
                                         s->Hkv, s->hd, 1, a->logits + nq + 2 * nk, err);
}

static int run_rmsnorm(const Op *op, Arena *a, Error *err) {
    return cuda_rmsnorm_forward(a->b, a->b16, a->e, a->a, a->c, op->rows, op->n, 1e-6f, err);
}

// A bf16 projection out [rows, O] = in [rows, I] W^T with W in the registered copy and in from its shadow.
static int run_linear(const Op *op, Arena *a, Error *err) {
    return cuda_linear_forward(a->cb, a->b, a->a, a->W, NULL, op->rows, op->n, op->cols, err);
}

static int run_logsoftmax(const Op *op, Arena *a, Error *err) {
    return cuda_logsoftmax_rows(a->logits, a->tok, a->e, a->d, op->rows, op->s->V, err);
}

static void fill(float *d, size_t n, unsigned seed, float scale, Error *err, int *rc) {
    float *h = malloc(sizeof(float) * n);
    Rng rng;
    rng_seed(&rng, seed);
    for (size_t i = 0; h && i < n; i++) h[i] = scale * (float)rng_normal(&rng);
    if (!h || cuda_to_device(d, h, sizeof(float) * n, err)) *rc = -1;
    free(h);
}

int main(void) {
    char name[256];
    size_t mem = 0;
    Error err;
    if (cuda_device_probe(name, sizeof name, &mem, &err)) {
        printf("bench_cuda_ops: skipped (%s)\n", err.msg);
        return 0;
    }
    int tiny = getenv("PIONRL_BENCH_TINY") != NULL;
    if (strstr(name, "emulator") && !tiny) {
        printf("bench_cuda_ops: skipped (%s: use PIONRL_BENCH_TINY=1 to check the harness)\n", name);
        return 0;
    }
    // Qwen3-0.6B (D 1024, F 3072) and the 1.7B's projection sizes (D 2048, F 6144) share heads and vocabulary
    Sizes s = {151936, 1024, 3072, 16, 8, 128, 512, {64, 256}, 96};
    int D2 = 2048, F2 = 6144, B = 4, chunk = 883;
    if (tiny) s = (Sizes){1000, 64, 128, 4, 2, 16, 32, {8, 16}, 12}, D2 = 96, F2 = 192, B = 2, chunk = 40;
    int bmax = s.batch[1];
    size_t QD = (size_t)s.Hq * s.hd, KD = (size_t)s.Hkv * s.hd, Ntr = (size_t)B * s.T;
    size_t big = Ntr * (QD > (size_t)F2 ? QD : (size_t)F2), logit_n = (size_t)(chunk > bmax ? chunk : bmax) * s.V;
    if (logit_n < 3 * Ntr * QD + Ntr * s.Hq) logit_n = 3 * Ntr * QD + Ntr * s.Hq;  // also the flash backward's outputs
    size_t cache = (size_t)(bmax + 1) * (s.ctx + 1) * KD, W_n = (size_t)D2 * F2;
    int ntok = bmax > chunk ? bmax : chunk;  // sampled tokens, or the logit chunk's targets
    Arena a = {0};
    CudaBuf t[] = {
        {(void **)&a.a, 4 * big},
        {(void **)&a.b, 4 * big},
        {(void **)&a.c, 4 * big},
        {(void **)&a.d, 4 * big},
        {(void **)&a.e, 4 * big},
        {(void **)&a.logits, 4 * logit_n},
        {(void **)&a.W, 4 * W_n},
        {&a.a16, 2 * big},
        {&a.b16, 2 * big},
        {&a.W16, 2 * W_n},
        {&a.K, 2 * cache},
        {&a.V, 2 * cache},
        {(void **)&a.slot, 4 * (size_t)bmax},
        {(void **)&a.pos, 4 * (size_t)bmax},
        {(void **)&a.tok, 4 * (size_t)ntok},
        {(void **)&a.u, 8 * (size_t)bmax},
    };
    int nt = (int)(sizeof t / sizeof t[0]), rc = cuda_alloc_table(t, nt, &err) || cuda_blas_create(&a.cb, &err);
    if (!rc) {
        fill(a.a, big, 1, 1.0f, &err, &rc), fill(a.b, big, 2, 1.0f, &err, &rc), fill(a.c, big, 3, 1.0f, &err, &rc);
        fill(a.d, big, 4, 1.0f, &err, &rc), fill(a.logits, logit_n, 5, 3.0f, &err, &rc);
        fill(a.W, W_n, 6, 0.02f, &err, &rc);
        rc = rc || cuda_zero(a.K, 2 * cache, &err) || cuda_zero(a.V, 2 * cache, &err) ||
             cuda_round_bf16(a.W16, a.W, W_n, &err) || cuda_round_bf16(a.a16, a.a, big, &err);
        int *hs = malloc(sizeof(int) * ntok);
        double *hu = malloc(sizeof(double) * bmax);
        for (int i = 0; hs && hu && i < ntok; i++) hs[i] = i % bmax;
        for (int i = 0; hu && i < bmax; i++) hu[i] = (i + 0.5) / bmax;
        rc = rc || !hs || !hu || cuda_to_device(a.slot, hs, sizeof(int) * bmax, &err) ||
             cuda_to_device(a.tok, hs, sizeof(int) * ntok, &err) ||
             cuda_to_device(a.u, hu, sizeof(double) * bmax, &err);
        for (int i = 0; hs && i < bmax; i++) hs[i] = s.ctx;  // every row attends to ctx + 1 positions
        rc = rc || cuda_to_device(a.pos, hs, sizeof(int) * bmax, &err);
        free(hs), free(hu);
    }
    if (rc) {
        fprintf(stderr, "bench_cuda_ops: %s\n", err.msg);
        return 1;
    }
    cuda_blas_set_bf16(a.cb, 1);
    cuda_blas_set_bf16_copy(a.cb, a.W, a.W16, W_n);
    if (cuda_blas_add_shadow(a.cb, a.a, a.a16, big, &err)) return 1;

    Op ops[32];
    int n = 0;
    double kv_row = 2.0 * KD * 2;  // one cached position's K and V rows, bf16
    for (int bi = 0; bi < 2; bi++) {
        int b = s.batch[bi];
        ops[n++] = op_make("decode_attention", b * ((s.ctx + 1) * kv_row + 8.0 * QD), 4.0 * b * (s.ctx + 1) * QD,
                           run_attention, b, 0, 0, &s);
        snprintf(ops[n - 1].shape, sizeof ops[0].shape, "batch %d, %d positions, bf16 cache", b, s.ctx + 1);
        ops[n++] =
            op_make("norm_rope_append", b * (8.0 * QD + 8.0 * KD + 2.0 * KD * 2), 0, run_norm_rope_append, b, 0, 0, &s);
        snprintf(ops[n - 1].shape, sizeof ops[0].shape, "batch %d", b);
        Op plain = op_make("sample_plain", 4.0 * b * s.V, 0, run_sample, b, 0, 0, &s);
        plain.sp = (SamplingParams){1.0f, 0, 1.0f, 0.0f};
        Op nucleus = plain;
        nucleus.name = "sample_top_p_0.95", nucleus.sp.top_p = 0.95f;
        ops[n++] = plain;
        snprintf(ops[n - 1].shape, sizeof ops[0].shape, "batch %d x %d logits (bytes: one pass)", b, s.V);
        ops[n++] = nucleus;
        snprintf(ops[n - 1].shape, sizeof ops[0].shape, "batch %d x %d logits (bytes: one pass)", b, s.V);
    }
    double causal = 2.0 * B * s.Hq * ((double)s.T * (s.T + 1) / 2) * s.hd;  // one product over the causal half
    ops[n++] = op_make("flash_forward_bf16", 4.0 * Ntr * (2 * QD + 2 * KD), 2 * causal, run_flash_forward, B, 0, 0, &s);
    snprintf(ops[n - 1].shape, sizeof ops[0].shape, "%d x %d tokens, %d/%d heads of %d", B, s.T, s.Hq, s.Hkv, s.hd);
    ops[n++] =
        op_make("flash_backward_bf16", 4.0 * Ntr * (4 * QD + 4 * KD), 5 * causal, run_flash_backward, B, 0, 0, &s);
    snprintf(ops[n - 1].shape, sizeof ops[0].shape, "%d x %d tokens (5 products)", B, s.T);
    int dims[2][2] = {{s.D, s.F}, {D2, F2}};
    for (int k = 0; k < 2; k++) {
        int I = dims[k][0], O = dims[k][1];
        ops[n++] = op_make("rmsnorm_bf16", 10.0 * Ntr * I, 0, run_rmsnorm, I, (int)Ntr, 0, &s);
        snprintf(ops[n - 1].shape, sizeof ops[0].shape, "%zu x %d", Ntr, I);
        ops[n++] = op_make("linear_bf16", 2.0 * ((double)Ntr * I + (double)I * O) + 4.0 * Ntr * O, 2.0 * Ntr * I * O,
                           run_linear, I, (int)Ntr, O, &s);
        snprintf(ops[n - 1].shape, sizeof ops[0].shape, "%zu x %d -> %d", Ntr, I, O);
        ops[n++] = op_make("linear_bf16_decode", 2.0 * I * O + 2.0 * 64 * I + 4.0 * 64 * O, 2.0 * 64 * I * O,
                           run_linear, I, 64, O, &s);
        snprintf(ops[n - 1].shape, sizeof ops[0].shape, "64 x %d -> %d (weights read once)", I, O);
    }
    ops[n++] = op_make("logsoftmax_rows", 4.0 * chunk * s.V, 0, run_logsoftmax, 0, chunk, 0, &s);
    snprintf(ops[n - 1].shape, sizeof ops[0].shape, "%d x %d logits (one chunk)", chunk, s.V);

    FILE *f = fopen("bench/results/cuda_ops.json", "w");
    if (!f) {
        fprintf(stderr, "bench_cuda_ops: cannot write bench/results/cuda_ops.json (run from the repository root)\n");
        return 1;
    }
    fprintf(f, "{\n  \"benchmark\": \"cuda_ops\",\n  \"device\": \"%s\",\n  \"ops\": [\n", name);
    printf("device: %s\n", name);
    int status = 0;
    for (int i = 0; i < n; i++) {
        double ms = time_op(&ops[i], &a, &err);
        if (ms < 0) {
            fprintf(stderr, "bench_cuda_ops: %s: %s\n", ops[i].name, err.msg);
            status = 1;
            break;
        }
        double gbs = ops[i].bytes / (ms * 1e-3) / 1e9, tfs = ops[i].flops / (ms * 1e-3) / 1e12;
        printf("%-20s %-44s %9.4f ms %8.1f GB/s %7.2f TFLOP/s\n", ops[i].name, ops[i].shape, ms, gbs, tfs);
        fprintf(f, "%s    {\"op\": \"%s\", \"shape\": \"%s\", \"ms\": %.5f, \"gb_per_s\": %.1f, \"tflops\": %.3f}",
                i ? ",\n" : "", ops[i].name, ops[i].shape, ms, gbs, tfs);
    }
    fprintf(f, "\n  ]\n}\n");
    fclose(f);
    cuda_blas_free(a.cb);
    cuda_release_table(t, nt);
    if (!status) printf("wrote bench/results/cuda_ops.json\n");
    return status;
}

#else

int main(void) {
    printf("bench_cuda_ops: skipped (this pionrl was built without CUDA)\n");
    return 0;
}

#endif
