// Real data: the checkers against the MATH and GSM8K data sets in ../shared (skipped when absent).
//   MATH test500: the last \boxed{} of each reference solution must be judged equal to its answer.
//   MATH train (answers only, no solutions in this copy) and test500: each answer, rewritten into an
//     equivalent spelling (\dfrac, \left/\right, spaces, \sqrt3, "x =", $...$), must be judged equal
//     to itself; the answer with its last digit changed must be judged different; and answers of
//     neighbouring problems must mostly be judged different (false-positive rates).
//   GSM8K train/test: the "####" answer must parse as a number for every problem, and a completion
//     that states it in prose ("The answer is N.") must score 1.
// Agreement rates and every miss are printed.
#include "test.h"

#include <ctype.h>

#include <cjson/cJSON.h>

#include "core/fileio.h"
#include "reward/math_equiv.h"
#include "reward/reward.h"
#include "reward/answer_extract.h"

typedef struct {
    cJSON **rows;
    int n;
} Rows;

static int load_jsonl(const char *path, Rows *out) {
    Error err;
    size_t len;
    char *text = file_read_all(path, &len, &err);
    if (!text) return -1;
    int cap = 1024;
    out->rows = malloc(sizeof(cJSON *) * cap);
    out->n = 0;
    for (char *line = text; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        if (*line) {
            cJSON *o = cJSON_Parse(line);
            if (!o) return -1;
            if (out->n == cap) out->rows = realloc(out->rows, sizeof(cJSON *) * (cap *= 2));
            out->rows[out->n++] = o;
        }
        line = nl ? nl + 1 : NULL;
    }
    free(text);
    return 0;
}

static void free_rows(Rows *r) {
    for (int i = 0; i < r->n; i++) cJSON_Delete(r->rows[i]);
    free(r->rows);
}

