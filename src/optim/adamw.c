#include "optim/adamw.h"

#include <math.h>

double adamw_update(float *p, const float *g, float *m, float *v, size_t n, float lr, float beta1, float beta2,
                    float eps, float weight_decay, long step) {
    // Same order of operations as torch's single-tensor AdamW: decay, moments, then
    // p -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps), bias corrections computed in double.
    double bc1 = 1.0 - pow((double)beta1, (double)step);
    double bc2 = 1.0 - pow((double)beta2, (double)step);
    float step_size = (float)(lr / bc1);
    float bc2_sqrt = (float)sqrt(bc2);
    float decay = 1.0f - lr * weight_decay;
    float one_b1 = 1.0f - beta1, one_b2 = 1.0f - beta2;
    double dsum = 0.0;
    // simd reduction: the double sum of squared changes would otherwise be one serial add chain,
    // which made this loop latency-bound (the order is fixed per build, so runs stay reproducible)
#pragma omp simd reduction(+ : dsum)
    for (size_t i = 0; i < n; i++) {
        float old = p[i];
        float q = old * decay;
        float gi = g[i];
        float mi = beta1 * m[i] + one_b1 * gi;
        float vi = beta2 * v[i] + one_b2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        float denom = sqrtf(vi) / bc2_sqrt + eps;
        q -= step_size * (mi / denom);
        p[i] = q;
        double d = (double)q - (double)old;
        dsum += d * d;
    }
    return dsum;
}
