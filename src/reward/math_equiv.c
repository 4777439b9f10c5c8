#include "reward/math_equiv.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/rng.h"
#include "reward/math_expr.h"
#include "reward/math_normalize.h"

// Nested structures deeper than this (tuples of sets of ...) compare as strings.
#define MAX_STRUCT_DEPTH 4
// Lists longer than this compare as strings (pairwise matching is quadratic).
#define MAX_ITEMS 64
#define N_POINTS 6

typedef struct {
    const char *s;
    size_t n;
} Span;

// Comparisons allowed per answer pair: nested unordered lists cost (items^2)^depth pairwise checks,
// so a hostile 2 KB answer could otherwise take seconds. Realistic answers use a few dozen.
#define WORK_BUDGET 20000

typedef struct {
    int pred_percent, ref_percent;
    int budget;  // equiv_span calls left
} Ctx;

static int equiv_span(Span a, Span b, int depth, Ctx *ctx, const char **rule);


static int starts(Span a, size_t at, const char *lit) {
    size_t l = strlen(lit);
    return at + l <= a.n && memcmp(a.s + at, lit, l) == 0;
}

// Bracket depth change of the token at i (\{ and \} count as brackets); sets *skip to its length.
static int bracket_delta(Span a, size_t i, size_t *skip) {
    char c = a.s[i];
    *skip = 1;
    if (c == '\\' && i + 1 < a.n) {
        *skip = 2;
        if (a.s[i + 1] == '{') return 1;
        if (a.s[i + 1] == '}') return -1;
        return 0;
    }
    if (c == '(' || c == '[' || c == '{') return 1;
    if (c == ')' || c == ']' || c == '}') return -1;
    return 0;
}

// Splits a at top-level occurrences of sep (depth 0). Returns the number of parts (<= max), or -1
// when there are more than max or the brackets do not balance.
static int split_top(Span a, const char *sep, Span *parts, int max) {
    size_t sl = strlen(sep), start = 0, skip;
    int depth = 0, n = 0;
    for (size_t i = 0; i < a.n; i += skip) {
        if (depth == 0 && starts(a, i, sep) && !(sep[0] == '\\' && i + sl < a.n &&
                                                 ((a.s[i + sl] >= 'a' && a.s[i + sl] <= 'z')))) {
            if (n >= max) return -1;
            parts[n++] = (Span){a.s + start, i - start};
            skip = sl;
            start = i + sl;
            continue;
        }
        depth += bracket_delta(a, i, &skip);
        if (depth < 0) return -1;
    }
    if (depth != 0 || n >= max) return -1;
    parts[n++] = (Span){a.s + start, a.n - start};
    return n;
}

// If the whole span is one bracketed group, returns its opener kind ('(', '[', 's' for \{) and sets
// *inner and *close (')' or ']' or 's'). Interval ends may mix: [a,b).
static int enclosed(Span a, Span *inner, char *close) {
    if (a.n < 2) return 0;
    size_t open_len = 1;
    char open = a.s[0];
    if (open == '\\' && a.s[1] == '{') open = 's', open_len = 2;
    else if (open != '(' && open != '[') return 0;
    int depth = 0;
    size_t skip;
    for (size_t i = 0; i < a.n; i += skip) {
        depth += bracket_delta(a, i, &skip);
        if (depth == 0) {
            if (i + skip != a.n) return 0;
            char c = a.s[i] == '\\' ? 's' : a.s[i];
            if (c == '}') return 0;
            *close = c;
            *inner = (Span){a.s + open_len, i - open_len};
            return open;
        }
    }
    return 0;
}

// Equal values: integers exactly (so 1000001 is not 1000000; none beyond 2^53), other values to a
// relative 1e-9, and a value against exact zero to 1e-10 (sin(pi) is 1.2e-16, not 0).
static int near(double a, double b) {
    if (isnan(a) || isnan(b) || isinf(a) || isinf(b)) return 0;  // infinities are decided by the caller
    // Integers beyond 2^53 are not exact in a double: 2^{100}-3 and 2^{100}-2 evaluate the same.
    // Undecidable by value, so not equal (the string rules had their chance).
    if (fabs(a) >= 9007199254740992.0 && a == floor(a)) return 0;
    if (a == b) return 1;
    if (a == floor(a) && b == floor(b)) return 0;
    if (a == 0 || b == 0) return fabs(a - b) <= 1e-10;
    return fabs(a - b) <= 1e-9 * fmax(fabs(a), fabs(b));
}

