#include "rl/train_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"

void train_config_default(TrainConfig *c) {
    memset(c, 0, sizeof *c);
    snprintf(c->run_dir, sizeof c->run_dir, "runs/default");
    snprintf(c->device, sizeof c->device, "cpu");
    c->steps = 100;
    dataset_config_default(&c->dataset);
    c->prompts_per_step = 8;
    c->group_size = 8;
    c->max_new_tokens = 512;
    c->sampling = (SamplingParams){1.0f, 0, 1.0f, 0.0f};
    c->chat_template = 1;
    loss_config_default(&c->loss, LOSS_DAPO);
    advantage_config_default(&c->advantage);
    c->num_iterations = 1;
    c->micro_batch_size = 4;
    optimizer_config_default(&c->optim);
    reward_options_default(&c->reward_options);
    c->eval_every = 0;
    c->eval_examples = 0;
    c->eval_samples = 0;
    c->eval_max_new_tokens = 0;
    c->save_every = 0;
    c->keep_last = 2;
    c->diagnostics_every = 0;
    c->snr_chunks = 4;
    c->max_bad_steps = 3;
}

void train_config_free(TrainConfig *c) {
    cJSON_Delete(c->reward_weights);
    c->reward_weights = NULL;
}

int train_config_apply_set(cJSON *root, const char *assignment, Error *err) {
    const char *eq = strchr(assignment, '=');
    if (!eq || eq == assignment) return error_set(err, "--set '%s': expected key=value", assignment);
    char path[512];
    size_t n = (size_t)(eq - assignment);
    if (n >= sizeof path) return error_set(err, "--set: key too long");
    memcpy(path, assignment, n);
    path[n] = 0;
    const char *value = eq + 1;
    cJSON *v = cJSON_Parse(value);
    if (!v) v = cJSON_CreateString(value);  // bare words are strings: --set optimizer.name=muon
    cJSON *obj = root;
    char *save = NULL;
    char *key = strtok_r(path, ".", &save);
    while (key) {
        char *next = strtok_r(NULL, ".", &save);
        if (!next) {
            if (cJSON_GetObjectItemCaseSensitive(obj, key)) cJSON_ReplaceItemInObjectCaseSensitive(obj, key, v);
            else cJSON_AddItemToObject(obj, key, v);
            return 0;
        }
        cJSON *child = cJSON_GetObjectItemCaseSensitive(obj, key);
        if (!child) child = cJSON_AddObjectToObject(obj, key);
        if (!cJSON_IsObject(child)) {
            cJSON_Delete(v);
            return error_set(err, "--set '%s': '%s' is not an object", assignment, key);
        }
        obj = child;
        key = next;
    }
    cJSON_Delete(v);
    return error_set(err, "--set '%s': empty key", assignment);
}

// Optional precision key ("fp32", the default, or "bf16"): *bf16 = 1 for "bf16".
static int get_dtype(const cJSON *o, const char *key, int *bf16, const char *where, Error *err) {
    char v[16] = "fp32";
    if (json_get_string(o, key, 0, v, sizeof v, where, err)) return -1;
    if (strcmp(v, "fp32") && strcmp(v, "bf16"))
        return error_set(err, "%s: %s must be \"fp32\" or \"bf16\" (got \"%s\")", where, key, v);
    *bf16 = !strcmp(v, "bf16");
    return 0;
}

