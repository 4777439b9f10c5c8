// Supervised fine-tuning: config, batch encoding, the cross-entropy gradient, and the loop.
#include "rl/sft.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/blas.h"
#include "core/fileio.h"
#include "core/json.h"
#include "core/timer.h"
#include "policy/qwen_checkpoint.h"
#include "rl/eval.h"
#include "rl/rollout.h"
#include "rl/train_config.h"

void sft_config_default(SftConfig *c) {
    memset(c, 0, sizeof *c);
    c->init_std = 0.02f;
    c->steps = 100;
    c->batch_size = 16;
    c->max_len = 256;
    c->log_every = 10;
    c->eval_examples = 0;
    c->eval_max_new_tokens = 64;
    snprintf(c->reward, sizeof c->reward, "gsm8k");
    c->save_dtype = ST_F32;
    dataset_config_default(&c->dataset);
    optimizer_config_default(&c->optim);
    c->optim.kind = OPT_ADAMW;
    c->optim.lr = 1e-3f;
    c->optim.weight_decay = 0.0f;
    c->optim.max_grad_norm = 1.0f;
}

void sft_config_free(SftConfig *c) {
    cJSON_Delete(c->init);
    c->init = NULL;
}

static int get_u64(const cJSON *root, const char *key, uint64_t *out, const char *where, Error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v) return 0;
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 9007199254740992.0 ||
        v->valuedouble != floor(v->valuedouble))
        return error_set(err, "%s: key '%s' must be an integer in [0, 2^53]", where, key);
    *out = (uint64_t)v->valuedouble;
    return 0;
}