static const char *str_field(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void test_math_test500_solutions(void) {
    const char *path = test_shared_path("data/math/test500.jsonl");
    if (!path) {
        test_skip("../shared/data/math/test500.jsonl not present");
        return;
    }
    Rows rows;
    CHECK(load_jsonl(path, &rows) == 0);
    int agree = 0, misses = 0;
    for (int i = 0; i < rows.n; i++) {
        const char *sol = str_field(rows.rows[i], "solution"), *ans = str_field(rows.rows[i], "answer");
        CHECK(sol && ans);
        RewardResult r;
        reward_math(sol, ans, &r);
        if (r.score == 1) agree++;
        else if (misses++ < 50) printf("  miss test500 #%d: pred '%s' answer '%s' (%s)\n", i, r.pred, ans, r.reason);
    }
    double rate = 100.0 * agree / rows.n;
    printf("  MATH test500: solution \\boxed{} vs answer agreement %d/%d = %.2f%%\n", agree, rows.n, rate);
    free_rows(&rows);
    CHECK_MSG(rate >= 99.5, "agreement %.2f%% < 99.5%%", rate);
}

// Rewrites an answer into another spelling of the same thing. Returns 0 when nothing changed.
static int rewrite_answer(const char *in, char *out, size_t cap, int variant) {
    size_t w = 0;
    int changed = 0;
    const char *p = in;
    if (variant == 1 && w + 2 < cap) out[w++] = '$', changed = 1;
    if (variant == 2 && (strchr(in, '=') || strstr(in, "\\in"))) return 0;
    if (variant == 2 && cap > 8) memcpy(out, "x = ", 4), w = 4, changed = 1;
    while (*p && w + 16 < cap) {
        if (!strncmp(p, "\\frac", 5) && (variant == 0 || variant == 3)) {
            memcpy(out + w, "\\dfrac", 6), w += 6, p += 5, changed = 1;
        } else if (!strncmp(p, "\\dfrac", 6) && variant == 1) {
            memcpy(out + w, "\\frac", 5), w += 5, p += 6, changed = 1;
        } else if ((!strncmp(p, "\\left", 5) || !strncmp(p, "\\right", 6)) && variant == 2) {
            p += p[1] == 'l' ? 5 : 6;
            changed = 1;
        } else if (*p == ',' && variant == 0 && !(p > in && p[-1] == '{') &&
                   !(p > in && isdigit((unsigned char)p[-1]) && (isdigit((unsigned char)p[1]) || p[1] == '\\'))) {
            memcpy(out + w, ",\\ ", 3), w += 3, p++, changed = 1;
        } else if (*p == ' ' && variant == 1 && !(p > in && (p[-1] == '\\' || p[-1] == ',' || isalpha((unsigned char)p[-1])))) {
            p++, changed = 1;
        } else if (!strncmp(p, "\\sqrt{", 6) && p[6] >= '0' && p[6] <= '9' && p[7] == '}' && variant == 3) {
            memcpy(out + w, "\\sqrt", 5), w += 5, out[w++] = p[6], p += 8, changed = 1;
        } else {
            out[w++] = *p++;
        }
    }
    if (variant == 1 && w + 2 < cap) out[w++] = '$';
    if (variant == 3 && w + 2 < cap) out[w++] = '.', changed = 1;
    out[w] = 0;
    return changed;
}

// Changes the last digit of the answer (d -> d+1 mod 10): a wrong answer that looks right.
// (Digits of a unit's exponent, "\\mbox{ cm}^2", are left alone: units are dropped by design.)
static int perturb_answer(const char *in, char *out, size_t cap) {
    size_t n = strlen(in);
    if (n + 1 > cap) return 0;
    memcpy(out, in, n + 1);
    for (size_t i = n; i-- > 0;)
        // Not a unit's exponent (cm^2): units are dropped by design.
        if (out[i] >= '0' && out[i] <= '9' && !(i >= 2 && out[i - 1] == '^' && out[i - 2] == '}')) {
            out[i] = (char)('0' + (out[i] - '0' + 1) % 10);
            return 1;
        }
    return 0;
}

static void math_rewrites(const char *rel) {
    const char *path = test_shared_path(rel);
    if (!path) {
        test_skip("../shared/%s not present", rel);
        return;
    }
    Rows rows;
    CHECK(load_jsonl(path, &rows) == 0);
    int checked = 0, agree = 0, misses = 0, wrong_checked = 0, wrong_equal = 0;
    char buf[8192], completion[8300];
    for (int i = 0; i < rows.n; i++) {
        const char *ans = str_field(rows.rows[i], "answer");
        CHECK(ans);
        if (!*ans) {  // a few rows of the data set have an empty answer
            printf("  %s #%d: empty answer, skipped\n", rel, i);
            continue;
        }
        RewardResult r;
        for (int v = 0; v < 4; v++) {
            if (!rewrite_answer(ans, buf, sizeof buf, v)) continue;
            snprintf(completion, sizeof completion, "Thus the answer is $\\boxed{%s}$.", buf);
            reward_math(completion, ans, &r);
            checked++;
            if (r.score == 1) agree++;
            else if (misses++ < 40) printf("  miss %s #%d v%d: '%s' vs '%s' (%s)\n", rel, i, v, buf, ans, r.reason);
        }
        if (perturb_answer(ans, buf, sizeof buf)) {
            snprintf(completion, sizeof completion, "\\boxed{%s}", buf);
            reward_math(completion, ans, &r);
            wrong_checked++;
            if (r.score != 0 && wrong_equal++ < 20)
                printf("  wrong answer judged equal %s #%d: '%s' vs '%s' (%s)\n", rel, i, buf, ans, r.reason);
        }
    }
    double rate = 100.0 * agree / checked, fp = 100.0 * wrong_equal / wrong_checked;
    printf("  MATH %s: rewritten answer vs answer agreement %d/%d = %.2f%%\n", rel, agree, checked, rate);
    printf("  MATH %s: answer with its last digit changed judged equal %d/%d = %.2f%%\n", rel, wrong_equal,
           wrong_checked, fp);
    // Different problems' answers: how often are two different strings judged equal?
    int pairs = 0, equal = 0, shown = 0;
    for (int i = 0; i + 1 < rows.n; i++) {
        const char *a = str_field(rows.rows[i], "answer"), *b = str_field(rows.rows[i + 1], "answer");
        if (!strcmp(a, b)) continue;
        pairs++;
        const char *rule;
        if (math_equivalent(a, strlen(a), b, strlen(b), &rule)) {
            equal++;
            if (shown++ < 20) printf("  judged equal (%s): '%s' vs '%s'\n", rule, a, b);
        }
    }
    printf("  MATH %s: neighbouring different answers judged equal %d/%d = %.2f%%\n", rel, equal, pairs,
           100.0 * equal / pairs);
    free_rows(&rows);
    CHECK_MSG(rate >= 99.5, "rewrite agreement %.2f%% < 99.5%%", rate);
    CHECK_MSG(fp < 0.5, "changed-digit answers judged equal %.2f%% >= 0.5%%", fp);
    CHECK_MSG(equal * 100 < pairs, "false-positive rate %.2f%% >= 1%%", 100.0 * equal / pairs);
}

static void test_math_train_rewrites(void) { math_rewrites("data/math/train.jsonl"); }
static void test_math_test500_rewrites(void) { math_rewrites("data/math/test500.jsonl"); }

static void gsm8k_file(const char *rel) {
    const char *path = test_shared_path(rel);
    if (!path) {
        test_skip("../shared/%s not present", rel);
        return;
    }
    Rows rows;
    CHECK(load_jsonl(path, &rows) == 0);
    int parsed = 0, prose = 0, misses = 0;
    char completion[512];
    for (int i = 0; i < rows.n; i++) {
        const char *ans = str_field(rows.rows[i], "answer");
        CHECK(ans);
        size_t s, l;
        double v;
        if (answer_after_hashes(ans, strlen(ans), &s, &l) && answer_parse_number(ans + s, l, &v) == 0) {
            parsed++;
            snprintf(completion, sizeof completion, "Adding it up, the answer is %.*s.", (int)l, ans + s);
            RewardResult r;
            reward_gsm8k(completion, ans, &r);
            if (r.score == 1) prose++;
            else if (misses++ < 20) printf("  miss %s #%d: '%s' (%s)\n", rel, i, completion, r.reason);
        } else if (misses++ < 20) {
            printf("  unparsed %s #%d: '%s'\n", rel, i, ans);
        }
    }
    printf("  GSM8K %s: #### answer parses %d/%d = %.2f%%, prose completion scores 1: %d/%d\n", rel, parsed, rows.n,
           100.0 * parsed / rows.n, prose, rows.n);
    int n = rows.n;
    free_rows(&rows);
    CHECK(parsed == n);
    CHECK(prose == n);
}

static void test_gsm8k_train(void) { gsm8k_file("data/gsm8k/train.jsonl"); }
static void test_gsm8k_test(void) { gsm8k_file("data/gsm8k/test.jsonl"); }

int main(void) {
    RUN(test_math_test500_solutions);
    RUN(test_math_train_rewrites);
    RUN(test_math_test500_rewrites);
    RUN(test_gsm8k_train);
    RUN(test_gsm8k_test);
    return test_summary("test_reward_data");
}
