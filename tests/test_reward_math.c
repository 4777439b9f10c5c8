// Table-driven tests of answer extraction, normalisation and equivalence (MATH and GSM8K rules).
// To add a case, add a row to the table of the rule it exercises.
#include "test.h"

#include <stdlib.h>

#include "reward/answer_extract.h"
#include "reward/math_equiv.h"
#include "reward/math_expr.h"
#include "reward/math_normalize.h"
#include "reward/reward.h"

typedef struct {
    const char *pred, *ref;
    int equal;
} EquivCase;

static const EquivCase EQUIV_CASES[] = {
    // exact and normalised strings
    {"42", "42", 1},
    {"\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\frac{\\pi}{2})", 1},
    {"10,\\!080", "10080", 1},
    {"10{,}080", "10080", 1},
    {"1,000,000", "1000000", 1},
    {"\\dfrac{1}{2}", "\\frac{1}{2}", 1},
    {"\\tfrac12", "\\frac{1}{2}", 1},
    {"\\frac12", "0.5", 1},
    {"\\frac{1}{2}", "0.5", 1},
    {".5", "0.5", 1},
    {"1/2", "\\frac{1}{2}", 1},
    {"5.00", "5", 1},
    {"-3", "-3", 1},
    {"-3", "3", 0},
    {"\xe2\x88\x92" "3", "-3", 1},  // U+2212 minus sign
    {"\\$1.17", "1.17", 1},
    {"\\$ 32", "32", 1},
    {"90^\\circ", "90", 1},
    {"90^{\\circ}", "90", 1},
    {"30\\%", "30", 1},
    {"15\\%", "0.15", 1},
    {"0.15", "15\\%", 1},
    {"5\\text{ cm}", "5", 1},
    {"5 \\text{cm}^2", "5", 1},
    {"12 \\mbox{ inches}", "12", 1},
    {"12 inches", "12", 1},
    {"x = 5", "5", 1},
    {"x=5", "x = 5", 1},
    {"\\theta = \\frac{\\pi}{4}", "\\frac{\\pi}{4}", 1},
    {"\\text{Sunday}", "Sunday", 1},
    {"\\text{sunday}", "\\text{Sunday}", 1},
    {"\\text{Monday}", "\\text{Sunday}", 0},
    {"\\text{(D)}", "D", 1},
    {"(D)", "\\text{(D)}", 1},
    {"(C)", "\\text{(D)}", 0},
    {"\\sqrt2", "\\sqrt{2}", 1},
    {"11\\sqrt2", "11\\sqrt{2}", 1},
    {"\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}", 1},
    {"2\\sqrt{3}", "\\sqrt{12}", 1},
    {"\\sqrt[3]{8}", "2", 1},
    {"\\sqrt[3]{-8}", "-2", 1},
    {"2\\pi", "6.283185307179586", 1},
    {"\\pi", "3.14", 0},
    {"1.5\\times10^{3}", "1500", 1},
    {"1.5 \\cdot 10^3", "1500", 1},
    {"1.5e3", "1500", 1},
    {"2^{10}", "1024", 1},
    {"2\\frac{1}{2}", "\\frac{5}{2}", 1},
    {"3\\frac{3}{4}", "3.75", 1},
    {"\\frac{0.5}{1}", "\\frac12", 1},
    {"10001_2", "17", 1},
    {"\\text{A5}_{12}", "125", 1},
    {"\\text{A5}_{12}", "\\text{A5}_{11}", 0},
    {"0.56 = 57\\%", "0.56 = 56\\%", 0},
    {"2^{100}", "1267650600228229401496703205376", 0},  // beyond 2^53: undecidable, not equal
    {"52_8", "42", 1},
    {"52_{8}", "52_8", 1},
    {"\\binom{5}{2}", "10", 1},
    {"5!", "120", 1},
    {"e^2", "7.38905609893065", 1},
    {"\\log_2 8", "3", 1},
    {"\\infty", "\\infty", 1},
    {"0.3333", "\\frac{1}{3}", 0},
    {"1", "2", 0},
    {"1e400", "1", 0},
    {"2^{4182}", "2^{4181}", 0},  // both overflow a double: not decidable by value
    {"2^{2008}-3", "2^{2008}-2", 0},
    {"1000001", "1000000", 0},    // integers compare exactly
    {"11,\\! 111,\\! 111,\\! 101", "11111111100", 0},
    {"11,\\! 111,\\! 111,\\! 100", "11111111100", 1},
    {"\\frac{1}{2^{99}}", "\\frac{1}{2^{98}}", 0},
    {"\\frac{3}{161841}", "\\frac{3}{161840}", 0},
    {"\\sin \\pi", "0", 1},
    {"45^\\circ, 135^\\circ, 225^\\circ", "225, 45, 135", 1},  // a list, not 45,135,225 thousands
    {"45^\\circ, 135^\\circ, 225^\\circ", "45,135,226", 0},
    // symbolic
    {"2x+1", "1+2x", 1},
    {"y = 2x+1", "2x+1", 1},
    {"x^2+2x+1", "(x+1)^2", 1},
    {"x^2+2x+2", "(x+1)^2", 0},
    {"\\frac{x}{2}", "0.5x", 1},
    {"\\frac{x+1}{x-1}", "\\frac{1+x}{-1+x}", 1},
    {"x^5 - x^4 + x^3 - x^2 + x - 1", "x^5-x^4+x^3-x^2+x-1", 1},
    {"-4x^4+5x^2+14", "14+5x^2-4x^4", 1},
    {"p - q", "-q+p", 1},
    {"p-q", "q-p", 0},
    {"\\sin^2 x + \\cos^2 x", "1", 1},
    {"\\cot x", "\\frac{\\cos x}{\\sin x}", 1},
    {"6 - 5i", "6-5i", 1},
    {"-5i+6", "6-5i", 1},
    {"2ab", "2ba", 1},
    {"a_1+a_2", "a_2+a_1", 1},
    {"2y", "2x", 0},
    {"|x|", "|-x|", 1},
    {"|x|", "x", 0},
    {"\\sqrt{x^2}", "|x|", 1},
    {"\\sqrt{x}\\sqrt{x}", "x", 1},  // equal wherever both are defined
    {"\\frac{x^2-1}{x-1}", "x+1", 1},
    {"\\binom{n}{2}", "\\frac{n(n-1)}{2}", 1},
    {"\\ln(x^2)", "2\\ln x", 1},
    {"x^3", "x^2", 0},
    // equations
    {"y=2x+1", "2x+1=y", 1},
    {"2y=4x+2", "y=2x+1", 1},
    {"y=2x+1", "y=2x+2", 0},
    {"x^2+y^2=1", "y^2+x^2=1", 1},
    // tuples, intervals, sets, lists, unions
    {"(1,2)", "(1, 2)", 1},
    {"(1,2)", "(2,1)", 0},
    {"(6,31,-1)", "\\left(6, 31, -1\\right)", 1},
    {"\\left( 3, \\frac{\\pi}{2} \\right)", "(3, 1.5707963267948966)", 1},
    {"[1,2)", "[1, 2)", 1},
    {"[1,2)", "(1,2]", 0},
    {"[1,2]", "(1,2)", 0},
    {"(-\\infty, -\\frac{1}{2}] \\cup [\\frac{1}{2}, \\infty)",
     "\\left( -\\infty, -\\frac{1}{2} \\right] \\cup \\left[ \\frac{1}{2}, \\infty \\right)", 1},
    {"[\\frac{1}{2}, \\infty) \\cup (-\\infty, -0.5]", "(-\\infty,-\\frac12]\\cup[\\frac12,\\infty)", 1},
    {"\\{1,2,3\\}", "\\{3,2,1\\}", 1},
    {"\\{1,2\\}", "\\{1,2,3\\}", 0},
    {"1,-2", "-2, 1", 1},
    {"3, 5, 7", "7,5,3", 1},
    {"3, 5, 7", "3,5", 0},
    {"\\{1,2\\}", "2,1", 1},
    {"x=1, x=2", "1,2", 1},
    // plus-minus
    {"2\\pm\\sqrt{3}", "2+\\sqrt3, 2-\\sqrt3", 1},
    {"2 \\pm \\sqrt{3}", "2-\\sqrt{3},2+\\sqrt{3}", 1},
    {"\\pm 3", "3,-3", 1},
    {"2\\pm\\sqrt{3}", "2+\\sqrt3", 0},
    {"\\boxed{7}", "7", 1},
    // matrices
    {"\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", 1},
    {"\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", "\\begin{bmatrix}1&2\\\\3&4\\end{bmatrix}", 1},
    {"\\begin{pmatrix} 1 & 2 \\\\ 3 & 5 \\end{pmatrix}", "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", 0},
    {"\\begin{pmatrix} \\frac12 \\\\ -1 \\end{pmatrix}", "\\begin{pmatrix}0.5\\\\-1\\end{pmatrix}", 1},
    {"\\begin{pmatrix} 1 & 2 \\end{pmatrix}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}", 0},
    // garbage never crashes, compares as strings
    {"\\frac{", "\\frac{", 1},
    {"\\frac{", "\\frac{1}{2}", 0},
    {"}}}{{{", "1", 0},
    {"", "1", 0},
    {"\\unknowncommand{3}", "\\unknowncommand{3}", 1},
};

