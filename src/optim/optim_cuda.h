// The optimizer step on an NVIDIA GPU (issue 8, part 4): the rules of optimizer_step (AdamW on
// vectors, embeddings and lm_head; Muon/Pion, whole-matrix or per head, on hidden matrices) with
// parameters, gradients and state in device memory, fp32 master weights and state. The Newton-Schulz
// iteration runs as batched cuBLAS GEMMs over all heads of all same-shape matrices at once (every layer's q_proj
// together, up to a memory budget; fp32, or bf16 products with ns_dtype bf16); spectrum-preserving Pion as
// spectral_cuda.h (fp64 rotation, cuSOLVER LU).
//
// Built by `make CUDA=1`; in a CPU-only build optim_cuda_create fails with a message.
#ifndef PIONRL_OPTIM_CUDA_H
#define PIONRL_OPTIM_CUDA_H

#include "optim/optim.h"

typedef struct OptimCuda OptimCuda;

// Mirrors a host optimizer: same config, parameter table and rules, and a device copy of its state
// and step count (so a run can move to the GPU from a checkpointed optimizer).
int optim_cuda_create(const Optimizer *host, OptimCuda **out, Error *err);
void optim_cuda_free(OptimCuda *o);
// One step on device arrays laid out like the host's params/grads (num_params floats each).
int optim_cuda_step(OptimCuda *o, float *d_params, const float *d_grads, float lr_scale, Error *err);
// RMS of the last step's change of parameter i, as optimizer_update_rms.
float optim_cuda_update_rms(const OptimCuda *o, int i);
// Copies the device state and step count back into the host optimizer it was created from (for
// checkpoints: optimizer_state_save then writes what the device has).
int optim_cuda_download_state(const OptimCuda *o, Optimizer *host, Error *err);
// Device bytes optim_cuda_create allocates beyond the optimizer state for config c over table (the Newton-Schulz
// batches' inputs, outputs and workspace: same-shape matrices of every layer iterate as one batch), for the memory
// planner. Any build.
size_t optim_cuda_workspace_bytes(const OptimConfig *c, const ParamInfo *table, int n);

#endif
