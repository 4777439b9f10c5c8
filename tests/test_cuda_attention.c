// CPU-vs-CUDA tests of the flash-style attention kernels (src/policy/attention_cuda.h) against attention_forward and
// attention_backward (src/policy/ops.h), fp32 and bf16, on shapes that cover one partial tile (T 33: 32 + 1 rows),
// T 1, several tiles with a partial last one (T 70, hd 64, groups of 3 query heads per kv head), hd 128 without
// grouping, hd 40, and hd 256 (above 48 KB of shared memory: the opt-in path); lse against a direct log-sum-exp in
// double. Skips in a CPU-only build and without a GPU.
//
// Tolerances (max |gpu - cpu| / max(1, max |cpu|)):
//   fp32: out and lse 1e-5, gradients 1e-4 — the same formulas in fp32, other summation orders (online softmax,
//         tiles of 32 keys, D = dot(dout, out) for rowsum(P dP)); values are O(1) and sums run over <= 256 terms.
//   bf16: 1e-3. Both sides round the same inputs to bfloat16: q, k, v and dout, the normalised probability (the
//         forward's second pass forms p = exp(s - lse) as the CPU forms p / l) and dS, and the bf16 backward sums
//         D = rowsum(P dP) as the CPU does. What is left is fp32 summation order, and the rare p whose bf16 rounding
//         that order flips (the CPU's exp_fast and the device's expf differ in the last bits): one flip moves one
//         term by 2^-8 p |v|. Measured: 1.5e-8 where nothing flips, 6e-5 (out) and 3e-5 (grads) at T 70.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/cuda_ops.h"
#include "policy/ops.h"
#include "test.h"
#include "test_gpu.h"

#ifdef PIONRL_CUDA
#include "core/bf16.h"
#include "policy/attention_cuda.h"

static float rnd(float x, int bf16) { return bf16 ? bf16_to_f32(bf16_from_f32(x)) : x; }

// lse [B, Hq, T] of the scaled causal scores, in double from the (rounded when bf16) inputs.
static void lse_direct(float *lse, const float *q, const float *k, int B, int T, int Hq, int Hkv, int hd, int bf16) {
    double scale = 1.0 / sqrt((double)hd), *s = malloc(sizeof(double) * T);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < Hq; h++)
            for (int t = 0; t < T; t++) {
                const float *qr = q + ((size_t)(b * T + t) * Hq + h) * hd;
                double mx = -INFINITY, sum = 0;
                for (int u = 0; u <= t; u++) {
                    const float *kr = k + ((size_t)(b * T + u) * Hkv + h / (Hq / Hkv)) * hd;
                    double dot = 0;
                    for (int d = 0; d < hd; d++) dot += (double)rnd(qr[d], bf16) * rnd(kr[d], bf16);
                    s[u] = dot * scale;
                    mx = fmax(mx, s[u]);
                }
                for (int u = 0; u <= t; u++) sum += exp(s[u] - mx);
                lse[((size_t)b * Hq + h) * T + t] = (float)(mx + log(sum));
            }
    free(s);
}

typedef struct {
    int B, T, Hq, Hkv, hd;
} Shape;