// Infinite results are the same only when both say \infty with the same sign; an overflow
// (2^{4182}) cannot be decided by value.
static int near_or_infinite(double a, double b, int a_infty, int b_infty) {
    if (isinf(a) || isinf(b)) return isinf(a) && isinf(b) && a == b && a_infty && b_infty;
    return near(a, b);
}

// Compares two parsed expressions: numerically when neither has variables, else at random points.
// `k_free` allows a constant factor (equations: 2y-4x-2=0 is y-2x-1=0).
static int expr_compare(const MathExpr *ea, const MathExpr *eb, const MathVars *vars, int k_free) {

    Rng rng;
    rng_seed(&rng, 0x5eed1234u);
    double v[MATH_EXPR_MAX_VARS];
    int valid = 0;
    double k = NAN;
    for (int p = 0; p < 4 * N_POINTS && valid < N_POINTS; p++) {
        // Both signs, so |x| is not x and \sqrt{x^2} is |x|; points where a side is undefined
        // (\sqrt{x} at x < 0) are skipped below.
        for (int i = 0; i < vars->n; i++) {
            double m = 0.3 + 2.2 * rng_uniform_double(&rng);
            v[i] = (rng_u32(&rng) & 1) ? -m : m;
        }
        double a = math_expr_eval(ea, v), b = math_expr_eval(eb, v);
        if (!isfinite(a) || !isfinite(b)) continue;
        if (k_free) {
            if (fabs(b) < 1e-9) {
                if (fabs(a) > 1e-9) return 0;
                continue;
            }
            if (isnan(k)) k = a / b;
            if (!(k != 0) || !near(a, k * b)) return 0;
        } else if (!near(a, b)) {
            return 0;
        }
        valid++;
    }
    return valid >= 2;
}

static int numeric_or_symbolic(Span a, Span b, Ctx *ctx, const char **rule) {
    MathVars vars = {0};
    MathExpr ea, eb;
    if (math_expr_parse(a.s, a.n, &vars, &ea) || math_expr_parse(b.s, b.n, &vars, &eb)) return 0;
    if (!ea.uses_vars && !eb.uses_vars) {
        *rule = "numeric";
        double x = math_expr_eval(&ea, NULL), y = math_expr_eval(&eb, NULL);
        if (near_or_infinite(x, y, ea.has_infty, eb.has_infty)) return 1;
        // 15\% against 0.15: a removed percent sign may mean a factor of 100 on either side.
        if (ctx->pred_percent && near(x / 100, y)) return 1;
        if (ctx->ref_percent && near(x, y / 100)) return 1;
        return 0;
    }
    *rule = "symbolic";
    return expr_compare(&ea, &eb, &vars, 0);
}

// l1 = r1 against l2 = r2: the same equation when l1 - r1 is a constant multiple of l2 - r2.
static int equation_equiv(Span a, Span b) {
    Span pa[2], pb[2];
    if (split_top(a, "=", pa, 2) != 2 || split_top(b, "=", pb, 2) != 2) return 0;
    char da[MATH_NORM_CAP], db[MATH_NORM_CAP];
    if (pa[0].n + pa[1].n + 8 > sizeof da || pb[0].n + pb[1].n + 8 > sizeof db) return 0;
    // Build "(l)-(r)" text for each side and parse it.
    size_t w = 0;
    da[w++] = '(', memcpy(da + w, pa[0].s, pa[0].n), w += pa[0].n;
    memcpy(da + w, ")-(", 3), w += 3, memcpy(da + w, pa[1].s, pa[1].n), w += pa[1].n, da[w++] = ')';
    size_t wa = w;
    w = 0;
    db[w++] = '(', memcpy(db + w, pb[0].s, pb[0].n), w += pb[0].n;
    memcpy(db + w, ")-(", 3), w += 3, memcpy(db + w, pb[1].s, pb[1].n), w += pb[1].n, db[w++] = ')';
    MathVars vars = {0};
    MathExpr ea, eb;
    if (math_expr_parse(da, wa, &vars, &ea) || math_expr_parse(db, w, &vars, &eb)) return 0;
    // Without variables a constant factor would make any two false statements equal (0.56 = 57
    // against 0.56 = 56): such equations only match as strings.
    if (!ea.uses_vars || !eb.uses_vars) return 0;
    return expr_compare(&ea, &eb, &vars, 1);
}

// Pairwise equivalence in order.
static int items_ordered(Span *x, Span *y, int n, int depth, Ctx *ctx) {
    const char *r;
    for (int i = 0; i < n; i++)
        if (!equiv_span(x[i], y[i], depth + 1, ctx, &r)) return 0;
    return 1;
}

