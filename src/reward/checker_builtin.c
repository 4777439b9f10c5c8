// The built-in checkers: gsm8k, math and format.
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "reward/answer_extract.h"
#include "reward/checker.h"
#include "reward/math_equiv.h"

void reward_set_text(char *dst, size_t cap, const char *src, size_t len) {
    if (cap == 0) return;
    if (len >= cap) len = cap - 1;
    // Do not cut a UTF-8 sequence in half (the text goes into JSON output).
    if (len == cap - 1)
        while (len > 0 && ((unsigned char)src[len] & 0xC0) == 0x80) len--;
    memcpy(dst, src, len);
    dst[len] = 0;
}

static void result_clear(RewardResult *out) {
    out->score = 0;
    out->status = REWARD_OK;
    out->pred[0] = 0;
    out->reason[0] = 0;
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static void trim_span(const char *s, size_t *start, size_t *len) {
    while (*len > 0 && is_space(s[*start])) (*start)++, (*len)--;
    while (*len > 0 && is_space(s[*start + *len - 1])) (*len)--;
}

// The reference: the content of a \boxed{} when the answer is a full solution, the text after
// "####" for a GSM8K-style solution, else all of it.
static void reference_span(const char *answer, size_t *start, size_t *len) {
    size_t n = strlen(answer);
    if (!answer_last_boxed(answer, n, start, len) && !answer_after_hashes(answer, n, start, len)) {
        *start = 0;
        *len = n;
    }
    trim_span(answer, start, len);
}

void reward_math(const char *completion, const char *answer, RewardResult *out) {
    result_clear(out);
    if (!completion) completion = "";
    if (!answer) answer = "";
    size_t ps, pl, rs, rl;
    if (!answer_last_boxed(completion, strlen(completion), &ps, &pl)) {
        snprintf(out->reason, sizeof out->reason, "no \\boxed{} answer");
        return;
    }
    trim_span(completion, &ps, &pl);
    reward_set_text(out->pred, sizeof out->pred, completion + ps, pl);
    reference_span(answer, &rs, &rl);
    if (rl == 0) {
        snprintf(out->reason, sizeof out->reason, "empty reference answer");
        return;
    }
    const char *rule = "string";
    int eq = math_equivalent(completion + ps, pl, answer + rs, rl, &rule);
    out->score = eq ? 1.0 : 0.0;
    snprintf(out->reason, sizeof out->reason, "%s (%s)", eq ? "equal" : "not equal", rule);
}

static int numbers_equal(double a, double b) { return fabs(a - b) <= 1e-6 * fmax(1.0, fmax(fabs(a), fabs(b))); }

void reward_gsm8k(const char *completion, const char *answer, RewardResult *out) {
    result_clear(out);
    if (!completion) completion = "";
    if (!answer) answer = "";
    size_t an = strlen(answer), rs, rl;
    if (!answer_after_hashes(answer, an, &rs, &rl)) {
        rs = 0;
        rl = an;
        trim_span(answer, &rs, &rl);
    }
    double ref = 0;
    int ref_ok = answer_parse_number(answer + rs, rl, &ref) == 0;

    size_t cn = strlen(completion), ps = 0, pl = 0;
    const char *how;
    if (answer_last_boxed(completion, cn, &ps, &pl)) how = "boxed";
    else if (answer_after_hashes(completion, cn, &ps, &pl)) how = "####";
    else if (answer_last_number(completion, cn, &ps, &pl)) how = "last number";
    else {
        snprintf(out->reason, sizeof out->reason, "no answer found");
        return;
    }
    trim_span(completion, &ps, &pl);
    reward_set_text(out->pred, sizeof out->pred, completion + ps, pl);
    double pred;
    int pred_ok = answer_parse_number(completion + ps, pl, &pred) == 0;
    if (ref_ok && pred_ok) {
        int eq = numbers_equal(pred, ref);
        out->score = eq ? 1.0 : 0.0;
        snprintf(out->reason, sizeof out->reason, "%s (%s, numeric)", eq ? "equal" : "not equal", how);
        return;
    }
    // Not a plain number (a fraction in \boxed{}, or a non-numeric reference): MATH rules first,
    // then the last number inside ("\boxed{x = 18}", "#### 18 eggs in total").
    const char *rule = "string";
    int eq = math_equivalent(completion + ps, pl, answer + rs, rl, &rule);
    size_t s2, l2;
    if (!eq && ref_ok && answer_last_number(completion + ps, pl, &s2, &l2) &&
        answer_parse_number(completion + ps + s2, l2, &pred) == 0) {
        eq = numbers_equal(pred, ref);
        rule = "last number inside";
    }
    out->score = eq ? 1.0 : 0.0;
    snprintf(out->reason, sizeof out->reason, "%s (%s, %s)", eq ? "equal" : "not equal", how, rule);
}

// Counts non-overlapping occurrences of needle.
static int count_of(const char *s, const char *needle) {
    int n = 0;
    size_t l = strlen(needle);
    for (const char *p = strstr(s, needle); p; p = strstr(p + l, needle)) n++;
    return n;
}

void reward_format(const char *completion, int thinking, int accept_hash, RewardResult *out) {
    result_clear(out);
    if (!completion) completion = "";
    int opens = count_of(completion, "<think>"), closes = count_of(completion, "</think>");
    const char *close = strstr(completion, "</think>");
    const char *open = strstr(completion, "<think>");
    const char *after = completion;
    if (thinking) {
        // The chat template may already have opened <think> in the prompt: the completion must close
        // it exactly once, and any <think> it writes itself must come before the close.
        if (closes != 1 || opens > 1 || (open && open > close)) {
            snprintf(out->reason, sizeof out->reason, "thinking: need exactly one </think> (found %d <think>, %d </think>)",
                     opens, closes);
            return;
        }
        after = close + strlen("</think>");
    } else if (opens != closes || opens > 1 || (open && close < open)) {
        snprintf(out->reason, sizeof out->reason, "unbalanced <think> tags (%d <think>, %d </think>)", opens, closes);
        return;
    } else if (close) {
        after = close + strlen("</think>");
    }
    size_t s, l;
    size_t n = strlen(after);
    if (answer_last_boxed(after, n, &s, &l)) {
        trim_span(after, &s, &l);
        if (l > 0) {
            reward_set_text(out->pred, sizeof out->pred, after + s, l);
            out->score = 1.0;
            snprintf(out->reason, sizeof out->reason, "answer in \\boxed{}");
            return;
        }
    }
    if (accept_hash && answer_after_hashes(after, n, &s, &l)) {
        reward_set_text(out->pred, sizeof out->pred, after + s, l);
        out->score = 1.0;
        snprintf(out->reason, sizeof out->reason, "answer after ####");
        return;
    }
    snprintf(out->reason, sizeof out->reason, "%s", accept_hash ? "no \\boxed{} or #### answer" : "no \\boxed{} answer");
}
