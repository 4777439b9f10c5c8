// Supervised fine-tuning (rl/sft.h): the mean cross-entropy equals its closed form from the full
// logits, its gradient equals central finite differences, a few AdamW steps lower the loss, examples
// encode as prompt + solution + eos, bad configs name the key, and the shipped demo base model
// (models/demo) loads with its tokenizer and generates.
#include "test.h"

#include "qwen_tiny.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>

#include "core/blas.h"
#include "core/fileio.h"
#include "core/json.h"
#include "core/rng.h"
#include "policy/generate.h"
#include "policy/qwen_checkpoint.h"
#include "policy/qwen_train.h"
#include "rl/sft.h"
#include "rl/train_config.h"

enum { B = 2, T = 9, V = 40 };

static void make_batch(int *tokens, unsigned char *target) {
    Rng r;
    rng_seed(&r, 77);
    for (int i = 0; i < B * T; i++) tokens[i] = (int)rng_below(&r, V);
    memset(target, 0, B * (T - 1));
    for (int t = 3; t < T - 1; t++) target[t] = 1;          // sequence 0: completion from token 4
    for (int t = 5; t < T - 3; t++) target[(T - 1) + t] = 1;  // sequence 1: a shorter completion
}

// Mean over targets of -log softmax(logits)[next token], in double, from the full logits.
static double closed_form_loss(const QwenModel *m, QwenActs *a, const int *tokens, const unsigned char *target) {
    float *logits = malloc(sizeof(float) * B * T * V);
    Error e;
    if (qwen_forward_logits(m, a, tokens, B, T, logits, &e)) {
        free(logits);
        return NAN;
    }
    double sum = 0;
    int n = 0;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T - 1; t++) {
            if (!target[b * (T - 1) + t]) continue;
            const float *l = logits + ((size_t)b * T + t) * V;
            double mx = l[0], z = 0;
            for (int v = 1; v < V; v++) mx = l[v] > mx ? l[v] : mx;
            for (int v = 0; v < V; v++) z += exp(l[v] - mx);
            sum += -(l[tokens[b * T + t + 1]] - mx - log(z));
            n++;
        }
    free(logits);
    return sum / n;
}

static void test_loss_and_gradient(void) {
    QwenConfig c = qwen_tiny_config(ARCH_QWEN3, V, 16, 24);
    QwenModel m;
    QwenActs a;
    Error e;
    CHECK(qwen_model_init(&m, &c, &e) == 0 && qwen_acts_alloc(&a, &c, B, T, &e) == 0);
    qwen_model_init_random(&m, 3, 0.5f);
    int tokens[B * T];
    unsigned char target[B * (T - 1)];
    make_batch(tokens, target);
    float *g = calloc(m.num_params, sizeof(float));
    double loss;
    long n;
    CHECK(sft_loss_and_grad(&m, &a, tokens, target, B, T, g, &loss, &n, &e) == 0);
    CHECK(n == 5 + 1);
    double ref = closed_form_loss(&m, &a, tokens, target);
    CHECK_NEAR(loss, ref, 1e-4 * fabs(ref) + 1e-5);
    // central differences on a spread of parameters (embeddings, attention, MLP, norms)
    Rng r;
    rng_seed(&r, 5);
    double worst = 0;
    for (int k = 0; k < 24; k++) {
        size_t i = (size_t)rng_below(&r, m.num_params);
        float keep = m.params[i];
        const float h = 1e-2f;
        double lp, lm;
        float *scratch = calloc(m.num_params, sizeof(float));
        m.params[i] = keep + h;
        sft_loss_and_grad(&m, &a, tokens, target, B, T, scratch, &lp, &n, &e);
        m.params[i] = keep - h;
        sft_loss_and_grad(&m, &a, tokens, target, B, T, scratch, &lm, &n, &e);
        m.params[i] = keep;
        free(scratch);
        double fd = (lp - lm) / (2 * h);
        double diff = fabs(fd - g[i]) / (fabs(fd) + fabs(g[i]) + 1e-3);
        if (diff > worst) worst = diff;
        CHECK_MSG(fabs(fd - g[i]) < 2e-3 + 2e-2 * fabs(fd), "param %zu: grad %g, finite difference %g", i, g[i], fd);
    }
    printf("  worst relative gradient difference %.2e\n", worst);
    // no targets: zero loss, no gradient
    unsigned char none[B * (T - 1)] = {0};
    memset(g, 0, sizeof(float) * m.num_params);
    CHECK(sft_loss_and_grad(&m, &a, tokens, none, B, T, g, &loss, &n, &e) == 0 && n == 0 && loss == 0);
    double s = 0;
    for (size_t i = 0; i < m.num_params; i++) s += fabs(g[i]);
    CHECK(s == 0);
    free(g);
    qwen_acts_free(&a);
    qwen_model_free(&m);
}

