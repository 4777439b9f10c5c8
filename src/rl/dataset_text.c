// Text helpers of the dataset: gold-answer extraction (GSM8K "####", last \boxed{}) and the
// prompt template ("{question}" substitution).
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "rl/dataset.h"

static char *dup_range(const char *s, size_t n) {
    char *out = malloc(n + 1);
    if (!out) return NULL;
    memcpy(out, s, n);
    out[n] = 0;
    return out;
}

// Copy of s[0..n) without leading/trailing whitespace.
static char *dup_trimmed(const char *s, size_t n) {
    while (n > 0 && isspace((unsigned char)*s)) s++, n--;
    while (n > 0 && isspace((unsigned char)s[n - 1])) n--;
    return dup_range(s, n);
}

static const char *last_occurrence(const char *text, const char *needle) {
    const char *last = NULL, *p = text;
    while ((p = strstr(p, needle)) != NULL) last = p++;
    return last;
}

// Last \boxed{...} or \fbox{...}: braces counted (escaped \{ \} come in pairs in practice, as in
// the MATH reference's last_boxed_only_string); the "\boxed 5" form runs to a space or '$'.
static char *extract_boxed(const char *text, Error *err) {
    const char *b = last_occurrence(text, "\\boxed"), *f = last_occurrence(text, "\\fbox");
    const char *at = (b && (!f || b > f)) ? b : f;
    if (!at) {
        error_set(err, "no \\boxed{} in the answer");
        return NULL;
    }
    const char *p = at + (at == b ? 6 : 5);
    if (*p == ' ') {
        while (*p == ' ') p++;
        const char *e = p;
        while (*e && *e != '$' && !isspace((unsigned char)*e)) e++;
        return dup_trimmed(p, (size_t)(e - p));
    }
    if (*p != '{') {
        error_set(err, "\\boxed not followed by '{'");
        return NULL;
    }
    int depth = 0;
    for (const char *q = p; *q; q++) {
        if (*q == '{') depth++;
        if (*q == '}' && --depth == 0) return dup_trimmed(p + 1, (size_t)(q - p - 1));
    }
    error_set(err, "unbalanced braces in \\boxed{...}");
    return NULL;
}

char *dataset_extract_answer(AnswerExtract how, const char *text, Error *err) {
    char *out = NULL;
    if (how == ANSWER_BOXED) {
        out = extract_boxed(text, err);
    } else if (how == ANSWER_GSM8K) {
        const char *at = last_occurrence(text, "####");
        if (!at) {
            error_set(err, "no '####' in the answer");
            return NULL;
        }
        char *t = dup_trimmed(at + 4, strlen(at + 4));
        if (t) {  // "1,000" -> "1000": the reference answers use thousands separators
            char *w = t;
            for (char *r = t; *r; r++)
                if (*r != ',') *w++ = *r;
            *w = 0;
        }
        out = t;
    } else {
        out = dup_trimmed(text, strlen(text));
    }
    if (!out && err && !err->msg[0]) error_set(err, "out of memory");
    if (out && !out[0]) {
        free(out);
        error_set(err, "the extracted answer is empty");
        return NULL;
    }
    return out;
}

char *dataset_render_prompt(const char *tmpl, const char *question, Error *err) {
    static const char KEY[] = "{question}";
    const size_t klen = sizeof KEY - 1, qlen = strlen(question);
    size_t count = 0;
    for (const char *p = tmpl; (p = strstr(p, KEY)) != NULL; p += klen) count++;
    if (count == 0) {
        error_set(err, "prompt_template has no {question} placeholder");
        return NULL;
    }
    size_t n = strlen(tmpl) + count * qlen - count * klen;
    char *out = malloc(n + 1), *w = out;
    if (!out) {
        error_set(err, "out of memory");
        return NULL;
    }
    for (const char *p = tmpl;;) {
        const char *q = strstr(p, KEY);
        if (!q) {
            strcpy(w, p);
            break;
        }
        memcpy(w, p, (size_t)(q - p));
        w += q - p;
        memcpy(w, question, qlen);
        w += qlen;
        p = q + klen;
    }
    return out;
}