static void test_equivalence_table(void) {
    int n = sizeof EQUIV_CASES / sizeof EQUIV_CASES[0], fails = 0;
    for (int i = 0; i < n; i++) {
        const EquivCase *c = &EQUIV_CASES[i];
        const char *rule = NULL, *rule_back = NULL;
        int got = math_equivalent(c->pred, strlen(c->pred), c->ref, strlen(c->ref), &rule);
        // Equivalence is symmetric.
        int back = math_equivalent(c->ref, strlen(c->ref), c->pred, strlen(c->pred), &rule_back);
        if (got != c->equal || back != c->equal) {
            printf("  case %d: '%s' vs '%s': got %d (%s) / reversed %d (%s), want %d\n", i, c->pred, c->ref, got,
                   rule, back, rule_back, c->equal);
            fails++;
        }
    }
    printf("  %d equivalence cases, %d wrong\n", n, fails);
    CHECK_MSG(fails == 0, "%d of %d equivalence cases wrong (listed above)", fails, n);
}

typedef struct {
    const char *text;
    const char *boxed;  // NULL: none
} BoxCase;

static const BoxCase BOX_CASES[] = {
    {"so the answer is \\boxed{42}.", "42"},
    {"\\boxed{1} then \\boxed{2}", "2"},
    {"\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"},
    {"\\boxed{\\boxed{7}}", "\\boxed{7}"},
    {"\\fbox{9}", "9"},
    {"\\boxed {3}", "3"},
    {"$\\boxed 5$", "5"},
    {"\\boxed{\\{1,2\\}}", "\\{1,2\\}"},
    {"\\boxed{10,\\!080}", "10,\\!080"},
    {"\\boxed{x", NULL},
    {"\\boxed{3} \\boxed{4", "3"},
    {"no box", NULL},
    {"}}}\\boxed{2}}}}", "2"},
    {"\\boxedx{3}", NULL},
};

