// Per-operation forward and backward kernels of the Qwen decoder on CPU (fp32). Each op is one
// function; backward functions accumulate (+=) into parameter gradients and write input gradients.
// Row-major throughout; N is a number of token rows.
#ifndef PIONRL_OPS_H
#define PIONRL_OPS_H

#include <math.h>
#include <stdint.h>
#include <string.h>

// exp(x) for softmax-style loops: Cody-Waite range reduction and Cephes' degree-6 polynomial, in
// plain arithmetic so `omp simd` loops vectorise it (libm's expf is a scalar call). Relative error
// ~2 ulp over [-87, 88]; inputs are clamped to that range (exp(-inf) gives ~1e-38, not 0).
static inline float exp_fast(float x) {
    x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    float n = floorf(x * 1.44269504088896341f + 0.5f);
    float r = x - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

// Largest of x[0..n) (-inf when n = 0), vectorised: the first pass of every softmax here.
static inline float max_of(const float *x, int n) {
    float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
    for (int i = 0; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    return mx;
}

// out[N, O] = in[N, I] @ W[O, I]^T (+ b[O]). bf16: the product from bfloat16-rounded inputs with
// fp32 accumulation (gemm_dt); the bias add stays fp32.
void linear_forward(float *out, const float *in, const float *W, const float *b, int N, int I, int O, int bf16);
// din[N, I] (+)= dout @ W (accumulate when din_accumulate), dW[O, I] += dout^T @ in, db[O] += sum dout.
void linear_backward(float *din, int din_accumulate, float *dW, float *db, const float *dout, const float *in,
                     const float *W, int N, int I, int O, int bf16);

// y = x * rstd * w over rows of width C; rstd[N] saved for backward.
void rmsnorm_forward(float *y, float *rstd, const float *x, const float *w, int N, int C, float eps);
// dx (+)= d/dx, dw += d/dw. dx may alias nothing; set accumulate to add into dx.
void rmsnorm_backward(float *dx, int accumulate, float *dw, const float *dy, const float *x, const float *w,
                      const float *rstd, int N, int C);

// Rotary embedding, rotate-half convention: for i < hd/2 the pair (x[i], x[i + hd/2]) is rotated
// by angle pos * theta^(-2i/hd). x is [N, H, hd] in place; pos[N] gives each row's position.
void rope_forward(float *x, const int *pos, int N, int H, int hd, double theta);
// The inverse rotation applied to a gradient (rotation matrices are orthogonal).
void rope_backward(float *dx, const int *pos, int N, int H, int hd, double theta);

// h = silu(g) * u elementwise over n values.
void swiglu_forward(float *h, const float *g, const float *u, long n);
void swiglu_backward(float *dg, float *du, const float *dh, const float *g, const float *u, long n);

// Causal grouped-query attention over B right-padded sequences of length T.
// q [B*T, Hq, hd], k/v [B*T, Hkv, hd]; probs [B, Hq, T, T] saved (zeros above the diagonal);
// out [B*T, Hq, hd]. bf16: the score and weighted-sum products from bf16-rounded inputs (fp32 sums;
// softmax in fp32).
void attention_forward(float *out, float *probs, const float *q, const float *k, const float *v, int B, int T,
                       int Hq, int Hkv, int hd, int bf16);
// dq, dk, dv are overwritten. work: nwork x T x T floats, one T x T block for each of the nwork
// threads the backward runs on (the caller plans it with the activations; no allocation here).
void attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *probs, const float *q,
                        const float *k, const float *v, int B, int T, int Hq, int Hkv, int hd, int bf16, float *work,
                        int nwork);

// Log-softmax of one row of logits (n values) at the target, and the entropy of the softmax.
// Returns logp[target]; *entropy (if non-NULL) gets -sum p log p. probs (if non-NULL) gets softmax.
float logsoftmax_row(const float *logits, int n, int target, float *entropy, float *probs);

#endif
