// Rollouts: P prompts (dataset examples) x G sampled completions, decoded and scored. Used by the
// trainer for each RL step and by evaluation (G = 1 greedy for pass@1, G = k for mean@k).
#ifndef PIONRL_ROLLOUT_H
#define PIONRL_ROLLOUT_H

#include <stdint.h>

#include "policy/generate.h"
#include "policy/qwen.h"
#include "policy/tokenizer.h"
#include "reward/reward.h"
#include "rl/dataset.h"

typedef struct {
    SamplingParams sampling;
    int max_new_tokens;
    int chat_template;     // render with the tokenizer's chat template (else raw text)
    int enable_thinking;
    const char *const *stops;
    int num_stops;
    int accuracy_checker;  // index in the reward set whose score >= 1 counts as correct
    uint64_t seed;
    struct QwenCuda *cuda;  // decode on the GPU with this device model (NULL: the CPU)
    struct QwenCudaKV **cuda_keep;  // optional: keep the device cache between rollouts (GenerateParams.cuda_keep)
    int kv_bf16;            // bfloat16 KV cache (CPU or device decode)
    int matmul_bf16;        // decode matrix products on bfloat16 weights (CPU or device decode)
} RolloutParams;

typedef struct {
    int P, G, S;                       // prompts, samples per prompt, sequences (P * G)
    const DatasetExample **examples;   // [P] (not owned)
    int **prompt_ids;                  // [P]
    int *prompt_len;                   // [P]
    GenSeq *seqs;                      // [S]: sequence i continues prompt i / G
    char **completions;                // [S] decoded text (special tokens skipped)
    double *reward;                    // [S] weighted total
    RewardResult *results;             // [S * K] per checker
    int K;                             // checkers
    unsigned char *correct;            // [S]
    long gen_tokens;
    double gen_seconds, score_seconds;
} Rollout;

// Renders one example's prompt (system + user messages through the chat template, or raw) and
// encodes it. *ids is malloc'd.
int rollout_encode_prompt(const Tokenizer *tok, const DatasetExample *ex, int chat_template, int enable_thinking,
                          int **ids, int *n, Error *err);
int rollout_run(const QwenModel *m, const Tokenizer *tok, RewardSet *rewards, const RolloutParams *rp,
                const DatasetExample *const *examples, int P, int G, Rollout *out, Error *err);
void rollout_free(Rollout *r);

#endif