static int parse_rollout(const cJSON *o, TrainConfig *c, const char *where, Error *err) {
    static const char *const keys[] = {"prompts_per_step", "group_size", "max_new_tokens", "temperature", "top_p",
                                       "top_k", "min_p", "stop", "chat_template", "enable_thinking",
                                       "kv_cache_dtype", "matmul_dtype", NULL};
    if (json_check_keys(o, keys, where, err)) return -1;
    if (json_get_int(o, "prompts_per_step", 0, &c->prompts_per_step, where, err) ||
        json_get_int(o, "group_size", 0, &c->group_size, where, err) ||
        json_get_int(o, "max_new_tokens", 0, &c->max_new_tokens, where, err) ||
        json_get_float(o, "temperature", 0, &c->sampling.temperature, where, err) ||
        json_get_float(o, "top_p", 0, &c->sampling.top_p, where, err) ||
        json_get_int(o, "top_k", 0, &c->sampling.top_k, where, err) ||
        json_get_float(o, "min_p", 0, &c->sampling.min_p, where, err) ||
        json_get_bool(o, "chat_template", 0, &c->chat_template, where, err) ||
        json_get_bool(o, "enable_thinking", 0, &c->enable_thinking, where, err))
        return -1;
    if (get_dtype(o, "kv_cache_dtype", &c->kv_bf16, where, err) ||
        get_dtype(o, "matmul_dtype", &c->rollout_matmul_bf16, where, err))
        return -1;
    const cJSON *stop = cJSON_GetObjectItemCaseSensitive(o, "stop");
    if (stop) {
        if (!cJSON_IsArray(stop)) return error_set(err, "%s: 'stop' must be an array of strings", where);
        c->num_stops = 0;
        const cJSON *s;
        cJSON_ArrayForEach(s, stop) {
            if (!cJSON_IsString(s) || !s->valuestring[0] || strlen(s->valuestring) >= sizeof c->stops[0])
                return error_set(err, "%s: 'stop' entries must be non-empty strings under %zu bytes", where,
                                 sizeof c->stops[0]);
            if (c->num_stops == TRAIN_MAX_STOPS) return error_set(err, "%s: at most %d stop strings", where, TRAIN_MAX_STOPS);
            snprintf(c->stops[c->num_stops++], sizeof c->stops[0], "%s", s->valuestring);
        }
    }
    if (c->prompts_per_step <= 0 || c->group_size <= 0 || c->max_new_tokens <= 0)
        return error_set(err, "%s: prompts_per_step, group_size and max_new_tokens must be positive", where);
    return sampling_params_validate(&c->sampling, where, err);
}

static int parse_section(const cJSON *root, const char *name, const char *const *keys, const char *file,
                         char *where, size_t wn, const cJSON **out, Error *err) {
    snprintf(where, wn, "%s: %s", file, name);
    *out = cJSON_GetObjectItemCaseSensitive(root, name);
    if (!*out) return 0;
    if (!cJSON_IsObject(*out)) return error_set(err, "%s: must be an object", where);
    return keys ? json_check_keys(*out, keys, where, err) : 0;
}

