#include "policy/ops.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/blas.h"

void linear_forward(float *out, const float *in, const float *W, const float *b, int N, int I, int O, int bf16) {
    if (b) {
        for (int n = 0; n < N; n++) memcpy(out + (size_t)n * O, b, sizeof(float) * O);
    }
    gemm_dt(bf16, 0, 1, N, O, I, 1.0f, in, I, W, I, b ? 1.0f : 0.0f, out, O);
}

void linear_backward(float *din, int din_accumulate, float *dW, float *db, const float *dout, const float *in,
                     const float *W, int N, int I, int O, int bf16) {
    if (din) gemm_dt(bf16, 0, 0, N, I, O, 1.0f, dout, O, W, I, din_accumulate ? 1.0f : 0.0f, din, I);
    if (dW) gemm_dt(bf16, 1, 0, O, I, N, 1.0f, dout, O, in, I, 1.0f, dW, I);
    if (db) {
        for (int n = 0; n < N; n++) {
            const float *d = dout + (size_t)n * O;
            for (int o = 0; o < O; o++) db[o] += d[o];
        }
    }
}

void rmsnorm_forward(float *y, float *rstd, const float *x, const float *w, int N, int C, float eps) {
#pragma omp parallel for
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * C;
        float *yr = y + (size_t)n * C;
        double ss = 0;
#pragma omp simd reduction(+ : ss)
        for (int c = 0; c < C; c++) ss += (double)xr[c] * xr[c];
        float r = (float)(1.0 / sqrt(ss / C + eps));
        rstd[n] = r;
        for (int c = 0; c < C; c++) yr[c] = xr[c] * r * w[c];
    }
}

void rmsnorm_backward(float *dx, int accumulate, float *dw, const float *dy, const float *x, const float *w,
                      const float *rstd, int N, int C) {
    // dw sums over rows: threads split the columns and each sums its columns over the rows in
    // order, so the result is the serial loop's, bit for bit, at any thread count. (Per-head q/k
    // norms have C = head_dim columns and many rows: one block of columns, run serially.)
    int blocks = C >= 128 ? C / 64 : 1;
#pragma omp parallel for schedule(static) if (blocks > 1)
    for (int bl = 0; bl < blocks; bl++) {
        int c0 = bl * C / blocks, c1 = (bl + 1) * C / blocks;
        for (int n = 0; n < N; n++) {
            const float *xr = x + (size_t)n * C, *dyr = dy + (size_t)n * C;
            float r = rstd[n];
            for (int c = c0; c < c1; c++) dw[c] += dyr[c] * xr[c] * r;
        }
    }
#pragma omp parallel for
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * C, *dyr = dy + (size_t)n * C;
        float *dxr = dx + (size_t)n * C;
        float r = rstd[n];
        double dot = 0;  // mean over c of (dy * w) * xhat
#pragma omp simd reduction(+ : dot)
        for (int c = 0; c < C; c++) dot += (double)dyr[c] * w[c] * xr[c] * r;
        float m = (float)(dot / C);
        for (int c = 0; c < C; c++) {
            float g = r * (dyr[c] * w[c] - xr[c] * r * m);
            dxr[c] = accumulate ? dxr[c] + g : g;
        }
    }
}

// Rotary frequency i: theta^(-2i/hd), from the table when there is one.
static inline double rope_freq(const double *inv, int i, int hd, double theta) {
    return inv ? inv[i] : pow(theta, -2.0 * i / hd);
}

// cos in [0, half), sign * sin in [half, hd) of position p's angles: fp32 angles as in
// transformers, inv_freq (fp32) * position (fp32)
static void rope_angles(float *cs, int p, const double *inv, int hd, double theta, float sign) {
    int half = hd / 2;
    for (int i = 0; i < half; i++) {
        float ang = (float)p * (float)rope_freq(inv, i, hd, theta);
        cs[i] = cosf(ang);
        cs[half + i] = sign * sinf(ang);
    }
}

// The pair (v[i], v[i + half]) of one head rotated by the angle with cosine c and sine s.
static inline void rope_rotate_pair(float *v, int i, int half, float c, float s) {
    float a = v[i], b = v[i + half];
    v[i] = a * c - b * s;
    v[i + half] = b * c + a * s;
}

// The H heads of one row by the angles cs (rope_angles' layout).
static void rope_rotate(float *x, const float *cs, int H, int hd) {
    int half = hd / 2;
    for (int h = 0; h < H; h++)
        for (int i = 0; i < half; i++) rope_rotate_pair(x + (size_t)h * hd, i, half, cs[i], cs[half + i]);
}

