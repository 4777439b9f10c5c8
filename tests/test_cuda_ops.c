// CPU-vs-CUDA tests of the fp32 model ops (src/policy/ops_cuda.h against src/policy/ops.h): linear forward/backward
// (with bias, accumulating), RMSNorm, RoPE, SwiGLU and the row
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
#include "core/bf16.h"
#include "policy/ops_cuda.h"
#endif

static void test_linear(void) {
    if (!test_gpu_ready()) return;
#ifdef PIONRL_CUDA
    int N = 37, I = 48, O = 40;
    float *in = malloc(sizeof(float) * N * I), *W = malloc(sizeof(float) * O * I), *b = malloc(sizeof(float) * O);
    float *out = malloc(sizeof(float) * N * O), *dout = malloc(sizeof(float) * N * O);
    float *din = malloc(sizeof(float) * N * I), *dW = malloc(sizeof(float) * O * I), *db = malloc(sizeof(float) * O);
    test_fill(in, (size_t)N * I, 1, 1), test_fill(W, (size_t)O * I, 2, 1), test_fill(b, O, 3, 1),
        test_fill(dout, (size_t)N * O, 4, 1);
    test_fill(din, (size_t)N * I, 5, 1), test_fill(dW, (size_t)O * I, 6, 1),
        test_fill(db, O, 7, 1);  // accumulated into
    float *d_in = test_dev(in, sizeof(float) * N * I), *d_W = test_dev(W, sizeof(float) * O * I),
          *d_b = test_dev(b, sizeof(float) * O);
    float *d_out = test_dev(out, sizeof(float) * N * O), *d_dout = test_dev(dout, sizeof(float) * N * O);
    float *d_din = test_dev(din, sizeof(float) * N * I), *d_dW = test_dev(dW, sizeof(float) * O * I),
          *d_db = test_dev(db, sizeof(float) * O);
    CudaBlas *cb = NULL;
    Error err;
    CHECK_MSG(cuda_blas_create(&cb, &err) == 0, "%s", err.msg);
    linear_forward(out, in, W, b, N, I, O, 0);
    linear_backward(din, 1, dW, db, dout, in, W, N, I, O, 0);
    CHECK_MSG(cuda_linear_forward(cb, d_out, d_in, d_W, d_b, N, I, O, &err) == 0, "%s", err.msg);
    CHECK_MSG(cuda_linear_backward(cb, d_din, 1, d_dW, d_db, d_dout, d_in, d_W, N, I, O, &err) == 0, "%s", err.msg);
    double e1 = test_dev_diff(out, d_out, (size_t)N * O, 1), e2 = test_dev_diff(din, d_din, (size_t)N * I, 1);
    double e3 = test_dev_diff(dW, d_dW, (size_t)O * I, 1), e4 = test_dev_diff(db, d_db, O, 1);
    CHECK_MSG(e1 <= 1e-4 && e2 <= 1e-4 && e3 <= 1e-4 && e4 <= 1e-4, "out %g din %g dW %g db %g", e1, e2, e3, e4);
    cuda_blas_free(cb);
    void *d[] = {d_in, d_W, d_b, d_out, d_dout, d_din, d_dW, d_db};
    for (int i = 0; i < 8; i++) cuda_release(d[i]);
    free(in), free(W), free(b), free(out), free(dout), free(din), free(dW), free(db);
#endif
}

