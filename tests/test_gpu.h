// The GPU tests' common guard: 1 when device 0 is usable; otherwise the running test is skipped with the reason (a
// CPU-only build, no driver, no device).
#ifndef PIONRL_TEST_GPU_H
#define PIONRL_TEST_GPU_H

#include "core/cuda_ops.h"
#include "test.h"

static inline int test_gpu_ready(void) {
    Error err;
    if (cuda_device_probe(NULL, 0, NULL, &err)) {
        test_skip("%s", err.msg);
        return 0;
    }
    return 1;
}

#endif