int train_config_parse(const cJSON *root, TrainConfig *c, const char *file, Error *err) {
    static const char *const top[] = {"model", "tokenizer", "run_dir", "seed", "steps", "threads", "device",
                                      "gradient_checkpointing", "matmul_dtype", "dataset",
                                      "rollout", "loss", "num_iterations", "micro_batch_size", "optimizer",
                                      "reward", "reward_options", "accuracy_checker", "eval", "checkpoint",
                                      "diagnostics", "max_bad_steps", "description", "compare", NULL};
    if (json_check_keys(root, top, file, err)) return -1;
    char where[1200];
    double seed = 0;
    int steps = (int)c->steps;
    if (json_get_string(root, "model", 1, c->model, sizeof c->model, file, err) ||
        json_get_string(root, "tokenizer", 0, c->tokenizer, sizeof c->tokenizer, file, err) ||
        json_get_string(root, "run_dir", 0, c->run_dir, sizeof c->run_dir, file, err) ||
        json_get_double(root, "seed", 0, &seed, file, err) || json_get_int(root, "steps", 0, &steps, file, err) ||
        json_get_int(root, "threads", 0, &c->threads, file, err) ||
        json_get_string(root, "device", 0, c->device, sizeof c->device, file, err) ||
        json_get_bool(root, "gradient_checkpointing", 0, &c->gradient_checkpointing, file, err) ||
        json_get_int(root, "num_iterations", 0, &c->num_iterations, file, err) ||
        json_get_int(root, "micro_batch_size", 0, &c->micro_batch_size, file, err) ||
        json_get_string(root, "accuracy_checker", 0, c->accuracy_checker, sizeof c->accuracy_checker, file, err) ||
        json_get_int(root, "max_bad_steps", 0, &c->max_bad_steps, file, err))
        return -1;
    if (seed < 0) return error_set(err, "%s: seed must be >= 0", file);
    if (get_dtype(root, "matmul_dtype", &c->matmul_bf16, file, err)) return -1;
    if (strcmp(c->device, "cpu") && strcmp(c->device, "cuda"))
        return error_set(err, "%s: device must be \"cpu\" or \"cuda\" (got \"%s\")", file, c->device);
    c->seed = (uint64_t)seed;
    c->steps = steps;
    if (c->steps <= 0) return error_set(err, "%s: steps must be positive", file);
    if (c->num_iterations <= 0 || c->micro_batch_size <= 0 || c->max_bad_steps <= 0)
        return error_set(err, "%s: num_iterations, micro_batch_size and max_bad_steps must be positive", file);
    const cJSON *o;
    if (parse_section(root, "dataset", NULL, file, where, sizeof where, &o, err)) return -1;
    if (o && dataset_config_from_json(o, &c->dataset, where, err)) return -1;
    if (parse_section(root, "rollout", NULL, file, where, sizeof where, &o, err)) return -1;
    if (o && parse_rollout(o, c, where, err)) return -1;
    if (parse_section(root, "loss", NULL, file, where, sizeof where, &o, err)) return -1;
    if (o && loss_config_from_json(o, 1, &c->loss, &c->advantage, &c->mask_truncated, where, err)) return -1;
    c->loss.max_completion_length = c->max_new_tokens;
    if (loss_config_check(&c->loss, err)) return error_prefix(err, "%s: loss", file);
    if (parse_section(root, "optimizer", NULL, file, where, sizeof where, &o, err)) return -1;
    if (o && optimizer_config_parse(o, &c->optim, where, err)) return -1;
    if (parse_section(root, "reward", NULL, file, where, sizeof where, &o, err)) return -1;
    if (!o) return error_set(err, "%s: missing required key 'reward' (e.g. {\"math\": 1.0})", file);
    c->reward_weights = cJSON_Duplicate(o, 1);
    if (parse_section(root, "reward_options", NULL, file, where, sizeof where, &o, err)) return -1;
    if (o && reward_options_from_json(o, &c->reward_options, where, err)) return -1;
    static const char *const eval_keys[] = {"every", "examples", "samples", "max_new_tokens", NULL};
    if (parse_section(root, "eval", eval_keys, file, where, sizeof where, &o, err)) return -1;
    if (o && (json_get_int(o, "every", 0, &c->eval_every, where, err) ||
              json_get_int(o, "examples", 0, &c->eval_examples, where, err) ||
              json_get_int(o, "samples", 0, &c->eval_samples, where, err) ||
              json_get_int(o, "max_new_tokens", 0, &c->eval_max_new_tokens, where, err)))
        return -1;
    static const char *const ckpt_keys[] = {"every", "keep_last", NULL};
    if (parse_section(root, "checkpoint", ckpt_keys, file, where, sizeof where, &o, err)) return -1;
    if (o && (json_get_int(o, "every", 0, &c->save_every, where, err) ||
              json_get_int(o, "keep_last", 0, &c->keep_last, where, err)))
        return -1;
    static const char *const diag_keys[] = {"every", "snr_chunks", NULL};
    if (parse_section(root, "diagnostics", diag_keys, file, where, sizeof where, &o, err)) return -1;
    if (o && (json_get_int(o, "every", 0, &c->diagnostics_every, where, err) ||
              json_get_int(o, "snr_chunks", 0, &c->snr_chunks, where, err)))
        return -1;
    if (c->eval_every < 0 || c->eval_examples < 0 || c->eval_samples < 0 || c->save_every < 0 || c->keep_last < 1 ||
        c->diagnostics_every < 0 || c->snr_chunks < 2)
        return error_set(err, "%s: eval/checkpoint/diagnostics values out of range (keep_last >= 1, snr_chunks >= 2)",
                         file);
    if (c->eval_max_new_tokens <= 0) c->eval_max_new_tokens = c->max_new_tokens;
    if (c->optim.schedule.total_steps <= 0) c->optim.schedule.total_steps = c->steps;
    return 0;
}

int train_config_load(const char *path, const char *const *sets, int num_sets, TrainConfig *c, cJSON **json_out,
                      Error *err) {
    train_config_default(c);
    cJSON *root = json_parse_file(path, err);
    if (!root) return -1;
    for (int i = 0; i < num_sets; i++)
        if (train_config_apply_set(root, sets[i], err)) {
            cJSON_Delete(root);
            return -1;
        }
    int rc = train_config_parse(root, c, path, err);
    if (rc == 0 && json_out) *json_out = root;
    else cJSON_Delete(root);
    return rc;
}