// Multiset equivalence: every item of x matches a distinct item of y.
static int items_unordered(Span *x, Span *y, int n, int depth, Ctx *ctx) {
    char used[MAX_ITEMS] = {0};
    const char *r;
    for (int i = 0; i < n; i++) {
        int found = 0;
        for (int j = 0; j < n && !found; j++) {
            if (used[j] || !equiv_span(x[i], y[j], depth + 1, ctx, &r)) continue;
            used[j] = 1;
            found = 1;
        }
        if (!found) return 0;
    }
    return 1;
}

// \begin{pmatrix}a&b\\c&d\end{pmatrix} (also bmatrix, matrix, vmatrix): the cells, row-major.
static int matrix_cells(Span a, Span *cells, int max, int *rows, int *cols) {
    static const char *const KINDS[] = {"pmatrix", "bmatrix", "matrix", "vmatrix", "Bmatrix", NULL};
    for (const char *const *k = KINDS; *k; k++) {
        char open[32], close[32];
        snprintf(open, sizeof open, "\\begin{%s}", *k);
        snprintf(close, sizeof close, "\\end{%s}", *k);
        size_t ol = strlen(open), cl = strlen(close);
        if (a.n < ol + cl || memcmp(a.s, open, ol) != 0 || memcmp(a.s + a.n - cl, close, cl) != 0) continue;
        Span body = {a.s + ol, a.n - ol - cl};
        Span row_spans[MAX_ITEMS];
        int nr = split_top(body, "\\\\", row_spans, MAX_ITEMS);
        if (nr < 1) return -1;
        if (nr > 1 && row_spans[nr - 1].n == 0) nr--;  // trailing \\ before \end
        int n = 0, nc = -1;
        for (int r = 0; r < nr; r++) {
            int c = split_top(row_spans[r], "&", cells + n, max - n);
            if (c < 1 || (nc >= 0 && c != nc)) return -1;
            nc = c;
            n += c;
        }
        *rows = nr;
        *cols = nc;
        return n;
    }
    return -1;
}

static int is_alpha_only(Span a) {
    if (a.n == 0) return 0;
    for (size_t i = 0; i < a.n; i++)
        if (!((a.s[i] >= 'a' && a.s[i] <= 'z') || (a.s[i] >= 'A' && a.s[i] <= 'Z'))) return 0;
    return 1;
}

static int is_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// A name that can stand on the left of an answer: x, x_1, a_{n}, \theta, f(x).
static int simple_lhs(Span a) {
    if (a.n == 1) return is_letter(a.s[0]);
    if (a.n >= 3 && is_letter(a.s[0]) && a.s[1] == '_' && a.n <= 6) return 1;
    if (a.s[0] == '\\') {
        for (size_t i = 1; i < a.n; i++)
            if (!is_letter(a.s[i])) return 0;
        return a.n > 1;
    }
    if (a.n >= 4 && a.n <= 8 && is_letter(a.s[0]) && a.s[1] == '(' && a.s[a.n - 1] == ')') return 1;
    return 0;
}

// Rewrites "L\pm R" (one top-level \pm) as "L+R,L-R" in buf. Returns 1 when it did.
static int expand_pm(Span a, char *buf, size_t cap, Span *out) {
    Span parts[3];
    if (split_top(a, "\\pm", parts, 3) != 2) return 0;
    Span l = parts[0], r = parts[1];
    if (r.n == 0 || 2 * (l.n + r.n) + 4 > cap) return 0;
    size_t w = 0;
    for (int sign = 0; sign < 2; sign++) {
        if (sign) buf[w++] = ',';
        memcpy(buf + w, l.s, l.n), w += l.n;
        buf[w++] = sign ? '-' : '+';
        if (l.n == 0 && !sign) w--;  // "\pm 3" alone: 3 and -3
        buf[w++] = '(';
        memcpy(buf + w, r.s, r.n), w += r.n;
        buf[w++] = ')';
    }
    *out = (Span){buf, w};
    return 1;
}

