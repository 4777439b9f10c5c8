// `pionrl generate` end to end on the tiny Qwen3 fixture with token ids in and out: greedy output
// equals the library's qwen_generate, --device cpu is the default, --device cuda either fails
// with the reason (CPU-only build, no GPU) or, on a GPU, gives the CPU's greedy tokens; bad
// options exit 2 with a message; `pionrl eval --device` likewise. The binary is found beside the
// test program (BUILD/pionrl).
#include <libgen.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/cuda_ops.h"
#include "policy/generate.h"
#include "policy/qwen_checkpoint.h"
#include "test.h"

static char bin[1024];
static const char *MODEL = "tests/fixtures/qwen3-tiny";

static void test_greedy_ids_match_library(void) {
    char cmd[2048], out[4096];
    snprintf(cmd, sizeof cmd, "%s generate --model %s --ids '1 2 3' --max-new-tokens 6 --temperature 0 2>/dev/null",
             bin, MODEL);
    CHECK(test_shell(cmd, out, sizeof out) == 0);
    QwenModel m;
    Error err;
    CHECK_MSG(qwen_model_load(MODEL, &m, &err) == 0, "%s", err.msg);
    int prompt[] = {1, 2, 3}, len = 3;
    const int *prompts[] = {prompt};
    GenerateParams gp = {{0.0f, 0, 1.0f, 0.0f}, 6, NULL, 0, 0, 0, NULL, NULL, NULL, NULL, 0, NULL, NULL, 0, 0};
    GenSeq seq;
    CHECK_MSG(qwen_generate(&m, prompts, &len, 1, 1, &gp, &seq, &err) == 0, "%s", err.msg);
    char want[256] = "{\"prompt_index\":0,\"sample\":0,\"ids\":[";
    for (int i = 0; i < seq.n; i++)
        snprintf(want + strlen(want), sizeof want - strlen(want), "%s%d", i ? "," : "", seq.tokens[i]);
    strcat(want, "],\"finish_reason\":\"length\"}\n");
    CHECK_MSG(!strcmp(out, want), "got '%s' want '%s'", out, want);
    // --device cpu is the same run
    snprintf(cmd, sizeof cmd,
             "%s generate --model %s --ids '1 2 3' --max-new-tokens 6 --temperature 0 --device cpu 2>/dev/null", bin,
             MODEL);
    char out2[4096];
    CHECK(test_shell(cmd, out2, sizeof out2) == 0 && !strcmp(out, out2));
    gen_seqs_free(&seq, 1);
    qwen_model_free(&m);
}

static void test_device_cuda(void) {
    char cmd[2048], out[4096], cpu[4096];
    snprintf(cmd, sizeof cmd,
             "%s generate --model %s --ids '1 2 3' --max-new-tokens 6 --temperature 0 --device cuda 2>&1", bin, MODEL);
    int rc = test_shell(cmd, out, sizeof out);
    Error err;
    if (cuda_device_probe(NULL, 0, NULL, &err)) {  // no GPU here: a clear refusal, exit 1
        CHECK_MSG(rc == 1 && strstr(out, "--device cuda") && strstr(out, err.msg), "rc %d: %s", rc, out);
        return;
    }
    snprintf(cmd, sizeof cmd, "%s generate --model %s --ids '1 2 3' --max-new-tokens 6 --temperature 0 2>/dev/null",
             bin, MODEL);
    CHECK(rc == 0 && test_shell(cmd, cpu, sizeof cpu) == 0);
    CHECK_MSG(strstr(out, cpu) != NULL, "GPU greedy '%s' differs from CPU '%s'", out, cpu);  // out has stderr too
    // bf16 matrix products and cache: the device rounds the same inputs as the CPU, so the same greedy tokens
    const char *bf16 = "--matmul-dtype bf16 --kv-cache-dtype bf16";
    snprintf(cmd, sizeof cmd, "%s generate --model %s --ids '1 2 3' --max-new-tokens 6 --temperature 0 %s 2>/dev/null",
             bin, MODEL, bf16);
    CHECK(test_shell(cmd, cpu, sizeof cpu) == 0);
    snprintf(cmd, sizeof cmd,
             "%s generate --model %s --ids '1 2 3' --max-new-tokens 6 --temperature 0 %s --device cuda 2>/dev/null", bin,
             MODEL, bf16);
    CHECK(test_shell(cmd, out, sizeof out) == 0);
    CHECK_MSG(!strcmp(out, cpu), "GPU bf16 greedy '%s' differs from CPU bf16 '%s'", out, cpu);
}