static void test_last_boxed_table(void) {
    int n = sizeof BOX_CASES / sizeof BOX_CASES[0];
    for (int i = 0; i < n; i++) {
        size_t s = 0, l = 0;
        const char *t = BOX_CASES[i].text;
        int found = answer_last_boxed(t, strlen(t), &s, &l);
        if (!BOX_CASES[i].boxed) {
            CHECK_MSG(!found, "case %d '%s': found '%.*s'", i, t, (int)l, t + s);
            continue;
        }
        CHECK_MSG(found, "case %d '%s': not found", i, t);
        CHECK_MSG(l == strlen(BOX_CASES[i].boxed) && !memcmp(t + s, BOX_CASES[i].boxed, l),
                  "case %d '%s': got '%.*s' want '%s'", i, t, (int)l, t + s, BOX_CASES[i].boxed);
    }
}

// answer_last_boxed (search from the end, falling back to a scan) against the plain full scan, on
// random strings of the tokens that matter: braces, escapes, \boxed, \fbox, spaces, text.
static void test_last_boxed_fast_matches_scan(void) {
    static const char *const TOKENS[] = {"{", "}", "\\", "\\boxed", "\\fbox", "\\boxed{", " ", "a", "1", "\\{", "\\}",
                                         "\\boxedx", "\\\\"};
    unsigned long long x = 12345;
    char buf[256];
    for (int it = 0; it < 200000; it++) {
        size_t w = 0;
        int n = 1 + (int)(x % 24);
        for (int t = 0; t < n; t++) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            const char *tok = TOKENS[(x >> 33) % (sizeof TOKENS / sizeof TOKENS[0])];
            size_t tl = strlen(tok);
            if (w + tl >= sizeof buf) break;
            memcpy(buf + w, tok, tl);
            w += tl;
        }
        buf[w] = 0;
        size_t s1 = 0, l1 = 0, s2 = 0, l2 = 0;
        int f1 = answer_last_boxed(buf, w, &s1, &l1), f2 = answer_last_boxed_scan(buf, w, &s2, &l2);
        CHECK_MSG(f1 == f2 && (!f1 || (s1 == s2 && l1 == l2)), "'%s': fast %d [%zu,+%zu], scan %d [%zu,+%zu]", buf, f1,
                  s1, l1, f2, s2, l2);
    }
}

