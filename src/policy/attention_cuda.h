// Causal grouped-query attention on the device without the T x T probabilities (issue 8's flash-style training
// attention): the forward keeps a running max and sum per query row over tiles of keys held in shared memory and saves
// only the log-sum-exp of each row; the backward recomputes the probabilities from it, tile by tile. Same semantics as
// attention_forward/attention_backward in src/policy/ops.h (and the same bf16 flag), without the [B, Hq, T, T] probs
// array those save: memory O(B T Hq) instead of O(B Hq T^2). Implementation: src/policy/cuda/attention_cuda.cu;
// tests: tests/test_cuda_attention.c (against the CPU ops).
//
// All pointers are device memory; calls are queued on the per-thread default stream (errors inside a kernel surface at
// the next synchronising call). Return 0, or -1 with err set (bad shapes, hd > 256, grid limits: B and Hq at most
// 65,535). Results are deterministic: every output element is written by one thread, no atomics.
#ifndef PIONRL_ATTENTION_CUDA_H
#define PIONRL_ATTENTION_CUDA_H

#include "core/error.h"

#ifdef __cplusplus
extern "C" {
#endif

// 1 when the bf16 attention of this head size runs on tensor cores (bf16 mma with fp32 sums, 64 x 64 tiles:
// src/policy/cuda/attention_tc_cuda.cu): hd a multiple of 16 up to 128, which covers Qwen2 and Qwen3. Other head
// sizes, and fp32 (the exact counterpart of the CPU's fp32 attention), run on CUDA cores in fp32 (attention_cuda.cu).
// Both compute the same bf16 semantics described below; the tensor cores sum each product in another order.
int cuda_flash_attention_tensor_cores(int hd, int bf16);

// q [B*T, Hq, hd], k/v [B*T, Hkv, hd] (the rows of sequence b at b*T .. b*T+T-1), out [B*T, Hq, hd], lse [B, Hq, T]:
// the log-sum-exp of each query row's scaled scores (scale 1/sqrt(hd)), saved for the backward. Causal; Hq a multiple
// of Hkv (query head h reads kv head h / (Hq / Hkv)); 1 <= hd <= 256. bf16: every product's two inputs rounded to
// bfloat16 (q and k for the scores, the normalised probability and v for the weighted sum: a first pass finds each
// row's log-sum-exp so that the probability rounded is the CPU's p / l), sums and softmax in fp32.
// out16 (bf16, may be NULL): the rounding of out as well, written in the same pass (the output projection's operand,
// a shadow: cuda_blas_add_shadow).
int cuda_flash_attention_forward(float *out, void *out16, float *lse, const float *q, const float *k, const float *v,
                                 int B, int T, int Hq, int Hkv, int hd, int bf16, Error *err);

// dq, dk, dv (the shapes of q, k, v) are overwritten with the gradients of sum(dout * out); out and lse are the
// forward's. work: B*T*Hq floats of scratch (each query row's D = rowsum(P dP): dot(dout, out) in fp32; with bf16
// summed over the key tiles as the CPU sums it). bf16 rounds the inputs of dP = dO V^T, dV = P^T dO, dQ = dS K, dK =
// dS^T Q.
// dv16 (bf16, may be NULL): the rounding of dv too (a shadow: the v projection's backward reads it).
int cuda_flash_attention_backward(float *dq, float *dk, float *dv, void *dv16, const float *dout, const float *out,
                                  const float *lse, const float *q, const float *k, const float *v, int B, int T,
                                  int Hq, int Hkv, int hd, int bf16, float *work, Error *err);

#ifdef __cplusplus
}
#endif

#endif