// One shape both ways; e gets the differences of out, lse, dq, dk, dv (inf where a call failed).
static void run_case(Shape s, int bf16, double e[5]) {
    int B = s.B, T = s.T, Hq = s.Hq, Hkv = s.Hkv, hd = s.hd;
    size_t nq = (size_t)B * T * Hq * hd, nk = (size_t)B * T * Hkv * hd, nl = (size_t)B * Hq * T;
    size_t np = (size_t)B * Hq * T * T;
    float *q = malloc(sizeof(float) * nq), *k = malloc(sizeof(float) * nk), *v = malloc(sizeof(float) * nk);
    float *out = malloc(sizeof(float) * nq), *probs = malloc(sizeof(float) * np), *dout = malloc(sizeof(float) * nq);
    float *dq = malloc(sizeof(float) * nq), *dk = malloc(sizeof(float) * nk), *dv = malloc(sizeof(float) * nk);
    float *lse = malloc(sizeof(float) * nl), *work = malloc(sizeof(float) * T * T);
    // q and k span [-1.5, 1.5]: peaked rows (score ranges of several units) as well as flat ones
    test_fill(q, nq, 1 + hd, 3), test_fill(k, nk, 2 + T, 3), test_fill(v, nk, 3, 1), test_fill(dout, nq, 4, 1);
    attention_forward(out, probs, q, k, v, B, T, Hq, Hkv, hd, bf16);
    attention_backward(dq, dk, dv, dout, probs, q, k, v, B, T, Hq, Hkv, hd, bf16, work, 1);
    lse_direct(lse, q, k, B, T, Hq, Hkv, hd, bf16);

    // every output starts as NaN on the device: the kernels must write each element
    float *nan = malloc(sizeof(float) * (nq > nl ? nq : nl));
    memset(nan, 0xFF, sizeof(float) * (nq > nl ? nq : nl));
    float *d_q = test_dev(q, sizeof(float) * nq), *d_k = test_dev(k, sizeof(float) * nk),
          *d_v = test_dev(v, sizeof(float) * nk);
    float *d_dout = test_dev(dout, sizeof(float) * nq), *d_out = test_dev(nan, sizeof(float) * nq);
    float *d_lse = test_dev(nan, sizeof(float) * nl), *d_work = test_dev(nan, sizeof(float) * nl);
    float *d_dq = test_dev(nan, sizeof(float) * nq), *d_dk = test_dev(nan, sizeof(float) * nk),
          *d_dv = test_dev(nan, sizeof(float) * nk);
    void *d_out16 = test_dev(nan, 2 * nq), *d_dv16 = test_dev(nan, 2 * nk);  // bf16 copies of out and dv
    Error err;
    int fwd = -1, bwd = -1;
    if (d_q && d_k && d_v && d_dout && d_out && d_lse && d_work && d_dq && d_dk && d_dv && d_out16 && d_dv16) {
        fwd = cuda_flash_attention_forward(d_out, d_out16, d_lse, d_q, d_k, d_v, B, T, Hq, Hkv, hd, bf16, &err);
        if (fwd) test_fail_at(__FILE__, __LINE__, "forward: %s", err.msg);
        if (fwd == 0 && !test_dev_shadow_ok(d_out, d_out16, nq)) {
            test_fail_at(__FILE__, __LINE__, "out16 is not the rounding of out");
            fwd = -1;
        }
        if (fwd == 0) {
            bwd = cuda_flash_attention_backward(d_dq, d_dk, d_dv, d_dv16, d_dout, d_out, d_lse, d_q, d_k, d_v, B, T, Hq,
                                                Hkv, hd, bf16, d_work, &err);
            if (bwd) test_fail_at(__FILE__, __LINE__, "backward: %s", err.msg);
            if (bwd == 0 && !test_dev_shadow_ok(d_dv, d_dv16, nk)) {
                test_fail_at(__FILE__, __LINE__, "dv16 is not the rounding of dv");
                bwd = -1;
            }
        }
    }
    for (int i = 0; i < 5; i++) e[i] = INFINITY;
    if (fwd == 0) e[0] = test_dev_diff(out, d_out, nq, 1), e[1] = test_dev_diff(lse, d_lse, nl, 1);
    if (bwd == 0)
        e[2] = test_dev_diff(dq, d_dq, nq, 1), e[3] = test_dev_diff(dk, d_dk, nk, 1),
        e[4] = test_dev_diff(dv, d_dv, nk, 1);
    printf("  B %d T %d Hq %d Hkv %d hd %d bf16 %d: out %.3g lse %.3g dq %.3g dk %.3g dv %.3g\n", B, T, Hq, Hkv, hd,
           bf16, e[0], e[1], e[2], e[3], e[4]);
    void *d[] = {d_q, d_k, d_v, d_dout, d_out, d_lse, d_work, d_dq, d_dk, d_dv, d_out16, d_dv16};
    for (int i = 0; i < 12; i++) cuda_release(d[i]);
    free(q), free(k), free(v), free(out), free(probs), free(dout), free(dq), free(dk), free(dv), free(lse), free(work);
    free(nan);
}