static void test_adamw_steps_lower_the_loss(void) {
    QwenConfig c = qwen_tiny_config(ARCH_QWEN3, V, 16, 24);
    QwenModel m;
    QwenActs a;
    Error e;
    CHECK(qwen_model_init(&m, &c, &e) == 0 && qwen_acts_alloc(&a, &c, B, T, &e) == 0);
    qwen_model_init_random(&m, 4, 0.1f);
    int tokens[B * T];
    unsigned char target[B * (T - 1)];
    make_batch(tokens, target);
    int ntab = qwen_num_tensors(&c);
    ParamInfo *tab = calloc(ntab, sizeof *tab);
    qwen_param_table(&c, tab);
    OptimConfig oc;
    optimizer_config_default(&oc);
    oc.kind = OPT_ADAMW;
    oc.lr = 1e-2f;
    oc.weight_decay = 0;
    Optimizer *opt;
    CHECK(optimizer_create(&oc, tab, ntab, m.num_params, &opt, &e) == 0);
    float *g = calloc(m.num_params, sizeof(float));
    double first = 0, loss = 0;
    long n;
    for (int step = 0; step < 20; step++) {
        memset(g, 0, sizeof(float) * m.num_params);
        CHECK(sft_loss_and_grad(&m, &a, tokens, target, B, T, g, &loss, &n, &e) == 0);
        if (step == 0) first = loss;
        CHECK(optimizer_step(opt, m.params, g, 1.0f, &e) == 0);
    }
    printf("  loss %.4f -> %.4f after 20 steps\n", first, loss);
    CHECK_MSG(loss < 0.5 * first, "loss %g did not fall from %g", loss, first);
    optimizer_free(opt);
    free(tab);
    free(g);
    qwen_acts_free(&a);
    qwen_model_free(&m);
}

static void test_encode_example(void) {
    Tokenizer *tok;
    Error e;
    if (tokenizer_load("tests/fixtures/tokenizer/spm", &tok, &e)) {
        test_skip("tests/fixtures/tokenizer/spm: %s", e.msg);
        return;
    }
    DatasetExample ex = {NULL, "Question: Tom has 2 apples. Answer:", "3", "2 + 1 = 3. #### 3", 1};
    int *ids, len, plen, *p, np, *s, ns;
    CHECK(sft_encode_example(tok, &ex, 0, "", 256, &ids, &len, &plen, &e) == 0);
    CHECK(tokenizer_encode(tok, ex.user, strlen(ex.user), &p, &np, &e) == 0);
    CHECK(tokenizer_encode(tok, ex.solution, strlen(ex.solution), &s, &ns, &e) == 0);
    const int *eos;
    int neos = tokenizer_eos_ids(tok, &eos);
    CHECK(neos > 0 && plen == np && len == np + ns + 1);
    CHECK(memcmp(ids, p, sizeof(int) * np) == 0 && memcmp(ids + np, s, sizeof(int) * ns) == 0);
    CHECK(ids[len - 1] == eos[0]);
    free(ids);
    // cut to max_len
    CHECK(sft_encode_example(tok, &ex, 0, "", np + 2, &ids, &len, &plen, &e) == 0 && len == np + 2 && plen == np);
    free(ids);
    // no solution text: an error naming the example
    DatasetExample bad = {NULL, "Question: x Answer:", "3", NULL, 7};
    CHECK(sft_encode_example(tok, &bad, 0, "", 256, &ids, &len, &plen, &e) == -1 && strstr(e.msg, "7"));
    free(p);
    free(s);
    tokenizer_free(tok);
}

