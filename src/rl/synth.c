// Synthetic arithmetic word problems (see synth.h). The wording is a small fixed grammar so a
// few-hundred-piece SentencePiece vocabulary covers it; the numbers carry the difficulty.
#include "rl/synth.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/rng.h"

static const char *const NAMES[] = {"Mia", "Tom", "Ana", "Ben", "Lily", "Sam", "Emma", "Leo", "Zoe", "Max"};
static const char *const PRONOUNS[] = {"She", "He", "She", "He", "She", "He", "She", "He", "She", "He"};
static const char *const OBJECTS[] = {"apples", "marbles", "stickers", "books", "coins",
                                      "pencils", "cookies", "cards", "shells", "toys"};
static const char *const ADD_VERBS[] = {"buys", "finds", "gets", "wins"};
static const char *const SUB_VERBS[] = {"gives away", "loses", "sells", "uses"};

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

void synth_config_default(SynthConfig *c) {
    c->min_ops = 1;
    c->max_ops = 2;
    c->max_operand = 20;
    c->allow_sub = 1;
}

int synth_config_validate(const SynthConfig *c, const char *where, Error *err) {
    if (c->min_ops < 1 || c->min_ops > SYNTH_MAX_OPS)
        return error_set(err, "%s.min_ops: %d is outside [1, %d]", where, c->min_ops, SYNTH_MAX_OPS);
    if (c->max_ops < c->min_ops || c->max_ops > SYNTH_MAX_OPS)
        return error_set(err, "%s.max_ops: %d is outside [min_ops %d, %d]", where, c->max_ops, c->min_ops,
                         SYNTH_MAX_OPS);
    // Operands stay small enough that SYNTH_MAX_OPS additions fit in the answer buffer.
    if (c->max_operand < 2 || c->max_operand > 100000)
        return error_set(err, "%s.max_operand: %d is outside [2, 100000]", where, c->max_operand);
    return 0;
}

int synth_config_from_json(const cJSON *obj, SynthConfig *c, const char *where, Error *err) {
    static const char *const KEYS[] = {"min_ops", "max_ops", "max_operand", "allow_sub", NULL};
    if (!cJSON_IsObject(obj)) return error_set(err, "%s: expected an object", where);
    if (json_check_keys(obj, KEYS, where, err) || json_get_int(obj, "min_ops", 0, &c->min_ops, where, err) ||
        json_get_int(obj, "max_ops", 0, &c->max_ops, where, err) ||
        json_get_int(obj, "max_operand", 0, &c->max_operand, where, err) ||
        json_get_bool(obj, "allow_sub", 0, &c->allow_sub, where, err))
        return -1;
    return synth_config_validate(c, where, err);
}

// snprintf that appends at *len and never overruns (the buffers are sized for SYNTH_MAX_OPS).
static void append(char *buf, size_t size, size_t *len, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void append(char *buf, size_t size, size_t *len, const char *fmt, ...) {
    if (*len >= size) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *len, size - *len, fmt, ap);
    va_end(ap);
    if (n > 0) *len += (size_t)n < size - *len ? (size_t)n : size - *len - 1;
}

void synth_example(const SynthConfig *c, uint64_t seed, uint64_t index, SynthExample *out) {
    Rng rng;
    // One stream per (seed, index): examples do not depend on the order they are asked for.
    rng_seed(&rng, seed * 0x9E3779B97F4A7C15ULL ^ (index + 0x632BE59BD9B4E019ULL) * 0xBF58476D1CE4E5B9ULL);
    int who = (int)rng_below(&rng, COUNT(NAMES));
    const char *name = NAMES[who], *pron = PRONOUNS[who];
    const char *obj = OBJECTS[rng_below(&rng, COUNT(OBJECTS))];
    int ops = c->min_ops + (int)rng_below(&rng, (uint64_t)(c->max_ops - c->min_ops + 1));
    long value = 1 + (long)rng_below(&rng, (uint64_t)c->max_operand);
    size_t ql = 0, sl = 0;
    memset(out, 0, sizeof *out);
    append(out->question, sizeof out->question, &ql, "%s has %ld %s.", name, value, obj);
    for (int i = 0; i < ops; i++) {
        long b = 1 + (long)rng_below(&rng, (uint64_t)c->max_operand);
        int sub = c->allow_sub && rng_below(&rng, 2) == 1 && value >= 1;
        if (sub) {
            if (b > value) b = 1 + (long)rng_below(&rng, (uint64_t)value);  // never below zero
            append(out->question, sizeof out->question, &ql, " %s %s %ld.", pron,
                   SUB_VERBS[rng_below(&rng, COUNT(SUB_VERBS))], b);
            append(out->solution, sizeof out->solution, &sl, "%ld - %ld = %ld. ", value, b, value - b);
            value -= b;
        } else {
            append(out->question, sizeof out->question, &ql, " %s %s %ld more.", pron,
                   ADD_VERBS[rng_below(&rng, COUNT(ADD_VERBS))], b);
            append(out->solution, sizeof out->solution, &sl, "%ld + %ld = %ld. ", value, b, value + b);
            value += b;
        }
    }
    append(out->question, sizeof out->question, &ql, " How many %s does %s have now?", obj, name);
    append(out->solution, sizeof out->solution, &sl, "#### %ld", value);
    snprintf(out->answer, sizeof out->answer, "%ld", value);
    out->num_ops = ops;
}

static const char *skip_spaces(const char *p) {
    while (*p == ' ') p++;
    return p;
}

static int read_long(const char **p, long *out) {
    char *end;
    *p = skip_spaces(*p);
    if (**p < '0' || **p > '9') return -1;
    *out = strtol(*p, &end, 10);
    *p = end;
    return 0;
}

int synth_solution_is_consistent(const char *solution) {
    const char *p = solution;
    long last = 0;
    int steps = 0;
    for (;;) {
        p = skip_spaces(p);
        if (strncmp(p, "####", 4) == 0) {
            long ans;
            p += 4;
            if (read_long(&p, &ans)) return 0;
            return steps > 0 && ans == last && *skip_spaces(p) == 0;
        }
        long a, b, r;
        if (read_long(&p, &a)) return 0;
        p = skip_spaces(p);
        char op = *p++;
        if ((op != '+' && op != '-') || read_long(&p, &b)) return 0;
        p = skip_spaces(p);
        if (*p++ != '=' || read_long(&p, &r) || *p++ != '.') return 0;
        if (r != (op == '+' ? a + b : a - b)) return 0;
        if (steps > 0 && a != last) return 0;
        last = r;
        steps++;
    }
}