// bf16 mode against the CPU's bf16 products (ops.h with bf16 = 1: the same rounded inputs, fp32 sums), with the
// activations rounded per call and the weight read from a registered bf16 copy, also at an offset inside it (rows
// 3.. of W, the layout of one layer's slice of the parameter buffer). Bound 1e-4 of the largest value (measured 0 on
// the emulator; tensor cores sum in another order); and the results must be farther than that from fp32 products.
static void test_linear_bf16(void) {
    if (!test_gpu_ready()) return;
#ifdef PIONRL_CUDA
    int N = 37, I = 48, O = 40, O2 = O - 3;
    float *in = malloc(sizeof(float) * N * I), *W = malloc(sizeof(float) * O * I), *b = malloc(sizeof(float) * O);
    float *out = malloc(sizeof(float) * N * O), *out32 = malloc(sizeof(float) * N * O);
    float *dout = malloc(sizeof(float) * N * O), *din = malloc(sizeof(float) * N * I);
    float *dW = calloc((size_t)O * I, sizeof(float));
    test_fill(in, (size_t)N * I, 11, 1), test_fill(W, (size_t)O * I, 12, 1), test_fill(b, O, 13, 1),
        test_fill(dout, (size_t)N * O, 14, 1);
    float *d_in = test_dev(in, sizeof(float) * N * I), *d_W = test_dev(W, sizeof(float) * O * I),
          *d_b = test_dev(b, sizeof(float) * O);
    float *d_out = test_dev(out, sizeof(float) * N * O), *d_dout = test_dev(dout, sizeof(float) * N * O);
    float *d_din = test_dev(din, sizeof(float) * N * I), *d_dW = test_dev(dW, sizeof(float) * O * I);
    void *d_W16 = NULL;
    CudaBlas *cb = NULL;
    Error err;
    CHECK_MSG(cuda_blas_create(&cb, &err) == 0 && cuda_alloc(&d_W16, 2 * (size_t)O * I, &err) == 0, "%s", err.msg);
    cuda_blas_set_bf16(cb, 1);
    for (int copy = 0; copy < 2 && test_state.state == 0; copy++) {
        if (copy) {
            CHECK_MSG(cuda_round_bf16(d_W16, d_W, (size_t)O * I, &err) == 0, "%s", err.msg);
            cuda_blas_set_bf16_copy(cb, d_W, d_W16, (size_t)O * I);
        }
        linear_forward(out, in, W, b, N, I, O, 1);
        linear_forward(out32, in, W, b, N, I, O, 0);
        memset(dW, 0, sizeof(float) * O * I);
        linear_backward(din, 0, dW, NULL, dout, in, W, N, I, O, 1);
        CHECK_MSG(cuda_zero(d_dW, sizeof(float) * O * I, &err) == 0 &&
                      cuda_linear_forward(cb, d_out, d_in, d_W, d_b, N, I, O, &err) == 0 &&
                      cuda_linear_backward(cb, d_din, 0, d_dW, NULL, d_dout, d_in, d_W, N, I, O, &err) == 0,
                  "%s", err.msg);
        double e1 = test_dev_diff(out, d_out, (size_t)N * O, 1), e2 = test_dev_diff(din, d_din, (size_t)N * I, 1);
        double e3 = test_dev_diff(dW, d_dW, (size_t)O * I, 1), e32 = test_dev_diff(out32, d_out, (size_t)N * O, 1);
        CHECK_MSG(e1 <= 1e-4 && e2 <= 1e-4 && e3 <= 1e-4, "copy %d: out %g din %g dW %g", copy, e1, e2, e3);
        CHECK_MSG(e32 > 1e-3, "copy %d: bf16 output only %g from the fp32 products", copy, e32);
        // rows 3.. of W: an operand that starts inside the registered copy
        linear_forward(out, in, W + 3 * I, NULL, N, I, O2, 1);
        CHECK_MSG(cuda_linear_forward(cb, d_out, d_in, d_W + 3 * I, NULL, N, I, O2, &err) == 0, "%s", err.msg);
        e1 = test_dev_diff(out, d_out, (size_t)N * O2, 1);
        CHECK_MSG(e1 <= 1e-4, "copy %d, rows 3..: out %g", copy, e1);
    }
    // reuse: three projections of one input (q, k, v) with the weights from the copy round the input once, and give
    // the products of separate calls
    if (test_state.state == 0) {
        unsigned long r0 = cuda_blas_roundings(cb);
        cuda_blas_reuse_operands(cb, 1);
        for (int p = 0; p < 3; p++) {
            CHECK_MSG(cuda_linear_forward(cb, d_out, d_in, d_W + p * 10 * I, NULL, N, I, 10, &err) == 0, "%s", err.msg);
            linear_forward(out, in, W + p * 10 * I, NULL, N, I, 10, 1);
            double e = test_dev_diff(out, d_out, (size_t)N * 10, 1);
            CHECK_MSG(e <= 1e-4, "reused operand, projection %d: out %g", p, e);
        }
        cuda_blas_reuse_operands(cb, 0);
        unsigned long rounded = cuda_blas_roundings(cb) - r0;
        CHECK_MSG(rounded == 1, "the input was rounded %lu times for three projections", rounded);
    }
    // the copy is what is read: a stale copy (W changed, copy not remade) gives the old product
    if (test_state.state == 0) {
        float *W2 = malloc(sizeof(float) * O * I);
        for (int i = 0; i < O * I; i++) W2[i] = 2 * W[i];
        CHECK(cuda_to_device(d_W, W2, sizeof(float) * O * I, &err) == 0 &&
              cuda_linear_forward(cb, d_out, d_in, d_W, NULL, N, I, O, &err) == 0);
        linear_forward(out, in, W, NULL, N, I, O, 1);
        CHECK_MSG(test_dev_diff(out, d_out, (size_t)N * O, 1) <= 1e-4, "the registered copy was not used");
        free(W2);
    }
    cuda_blas_free(cb);
    void *d[] = {d_in, d_W, d_b, d_out, d_dout, d_din, d_dW, d_W16};
    for (int i = 0; i < 8; i++) cuda_release(d[i]);
    free(in), free(W), free(b), free(out), free(out32), free(dout), free(din), free(dW);
#endif
}

