// AdamW (Loshchilov & Hutter; torch.optim.AdamW semantics): decoupled weight decay
// p <- p (1 - lr wd), then m, v moments with bias correction and eps outside the square root.
#ifndef PIONRL_ADAMW_H
#define PIONRL_ADAMW_H

#include <stddef.h>

typedef struct {
    float lr;  // <= 0 in an OptimConfig means "use the top-level lr"
    float beta1, beta2;
    float eps;
    float weight_decay;  // < 0 in an OptimConfig means "use the top-level weight_decay"
} AdamWConfig;

// One AdamW step on n elements; step is the 1-based step count after this update (for the bias
// correction). Returns the sum of squared parameter changes (for update-RMS diagnostics).
double adamw_update(float *p, const float *g, float *m, float *v, size_t n, float lr, float beta1, float beta2,
                    float eps, float weight_decay, long step);

#endif