typedef struct {
    const char *completion, *answer;
    double score;
} ScoreCase;

static const ScoreCase GSM8K_CASES[] = {
    {"She makes 9 * 2 = $18 every day.", "Janet sells 9 eggs.\n#### 18", 1},
    {"The answer is 18.", "#### 18", 1},
    {"The answer is \\boxed{18}.", "#### 18", 1},
    {"\\boxed{\\$18}", "#### 18", 1},
    {"\\boxed{18 \\text{ dollars}}", "#### 18", 1},
    {"3 then 18 then 19", "#### 18", 0},
    {"The total is 10,080 widgets.", "#### 10080", 1},
    {"\\boxed{10,\\!080}", "#### 10080", 1},
    {"It costs $1,234.50.", "#### 1234.5", 1},
    {"5.00", "#### 5", 1},
    {"The change is -5 degrees", "#### -5", 1},
    {"pages 3-5", "#### 5", 1},
    {"the result is 7.", "#### 7", 1},
    {"#### 42", "#### 42", 1},
    {"Reasoning 41... \n#### 42\n", "#### 42", 1},
    {"no numbers here", "#### 42", 0},
    {"", "#### 42", 0},
    {"\\boxed{\\frac{1}{2}}", "#### 0.5", 1},
    {"\\boxed{2} but really 3", "#### 2", 1},
    {"42", "42", 1},
};

static const ScoreCase MATH_CASES[] = {
    {"... so $\\boxed{\\frac{1}{2}}$.", "0.5", 1},
    {"\\boxed{10,\\!080}", "10080", 1},
    {"The answer is 5.", "5", 0},  // MATH requires \boxed{}
    {"\\boxed{4} wait, \\boxed{5}", "5", 1},
    {"\\boxed{x=3}", "3", 1},
    {"\\boxed{3}", "We get $\\boxed{3}$.", 1},  // reference given as a solution
    {"\\boxed{3}", "", 0},
    {"\\boxed{18}", "She sells 9 eggs for $2 each.\n#### 18", 1},  // GSM8K-style reference
};

static void run_score_cases(const ScoreCase *cases, int n, int math) {
    for (int i = 0; i < n; i++) {
        RewardResult r;
        if (math) reward_math(cases[i].completion, cases[i].answer, &r);
        else reward_gsm8k(cases[i].completion, cases[i].answer, &r);
        CHECK_MSG(r.score == cases[i].score, "%s case %d: '%s' vs '%s': score %g (pred '%s', %s), want %g",
                  math ? "math" : "gsm8k", i, cases[i].completion, cases[i].answer, r.score, r.pred, r.reason,
                  cases[i].score);
        CHECK(r.status == REWARD_OK);
    }
}

static void test_gsm8k_table(void) { run_score_cases(GSM8K_CASES, sizeof GSM8K_CASES / sizeof GSM8K_CASES[0], 0); }
static void test_math_table(void) { run_score_cases(MATH_CASES, sizeof MATH_CASES / sizeof MATH_CASES[0], 1); }

typedef struct {
    const char *text;
    int ok;
    double value;
} NumberCase;

static const NumberCase NUMBER_CASES[] = {
    {"18", 1, 18},        {"$18", 1, 18},        {"\\$18", 1, 18},      {"1,234", 1, 1234},   {"-5", 1, -5},
    {"5.00", 1, 5},       {"7.", 1, 7},          {"18 dollars", 1, 18}, {"25%", 1, 25},       {"10{,}080", 1, 10080},
    {"10,\\!080", 1, 10080}, {"\xe2\x88\x92" "7", 1, -7}, {"abc", 0, 0},      {"", 0, 0},            {"0x1A", 0, 0},       {"inf", 0, 0},
    {"1/2", 0, 0},        {"3 m^2", 1, 3},       {"-", 0, 0},           {".5", 1, 0.5},
};

