// CPU-vs-CUDA tests of the fp32 model ops (src/policy/ops_cuda.h against src/policy/ops.h): linear forward/backward
// (with bias, accumulating), RMSNorm, RoPE, SwiGLU, causal GQA attention forward/backward and the row
// log-softmax/entropy, on odd sizes.
// Skips in a CPU-only build and without a GPU. Tolerance: max |gpu - cpu| <= 1e-4 (GEMMs: 1e-4 relative to the largest
// value) — the same fp32 formulas, other summation orders.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/cuda_ops.h"
#include "policy/ops.h"
#include "test.h"
#include "test_gpu.h"

#ifdef PIONRL_CUDA
#include "policy/ops_cuda.h"

static void fill(float *x, size_t n, unsigned seed, float scale) {
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = scale * ((float)(seed >> 8) / 16777216.0f - 0.5f);
    }
}

// Device copy of a host array (NULL, with the test failed, on error).
static void *dev(const void *host, size_t bytes) {
    void *d = NULL;
    Error err;
    if (cuda_alloc(&d, bytes, &err) || cuda_to_device(d, host, bytes, &err)) {
        test_fail_at(__FILE__, __LINE__, "%s", err.msg);
        cuda_release(d);
        return NULL;
    }
    return d;
}

// max |host - device copy| relative to max(1, max |host|) when rel is set.
static double diff(const float *host, const float *d, size_t n, int rel) {
    float *back = malloc(n * sizeof(float));
    Error err;
    double worst = INFINITY, big = 1.0;
    if (back && cuda_to_host(back, d, n * sizeof(float), &err) == 0) {
        worst = 0;
        for (size_t i = 0; i < n; i++) {
            worst = fmax(worst, fabs((double)host[i] - back[i]));
            big = fmax(big, fabs(host[i]));
        }
    }
    free(back);
    return rel ? worst / big : worst;
}
#endif

static void test_linear(void) {
    if (!test_gpu_ready()) return;
#ifdef PIONRL_CUDA
    int N = 37, I = 48, O = 40;
    float *in = malloc(sizeof(float) * N * I), *W = malloc(sizeof(float) * O * I), *b = malloc(sizeof(float) * O);
    float *out = malloc(sizeof(float) * N * O), *dout = malloc(sizeof(float) * N * O);
    float *din = malloc(sizeof(float) * N * I), *dW = malloc(sizeof(float) * O * I), *db = malloc(sizeof(float) * O);
    fill(in, (size_t)N * I, 1, 1), fill(W, (size_t)O * I, 2, 1), fill(b, O, 3, 1), fill(dout, (size_t)N * O, 4, 1);
    fill(din, (size_t)N * I, 5, 1), fill(dW, (size_t)O * I, 6, 1), fill(db, O, 7, 1);  // accumulated into
    float *d_in = dev(in, sizeof(float) * N * I), *d_W = dev(W, sizeof(float) * O * I),
          *d_b = dev(b, sizeof(float) * O);
    float *d_out = dev(out, sizeof(float) * N * O), *d_dout = dev(dout, sizeof(float) * N * O);
    float *d_din = dev(din, sizeof(float) * N * I), *d_dW = dev(dW, sizeof(float) * O * I),
          *d_db = dev(db, sizeof(float) * O);
    CudaBlas *cb = NULL;
    Error err;
    CHECK_MSG(cuda_blas_create(&cb, &err) == 0, "%s", err.msg);
    linear_forward(out, in, W, b, N, I, O, 0);
    linear_backward(din, 1, dW, db, dout, in, W, N, I, O, 0);
    CHECK_MSG(cuda_linear_forward(cb, d_out, d_in, d_W, d_b, N, I, O, &err) == 0, "%s", err.msg);
    CHECK_MSG(cuda_linear_backward(cb, d_din, 1, d_dW, d_db, d_dout, d_in, d_W, N, I, O, &err) == 0, "%s", err.msg);
    double e1 = diff(out, d_out, (size_t)N * O, 1), e2 = diff(din, d_din, (size_t)N * I, 1);
    double e3 = diff(dW, d_dW, (size_t)O * I, 1), e4 = diff(db, d_db, O, 1);
    CHECK_MSG(e1 <= 1e-4 && e2 <= 1e-4 && e3 <= 1e-4 && e4 <= 1e-4, "out %g din %g dW %g db %g", e1, e2, e3, e4);
    cuda_blas_free(cb);
    void *d[] = {d_in, d_W, d_b, d_out, d_dout, d_din, d_dW, d_db};
    for (int i = 0; i < 8; i++) cuda_release(d[i]);
    free(in), free(W), free(b), free(out), free(dout), free(din), free(dW), free(db);
#endif
}

