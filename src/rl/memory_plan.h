// Memory a training run needs, from its config, before it starts (issue 8's planner): weights,
// gradients, optimizer state, the reference copy, activations of the largest micro-batch, the
// rollout KV cache and the logits of a decode step, in fp32 or the bf16 the config asks for; with "device": "cuda"
// the device's activations (flash attention, no T x T probabilities) and bf16 copies.
// `pionrl train CONFIG --plan` prints it; a "device": "cuda" run refuses to start when it does not
// fit the GPU's memory.
#ifndef PIONRL_MEMORY_PLAN_H
#define PIONRL_MEMORY_PLAN_H

#include <stddef.h>
#include <stdio.h>

#include "policy/qwen.h"
#include "rl/train_config.h"

typedef struct {
    size_t weights, grads, optimizer, reference, activations, kv_cache, logits, total;
    size_t rollout_weights;  // bf16 copy of the weights for rollouts (rollout.matmul_dtype bf16), else 0
    size_t train_bf16;       // bf16 lm_head copies the training backward holds (matmul_dtype bf16), else 0
    // "device": "cuda" with either matmul_dtype bf16: one bf16 copy of every parameter (shared by training and
    // rollouts; rollout_weights and train_bf16 are then 0) and the GEMMs' two rounded-operand buffers
    size_t device_bf16;
    int seq_len;    // tokens per sequence assumed: prompt_tokens + max_new_tokens
    int sequences;  // decoded together: prompts_per_step x group_size
    int kv_bf16;    // the KV cache counted in bfloat16
} TrainMemoryPlan;

// optimizer_bytes: optimizer_state_bytes of the run's optimizer; prompt_tokens: the longest prompt
// the run expects (the caller measures or estimates it).
void train_memory_plan(const TrainConfig *c, const QwenConfig *mc, size_t optimizer_bytes, int prompt_tokens,
                       TrainMemoryPlan *out);
// One line per component and the total, in MB/GB.
void train_memory_plan_print(FILE *f, const TrainMemoryPlan *p, const char *device);

#endif