static void test_bad_options(void) {
    char cmd[2048], out[4096];
    snprintf(cmd, sizeof cmd, "%s generate --model %s --ids '1 2' --device tpu 2>&1", bin, MODEL);
    CHECK(test_shell(cmd, out, sizeof out) == 2 && strstr(out, "--device must be cpu or cuda"));
    snprintf(cmd, sizeof cmd, "%s generate --model /nonexistent --ids '1 2' 2>&1", bin);
    CHECK(test_shell(cmd, out, sizeof out) == 1 && strstr(out, "/nonexistent"));
    snprintf(cmd, sizeof cmd, "%s generate --model %s --ids '1 2' --max-new-tokens x 2>&1", bin, MODEL);
    CHECK(test_shell(cmd, out, sizeof out) == 2 && strstr(out, "not a number"));
    snprintf(cmd, sizeof cmd, "%s generate --model %s --ids '1 2' --matmul-dtype fp16 2>&1", bin, MODEL);
    CHECK(test_shell(cmd, out, sizeof out) == 2 && strstr(out, "fp32 or bf16"));
}

// --matmul-dtype bf16 and --kv-cache-dtype bf16: ids out, as many as asked, and the same ids as the
// library's bf16 generation.
static void test_bf16_ids_match_library(void) {
    char cmd[2048], out[4096];
    snprintf(cmd, sizeof cmd,
             "%s generate --model %s --ids '1 2 3' --max-new-tokens 6 --temperature 0 --matmul-dtype bf16 "
             "--kv-cache-dtype bf16 2>/dev/null",
             bin, MODEL);
    CHECK(test_shell(cmd, out, sizeof out) == 0);
    QwenModel m;
    Error err;
    CHECK_MSG(qwen_model_load(MODEL, &m, &err) == 0, "%s", err.msg);
    int prompt[] = {1, 2, 3};
    const int *prompts[] = {prompt};
    int len = 3;
    GenerateParams gp = {{0.0f, 0, 1.0f, 0.0f}, 6, NULL, 0, 0, 0, NULL, NULL, NULL, NULL, 0, NULL, NULL, 1, 1};
    GenSeq seq;
    CHECK(qwen_generate(&m, prompts, &len, 1, 1, &gp, &seq, &err) == 0 && seq.n == 6);
    char expect[256] = "\"ids\":[";
    for (int i = 0; i < seq.n; i++)
        snprintf(expect + strlen(expect), sizeof expect - strlen(expect), "%s%d", i ? "," : "", seq.tokens[i]);
    strcat(expect, "]");
    CHECK_MSG(strstr(out, expect), "CLI '%s' vs library '%s'", out, expect);
    gen_seqs_free(&seq, 1);
    qwen_model_free(&m);
}

// `pionrl eval --device`: cuda without a GPU is refused with the reason (exit 1) before any work;
// an unknown device is a usage error (exit 2); cpu evaluates.
static void test_eval_device(void) {
    char cmd[2048], out[4096];
    Error err;
    snprintf(cmd, sizeof cmd, "%s eval --config configs/demo.json --examples 4 --device tpu 2>&1", bin);
    CHECK(test_shell(cmd, out, sizeof out) == 2);
    snprintf(cmd, sizeof cmd, "OMP_NUM_THREADS=1 %s eval --config configs/demo.json --examples 4 --device cpu 2>&1", bin);
    CHECK_MSG(test_shell(cmd, out, sizeof out) == 0 && strstr(out, "pass@1"), "%s", out);
    if (cuda_device_probe(NULL, 0, NULL, &err) == 0) return;  // with a GPU the cuda run is the GPU tests' job
    snprintf(cmd, sizeof cmd, "%s eval --config configs/demo.json --examples 4 --device cuda 2>&1", bin);
    CHECK_MSG(test_shell(cmd, out, sizeof out) == 1 && strstr(out, "--device cuda") && strstr(out, err.msg), "%s", out);
}

static void test_binary_missing(void) { test_skip("%s not built", bin); }

int main(int argc, char **argv) {
    char self[1024];
    snprintf(self, sizeof self, "%s", argv[0]);
    snprintf(bin, sizeof bin, "%s/../pionrl", dirname(self));
    if (access(bin, X_OK)) {
        RUN(test_binary_missing);
        return test_summary("test_generate_cli");
    }
    RUN(test_greedy_ids_match_library);
    RUN(test_device_cuda);
    RUN(test_bad_options);
    RUN(test_bf16_ids_match_library);
    RUN(test_eval_device);
    return test_summary("test_generate_cli");
}
