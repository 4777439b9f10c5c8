// The Qwen2/Qwen3 scoring forward pass on an NVIDIA GPU (issue 8), fp32 reference tier: the ops of
// src/policy/ops_cuda.h assembled exactly as forward_trunk + qwen_forward do on the CPU
// (qwen_train.c), with the weights and activations in device memory. It returns the same per-token
// log-probs and entropies as qwen_forward, so tests/test_cuda_model.c compares the two on the
// PyTorch-checked fixtures. Not yet: the backward pass, bf16, decode with a KV cache.
//
// Built by `make CUDA=1`; in a CPU-only build qwen_cuda_create fails with a message.
#ifndef PIONRL_QWEN_CUDA_H
#define PIONRL_QWEN_CUDA_H

#include "policy/qwen.h"

typedef struct QwenCuda QwenCuda;

// Copies m's weights to the device and allocates activations for up to max_B x max_T tokens.
int qwen_cuda_create(const QwenModel *m, int max_B, int max_T, QwenCuda **out, Error *err);
void qwen_cuda_free(QwenCuda *qc);
// Copies m's weights again (after an optimizer step on the host); m must have the same config.
int qwen_cuda_upload(QwenCuda *qc, const QwenModel *m, Error *err);
// The contract of qwen_forward with need = NULL: host tokens [B, T] in, host logp (and entropy if
// non-NULL) [B, T-1] out, logits divided by temperature.
int qwen_cuda_forward(QwenCuda *qc, const int *tokens, int B, int T, float temperature, float *logp, float *entropy,
                      Error *err);

#endif
