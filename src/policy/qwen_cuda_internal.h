// Private layout of QwenCuda, shared by qwen_cuda.c (training passes) and qwen_cuda_decode.c
// (decode with a KV cache). CUDA builds only.
#ifndef PIONRL_QWEN_CUDA_INTERNAL_H
#define PIONRL_QWEN_CUDA_INTERNAL_H

#include "policy/ops_cuda.h"
#include "policy/qwen_cuda.h"

// Saved activations, [L, N, ...] per layer as QwenActs on the CPU, plus backward scratch.
struct QwenCuda {
    QwenConfig cfg;
    int max_B, max_T, B, T;  // capacity; shape of the last forward
    int recompute;           // activation recomputation: one layer of room, layers re-run in the backward
    int forward_only;        // qwen_cuda_create_forward_only: no gradients or backward buffers, two layer inputs
    float temperature;
    size_t num_params;
    size_t logit_rows;  // qwen_cuda_logit_rows at the capacity max_B x max_T: the logits buffer's rows
    float *d_params, *d_grads;
    // bf16 matrix products (matmul_dtype bf16): the weights rounded once per change, read by every GEMM
    int train_bf16;    // the training passes' mode (qwen_cuda_set_matmul_bf16)
    void *d_wbf16;     // num_params bf16 values, allocated on first use
    int wbf16_stale;   // d_params changed since d_wbf16 was made
    // bf16 shadows (cuda_blas_add_shadow) of the arrays whose only use in bf16 mode is as a GEMM input: the saved
    // ln1, att, ln2, act (same [S, N, ...] layout, S layers of room), the MLP's input gradients dgate, dup, lnf and
    // the logit gradients; written by the kernels that write the fp32 values, so no pass rounds them. Allocated
    // with the weight copy.
    void *ln1_16, *att16, *ln2_16, *act16, *dgate16, *dup16;
    void *lnf16, *logits16;  // likewise the final norm's output (the lm_head's input) and a chunk's logit gradients
    void *dx16, *dx_mid16, *datt16, *dtmp16, *dv16;  // the backward's residual, q/k-norm input and v gradients
    QwenWeights w, g;  // device views into d_params / d_grads
    CudaBlas *cb;
    float *x, *ln1, *rstd1, *q_raw, *k_raw, *rstd_q, *rstd_k, *q, *k, *v, *lse, *att, *x_mid, *ln2, *rstd2;
    float *gate, *up, *act, *x_out, *lnf, *rstdf;
    float *dx, *dln, *dx_mid, *dtmp, *dq, *datt, *dk, *dv, *dgate, *dup, *dact, *att_work;  // backward scratch
    float *logits, *logp, *ent, *wrow;
    int *tokens, *pos, *target;
    float *h_logp, *h_ent, *h_wrow;  // host staging, [max_B * max_T]
    int *h_pos, *h_target;
};

// Puts qc's GEMMs in bf16 (bringing the bf16 weight copy up to date first) or fp32 mode.
int qwen_cuda_gemm_mode(QwenCuda *qc, int bf16, Error *err);

#endif
