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

// Samples a token among ids [0, n_valid) of logits[0 .. n_vocab): padded vocabulary rows beyond the
// tokenizer are never drawn, and the filters act on the distribution renormalised over the valid
// ids. *logp gets the token's log-probability under the temperature-scaled softmax over all n_vocab
// rows before top-k/top-p/min-p filtering (temperature 0: the plain softmax): exactly what the
// model's scoring forward computes at the same temperature, so the GRPO ratio starts at 1.
int sampler_sample(Sampler *s, const float *logits, int n_vocab, int n_valid, const SamplingParams *sp, Rng *rng,
                   float *logp);

#endif
