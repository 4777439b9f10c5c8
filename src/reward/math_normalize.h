// LaTeX answer normalisation for MATH-style answers: removes what does not change the value
// (\left/\right, \!, spacing, $ signs, degrees, units in \text{}, a leading "x =") and rewrites
// equivalent spellings to one form (\dfrac -> \frac, \frac12 -> \frac{1}{2}, .5 -> 0.5, 10,080 ->
// 10080). The result is what the exact-string rule compares and what the expression parser reads.
#ifndef PIONRL_MATH_NORMALIZE_H
#define PIONRL_MATH_NORMALIZE_H

#include <stddef.h>

// Answers longer than this are compared as raw strings only (bounds the work on hostile input).
#define MATH_ANSWER_MAX 2048
// Size of the output buffer math_normalize needs.
#define MATH_NORM_CAP (4 * MATH_ANSWER_MAX + 64)

typedef struct {
    int had_percent;  // a % sign was removed (15\% may mean 0.15)
    int had_text;     // the answer was text only (\text{Sunday}): compare case-insensitively
} MathNormInfo;

// Normalises in[0..len) into out (capacity MATH_NORM_CAP). Returns 0, or -1 when len exceeds
// MATH_ANSWER_MAX (out then holds nothing useful).
int math_normalize(const char *in, size_t len, char *out, MathNormInfo *info);

#endif