// Two projections of one input whose weights lie a fixed distance apart (the decode step's k/v and gate/up), with
// biases, in one batched call: fp32 against the CPU to 1e-4, bf16 against the CPU's bf16 products to 1e-4 of the
// largest value with the weights read from the copy (one strided-batched product) and without a copy (one product per
// entry), and with the input read from a registered shadow: no rounding at all, and a stale shadow is what is read.
static void test_linear_batched(void) {
    if (!test_gpu_ready()) return;
#ifdef PIONRL_CUDA
    enum { N = 13, I = 40, O = 24, STRIDE = 3 * O * I, WN = STRIDE + O * I, BS = 50 };
    float *in = malloc(sizeof(float) * N * I), *W = malloc(sizeof(float) * WN), *b = malloc(sizeof(float) * (BS + O));
    float *ref = malloc(sizeof(float) * 2 * N * O);
    test_fill(in, (size_t)N * I, 21, 1), test_fill(W, WN, 22, 1), test_fill(b, BS + O, 23, 1);
    float *d_in = test_dev(in, sizeof(float) * N * I), *d_W = test_dev(W, sizeof(float) * WN);
    float *d_b = test_dev(b, sizeof(float) * (BS + O)), *d_out = test_dev(ref, sizeof(float) * 2 * N * O);
    void *d_W16 = NULL, *d_in16 = NULL;
    CudaBlas *cb = NULL;
    Error err;
    CHECK_MSG(cuda_blas_create(&cb, &err) == 0 && cuda_alloc(&d_W16, 2 * (size_t)WN, &err) == 0 &&
                  cuda_alloc(&d_in16, 2 * (size_t)N * I, &err) == 0,
              "%s", err.msg);
    // mode 0 fp32, 1 bf16 without a copy, 2 bf16 with the copy, 3 bf16 with the copy and the input's shadow
    for (int mode = 0; mode < 4 && test_state.state == 0; mode++) {
        cuda_blas_set_bf16(cb, mode > 0);
        if (mode == 2) {
            CHECK_MSG(cuda_round_bf16(d_W16, d_W, WN, &err) == 0, "%s", err.msg);
            cuda_blas_set_bf16_copy(cb, d_W, d_W16, WN);
        }
        if (mode == 3)
            CHECK_MSG(cuda_round_bf16(d_in16, d_in, (size_t)N * I, &err) == 0 &&
                          cuda_blas_add_shadow(cb, d_in, d_in16, (size_t)N * I, &err) == 0,
                      "%s", err.msg);
        for (int j = 0; j < 2; j++)
            linear_forward(ref + (size_t)j * N * O, in, W + (size_t)j * STRIDE, b + j * BS, N, I, O, mode > 0);
        unsigned long r0 = cuda_blas_roundings(cb);
        CHECK_MSG(
            cuda_linear_forward_batched(cb, d_out, (size_t)N * O, d_in, d_W, STRIDE, d_b, BS, 2, N, I, O, &err) == 0,
            "mode %d: %s", mode, err.msg);
        unsigned long rounded = cuda_blas_roundings(cb) - r0;
        double e = test_dev_diff(ref, d_out, (size_t)2 * N * O, 1);
        CHECK_MSG(e <= 1e-4, "mode %d: %g", mode, e);
        // the input is rounded once for both products with the copy, never with its shadow
        if (mode >= 2) CHECK_MSG(rounded == (mode == 2 ? 1u : 0u), "mode %d: %lu roundings", mode, rounded);
    }
    if (test_state.state == 0) {  // a stale shadow (the input doubled, the shadow not remade) gives the old product
        float *in2 = malloc(sizeof(float) * N * I);
        for (int i = 0; i < N * I; i++) in2[i] = 2 * in[i];
        CHECK(cuda_to_device(d_in, in2, sizeof(float) * N * I, &err) == 0 &&
              cuda_linear_forward_batched(cb, d_out, (size_t)N * O, d_in, d_W, STRIDE, d_b, BS, 2, N, I, O, &err) == 0);
        CHECK_MSG(test_dev_diff(ref, d_out, (size_t)2 * N * O, 1) <= 1e-4, "the shadow was not read");
        cuda_blas_clear_shadows(cb);  // now the input is rounded again: the doubled products
        CHECK(cuda_linear_forward_batched(cb, d_out, (size_t)N * O, d_in, d_W, STRIDE, d_b, BS, 2, N, I, O, &err) == 0);
        for (int j = 0; j < 2; j++)
            linear_forward(ref + (size_t)j * N * O, in2, W + (size_t)j * STRIDE, b + j * BS, N, I, O, 1);
        CHECK_MSG(test_dev_diff(ref, d_out, (size_t)2 * N * O, 1) <= 1e-4, "a cleared shadow was still read");
        free(in2);
    }
    for (int i = 0; i < CUDA_BLAS_SHADOWS; i++) CHECK(cuda_blas_add_shadow(cb, d_in, d_in16, 1, &err) == 0);
    CHECK(cuda_blas_add_shadow(cb, d_in, d_in16, 1, &err) == -1 && strstr(err.msg, "shadows") != NULL);
    CHECK(cuda_linear_forward_batched(cb, d_out, 0, d_in, d_W, 0, NULL, 0, 0, N, I, O, &err) == -1);
    cuda_blas_free(cb);
    void *d[] = {d_in, d_W, d_b, d_out, d_W16, d_in16};
    for (int i = 0; i < 6; i++) cuda_release(d[i]);
    free(in), free(W), free(b), free(ref);
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
    test_fill(x, n, 1, 2), test_fill(w, C, 2, 1), test_fill(dy, n, 3, 1), test_fill(dx, n, 4, 1),
        test_fill(dw, C, 5, 1);
    float *d_x = test_dev(x, sizeof(float) * n), *d_w = test_dev(w, sizeof(float) * C),
          *d_y = test_dev(y, sizeof(float) * n);
    float *d_rstd = test_dev(rstd, sizeof(float) * N), *d_dy = test_dev(dy, sizeof(float) * n),
          *d_dx = test_dev(dx, sizeof(float) * n);
    float *d_dw = test_dev(dw, sizeof(float) * C);
    Error err;
    rmsnorm_forward(y, rstd, x, w, N, C, 1e-6f);
    rmsnorm_backward(dx, 1, dw, dy, x, w, rstd, N, C);
    CHECK_MSG(cuda_rmsnorm_forward(d_y, NULL, d_rstd, d_x, d_w, N, C, 1e-6f, &err) == 0, "%s", err.msg);
    CHECK_MSG(cuda_rmsnorm_backward(d_dx, NULL, d_dx, d_dw, d_dy, d_x, d_w, d_rstd, N, C, &err) == 0, "%s", err.msg);
    double e1 = test_dev_diff(y, d_y, n, 0), e2 = test_dev_diff(rstd, d_rstd, N, 1), e3 = test_dev_diff(dx, d_dx, n, 0),
           e4 = test_dev_diff(dw, d_dw, C, 1);
    CHECK_MSG(e1 <= 1e-5 && e2 <= 1e-6 && e3 <= 1e-5 && e4 <= 1e-5, "y %g rstd %g dx %g dw %g", e1, e2, e3, e4);
    // with a bf16 shadow: the same y, and the shadow its exact rounding
    void *d_y16 = NULL;
    CHECK_MSG(cuda_alloc(&d_y16, 2 * n, &err) == 0 &&
                  cuda_rmsnorm_forward(d_y, d_y16, d_rstd, d_x, d_w, N, C, 1e-6f, &err) == 0,
              "%s", err.msg);
    CHECK(test_dev_diff(y, d_y, n, 0) <= 1e-5 && test_dev_shadow_ok(d_y, d_y16, n));
    // the backward's dx with its bf16 copy: accumulating once more from the same start as the CPU
    rmsnorm_backward(dx, 1, dw, dy, x, w, rstd, N, C);
    CHECK_MSG(cuda_rmsnorm_backward(d_dx, d_y16, d_dx, d_dw, d_dy, d_x, d_w, d_rstd, N, C, &err) == 0, "%s", err.msg);
    CHECK(test_dev_diff(dx, d_dx, n, 0) <= 2e-5 && test_dev_diff(dw, d_dw, C, 1) <= 2e-5);
    CHECK(test_dev_shadow_ok(d_dx, d_y16, n));
    // from another array: dx <- dx_in + the gradient (here dx_in = y, the forward's output)
    float *dx2 = malloc(sizeof(float) * n), *g0 = calloc(n, sizeof(float)), *dw0 = calloc(C, sizeof(float));
    rmsnorm_backward(g0, 0, dw0, dy, x, w, rstd, N, C);  // the gradient alone
    for (size_t i = 0; i < n; i++) dx2[i] = y[i] + g0[i];
    CHECK_MSG(cuda_rmsnorm_backward(d_dx, NULL, d_y, d_dw, d_dy, d_x, d_w, d_rstd, N, C, &err) == 0, "%s", err.msg);
    CHECK(test_dev_diff(dx2, d_dx, n, 0) <= 1e-5);
    free(dx2), free(g0), free(dw0);
    void *d[] = {d_x, d_w, d_y, d_rstd, d_dy, d_dx, d_dw, d_y16};
    for (int i = 0; i < 8; i++) cuda_release(d[i]);
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
    test_fill(x, n, 1, 1), test_fill(g, n, 2, 1);
    float *d_x = test_dev(x, sizeof(float) * n), *d_g = test_dev(g, sizeof(float) * n);
    int *d_pos = test_dev(pos, sizeof pos);
    Error err;
    rope_forward(x, pos, N, H, hd, 1e6);
    rope_backward(g, pos, N, H, hd, 1e6);
    CHECK_MSG(cuda_rope_forward(d_x, d_pos, N, H, hd, 1e6, &err) == 0, "%s", err.msg);
    CHECK_MSG(cuda_rope_backward(d_g, d_pos, N, H, hd, 1e6, &err) == 0, "%s", err.msg);
    double e1 = test_dev_diff(x, d_x, n, 0), e2 = test_dev_diff(g, d_g, n, 0);
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
    test_fill(g, n, 1, 16), test_fill(u, n, 2, 2), test_fill(dh, n, 3, 1);
    float *d_g = test_dev(g, sizeof(float) * n), *d_u = test_dev(u, sizeof(float) * n),
          *d_h = test_dev(h, sizeof(float) * n);
    float *d_dh = test_dev(dh, sizeof(float) * n), *d_dg = test_dev(dg, sizeof(float) * n),
          *d_du = test_dev(du, sizeof(float) * n);
    Error err;
    swiglu_forward(h, g, u, n);
    swiglu_backward(dg, du, dh, g, u, n);
    CHECK_MSG(cuda_swiglu_forward(d_h, NULL, d_g, d_u, n, &err) == 0, "%s", err.msg);
    CHECK_MSG(cuda_swiglu_backward(d_dg, d_du, NULL, NULL, d_dh, d_g, d_u, n, &err) == 0, "%s", err.msg);
    double e1 = test_dev_diff(h, d_h, n, 0), e2 = test_dev_diff(dg, d_dg, n, 0), e3 = test_dev_diff(du, d_du, n, 0);
    CHECK_MSG(e1 <= 1e-5 && e2 <= 1e-5 && e3 <= 1e-5, "h %g dg %g du %g", e1, e2, e3);
    void *d_h16 = NULL;
    CHECK_MSG(cuda_alloc(&d_h16, 2 * (size_t)n, &err) == 0 && cuda_swiglu_forward(d_h, d_h16, d_g, d_u, n, &err) == 0,
              "%s", err.msg);
    CHECK(test_dev_diff(h, d_h, n, 0) <= 1e-5 && test_dev_shadow_ok(d_h, d_h16, n));
    void *d_dg16 = NULL, *d_du16 = NULL;
    CHECK_MSG(cuda_alloc(&d_dg16, 2 * (size_t)n, &err) == 0 && cuda_alloc(&d_du16, 2 * (size_t)n, &err) == 0 &&
                  cuda_swiglu_backward(d_dg, d_du, d_dg16, d_du16, d_dh, d_g, d_u, n, &err) == 0,
              "%s", err.msg);
    CHECK(test_dev_diff(dg, d_dg, n, 0) <= 1e-5 && test_dev_diff(du, d_du, n, 0) <= 1e-5);
    CHECK(test_dev_shadow_ok(d_dg, d_dg16, n) && test_dev_shadow_ok(d_du, d_du16, n));
    cuda_release(d_dg16), cuda_release(d_du16);
    void *d[] = {d_g, d_u, d_h, d_dh, d_dg, d_du, d_h16};
    for (int i = 0; i < 7; i++) cuda_release(d[i]);
    free(g), free(u), free(h), free(dh), free(dg), free(du);
#endif
}

