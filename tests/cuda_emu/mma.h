// nvcuda::wmma (warp-level tensor-core matrix products) for the CUDA emulator (see cuda_runtime.h): the 16x16x16
// shapes pionrl's kernels use, with bf16 or fp32 inputs and fp32 accumulators.
//
// A fragment's layout across the lanes of a warp is unspecified on the device, so kernels may only load, store, fill
// and multiply fragments; this emulation keeps the whole tile in every lane, and makes the warp's cooperation
// visible the way the device does:
//   - each lane owns every 32nd element of an accumulator (8 of 256, as on the device): mma_sync computes only the
//     lane's own elements, and store_matrix_sync writes only those. A lane that reads a stored tile before the other
//     lanes have stored their parts (no barrier in between) reads stale values, and the tests see it;
//   - loads read the whole tile (each lane's products need whole rows and columns), so they too see only what was
//     stored before the barrier;
//   - the device's preconditions abort with the reason: a pointer not 32-byte aligned, ldm not a multiple of 16
//     bytes; and every lane of a warp must make the same number of wmma calls (checked at the end of each block).
#ifndef PIONRL_CUDA_EMU_MMA_H
#define PIONRL_CUDA_EMU_MMA_H

#include <stdint.h>

#include "cuda_bf16.h"
#include "cuda_runtime.h"

// Defined in cuda_emu.cpp: counts a warp-collective call of the running thread; the lane of the running thread;
// stops the program with the reason (as a device fault would).
void emu_warp_collective(void);
int emu_lane(void);
[[noreturn]] void emu_fault(const char *what);

namespace nvcuda {
namespace wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

template <typename Use, int M, int N, int K>
struct emu_dims;
template <int M, int N, int K>
struct emu_dims<matrix_a, M, N, K> {
    enum { rows = M, cols = K };
};
template <int M, int N, int K>
struct emu_dims<matrix_b, M, N, K> {
    enum { rows = K, cols = N };
};
template <int M, int N, int K>
struct emu_dims<accumulator, M, N, K> {
    enum { rows = M, cols = N };
};

template <typename Use, int M, int N, int K, typename T, typename Layout = void>
struct fragment {
    enum { rows = emu_dims<Use, M, N, K>::rows, cols = emu_dims<Use, M, N, K>::cols };
    float v[rows * cols];  // row-major; bf16 inputs are exact in fp32
};

inline float emu_value(float x) { return x; }
inline float emu_value(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename T>
inline void emu_check(const T *p, unsigned ldm) {
    emu_warp_collective();
    if ((uintptr_t)p % 32) emu_fault("wmma: matrix pointer not 32-byte aligned");
    if (ldm * sizeof(T) % 16) emu_fault("wmma: ldm not a multiple of 16 bytes");
}

inline bool emu_owns(int e) { return e % 32 == emu_lane(); }

template <typename Use, int M, int N, int K, typename T, typename Layout>
inline void emu_load(fragment<Use, M, N, K, T, Layout> &f, const T *p, unsigned ldm, bool row) {
    emu_check(p, ldm);
    typedef fragment<Use, M, N, K, T, Layout> F;
    for (int i = 0; i < F::rows; i++)
        for (int j = 0; j < F::cols; j++)
            f.v[i * F::cols + j] = emu_value(row ? p[(size_t)i * ldm + j] : p[i + (size_t)j * ldm]);
}

template <typename Use, int M, int N, int K, typename T>
inline void load_matrix_sync(fragment<Use, M, N, K, T, row_major> &f, const T *p, unsigned ldm) {
    emu_load(f, p, ldm, true);
}
template <typename Use, int M, int N, int K, typename T>
inline void load_matrix_sync(fragment<Use, M, N, K, T, col_major> &f, const T *p, unsigned ldm) {
    emu_load(f, p, ldm, false);
}
template <int M, int N, int K>
inline void load_matrix_sync(fragment<accumulator, M, N, K, float> &f, const float *p, unsigned ldm, layout_t l) {
    emu_load(f, p, ldm, l == mem_row_major);
}

template <int M, int N, int K>
inline void store_matrix_sync(float *p, const fragment<accumulator, M, N, K, float> &f, unsigned ldm, layout_t l) {
    emu_check(p, ldm);
    for (int e = 0; e < M * N; e++) {
        if (!emu_owns(e)) continue;
        int i = e / N, j = e % N;
        p[l == mem_row_major ? (size_t)i * ldm + j : i + (size_t)j * ldm] = f.v[e];
    }
}

template <typename Use, int M, int N, int K, typename T, typename Layout>
inline void fill_fragment(fragment<Use, M, N, K, T, Layout> &f, float value) {
    emu_warp_collective();
    for (int e = 0; e < fragment<Use, M, N, K, T, Layout>::rows * fragment<Use, M, N, K, T, Layout>::cols; e++)
        f.v[e] = value;
}

// d = a b + c over the lane's own elements of d (d may be c).
template <int M, int N, int K, typename T, typename LA, typename LB>
inline void mma_sync(fragment<accumulator, M, N, K, float> &d, const fragment<matrix_a, M, N, K, T, LA> &a,
                     const fragment<matrix_b, M, N, K, T, LB> &b, const fragment<accumulator, M, N, K, float> &c) {
    emu_warp_collective();
    for (int e = 0; e < M * N; e++) {
        if (!emu_owns(e)) continue;
        int i = e / N, j = e % N;
        float s = c.v[e];
        for (int k = 0; k < K; k++) s += a.v[i * K + k] * b.v[k * N + j];
        d.v[e] = s;
    }
}

}  // namespace wmma
}  // namespace nvcuda

#endif
