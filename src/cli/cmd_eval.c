// pionrl eval: greedy pass@1 (and sampled mean@k) of a checkpoint on a data set.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "core/cuda_ops.h"
#include "policy/qwen_checkpoint.h"
#include "policy/qwen_cuda.h"
#include "rl/eval.h"
#include "rl/train_config.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: pionrl eval --model DIR (--dataset gsm8k|math|FILE.jsonl | --config RUN.json) [options]\n"
            "\n"
            "Greedy pass@1 and sampled mean@k of a checkpoint on a data set's held-out split.\n"
            "\n"
            "  --model DIR            checkpoint (a run's checkpoints/step-N works too)\n"
            "  --tokenizer DIR        tokenizer directory (default: the model directory)\n"
            "  --dataset NAME|FILE    preset gsm8k or math (../shared/data paths; see README), or a JSONL file\n"
            "  --config RUN.json      take dataset, rollout and reward settings from a run config\n"
            "  --split eval|train     which split (default eval; a plain file without one uses its rows)\n"
            "  --examples N           at most N examples (default all)\n"
            "  --samples K            also sample K completions per problem: mean@k (default 0)\n"
            "  --temperature T        sampling temperature for mean@k (default 1.0)\n"
            "  --max-new-tokens N     (default 1024, or the config's)\n"
            "  --reward SPEC          checker deciding correctness: gsm8k, math, plugin:F.so, http://..., cmd:...\n"
            "                         (default: gsm8k for the gsm8k preset, math otherwise)\n"
            "  --question-field F --answer-field F --answer-extract none|gsm8k|boxed   for a JSONL file\n"
            "  --no-chat              raw prompts, no chat template (base models)\n"
            "  --device cpu|cuda      where the model decodes (default: the config's device, else cpu)\n"
            "  --out FILE.jsonl       one record per example: prompt, answer, completion, pred, correct\n"
            "  --json                 print the summary as JSON\n");
}

