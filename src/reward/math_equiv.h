// Equivalence of two MATH-style final answers (the text inside \boxed{}), after normalisation:
// exact string, numeric value, symbolic value at random points, and the structures answers come
// in: tuples, intervals, sets, unordered lists, unions, equations and matrices. Anything it cannot
// parse is compared as a string, so it never fails on input, only says "not equal".
#ifndef PIONRL_MATH_EQUIV_H
#define PIONRL_MATH_EQUIV_H

#include <stddef.h>

// 1 when equivalent, 0 otherwise. *rule (may be NULL) gets a static name of the deciding rule:
// "string", "numeric", "symbolic", "tuple", "set", "list", "interval", "union", "equation",
// "matrix", "text", "too complex" (the work budget ran out: nested lists), or "different".
int math_equivalent(const char *pred, size_t pred_len, const char *ref, size_t ref_len, const char **rule);

#endif
