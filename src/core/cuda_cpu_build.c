// src/core/cuda_ops.h in a CPU-only build (the CUDA build gets it from src/core/cuda/cuda_ops.cu):
// the probe and the memory calls answer with a clear message, so callers need no #ifdefs to ask
// for a GPU. The kernels are not defined here: nothing may launch them without a device.
#include "core/cuda_ops.h"

#ifndef PIONRL_CUDA

static int no_cuda(Error *err) {
    return error_set(err, "this pionrl was built without CUDA (rebuild with make CUDA=1)");
}

int cuda_device_probe(char *name, size_t name_len, size_t *mem_bytes, Error *err) {
    if (name && name_len) name[0] = 0;
    if (mem_bytes) *mem_bytes = 0;
    return no_cuda(err);
}

int cuda_alloc(void **d_ptr, size_t bytes, Error *err) {
    *d_ptr = NULL;
    return no_cuda(err);
}

int cuda_memory_in_use(size_t *bytes, Error *err) {
    *bytes = 0;
    return no_cuda(err);
}

void cuda_release(void *d_ptr) {}
int cuda_to_device(void *d_dst, const void *src, size_t bytes, Error *err) { return no_cuda(err); }
int cuda_to_host(void *dst, const void *d_src, size_t bytes, Error *err) { return no_cuda(err); }
int cuda_zero(void *d_ptr, size_t bytes, Error *err) { return no_cuda(err); }
int cuda_copy(void *d_dst, const void *d_src, size_t bytes, Error *err) { return no_cuda(err); }
int cuda_round_bf16(void *d_dst, const float *d_src, size_t n, Error *err) { return no_cuda(err); }
int cuda_alloc_table(const CudaBuf *t, int n, Error *err) { return no_cuda(err); }
void cuda_release_table(const CudaBuf *t, int n) {}
int cuda_graph_begin(Error *err) { return no_cuda(err); }
int cuda_graph_end(CudaGraph **out, Error *err) {
    *out = NULL;
    return no_cuda(err);
}
int cuda_graph_launch(const CudaGraph *g, Error *err) { return no_cuda(err); }
void cuda_graph_free(CudaGraph *g) {}
size_t cuda_graph_num_nodes(const CudaGraph *g) { return 0; }

#endif
