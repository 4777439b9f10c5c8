#include "rl/memory_plan.h"

#include <string.h>

#include "core/gemm_bf16.h"
#include "policy/qwen_cuda.h"
#include "policy/qwen_decode.h"
#include "policy/qwen_train.h"

void train_memory_plan(const TrainConfig *c, const QwenConfig *mc, size_t optimizer_bytes, int prompt_tokens,
                       TrainMemoryPlan *out) {
    size_t params = qwen_num_params(mc), f = sizeof(float);
    int T = prompt_tokens + c->max_new_tokens, S = c->prompts_per_step * c->group_size;
    int on_device = !strcmp(c->device, "cuda");
    out->seq_len = T;
    out->sequences = S;
    out->weights = params * f;
    out->grads = params * f;
    out->optimizer = optimizer_bytes;
    // the reference: its weights; on the device also its own forward-only buffers (on the CPU it shares the policy's)
    out->reference = c->loss.beta > 0 ? params * f : 0;
    // the device's activations have no T x T attention probabilities (flash attention) nor the CPU's per-thread work
    out->activations = on_device ? qwen_cuda_acts_bytes(mc, c->micro_batch_size, T, c->gradient_checkpointing)
                                 : qwen_acts_bytes_ex(mc, c->micro_batch_size, T, c->gradient_checkpointing);
    if (on_device && out->reference)
        out->reference += qwen_cuda_forward_only_bytes(mc, c->micro_batch_size, T, c->matmul_bf16);
    // rollouts: every sequence's cache at full length, plus one call's scratch (prefill chunks of
    // up to 512 tokens or one token per sequence, whichever is larger)
    int max_tok = S > 512 ? S : 512;
    out->kv_bf16 = c->kv_bf16;
    // (the device cache has one more slot, where the padding rows of a sampled step write)
    out->kv_cache = qwen_kv_bytes_ex(mc, on_device ? S + 1 : S, T, max_tok, out->kv_bf16);
    out->logits = (size_t)max_tok * mc->vocab_size * f;
    out->rollout_weights = c->rollout_matmul_bf16 ? qwen_bf16_weight_bytes(mc) : 0;
    // the backward packs lm_head both ways (dlnf and, when logits are recomputed, the logits)
    out->train_bf16 = c->matmul_bf16 ? 2 * bf16_packed_bytes(mc->vocab_size, mc->hidden_size) : 0;
    out->device_bf16 = 0;
    if (on_device && (c->matmul_bf16 || c->rollout_matmul_bf16)) {
        // the largest rounded operand: a micro-batch's MLP activations, or a chunk of logit gradients
        size_t mlp = (size_t)c->micro_batch_size * T * mc->intermediate_size;
        size_t logit = qwen_cuda_logit_rows(mc, (size_t)c->micro_batch_size * T) * mc->vocab_size;
        out->device_bf16 = 2 * params + 2 * 2 * (mlp > logit ? mlp : logit);
        if (c->matmul_bf16)
            out->device_bf16 += qwen_cuda_bf16_acts_bytes(mc, c->micro_batch_size, T, c->gradient_checkpointing);
        // a decode step's bf16 shadows of its normed input, attention and SwiGLU outputs
        size_t QD = (size_t)mc->num_heads * mc->head_dim;
        if (c->rollout_matmul_bf16)
            out->device_bf16 += 2 * (size_t)max_tok * (mc->hidden_size + QD + mc->intermediate_size);
        out->rollout_weights = out->train_bf16 = 0;
    }
    out->total = out->weights + out->grads + out->optimizer + out->reference + out->activations + out->kv_cache +
                 out->logits + out->rollout_weights + out->train_bf16 + out->device_bf16;
}

static void line(FILE *f, const char *what, size_t bytes, const char *note) {
    if (bytes >= ((size_t)1 << 30)) fprintf(f, "  %-12s %9.2f GB  %s\n", what, bytes / 1073741824.0, note);
    else fprintf(f, "  %-12s %9.1f MB  %s\n", what, bytes / 1048576.0, note);
}

void train_memory_plan_print(FILE *f, const TrainMemoryPlan *p, const char *device) {
    char note[160];
    fprintf(f, "memory plan (%s; fp32 unless marked):\n", device);
    line(f, "weights", p->weights, "policy");
    line(f, "gradients", p->grads, "");
    line(f, "optimizer", p->optimizer, "state of the configured optimizer");
    if (p->reference) line(f, "reference", p->reference, "KL reference policy (loss.beta > 0)");
    snprintf(note, sizeof note, "largest micro-batch, sequences of %d tokens", p->seq_len);
    line(f, "activations", p->activations, note);
    snprintf(note, sizeof note, "%d sequences x %d tokens%s", p->sequences, p->seq_len, p->kv_bf16 ? ", bf16" : "");
    line(f, "kv cache", p->kv_cache, note);
    line(f, "logits", p->logits, "one decode call");
    if (p->rollout_weights) line(f, "bf16 weights", p->rollout_weights, "rollout copy (rollout.matmul_dtype bf16)");
    if (p->train_bf16) line(f, "bf16 lm_head", p->train_bf16, "training copies (matmul_dtype bf16)");
    if (p->device_bf16) line(f, "bf16 copies", p->device_bf16, "device weights + GEMM operands (matmul_dtype bf16)");
    line(f, "total", p->total, "");
}
