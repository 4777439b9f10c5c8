#include "reward/answer_extract.h"

#include <stdlib.h>
#include <string.h>

static int is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int is_digit(char c) { return c >= '0' && c <= '9'; }
static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

typedef struct {
    size_t depth;  // brace depth of the boxed group's '{'
    size_t start;  // first byte of its content
} BoxOpen;

// Fast path for the common case, from the end: the last "\boxed{" / "\fbox{" closes, and no '}'
// after it closes an enclosing group (which could be an outer \boxed). Returns 1 found, 0 when
// the text has no "\boxed"/"\fbox" at all, -1 when the full scan must decide.
static int last_boxed_fast(const char *text, size_t len, size_t *start, size_t *out_len) {
    for (size_t i = len; i-- > 0;) {
        if (text[i] != '\\') continue;
        size_t nl = 0;
        if (i + 6 <= len && memcmp(text + i + 1, "boxed", 5) == 0) nl = 5;
        else if (i + 5 <= len && memcmp(text + i + 1, "fbox", 4) == 0) nl = 4;
        if (!nl || (i + 1 + nl < len && is_alpha(text[i + 1 + nl]))) continue;
        if (i > 0 && text[i - 1] == '\\') return -1;  // "\\boxed": escaping questions, let the full scan decide
        size_t j = i + 1 + nl;
        while (j < len && text[j] == ' ') j++;
        if (j >= len || text[j] != '{') return -1;  // "\boxed 5"
        size_t depth = 0, k;
        for (k = j; k < len; k++) {
            char c = text[k];
            if (c == '\\' && k + 1 < len && (text[k + 1] == '{' || text[k + 1] == '}' || text[k + 1] == '\\')) k++;
            else if (c == '{') depth++;
            else if (c == '}' && --depth == 0) break;
        }
        if (k >= len) return -1;  // not closed
        size_t d = 0;
        for (size_t m = k + 1; m < len; m++) {
            char c = text[m];
            if (c == '\\' && m + 1 < len && (text[m + 1] == '{' || text[m + 1] == '}' || text[m + 1] == '\\')) m++;
            else if (c == '{') d++;
            else if (c == '}' && d-- == 0) return -1;  // closes something opened before the \boxed
        }
        *start = j + 1;
        *out_len = k - j - 1;
        return 1;
    }
    return 0;
}

int answer_last_boxed(const char *text, size_t len, size_t *start, size_t *out_len) {
    int fast = last_boxed_fast(text, len, start, out_len);
    if (fast >= 0) return fast;
    return answer_last_boxed_scan(text, len, start, out_len);
}

int answer_last_boxed_scan(const char *text, size_t len, size_t *start, size_t *out_len) {
    // One pass: a plain depth counter for all braces, a stack only for braces opened by \boxed.
    // The last boxed group to close is the answer (outermost when nested, latest otherwise).
    BoxOpen *stack = NULL;
    size_t n_stack = 0, cap = 0, depth = 0;
    int found = 0, next_is_box = 0;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (c == '\\') {
            if (i + 1 < len && (text[i + 1] == '{' || text[i + 1] == '}' || text[i + 1] == '\\')) {
                i++;  // escaped brace or line break: not a group
                continue;
            }
            size_t name = i + 1, e = name;
            while (e < len && is_alpha(text[e])) e++;
            size_t nl = e - name;
            int box = (nl == 5 && memcmp(text + name, "boxed", 5) == 0) ||
                      (nl == 4 && memcmp(text + name, "fbox", 4) == 0);
            if (!box) {
                i = e - 1;
                continue;
            }
            size_t j = e;
            while (j < len && text[j] == ' ') j++;
            if (j < len && text[j] == '{') {
                next_is_box = 1;
                i = j - 1;  // the loop visits the '{' next
            } else if (j > e && j < len) {
                // "\boxed 5": the token up to whitespace, '$', a brace or a command.
                size_t k = j;
                while (k < len && !is_space(text[k]) && text[k] != '$' && text[k] != '{' && text[k] != '}' &&
                       text[k] != '\\')
                    k++;
                if (k > j) {
                    *start = j;
                    *out_len = k - j;
                    found = 1;
                }
                i = k - 1;
            } else {
                i = e - 1;
            }
            continue;
        }
        if (c == '{') {
            depth++;
            if (next_is_box) {
                if (n_stack == cap) {
                    size_t nc = cap ? 2 * cap : 16;
                    BoxOpen *ns = realloc(stack, nc * sizeof *ns);
                    if (!ns) break;  // out of memory: answer with what was found so far
                    stack = ns;
                    cap = nc;
                }
                stack[n_stack++] = (BoxOpen){depth, i + 1};
                next_is_box = 0;
            }
        } else if (c == '}') {
            if (depth == 0) continue;  // stray closer
            if (n_stack > 0 && stack[n_stack - 1].depth == depth) {
                n_stack--;
                *start = stack[n_stack].start;
                *out_len = i - stack[n_stack].start;
                found = 1;
            }
            depth--;
        }
    }
    free(stack);
    return found;
}

