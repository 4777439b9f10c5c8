// Causal grouped-query attention (ops.c) against a direct float64 implementation of the formulas:
// outputs, saved probabilities (zeros above the diagonal) and the three input gradients, at
// lengths that end inside, on and past the edges of the kernel's query blocks.
#include "test.h"

#include "core/rng.h"
#include "policy/ops.h"

typedef struct {
    int B, T, Hq, Hkv, hd;
} Shape;

// out, probs and the gradients of L = sum(dout * out) by the textbook formulas, in float64.
static void attention_reference(Shape s, const float *q, const float *k, const float *v, const float *dout,
                                double *out, double *probs, double *dq, double *dk, double *dv) {
    int T = s.T, hd = s.hd, qs = s.Hq * hd, ks = s.Hkv * hd, group = s.Hq / s.Hkv;
    double scale = 1.0 / sqrt((double)hd);
    size_t nq = (size_t)s.B * T * qs, nk = (size_t)s.B * T * ks;
    memset(dq, 0, sizeof(double) * nq);
    memset(dk, 0, sizeof(double) * nk);
    memset(dv, 0, sizeof(double) * nk);
    double *dP = malloc(sizeof(double) * T);
    for (int b = 0; b < s.B; b++)
        for (int h = 0; h < s.Hq; h++) {
            int g = h / group;
            double *P = probs + ((size_t)b * s.Hq + h) * T * T;
            for (int t = 0; t < T; t++) {
                const float *qt = q + ((size_t)b * T + t) * qs + h * hd;
                double mx = -INFINITY, sum = 0, *Pt = P + (size_t)t * T;
                for (int u = 0; u < T; u++) {
                    double sc = 0;
                    const float *ku = k + ((size_t)b * T + u) * ks + g * hd;
                    for (int i = 0; i < hd; i++) sc += (double)qt[i] * ku[i];
                    Pt[u] = u <= t ? sc * scale : -INFINITY;
                    if (Pt[u] > mx) mx = Pt[u];
                }
                for (int u = 0; u < T; u++) sum += (Pt[u] = exp(Pt[u] - mx));
                for (int u = 0; u < T; u++) Pt[u] /= sum;
                double *ot = out + ((size_t)b * T + t) * qs + h * hd;
                const float *dot = dout + ((size_t)b * T + t) * qs + h * hd;
                double rowdot = 0;
                for (int i = 0; i < hd; i++) ot[i] = 0;
                for (int u = 0; u <= t; u++) {
                    const float *vu = v + ((size_t)b * T + u) * ks + g * hd;
                    double *dvu = dv + ((size_t)b * T + u) * ks + g * hd;
                    dP[u] = 0;
                    for (int i = 0; i < hd; i++) {
                        ot[i] += Pt[u] * vu[i];
                        dP[u] += (double)dot[i] * vu[i];
                        dvu[i] += Pt[u] * dot[i];
                    }
                    rowdot += dP[u] * Pt[u];
                }
                for (int u = 0; u <= t; u++) {
                    double dS = Pt[u] * (dP[u] - rowdot) * scale;
                    const float *ku = k + ((size_t)b * T + u) * ks + g * hd;
                    double *dku = dk + ((size_t)b * T + u) * ks + g * hd;
                    double *dqt = dq + ((size_t)b * T + t) * qs + h * hd;
                    for (int i = 0; i < hd; i++) {
                        dqt[i] += dS * ku[i];
                        dku[i] += dS * qt[i];
                    }
                }
            }
        }
    free(dP);
}

// max |got - want| / max |want|
static double rel_err(const float *got, const double *want, size_t n) {
    double e = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        e = fmax(e, fabs(got[i] - want[i]));
        m = fmax(m, fabs(want[i]));
    }
    return e / (m > 0 ? m : 1);
}

