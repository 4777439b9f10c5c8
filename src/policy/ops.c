#include "policy/ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/blas.h"

void linear_forward(float *out, const float *in, const float *W, const float *b, int N, int I, int O) {
    if (b) {
        for (int n = 0; n < N; n++) memcpy(out + (size_t)n * O, b, sizeof(float) * O);
    }
    sgemm(0, 1, N, O, I, 1.0f, in, I, W, I, b ? 1.0f : 0.0f, out, O);
}

void linear_backward(float *din, int din_accumulate, float *dW, float *db, const float *dout, const float *in,
                     const float *W, int N, int I, int O) {
    if (din) sgemm(0, 0, N, I, O, 1.0f, dout, O, W, I, din_accumulate ? 1.0f : 0.0f, din, I);
    if (dW) sgemm(1, 0, O, I, N, 1.0f, dout, O, in, I, 1.0f, dW, I);
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
        for (int c = 0; c < C; c++) ss += (double)xr[c] * xr[c];
        float r = (float)(1.0 / sqrt(ss / C + eps));
        rstd[n] = r;
        for (int c = 0; c < C; c++) yr[c] = xr[c] * r * w[c];
    }
}

void rmsnorm_backward(float *dx, int accumulate, float *dw, const float *dy, const float *x, const float *w,
                      const float *rstd, int N, int C) {
    // dw is shared across rows: accumulate per thread then reduce, to keep it deterministic.
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * C, *dyr = dy + (size_t)n * C;
        float r = rstd[n];
        for (int c = 0; c < C; c++) dw[c] += dyr[c] * xr[c] * r;
    }
#pragma omp parallel for
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * C, *dyr = dy + (size_t)n * C;
        float *dxr = dx + (size_t)n * C;
        float r = rstd[n];
        double dot = 0;  // mean over c of (dy * w) * xhat
        for (int c = 0; c < C; c++) dot += (double)dyr[c] * w[c] * xr[c] * r;
        float m = (float)(dot / C);
        for (int c = 0; c < C; c++) {
            float g = r * (dyr[c] * w[c] - xr[c] * r * m);
            dxr[c] = accumulate ? dxr[c] + g : g;
        }
    }
}

static void rope_apply(float *x, const int *pos, int N, int H, int hd, double theta, float sign) {
    int half = hd / 2;
#pragma omp parallel
    {
        float *cs = malloc(sizeof(float) * hd);  // cos in [0, half), sin in [half, hd)
        double *inv = malloc(sizeof(double) * half);
        for (int i = 0; i < half; i++) inv[i] = pow(theta, -2.0 * i / hd);
#pragma omp for
        for (int n = 0; n < N; n++) {
            for (int i = 0; i < half; i++) {
                // fp32 angles as in transformers: inv_freq (fp32) * position (fp32)
                float ang = (float)pos[n] * (float)inv[i];
                cs[i] = cosf(ang);
                cs[half + i] = sign * sinf(ang);
            }
            for (int h = 0; h < H; h++) {
                float *v = x + ((size_t)n * H + h) * hd;
                for (int i = 0; i < half; i++) {
                    float a = v[i], b = v[i + half], c = cs[i], s = cs[half + i];
                    v[i] = a * c - b * s;
                    v[i + half] = b * c + a * s;
                }
            }
        }
        free(cs);
        free(inv);
    }
}

void rope_forward(float *x, const int *pos, int N, int H, int hd, double theta) {
    rope_apply(x, pos, N, H, hd, theta, 1.0f);
}

void rope_backward(float *dx, const int *pos, int N, int H, int hd, double theta) {
    rope_apply(dx, pos, N, H, hd, theta, -1.0f);
}

static inline float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

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

