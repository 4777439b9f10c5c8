// End-to-end RLVR training on CPU with a tiny random Qwen3 (the tiny ChatML tokenizer fixture) and
// a reward plug-in compiled by the test (its score varies on random text, so advantages are
// non-zero): every optimizer x loss runs, weights move, metrics are written, a resumed run
// continues bit-exactly, and bad configs fail with the key named.
#include "test.h"

#include "qwen_tiny.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "core/cuda_ops.h"
#include "core/fileio.h"
#include "core/json.h"
#include "policy/qwen.h"
#include "policy/qwen_checkpoint.h"
#include "policy/qwen_cuda.h"
#include "policy/qwen_decode.h"
#include "policy/qwen_train.h"
#include "rl/memory_plan.h"
#include "rl/trainer.h"
#include "test_gpu.h"

static char root[256];
static int ready;

// Score = fraction of even bytes in the completion: a smooth, always-varying reward.
static const char *PLUGIN_SRC =
    "#include <string.h>\n"
    "typedef struct { double score; int status; char pred[128]; char reason[128]; } R;\n"
    "int pionrl_reward_score(const char *p, const char *c, const char *a, R *r) {\n"
    "  size_t n = strlen(c), even = 0;\n"
    "  for (size_t i = 0; i < n; i++) even += !((unsigned char)c[i] & 1);\n"
    "  r->score = n ? (double)even / n : 0.0; return 0; }\n";

static int setup(void) {
    if (ready) return ready > 0;
    ready = -1;
    snprintf(root, sizeof root, "/tmp/pionrl-train-XXXXXX");
    if (!mkdtemp(root)) return 0;
    Error e;
    char path[512], cmd[1200];
    // reward plug-in (the layout of RewardResult is the public plug-in contract)
    snprintf(path, sizeof path, "%s/reward.c", root);
    if (file_write_atomic(path, PLUGIN_SRC, strlen(PLUGIN_SRC), &e)) return 0;
    snprintf(cmd, sizeof cmd, "cc -shared -fPIC -O1 -o %s/reward.so %s 2>&1", root, path);
    if (system(cmd) != 0) return 0;
    // tiny model over the tiny tokenizer's ids
    QwenConfig c = qwen_tiny_config(ARCH_QWEN3, 272, 32, 48);  // the tiny tokenizer has 265 ids
    c.max_position_embeddings = 512;
    snprintf(c.torch_dtype, sizeof c.torch_dtype, "float32");
    QwenModel m;
    if (qwen_model_init(&m, &c, &e)) return 0;
    qwen_model_init_random(&m, 5, 0.3f);
    snprintf(path, sizeof path, "%s/model", root);
    int rc = qwen_model_save(path, &m, ST_F32, &e);
    qwen_model_free(&m);
    if (rc || qwen_checkpoint_copy_aux_files("tests/fixtures/tokenizer/tiny", path, &e) < 0) return 0;
    // a small GSM8K-style data set
    snprintf(path, sizeof path, "%s/data.jsonl", root);
    FILE *f = fopen(path, "w");
    if (!f) return 0;
    for (int i = 0; i < 12; i++)
        fprintf(f, "{\"question\": \"What is %d plus %d?\", \"answer\": \"%d + %d = %d\\n#### %d\"}\n", i, 2 * i, i,
                2 * i, 3 * i, 3 * i);
    fclose(f);
    ready = 1;
    return 1;
}