static void test_logsoftmax_rows(void) {
    if (!test_gpu_ready()) return;
#ifdef PIONRL_CUDA
    int N = 7, V = 5003;
    float *logits = malloc(sizeof(float) * N * V), logp[7], ent[7];
    int target[7];
    test_fill(logits, (size_t)N * V, 1, 20);
    for (int r = 0; r < N; r++) target[r] = (r * 977) % V;
    float *d_logits = test_dev(logits, sizeof(float) * N * V), *d_logp = test_dev(logp, sizeof logp),
          *d_ent = test_dev(ent, sizeof ent);
    int *d_target = test_dev(target, sizeof target);
    for (int r = 0; r < N; r++) logp[r] = logsoftmax_row(logits + (size_t)r * V, V, target[r], &ent[r], NULL);
    Error err;
    CHECK_MSG(cuda_logsoftmax_rows(d_logits, d_target, d_logp, d_ent, N, V, &err) == 0, "%s", err.msg);
    double e1 = test_dev_diff(logp, d_logp, N, 0), e2 = test_dev_diff(ent, d_ent, N, 0);
    CHECK_MSG(e1 <= 1e-4 && e2 <= 1e-4, "logp %g entropy %g", e1, e2);
    cuda_release(d_logits), cuda_release(d_logp), cuda_release(d_ent), cuda_release(d_target);
    free(logits);
#endif
}

