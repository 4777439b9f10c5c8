#include "reward/math_normalize.h"

#include <string.h>

static int is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int is_digit(char c) { return c >= '0' && c <= '9'; }
static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// In-place replacement of every `from` by `to`; to must not be longer than from. When `cmd` is set,
// `from` is a command (\left) and must not be followed by a letter (so \left does not hit \leftarrow).
static void replace(char *s, const char *from, const char *to, int cmd) {
    size_t fl = strlen(from), tl = strlen(to);
    if (tl > fl) return;  // would overrun the text it is reading: a programming error, do nothing
    char *r = s, *w = s;
    int from_is_break = from[0] == '\\' && from[1] == '\\';
    while (*r) {
        if (!from_is_break && r[0] == '\\' && r[1] == '\\') {  // a \\ line break is one token
            *w++ = *r++;
            *w++ = *r++;
            continue;
        }
        if (*r == from[0] && strncmp(r, from, fl) == 0 && !(cmd && is_alpha(r[fl]))) {
            memcpy(w, to, tl);
            w += tl;
            r += fl;
        } else {
            *w++ = *r++;
        }
    }
    *w = 0;
}

static void trim(char *s) {
    size_t n = strlen(s), a = 0;
    while (n > 0 && is_space(s[n - 1])) n--;
    while (a < n && is_space(s[a])) a++;
    memmove(s, s + a, n - a);
    s[n - a] = 0;
}

// Index of the brace matching the '{' at s[open], or -1.
static long match_brace(const char *s, size_t open) {
    int depth = 0;
    for (size_t i = open; s[i]; i++) {
        if (s[i] == '\\' && s[i + 1]) {
            i++;
            continue;
        }
        if (s[i] == '{') depth++;
        else if (s[i] == '}' && --depth == 0) return (long)i;
    }
    return -1;
}

static const char *const TEXT_CMDS[] = {"\\text{", "\\textbf{", "\\textit{", "\\textrm{", "\\mathrm{", "\\mbox{",
                                        "\\mathbf{", "\\mathit{", "\\textnormal{", "\\operatorname{", NULL};

// Finds the next text-like command at or after `from`; returns its start and sets *open to the
// position of its '{'. -1 when none.
static long find_text_cmd(const char *s, size_t from, size_t *open) {
    long best = -1;
    for (const char *const *c = TEXT_CMDS; *c; c++) {
        const char *p = strstr(s + from, *c);
        if (p && (best < 0 || p - s < best)) {
            best = p - s;
            *open = (size_t)best + strlen(*c) - 1;
        }
    }
    return best;
}

// A trailing \text{...} after a number is a unit (5\text{ cm}): drop it. Any other \text{X} -> X.
static void strip_text(char *s, MathNormInfo *info) {
    size_t open = 0;
    long start = find_text_cmd(s, 0, &open);
    if (start < 0) return;
    if (start == 0) {
        long close = match_brace(s, open);
        if (close >= 0 && s[close + 1] == 0) info->had_text = 1;
    }
    // Trailing unit: the last text command closes at the end and something numeric precedes it.
    long last = -1;
    size_t last_open = open, o = open;
    for (long k = start; k >= 0; k = find_text_cmd(s, (size_t)k + 1, &o)) {
        last = k;
        last_open = o;
    }
    long close = match_brace(s, last_open);
    if (last > 0 && close >= 0) {
        size_t rest = (size_t)close + 1;
        while (s[rest] == ' ' || (s[rest] == '^' && is_digit(s[rest + 1]))) rest += s[rest] == '^' ? 2 : 1;
        int has_digit = 0;
        for (long i = 0; i < last; i++) has_digit |= is_digit(s[i]);
        long q = last - 1;
        while (q > 0 && s[q] == ' ') q--;
        char prev = s[q];  // what the unit follows: a number, a group, a variable
        if (s[rest] == 0 && has_digit && (is_digit(prev) || prev == '}' || prev == ')' || prev == '.' ||
                                          is_alpha(prev))) {
            s[last] = 0;
            trim(s);
        }
    }
    // Unwrap the rest.
    for (;;) {
        start = find_text_cmd(s, 0, &open);
        if (start < 0) break;
        close = match_brace(s, open);
        if (close < 0) {  // unbalanced: drop the command name, keep the text
            memmove(s + start, s + open + 1, strlen(s + open + 1) + 1);
            continue;
        }
        size_t inner = (size_t)close - open - 1;
        memmove(s + start, s + open + 1, inner);
        memmove(s + start + inner, s + close + 1, strlen(s + close + 1) + 1);
    }
}