int sft_config_parse(const cJSON *root, SftConfig *c, const char *where, Error *err) {
    static const char *const KEYS[] = {"model", "init", "init_seed", "init_std", "tokenizer", "out_dir", "seed",
                                       "steps", "batch_size", "max_len", "threads", "chat_template",
                                       "completion_prefix", "dataset", "optimizer", "log_every", "save_every", "eval",
                                       "save_dtype", "description", NULL};
    static const char *const EVAL_KEYS[] = {"every", "examples", "max_new_tokens", "reward", NULL};
    if (!cJSON_IsObject(root)) return error_set(err, "%s: expected a JSON object", where);
    if (json_check_keys(root, KEYS, where, err)) return -1;
    int steps = (int)c->steps;
    char dtype[16] = "";
    if (json_get_string(root, "model", 0, c->model, sizeof c->model, where, err) ||
        json_get_string(root, "tokenizer", 0, c->tokenizer, sizeof c->tokenizer, where, err) ||
        json_get_string(root, "out_dir", 1, c->out_dir, sizeof c->out_dir, where, err) ||
        get_u64(root, "seed", &c->seed, where, err) || get_u64(root, "init_seed", &c->init_seed, where, err) ||
        json_get_float(root, "init_std", 0, &c->init_std, where, err) ||
        json_get_int(root, "steps", 0, &steps, where, err) ||
        json_get_int(root, "batch_size", 0, &c->batch_size, where, err) ||
        json_get_int(root, "max_len", 0, &c->max_len, where, err) ||
        json_get_int(root, "threads", 0, &c->threads, where, err) ||
        json_get_bool(root, "chat_template", 0, &c->chat_template, where, err) ||
        json_get_string(root, "completion_prefix", 0, c->completion_prefix, sizeof c->completion_prefix, where,
                        err) ||
        json_get_int(root, "log_every", 0, &c->log_every, where, err) ||
        json_get_int(root, "save_every", 0, &c->save_every, where, err) ||
        json_get_string(root, "save_dtype", 0, dtype, sizeof dtype, where, err))
        return -1;
    c->steps = steps;
    if (steps < 0) return error_set(err, "%s: key 'steps' must be >= 0", where);
    if (c->batch_size < 1) return error_set(err, "%s: key 'batch_size' must be >= 1", where);
    if (c->max_len < 2) return error_set(err, "%s: key 'max_len' must be >= 2", where);
    if (c->init_std <= 0 || !isfinite(c->init_std)) return error_set(err, "%s: key 'init_std' must be > 0", where);
    if (c->save_every < 0) return error_set(err, "%s: key 'save_every' must be >= 0", where);
    if (c->log_every < 1) return error_set(err, "%s: key 'log_every' must be >= 1", where);
    if (dtype[0]) {
        if (!strcmp(dtype, "float32")) c->save_dtype = ST_F32;
        else if (!strcmp(dtype, "bfloat16")) c->save_dtype = ST_BF16;
        else return error_set(err, "%s: key 'save_dtype' must be \"float32\" or \"bfloat16\" (got \"%s\")", where, dtype);
    }
    const cJSON *init = cJSON_GetObjectItemCaseSensitive(root, "init");
    if (init && !cJSON_IsNull(init)) {
        if (!cJSON_IsObject(init)) return error_set(err, "%s: key 'init' must be a config.json object", where);
        if (c->model[0]) return error_set(err, "%s: give either 'model' or 'init', not both", where);
        QwenConfig qc;
        char w[1100];
        snprintf(w, sizeof w, "%s: init", where);
        if (qwen_config_parse(init, w, &qc, err) || qwen_config_validate(&qc, w, err)) return -1;
        cJSON_Delete(c->init);
        c->init = cJSON_Duplicate(init, 1);
        if (!c->init) return error_set(err, "out of memory");
    }
    if (!c->model[0] && !c->init) return error_set(err, "%s: missing 'model' (a checkpoint) or 'init' (a config)", where);
    if (!c->model[0] && !c->tokenizer[0])
        return error_set(err, "%s: a model from 'init' needs 'tokenizer' (a directory)", where);
    char w[1100];
    const cJSON *ds = cJSON_GetObjectItemCaseSensitive(root, "dataset");
    if (!ds) return error_set(err, "%s: missing required key 'dataset'", where);
    snprintf(w, sizeof w, "%s: dataset", where);
    if (!cJSON_IsObject(ds)) return error_set(err, "%s: expected an object", w);
    if (dataset_config_from_json(ds, &c->dataset, w, err)) return -1;
    const cJSON *opt = cJSON_GetObjectItemCaseSensitive(root, "optimizer");
    snprintf(w, sizeof w, "%s: optimizer", where);
    if (opt && optimizer_config_parse(opt, &c->optim, w, err)) return -1;
    const cJSON *ev = cJSON_GetObjectItemCaseSensitive(root, "eval");
    if (ev) {
        snprintf(w, sizeof w, "%s: eval", where);
        if (!cJSON_IsObject(ev)) return error_set(err, "%s: expected an object", w);
        if (json_check_keys(ev, EVAL_KEYS, w, err) || json_get_int(ev, "every", 0, &c->eval_every, w, err) ||
            json_get_int(ev, "examples", 0, &c->eval_examples, w, err) ||
            json_get_int(ev, "max_new_tokens", 0, &c->eval_max_new_tokens, w, err) ||
            json_get_string(ev, "reward", 0, c->reward, sizeof c->reward, w, err))
            return -1;
        if (c->eval_every < 0 || c->eval_examples < 0 || c->eval_max_new_tokens < 1)
            return error_set(err, "%s: every/examples must be >= 0 and max_new_tokens >= 1", w);
    }
    return 0;
}

int sft_config_load(const char *path, const char *const *sets, int num_sets, SftConfig *c, Error *err) {
    cJSON *root = json_parse_file(path, err);
    if (!root) return -1;
    int rc = 0;
    for (int i = 0; i < num_sets && rc == 0; i++) rc = train_config_apply_set(root, sets[i], err);
    if (rc == 0) rc = sft_config_parse(root, c, path, err);
    cJSON_Delete(root);
    return rc;
}