int cmd_eval(int argc, char **argv) {
    const char *model = NULL, *tok_dir = NULL, *dataset = NULL, *config = NULL, *split = "eval", *reward = NULL,
               *out_path = NULL, *qfield = NULL, *afield = NULL, *extract = NULL, *device = NULL;
    int examples = 0, samples = 0, max_new = 0, no_chat = 0, as_json = 0;
    float temperature = 1.0f;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--no-chat")) no_chat = 1;
        else if (!strcmp(a, "--json")) as_json = 1;
        else if (!v) {
            fprintf(stderr, "eval: %s needs a value (see pionrl eval --help)\n", a);
            return 2;
        } else {
            i++;
            char *end = NULL;
            if (!strcmp(a, "--model")) model = v;
            else if (!strcmp(a, "--tokenizer")) tok_dir = v;
            else if (!strcmp(a, "--dataset")) dataset = v;
            else if (!strcmp(a, "--config")) config = v;
            else if (!strcmp(a, "--split")) split = v;
            else if (!strcmp(a, "--reward")) reward = v;
            else if (!strcmp(a, "--device")) device = v;
            else if (!strcmp(a, "--out")) out_path = v;
            else if (!strcmp(a, "--question-field")) qfield = v;
            else if (!strcmp(a, "--answer-field")) afield = v;
            else if (!strcmp(a, "--answer-extract")) extract = v;
            else if (!strcmp(a, "--examples")) examples = (int)strtol(v, &end, 10);
            else if (!strcmp(a, "--samples")) samples = (int)strtol(v, &end, 10);
            else if (!strcmp(a, "--max-new-tokens")) max_new = (int)strtol(v, &end, 10);
            else if (!strcmp(a, "--temperature")) temperature = strtof(v, &end);
            else {
                fprintf(stderr, "eval: unknown option '%s' (see pionrl eval --help)\n", a);
                return 2;
            }
            if (end && *end) {
                fprintf(stderr, "eval: %s: '%s' is not a number\n", a, v);
                return 2;
            }
        }
    }
    if ((!model && !config) || (!dataset && !config) || (strcmp(split, "eval") && strcmp(split, "train")) ||
        examples < 0 || samples < 0 || max_new < 0 || (device && strcmp(device, "cpu") && strcmp(device, "cuda"))) {
        usage(stderr);
        return 2;
    }
    Error e;
    TrainConfig cfg;
    train_config_default(&cfg);
    cfg.max_new_tokens = 1024;
    cfg.chat_template = !no_chat;
    if (config && train_config_load(config, NULL, 0, &cfg, NULL, &e)) {
        fprintf(stderr, "eval: %s\n", e.msg);
        train_config_free(&cfg);
        return 1;
    }
    if (model) snprintf(cfg.model, sizeof cfg.model, "%s", model);
    if (tok_dir) snprintf(cfg.tokenizer, sizeof cfg.tokenizer, "%s", tok_dir);
    if (no_chat) cfg.chat_template = 0;
    if (max_new) cfg.max_new_tokens = max_new;
    int rc = 1;
    if (dataset) {
        dataset_config_default(&cfg.dataset);
        if (!strcmp(dataset, "gsm8k") || !strcmp(dataset, "math")) {
            if (dataset_config_preset(&cfg.dataset, dataset, &e)) goto fail;
        } else {
            snprintf(cfg.dataset.path, sizeof cfg.dataset.path, "%s", dataset);
        }
        cfg.dataset.shuffle = 0;
        if (qfield) snprintf(cfg.dataset.question_field, sizeof cfg.dataset.question_field, "%s", qfield);
        if (afield) snprintf(cfg.dataset.answer_field, sizeof cfg.dataset.answer_field, "%s", afield);
        if (extract) {
            if (!strcmp(extract, "none")) cfg.dataset.answer_extract = ANSWER_AS_IS;
            else if (!strcmp(extract, "gsm8k")) cfg.dataset.answer_extract = ANSWER_GSM8K;
            else if (!strcmp(extract, "boxed")) cfg.dataset.answer_extract = ANSWER_BOXED;
            else {
                fprintf(stderr, "eval: --answer-extract must be none, gsm8k or boxed\n");
                train_config_free(&cfg);
                return 2;
            }
        }
    }
    if (reward || !cfg.reward_weights) {
        const char *spec = reward ? reward : (dataset && !strcmp(dataset, "gsm8k")) ? "gsm8k" : "math";
        cJSON_Delete(cfg.reward_weights);
        cfg.reward_weights = cJSON_CreateObject();
        cJSON_AddNumberToObject(cfg.reward_weights, spec, 1.0);
        cfg.accuracy_checker[0] = 0;
    }
    QwenModel m = {0};
    QwenCuda *gpu = NULL;
    Tokenizer *tok = NULL;
    RewardSet *rewards = NULL;
    Dataset ds = {0};
    FILE *out = NULL;
    const DatasetExample **ex = NULL;
    if (device) snprintf(cfg.device, sizeof cfg.device, "%s", device);
    if (!strcmp(cfg.device, "cuda") && cuda_device_probe(NULL, 0, NULL, &e)) {
        error_prefix(&e, "--device cuda");
        goto done;
    }
    if (qwen_model_load(cfg.model, &m, &e) || tokenizer_load(cfg.tokenizer[0] ? cfg.tokenizer : cfg.model, &tok, &e))
        goto done;
    if (!strcmp(cfg.device, "cuda") && qwen_cuda_create_for_decode(&m, &gpu, &e)) goto done;
    if (!(rewards = reward_set_from_json(cfg.reward_weights, &cfg.reward_options, "reward", &e))) goto done;
    if (dataset_load(&cfg.dataset, &ds, &e)) goto done;
    int use_train = !strcmp(split, "train") || ds.num_eval == 0;
    int n = use_train ? ds.num_train : ds.num_eval;
    if (examples > 0 && examples < n) n = examples;
    if (n == 0) {
        error_set(&e, "%s: no examples to evaluate", cfg.dataset.path);
        goto done;
    }
    ex = malloc(sizeof(*ex) * n);
    for (int i = 0; i < n; i++) ex[i] = use_train ? &ds.train[i] : &ds.eval[i];
    if (out_path && !(out = fopen(out_path, "w"))) {
        error_set(&e, "%s: cannot create", out_path);
        goto done;
    }
    int acc = 0;
    if (cfg.accuracy_checker[0])
        for (int k = 0; k < reward_set_size(rewards); k++)
            if (!strcmp(reward_set_name(rewards, k), cfg.accuracy_checker)) acc = k;
    const char *stops[TRAIN_MAX_STOPS];
    for (int i = 0; i < cfg.num_stops; i++) stops[i] = cfg.stops[i];
    RolloutParams rp = {cfg.sampling, cfg.max_new_tokens, cfg.chat_template, cfg.enable_thinking, stops,
                        cfg.num_stops, acc, cfg.seed, gpu, NULL, cfg.kv_bf16, cfg.rollout_matmul_bf16};
    SamplingParams sp = cfg.sampling;
    sp.temperature = temperature;
    EvalResult r;
    if (eval_run(&m, tok, rewards, &rp, &sp, samples, ex, n, out, &r, &e)) goto done;
    if (as_json) {
        printf("{\"examples\": %d, \"pass_at_1\": %.6f, \"mean_at_k\": ", r.n, r.pass_at_1);
        if (samples > 0) printf("%.6f, \"k\": %d", r.mean_at_k, samples);
        else printf("null");
        printf(", \"response_length_mean\": %.2f, \"seconds\": %.2f}\n", r.response_length, r.seconds);
    } else {
        printf("eval: %d examples (%s split of %s): pass@1 %.2f%%", r.n, use_train ? "train" : "eval",
               cfg.dataset.path[0] ? cfg.dataset.path : "the synthetic task", 100 * r.pass_at_1);
        if (samples > 0) printf(", mean@%d %.2f%%", samples, 100 * r.mean_at_k);
        printf(", response length %.1f tokens, %.1f s\n", r.response_length, r.seconds);
    }
    rc = 0;
done:
    if (rc) fprintf(stderr, "eval: %s\n", e.msg);
    if (out) fclose(out);
    free(ex);
    dataset_free(&ds);
    if (rewards) reward_set_free(rewards);
    if (tok) tokenizer_free(tok);
    qwen_cuda_free(gpu);
    qwen_model_free(&m);
    train_config_free(&cfg);
    return rc;
fail:
    fprintf(stderr, "eval: %s\n", e.msg);
    train_config_free(&cfg);
    return 1;
}