// The logits' gradient rows of the lm_head backward against a double-precision weight * (onehot - softmax): a row
// with a target, one with weight 0 and one unscored (target -1) become zeros; and the bf16 copy is exactly the
// rounding of the fp32 gradients. Bound 1e-6 (fp32 exp and sums over 5,003 logits; measured 4.7e-10 on the emulator).
static void test_logsoftmax_grad_rows(void) {
    if (!test_gpu_ready()) return;
#ifdef PIONRL_CUDA
    enum { N = 5, V = 5003 };
    float *logits = malloc(sizeof(float) * N * V), *ref = malloc(sizeof(float) * N * V),
          weight[N] = {1.5f, -0.5f, 0, 2, 1};
    int target[N] = {7, 4999, 3, -1, 0};
    test_fill(logits, (size_t)N * V, 5, 20);
    for (int r = 0; r < N; r++) {
        const float *x = logits + (size_t)r * V;
        double mx = -INFINITY, sum = 0;
        for (int i = 0; i < V; i++) mx = fmax(mx, x[i]);
        for (int i = 0; i < V; i++) sum += exp(x[i] - mx);
        double w = target[r] < 0 ? 0 : weight[r];
        for (int i = 0; i < V; i++) ref[(size_t)r * V + i] = (float)(w * ((i == target[r]) - exp(x[i] - mx) / sum));
    }
    float *d_logits = test_dev(logits, sizeof(float) * N * V), *d_w = test_dev(weight, sizeof weight);
    int *d_target = test_dev(target, sizeof target);
    void *d16 = test_dev(logits, 2 * (size_t)N * V);  // stale contents, overwritten
    Error err;
    CHECK_MSG(cuda_logsoftmax_grad_rows(d_logits, d16, d_target, d_w, N, V, &err) == 0, "%s", err.msg);
    double e = test_dev_diff(ref, d_logits, (size_t)N * V, 0);
    printf("  gradient: %.3g\n", e);
    CHECK_MSG(e <= 1e-6, "gradient %g", e);
    CHECK(test_dev_shadow_ok(d_logits, d16, (size_t)N * V));
    cuda_release(d_logits), cuda_release(d_w), cuda_release(d_target), cuda_release(d16);
    free(logits), free(ref);
#endif
}

