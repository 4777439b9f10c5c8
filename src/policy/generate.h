// Batched generation: P prompts x G samples each, decoded together with a KV cache. Each prompt is
// prefilled once and its cache copied to its G sample slots. Every sequence draws from its own RNG
// stream (seed, sequence index), so results do not depend on which sequences share a batch.
#ifndef PIONRL_GENERATE_H
#define PIONRL_GENERATE_H

#include <stdint.h>

#include "policy/qwen.h"
#include "policy/sampler.h"

typedef enum { FINISH_LENGTH = 0, FINISH_EOS = 1, FINISH_STOP = 2 } FinishReason;

typedef struct {
    SamplingParams sampling;
    int max_new_tokens;
    const int *eos_ids;  // stop (and keep the token) when one of these is sampled
    int num_eos;
    int n_valid;         // sample only ids < n_valid (the tokenizer's range); 0 = vocab_size
    uint64_t seed;
    // Optional stop check after each new token (e.g. stop strings on the decoded text):
    // returns nonzero to finish sequence `seq` with FINISH_STOP.
    int (*stop_fn)(void *ctx, int seq, const int *tokens, int n);
    void *stop_ctx;
    // Optional callback after each decode step (progress, streaming output).
    void (*on_token)(void *ctx, int seq, int token);
    void *on_token_ctx;
    int max_batch_tokens;  // cap on tokens per model call during prefill (0 = 512)
    // Decode on the GPU with this device copy of the model (qwen_cuda.h; CUDA builds): each decode
    // step's tokens sampled on the device from the uniform numbers the CPU sampler would draw (the
    // prompts' first tokens on the host). NULL: the CPU KV cache.
    struct QwenCuda *cuda;
    // Optional, with cuda: a device cache kept between calls, so a training run's rollouts reuse one cache and the
    // decode steps' CUDA graphs captured in it. *cuda_keep is used when it fits the call (same model, enough
    // slots, length and batch, same KV dtype), else replaced by a new one; the caller frees it
    // (qwen_cuda_kv_free) before the device model.
    struct QwenCudaKV **cuda_keep;
    int kv_bf16;  // KV cache in bfloat16 (CPU or device): half the memory, logits at bf16 precision
    // Matrix products of the decode in bfloat16 (CPU or device): weights and inputs rounded to bf16,
    // fp32 accumulation (matmul_dtype "bf16"; logits at bf16 precision). The CPU packs the weights once
    // per call; the device reads the device model's bf16 weight copy (qwen_cuda_kv_set_matmul_bf16).
    int matmul_bf16;
} GenerateParams;

typedef struct {
    int prompt;      // index of the prompt it continues
    int *tokens;     // generated ids (malloc'd), n of them, EOS included when FINISH_EOS
    float *logps;    // sampling log-prob of each generated token (see sampler_sample)
    int n;
    FinishReason finish;
} GenSeq;

// out must hold P * G entries; sequence i continues prompt i / G. Free with gen_seqs_free.
int qwen_generate(const QwenModel *m, const int *const *prompts, const int *prompt_lens, int P, int G,
                  const GenerateParams *gp, GenSeq *out, Error *err);
void gen_seqs_free(GenSeq *seqs, int n);

#endif
