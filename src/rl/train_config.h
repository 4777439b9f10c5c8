// The run config of `pionrl train` / `pionrl compare`: one JSON file, every key checked (unknown
// keys are errors naming the key), with command-line overrides `--set a.b.c=value`. The sections
// reuse the parsers of the pieces they configure: dataset (rl/dataset.h), loss (rl/loss.h),
// optimizer (optim/optim.h), reward weights and options (reward/reward.h). Keys and defaults are
// listed in docs/TRAINING.md.
#ifndef PIONRL_TRAIN_CONFIG_H
#define PIONRL_TRAIN_CONFIG_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "core/error.h"
#include "optim/optim.h"
#include "policy/sampler.h"
#include "reward/reward.h"
#include "rl/advantage.h"
#include "rl/dataset.h"
#include "rl/loss.h"

#define TRAIN_MAX_STOPS 8

typedef struct {
    char model[1024];       // checkpoint directory (config.json + *.safetensors)
    char tokenizer[1024];   // "" = the model directory
    char run_dir[1024];     // metrics, checkpoints, config copy
    uint64_t seed;
    long steps;             // optimizer steps (rollout batches x num_iterations)
    int threads;            // OpenMP/OpenBLAS threads (0 = all cores)
    char device[8];         // "cpu" (default) or "cuda": rollouts and forward/backward on the GPU
    int gradient_checkpointing;  // keep only layer inputs; re-run each layer in the backward (CPU)
    int matmul_bf16;             // matmul_dtype "bf16": training/scoring matrix products in bf16 (CPU)
    DatasetConfig dataset;
    // rollout
    int prompts_per_step;   // P
    int group_size;         // G
    int max_new_tokens;
    SamplingParams sampling;
    int kv_bf16;            // rollout.kv_cache_dtype "bf16": the decode KV cache in bfloat16 (CPU)
    int rollout_matmul_bf16; // rollout.matmul_dtype "bf16": decode matrix products on bf16 weights (CPU)
    char stops[TRAIN_MAX_STOPS][64];
    int num_stops;
    int chat_template;      // 1: render prompts with the tokenizer's chat template; 0: raw text
    int enable_thinking;    // Qwen3 thinking mode in the chat template
    // loss
    LossConfig loss;
    AdvantageConfig advantage;
    int mask_truncated;
    int num_iterations;     // optimizer steps per rollout batch (old log-probs stored)
    int micro_batch_size;   // sequences per forward/backward
    // optimizer
    OptimConfig optim;
    // rewards
    cJSON *reward_weights;  // owned copy of the "reward" object
    RewardOptions reward_options;
    char accuracy_checker[64];  // checker whose score >= 1 counts as correct ("" = first)
    // eval
    int eval_every;         // 0 = only at the end (when eval_examples > 0)
    int eval_examples;      // cap on held-out examples per eval (0 = no eval)
    int eval_samples;       // k for sampled mean@k (0 = greedy pass@1 only)
    int eval_max_new_tokens;
    // checkpoints
    int save_every;         // 0 = only at the end
    int keep_last;
    // diagnostics
    int diagnostics_every;  // SNR / erank / head-norm spread every N steps (0 = off)
    int snr_chunks;         // K micro-batch gradient groups for the SNR estimate
    int max_bad_steps;      // stop after this many non-finite steps in a row
} TrainConfig;

void train_config_default(TrainConfig *c);
// Applies overrides "a.b=value" to the JSON tree (value parsed as JSON, else taken as a string).
int train_config_apply_set(cJSON *root, const char *assignment, Error *err);
// Parses a whole config object; `where` names the file in messages.
int train_config_parse(const cJSON *root, TrainConfig *c, const char *where, Error *err);
// Loads path, applies the overrides in order, parses. *json_out (optional) receives the final
// tree (caller deletes) so the run directory can keep the exact config it ran with.
int train_config_load(const char *path, const char *const *sets, int num_sets, TrainConfig *c, cJSON **json_out,
                      Error *err);
void train_config_free(TrainConfig *c);

#endif