static void check_shape(Shape s, int bf16, double tol) {
    size_t nq = (size_t)s.B * s.T * s.Hq * s.hd, nk = (size_t)s.B * s.T * s.Hkv * s.hd;
    size_t np = (size_t)s.B * s.Hq * s.T * s.T;
    float *q = malloc(sizeof(float) * nq), *k = malloc(sizeof(float) * nk), *v = malloc(sizeof(float) * nk);
    float *dout = malloc(sizeof(float) * nq), *out = malloc(sizeof(float) * nq), *probs = malloc(sizeof(float) * np);
    float *dq = malloc(sizeof(float) * nq), *dk = malloc(sizeof(float) * nk), *dv = malloc(sizeof(float) * nk);
    double *rout = malloc(sizeof(double) * nq), *rprobs = malloc(sizeof(double) * np);
    double *rdq = malloc(sizeof(double) * nq), *rdk = malloc(sizeof(double) * nk), *rdv = malloc(sizeof(double) * nk);
    Rng rng;
    rng_seed(&rng, 5 + s.T);
    for (size_t i = 0; i < nq; i++) q[i] = 1.5f * (float)rng_normal(&rng), dout[i] = (float)rng_normal(&rng);
    for (size_t i = 0; i < nk; i++) k[i] = 1.5f * (float)rng_normal(&rng), v[i] = (float)rng_normal(&rng);
    for (size_t i = 0; i < np; i++) probs[i] = NAN;  // every entry must be written, the upper triangle as 0
    attention_forward(out, probs, q, k, v, s.B, s.T, s.Hq, s.Hkv, s.hd, bf16);
    int nwork = 3;  // more work blocks than this machine may have threads: each thread takes its own
    float *work = malloc(sizeof(float) * nwork * s.T * s.T);
    attention_backward(dq, dk, dv, dout, probs, q, k, v, s.B, s.T, s.Hq, s.Hkv, s.hd, bf16, work, nwork);
    free(work);
    attention_reference(s, q, k, v, dout, rout, rprobs, rdq, rdk, rdv);
    size_t upper_nonzero = 0;
    for (size_t i = 0; i < np; i++) {
        size_t t = i / s.T % s.T, u = i % s.T;
        if (u > t && probs[i] != 0.0f) upper_nonzero++;
    }
    double eo = rel_err(out, rout, nq), ep = rel_err(probs, rprobs, np), eq = rel_err(dq, rdq, nq);
    double ek = rel_err(dk, rdk, nk), ev = rel_err(dv, rdv, nk);
    CHECK_MSG(upper_nonzero == 0, "T %d: %zu probabilities above the diagonal are not 0", s.T, upper_nonzero);
    CHECK_MSG(eo <= tol && ep <= tol && eq <= tol && ek <= tol && ev <= tol,
              "T %d bf16 %d: out %.2e probs %.2e dq %.2e dk %.2e dv %.2e (tolerance %.0e)", s.T, bf16, eo, ep, eq, ek,
              ev, tol);
    free(q), free(k), free(v), free(dout), free(out), free(probs), free(dq), free(dk), free(dv);
    free(rout), free(rprobs), free(rdq), free(rdk), free(rdv);
}

// Lengths 1, one block (64), a block and a partial one (100), three blocks with a partial (150);
// GQA with two query heads per key/value head.
static void test_attention_fp32(void) {
    int lens[] = {1, 5, 64, 100, 150};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) check_shape((Shape){2, lens[i], 4, 2, 16}, 0, 1e-5);
}

// bf16 inputs to the four products (scores, weighted sum, and their backward): relative errors of
// a few bf16 roundings (2^-8 each) through the softmax.
static void test_attention_bf16(void) {
    int lens[] = {1, 64, 150};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) check_shape((Shape){2, lens[i], 4, 2, 16}, 1, 2e-2);
}

int main(void) {
    RUN(test_attention_fp32);
    RUN(test_attention_bf16);
    return test_summary("test_attention");
}