static cJSON *make_config(const char *run, const char *optimizer, const char *loss, int steps) {
    char text[4096];
    snprintf(text, sizeof text,
             "{\"model\": \"%s/model\", \"run_dir\": \"%s/%s\", \"seed\": 3, \"steps\": %d,\n"
             " \"dataset\": {\"path\": \"%s/data.jsonl\", \"answer_extract\": \"gsm8k\", \"eval_count\": 3},\n"
             " \"rollout\": {\"prompts_per_step\": 2, \"group_size\": 4, \"max_new_tokens\": 10, \"temperature\": 1.0},\n"
             " \"loss\": {\"loss_type\": \"%s\"}, \"micro_batch_size\": 3,\n"
             " \"optimizer\": {\"name\": \"%s\", \"lr\": 0.01, \"max_grad_norm\": 1.0},\n"
             " \"reward\": {\"plugin:%s/reward.so\": 1.0},\n"
             " \"eval\": {\"every\": 2, \"examples\": 3},\n"
             " \"checkpoint\": {\"every\": 2, \"keep_last\": 2},\n"
             " \"diagnostics\": {\"every\": 2, \"snr_chunks\": 2}}",
             root, root, run, steps, root, loss, optimizer, root);
    Error e;
    return json_parse_text(text, "test config", &e);
}

static int run_with_stop(cJSON *j, int resume, volatile sig_atomic_t *stop, Error *e) {
    TrainConfig c;
    train_config_default(&c);
    int rc = train_config_parse(j, &c, "test config", e);
    TrainOptions o = {resume, stop, 1, 0};
    if (rc == 0) rc = trainer_run(&c, j, &o, e);
    train_config_free(&c);
    return rc;
}

static int run(cJSON *j, int resume, Error *e) { return run_with_stop(j, resume, NULL, e); }

static int count_lines(const char *path) {
    char *s = file_read_all(path, NULL, NULL);
    int n = 0;
    for (char *p = s; p && *p; p++) n += *p == '\n';
    free(s);
    return n;
}

static void test_every_optimizer_and_loss_trains(void) {
    if (!setup()) {
        test_skip("could not build the test model or reward plug-in (needs cc)");
        return;
    }
    const char *opts[] = {"adamw", "muon", "pion", "spectral"};
    const char *losses[] = {"dapo", "gmpo"};
    QwenModel base;
    Error e;
    char path[600];
    snprintf(path, sizeof path, "%s/model", root);
    CHECK(qwen_model_load(path, &base, &e) == 0);
    for (int i = 0; i < 4; i++)
        for (int l = 0; l < 2; l++) {
            char name[64];
            snprintf(name, sizeof name, "run-%s-%s", opts[i], losses[l]);
            cJSON *j = make_config(name, opts[i], losses[l], 2);
            CHECK(j);
            int rc = run(j, 0, &e);
            cJSON_Delete(j);
            CHECK_MSG(rc == 0, "%s: %s", name, e.msg);
            snprintf(path, sizeof path, "%s/%s/metrics.jsonl", root, name);
            CHECK_MSG(count_lines(path) == 2, "%s: expected 2 metrics lines", name);
            char *text = file_read_all(path, NULL, &e);
            CHECK(text && strstr(text, "\"eval_accuracy\"") && strstr(text, "\"snr\"") && strstr(text, "\"erank\"") &&
                  strstr(text, "\"reward_mean\"") && !strstr(text, "null"));
            free(text);
            // the final checkpoint loads and differs from the initial weights
            char ck[700];
            CHECK(trainer_latest_checkpoint(path, ck, sizeof ck, &e) == -1);  // path is a file: no checkpoint
            snprintf(path, sizeof path, "%s/%s", root, name);
            CHECK_MSG(trainer_latest_checkpoint(path, ck, sizeof ck, &e) == 0, "%s", e.msg);
            QwenModel m;
            CHECK(qwen_model_load(ck, &m, &e) == 0);
            double diff = 0;
            for (size_t k = 0; k < m.num_params; k++) diff += fabs(m.params[k] - base.params[k]);
            CHECK_MSG(diff > 1e-3, "%s: weights did not change (%g)", name, diff);
            qwen_model_free(&m);
        }
    qwen_model_free(&base);
}