static const Shape shapes[] = {
    {2, 33, 4, 2, 16},   // one full tile and one row
    {3, 1, 2, 1, 16},    // a single position
    {2, 70, 6, 2, 64},   // three tiles, the last partial; 3 query heads per kv head
    {1, 45, 2, 2, 128},  // no grouping
    {2, 37, 3, 1, 40},   // hd not a multiple of 32: accumulator slots past hd stay unused; one kv head for 3
    {1, 20, 2, 1, 256},  // 101 and 137 KB of shared memory (the opt-in above 48 KB; hd 128 needs it too)
    {1, 150, 4, 2, 128}, // bf16 on tensor cores: three 64-row tiles, the last partial; 2 query heads per kv head
    {2, 130, 2, 1, 32},  // a last tile of 2 rows
};

static void check_shapes(int bf16, double tol_out, double tol_grad) {
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        double e[5];
        run_case(shapes[i], bf16, e);
        if (test_state.state) return;
        Shape s = shapes[i];
        CHECK_MSG(e[0] <= tol_out && e[1] <= tol_out && e[2] <= tol_grad && e[3] <= tol_grad && e[4] <= tol_grad,
                  "B %d T %d Hq %d Hkv %d hd %d bf16 %d: out %g lse %g dq %g dk %g dv %g", s.B, s.T, s.Hq, s.Hkv, s.hd,
                  bf16, e[0], e[1], e[2], e[3], e[4]);
    }
}
#endif

static void test_flash_attention_fp32(void) {
    if (!test_gpu_ready()) return;
#ifdef PIONRL_CUDA
    check_shapes(0, 1e-5, 1e-4);
#endif
}

static void test_flash_attention_bf16(void) {
    if (!test_gpu_ready()) return;
#ifdef PIONRL_CUDA
    check_shapes(1, 1e-3, 1e-3);
#endif
}

// bf16 with hd a multiple of 16 up to 128 takes the tensor-core kernels; the rest stays on CUDA cores. The shapes
// above cover both paths.
static void test_flash_attention_paths(void) {
    if (!test_gpu_ready()) return;
#ifdef PIONRL_CUDA
    CHECK(cuda_flash_attention_tensor_cores(16, 1) && cuda_flash_attention_tensor_cores(64, 1) &&
          cuda_flash_attention_tensor_cores(128, 1));
    CHECK(!cuda_flash_attention_tensor_cores(128, 0) && !cuda_flash_attention_tensor_cores(40, 1) &&
          !cuda_flash_attention_tensor_cores(256, 1) && !cuda_flash_attention_tensor_cores(8, 1));
#endif
}

// Shapes the kernels cannot run are refused before any launch.
static void test_flash_attention_refusals(void) {
    if (!test_gpu_ready()) return;
#ifdef PIONRL_CUDA
    Error err;
    float *p = NULL;
    CHECK(cuda_flash_attention_forward(p, NULL, p, p, p, p, 1, 4, 2, 1, 257, 0, &err) == -1);
    CHECK_MSG(strstr(err.msg, "hd") != NULL, "%s", err.msg);
    CHECK(cuda_flash_attention_forward(p, NULL, p, p, p, p, 1, 4, 3, 2, 64, 0, &err) ==
          -1);  // Hq not a multiple of Hkv
    CHECK(cuda_flash_attention_backward(p, p, p, NULL, p, p, p, p, p, p, 70000, 4, 2, 1, 64, 0, p, &err) == -1);
    CHECK_MSG(strstr(err.msg, "65535") != NULL, "%s", err.msg);
    CHECK(cuda_flash_attention_forward(p, NULL, p, p, p, p, 0, 4, 2, 1, 64, 0, &err) == 0);  // nothing to do
#endif
}

int main(void) {
    RUN(test_flash_attention_fp32);
    RUN(test_flash_attention_bf16);
    RUN(test_flash_attention_paths);
    RUN(test_flash_attention_refusals);
    return test_summary("test_cuda_attention");
}
