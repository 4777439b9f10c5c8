// The per-operation kernels of src/policy/ops.h on an NVIDIA GPU (issue 8): same shapes, same
// layouts and the same accumulate-into-gradient conventions, so every op has a CPU-vs-CUDA test
// (tests/test_cuda_ops.c). Elementwise and row kernels are fp32; the GEMMs are fp32, or bf16
// operands with fp32 accumulation in the handle's bf16 mode (the CPU's matmul_dtype bf16). Training
// attention is in attention_cuda.h. Implementation: src/policy/cuda/ops_cuda.cu (make CUDA=1).
//
// All float/int pointers are device memory; calls are queued on the one stream (the per-thread default
// stream; errors in a kernel surface at the next synchronising call, e.g. cuda_to_host). Return 0 or -1
// with err set.
#ifndef PIONRL_OPS_CUDA_H
#define PIONRL_OPS_CUDA_H

#include <stddef.h>

#include "core/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct CudaBlas CudaBlas;  // a cuBLAS handle (fp32 math, no TF32)
int cuda_blas_create(CudaBlas **out, Error *err);
void cuda_blas_free(CudaBlas *b);
// bf16 mode (on = 1): every GEMM below that takes cb (cuda_sgemm, linear forward/backward) multiplies bfloat16-rounded
// operands with fp32 accumulation and fp32 output (cublasGemmEx, tensor cores): the device form of the CPU's
// matmul_dtype bf16 (src/core/gemm_bf16.h), same inputs, other summation order. Activations stay fp32 in memory and
// are rounded into a scratch buffer per call; operands inside the array registered with cuda_blas_set_bf16_copy
// (the weights) are read from its bf16 copy instead, which the caller keeps current (cuda_round_bf16).
void cuda_blas_set_bf16(CudaBlas *cb, int on);
// copy: n bf16 values, element i the rounding of base[i]; NULL to forget it.
void cuda_blas_set_bf16_copy(CudaBlas *cb, const float *base, const void *copy, size_t n);
// on = 1 opens a stretch of calls whose operands the caller does not modify (cuda_linear_backward's two products of
// one output gradient): an operand rounded to bf16 in one call is not rounded again in the next while its scratch
// slot still holds it. on = 0 closes it. cuda_blas_roundings counts the roundings done (for tests).
void cuda_blas_reuse_operands(CudaBlas *cb, int on);
unsigned long cuda_blas_roundings(const CudaBlas *cb);
// Changes whenever the handle's bf16 scratch buffers move: work captured into a CUDA graph before is stale.
unsigned long cuda_blas_generation(const CudaBlas *cb);
// Activation shadows, the weight copy's counterpart for activations: until cuda_blas_clear_shadows, a bf16-mode
// operand lying inside x[0 .. n) is read from x16 (n bf16 values, element i the rounding of x[i]) instead of being
// rounded into scratch. The caller writes x16 whenever it writes x (the ops below with a bf16 output do both in one
// pass). At most CUDA_BLAS_SHADOWS at once: a decode step registers its normed input, attention and SwiGLU outputs, the
// training passes the saved GEMM inputs of every layer and the MLP's input gradients.
enum { CUDA_BLAS_SHADOWS = 16 };
int cuda_blas_add_shadow(CudaBlas *cb, const float *x, const void *x16, size_t n, Error *err);
void cuda_blas_clear_shadows(CudaBlas *cb);

// out[n, :] = table[tokens[n], :] for N rows of width D (the embedding lookup).
int cuda_embedding_forward(float *out, const float *table, const int *tokens, int N, int D, Error *err);

// dtable[tokens[n], :] += dout[n, :]: one thread per column walks the rows in order, so the sum
// is deterministic (no atomics).
int cuda_embedding_backward(float *dtable, const float *dout, const int *tokens, int N, int D, Error *err);

// Row-major SGEMM with the signature of src/core/blas.h's sgemm: C = alpha op(A) op(B) + beta C.
int cuda_sgemm(CudaBlas *cb, int ta, int tb, int m, int n, int k, float alpha, const float *A, int lda, const float *B,
               int ldb, float beta, float *C, int ldc, Error *err);

int cuda_linear_forward(CudaBlas *cb, float *out, const float *in, const float *W, const float *b, int N, int I,
                        int O, Error *err);
// count linear layers on one input in one strided-batched product: out + j out_stride = in (W + j w_stride)^T
// (+ b + j b_stride), j < count (the decode step's k and v, and gate and up, whose weights lie a fixed distance apart
// in the parameter buffer). bf16 mode: the weights must be in the registered copy for one call, else the products
// run one by one (same results).
int cuda_linear_forward_batched(CudaBlas *cb, float *out, size_t out_stride, const float *in, const float *W,
                                size_t w_stride, const float *b, size_t b_stride, int count, int N, int I, int O,
                                Error *err);