int sft_encode_example(const Tokenizer *tok, const DatasetExample *ex, int chat_template, const char *prefix,
                       int max_len, int **ids, int *len, int *prompt_len, Error *err) {
    int *p = NULL, *s = NULL, np = 0, ns = 0;
    *ids = NULL;
    if (!ex->solution) return error_set(err, "example %d has no solution text to train on", ex->line);
    if (rollout_encode_prompt(tok, ex, chat_template, 0, &p, &np, err)) return -1;
    size_t tl = strlen(prefix) + strlen(ex->solution) + 1;
    char *text = malloc(tl);
    if (!text) {
        free(p);
        return error_set(err, "out of memory");
    }
    snprintf(text, tl, "%s%s", prefix, ex->solution);
    int rc = tokenizer_encode(tok, text, strlen(text), &s, &ns, err);
    free(text);
    if (rc) {
        free(p);
        return -1;
    }
    const int *eos;
    int neos = tokenizer_eos_ids(tok, &eos);
    int n = np + ns + (neos > 0);
    int *all = malloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
    if (!all) {
        free(p);
        free(s);
        return error_set(err, "out of memory");
    }
    memcpy(all, p, sizeof(int) * (size_t)np);
    memcpy(all + np, s, sizeof(int) * (size_t)ns);
    if (neos > 0) all[np + ns] = eos[0];
    free(p);
    free(s);
    *ids = all;
    *len = n < max_len ? n : max_len;
    *prompt_len = np < *len ? np : *len;
    return 0;
}

int sft_loss_and_grad(const QwenModel *m, QwenActs *a, const int *tokens, const unsigned char *target, int B, int T,
                      float *grads, double *loss, long *num_targets, Error *err) {
    size_t n = (size_t)B * (size_t)(T - 1);
    float *logp = calloc(n, sizeof(float)), *w = calloc(n, sizeof(float));
    if (!logp || !w) {
        free(logp);
        free(w);
        return error_set(err, "out of memory");
    }
    long count = 0;
    for (size_t i = 0; i < n; i++) count += target[i] != 0;
    *loss = 0;
    *num_targets = count;
    int rc = 0;
    if (count > 0) {
        rc = qwen_forward(m, a, tokens, target, B, T, 1.0f, logp, NULL, err);
        if (rc == 0) {
            double sum = 0;
            for (size_t i = 0; i < n; i++)
                if (target[i]) {
                    sum -= logp[i];
                    w[i] = -1.0f / (float)count;  // d(mean CE)/d logp
                }
            *loss = sum / (double)count;
            qwen_backward(m, a, w, grads);
        }
    }
    free(logp);
    free(w);
    return rc;
}

// Copies the SentencePiece model (qwen_checkpoint_copy_aux_files covers the tokenizer.json family).
static int copy_tokenizer_files(const char *src_dir, const char *dst_dir, Error *err) {
    if (qwen_checkpoint_copy_aux_files(src_dir, dst_dir, err) < 0) return -1;
    char src[2048], dst[2048];
    if (path_join(src, sizeof src, src_dir, "tokenizer.model") || path_join(dst, sizeof dst, dst_dir, "tokenizer.model"))
        return error_set(err, "%s: path too long", src_dir);
    if (!file_exists(src)) return 0;
    size_t len;
    char *data = file_read_all(src, &len, err);
    if (!data) return -1;
    int rc = file_write_atomic(dst, data, len, err);
    free(data);
    return rc;
}

typedef struct {
    const SftConfig *cfg;
    QwenModel model;
    Tokenizer *tok;
    Dataset data;
    RewardSet *rewards;
    Optimizer *opt;
    ParamInfo *table;
    float *grads;
    QwenActs acts;
    int acts_ready;
    int *tokens;
    unsigned char *target;
    FILE *log;
} Sft;

static void sft_free(Sft *s) {
    if (s->acts_ready) qwen_acts_free(&s->acts);
    if (s->opt) optimizer_free(s->opt);
    if (s->rewards) reward_set_free(s->rewards);
    if (s->tok) tokenizer_free(s->tok);
    if (s->log) fclose(s->log);
    dataset_free(&s->data);
    qwen_model_free(&s->model);
    free(s->table);
    free(s->grads);
    free(s->tokens);
    free(s->target);
}