static void test_rmsnorm(void) {
    if (!test_gpu_ready()) return;
#ifdef PIONRL_CUDA
    int N = 19, C = 300;
    size_t n = (size_t)N * C;
    float *x = malloc(sizeof(float) * n), *w = malloc(sizeof(float) * C), *y = malloc(sizeof(float) * n);
    float *rstd = malloc(sizeof(float) * N), *dy = malloc(sizeof(float) * n), *dx = malloc(sizeof(float) * n);
    float *dw = malloc(sizeof(float) * C);
    fill(x, n, 1, 2), fill(w, C, 2, 1), fill(dy, n, 3, 1), fill(dx, n, 4, 1), fill(dw, C, 5, 1);
    float *d_x = dev(x, sizeof(float) * n), *d_w = dev(w, sizeof(float) * C), *d_y = dev(y, sizeof(float) * n);
    float *d_rstd = dev(rstd, sizeof(float) * N), *d_dy = dev(dy, sizeof(float) * n),
          *d_dx = dev(dx, sizeof(float) * n);
    float *d_dw = dev(dw, sizeof(float) * C);
    Error err;
    rmsnorm_forward(y, rstd, x, w, N, C, 1e-6f);
    rmsnorm_backward(dx, 1, dw, dy, x, w, rstd, N, C);
    CHECK_MSG(cuda_rmsnorm_forward(d_y, d_rstd, d_x, d_w, N, C, 1e-6f, &err) == 0, "%s", err.msg);
    CHECK_MSG(cuda_rmsnorm_backward(d_dx, 1, d_dw, d_dy, d_x, d_w, d_rstd, N, C, &err) == 0, "%s", err.msg);
    double e1 = diff(y, d_y, n, 0), e2 = diff(rstd, d_rstd, N, 1), e3 = diff(dx, d_dx, n, 0), e4 = diff(dw, d_dw, C, 1);
    CHECK_MSG(e1 <= 1e-5 && e2 <= 1e-6 && e3 <= 1e-5 && e4 <= 1e-5, "y %g rstd %g dx %g dw %g", e1, e2, e3, e4);
    void *d[] = {d_x, d_w, d_y, d_rstd, d_dy, d_dx, d_dw};
    for (int i = 0; i < 7; i++) cuda_release(d[i]);
    free(x), free(w), free(y), free(rstd), free(dy), free(dx), free(dw);
#endif
}

static void test_rope(void) {
    if (!test_gpu_ready()) return;
#ifdef PIONRL_CUDA
    int N = 23, H = 3, hd = 64;
    size_t n = (size_t)N * H * hd;
    int pos[23];
    for (int i = 0; i < N; i++) pos[i] = (i * 37) % 4001;  // positions up to 4000: fp32 angle rounding matters
    float *x = malloc(sizeof(float) * n), *g = malloc(sizeof(float) * n);
    fill(x, n, 1, 1), fill(g, n, 2, 1);
    float *d_x = dev(x, sizeof(float) * n), *d_g = dev(g, sizeof(float) * n);
    int *d_pos = dev(pos, sizeof pos);
    Error err;
    rope_forward(x, pos, N, H, hd, 1e6);
    rope_backward(g, pos, N, H, hd, 1e6);
    CHECK_MSG(cuda_rope_forward(d_x, d_pos, N, H, hd, 1e6, &err) == 0, "%s", err.msg);
    CHECK_MSG(cuda_rope_backward(d_g, d_pos, N, H, hd, 1e6, &err) == 0, "%s", err.msg);
    double e1 = diff(x, d_x, n, 0), e2 = diff(g, d_g, n, 0);
    CHECK_MSG(e1 <= 1e-5 && e2 <= 1e-5, "forward %g backward %g", e1, e2);
    cuda_release(d_x), cuda_release(d_g), cuda_release(d_pos);
    free(x), free(g);
#endif
}

static void test_swiglu(void) {
    if (!test_gpu_ready()) return;
#ifdef PIONRL_CUDA
    long n = 1000;
    float *g = malloc(sizeof(float) * n), *u = malloc(sizeof(float) * n), *h = malloc(sizeof(float) * n);
    float *dh = malloc(sizeof(float) * n), *dg = malloc(sizeof(float) * n), *du = malloc(sizeof(float) * n);
    fill(g, n, 1, 16), fill(u, n, 2, 2), fill(dh, n, 3, 1);
    float *d_g = dev(g, sizeof(float) * n), *d_u = dev(u, sizeof(float) * n), *d_h = dev(h, sizeof(float) * n);
    float *d_dh = dev(dh, sizeof(float) * n), *d_dg = dev(dg, sizeof(float) * n), *d_du = dev(du, sizeof(float) * n);
    Error err;
    swiglu_forward(h, g, u, n);
    swiglu_backward(dg, du, dh, g, u, n);
    CHECK_MSG(cuda_swiglu_forward(d_h, d_g, d_u, n, &err) == 0, "%s", err.msg);
    CHECK_MSG(cuda_swiglu_backward(d_dg, d_du, d_dh, d_g, d_u, n, &err) == 0, "%s", err.msg);
    double e1 = diff(h, d_h, n, 0), e2 = diff(dg, d_dg, n, 0), e3 = diff(du, d_du, n, 0);
    CHECK_MSG(e1 <= 1e-5 && e2 <= 1e-5 && e3 <= 1e-5, "h %g dg %g du %g", e1, e2, e3);
    void *d[] = {d_g, d_u, d_h, d_dh, d_dg, d_du};
    for (int i = 0; i < 6; i++) cuda_release(d[i]);
    free(g), free(u), free(h), free(dh), free(dg), free(du);
#endif
}

