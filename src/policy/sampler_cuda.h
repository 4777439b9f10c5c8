// Token sampling on the device (issue 8): sampler_sample of sampler.h for many rows at once, so decode copies back one
// token id and one log-prob per sequence instead of a vocabulary of logits. Implementation:
// src/policy/cuda/sampler_cuda.cu (make CUDA=1).
//
// The same distribution as sampler_sample, and the same token for the same uniform number: the host draws u for each
// row from that sequence's Rng exactly as sampler_sample would (one rng_uniform_double per sampled token, none when
// greedy), and the kernel walks the kept tokens in id order as the CPU does. The two can disagree only where u falls
// within rounding of a boundary between two tokens' cumulative mass (the device sums in another order) or where two
// logits are within rounding of each other at a filter's cut-off.
#ifndef PIONRL_SAMPLER_CUDA_H
#define PIONRL_SAMPLER_CUDA_H

#include "core/error.h"
#include "policy/sampler.h"

#ifdef __cplusplus
extern "C" {
#endif

// For each of `rows` rows of d_logits ([rows, V], device): d_tok[r] gets the sampled id among [0, n_valid) and
// d_logp[r] its log-probability under the temperature-scaled softmax over all V entries (sampler_sample's *logp).
// d_u[r] is row r's uniform number in [0, 1) (unused when sp->temperature is 0: greedy, the first largest logit).
// Device pointers; queued on the per-thread default stream. top_k/top_p select by the same threshold searches whatever
// the vocabulary; each is about 30 passes over the row.
int cuda_sample_rows(int *d_tok, float *d_logp, const float *d_logits, const double *d_u, int rows, int V, int n_valid,
                     const SamplingParams *sp, Error *err);

#ifdef __cplusplus
}
#endif

#endif