int cuda_linear_backward(CudaBlas *cb, float *din, int din_accumulate, float *dW, float *db, const float *dout,
                         const float *in, const float *W, int N, int I, int O, Error *err);

// The ops below that produce an input of a bf16 product take an optional bf16 output beside the fp32 one (NULL:
// none), written in the same pass: the rounding of every fp32 value, an activation shadow (cuda_blas_add_shadow).

// y16: the rounding of y.
int cuda_rmsnorm_forward(float *y, void *y16, float *rstd, const float *x, const float *w, int N, int C, float eps,
                         Error *err);
// dx = dx_in + the norm's input gradient (dx_in NULL: the gradient alone; dx_in == dx: accumulate in place), so a
// residual gradient needs no copy first; dx16: the rounding of the resulting dx.
int cuda_rmsnorm_backward(float *dx, void *dx16, const float *dx_in, float *dw, const float *dy, const float *x,
                          const float *w, const float *rstd, int N, int C, Error *err);

int cuda_rope_forward(float *x, const int *pos, int N, int H, int hd, double theta, Error *err);
int cuda_rope_backward(float *dx, const int *pos, int N, int H, int hd, double theta, Error *err);

// h16: the rounding of h; dg16, du16: those of dg and du (the gate/up backward products' inputs).
int cuda_swiglu_forward(float *h, void *h16, const float *g, const float *u, long n, Error *err);
int cuda_swiglu_backward(float *dg, float *du, void *dg16, void *du16, const float *dh, const float *g, const float *u,
                         long n, Error *err);

// Training attention: src/policy/attention_cuda.h (flash-style, no T x T probabilities).

// logp[r] = log softmax(logits row r)[target[r]] for N rows of V
// logits; entropy[r] (if non-NULL) = -sum p log p. A row with target < 0 gets 0 for both (a position
// that is not scored). One thread block per row; the logits are read, never written.
int cuda_logsoftmax_rows(const float *logits, const int *target, float *logp, float *entropy, int N, int V,
                         Error *err);

// KV cache for decode, K and V each [L, num_slots, max_len, KD] (KD = Hkv * hd). With bf16 set the cache holds
// bfloat16 elements (rounded to nearest even when stored, widened to fp32 for the arithmetic): half the memory and
// the reads.
// The decode step's per-head work in one launch, for n rows of q [n, Hq, hd], k and v [n, KD]: q heads through their
// RMSNorm (q_norm, hd weights) and RoPE at pos[i] in place; k heads through k_norm and RoPE, then stored with the v
// heads in the cache at (layer, slot[i], pos[i]). q_norm and k_norm both NULL: no qk-norm (Qwen2). The same
// arithmetic as cuda_rmsnorm_forward + cuda_rope_forward, then the store; k and v are not modified.
int cuda_norm_rope_append(float *q, const float *k, const float *v, void *K, void *V, int bf16, const float *q_norm,
                          const float *k_norm, float eps, const int *slot, const int *pos, int n, int layer,
                          int num_slots, int max_len, int Hq, int Hkv, int hd, double theta, Error *err);
// out [n, Hq*hd]: attention of query row i (q [n, Hq, hd]) over positions 0..pos[i] of slot[i] in
// the given layer of the cache; one thread block per (row, kv head, up to 8 of its query heads): each
// cached row is read once for the query heads that share it, in tiles of 32 positions, with an
// online softmax (shared memory independent of max_len: 37 KB at hd 128). hd at most 256. out16 (bf16, may be
// NULL): the rounding of out as well (an activation shadow for the output projection).
int cuda_cached_attention(float *out, void *out16, const float *q, const void *K, const void *V, int bf16,
                          const int *slot, const int *pos, int n, int layer, int num_slots, int max_len, int Hq,
                          int Hkv, int hd, Error *err);

// In place, per row r of N rows of V logits: logits <- weight[r] (onehot(target[r]) -
// softmax(logits)), the gradient of weight * log softmax(logits)[target] with respect to the
// logits. Rows with target < 0 become zeros. logits16 (bf16, may be NULL): the rounding of the gradients as well (a
// shadow for the lm_head's two products).
int cuda_logsoftmax_grad_rows(float *logits, void *logits16, const int *target, const float *weight, int N, int V,
                              Error *err);

#ifdef __cplusplus
}
#endif

#endif
