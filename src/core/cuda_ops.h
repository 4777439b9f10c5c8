// CUDA device helpers and the optimizer kernels (issue 8), with a C interface. The
// implementation is src/core/cuda/cuda_ops.cu, built only by `make CUDA=1`; in a CPU build
// cuda_device_probe says so and nothing else here may be called.
//
// All pointers named d_* are device memory. Every call returns 0 or -1 with a message in err.
#ifndef PIONRL_CUDA_OPS_H
#define PIONRL_CUDA_OPS_H

#include <stddef.h>

#include "core/error.h"

#ifdef __cplusplus
extern "C" {
#endif

// 0 when this build has CUDA and device 0 is usable (its name and memory returned); otherwise -1
// with the reason: a CPU-only build, no driver, no device.
int cuda_device_probe(char *name, size_t name_len, size_t *mem_bytes, Error *err);
// Device memory in use now (total less free, cudaMemGetInfo): this process's buffers plus the CUDA context and
// libraries' own (and any other process's on the same GPU).
int cuda_memory_in_use(size_t *bytes, Error *err);

int cuda_alloc(void **d_ptr, size_t bytes, Error *err);
void cuda_release(void *d_ptr);
int cuda_to_device(void *d_dst, const void *src, size_t bytes, Error *err);
int cuda_to_host(void *dst, const void *d_src, size_t bytes, Error *err);
int cuda_zero(void *d_ptr, size_t bytes, Error *err);
int cuda_copy(void *d_dst, const void *d_src, size_t bytes, Error *err);  // device to device
// d_dst[i] = bf16(d_src[i]), nearest even, for n elements (d_dst: n x 2 bytes).
int cuda_round_bf16(void *d_dst, const float *d_src, size_t n, Error *err);

// A table of device buffers owned by one object: allocated together (on failure the error names
// the request; the caller releases the table, whose unallocated entries are NULL).
typedef struct {
    void **p;
    size_t bytes;
} CudaBuf;
int cuda_alloc_table(const CudaBuf *t, int n, Error *err);
void cuda_release_table(const CudaBuf *t, int n);

// CUDA Graphs: the work queued between cuda_graph_begin and cuda_graph_end (kernels, cuBLAS calls) is recorded,
// not run, and cuda_graph_launch replays it with one launch, the same pointers and scalars. Every queue call goes to
// one stream (the per-thread default stream: the CUDA build compiles with --default-stream per-thread, cuBLAS handles
// are set to it). Synchronous copies and allocations inside a capture fail it; cuda_graph_end then returns -1 with
// the reason and the caller runs the work eagerly instead.
typedef struct CudaGraph CudaGraph;
int cuda_graph_begin(Error *err);
int cuda_graph_end(CudaGraph **out, Error *err);
int cuda_graph_launch(const CudaGraph *g, Error *err);
void cuda_graph_free(CudaGraph *g);
// The graph's node count (kernels, cuBLAS's kernels, copies): how many launches one replay stands for.
size_t cuda_graph_num_nodes(const CudaGraph *g);

// The kernels below are queued on the stream (the per-thread default stream) and do not wait for the device; d_dsum
// (one device double) accumulates the sum of the squared parameter changes for update_rms, so a
// whole optimizer step needs one copy back at its end.

// AdamW with torch's order of operations (see src/optim/adamw.c).
int cuda_adamw(float *d_p, const float *d_g, float *d_m, float *d_v, size_t n, float lr, float beta1, float beta2,
               float eps, float weight_decay, long step, double *d_dsum, Error *err);

// M <- mu M + gk G, and d_in <- the Newton-Schulz input: gk G + mu M with nesterov, else M.
int cuda_momentum(float *d_m, const float *d_g, float *d_in, size_t n, float mu, float gk, int nesterov, Error *err);

// W <- W decay - step U.
int cuda_scaled_update(float *d_w, const float *d_u, size_t n, float step, float decay, double *d_dsum, Error *err);

// Newton-Schulz on `count` device matrices of one layout, per_m same-shape blocks (rows x cols each) a matrix: block h
// of matrix j starts at d_g + j * g_mstride + h * g_stride with row stride ldg, its output at d_out + j * o_mstride +
// h * o_stride with row stride ldo (q/k/v head rows and o_proj head columns both fit, as on the CPU; per_m 1 with
// stride 0 is the whole matrix). Each block is normalised by its own Frobenius norm (+ eps) and iterated with the
// schedule (a[t], b[t], c[t]), t < steps, all count * per_m blocks in one set of batched cuBLAS GEMMs (so the
// products have count times the blocks to spread over the GPU): fp32, or with bf16 = 1 every product on
// bf16-rounded operands with fp32 accumulation (tensor cores; the CPU's NsWork.bf16 arithmetic).
typedef struct CudaNs CudaNs;
// The workspace of a batch: max_numel elements of blocks, max_gram of their Gram matrices (short side squared per
// block), max_blocks blocks.
int cuda_ns_create(size_t max_numel, size_t max_gram, int max_blocks, int bf16, CudaNs **out, Error *err);
void cuda_ns_free(CudaNs *ns);
int cuda_ns_matrices(CudaNs *ns, const float *a, const float *b, const float *c, int steps, int count, const float *d_g,
                     size_t g_mstride, int per_m, int rows, int cols, int ldg, size_t g_stride, float *d_out,
                     size_t o_mstride, int ldo, size_t o_stride, float eps, Error *err);

#ifdef __cplusplus
}
#endif

#endif