void attention_forward(float *out, float *probs, const float *q, const float *k, const float *v, int B, int T,
                       int Hq, int Hkv, int hd) {
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
            for (int t = 0; t < T; t++) {
                const float *qt = qb + (size_t)t * qs;
                float *Pt = P + (size_t)t * T;
                float mx = -INFINITY;
                for (int s = 0; s <= t; s++) {
                    const float *ks_ = kb + (size_t)s * ks;
                    float dot = 0;
                    for (int d = 0; d < hd; d++) dot += qt[d] * ks_[d];
                    dot *= scale;
                    Pt[s] = dot;
                    if (dot > mx) mx = dot;
                }
                float sum = 0;
                for (int s = 0; s <= t; s++) {
                    Pt[s] = expf(Pt[s] - mx);
                    sum += Pt[s];
                }
                float inv = 1.0f / sum;
                for (int s = 0; s <= t; s++) Pt[s] *= inv;
                for (int s = t + 1; s < T; s++) Pt[s] = 0;
                float *ot = ob + (size_t)t * qs;
                for (int d = 0; d < hd; d++) ot[d] = 0;
                for (int s = 0; s <= t; s++) {
                    const float *vs = vb + (size_t)s * ks;
                    float p = Pt[s];
                    for (int d = 0; d < hd; d++) ot[d] += p * vs[d];
                }
            }
        }
    }
}

void attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *probs, const float *q,
                        const float *k, const float *v, int B, int T, int Hq, int Hkv, int hd) {
    int group = Hq / Hkv;
    float scale = 1.0f / sqrtf((float)hd);
    int qs = Hq * hd, ks = Hkv * hd;
    memset(dk, 0, sizeof(float) * (size_t)B * T * ks);
    memset(dv, 0, sizeof(float) * (size_t)B * T * ks);
    // Parallel over (b, kv head): the query heads of a group write the same dk/dv rows.
#pragma omp parallel for collapse(2) schedule(dynamic)
    for (int b = 0; b < B; b++) {
        for (int g = 0; g < Hkv; g++) {
            float *dP = malloc(sizeof(float) * T);
            for (int h = g * group; h < (g + 1) * group; h++) {
                const float *qb = q + (size_t)b * T * qs + h * hd;
                const float *kb = k + (size_t)b * T * ks + g * hd;
                const float *vb = v + (size_t)b * T * ks + g * hd;
                const float *P = probs + ((size_t)b * Hq + h) * T * T;
                const float *dob = dout + (size_t)b * T * qs + h * hd;
                float *dqb = dq + (size_t)b * T * qs + h * hd;
                float *dkb = dk + (size_t)b * T * ks + g * hd;
                float *dvb = dv + (size_t)b * T * ks + g * hd;
                for (int t = 0; t < T; t++) {
                    const float *Pt = P + (size_t)t * T;
                    const float *dot_ = dob + (size_t)t * qs;
                    const float *qt = qb + (size_t)t * qs;
                    float *dqt = dqb + (size_t)t * qs;
                    float rowdot = 0;
                    for (int s = 0; s <= t; s++) {
                        const float *vs = vb + (size_t)s * ks;
                        float acc = 0;
                        for (int d = 0; d < hd; d++) acc += dot_[d] * vs[d];
                        dP[s] = acc;
                        rowdot += acc * Pt[s];
                        float p = Pt[s];
                        float *dvs = dvb + (size_t)s * ks;
                        for (int d = 0; d < hd; d++) dvs[d] += p * dot_[d];
                    }
                    for (int d = 0; d < hd; d++) dqt[d] = 0;
                    for (int s = 0; s <= t; s++) {
                        float dS = Pt[s] * (dP[s] - rowdot) * scale;
                        const float *ks_ = kb + (size_t)s * ks;
                        float *dks = dkb + (size_t)s * ks;
                        for (int d = 0; d < hd; d++) {
                            dqt[d] += dS * ks_[d];
                            dks[d] += dS * qt[d];
                        }
                    }
                }
            }
            free(dP);
        }
    }
}

float logsoftmax_row(const float *logits, int n, int target, float *entropy, float *probs) {
    float mx = -INFINITY;
    for (int i = 0; i < n; i++)
        if (logits[i] > mx) mx = logits[i];
    double sum = 0;
    for (int i = 0; i < n; i++) sum += exp((double)(logits[i] - mx));
    double lse = mx + log(sum);
    if (entropy || probs) {
        double ent = 0;
        for (int i = 0; i < n; i++) {
            double lp = logits[i] - lse;
            double p = exp(lp);
            if (probs) probs[i] = (float)p;
            ent -= p * lp;
        }
        if (entropy) *entropy = (float)ent;
    }
    return (float)(logits[target] - lse);
}
