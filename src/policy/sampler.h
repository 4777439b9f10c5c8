// Token sampling from next-token logits: temperature, top-k, top-p (nucleus), min-p, applied in
// Hugging Face's order (temperature, top-k, top-p, min-p). temperature 0 means greedy.
#ifndef PIONRL_SAMPLER_H
#define PIONRL_SAMPLER_H

#include "core/error.h"
#include "core/rng.h"

typedef struct {
    float temperature;  // 0 = greedy (argmax)
    int top_k;          // 0 = off
    float top_p;        // 1 = off
    float min_p;        // 0 = off
} SamplingParams;

int sampling_params_validate(const SamplingParams *sp, const char *where, Error *err);

// Work space for n_vocab candidates.
typedef struct {
    int n;
    float *prob;
    int *idx;
} Sampler;

int sampler_init(Sampler *s, int n_vocab, Error *err);
void sampler_free(Sampler *s);

// Samples a token among ids [0, n_valid) (padded vocabulary rows beyond the tokenizer are never
// drawn). *logp gets the token's log-probability under the temperature-scaled distribution before
// top-k/top-p/min-p filtering (temperature 0: the plain softmax), which is what a policy scored at
// the same temperature reproduces.
int sampler_sample(Sampler *s, const float *logits, int n_valid, const SamplingParams *sp, Rng *rng, float *logp);

#endif
