// Stop strings for generation: a sequence stops once its decoded completion contains one of them.
// Only the tail that can hold a new match is decoded at each step.
#ifndef PIONRL_STOP_STRINGS_H
#define PIONRL_STOP_STRINGS_H

#include "policy/tokenizer.h"

#define STOP_STRINGS_MAX 8

typedef struct {
    const Tokenizer *tok;
    const char *stops[STOP_STRINGS_MAX];
    int num_stops;
} StopStrings;

// GenerateParams.stop_fn: returns 1 when the last tokens' text contains a stop string.
int stop_strings_check(void *ctx, int seq, const int *tokens, int n);

#endif