static void test_parse_number_table(void) {
    int n = sizeof NUMBER_CASES / sizeof NUMBER_CASES[0];
    for (int i = 0; i < n; i++) {
        double v = -999;
        int ok = answer_parse_number(NUMBER_CASES[i].text, strlen(NUMBER_CASES[i].text), &v) == 0;
        CHECK_MSG(ok == NUMBER_CASES[i].ok, "case %d '%s': ok %d", i, NUMBER_CASES[i].text, ok);
        if (ok) CHECK_NEAR(v, NUMBER_CASES[i].value, 1e-12);
    }
}

typedef struct {
    const char *in, *out;
} NormCase;

static const NormCase NORM_CASES[] = {
    {"\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\frac{\\pi}{2})"},
    {"\\dfrac{1}{2}", "\\frac{1}{2}"},
    {"\\frac12", "\\frac{1}{2}"},
    {"\\frac{1}2", "\\frac{1}{2}"},
    {"\\sqrt2", "\\sqrt{2}"},
    {"10,\\!080", "10080"},
    {"90^\\circ", "90"},
    {"\\$5.", "5"},
    {"x = 7", "x=7"},
    {"x \\in [1,2]", "[1,2]"},
    {"\\cos x", "\\cos x"},
    {".5", "0.5"},
    {"3/4", "\\frac{3}{4}"},
    {"5\\text{ cm}", "5"},
    {"\\text{Evelyn}", "Evelyn"},
    {"\\text{(B)}", "B"},
    {"1,2", "1,2"},
    {"50\\%", "50"},
    {"{5}", "5"},
};

static void test_normalize_table(void) {
    int n = sizeof NORM_CASES / sizeof NORM_CASES[0];
    char out[MATH_NORM_CAP];
    for (int i = 0; i < n; i++) {
        CHECK(math_normalize(NORM_CASES[i].in, strlen(NORM_CASES[i].in), out, NULL) == 0);
        CHECK_MSG(!strcmp(out, NORM_CASES[i].out), "case %d '%s': got '%s' want '%s'", i, NORM_CASES[i].in, out,
                  NORM_CASES[i].out);
    }
}

typedef struct {
    const char *text;
    double value;  // NAN: must not parse
} ExprCase;

static void test_expr_values(void) {
    const ExprCase cases[] = {
        {"1+2*3", 7},          {"(1+2)*3", 9},       {"2^3^2", 64},      {"-2^2", -4},
        {"\\frac{1}{4}", 0.25}, {"\\frac14", 0.25},  {"\\sqrt{16}", 4},  {"3!", 6},
        {"2\\pi", 2 * M_PI},   {"10/4", 2.5},        {"1.5e-3", 0.0015}, {"\\sqrt[4]{16}", 2},
        {"1+", NAN},           {"(1", NAN},          {"", NAN},          {"\\frac{1}", NAN},
        {"1\\cdot2\\times3", 6}, {"\\lfloor2.7\\rfloor", 2}, {"\\lceil2.1\\rceil", 3}, {"|-3|", 3},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        MathVars vars = {0};
        MathExpr *e = malloc(sizeof *e);
        int rc = math_expr_parse(cases[i].text, strlen(cases[i].text), &vars, e);
        double v = rc == 0 ? math_expr_eval(e, NULL) : NAN;
        free(e);
        if (isnan(cases[i].value)) {
            CHECK_MSG(rc != 0, "'%s' parsed", cases[i].text);
        } else {
            CHECK_MSG(rc == 0, "'%s' did not parse", cases[i].text);
            CHECK_NEAR(v, cases[i].value, 1e-12);
        }
    }
}