#ifdef PIONRL_CUDA
// Copies rows x KD cache values (fp32, or rounded to bf16 as the device cache stores them) into layer 1 of a
// 2-layer device cache.
static int upload_layer1(void *cache, const float *x, size_t n, int bf16, Error *err) {
    size_t es = bf16 ? 2 : 4;
    void *h = malloc(es * n);
    if (!h) return error_set(err, "out of memory");
    for (size_t i = 0; i < n; i++)
        if (bf16)
            ((uint16_t *)h)[i] = bf16_from_f32(x[i]);
        else
            ((float *)h)[i] = x[i];
    int rc = cuda_to_device((char *)cache + es * n, h, es * n, err);
    free(h);
    return rc;
}

// One shape of the decode attention: layer 1 of a 2-layer cache of 3 slots x 80 positions filled from the host, then
// 4 query rows (two in slot 2) attending to layer 1 over 1, 32, 33 and 80 positions (one tile of 32, one more, two
// and a half), against a double-precision softmax of the same (bf16-rounded when the cache is bf16) values. Returns
// max |device - reference| relative to max(1, max |reference|), inf on a failed call.
static double cached_attention_case(int Hq, int Hkv, int hd, int bf16) {
    enum { L = 2, SLOTS = 3, MAXLEN = 80, N = 4 };
    int KD = Hkv * hd, rows = SLOTS * MAXLEN, slot[N] = {2, 0, 1, 2}, pos[N] = {0, 31, 32, 79};
    float *k = malloc(sizeof(float) * rows * KD), *v = malloc(sizeof(float) * rows * KD);
    float *q = malloc(sizeof(float) * N * Hq * hd), *ref = malloc(sizeof(float) * N * Hq * hd);
    double *p = malloc(sizeof(double) * MAXLEN);
    test_fill(k, (size_t)rows * KD, 11 + hd, 4), test_fill(v, (size_t)rows * KD, 12, 2);
    test_fill(q, (size_t)N * Hq * hd, 13 + Hq, 2);
    for (int i = 0; i < N; i++)
        for (int h = 0; h < Hq; h++) {
            int g = h / (Hq / Hkv), len = pos[i] + 1;
            const float *qh = q + ((size_t)i * Hq + h) * hd;
            double mx = -INFINITY, sum = 0;
            for (int s = 0; s < len; s++) {
                const float *kr = k + ((size_t)slot[i] * MAXLEN + s) * KD + g * hd;
                double dot = 0;
                for (int d = 0; d < hd; d++) dot += (double)qh[d] * (bf16 ? bf16_to_f32(bf16_from_f32(kr[d])) : kr[d]);
                p[s] = dot / sqrt((double)hd);
                mx = fmax(mx, p[s]);
            }
            for (int s = 0; s < len; s++) sum += p[s] = exp(p[s] - mx);
            for (int d = 0; d < hd; d++) {
                double o = 0;
                for (int s = 0; s < len; s++) {
                    float x = v[((size_t)slot[i] * MAXLEN + s) * KD + g * hd + d];
                    o += p[s] / sum * (bf16 ? bf16_to_f32(bf16_from_f32(x)) : x);
                }
                ref[((size_t)i * Hq + h) * hd + d] = (float)o;
            }
        }
    size_t cache_bytes = (size_t)L * rows * KD * (bf16 ? 2 : 4);
    void *K = NULL, *V = NULL, *out16 = NULL;
    Error err;
    double e = INFINITY;
    float *d_q = test_dev(q, sizeof(float) * N * Hq * hd), *d_out = test_dev(ref, sizeof(float) * N * Hq * hd);
    int *d_slot = test_dev(slot, sizeof slot), *d_pos = test_dev(pos, sizeof pos);
    if (cuda_alloc(&K, cache_bytes, &err) || cuda_alloc(&V, cache_bytes, &err) ||
        cuda_alloc(&out16, 2 * (size_t)N * Hq * hd, &err)) {
        test_fail_at(__FILE__, __LINE__, "%s", err.msg);
    } else if (d_q && d_out && d_slot && d_pos) {
        // the cache's rows are [slot][position], as k and v are filled
        int rc =
            upload_layer1(K, k, (size_t)rows * KD, bf16, &err) || upload_layer1(V, v, (size_t)rows * KD, bf16, &err) ||
            cuda_cached_attention(d_out, out16, d_q, K, V, bf16, d_slot, d_pos, N, 1, SLOTS, MAXLEN, Hq, Hkv, hd, &err);
        if (rc)
            test_fail_at(__FILE__, __LINE__, "Hq %d Hkv %d hd %d: %s", Hq, Hkv, hd, err.msg);
        else if (!test_dev_shadow_ok(d_out, out16, (size_t)N * Hq * hd))
            test_fail_at(__FILE__, __LINE__, "Hq %d Hkv %d hd %d: out16 is not the rounding of out", Hq, Hkv, hd);
        else
            e = test_dev_diff(ref, d_out, (size_t)N * Hq * hd, 1);
    }
    printf("  Hq %d Hkv %d hd %d bf16 %d: %.3g\n", Hq, Hkv, hd, bf16, e);
    void *d[] = {d_q, d_out, d_slot, d_pos, K, V, out16};
    for (int i = 0; i < 7; i++) cuda_release(d[i]);
    free(k), free(v), free(q), free(ref), free(p);
    return e;
}
#endif

