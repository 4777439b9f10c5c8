#include "policy/sampler.h"

#include "policy/ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int sampling_params_validate(const SamplingParams *sp, const char *where, Error *err) {
    if (!(sp->temperature >= 0) || !isfinite(sp->temperature))
        return error_set(err, "%s: temperature must be >= 0 (got %g)", where, sp->temperature);
    if (sp->top_k < 0) return error_set(err, "%s: top_k must be >= 0 (got %d)", where, sp->top_k);
    if (!(sp->top_p > 0 && sp->top_p <= 1)) return error_set(err, "%s: top_p must be in (0, 1] (got %g)", where, sp->top_p);
    if (!(sp->min_p >= 0 && sp->min_p < 1)) return error_set(err, "%s: min_p must be in [0, 1) (got %g)", where, sp->min_p);
    return 0;
}

int sampler_init(Sampler *s, int n_vocab, Error *err) {
    s->n = n_vocab;
    s->prob = malloc(sizeof(float) * n_vocab);
    s->idx = malloc(sizeof(int) * n_vocab);
    if (!s->prob || !s->idx) {
        sampler_free(s);
        return error_set(err, "sampler: out of memory");
    }
    return 0;
}

void sampler_free(Sampler *s) {
    free(s->prob);
    free(s->idx);
    s->prob = NULL;
    s->idx = NULL;
}

static int by_prob_desc(const void *a, const void *b, void *ctx) {
    const float *prob = ctx;
    float pa = prob[*(const int *)a], pb = prob[*(const int *)b];
    if (pa != pb) return pa > pb ? -1 : 1;
    return *(const int *)a - *(const int *)b;  // ties: lower id first, deterministic
}

// Candidates with prob >= thr, sorted by descending probability; returns their count.
static int collect_sorted(Sampler *s, int n, float thr) {
    int k = 0;
    for (int i = 0; i < n; i++)
        if (s->prob[i] >= thr) s->idx[k++] = i;
    qsort_r(s->idx, k, sizeof(int), by_prob_desc, s->prob);
    return k;
}

static int by_id(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

// Draws from the candidates idx[0..k) (ascending ids) proportionally to prob. Walking the kept set in id order, as
// plain sampling does, lets the device sampler (src/policy/cuda/sampler_cuda.cu) draw the same token from the same
// uniform number without sorting.
static int draw(const Sampler *s, int k, Rng *rng) {
    double mass = 0;
    for (int i = 0; i < k; i++) mass += s->prob[s->idx[i]];
    double u = rng_uniform_double(rng) * mass, acc = 0;
    for (int i = 0; i < k; i++) {
        acc += s->prob[s->idx[i]];
        if (u < acc) return s->idx[i];
    }
    return s->idx[k - 1];
}

// log softmax(logits / temp)[tok] over all rows, given the max and log of the row's mass.
static float full_logp(const float *logits, int tok, float mx, float temp, double log_mass) {
    return (float)((double)(logits[tok] - mx) / temp - log_mass);
}

int sampler_sample(Sampler *s, const float *logits, int n_vocab, int n_valid, const SamplingParams *sp, Rng *rng,
                   float *logp) {
    int n = n_valid > 0 && n_valid < n_vocab ? n_valid : n_vocab;
    float temp = sp->temperature > 0 ? sp->temperature : 1.0f;
    float *prob = s->prob;  // a local pointer: through s->prob the stores below compile to scatters
    float mx = max_of(logits, n_vocab), pmax = 0;
    float inv_t = 1.0f / temp, pad = 0, sum = 0;  // pad: mass of rows the tokenizer cannot produce
#pragma omp simd reduction(+ : pad)
    for (int i = n; i < n_vocab; i++) pad += exp_fast((logits[i] - mx) * inv_t);
#pragma omp simd reduction(+ : sum) reduction(max : pmax)
    for (int i = 0; i < n; i++) {
        prob[i] = exp_fast((logits[i] - mx) * inv_t);
        sum += prob[i];
        pmax = prob[i] > pmax ? prob[i] : pmax;
    }
    int best = 0;  // the first most likely token
    while (best < n - 1 && !(prob[best] >= pmax)) best++;
    double full = (double)pad + sum;
    double log_full = log(full);
    float inv = (float)(1.0 / sum);
#pragma omp simd
    for (int i = 0; i < n; i++) prob[i] *= inv;
    if (sp->temperature <= 0) {
        if (logp) *logp = full_logp(logits, best, mx, temp, log_full);
        return best;
    }
    int k, tok;
    if (sp->top_k <= 0 && sp->top_p >= 1.0f && sp->min_p <= 0) {
        // plain sampling: walk the (normalised) probabilities directly
        double u = rng_uniform_double(rng), acc = 0;
        tok = n - 1;
        for (int i = 0; i < n; i++) {
            acc += s->prob[i];
            if (u < acc) {
                tok = i;
                break;
            }
        }
    } else if (sp->top_k <= 0 && sp->top_p >= 1.0f) {
        // no ranking needed: the tokens within min_p of the most likely one
        float floor_p = sp->min_p * s->prob[best];
        k = 0;
        for (int i = 0; i < n; i++)
            if (s->prob[i] >= floor_p) s->idx[k++] = i;
        tok = draw(s, k, rng);
    } else {
        // The k largest / the nucleus are a prefix of the tokens sorted by probability; sort only
        // those above a threshold, lowering it until that prefix is surely inside (exact, and the
        // sort stays small for peaked distributions).
        float thr = 1.0f / (float)n;
        for (;;) {
            k = collect_sorted(s, n, thr);
            double mass = 0;
            for (int i = 0; i < k; i++) mass += s->prob[s->idx[i]];
            // with top-k, top-p acts on the renormalised top-k set (as HF's warpers chain)
            int enough = sp->top_k > 0 ? k >= sp->top_k : mass >= sp->top_p;
            if (enough || thr == 0.0f) break;
            thr = thr > 1e-30f ? thr / 16.0f : 0.0f;
        }
        if (sp->top_k > 0 && k > sp->top_k) k = sp->top_k;
        if (sp->top_p < 1.0f) {
            // the nucleus of the whole distribution, or of the renormalised top-k set (Hugging Face's chained warpers:
            // the smallest prefix whose mass reaches top_p of what is kept)
            double kept = sp->top_k > 0 ? 0 : 1, cum = 0;
            for (int i = 0; sp->top_k > 0 && i < k; i++) kept += s->prob[s->idx[i]];
            for (int i = 0; i < k; i++) {
                cum += s->prob[s->idx[i]];
                if (cum >= sp->top_p * kept) {
                    k = i + 1;
                    break;
                }
            }
        }
        if (sp->min_p > 0) {
            float floor_p = sp->min_p * s->prob[s->idx[0]];
            int keep = 1;
            while (keep < k && s->prob[s->idx[keep]] >= floor_p) keep++;
            k = keep;
        }
        qsort(s->idx, k, sizeof(int), by_id);
        tok = draw(s, k, rng);
    }
    if (logp) *logp = full_logp(logits, tok, mx, temp, log_full);
    return tok;
}