// 1 when runs root/run_a and root/run_b end with byte-identical weights at step `step`.
static int same_final_weights(const char *run_a, const char *run_b, long step) {
    Error e;
    char pa[600], pb[600], ca[700], cb[700], want[32];
    snprintf(pa, sizeof pa, "%s/%s", root, run_a);
    snprintf(pb, sizeof pb, "%s/%s", root, run_b);
    snprintf(want, sizeof want, "step-%08ld", step);
    if (trainer_latest_checkpoint(pa, ca, sizeof ca, &e) || trainer_latest_checkpoint(pb, cb, sizeof cb, &e) ||
        !strstr(ca, want) || !strstr(cb, want))
        return 0;
    QwenModel ma, mb;
    if (qwen_model_load(ca, &ma, &e)) return 0;
    if (qwen_model_load(cb, &mb, &e)) {
        qwen_model_free(&ma);
        return 0;
    }
    int same = ma.num_params == mb.num_params && !memcmp(ma.params, mb.params, sizeof(float) * ma.num_params);
    qwen_model_free(&ma);
    qwen_model_free(&mb);
    return same;
}

static void test_resume_is_bit_exact(void) {
    if (!setup()) {
        test_skip("could not build the test model or reward plug-in (needs cc)");
        return;
    }
    Error e;
    // A: 4 steps straight through. B: 2 steps, then resumed to 4 (a new process would read the
    // same checkpoint; nothing else carries over).
    cJSON *a = make_config("resume-a", "pion", "grpo", 4);
    CHECK(run(a, 0, &e) == 0);
    cJSON *b = make_config("resume-b", "pion", "grpo", 2);
    CHECK(run(b, 0, &e) == 0);
    cJSON *b2 = make_config("resume-b", "pion", "grpo", 4);
    int rc = run(b2, 1, &e);
    CHECK_MSG(rc == 0, "resume: %s", e.msg);
    // and a fresh run into a directory with checkpoints is refused
    CHECK(run(b2, 0, &e) == -1 && strstr(e.msg, "--resume"));
    cJSON_Delete(a);
    cJSON_Delete(b);
    cJSON_Delete(b2);
    char pa[600], pb[600];
    CHECK_MSG(same_final_weights("resume-a", "resume-b", 4), "resumed weights differ");
    // metrics: 4 lines each; the resumed run's lines 3-4 equal the straight run's (timing aside)
    snprintf(pa, sizeof pa, "%s/resume-a/metrics.jsonl", root);
    snprintf(pb, sizeof pb, "%s/resume-b/metrics.jsonl", root);
    CHECK(count_lines(pa) == 4 && count_lines(pb) == 4);
    char *ta = file_read_all(pa, NULL, &e), *tb = file_read_all(pb, NULL, &e);
    const char *la = ta, *lb = tb;
    for (int i = 0; i < 4; i++) {
        cJSON *ja = cJSON_ParseWithOpts(la, &la, 0), *jb = cJSON_ParseWithOpts(lb, &lb, 0);
        CHECK(ja && jb);
        const char *keys[] = {"loss", "reward_mean", "grad_norm", "entropy", "eval_accuracy"};
        for (int k = 0; k < 5; k++) {
            const cJSON *x = cJSON_GetObjectItem(ja, keys[k]), *y = cJSON_GetObjectItem(jb, keys[k]);
            if (!x && !y) continue;
            CHECK_MSG(x && y && x->valuedouble == y->valuedouble, "step %d %s differs", i + 1, keys[k]);
        }
        cJSON_Delete(ja);
        cJSON_Delete(jb);
    }
    free(ta);
    free(tb);
}

static int load_params(const char *run, float **out, size_t *n) {
    char dir[600], ck[700];
    Error e;
    QwenModel m;
    snprintf(dir, sizeof dir, "%s/%s", root, run);
    if (trainer_latest_checkpoint(dir, ck, sizeof ck, &e) || qwen_model_load(ck, &m, &e)) return -1;
    *out = m.params;
    *n = m.num_params;
    return 0;
}

