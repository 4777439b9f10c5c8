// The GPU tests' common guard: 1 when device 0 is usable; otherwise the running test is skipped with the reason (a
// CPU-only build, no driver, no device).
#ifndef PIONRL_TEST_GPU_H
#define PIONRL_TEST_GPU_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/bf16.h"
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

// 1 when device 0 is the CPU emulator of tests/cuda_emu (where every launch and byte is the program's own), 0 on a
// GPU or without a device.
static inline int test_gpu_emulated(void) {
    char name[256] = "";
    Error err;
    return cuda_device_probe(name, sizeof name, NULL, &err) == 0 && strstr(name, "emulator") != NULL;
}

// n deterministic values in [-scale/2, scale/2) from seed (a linear congruential sequence).
static inline void test_fill(float *x, size_t n, unsigned seed, float scale) {
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = scale * ((float)(seed >> 8) / 16777216.0f - 0.5f);
    }
}

// Device copy of a host array (NULL, with the test failed, on error).
static inline void *test_dev(const void *host, size_t bytes) {
    void *d = NULL;
    Error err;
    if (cuda_alloc(&d, bytes, &err) || cuda_to_device(d, host, bytes, &err)) {
        test_fail_at(__FILE__, __LINE__, "%s", err.msg);
        cuda_release(d);
        return NULL;
    }
    return d;
}

// max |host - device copy| (relative to max(1, max |host|) when rel is set); inf when the copy fails, NaN when the
// device holds one.
static inline double test_dev_diff(const float *host, const float *d, size_t n, int rel) {
    float *back = malloc(n * sizeof(float));
    Error err;
    double worst = INFINITY, big = 1.0;
    if (back && d && cuda_to_host(back, d, n * sizeof(float), &err) == 0) {
        worst = 0;
        for (size_t i = 0; i < n; i++) {
            double e = fabs((double)host[i] - back[i]);
            worst = e > worst || e != e ? e : worst;
            big = fmax(big, fabs(host[i]));
        }
    }
    free(back);
    return rel ? worst / big : worst;
}

// Whether the device's bf16 array d16 holds exactly the rounding of its fp32 array d (n values): what a kernel that
// writes an activation shadow next to its output promises.
static inline int test_dev_shadow_ok(const float *d, const void *d16, size_t n) {
    float *x = malloc(sizeof(float) * n);
    uint16_t *h = malloc(sizeof(uint16_t) * n);
    Error err;
    int ok = x && h && d && d16 && cuda_to_host(x, d, sizeof(float) * n, &err) == 0 &&
             cuda_to_host(h, d16, sizeof(uint16_t) * n, &err) == 0;
    for (size_t i = 0; ok && i < n; i++) ok = h[i] == bf16_from_f32(x[i]);
    free(x), free(h);
    return ok;
}

#endif
