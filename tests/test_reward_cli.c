// `pionrl reward` end to end: runs the binary built beside this test (BUILD/pionrl, found from
// argv[0]) on tests/fixtures/reward/items.jsonl and compares with the expected output; checks
// exit codes and messages for bad input.
#include "test.h"

#include <libgen.h>
#include <sys/wait.h>

static char pionrl[1024];

static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

static void test_cli_math_matches_expected(void) {
    if (access(pionrl, X_OK) != 0) {
        test_skip("%s not built", pionrl);
        return;
    }
    static char out[1 << 16], cmd[2048];
    snprintf(cmd, sizeof cmd, "%s reward --checker math --jsonl tests/fixtures/reward/items.jsonl 2>/dev/null", pionrl);
    CHECK(test_shell(cmd, out, sizeof out) == 0);
    const char *want = read_file("tests/fixtures/reward/items_math.expected.jsonl");
    CHECK(want);
    CHECK_MSG(!strcmp(out, want), "output:\n%s\nexpected:\n%s", out, want);
}

static void test_cli_weights_and_stdin(void) {
    if (access(pionrl, X_OK) != 0) {
        test_skip("%s not built", pionrl);
        return;
    }
    static char out[1 << 16], cmd[2048];
    snprintf(cmd, sizeof cmd,
             "printf '%%s\\n' '{\"completion\": \"\\\\boxed{18}\", \"answer\": \"#### 18\"}' | "
             "%s reward --weights '{\"gsm8k\": 1.0, \"format\": 0.5}' --jsonl - 2>&1",
             pionrl);
    CHECK(test_shell(cmd, out, sizeof out) == 0);
    CHECK_MSG(strstr(out, "\"score\":1.5"), "%s", out);
    CHECK_MSG(strstr(out, "\"scores\":{\"gsm8k\":1,\"format\":1}"), "%s", out);
    CHECK_MSG(strstr(out, "1 items, mean score 1.5000"), "%s", out);
}

static void test_cli_bad_input(void) {
    if (access(pionrl, X_OK) != 0) {
        test_skip("%s not built", pionrl);
        return;
    }
    struct {
        const char *args, *input;
        int rc;
        const char *msg;
    } cases[] = {
        {"--checker math --jsonl -", "{\"completion\": \"x\"}", 1, "-:1: needs a string \"completion\" and an \"answer\""},
        {"--checker math --jsonl -", "{\"completion\": 3", 1, "-:1: invalid JSON"},
        {"--checker math --jsonl -", "{\"answer\": \"1\"}\n\n{\"completion\": \"x\", \"answer\": \"1\"}", 1, "-:1:"},
        {"--checker nope --jsonl -", "", 2, "unknown checker 'nope'"},
        {"--checker math", "", 2, "needs --jsonl"},
        {"--checker math --weights '{}' --jsonl -", "", 2, "either --checker or --weights"},
        {"--weights '{\"math\": 1' --jsonl -", "", 2, "--weights: invalid JSON"},
        {"--checker math --jsonl /nonexistent.jsonl", "", 1, "cannot open /nonexistent.jsonl"},
        {"--checker math --threads x --jsonl -", "", 2, "--threads expects a number"},
        {"--checker math --bogus 1 --jsonl -", "", 2, "unknown option --bogus"},
        {"--checker format --jsonl -", "{\"completion\": \"\\\\boxed{1}\"}", 0, "\"score\":1"},
    };
    static char out[1 << 16], cmd[4096];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(cmd, sizeof cmd, "printf '%%s\\n' '%s' | %s reward %s 2>&1", cases[i].input, pionrl, cases[i].args);
        int rc = test_shell(cmd, out, sizeof out);
        CHECK_MSG(rc == cases[i].rc, "'%s': exit %d, want %d: %s", cases[i].args, rc, cases[i].rc, out);
        CHECK_MSG(strstr(out, cases[i].msg), "'%s': output '%s' lacks '%s'", cases[i].args, out, cases[i].msg);
    }
    snprintf(cmd, sizeof cmd, "%s reward --help", pionrl);
    CHECK(test_shell(cmd, out, sizeof out) == 0);
    CHECK(strstr(out, "--checker NAME") && strstr(out, "plugin:PATH") && strstr(out, "cmd:COMMAND"));
    snprintf(cmd, sizeof cmd, "%s --help", pionrl);
    CHECK(test_shell(cmd, out, sizeof out) == 0);
    CHECK(strstr(out, "reward"));
}

int main(int argc, char **argv) {
    (void)argc;
    char self[1024];
    snprintf(self, sizeof self, "%s", argv[0]);
    snprintf(pionrl, sizeof pionrl, "%s/../pionrl", dirname(self));
    RUN(test_cli_math_matches_expected);
    RUN(test_cli_weights_and_stdin);
    RUN(test_cli_bad_input);
    return test_summary("test_reward_cli");
}
