// Minimal test harness: each tests/test_*.c is its own program with a main() that calls
// RUN(test_fn) for each test. A test fails on the first failed CHECK and may SKIP itself.
// Output lines: "PASS name", "FAIL name: file:line: message", "SKIP name: reason", then a summary
// line that tests/run.sh adds up into the suite's closing "N passed, N failed, N skipped".
#ifndef PIONRL_TEST_H
#define PIONRL_TEST_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
    int passed, failed, skipped;
    int state;  // 0 running, 1 failed, 2 skipped
    char msg[1024];
} TestState;

static TestState test_state;

static inline void test_fail_at(const char *file, int line, const char *fmt, ...) {
    if (test_state.state) return;
    int n = snprintf(test_state.msg, sizeof test_state.msg, "%s:%d: ", file, line);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(test_state.msg + n, sizeof test_state.msg - n, fmt, ap);
    va_end(ap);
    test_state.state = 1;
}

static inline void test_skip(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(test_state.msg, sizeof test_state.msg, fmt, ap);
    va_end(ap);
    test_state.state = 2;
}

static inline void test_run(const char *name, void (*fn)(void)) {
    test_state.state = 0;
    test_state.msg[0] = 0;
    fn();
    if (test_state.state == 1) {
        printf("FAIL %s: %s\n", name, test_state.msg);
        test_state.failed++;
    } else if (test_state.state == 2) {
        printf("SKIP %s: %s\n", name, test_state.msg);
        test_state.skipped++;
    } else {
        printf("PASS %s\n", name);
        test_state.passed++;
    }
    fflush(stdout);
}

// Runs a shell command, captures its stdout (add 2>&1 to the command for stderr) into out (NUL-
// terminated, at most n - 1 bytes) and returns its exit status (-1 when it did not exit normally).
static inline int test_shell(const char *cmd, char *out, size_t n) {
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t k = fread(out, 1, n - 1, p);
    out[k] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

// The running maximum of differences for a comparison: infinite once a difference is NaN (fmax alone would skip
// a NaN and let a broken result pass).
static inline double test_worse(double worst, double d) { return d != d ? INFINITY : fmax(worst, d); }

static inline int test_summary(const char *suite) {
    printf("%s: %d passed, %d failed, %d skipped\n", suite, test_state.passed, test_state.failed,
           test_state.skipped);
    return test_state.failed ? 1 : 0;
}

#define RUN(fn) test_run(#fn, fn)
// On failure: record and return from the test function.
#define CHECK(cond)                                                  \
    do {                                                             \
        if (!(cond)) {                                               \
            test_fail_at(__FILE__, __LINE__, "CHECK(%s)", #cond);    \
            return;                                                  \
        }                                                            \
    } while (0)
#define CHECK_MSG(cond, ...)                                         \
    do {                                                             \
        if (!(cond)) {                                               \
            test_fail_at(__FILE__, __LINE__, __VA_ARGS__);           \
            return;                                                  \
        }                                                            \
    } while (0)
#define CHECK_NEAR(a, b, tol)                                                                    \
    do {                                                                                         \
        double a_ = (a), b_ = (b);                                                               \
        if (!(fabs(a_ - b_) <= (tol))) {                                                         \
            test_fail_at(__FILE__, __LINE__, "%s = %.9g, %s = %.9g, |diff| %.3g > %.3g", #a, a_, \
                         #b, b_, fabs(a_ - b_), (double)(tol));                                  \
            return;                                                                              \
        }                                                                                        \
    } while (0)

// Path of a file under ../shared (the data sets and tokenizer beside the project), or NULL when
// absent so the test can skip. Tests run from the repository root.
static inline const char *test_shared_path(const char *rel) {
    static char buf[8][1024];
    static int k;
    char *out = buf[k++ % 8];
    snprintf(out, 1024, "../shared/%s", rel);
    return access(out, R_OK) == 0 ? out : NULL;
}

#endif