static int sft_init(Sft *s, const SftConfig *c, Error *err) {
    memset(s, 0, sizeof *s);
    s->cfg = c;
    if (c->threads > 0) {
        omp_set_num_threads(c->threads);
        blas_set_threads(c->threads);
    }
    if (c->init) {
        QwenConfig qc;
        if (qwen_config_parse(c->init, "sft init", &qc, err) || qwen_model_init(&s->model, &qc, err)) return -1;
        qwen_model_init_random(&s->model, c->init_seed, c->init_std);
    } else if (qwen_model_load(c->model, &s->model, err)) {
        return -1;
    }
    const char *tok_dir = c->tokenizer[0] ? c->tokenizer : c->model;
    if (tokenizer_load(tok_dir, &s->tok, err)) return -1;
    if (tokenizer_vocab_size(s->tok) > s->model.cfg.vocab_size)
        return error_set(err, "tokenizer in %s has %d ids but the model's vocab_size is %d", tok_dir,
                         tokenizer_vocab_size(s->tok), s->model.cfg.vocab_size);
    if (dataset_load(&c->dataset, &s->data, err)) return -1;
    if (s->data.num_train == 0) return error_set(err, "sft: the dataset has no training examples");
    RewardOptions ro;
    reward_options_default(&ro);
    if (!(s->rewards = reward_set_create(&ro, err)) || reward_set_add(s->rewards, c->reward, 1.0, err)) return -1;
    int ntab = qwen_num_tensors(&s->model.cfg);
    s->table = calloc((size_t)ntab, sizeof(ParamInfo));
    s->grads = calloc(s->model.num_params, sizeof(float));
    s->tokens = calloc((size_t)c->batch_size * (size_t)c->max_len, sizeof(int));
    s->target = calloc((size_t)c->batch_size * (size_t)c->max_len, 1);
    if (!s->table || !s->grads || !s->tokens || !s->target) return error_set(err, "out of memory");
    qwen_param_table(&s->model.cfg, s->table);
    if (optimizer_create(&c->optim, s->table, ntab, s->model.num_params, &s->opt, err)) return -1;
    if (qwen_acts_alloc(&s->acts, &s->model.cfg, c->batch_size, c->max_len, err)) return -1;
    s->acts_ready = 1;
    if (dir_create(c->out_dir, err)) return -1;
    char path[1200];
    snprintf(path, sizeof path, "%s/sft_log.jsonl", c->out_dir);
    if (!(s->log = fopen(path, "w"))) return error_set(err, "%s: cannot open for writing", path);
    return 0;
}

// Fills tokens/target for the next batch_size examples; returns the padded length T.
static int next_batch(Sft *s, int *T_out, Error *err) {
    const SftConfig *c = s->cfg;
    int B = c->batch_size, T = 2;
    int *lens = calloc((size_t)B, sizeof(int)), *plens = calloc((size_t)B, sizeof(int));
    int **ids = calloc((size_t)B, sizeof(int *));
    int rc = 0;
    if (!lens || !plens || !ids) rc = error_set(err, "out of memory");
    for (int b = 0; b < B && rc == 0; b++) {
        const DatasetExample *ex = dataset_next(&s->data);
        if (!ex) rc = error_set(err, "sft: the dataset returned no example");
        else rc = sft_encode_example(s->tok, ex, c->chat_template, c->completion_prefix, c->max_len, &ids[b], &lens[b],
                                     &plens[b], err);
        if (rc == 0 && lens[b] > T) T = lens[b];
    }
    if (rc == 0) {
        int pad = tokenizer_pad_id(s->tok);
        if (pad < 0 || pad >= s->model.cfg.vocab_size) pad = 0;
        memset(s->target, 0, (size_t)c->batch_size * (size_t)c->max_len);
        for (int b = 0; b < B; b++) {
            for (int t = 0; t < T; t++) s->tokens[b * T + t] = t < lens[b] ? ids[b][t] : pad;
            // position t predicts token t+1: targets are the completion tokens
            for (int t = plens[b] > 0 ? plens[b] - 1 : 0; t + 1 < lens[b]; t++) s->target[b * (T - 1) + t] = 1;
        }
    }
    for (int b = 0; ids && b < B; b++) free(ids[b]);
    free(ids);
    free(lens);
    free(plens);
    *T_out = T;
    return rc;
}

