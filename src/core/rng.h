// Deterministic random numbers (xoshiro256** seeded through splitmix64). The whole state is the
// struct, so it can be saved with a checkpoint and restored bit-exactly.
#ifndef PIONRL_RNG_H
#define PIONRL_RNG_H

#include <stdint.h>

typedef struct {
    uint64_t s[4];
} Rng;

void rng_seed(Rng *rng, uint64_t seed);
uint64_t rng_u64(Rng *rng);
uint32_t rng_u32(Rng *rng);
// Uniform in [0, 1) with 24 random bits (exactly representable as float).
float rng_uniform(Rng *rng);
// Uniform double in [0, 1) with 53 random bits.
double rng_uniform_double(Rng *rng);
// Standard normal (Box-Muller on doubles).
double rng_normal(Rng *rng);
// Uniform integer in [0, n) without modulo bias; n > 0.
uint64_t rng_below(Rng *rng, uint64_t n);
// An independent stream derived from this one (for per-sequence / per-thread use).
Rng rng_split(Rng *rng);

#endif