static void test_format(void) {
    RewardResult r;
    Error err = {{0}};
    RewardChecker *think = reward_checker_create("format:think", NULL, &err);
    CHECK(think);
    reward_checker_score(think, NULL, "\\boxed{3}", NULL, &r);
    CHECK(r.score == 0);
    reward_checker_score(think, NULL, "hmm</think>\\boxed{3}", NULL, &r);
    CHECK(r.score == 1);
    reward_checker_free(think);
    reward_format("reasoning \\boxed{3}", 0, 0, &r);
    CHECK(r.score == 1);
    reward_format("reasoning, no answer", 0, 0, &r);
    CHECK(r.score == 0);
    reward_format("\\boxed{}", 0, 0, &r);
    CHECK(r.score == 0);
    reward_format("#### 5", 0, 0, &r);
    CHECK(r.score == 0);
    reward_format("#### 5", 0, 1, &r);
    CHECK(r.score == 1);
    // thinking on: </think> must close, answer after it
    reward_format("let me think</think> so \\boxed{3}", 1, 0, &r);
    CHECK(r.score == 1);
    reward_format("<think>hmm</think>\\boxed{3}", 1, 0, &r);
    CHECK(r.score == 1);
    reward_format("<think>hmm \\boxed{3}", 1, 0, &r);
    CHECK(r.score == 0);
    reward_format("hmm \\boxed{3}</think> nothing", 1, 0, &r);
    CHECK(r.score == 0);
    reward_format("a</think>b</think>\\boxed{1}", 1, 0, &r);
    CHECK(r.score == 0);
    // thinking off: tags, when present, must balance
    reward_format("<think>x</think>\\boxed{1}", 0, 0, &r);
    CHECK(r.score == 1);
    reward_format("<think>x \\boxed{1}", 0, 0, &r);
    CHECK(r.score == 0);
    CHECK(strstr(r.reason, "unbalanced") != NULL);
}

// Hostile inputs: deep nesting, thousands of unbalanced braces, 1 MB completions. They must
// return (bounded work), not crash; correctness here is "not equal" or a plain string match.
static void test_hostile_inputs(void) {
    size_t n = 1 << 20;
    char *big = malloc(n + 1);
    const char *patterns[] = {"{", "}", "\\boxed{", "\\frac{", "(", "\\sqrt", "1+", "\\left(", "^{", "x"};
    for (size_t p = 0; p < sizeof patterns / sizeof patterns[0]; p++) {
        size_t pl = strlen(patterns[p]), w = 0;
        while (w + pl < n) memcpy(big + w, patterns[p], pl), w += pl;
        big[w] = 0;
        RewardResult r;
        reward_math(big, "1", &r);
        CHECK(r.score == 0);
        reward_gsm8k(big, "#### 1", &r);
        reward_format(big, 1, 1, &r);
        CHECK(math_equivalent(big, w, big, w, NULL) == 1);
        CHECK(math_equivalent(big, w, "1", 1, NULL) == 0);
        // A long but allowed answer inside \boxed{}: 2000 characters of nesting.
        size_t m = 1990 / pl * pl;
        char box[2100];
        memcpy(box, "\\boxed{", 7);
        memcpy(box + 7, big, m);
        memcpy(box + 7 + m, "}", 2);
        reward_math(box, box + 7, &r);
    }
    // Nested unordered lists: pairwise matching is quadratic per level; the work budget bounds it.
    {
        char a[2048], b[2048];
        size_t w = 0;
        w += (size_t)sprintf(a + w, "\\{");
        for (int i = 0; i < 20; i++) {
            w += (size_t)sprintf(a + w, "%s\\{", i ? "," : "");
            for (int j = 0; j < 20; j++) w += (size_t)sprintf(a + w, "%s1", j ? "," : "");
            w += (size_t)sprintf(a + w, "\\}");
        }
        sprintf(a + w, "\\}");
        memcpy(b, a, strlen(a) + 1);
        b[strlen(b) - 6] = '2';  // one leaf differs
        const char *rule;
        CHECK(math_equivalent(a, strlen(a), b, strlen(b), &rule) == 0);
        CHECK(math_equivalent(a, strlen(a), a, strlen(a), &rule) == 1);
    }
    // 3000 unbalanced braces in a 40 KB completion with a real answer at the end.
    size_t w = 0;
    for (int i = 0; i < 3000; i++) big[w++] = '{';
    while (w < 40000) big[w++] = 'a';
    strcpy(big + w, " \\boxed{7}");
    RewardResult r;
    reward_math(big, "7", &r);
    CHECK_MSG(r.score == 1, "unbalanced prefix: %s", r.reason);
    free(big);
}

int main(void) {
    RUN(test_equivalence_table);
    RUN(test_last_boxed_table);
    RUN(test_last_boxed_fast_matches_scan);
    RUN(test_gsm8k_table);
    RUN(test_math_table);
    RUN(test_parse_number_table);
    RUN(test_normalize_table);
    RUN(test_expr_values);
    RUN(test_format);
    RUN(test_hostile_inputs);
    return test_summary("test_reward_math");
}