static void test_attention(void) {
    if (!test_gpu_ready()) return;
#ifdef PIONRL_CUDA
    int B = 2, T = 33, Hq = 4, Hkv = 2, hd = 16;
    size_t nq = (size_t)B * T * Hq * hd, nk = (size_t)B * T * Hkv * hd, np = (size_t)B * Hq * T * T;
    float *q = malloc(sizeof(float) * nq), *k = malloc(sizeof(float) * nk), *v = malloc(sizeof(float) * nk);
    float *out = malloc(sizeof(float) * nq), *probs = malloc(sizeof(float) * np), *dout = malloc(sizeof(float) * nq);
    float *dq = malloc(sizeof(float) * nq), *dk = malloc(sizeof(float) * nk), *dv = malloc(sizeof(float) * nk);
    fill(q, nq, 1, 2), fill(k, nk, 2, 2), fill(v, nk, 3, 1), fill(dout, nq, 4, 1);
    float *d_q = dev(q, sizeof(float) * nq), *d_k = dev(k, sizeof(float) * nk), *d_v = dev(v, sizeof(float) * nk);
    float *d_out = dev(out, sizeof(float) * nq), *d_probs = dev(probs, sizeof(float) * np);
    float *d_dout = dev(dout, sizeof(float) * nq), *d_dq = dev(dq, sizeof(float) * nq);
    float *d_dk = dev(dk, sizeof(float) * nk), *d_dv = dev(dv, sizeof(float) * nk);
    CudaBlas *cb = NULL;
    Error err;
    CHECK_MSG(cuda_blas_create(&cb, &err) == 0, "%s", err.msg);
    attention_forward(out, probs, q, k, v, B, T, Hq, Hkv, hd, 0);
    float *work = malloc(sizeof(float) * T * T);
    attention_backward(dq, dk, dv, dout, probs, q, k, v, B, T, Hq, Hkv, hd, 0, work, 1);
    free(work);
    CHECK_MSG(cuda_attention_forward(cb, d_out, d_probs, d_q, d_k, d_v, B, T, Hq, Hkv, hd, &err) == 0, "%s", err.msg);
    CHECK_MSG(
        cuda_attention_backward(cb, d_dq, d_dk, d_dv, d_dout, d_probs, d_q, d_k, d_v, B, T, Hq, Hkv, hd, &err) == 0,
        "%s", err.msg);
    double e1 = diff(out, d_out, nq, 0), e2 = diff(probs, d_probs, np, 0), e3 = diff(dq, d_dq, nq, 0);
    double e4 = diff(dk, d_dk, nk, 0), e5 = diff(dv, d_dv, nk, 0);
    CHECK_MSG(e1 <= 1e-5 && e2 <= 1e-5 && e3 <= 1e-5 && e4 <= 1e-5 && e5 <= 1e-5, "out %g probs %g dq %g dk %g dv %g",
              e1, e2, e3, e4, e5);
    cuda_blas_free(cb);
    void *d[] = {d_q, d_k, d_v, d_out, d_probs, d_dout, d_dq, d_dk, d_dv};
    for (int i = 0; i < 9; i++) cuda_release(d[i]);
    free(q), free(k), free(v), free(out), free(probs), free(dout), free(dq), free(dk), free(dv);
#endif
}

static void test_logsoftmax_rows(void) {
    if (!test_gpu_ready()) return;
#ifdef PIONRL_CUDA
    int N = 7, V = 5003;
    float *logits = malloc(sizeof(float) * N * V), logp[7], ent[7];
    int target[7];
    fill(logits, (size_t)N * V, 1, 20);
    for (int r = 0; r < N; r++) target[r] = (r * 977) % V;
    float *d_logits = dev(logits, sizeof(float) * N * V), *d_logp = dev(logp, sizeof logp),
          *d_ent = dev(ent, sizeof ent);
    int *d_target = dev(target, sizeof target);
    for (int r = 0; r < N; r++) logp[r] = logsoftmax_row(logits + (size_t)r * V, V, target[r], &ent[r], NULL);
    Error err;
    CHECK_MSG(cuda_logsoftmax_rows(d_logits, d_target, d_logp, d_ent, N, V, &err) == 0, "%s", err.msg);
    double e1 = diff(logp, d_logp, N, 0), e2 = diff(ent, d_ent, N, 0);
    CHECK_MSG(e1 <= 1e-4 && e2 <= 1e-4, "logp %g entropy %g", e1, e2);
    cuda_release(d_logits), cuda_release(d_logp), cuda_release(d_ent), cuda_release(d_target);
    free(logits);
#endif
}

int main(void) {
    RUN(test_linear);
    RUN(test_rmsnorm);
    RUN(test_rope);
    RUN(test_swiglu);
    RUN(test_attention);
    RUN(test_logsoftmax_rows);
    return test_summary("test_cuda_ops");
}
