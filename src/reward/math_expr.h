// A small parser and evaluator for the LaTeX math that appears in final answers: numbers (with
// base subscripts like 52_8), variables, + - * / ^ !, implicit multiplication, \frac, \sqrt[n]{},
// \binom, \pi, e, \infty, trig/log functions, |x|, floor/ceil. It exists so that two answers can be
// compared by value (numbers) or by evaluating both at the same random points (expressions).
// Input is a normalised answer (see math_normalize.h): no spaces, \dfrac already \frac.
// Parsing is iterative where input can be long and recursion is capped, so hostile input fails fast.
#ifndef PIONRL_MATH_EXPR_H
#define PIONRL_MATH_EXPR_H

#include <stddef.h>

#define MATH_EXPR_MAX_NODES 1024
#define MATH_EXPR_MAX_VARS 16

typedef struct {
    unsigned char op;     // node kind (private enum in math_expr.c)
    short a, b;           // child node indices (-1 none)
    double value;         // constant value, or variable index for variables
} MathNode;

// Variables shared by the expressions being compared: both sides are parsed against one table so
// that "x" means the same slot on both.
typedef struct {
    int n;
    char name[MATH_EXPR_MAX_VARS][16];
} MathVars;

typedef struct {
    MathNode nodes[MATH_EXPR_MAX_NODES];
    int n_nodes;
    int root;
    int uses_vars;  // 1 when the expression depends on a variable
    int has_infty;  // 1 when it contains \infty (an infinite value is then meant, not an overflow)
} MathExpr;

// Parses text[0..len) into expr, adding new variable names to vars. Returns 0, or -1 when the text
// is not an expression this parser understands (the caller then compares strings).
int math_expr_parse(const char *text, size_t len, MathVars *vars, MathExpr *expr);
// Evaluates at the given variable values (one per vars slot). NaN when undefined there.
double math_expr_eval(const MathExpr *expr, const double *var_values);

#endif
