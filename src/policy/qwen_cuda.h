// The Qwen2/Qwen3 training forward and backward passes on an NVIDIA GPU (issue 8): the ops of
// src/policy/ops_cuda.h and attention_cuda.h assembled as qwen_forward / qwen_backward do on the CPU
// (qwen_train.c), with weights, gradients and saved activations in device memory, in fp32 or with
// bf16 matrix products (qwen_cuda_set_matmul_bf16). Same per-token log-probs, entropies and gradients
// as the CPU in either precision, so tests/test_cuda_model.c compares the two on the PyTorch-checked
// fixtures; and decode with a device KV cache (qwen_decode's contract), sampling on the device and
// its steps replayed as CUDA graphs.
//
// Built by `make CUDA=1`; in a CPU-only build every call fails with a message.
#ifndef PIONRL_QWEN_CUDA_H
#define PIONRL_QWEN_CUDA_H

#include "policy/qwen.h"
#include "policy/sampler.h"

typedef struct QwenCuda QwenCuda;

// Copies m's weights to the device, zeroes a device gradient buffer and allocates activations for
// up to max_B x max_T tokens.
int qwen_cuda_create(const QwenModel *m, int max_B, int max_T, QwenCuda **out, Error *err);
// The same with activation recomputation (as qwen_acts_alloc_ex on the CPU): only each layer's
// input is kept on the device and the backward re-runs each layer first.
int qwen_cuda_create_ex(const QwenModel *m, int max_B, int max_T, int recompute, QwenCuda **out, Error *err);
// For decoding only (generate, eval, rollouts): the weights on the device, training buffers at
// their minimum (one sequence of 2 tokens; the trainer grows them per micro-batch).
int qwen_cuda_create_for_decode(const QwenModel *m, QwenCuda **out, Error *err);
// A model that is only scored (the KL reference): qwen_cuda_forward at B x T with one layer of activations (each
// layer's overwritten by the next), two layer inputs, and no gradient or backward buffers; qwen_cuda_backward and
// the gradient calls refuse it. qwen_cuda_forward_only_bytes: what it allocates beyond its fp32 weights (bf16: with
// qwen_cuda_set_matmul_bf16's copies). Any build.
int qwen_cuda_create_forward_only(const QwenModel *m, int max_B, int max_T, QwenCuda **out, Error *err);
size_t qwen_cuda_forward_only_bytes(const QwenConfig *c, int B, int T, int bf16);
void qwen_cuda_free(QwenCuda *qc);
// Device memory qwen_cuda_create_ex allocates for activations and scratch at B x T (without the parameter and
// gradient buffers, and without the bf16 copies of qwen_cuda_set_matmul_bf16). Any build: for the memory planner.
size_t qwen_cuda_acts_bytes(const QwenConfig *c, int B, int T, int recompute);
// What qwen_cuda_set_matmul_bf16 adds for bf16 training: bf16 copies of the saved inputs of the matrix products
// (the normed inputs, attention and SwiGLU outputs of every saved layer) and of the MLP's input gradients, written by
// the kernels that produce them instead of being rounded by a pass of their own before each product.
size_t qwen_cuda_bf16_acts_bytes(const QwenConfig *c, int B, int T, int recompute);
// Rows of the vocabulary products done at once for N scored positions: all N up to a 512 MiB fp32 logits buffer
// (at least 256 rows). Each chunk of the backward reads and writes the whole V x D lm_head gradient, so fewer,
// larger chunks save that traffic (1.2 GB a chunk on Qwen3-0.6B). Any build: for the memory planner.
size_t qwen_cuda_logit_rows(const QwenConfig *c, size_t N);
// Copies m's weights again (after an optimizer step on the host); m must have the same config.
int qwen_cuda_upload(QwenCuda *qc, const QwenModel *m, Error *err);
// The contract of qwen_forward with need = NULL: host tokens [B, T] in, host logp (and entropy if
// non-NULL) [B, T-1] out, logits divided by temperature.
int qwen_cuda_forward(QwenCuda *qc, const int *tokens, int B, int T, float temperature, float *logp, float *entropy,
                      Error *err);
