// Synthetic verifiable task: arithmetic word problems with integer answers, rendered GSM8K style
// (a one-line worked solution ending in "#### <answer>"). Every example is a pure function of
// (config, seed, index), so the training stream is infinite and reproducible, and the eval set is
// a fixed range of indices under its own seed. Difficulty: the number of operations and the size
// of the operands.
#ifndef PIONRL_SYNTH_H
#define PIONRL_SYNTH_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "core/error.h"

typedef struct {
    int min_ops, max_ops;    // operations per problem, 1..SYNTH_MAX_OPS (drawn uniformly)
    int max_operand;         // operands drawn from [1, max_operand] (2..100000)
    int allow_sub;           // 1: "gives away"/"eats" steps (results never go below zero)
} SynthConfig;

#define SYNTH_MAX_OPS 8

typedef struct {
    char question[512];  // "Mia has 23 apples. She buys 15 more. ... How many apples does Mia have now?"
    char solution[256];  // "23 + 15 = 38. 38 - 7 = 31. #### 31"
    char answer[24];     // "31"
    int num_ops;
} SynthExample;

// Defaults: 1-2 operations, operands up to 20, subtraction on.
void synth_config_default(SynthConfig *c);
int synth_config_validate(const SynthConfig *c, const char *where, Error *err);
// Reads {"min_ops", "max_ops", "max_operand", "allow_sub"} over the values already in c; unknown
// keys and out-of-range values are errors naming where.key.
int synth_config_from_json(const cJSON *obj, SynthConfig *c, const char *where, Error *err);

// Example `index` of the stream `seed`: deterministic, independent of any other call.
void synth_example(const SynthConfig *c, uint64_t seed, uint64_t index, SynthExample *out);

// Checks a solution line the way the generator writes it: every "a + b = c" / "a - b = c" step is
// right and the "####" answer equals the last result. 1 when consistent, 0 otherwise (for tests
// and for users' own generators).
int synth_solution_is_consistent(const char *solution);

#endif