static void test_bad_configs(void) {
    const char *base = "{\"init\": {\"model_type\": \"qwen3\", \"vocab_size\": 64, \"hidden_size\": 16, "
                       "\"intermediate_size\": 24, \"num_hidden_layers\": 1, \"num_attention_heads\": 2, "
                       "\"num_key_value_heads\": 1, \"head_dim\": 8}, \"tokenizer\": \"t\", \"out_dir\": \"o\", "
                       "\"dataset\": {\"synthetic\": {}}}";
    struct {
        const char *set, *expect;
    } cases[] = {
        {NULL, NULL},
        {"bogus=1", "bogus"},
        {"steps=-1", "steps"},
        {"batch_size=0", "batch_size"},
        {"max_len=1", "max_len"},
        {"save_dtype=f8", "save_dtype"},
        {"eval.bogus=1", "bogus"},
        {"optimizer.name=sgd", "sgd"},
        {"dataset.synthetic.max_ops=99", "max_ops"},
        {"init.hidden_size=-4", "hidden_size"},
        {"model=somewhere", "not both"},
        {"tokenizer=\"\"", "tokenizer"},
        {"init=null", "'init'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Error e;
        cJSON *j = json_parse_text(base, "test", &e);
        CHECK(j);
        if (cases[i].set) CHECK(train_config_apply_set(j, cases[i].set, &e) == 0);
        SftConfig c;
        sft_config_default(&c);
        int rc = sft_config_parse(j, &c, "sft.json", &e);
        sft_config_free(&c);
        cJSON_Delete(j);
        if (!cases[i].expect)
            CHECK_MSG(rc == 0, "valid config rejected: %s", e.msg);
        else
            CHECK_MSG(rc == -1 && strstr(e.msg, cases[i].expect), "--set %s: rc %d, message '%s'", cases[i].set, rc,
                      rc ? e.msg : "");
    }
}

// The shipped base model: loads, its tokenizer covers the task text, and greedy decoding of a
// synthetic prompt produces a "#### <number>" line.
static void test_shipped_demo_model(void) {
    if (!file_exists("models/demo/config.json")) {
        test_skip("models/demo not present");
        return;
    }
    QwenModel m;
    Tokenizer *tok;
    Error e;
    CHECK_MSG(qwen_model_load("models/demo", &m, &e) == 0, "%s", e.msg);
    CHECK_MSG(tokenizer_load("models/demo", &tok, &e) == 0, "%s", e.msg);
    CHECK(m.cfg.arch == ARCH_QWEN3 && tokenizer_vocab_size(tok) <= m.cfg.vocab_size);
    Dataset ds;
    DatasetConfig dc;
    dataset_config_default(&dc);
    dc.synthetic = 1;
    snprintf(dc.prompt_template, sizeof dc.prompt_template, "%s", DATASET_SYNTH_TEMPLATE);
    dc.eval_count = 4;
    CHECK(dataset_load(&dc, &ds, &e) == 0);
    int *ids, n;
    CHECK(tokenizer_encode(tok, ds.eval[0].user, strlen(ds.eval[0].user), &ids, &n, &e) == 0);
    for (int i = 0; i < n; i++) CHECK(ids[i] != 0);  // no <unk> in task text
    char *text = NULL;
    GenerateParams gp;
    memset(&gp, 0, sizeof gp);
    gp.sampling.temperature = 0;
    gp.sampling.top_p = 1;
    gp.max_new_tokens = 48;
    gp.num_eos = tokenizer_eos_ids(tok, &gp.eos_ids);
    gp.n_valid = tokenizer_vocab_size(tok);
    GenSeq seq;
    const int *prompts[1] = {ids};
    CHECK_MSG(qwen_generate(&m, prompts, &n, 1, 1, &gp, &seq, &e) == 0, "%s", e.msg);
    CHECK(tokenizer_decode(tok, seq.tokens, seq.n, 1, &text, &e) == 0);
    printf("  %s -> %s\n", ds.eval[0].user, text);
    CHECK_MSG(text && strstr(text, "####") != NULL, "no #### in '%s'", text ? text : "");
    free(text);
    gen_seqs_free(&seq, 1);
    free(ids);
    dataset_free(&ds);
    tokenizer_free(tok);
    qwen_model_free(&m);
}


// The whole `pionrl sft` path on a tiny random model with the demo tokenizer: config -> init ->
// a few steps -> eval -> a checkpoint directory that loads, with the tokenizer next to it.
static void test_sft_run_end_to_end(void) {
    if (!file_exists("models/demo/tokenizer.model")) {
        test_skip("models/demo/tokenizer.model not present");
        return;
    }
    char dir[] = "/tmp/pionrl-sft-XXXXXX";
    if (!mkdtemp(dir)) {
        test_skip("mkdtemp failed");
        return;
    }
    char text[2048];
    snprintf(text, sizeof text,
             "{\"init\": {\"model_type\": \"qwen3\", \"vocab_size\": 192, \"hidden_size\": 32, "
             "\"intermediate_size\": 48, \"num_hidden_layers\": 1, \"num_attention_heads\": 2, "
             "\"num_key_value_heads\": 1, \"head_dim\": 16, \"max_position_embeddings\": 128, "
             "\"tie_word_embeddings\": true}, \"tokenizer\": \"models/demo\", \"out_dir\": \"%s/out\", "
             "\"steps\": 12, \"batch_size\": 4, \"max_len\": 96, \"threads\": 1, \"log_every\": 1, "
             "\"dataset\": {\"synthetic\": {\"max_ops\": 1}, \"eval_count\": 4}, "
             "\"optimizer\": {\"name\": \"adamw\", \"lr\": 0.01}, \"eval\": {\"examples\": 4, "
             "\"max_new_tokens\": 8}, \"save_dtype\": \"bfloat16\"}",
             dir);
    Error e;
    cJSON *j = json_parse_text(text, "test", &e);
    CHECK(j);
    SftConfig c;
    sft_config_default(&c);
    int rc = sft_config_parse(j, &c, "test", &e);
    CHECK_MSG(rc == 0, "%s", e.msg);
    SftOptions o = {1};
    if (rc == 0) CHECK_MSG((rc = sft_run(&c, &o, &e)) == 0, "%s", e.msg);
    sft_config_free(&c);
    cJSON_Delete(j);
    if (rc) return;
    char path[600];
    snprintf(path, sizeof path, "%s/out", dir);
    QwenModel m;
    CHECK_MSG(qwen_model_load(path, &m, &e) == 0, "%s", e.msg);
    qwen_model_free(&m);
    snprintf(path, sizeof path, "%s/out/tokenizer.model", dir);
    CHECK(file_exists(path));
    // the log has one line per step, the first loss above the last, and the final eval
    snprintf(path, sizeof path, "%s/out/sft_log.jsonl", dir);
    char *log = file_read_all(path, NULL, &e);
    CHECK(log);
    double first = -1, last = -1;
    int lines = 0;
    for (const char *p = log; p && *p;) {
        cJSON *l = cJSON_ParseWithOpts(p, &p, 0);
        if (!l) break;
        double loss = cJSON_GetObjectItem(l, "loss")->valuedouble;
        if (lines == 0) first = loss;
        last = loss;
        lines++;
        if (lines == 12) CHECK(cJSON_GetObjectItem(l, "eval_accuracy") != NULL);
        cJSON_Delete(l);
        while (*p == '\n') p++;
    }
    free(log);
    CHECK_MSG(lines == 12 && last < first, "%d log lines, loss %g -> %g", lines, first, last);
    path_remove_recursive(dir, &e);
}

// The shipped SFT config (it rebuilds models/demo) parses with every key known.
static void test_shipped_sft_config_parses(void) {
    if (!file_exists("configs/demo-sft.json")) {
        test_skip("configs/demo-sft.json not present");
        return;
    }
    SftConfig c;
    Error e;
    sft_config_default(&c);
    int rc = sft_config_load("configs/demo-sft.json", NULL, 0, &c, &e);
    CHECK_MSG(rc == 0, "%s", e.msg);
    CHECK(c.init != NULL && c.dataset.synthetic && c.steps > 0);
    sft_config_free(&c);
}

int main(void) {
    // Tiny models: one thread, so OpenMP barriers cannot stall behind other jobs on a busy machine.
    omp_set_num_threads(1);
    blas_set_threads(1);
    RUN(test_loss_and_gradient);
    RUN(test_adamw_steps_lower_the_loss);
    RUN(test_encode_example);
    RUN(test_bad_configs);
    RUN(test_sft_run_end_to_end);
    RUN(test_shipped_sft_config_parses);
    RUN(test_shipped_demo_model);
    return test_summary("test_sft");
}