int answer_after_hashes(const char *text, size_t len, size_t *start, size_t *out_len) {
    size_t at = len;  // stays len when there is no "####"
    for (size_t i = 0; i + 4 <= len; i++)
        if (memcmp(text + i, "####", 4) == 0) {
            at = i + 4;
            while (at < len && text[at] == '#') at++;
            i = at - 1;
        }
    if (at == len) return 0;
    size_t e = at;
    while (e < len && text[e] != '\n') e++;
    while (at < e && is_space(text[at])) at++;
    while (e > at && is_space(text[e - 1])) e--;
    if (e == at) return 0;
    *start = at;
    *out_len = e - at;
    return 1;
}

int answer_last_number(const char *text, size_t len, size_t *start, size_t *out_len) {
    int found = 0;
    for (size_t i = 0; i < len; i++) {
        if (!is_digit(text[i]) || (i > 0 && (is_digit(text[i - 1]) || text[i - 1] == '.' || text[i - 1] == ',')))
            continue;
        size_t s = i, e = i;
        while (e < len && is_digit(text[e])) e++;
        // Thousands groups: ",ddd" not followed by another digit.
        while (e + 3 < len && text[e] == ',' && is_digit(text[e + 1]) && is_digit(text[e + 2]) &&
               is_digit(text[e + 3]) && !(e + 4 < len && is_digit(text[e + 4])))
            e += 4;
        if (e + 1 < len && text[e] == '.' && is_digit(text[e + 1])) {
            e++;
            while (e < len && is_digit(text[e])) e++;
        }
        // A minus right before the number (not a hyphen between words/numbers) is its sign.
        if (s > 0 && text[s - 1] == '-' && (s == 1 || !(is_alpha(text[s - 2]) || is_digit(text[s - 2])))) s--;
        *start = s;
        *out_len = e - s;
        found = 1;
        i = e - 1;
    }
    return found;
}

int answer_parse_number(const char *s, size_t len, double *value) {
    char buf[128];
    size_t w = 0;
    // Skip LaTeX noise and currency; keep sign, digits, '.', ',' and what follows for checking.
    size_t i = 0;
    while (i < len && w + 1 < sizeof buf) {
        char c = s[i];
        if (c == '$' || c == ' ' || c == '\t' || c == '\n') {
            i++;
        } else if (c == '\\' && i + 1 < len && (s[i + 1] == '$' || s[i + 1] == '!' || s[i + 1] == ',' ||
                                                s[i + 1] == ' ' || s[i + 1] == ';')) {
            // \$ is currency, \! \, \; spacing; "10,\!080" becomes "10,080".
            if (s[i + 1] == ',' && i > 0 && is_digit(s[i - 1])) {
                buf[w++] = ',';
            }
            i += 2;
        } else if ((unsigned char)c == 0xE2 && i + 2 < len && (unsigned char)s[i + 1] == 0x88 &&
                   (unsigned char)s[i + 2] == 0x92) {
            buf[w++] = '-';  // U+2212 MINUS SIGN
            i += 3;
        } else if (c == '{' && i + 2 < len && s[i + 1] == ',' && s[i + 2] == '}') {
            buf[w++] = ',';
            i += 3;
        } else {
            buf[w++] = c;
            i++;
        }
    }
    if (i < len) return -1;  // too long to be a number
    buf[w] = 0;
    // Remove commas between digit groups.
    size_t r = 0, o = 0;
    for (; buf[r]; r++) {
        if (buf[r] == ',' && r > 0 && is_digit(buf[r - 1]) && is_digit(buf[r + 1])) continue;
        buf[o++] = buf[r];
    }
    buf[o] = 0;
    while (o > 0 && buf[o - 1] == '.') buf[--o] = 0;
    if (o == 0) return -1;
    const char *p = buf;
    if (*p == '+') p++;
    if (!(is_digit(*p) || ((*p == '-' || *p == '.') && (is_digit(p[1]) || (p[1] == '.' && is_digit(p[2]))))))
        return -1;
    char *end;
    double v = strtod(p, &end);
    if (end == p) return -1;
    // Allow a unit or percent after the number: "18 dollars", "25%", "5\\text{ cm}", "3 m^2".
    for (const char *q = end; *q; q++) {
        int ok = is_alpha(*q) || *q == '%' || *q == '\\' || *q == '{' || *q == '}' || *q == '.' || *q == '^' ||
                 (is_digit(*q) && q > end && q[-1] == '^');
        if (!ok) return -1;
    }
    // Hexadecimal and "inf"/"nan" spellings that strtod accepts are not GSM8K numbers.
    for (const char *q = p; q < end; q++)
        if (!(is_digit(*q) || *q == '.' || *q == '-' || *q == 'e' || *q == 'E' || *q == '+')) return -1;
    *value = v;
    return 0;
}