static int sft_eval(Sft *s, double *acc, Error *err) {
    const SftConfig *c = s->cfg;
    int n = s->data.num_eval < c->eval_examples ? s->data.num_eval : c->eval_examples;
    *acc = NAN;
    if (n <= 0) return 0;
    const DatasetExample **ex = malloc(sizeof(*ex) * (size_t)n);
    if (!ex) return error_set(err, "out of memory");
    for (int i = 0; i < n; i++) ex[i] = &s->data.eval[i];
    SamplingParams sp = {0.0f, 0, 1.0f, 0.0f};  // greedy
    RolloutParams rp = {sp, c->eval_max_new_tokens, c->chat_template, 0, NULL, 0, 0, c->seed, NULL, NULL, 0, 0};
    EvalResult r;
    int rc = eval_run(&s->model, s->tok, s->rewards, &rp, &sp, 0, ex, n, NULL, &r, err);
    free(ex);
    if (rc == 0) *acc = r.pass_at_1;
    return rc;
}

static void log_line(Sft *s, long step, double loss, double gnorm, double acc, double secs, int quiet) {
    fprintf(s->log, "{\"step\": %ld, \"loss\": %.6f, \"grad_norm\": %.6f", step, loss, gnorm);
    if (!isnan(acc)) fprintf(s->log, ", \"eval_accuracy\": %.4f", acc);
    fprintf(s->log, ", \"seconds\": %.2f}\n", secs);
    fflush(s->log);
    if (quiet) return;
    printf("sft step %5ld/%ld  loss %.4f  grad_norm %.3f", step, s->cfg->steps, loss, gnorm);
    if (!isnan(acc)) printf("  eval_accuracy %.3f", acc);
    printf("  %.1f s\n", secs);
    fflush(stdout);
}

int sft_run(const SftConfig *c, const SftOptions *o, Error *err) {
    Sft s;
    int quiet = o && o->quiet;
    if (sft_init(&s, c, err)) {
        sft_free(&s);
        return -1;
    }
    if (!quiet)
        printf("sft: %zu parameters, vocab %d, %ld steps of %d sequences -> %s\n", s.model.num_params,
               s.model.cfg.vocab_size, c->steps, c->batch_size, c->out_dir);
    double t0 = time_now();
    int rc = 0;
    double acc;
    for (long step = 0; step < c->steps && rc == 0; step++) {
        int T;
        double loss = 0;
        long ntgt;
        if ((rc = next_batch(&s, &T, err))) break;
        memset(s.grads, 0, sizeof(float) * s.model.num_params);
        if ((rc = sft_loss_and_grad(&s.model, &s.acts, s.tokens, s.target, c->batch_size, T, s.grads, &loss, &ntgt,
                                    err)))
            break;
        double gnorm = grad_clip_global_norm(s.grads, s.model.num_params, c->optim.max_grad_norm);
        if (!isfinite(loss) || !isfinite(gnorm)) {
            rc = error_set(err, "sft step %ld: non-finite loss or gradient (lower optimizer.lr)", step + 1);
            break;
        }
        if ((rc = optimizer_step(s.opt, s.model.params, s.grads, lr_schedule_scale(&c->optim.schedule, step), err)))
            break;
        long done = step + 1;
        acc = NAN;
        int last = done == c->steps;
        if ((c->eval_every > 0 && done % c->eval_every == 0) || (last && c->eval_examples > 0))
            if ((rc = sft_eval(&s, &acc, err))) break;
        if (done % c->log_every == 0 || last || !isnan(acc)) log_line(&s, done, loss, gnorm, acc, time_now() - t0, quiet);
        if (c->save_every > 0 && done % c->save_every == 0 && !last) {
            char dir[1200];
            snprintf(dir, sizeof dir, "%s/checkpoints/step-%08ld", c->out_dir, done);
            if ((rc = qwen_model_save(dir, &s.model, c->save_dtype, err)) ||
                (rc = copy_tokenizer_files(c->tokenizer[0] ? c->tokenizer : c->model, dir, err)))
                break;
        }
    }
    if (rc == 0 && c->steps == 0 && c->eval_examples > 0 && (rc = sft_eval(&s, &acc, err)) == 0)
        log_line(&s, 0, 0, 0, acc, time_now() - t0, quiet);
    if (rc == 0) rc = qwen_model_save(c->out_dir, &s.model, c->save_dtype, err);
    if (rc == 0) rc = copy_tokenizer_files(c->tokenizer[0] ? c->tokenizer : c->model, c->out_dir, err);
    if (rc == 0 && !quiet) printf("sft: saved %s (%.1f s)\n", c->out_dir, time_now() - t0);
    sft_free(&s);
    return rc;
}
