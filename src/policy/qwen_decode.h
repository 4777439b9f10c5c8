// Incremental decoding with a KV cache for many sequences at once (rollouts, generation).
// The cache has `num_slots` sequence slots of up to `max_len` tokens each. One call processes any
// mix of tokens: prompt prefill (many tokens of one slot) and decode steps (one token per slot).
#ifndef PIONRL_QWEN_DECODE_H
#define PIONRL_QWEN_DECODE_H

#include <stdint.h>

#include "core/gemm_bf16.h"
#include "policy/qwen.h"

typedef struct {
    int num_slots, max_len, max_tokens;  // max_tokens: tokens one qwen_decode call may take
    int L, KD;                           // layers, kv width (Hkv * hd)
    int k_row;                           // max_len rounded up to 16: a K row's length (see k below)
    int *len;                            // [num_slots] tokens stored per slot
    float *k;                            // [L, num_slots, Hkv, hd, k_row] (transposed for decode)
    float *v;                            // [L, num_slots, max_len, KD]
    int bf16;                            // cache stored as bfloat16 in k16/v16 (same layouts; k, v NULL)
    uint16_t *k16, *v16;
    // bfloat16 copies of the projection weights (7 per layer: q k v o gate up down, then lm_head)
    // when qwen_kv_pack_bf16 made them: the decode's matrix products then run on them (NULL: fp32)
    Bf16Packed *wbf16;
    // per-call scratch, max_tokens rows
    float *x, *ln, *q, *kk, *vv, *att, *gate, *up, *in;
    int *pos;
} QwenKVCache;

int qwen_kv_alloc(QwenKVCache *kv, const QwenConfig *cfg, int num_slots, int max_len, int max_tokens, Error *err);
// bf16 = 1 stores K and V as bfloat16 (round to nearest even): half the cache memory and traffic;
// logits then differ from the fp32 forward by ~1e-3 relative (a vLLM-style kv_cache_dtype).
int qwen_kv_alloc_ex(QwenKVCache *kv, const QwenConfig *cfg, int num_slots, int max_len, int max_tokens, int bf16,
                     Error *err);
void qwen_kv_free(QwenKVCache *kv);
// Packs m's projection and lm_head weights into bfloat16 for this cache's decode calls
// (matmul_dtype bf16: bf16 inputs, fp32 accumulation; norms, rotary, attention and the residual
// stay fp32). The copy is of m's weights now: pack again after they change. Extra memory:
// qwen_bf16_weight_bytes.
int qwen_kv_pack_bf16(QwenKVCache *kv, const QwenModel *m, Error *err);
size_t qwen_bf16_weight_bytes(const QwenConfig *cfg);
size_t qwen_kv_bytes(const QwenConfig *cfg, int num_slots, int max_len, int max_tokens);
size_t qwen_kv_bytes_ex(const QwenConfig *cfg, int num_slots, int max_len, int max_tokens, int bf16);
void qwen_kv_reset(QwenKVCache *kv, int slot);
// Copies slot src's cached tokens into slot dst (prompt sharing across a group of samples).
void qwen_kv_copy(QwenKVCache *kv, int dst, int src);

// Appends token[i] to slot[i] (tokens of one slot in order; positions continue from the slot's
// length) and runs the model over them. For each i with want[i] (want NULL = all), writes the
// next-token logits [vocab_size] to consecutive rows of logits. n <= max_tokens.
int qwen_decode(const QwenModel *m, QwenKVCache *kv, const int *slot, const int *token, int n,
                const unsigned char *want, float *logits, Error *err);

#endif