// The decode attention over a KV cache (cuda_cached_attention) against a double-precision reference:
// query-head groups of 1, 2, 3 and 10 (more than the 8 one block takes: two chunks), head sizes 16 to 256, fp32 and
// bf16 caches. Tolerance 1e-5 of max(1, |out|): fp32 arithmetic over at most 80 positions (measured <= 3e-7).
static void test_cached_attention(void) {
    if (!test_gpu_ready()) return;
#ifdef PIONRL_CUDA
    static const int shapes[][3] = {{4, 2, 16}, {6, 2, 64}, {2, 2, 128}, {20, 2, 32}, {3, 1, 40}, {2, 1, 256}};
    for (int bf16 = 0; bf16 <= 1; bf16++)
        for (size_t c = 0; c < sizeof shapes / sizeof *shapes; c++) {
            double e = cached_attention_case(shapes[c][0], shapes[c][1], shapes[c][2], bf16);
            CHECK_MSG(e <= 1e-5, "Hq %d Hkv %d hd %d bf16 %d: %g", shapes[c][0], shapes[c][1], shapes[c][2], bf16, e);
        }
    Error err;
    CHECK(cuda_cached_attention(NULL, NULL, NULL, NULL, NULL, 0, NULL, NULL, 1, 0, 1, 8, 2, 1, 257, &err) == -1);
    CHECK_MSG(strstr(err.msg, "hd") != NULL, "%s", err.msg);
#endif
}