// Accumulates (+=) d(sum w * logp)/d params into the device gradient buffer, w [B, T-1] on the
// host (qwen_backward's contract, every position scored). Call after qwen_cuda_forward.
int qwen_cuda_backward(QwenCuda *qc, const float *w, Error *err);
int qwen_cuda_zero_grads(QwenCuda *qc, Error *err);
// Copies the device gradients (num_params floats, the layout of m->params) to the host.
int qwen_cuda_download_grads(const QwenCuda *qc, float *grads, Error *err);
// Replaces the device gradients with host ones (e.g. clipped on the host).
int qwen_cuda_upload_grads(QwenCuda *qc, const float *grads, Error *err);
// Copies the device weights back into m (after an optimizer step on the device).
int qwen_cuda_download_params(const QwenCuda *qc, QwenModel *m, Error *err);
// The device parameter and gradient buffers (num_params floats each), for a device optimizer. Taking the parameter
// pointer counts as changing the weights: the bf16 copy (below) is remade before the next pass.
float *qwen_cuda_params(QwenCuda *qc);
// on = 1: the training passes (qwen_cuda_forward/backward) multiply bf16-rounded operands with fp32 accumulation,
// the device form of the CPU's matmul_dtype bf16 (QwenActs.matmul_bf16), with a bf16 copy of the weights
// (num_params x 2 bytes) remade whenever they change. Weights, activations, gradients stay fp32.
int qwen_cuda_set_matmul_bf16(QwenCuda *qc, int on, Error *err);
float *qwen_cuda_grads(QwenCuda *qc);

// Incremental decode with a device KV cache, the contract of qwen_decode (qwen_decode.h): slots of
// up to max_len tokens, one call takes up to max_tokens (prompt prefill and/or one token per
// slot), and for each i with want[i] (NULL = all) the next-token logits are written to consecutive
// rows of the host array logits. Uses qc's device weights (upload after a host optimizer step).
typedef struct QwenCudaKV QwenCudaKV;
int qwen_cuda_kv_create(QwenCuda *qc, int num_slots, int max_len, int max_tokens, QwenCudaKV **out, Error *err);
// bf16 = 1: the cache in bfloat16 (half the memory; logits at bf16 precision, as qwen_kv_alloc_ex).
int qwen_cuda_kv_create_ex(QwenCuda *qc, int num_slots, int max_len, int max_tokens, int bf16, QwenCudaKV **out,
                           Error *err);
// on = 1: this cache's decode calls use bf16 matrix products (the CPU's qwen_kv_pack_bf16 weights; the cached
// attention stays fp32 arithmetic, as on the CPU).
int qwen_cuda_kv_set_matmul_bf16(QwenCudaKV *kv, int on, Error *err);
// 1 when kv belongs to qc and holds at least num_slots slots of max_len tokens, max_tokens per call, with the given
// cache dtype (bf16): a call of that size may reuse it after qwen_cuda_kv_reset_all.
int qwen_cuda_kv_fits(const QwenCudaKV *kv, const QwenCuda *qc, int num_slots, int max_len, int max_tokens, int bf16);
void qwen_cuda_kv_reset_all(QwenCudaKV *kv);
// on = 1 (the default): qwen_cuda_decode_sample replays each batch size's step as a CUDA graph from its second use
// (one launch instead of hundreds; the same results, tested on the emulator). 0: every step launched eagerly.
int qwen_cuda_kv_set_graphs(QwenCudaKV *kv, int on);
// Decode steps captured so far (for tests and benchmarks).
int qwen_cuda_kv_num_graphs(const QwenCudaKV *kv);
// Nodes (launches, cuBLAS kernels) in the captured step for n rows (n rounded up to its bucket), 0 when none is.
int qwen_cuda_kv_graph_nodes(const QwenCudaKV *kv, int n);
void qwen_cuda_kv_free(QwenCudaKV *kv);
void qwen_cuda_kv_reset(QwenCudaKV *kv, int slot);
// Copies slot src's cached tokens into slot dst (prompt sharing across a group of samples).
int qwen_cuda_kv_copy(QwenCudaKV *kv, int dst, int src, Error *err);
int qwen_cuda_decode(QwenCudaKV *kv, const int *slot, const int *token, int n, const unsigned char *want,
                     float *logits, Error *err);
// The same step with every row's next token sampled on the device (sampler_cuda.h): out_tok[i] and out_logp[i] as
// sampler_sample would give them from u[i], the uniform number the host drew for row i (ignored when greedy). Only
// 12 bytes a row come back instead of a row of logits.
int qwen_cuda_decode_sample(QwenCudaKV *kv, const int *slot, const int *token, int n, const SamplingParams *sp,
                            int n_valid, const double *u, int *out_tok, float *out_logp, Error *err);

#endif