// A process killed with SIGKILL at an arbitrary point resumes from its last complete checkpoint
// and ends with exactly the weights of an uninterrupted run.
static void test_kill9_then_resume_is_bit_exact(void) {
    if (!setup()) {
        test_skip("could not build the test model or reward plug-in (needs cc)");
        return;
    }
    Error e;
    enum { STEPS = 12 };
    cJSON *ref = make_config("kill-ref", "muon", "dapo", STEPS);
    CHECK(train_config_apply_set(ref, "checkpoint.every=1", &e) == 0);
    CHECK(run(ref, 0, &e) == 0);
    cJSON *j = make_config("kill", "muon", "dapo", STEPS);
    CHECK(train_config_apply_set(j, "checkpoint.every=1", &e) == 0);
    // the real CLI in a fresh process (BUILD/pionrl beside BUILD/tests/): libgomp is not fork-safe
    char exe[600], bin[700], cfg_path[600];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    CHECK(len > 0);
    exe[len] = 0;
    *strrchr(exe, '/') = 0;
    snprintf(bin, sizeof bin, "%s/../pionrl", exe);
    if (access(bin, X_OK) != 0) {
        test_skip("%s not built", bin);
        return;
    }
    snprintf(cfg_path, sizeof cfg_path, "%s/kill.json", root);
    char *text = cJSON_Print(j);
    CHECK(file_write_atomic(cfg_path, text, strlen(text), &e) == 0);
    free(text);
    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        freopen("/dev/null", "w", stderr);
        execl(bin, bin, "train", cfg_path, "--quiet", (char *)NULL);
        _exit(127);
    }
    // wait (bounded) until the child has written its second checkpoint, then kill it
    char latest[700];
    snprintf(latest, sizeof latest, "%s/kill/checkpoints/latest", root);
    int killed_after = 0;
    for (int i = 0; i < 20000; i++) {
        char *s = file_read_all(latest, NULL, NULL);
        int step = 0;
        if (s) sscanf(s, "step-%d", &step);
        free(s);
        if (step >= 2) {
            killed_after = step;
            break;
        }
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    printf("  killed (%s) after checkpoint step %d of %d\n", WIFSIGNALED(status) ? "SIGKILL" : "had exited",
           killed_after, STEPS);
    int rc = run(j, 1, &e);
    CHECK_MSG(rc == 0, "resume after kill: %s", e.msg);
    float *a, *b;
    size_t na, nb;
    CHECK(load_params("kill-ref", &a, &na) == 0 && load_params("kill", &b, &nb) == 0);
    CHECK(na == nb);
    CHECK_MSG(memcmp(a, b, sizeof(float) * na) == 0, "weights after kill -9 + resume differ from the straight run");
    free(a);
    free(b);
    char path[600];
    snprintf(path, sizeof path, "%s/kill/metrics.jsonl", root);
    CHECK(count_lines(path) == STEPS);
    cJSON_Delete(ref);
    cJSON_Delete(j);
}

// A stop request (Ctrl-C) finishes the step, writes a checkpoint and returns success.
static void test_stop_request_checkpoints(void) {
    if (!setup()) {
        test_skip("could not build the test model or reward plug-in (needs cc)");
        return;
    }
    Error e;
    cJSON *j = make_config("stop", "pion", "dapo", 50);
    volatile sig_atomic_t stop = 1;
    CHECK(run_with_stop(j, 0, &stop, &e) == 0);
    char dir[600], ck[700];
    snprintf(dir, sizeof dir, "%s/stop", root);
    CHECK(trainer_latest_checkpoint(dir, ck, sizeof ck, &e) == 0 && strstr(ck, "step-00000001"));
    cJSON_Delete(j);
}