// The angles go into a table first: one entry per distinct position when the rows outnumber them
// (a training batch repeats its positions, row n being position n % T; a decode step's sequences
// often share one), else one per row. Should an allocation fail, the same values are computed
// one frequency at a time (frequencies by pow), never skipped.
static void rope_apply(float *x, const int *pos, int N, int H, int hd, double theta, float sign) {
    int half = hd / 2, pmin = N > 0 ? pos[0] : 0, pmax = pmin;
    for (int n = 1; n < N; n++) {
        pmin = pos[n] < pmin ? pos[n] : pmin;
        pmax = pos[n] > pmax ? pos[n] : pmax;
    }
    long span = (long)pmax - pmin + 1, rows = span < N ? span : N;
    double *inv = malloc(sizeof(double) * (half > 0 ? half : 1));
    float *table = malloc(sizeof(float) * rows * hd);
    if (inv)
        for (int i = 0; i < half; i++) inv[i] = pow(theta, -2.0 * i / hd);
    if (table) {
#pragma omp parallel for
        for (long r = 0; r < rows; r++)
            rope_angles(table + r * hd, span < N ? (int)(pmin + r) : pos[r], inv, hd, theta, sign);
#pragma omp parallel for
        for (int n = 0; n < N; n++)
            rope_rotate(x + (size_t)n * H * hd, table + (span < N ? (long)(pos[n] - pmin) : n) * hd, H, hd);
    } else {
#pragma omp parallel for
        for (int n = 0; n < N; n++)
            for (int i = 0; i < half; i++) {
                float ang = (float)pos[n] * (float)rope_freq(inv, i, hd, theta), c = cosf(ang), sn = sign * sinf(ang);
                for (int h = 0; h < H; h++) rope_rotate_pair(x + ((size_t)n * H + h) * hd, i, half, c, sn);
            }
    }
    free(table);
    free(inv);
}

void rope_forward(float *x, const int *pos, int N, int H, int hd, double theta) {
    rope_apply(x, pos, N, H, hd, theta, 1.0f);
}

void rope_backward(float *dx, const int *pos, int N, int H, int hd, double theta) {
    rope_apply(dx, pos, N, H, hd, theta, -1.0f);
}

// exp_fast rather than libm's expf (a scalar call per element): the loops below vectorise.
static inline float sigmoidf(float x) { return 1.0f / (1.0f + exp_fast(-x)); }

void swiglu_forward(float *h, const float *g, const float *u, long n) {
#pragma omp parallel for
    for (long i = 0; i < n; i++) h[i] = g[i] * sigmoidf(g[i]) * u[i];
}

void swiglu_backward(float *dg, float *du, const float *dh, const float *g, const float *u, long n) {
#pragma omp parallel for
    for (long i = 0; i < n; i++) {
        float s = sigmoidf(g[i]);
        float silu = g[i] * s;
        du[i] = dh[i] * silu;
        dg[i] = dh[i] * u[i] * s * (1.0f + g[i] * (1.0f - s));
    }
}

// Per (sequence, head) the scores, softmax and weighted sum are small GEMM-shaped steps; OpenBLAS
// (and gemm_bf16) called inside an OpenMP region runs single-threaded, so heads parallelise
// cleanly. Causality is used by blocks of ATT_BLOCK queries: block i needs keys [0, end of block i),
// so the products skip the upper triangle's whole blocks (5/8 of the work at T = 4 blocks, -> 1/2
// as T grows). Skipped terms are exact zeros at the ends of each dot product, so gemm_bf16 gives
// the full products' bits; OpenBLAS may take other fp32 kernels (sum orders) at the smaller shapes.
enum { ATT_BLOCK = 64 };

static inline int att_block_end(int r0, int T) { return r0 + ATT_BLOCK < T ? r0 + ATT_BLOCK : T; }

void attention_forward(float *out, float *probs, const float *q, const float *k, const float *v, int B, int T,
                       int Hq, int Hkv, int hd, int bf16) {
    int group = Hq / Hkv;
    float scale = 1.0f / sqrtf((float)hd);
    int qs = Hq * hd, ks = Hkv * hd;  // row strides
#pragma omp parallel for collapse(2) schedule(dynamic)
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < Hq; h++) {
            int g = h / group;
            const float *qb = q + (size_t)b * T * qs + h * hd;
            const float *kb = k + (size_t)b * T * ks + g * hd;
            const float *vb = v + (size_t)b * T * ks + g * hd;
            float *P = probs + ((size_t)b * Hq + h) * T * T;
            float *ob = out + (size_t)b * T * qs + h * hd;
            for (int r0 = 0; r0 < T; r0 += ATT_BLOCK) {
                int r1 = att_block_end(r0, T);
                float *Pb = P + (size_t)r0 * T;
                gemm_dt(bf16, 0, 1, r1 - r0, r1, hd, scale, qb + (size_t)r0 * qs, qs, kb, ks, 0.0f, Pb, T);
                for (int t = r0; t < r1; t++) {
                    float *Pt = P + (size_t)t * T;
                    float mx = max_of(Pt, t + 1);
                    float sum = 0;
#pragma omp simd reduction(+ : sum)
                    for (int s = 0; s <= t; s++) {
                        Pt[s] = exp_fast(Pt[s] - mx);
                        sum += Pt[s];
                    }
                    float inv = 1.0f / sum;
                    for (int s = 0; s <= t; s++) Pt[s] *= inv;
                    for (int s = t + 1; s < T; s++) Pt[s] = 0;  // saved whole: zeros above the diagonal
                }
                gemm_dt(bf16, 0, 0, r1 - r0, hd, r1, 1.0f, Pb, T, vb, ks, 0.0f, ob + (size_t)r0 * qs, qs);
            }
        }
    }
}

void attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *probs, const float *q,
                        const float *k, const float *v, int B, int T, int Hq, int Hkv, int hd, int bf16, float *work,
                        int nwork) {
    int group = Hq / Hkv;
    float scale = 1.0f / sqrtf((float)hd);
    int qs = Hq * hd, ks = Hkv * hd;
    memset(dk, 0, sizeof(float) * (size_t)B * T * ks);
    memset(dv, 0, sizeof(float) * (size_t)B * T * ks);
    // Parallel over (b, kv head): the query heads of a group write the same dk/dv rows.
#pragma omp parallel for collapse(2) schedule(dynamic) num_threads(nwork)
    for (int b = 0; b < B; b++) {
        for (int g = 0; g < Hkv; g++) {
            float *dS = work + (size_t)omp_get_thread_num() * T * T;
            const float *kb = k + (size_t)b * T * ks + g * hd;
            const float *vb = v + (size_t)b * T * ks + g * hd;
            float *dkb = dk + (size_t)b * T * ks + g * hd;
            float *dvb = dv + (size_t)b * T * ks + g * hd;
            for (int h = g * group; h < (g + 1) * group; h++) {
                const float *qb = q + (size_t)b * T * qs + h * hd;
                const float *P = probs + ((size_t)b * Hq + h) * T * T;
                const float *dob = dout + (size_t)b * T * qs + h * hd;
                float *dqb = dq + (size_t)b * T * qs + h * hd;
                // by query blocks: dP = dO V^T, the softmax backward, dQ = dS K
                for (int r0 = 0; r0 < T; r0 += ATT_BLOCK) {
                    int r1 = att_block_end(r0, T);
                    float *dSb = dS + (size_t)r0 * T;
                    gemm_dt(bf16, 0, 1, r1 - r0, r1, hd, 1.0f, dob + (size_t)r0 * qs, qs, vb, ks, 0.0f, dSb, T);
                    for (int t = r0; t < r1; t++) {
                        const float *Pt = P + (size_t)t * T;
                        float *dSt = dS + (size_t)t * T;
                        float rowdot = 0;
#pragma omp simd reduction(+ : rowdot)
                        for (int s = 0; s <= t; s++) rowdot += dSt[s] * Pt[s];
                        for (int s = 0; s <= t; s++) dSt[s] = Pt[s] * (dSt[s] - rowdot) * scale;
                        for (int s = t + 1; s < r1; s++) dSt[s] = 0;
                    }
                    gemm_dt(bf16, 0, 0, r1 - r0, hd, r1, 1.0f, dSb, T, kb, ks, 0.0f, dqb + (size_t)r0 * qs, qs);
                }
                // by key blocks: key block j is seen by queries [start of block j, T)
                for (int r0 = 0; r0 < T; r0 += ATT_BLOCK) {
                    int r1 = att_block_end(r0, T), n = T - r0;
                    const float *Pc = P + (size_t)r0 * T + r0, *dSc = dS + (size_t)r0 * T + r0;
                    gemm_dt(bf16, 1, 0, r1 - r0, hd, n, 1.0f, Pc, T, dob + (size_t)r0 * qs, qs, 1.0f,
                            dvb + (size_t)r0 * ks, ks);  // dV += P^T dO
                    gemm_dt(bf16, 1, 0, r1 - r0, hd, n, 1.0f, dSc, T, qb + (size_t)r0 * qs, qs, 1.0f,
                            dkb + (size_t)r0 * ks, ks);  // dK += dS^T Q
                }
            }
        }
    }
}

float logsoftmax_row(const float *logits, int n, int target, float *entropy, float *probs) {
    float mx = max_of(logits, n);
    float sum = 0;  // float lanes, summed in vector order: n <= 152k terms in [0, 1]
#pragma omp simd reduction(+ : sum)
    for (int i = 0; i < n; i++) sum += exp_fast(logits[i] - mx);
    double lse = mx + log((double)sum);
    if (entropy || probs) {
        float ent = 0, flse = (float)lse;
#pragma omp simd reduction(+ : ent)
        for (int i = 0; i < n; i++) {
            float lp = logits[i] - flse;
            float p = exp_fast(lp);
            if (probs) probs[i] = p;
            ent -= p * lp;
        }
        if (entropy) *entropy = ent;
    }
    return (float)(logits[target] - lse);
}
