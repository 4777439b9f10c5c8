// `pionrl tokenize` end to end with the tiny fixture tokenizer: --text, --jsonl (order kept),
// --decode, --help and the errors. The binary is found beside the test program (BUILD/pionrl).
#include <libgen.h>
#include <sys/wait.h>

#include "core/fileio.h"
#include "policy/tokenizer.h"
#include "test.h"

static char bin[1024];
static char tmp[64];
static const char *TOK = "tests/fixtures/tokenizer/tiny";

static void test_text_to_ids(void) {
    char cmd[2048], out[4096];
    snprintf(cmd, sizeof cmd, "%s tokenize --tokenizer %s --text ' the abab<|im_end|>'", bin, TOK);
    CHECK(test_shell(cmd, out, sizeof out) == 0);
    // Same ids as the library gives.
    Tokenizer *t;
    Error err;
    CHECK(tokenizer_load(TOK, &t, &err) == 0);
    int *ids, n;
    CHECK(tokenizer_encode(t, " the abab<|im_end|>", 19, &ids, &n, &err) == 0);
    char want[256] = "";
    for (int i = 0; i < n; i++) snprintf(want + strlen(want), sizeof want - strlen(want), "%s%d", i ? " " : "", ids[i]);
    strcat(want, "\n");
    CHECK_MSG(!strcmp(out, want), "got '%s' want '%s'", out, want);
    free(ids);
    tokenizer_free(t);
}

static void test_jsonl_roundtrip_in_order(void) {
    char in[128], ids[128], back[128], cmd[4096], out[8192];
    snprintf(in, sizeof in, "%s/in.jsonl", tmp);
    snprintf(ids, sizeof ids, "%s/ids.jsonl", tmp);
    snprintf(back, sizeof back, "%s/back.jsonl", tmp);
    Error err;
    // Enough lines that the parallel conversion would show any reordering.
    char text[40000] = "";
    for (int i = 0; i < 500; i++)
        snprintf(text + strlen(text), sizeof text - strlen(text), "{\"text\": \"line %d the\\n caf\\u00e9\", \"x\": 1}\n", i);
    CHECK(file_write_atomic(in, text, strlen(text), &err) == 0);
    snprintf(cmd, sizeof cmd, "%s tokenize --tokenizer %s --jsonl %s --output %s", bin, TOK, in, ids);
    CHECK(test_shell(cmd, out, sizeof out) == 0);
    snprintf(cmd, sizeof cmd, "%s tokenize --tokenizer %s --decode --jsonl %s > %s", bin, TOK, ids, back);
    CHECK(test_shell(cmd, out, sizeof out) == 0);
    char *got = file_read_all(back, NULL, &err);
    CHECK(got);
    char *line = got;
    for (int i = 0; i < 500; i++) {
        char want[128];
        snprintf(want, sizeof want, "{\"text\": \"line %d the\\n caf\xc3\xa9\"}\n", i);
        CHECK_MSG(!strncmp(line, want, strlen(want)), "line %d: %.60s", i + 1, line);
        line += strlen(want);
    }
    CHECK(*line == 0);
    free(got);
}

static void test_decode_ids(void) {
    char cmd[2048], out[4096];
    snprintf(cmd, sizeof cmd, "%s tokenize --tokenizer %s --decode --ids '116, 104 101'", bin, TOK);
    CHECK(test_shell(cmd, out, sizeof out) == 0);
    CHECK(!strcmp(out, "the\n"));
    snprintf(cmd, sizeof cmd, "%s tokenize --tokenizer %s --decode --skip-special --ids '267 97'", bin, TOK);
    CHECK(test_shell(cmd, out, sizeof out) == 0);
    CHECK(!strcmp(out, "a\n"));
}

static void test_errors(void) {
    char cmd[2048], out[4096], bad[128];
    snprintf(cmd, sizeof cmd, "%s tokenize --text hi 2>&1", bin);
    CHECK(test_shell(cmd, out, sizeof out) == 2);
    CHECK(strstr(out, "--tokenizer"));
    snprintf(cmd, sizeof cmd, "%s tokenize --tokenizer %s --decode --ids '1 x' 2>&1", bin, TOK);
    CHECK(test_shell(cmd, out, sizeof out) == 2);
    snprintf(cmd, sizeof cmd, "%s tokenize --tokenizer %s --decode --ids '99999' 2>&1", bin, TOK);
    CHECK(test_shell(cmd, out, sizeof out) == 1);
    CHECK(strstr(out, "99999"));
    snprintf(bad, sizeof bad, "%s/bad.jsonl", tmp);
    Error err;
    CHECK(file_write_atomic(bad, "{\"text\": \"ok\"}\n{\"txt\": \"no\"}\n", 29, &err) == 0);
    snprintf(cmd, sizeof cmd, "%s tokenize --tokenizer %s --jsonl %s 2>&1", bin, TOK, bad);
    CHECK(test_shell(cmd, out, sizeof out) == 1);
    CHECK_MSG(strstr(out, "bad.jsonl:2") && strstr(out, "\"text\""), "%s", out);
    CHECK(file_write_atomic(bad, "{\"text\": \"\\udc00\"}\n", 19, &err) == 0);  // lone surrogate
    CHECK(test_shell(cmd, out, sizeof out) == 1);
    snprintf(cmd, sizeof cmd, "%s tokenize --tokenizer /nonexistent --text a 2>&1", bin);
    CHECK(test_shell(cmd, out, sizeof out) == 1);
    snprintf(cmd, sizeof cmd, "%s tokenize --help", bin);
    CHECK(test_shell(cmd, out, sizeof out) == 0);
    CHECK(strstr(out, "--jsonl") && strstr(out, "--decode") && strstr(out, "--tokenizer"));
    snprintf(cmd, sizeof cmd, "%s --help", bin);
    CHECK(test_shell(cmd, out, sizeof out) == 0);
    CHECK(strstr(out, "tokenize"));
}

static void test_binary_missing(void) { test_skip("%s not built (make builds it before the tests)", bin); }

int main(int argc, char **argv) {
    char self[1024];
    snprintf(self, sizeof self, "%s", argv[0]);
    snprintf(bin, sizeof bin, "%s/../pionrl", dirname(self));
    snprintf(tmp, sizeof tmp, "/tmp/pionrl_tokcli_XXXXXX");
    if (!mkdtemp(tmp)) return 1;
    if (access(bin, X_OK)) {
        RUN(test_binary_missing);
        rmdir(tmp);
        return test_summary("test_tokenizer_cli");
    }
    RUN(test_text_to_ids);
    RUN(test_jsonl_roundtrip_in_order);
    RUN(test_decode_ids);
    RUN(test_errors);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", tmp);
    return test_summary("test_tokenizer_cli");
}