#ifdef PIONRL_CUDA
// One shape of cuda_norm_rope_append: 5 rows (two slots, positions up to 600) into layer 1 of a 2-layer zeroed cache,
// against the CPU ops it fuses (rmsnorm_forward per head, rope_forward, the cache store). Returns the worst error
// relative to max(1, |value|) over q and the stored K and V (a bf16 cache: against the rounding of the CPU's value,
// allowing one bf16 step where fp32 results an ulp apart round apart); inf when a call fails, k or v is modified,
// or a cache row outside the 5 written ones is not zero.
static double norm_rope_append_case(int Hq, int Hkv, int hd, int qk_norm, int bf16) {
    enum { L = 2, SLOTS = 2, MAXLEN = 640, N = 5 };
    int KD = Hkv * hd, slot[N] = {0, 1, 0, 1, 1}, pos[N] = {0, 1, 77, 300, 600};
    size_t cache_n = (size_t)L * SLOTS * MAXLEN * KD, es = bf16 ? 2 : 4;
    float *q = malloc(sizeof(float) * N * Hq * hd), *k = malloc(sizeof(float) * N * KD),
          *v = malloc(sizeof(float) * N * KD);
    float *qn = malloc(sizeof(float) * hd), *kn = malloc(sizeof(float) * hd), *rstd = malloc(sizeof(float) * N * Hq);
    float *kr = malloc(sizeof(float) * N * KD), *Kh = malloc(sizeof(float) * cache_n),
          *Vh = malloc(sizeof(float) * cache_n);
    void *raw = malloc(es * cache_n);
    test_fill(q, (size_t)N * Hq * hd, 31 + hd, 3), test_fill(k, (size_t)N * KD, 32, 3),
        test_fill(v, (size_t)N * KD, 33, 2);
    test_fill(qn, hd, 34, 2), test_fill(kn, hd, 35, 2);
    float *d_q = test_dev(q, sizeof(float) * N * Hq * hd), *d_k = test_dev(k, sizeof(float) * N * KD);
    float *d_v = test_dev(v, sizeof(float) * N * KD), *d_qn = test_dev(qn, sizeof(float) * hd);
    float *d_kn = test_dev(kn, sizeof(float) * hd);
    int *d_slot = test_dev(slot, sizeof slot), *d_pos = test_dev(pos, sizeof pos);
    void *K = NULL, *V = NULL;
    Error err;
    double e = INFINITY;
    if (cuda_alloc(&K, es * cache_n, &err) || cuda_alloc(&V, es * cache_n, &err) || cuda_zero(K, es * cache_n, &err) ||
        cuda_zero(V, es * cache_n, &err) ||
        cuda_norm_rope_append(d_q, d_k, d_v, K, V, bf16, qk_norm ? d_qn : NULL, qk_norm ? d_kn : NULL, 1e-6f, d_slot,
                              d_pos, N, 1, SLOTS, MAXLEN, Hq, Hkv, hd, 1e6, &err)) {
        test_fail_at(__FILE__, __LINE__, "Hq %d Hkv %d hd %d: %s", Hq, Hkv, hd, err.msg);
    } else if (test_dev_diff(k, d_k, (size_t)N * KD, 0) != 0 || test_dev_diff(v, d_v, (size_t)N * KD, 0) != 0) {
        test_fail_at(__FILE__, __LINE__, "Hq %d Hkv %d hd %d: k or v was modified", Hq, Hkv, hd);
    } else {
        // the CPU composition: in place on q and on a copy of k
        memcpy(kr, k, sizeof(float) * N * KD);
        if (qk_norm) {
            rmsnorm_forward(q, rstd, q, qn, N * Hq, hd, 1e-6f);
            rmsnorm_forward(kr, rstd, kr, kn, N * Hkv, hd, 1e-6f);
        }
        rope_forward(q, pos, N, Hq, hd, 1e6);
        rope_forward(kr, pos, N, Hkv, hd, 1e6);
        e = test_dev_diff(q, d_q, (size_t)N * Hq * hd, 1);
        int ok = cuda_to_host(raw, K, es * cache_n, &err) == 0;
        for (int pass = 0; pass < 2 && ok; pass++) {  // K, then V
            for (size_t x = 0; x < cache_n; x++)
                (pass ? Vh : Kh)[x] = bf16 ? bf16_to_f32(((uint16_t *)raw)[x]) : ((float *)raw)[x];
            if (!pass) ok = cuda_to_host(raw, V, es * cache_n, &err) == 0;
        }
        double worst = ok ? 0 : INFINITY;
        for (int i = 0; i < N && ok; i++) {
            size_t at = (((size_t)1 * SLOTS + slot[i]) * MAXLEN + pos[i]) * KD;
            for (int c = 0; c < KD; c++) {
                float want[2] = {kr[(size_t)i * KD + c], v[(size_t)i * KD + c]}, got[2] = {Kh[at + c], Vh[at + c]};
                for (int j = 0; j < 2; j++) {
                    double d = fabs((double)got[j] - (bf16 ? bf16_to_f32(bf16_from_f32(want[j])) : want[j]));
                    if (bf16) d = fmax(0, d - fabs(want[j]) / 128);  // one bf16 step of slack
                    worst = fmax(worst, d / fmax(1, fabs(want[j])));
                }
                Kh[at + c] = Vh[at + c] = 0;  // visited
            }
        }
        for (size_t x = 0; x < cache_n && ok; x++)
            if (Kh[x] != 0 || Vh[x] != 0) worst = INFINITY;
        e = fmax(e, worst);
    }
    printf("  Hq %d Hkv %d hd %d qk_norm %d bf16 %d: %.3g\n", Hq, Hkv, hd, qk_norm, bf16, e);
    void *d[] = {d_q, d_k, d_v, d_qn, d_kn, d_slot, d_pos, K, V};
    for (int i = 0; i < 9; i++) cuda_release(d[i]);
    free(q), free(k), free(v), free(qn), free(kn), free(rstd), free(kr), free(Kh), free(Vh), free(raw);
    return e;
}
#endif

// The decode step's fused qk-norm + RoPE + cache append against the CPU ops it replaces: GQA groups 1 to 3, head
// sizes 16 to 256 (40: a half of 20, not a multiple of the block), with and without qk-norm, fp32 and bf16 caches.
// Bound 1e-5 relative: the same fp32 formulas, the norm's double sum in another order.
static void test_norm_rope_append(void) {
    if (!test_gpu_ready()) return;
#ifdef PIONRL_CUDA
    static const int shapes[][4] = {{4, 2, 16, 1}, {3, 1, 40, 1}, {2, 2, 256, 0}, {16, 8, 128, 1}, {6, 2, 64, 0}};
    for (int bf16 = 0; bf16 <= 1; bf16++)
        for (size_t c = 0; c < sizeof shapes / sizeof *shapes; c++) {
            const int *sh = shapes[c];
            double e = norm_rope_append_case(sh[0], sh[1], sh[2], sh[3], bf16);
            CHECK_MSG(e <= 1e-5, "Hq %d Hkv %d hd %d qk_norm %d bf16 %d: %g", sh[0], sh[1], sh[2], sh[3], bf16, e);
        }
    Error err;
    CHECK(cuda_norm_rope_append(NULL, NULL, NULL, NULL, NULL, 0, NULL, NULL, 1e-6f, NULL, NULL, 1, 0, 1, 8, 2, 1, 15,
                                1e6, &err) == -1);
    CHECK_MSG(strstr(err.msg, "hd") != NULL, "%s", err.msg);
#endif
}

int main(void) {
    RUN(test_linear);
    RUN(test_linear_bf16);
    RUN(test_linear_batched);
    RUN(test_rmsnorm);
    RUN(test_rope);
    RUN(test_swiglu);
    RUN(test_logsoftmax_rows);
    RUN(test_logsoftmax_grad_rows);
    RUN(test_cached_attention);
    RUN(test_norm_rope_append);
    return test_summary("test_cuda_ops");
}