static int equiv_span(Span a, Span b, int depth, Ctx *ctx, const char **rule) {
    *rule = "string";
    if (--ctx->budget < 0) return *rule = "too complex", 0;
    if (a.n == b.n && memcmp(a.s, b.s, a.n) == 0) return 1;
    if (a.n == 0 || b.n == 0) return *rule = "different", 0;
    if (is_alpha_only(a) && is_alpha_only(b) && a.n > 1 && b.n > 1) {
        *rule = "text";
        return a.n == b.n && strncasecmp(a.s, b.s, a.n) == 0;
    }
    if (depth > MAX_STRUCT_DEPTH) return *rule = "different", 0;

    Span xa[MAX_ITEMS], xb[MAX_ITEMS];
    // Equations first, so "x = (1,2)" is not read as a list: y=2x+1 against 2x+1, x=5 against 5,
    // x=(1,2) against (1,2): the right side, when the left is just a name.
    int eqa = split_top(a, "=", xa, 3), eqb = split_top(b, "=", xb, 3);
    if (eqa == 2 && eqb == 2) {
        if (xa[0].n == xb[0].n && memcmp(xa[0].s, xb[0].s, xa[0].n) == 0 && simple_lhs(xa[0]) &&
            equiv_span(xa[1], xb[1], depth + 1, ctx, rule))
            return 1;
        *rule = "equation";
        return equation_equiv(a, b);
    }
    if (eqa == 2 && eqb == 1 && simple_lhs(xa[0])) return equiv_span(xa[1], b, depth + 1, ctx, rule);
    if (eqb == 2 && eqa == 1 && simple_lhs(xb[0])) return equiv_span(a, xb[1], depth + 1, ctx, rule);

    // a \pm b is the list a+b, a-b (2\pm\sqrt{3} against 2+\sqrt3, 2-\sqrt3).
    char pa[2 * MATH_NORM_CAP + 8], pb[2 * MATH_NORM_CAP + 8];
    Span ea = a, eb = b;
    int pma = expand_pm(a, pa, sizeof pa, &ea), pmb = expand_pm(b, pb, sizeof pb, &eb);
    if (pma || pmb) return equiv_span(ea, eb, depth + 1, ctx, rule);

    int ra, ca, rb, cb;
    int na = matrix_cells(a, xa, MAX_ITEMS, &ra, &ca), nb = matrix_cells(b, xb, MAX_ITEMS, &rb, &cb);
    if (na > 0 || nb > 0) {
        *rule = "matrix";
        return na > 0 && na == nb && ra == rb && ca == cb && items_ordered(xa, xb, na, depth, ctx);
    }

    na = split_top(a, "\\cup", xa, MAX_ITEMS);
    nb = split_top(b, "\\cup", xb, MAX_ITEMS);
    if (na > 1 || nb > 1) {
        *rule = "union";
        return na == nb && items_unordered(xa, xb, na, depth, ctx);
    }

    Span ia, ib;
    char ca_close = 0, cb_close = 0;
    int oa = enclosed(a, &ia, &ca_close), ob = enclosed(b, &ib, &cb_close);
    na = oa ? split_top(ia, ",", xa, MAX_ITEMS) : split_top(a, ",", xa, MAX_ITEMS);
    nb = ob ? split_top(ib, ",", xb, MAX_ITEMS) : split_top(b, ",", xb, MAX_ITEMS);
    if ((oa && na > 1) || (ob && nb > 1) || (oa == 's') || (ob == 's')) {
        // Sets compare unordered, also against a bare list; tuples/intervals need equal brackets.
        if (oa == 's' || ob == 's') {
            *rule = "set";
            if (na < 1 || na != nb) return 0;
            if ((oa && oa != 's') || (ob && ob != 's')) return 0;
            return items_unordered(xa, xb, na, depth, ctx);
        }
        *rule = (oa == '[' || ca_close == ']' || ob == '[' || cb_close == ']') ? "interval" : "tuple";
        if (oa != ob || ca_close != cb_close || na != nb || na < 1) return 0;
        return items_ordered(xa, xb, na, depth, ctx);
    }
    if (na > 1 || nb > 1) {
        *rule = "list";
        return na == nb && na > 0 && items_unordered(xa, xb, na, depth, ctx);
    }

    if (numeric_or_symbolic(a, b, ctx, rule)) return 1;
    if (strcmp(*rule, "string") == 0) *rule = "different";
    return 0;
}

int math_equivalent(const char *pred, size_t pred_len, const char *ref, size_t ref_len, const char **rule) {
    const char *dummy;
    if (!rule) rule = &dummy;
    *rule = "string";
    if (pred_len == ref_len && memcmp(pred, ref, ref_len) == 0) return 1;
    char na[MATH_NORM_CAP], nb[MATH_NORM_CAP];
    MathNormInfo ia, ib;
    if (math_normalize(pred, pred_len, na, &ia) || math_normalize(ref, ref_len, nb, &ib)) {
        *rule = "different";
        return 0;  // too long to normalise, and not byte-equal
    }
    Ctx ctx = {ia.had_percent, ib.had_percent, WORK_BUDGET};
    return equiv_span((Span){na, strlen(na)}, (Span){nb, strlen(nb)}, 0, &ctx, rule);
}
