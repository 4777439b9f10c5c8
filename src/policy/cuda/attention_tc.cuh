// The tensor-core flash attention (attention_tc_cuda.cu): the bf16 path of cuda_flash_attention_forward/backward
// (src/policy/attention_cuda.h) for head sizes that are a multiple of 16 up to 128. Same arguments and semantics as
// those with bf16 set; the callers check the shapes.
#ifndef PIONRL_ATTENTION_TC_CUH
#define PIONRL_ATTENTION_TC_CUH

#include "core/error.h"

// 1 when the tensor-core kernels take this head size (hd % 16 == 0, hd <= 128).
int fa_tc_supported(int hd);

int fa_tc_forward(float *out, void *out16, float *lse, const float *q, const float *k, const float *v, int B, int T,
                  int Hq, int Hkv, int hd, Error *err);

// work: B*T*Hq floats (each row's D = rowsum(P dP)).
int fa_tc_backward(float *dq, float *dk, float *dv, void *dv16, const float *dout, const float *lse, const float *q,
                   const float *k, const float *v, int B, int T, int Hq, int Hkv, int hd, float *work, Error *err);

#endif