static void test_bad_configs(void) {
    if (!setup()) {
        test_skip("could not build the test model or reward plug-in (needs cc)");
        return;
    }
    Error e;
    struct {
        const char *set, *expect;
    } cases[] = {
        {"bogus=1", "unknown key 'bogus'"},
        {"rollout.tempxrature=1", "unknown key 'tempxrature'"},
        {"optimizer.name=sgd", "sgd"},
        {"optimizer.kp=9", "kp"},
        {"loss.loss_type=ppo", "ppo"},
        {"rollout.group_size=0", "group_size"},
        {"reward={\"nosuch\": 1}", "nosuch"},
        {"model=\"/nonexistent\"", "/nonexistent"},
        {"device=\"tpu\"", "device must be"},
        {"rollout.kv_cache_dtype=\"fp16\"", "kv_cache_dtype"},
        {"matmul_dtype=\"fp16\"", "matmul_dtype must be"},
        {"rollout.matmul_dtype=\"int8\"", "matmul_dtype must be"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cJSON *j = make_config("bad", "pion", "dapo", 1);
        CHECK(train_config_apply_set(j, cases[i].set, &e) == 0);
        int rc = run(j, 0, &e);
        cJSON_Delete(j);
        CHECK_MSG(rc == -1 && strstr(e.msg, cases[i].expect), "--set %s: rc %d, message '%s'", cases[i].set, rc,
                  e.msg);
    }
}

// gradient_checkpointing: the same run with each layer re-run in the backward ends with the same
// weights, bit for bit.
static void test_gradient_checkpointing_same_weights(void) {
    if (!setup()) {
        test_skip("could not build the test model or reward plug-in (needs cc)");
        return;
    }
    Error e;
    cJSON *a = make_config("gc-off", "pion", "dapo", 2), *b = make_config("gc-on", "pion", "dapo", 2);
    CHECK(train_config_apply_set(b, "gradient_checkpointing=true", &e) == 0);
    CHECK_MSG(run(a, 0, &e) == 0, "%s", e.msg);
    CHECK_MSG(run(b, 0, &e) == 0, "%s", e.msg);
    cJSON_Delete(a);
    cJSON_Delete(b);
    CHECK_MSG(same_final_weights("gc-off", "gc-on", 2), "gradient checkpointing changed the trained weights");
}

// rollout.kv_cache_dtype "bf16", rollout.matmul_dtype "bf16" and matmul_dtype "bf16": a run with
// the bfloat16 rollout cache, bf16 decode products and bf16 training products trains and writes
// its metrics; bf16 products are refused on the device before anything starts.
static void test_kv_cache_bf16_run(void) {
    if (!setup()) {
        test_skip("could not build the test model or reward plug-in (needs cc)");
        return;
    }
    Error e;
    cJSON *j = make_config("kv-bf16", "pion", "dapo", 2);
    CHECK(train_config_apply_set(j, "rollout.kv_cache_dtype=\"bf16\"", &e) == 0);
    CHECK(train_config_apply_set(j, "rollout.matmul_dtype=\"bf16\"", &e) == 0);
    CHECK(train_config_apply_set(j, "matmul_dtype=\"bf16\"", &e) == 0);
    CHECK_MSG(run(j, 0, &e) == 0, "%s", e.msg);
    char path[600];
    snprintf(path, sizeof path, "%s/kv-bf16/metrics.jsonl", root);
    CHECK(count_lines(path) == 2);
    // with "device": "cuda" bf16 is the device's GEMM mode: the config is accepted
    TrainConfig c;
    train_config_default(&c);
    CHECK(train_config_apply_set(j, "device=\"cuda\"", &e) == 0);
    CHECK_MSG(train_config_parse(j, &c, "test config", &e) == 0, "%s", e.msg);
    CHECK(c.matmul_bf16 && c.rollout_matmul_bf16 && !strcmp(c.device, "cuda"));
    train_config_free(&c);
    cJSON_Delete(j);
}

// --plan: the run stops after the memory plan, writing nothing; the plan's parts add up, and follow
// the formulas (weights and gradients are 4 bytes a parameter, activations and KV cache are what
// the allocators would take for the planned shapes, the reference only with a KL term).
static void test_memory_plan(void) {
    if (!setup()) {
        test_skip("could not build the test model or reward plug-in (needs cc)");
        return;
    }
    Error e;
    cJSON *j = make_config("run-plan", "pion", "dapo", 2);
    TrainConfig c;
    train_config_default(&c);
    CHECK_MSG(train_config_parse(j, &c, "test config", &e) == 0, "%s", e.msg);
    TrainOptions o = {0, NULL, 1, 1};
    CHECK_MSG(trainer_run(&c, j, &o, &e) == 0, "%s", e.msg);
    char path[600];
    snprintf(path, sizeof path, "%s/run-plan", root);
    CHECK_MSG(!file_exists(path), "--plan created %s", path);
    QwenConfig mc;
    snprintf(path, sizeof path, "%s/model/config.json", root);
    CHECK_MSG(qwen_config_load(path, &mc, &e) == 0, "%s", e.msg);
    TrainMemoryPlan p;
    train_memory_plan(&c, &mc, 1234, 40, &p);
    size_t n = qwen_num_params(&mc), S = (size_t)c.prompts_per_step * c.group_size;
    int T = 40 + c.max_new_tokens;
    CHECK(p.weights == 4 * n && p.grads == 4 * n && p.optimizer == 1234 && p.reference == 0);
    CHECK(p.seq_len == T && p.sequences == (int)S);
    CHECK(p.activations == qwen_acts_bytes(&mc, c.micro_batch_size, T));
    CHECK(p.kv_cache == qwen_kv_bytes(&mc, (int)S, T, S > 512 ? (int)S : 512));
    CHECK(p.total == p.weights + p.grads + p.optimizer + p.reference + p.activations + p.kv_cache + p.logits);
    c.loss.beta = 0.04f;
    train_memory_plan(&c, &mc, 1234, 40, &p);
    CHECK(p.reference == 4 * n && p.rollout_weights == 0);
    // rollout.matmul_dtype bf16 adds the packed bf16 copy of the projections and lm_head: about
    // half the fp32 weights (panels padded to 32 rows, k to even)
    size_t before = p.total;
    c.rollout_matmul_bf16 = 1;
    train_memory_plan(&c, &mc, 1234, 40, &p);
    CHECK(p.rollout_weights == qwen_bf16_weight_bytes(&mc) && p.total == before + p.rollout_weights);
    CHECK(p.rollout_weights > n && p.rollout_weights < 4 * n && p.train_bf16 == 0);
    c.matmul_bf16 = 1;
    before = p.total;
    train_memory_plan(&c, &mc, 1234, 40, &p);
    CHECK(p.train_bf16 == 2 * bf16_packed_bytes(mc.vocab_size, mc.hidden_size) && p.total == before + p.train_bf16);
    // on the device both sides share one bf16 copy of every parameter, plus two rounded-operand buffers
    size_t host_copies = p.rollout_weights + p.train_bf16, host_acts = p.activations, host_kv = p.kv_cache;
    before = p.total;
    strcpy(c.device, "cuda");
    train_memory_plan(&c, &mc, 1234, 40, &p);
    size_t mlp = (size_t)c.micro_batch_size * T * mc.intermediate_size;
    size_t logit = qwen_cuda_logit_rows(&mc, (size_t)c.micro_batch_size * T) * mc.vocab_size;
    CHECK(p.rollout_weights == 0 && p.train_bf16 == 0);
    // (rollout.matmul_dtype bf16: plus a decode step's bf16 shadows of its normed input, attention and SwiGLU output)
    size_t shadows =
        2 * (size_t)(S > 512 ? S : 512) * (mc.hidden_size + (size_t)mc.num_heads * mc.head_dim + mc.intermediate_size);
    // (matmul_dtype bf16: plus the bf16 copies of the saved GEMM inputs and the MLP's input gradients)
    shadows += qwen_cuda_bf16_acts_bytes(&mc, c.micro_batch_size, T, 0);
    CHECK(p.device_bf16 == 2 * n + 4 * (mlp > logit ? mlp : logit) + shadows);
    // the logit chunk: every row up to a 512 MiB fp32 buffer, never under 256 rows
    QwenConfig big = mc;
    big.vocab_size = 151936;
    CHECK(qwen_cuda_logit_rows(&big, 100) == 100 && qwen_cuda_logit_rows(&big, 5000) == 883);
    big.vocab_size = 1 << 22;
    CHECK(qwen_cuda_logit_rows(&big, 5000) == 256 && qwen_cuda_logit_rows(&big, 200) == 200);
    // and the device's own activations (flash attention: no T x T probabilities, no per-thread attention work)
    CHECK(p.activations == qwen_cuda_acts_bytes(&mc, c.micro_batch_size, T, 0) && p.activations < host_acts);
    // and one more cache slot (where padding rows of a sampled step write)
    CHECK(p.kv_cache == qwen_kv_bytes_ex(&mc, (int)S + 1, T, S > 512 ? (int)S : 512, 0));
    // the reference (beta > 0) has its own forward-only buffers on the device: one layer of activations, bf16 copies
    size_t ref_extra = qwen_cuda_forward_only_bytes(&mc, c.micro_batch_size, T, 1);
    CHECK(p.reference == 4 * n + ref_extra);
    CHECK(ref_extra > 2 * n && ref_extra - 2 * n < qwen_cuda_acts_bytes(&mc, c.micro_batch_size, T, 1));
    CHECK(p.total ==
          before - host_copies - host_acts - host_kv + p.activations + p.kv_cache + p.device_bf16 + ref_extra);
    train_config_free(&c);
    cJSON_Delete(j);
}

// Runs config `name` (2 steps) on the device and on the CPU, with the --set overrides in sets (NULL-ended), and
// compares step 1: the same rollouts (the device samples from the CPU's uniform numbers), so the same rewards; loss,
// entropy and gradient norm (3 micro-batches summed in the device gradient buffer) to 1e-3. *started = 0 when the
// device run could not start (no GPU: checked by the caller, start_err says why).
static void device_step_matches_cpu(const char *name, const char *const *sets, int *started, Error *start_err) {
    Error e;
    char path[600], cpu_name[64];
    cJSON *j = make_config(name, "pion", "dapo", 2), *cpu;
    snprintf(cpu_name, sizeof cpu_name, "%s-cpu", name);
    cpu = make_config(cpu_name, "pion", "dapo", 2);
    for (int k = 0; sets && sets[k]; k++)
        CHECK(train_config_apply_set(j, sets[k], &e) == 0 && train_config_apply_set(cpu, sets[k], &e) == 0);
    CHECK(train_config_apply_set(j, "device=\"cuda\"", &e) == 0);
    *started = run(j, 0, start_err) == 0;
    cJSON_Delete(j);
    if (!*started) {
        cJSON_Delete(cpu);
        return;
    }
    snprintf(path, sizeof path, "%s/%s/metrics.jsonl", root, name);
    CHECK_MSG(count_lines(path) == 2, "expected 2 metrics lines");
    CHECK_MSG(run(cpu, 0, &e) == 0, "%s", e.msg);
    cJSON_Delete(cpu);
    char cpu_path[600];
    snprintf(cpu_path, sizeof cpu_path, "%s/%s/metrics.jsonl", root, cpu_name);
    char *ta = file_read_all(path, NULL, &e), *tb = file_read_all(cpu_path, NULL, &e);
    cJSON *ja = ta ? cJSON_Parse(strtok(ta, "\n")) : NULL, *jb = tb ? cJSON_Parse(strtok(tb, "\n")) : NULL;
    CHECK(ja && jb);
    const char *keys[] = {"reward_mean", "loss", "grad_norm", "entropy", "kl"};  // kl: only with a reference
    for (int k = 0; ja && jb && k < 5; k++) {
        const cJSON *x = cJSON_GetObjectItem(ja, keys[k]), *y = cJSON_GetObjectItem(jb, keys[k]);
        if (k == 4 && !y) continue;
        CHECK_MSG(x && y && fabs(x->valuedouble - y->valuedouble) <= 1e-3 * fmax(1.0, fabs(y->valuedouble)),
                  "%s step 1 %s: device %g, CPU %g", name, keys[k], x ? x->valuedouble : NAN,
                  y ? y->valuedouble : NAN);
    }
    // the memory plan against what the device holds after step 1: the plan must not fall short (on a GPU the CUDA
    // context and cuBLAS's workspace come on top: 2 GiB of slack), nor be far above (on the emulator every byte
    // allocated is the run's own)
    const cJSON *used = ja ? cJSON_GetObjectItem(ja, "device_memory_gb") : NULL;
    const cJSON *plan = ja ? cJSON_GetObjectItem(ja, "device_memory_plan_gb") : NULL;
    int emulated = test_gpu_emulated();
    CHECK_MSG(used && plan && plan->valuedouble > 0, "%s: no device memory in the metrics", name);
    if (used && plan) {
        printf("  %s: device memory after step 1 %.2f MB, planned %.2f MB\n", name, used->valuedouble * 1024,
               plan->valuedouble * 1024);
        CHECK_MSG(used->valuedouble <= plan->valuedouble + (emulated ? 0 : 2.0), "%s: %.4f GB in use, %.4f planned",
                  name, used->valuedouble, plan->valuedouble);
        if (emulated)
            CHECK_MSG(used->valuedouble >= 0.5 * plan->valuedouble, "%s: %.4f GB in use, %.4f planned", name,
                      used->valuedouble, plan->valuedouble);
    }
    cJSON_Delete(ja);
    cJSON_Delete(jb);
    free(ta);
    free(tb);
}

// "device": "cuda": without a GPU (or in a CPU-only build) the run stops before it creates its run
// directory, naming the device and the reason; with one (or the emulator), it trains on the device and its step 1
// is the CPU's, in fp32 and with every matmul_dtype / cache dtype in bf16 on both sides.
static void test_device_cuda(void) {
    if (!setup()) {
        test_skip("could not build the test model or reward plug-in (needs cc)");
        return;
    }
    Error e, probe;
    char path[600];
    int started = 0;
    device_step_matches_cpu("run-cuda", NULL, &started, &e);
    snprintf(path, sizeof path, "%s/run-cuda", root);
    if (cuda_device_probe(NULL, 0, NULL, &probe)) {
        CHECK_MSG(!started && strstr(e.msg, "device \"cuda\"") && strstr(e.msg, probe.msg), "%s", e.msg);
        CHECK_MSG(!file_exists(path), "%s was created by a run that could not start", path);
        return;
    }
    CHECK_MSG(started, "%s", e.msg);
    const char *bf16[] = {"matmul_dtype=\"bf16\"", "rollout.matmul_dtype=\"bf16\"", "rollout.kv_cache_dtype=\"bf16\"",
                          NULL};
    device_step_matches_cpu("run-cuda-bf16", bf16, &started, &e);
    CHECK_MSG(started, "%s", e.msg);
    // a KL term: the reference scored by a forward-only device model (bf16 too), KL 0 at step 1 on both sides
    const char *kl[] = {"loss.beta=0.04", "matmul_dtype=\"bf16\"", NULL};
    device_step_matches_cpu("run-cuda-kl", kl, &started, &e);
    CHECK_MSG(started, "%s", e.msg);
}

int main(void) {
    RUN(test_every_optimizer_and_loss_trains);
    RUN(test_resume_is_bit_exact);
    RUN(test_kill9_then_resume_is_bit_exact);
    RUN(test_stop_request_checkpoints);
    RUN(test_bad_configs);
    RUN(test_device_cuda);
    RUN(test_memory_plan);
    RUN(test_gradient_checkpointing_same_weights);
    RUN(test_kv_cache_bf16_run);
    if (ready > 0) {
        Error e;
        if (!getenv("PIONRL_KEEP_TEST_DIR")) path_remove_recursive(root, &e);
    }
    return test_summary("test_train");
}