// "5 cm", "12 square units": a number followed by plain words is a number with a unit.
static void strip_word_units(char *s) {
    size_t n = strlen(s);
    long i = (long)n - 1;
    int letters = 0;
    while (i >= 0 && (is_alpha(s[i]) || s[i] == ' ')) letters += is_alpha(s[i--]);
    if (i < 0 || letters < 2 || (size_t)(i + 1) == n || s[i + 1] != ' ') return;
    if (!(is_digit(s[i]) || s[i] == '}')) return;
    // Only when what precedes is a plain number (digits, sign, dot, comma, \frac{..}{..}).
    for (long k = 0; k <= i; k++)
        if (!(is_digit(s[k]) || s[k] == '.' || s[k] == ',' || s[k] == '-' || s[k] == ' ')) return;
    s[i + 1] = 0;
}

// Removes spaces, except one between a command name and a letter ("\cos x" must not become \cosx).
static void drop_spaces(char *s) {
    char *w = s;
    int in_cmd = 0;  // the previous kept characters are \letters
    for (char *r = s; *r; r++) {
        if (*r == ' ') {
            char *q = r;
            while (*q == ' ') q++;
            if (in_cmd && is_alpha(*q)) *w++ = ' ';
            r = q - 1;
            in_cmd = 0;
            continue;
        }
        if (*r == '\\') in_cmd = is_alpha(r[1]);
        else if (!is_alpha(*r)) in_cmd = 0;
        *w++ = *r;
    }
    *w = 0;
}

// \frac12 -> \frac{1}{2}, \sqrt2 -> \sqrt{2}: copies s into out with the shorthand braced.
static void brace_shorthand(const char *s, char *out, size_t cap) {
    size_t w = 0;
    for (size_t r = 0; s[r] && w + 8 < cap;) {
        int frac = strncmp(s + r, "\\frac", 5) == 0 && !is_alpha(s[r + 5]);
        int sqrt = strncmp(s + r, "\\sqrt", 5) == 0 && !is_alpha(s[r + 5]);
        if (!frac && !sqrt) {
            out[w++] = s[r++];
            continue;
        }
        memcpy(out + w, s + r, 5);
        w += 5;
        r += 5;
        int args = frac ? 2 : 1;
        for (int k = 0; k < args && s[r]; k++) {
            if (s[r] == '{' || (sqrt && s[r] == '[')) break;  // already braced: leave the rest
            if (is_digit(s[r]) || is_alpha(s[r])) {
                out[w++] = '{';
                out[w++] = s[r++];
                out[w++] = '}';
            } else {
                break;
            }
        }
        // \frac{1}2: brace a single trailing token after a braced first argument.
        if (frac && s[r] == '{') {
            long close = match_brace(s, r);
            if (close > 0 && (is_digit(s[close + 1]) || is_alpha(s[close + 1]))) {
                size_t len = (size_t)close - r + 1;
                if (w + len + 4 < cap) {
                    memcpy(out + w, s + r, len);
                    w += len;
                    r = (size_t)close + 1;
                    out[w++] = '{';
                    out[w++] = s[r++];
                    out[w++] = '}';
                }
            }
        }
    }
    out[w] = 0;
}

// .5 -> 0.5 where the dot does not follow a digit.
static void leading_zero(const char *s, char *out, size_t cap) {
    size_t w = 0;
    for (size_t r = 0; s[r] && w + 2 < cap; r++) {
        if (s[r] == '.' && is_digit(s[r + 1]) && (r == 0 || !is_digit(s[r - 1]))) out[w++] = '0';
        out[w++] = s[r];
    }
    out[w] = 0;
}

