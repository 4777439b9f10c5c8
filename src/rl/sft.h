// Supervised fine-tuning (`pionrl sft`): mean cross-entropy on the completion tokens of
// (prompt, worked solution) pairs, through the same full-sequence forward/backward the RL losses
// use (qwen_forward / qwen_backward with per-token weights -1/N on the targets). Starts from a
// checkpoint directory or from a random initialisation described by a config.json-style object,
// so a small base model can be built from nothing (the demo's models/demo). Keys and defaults are
// listed in docs/DEMO.md.
#ifndef PIONRL_SFT_H
#define PIONRL_SFT_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "core/error.h"
#include "core/safetensors.h"
#include "optim/optim.h"
#include "policy/qwen_train.h"
#include "policy/tokenizer.h"
#include "rl/dataset.h"

typedef struct {
    char model[1024];       // base checkpoint directory; "" when init is given
    cJSON *init;            // owned: Hugging Face config.json object for a random init, or NULL
    uint64_t init_seed;
    float init_std;         // normal(0, std) for matrices and embeddings (0.02)
    char tokenizer[1024];   // "" = the model directory
    char out_dir[1024];     // the final checkpoint (model + tokenizer files) and sft_log.jsonl
    uint64_t seed;          // batch order is the dataset's; the seed names the run
    long steps;
    int batch_size;         // sequences per step
    int max_len;            // prompt + completion tokens; longer examples are cut at the end
    int threads;            // 0 = all cores
    int chat_template;      // render prompts with the tokenizer's chat template (0: raw text)
    char completion_prefix[32];  // text put before the solution (e.g. " " for byte-level BPE)
    DatasetConfig dataset;
    OptimConfig optim;      // defaults: adamw, lr 1e-3, wd 0.0, max_grad_norm 1.0
    int log_every;
    int save_every;         // also write out_dir/checkpoints/step-N every N steps (0 = only the end)
    int eval_every;         // greedy accuracy on the dataset's eval split (0 = only at the end)
    int eval_examples;      // 0 = no eval
    int eval_max_new_tokens;
    char reward[64];        // checker deciding correctness in eval ("gsm8k")
    StDtype save_dtype;     // ST_F32 or ST_BF16 ("save_dtype": "float32" | "bfloat16")
} SftConfig;

void sft_config_default(SftConfig *c);
// Parses a whole config object (unknown keys are errors naming the key); where names the file.
int sft_config_parse(const cJSON *root, SftConfig *c, const char *where, Error *err);
// Loads path, applies "--set a.b=value" overrides in order (train_config_apply_set), parses.
int sft_config_load(const char *path, const char *const *sets, int num_sets, SftConfig *c, Error *err);
void sft_config_free(SftConfig *c);

// One (prompt, completion) pair as token ids: prompt rendered like the RL rollout renders it,
// then completion_prefix + solution, then the tokenizer's first end-of-sequence id (when it has
// one), cut to max_len. *ids is malloc'd; *prompt_len tokens of it are prompt.
int sft_encode_example(const Tokenizer *tok, const DatasetExample *ex, int chat_template, const char *prefix,
                       int max_len, int **ids, int *len, int *prompt_len, Error *err);

// Mean cross-entropy over the target positions and its gradient. tokens [B, T] (right-padded);
// target [B, T-1]: 1 where tokens[b, t+1] is a completion token to predict. Adds d(loss)/d(params)
// into grads (same layout as m->params; zero it first for a fresh gradient). *loss gets the mean
// cross-entropy, *num_targets the number of target tokens (a batch without targets: loss 0, no
// gradient).
int sft_loss_and_grad(const QwenModel *m, QwenActs *a, const int *tokens, const unsigned char *target, int B, int T,
                      float *grads, double *loss, long *num_targets, Error *err);

typedef struct {
    int quiet;          // no progress lines
} SftOptions;

// The whole run: load or initialise the model, train cfg->steps steps, evaluate, save to out_dir.
int sft_run(const SftConfig *cfg, const SftOptions *opt, Error *err);

#endif