// Whole answer is a number written with thousands separators: 10,080 or -1,234,567.89.
static void thousands(char *s) {
    const char *p = s;
    if (((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')) && p[1] == '=') p += 2;  // x=10,080
    if (*p == '-') p++;
    int groups = 0, lead = 0;
    while (is_digit(p[lead])) lead++;
    if (lead < 1 || lead > 3) return;
    p += lead;
    while (p[0] == ',' && is_digit(p[1]) && is_digit(p[2]) && is_digit(p[3]) && !is_digit(p[4])) {
        p += 4;
        groups++;
    }
    if (groups == 0) return;
    if (*p == '.') {
        p++;
        if (!is_digit(*p)) return;
        while (is_digit(*p)) p++;
    }
    if (*p) return;
    replace(s, ",", "", 0);  // only digits, sign, '.' and these commas remain
}

// Leading "x\\in" (x \\in [1,2]) when the rest is the answer. (A leading "x=" is handled by the
// equivalence rules, which can tell y=2x+1 from 2x+1=y.)
static void strip_lhs(char *s) {
    char *in = strstr(s, "\\in");
    if (!in || is_alpha(in[3])) return;
    size_t lhs_len = (size_t)(in - s);
    const char *rhs = in + 3;
    if (lhs_len == 0 || !*rhs) return;
    int ok = (lhs_len == 1 && is_alpha(s[0])) || (lhs_len >= 3 && is_alpha(s[0]) && s[1] == '_');
    if (!ok) return;
    memmove(s, rhs, strlen(rhs) + 1);
}

// int/int -> \frac{int}{int} (the MATH convention writes fractions with \frac).
static void slash_fraction(char *s, size_t cap) {
    const char *slash = strchr(s, '/');
    if (!slash || strchr(slash + 1, '/')) return;
    const char *p = s;
    if (*p == '-') p++;
    if (!is_digit(*p)) return;
    while (is_digit(*p)) p++;
    if (p != slash) return;
    const char *q = slash + 1;
    if (!is_digit(*q)) return;
    while (is_digit(*q)) q++;
    if (*q) return;
    char tmp[MATH_NORM_CAP];
    int neg = s[0] == '-';
    size_t a = (size_t)(slash - s) - neg;
    size_t b = strlen(slash + 1);
    if (a + b + 16 > cap || a + b + 16 > sizeof tmp) return;
    size_t w = 0;
    if (neg) tmp[w++] = '-';
    memcpy(tmp + w, "\\frac{", 6), w += 6;
    memcpy(tmp + w, s + neg, a), w += a;
    memcpy(tmp + w, "}{", 2), w += 2;
    memcpy(tmp + w, slash + 1, b), w += b;
    tmp[w++] = '}';
    tmp[w] = 0;
    memcpy(s, tmp, w + 1);
}

int math_normalize(const char *in, size_t len, char *out, MathNormInfo *info) {
    MathNormInfo local;
    if (!info) info = &local;
    memset(info, 0, sizeof *info);
    out[0] = 0;
    if (len > MATH_ANSWER_MAX) return -1;
    char *s = out;
    // Copy, dropping NULs and mapping line breaks to spaces.
    size_t w = 0;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (c == 0) continue;
        s[w++] = is_space(c) ? ' ' : c;
    }
    s[w] = 0;
    trim(s);
    // "10,080" and "10,\\!080" are thousands separators; "45, 135, 225" is a list. Decide before the
    // spacing commands and spaces go.
    int thin_comma = strstr(s, ",\\!") != NULL || strstr(s, "{,}") != NULL;
    // Math delimiters and dollar signs carry no value.
    replace(s, "\\$", "", 0);
    replace(s, "$", "", 0);
    replace(s, "\\(", "", 0);
    replace(s, "\\)", "", 0);
    replace(s, "\\[", "", 0);
    replace(s, "\\]", "", 0);
    // A sentence's full stop after the answer ("5\\text{ cm}.") is punctuation.
    trim(s);
    for (size_t n = strlen(s); n > 0 && (s[n - 1] == '.' || s[n - 1] == ','); n = strlen(s)) {
        s[n - 1] = 0;
        trim(s);
    }
    // A \boxed{} left inside the answer (\boxed{\boxed{7}}) is only decoration.
    replace(s, "\\boxed", "", 1);
    replace(s, "\\fbox", "", 1);
    // Sizing and spacing.
    replace(s, "\\left.", "", 0);
    replace(s, "\\right.", "", 0);
    replace(s, "\\left", "", 1);
    replace(s, "\\right", "", 1);
    replace(s, "\\bigl", "", 1);
    replace(s, "\\bigr", "", 1);
    replace(s, "\\Bigl", "", 1);
    replace(s, "\\Bigr", "", 1);
    replace(s, "\\big", "", 1);
    replace(s, "\\Big", "", 1);
    replace(s, "\\displaystyle", "", 1);
    replace(s, "\\textstyle", "", 1);
    replace(s, "\\qquad", " ", 1);
    replace(s, "\\quad", " ", 1);
    replace(s, "\\!", "", 0);
    replace(s, "\\,", " ", 0);
    replace(s, "\\:", " ", 0);
    replace(s, "\\;", " ", 0);
    replace(s, "\\ ", " ", 0);
    replace(s, "~", " ", 0);

    // One spelling per construct.
    replace(s, "\\dfrac", "\\frac", 1);
    replace(s, "\\tfrac", "\\frac", 1);
    replace(s, "\\cfrac", "\\frac", 1);
    replace(s, "\\dbinom", "\\binom", 1);
    replace(s, "\\tbinom", "\\binom", 1);
    replace(s, "\\leq", "\\le", 1);
    replace(s, "\\geq", "\\ge", 1);
    replace(s, "\\leqslant", "\\le", 1);
    replace(s, "\\geqslant", "\\ge", 1);
    replace(s, "\\neq", "\\ne", 1);
    replace(s, "\\lbrace", "\\{", 1);
    replace(s, "\\rbrace", "\\}", 1);
    replace(s, "\\lvert", "|", 1);
    replace(s, "\\rvert", "|", 1);
    replace(s, "\\vert", "|", 1);
    replace(s, "\\varnothing", "\\emptyset", 1);
    // Degrees. (45^\\circ,135^\\circ is a list of angles, never a number with thousands commas.)
    int had_degree = strstr(s, "circ") != NULL || strstr(s, "degree") != NULL;
    replace(s, "^{\\circ}", "", 0);
    replace(s, "^\\circ", "", 0);
    replace(s, "\\circ", "", 1);
    replace(s, "^{\\degree}", "", 0);
    replace(s, "\\degree", "", 1);
    replace(s, "\xc2\xb0", "", 0);
    replace(s, "\xe2\x88\x92", "-", 0);  // U+2212 MINUS SIGN
    // Percent.
    if (strchr(s, '%')) info->had_percent = 1;
    replace(s, "\\%", "", 0);
    replace(s, "%", "", 0);
    trim(s);
    strip_text(s, info);
    trim(s);
    strip_word_units(s);
    int comma_space = strstr(s, ", ") != NULL;
    replace(s, "{,}", ",", 0);
    // Drop remaining \text-like markers of degrees words: "90 degrees" handled by units above.
    // Spaces carry no meaning once \text is gone.
    drop_spaces(s);
    // A trailing full stop or comma is punctuation.
    for (size_t n = strlen(s); n > 0 && (s[n - 1] == '.' || s[n - 1] == ','); n = strlen(s)) s[n - 1] = 0;
    replace(s, "\\ldots", "\\dots", 1);
    replace(s, "\\cdots", "\\dots", 1);
    strip_lhs(s);
    if (thin_comma || (!comma_space && !had_degree)) thousands(s);
    char tmp[MATH_NORM_CAP];
    brace_shorthand(s, tmp, sizeof tmp);
    leading_zero(tmp, s, MATH_NORM_CAP);
    slash_fraction(s, MATH_NORM_CAP);
    // (D) -> D: a multiple-choice letter.
    size_t n = strlen(s);
    if (n == 3 && s[0] == '(' && s[2] == ')' && s[1] >= 'A' && s[1] <= 'Z') {
        s[0] = s[1];
        s[1] = 0;
    }
    // {x} around the whole answer.
    n = strlen(s);
    if (n >= 2 && s[0] == '{' && match_brace(s, 0) == (long)n - 1) {
        memmove(s, s + 1, n - 2);
        s[n - 2] = 0;
    }
    return 0;
}
