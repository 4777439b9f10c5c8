// Flash-style causal GQA attention (FlashAttention-2's loop order, fp32
// arithmetic; see attention_cuda.h). No T x T matrix exists anywhere: scores
// live in registers and one shared FA_TILE x FA_TILE tile at a time.
//
// Geometry shared by the kernels: a block is FA_THREADS threads over one tile
// of FA_TILE rows (query rows in the forward and dQ kernels, key rows in the
// dK/dV kernel), FA_TPR threads per row. Each thread owns
//   - FA_PER = FA_TILE / FA_TPR entries of the row's scores against the other
//   tile (every FA_TPR-th one), and
//   - every FA_TPR-th column of the row's head vector as register accumulators
//   (NACC = max hd / FA_TPR of them),
// so the accumulators never leave registers and the column-wise reads of a
// shared tile by a warp's threads hit consecutive words. Shared tiles of head
// vectors have row stride hd + 1: the threads of a warp that read the same
// column of different rows then read different banks.
//
// Cooperation is through shared memory and __syncthreads only (no warp
// shuffles), and every barrier is reached by all threads (loop trip counts are
// uniform across the block): the CPU emulator in tests/cuda_emu/ runs the same
// code.
#include "policy/attention_cuda.h"

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <math.h>

#include "core/cuda/cuda_common.cuh"
#include "policy/cuda/attention_tc.cuh"

// Full unrolling keeps the per-thread arrays (scores, accumulators) in
// registers under nvcc; the emulator's g++ has no `#pragma unroll`.
#ifdef __CUDACC__
#define FA_UNROLL _Pragma("unroll")
#else
#define FA_UNROLL
#endif

enum {
    FA_TILE = 32,
    FA_TPR = 4,
    FA_THREADS = FA_TILE * FA_TPR,
    FA_PER = FA_TILE / FA_TPR,
    FA_MAX_HD = 256,
    FA_SLD = FA_TILE + 1,  // row stride of the score tile: a warp reads one column of 8 rows
};

__device__ static inline int fa_min(int a, int b) { return a < b ? a : b; }

__device__ static inline float fa_round(float x, int bf16) {
    return bf16 ? __bfloat162float(__float2bfloat16_rn(x)) : x;
}

// Rows [r0, r0 + FA_TILE) of one head (row stride `stride` floats, hd columns)
// into a shared tile of row stride hd + 1, rounded to bfloat16 when bf16 is
// set: every product these tiles enter takes rounded inputs, so they are
// rounded once here. Rows at or after T become zeros, so that masked products
// read finite values (0 * NaN would be NaN).
__device__ static inline void fa_load_tile(float *dst, const float *src, int r0, int T, size_t stride, int hd,
                                           int bf16) {
    int ld = hd + 1;
    for (int e = threadIdx.x; e < FA_TILE * hd; e += FA_THREADS) {
        int r = e / hd, d = e - r * hd;
        dst[r * ld + d] = r0 + r < T ? fa_round(src[(size_t)(r0 + r) * stride + d], bf16) : 0.0f;
    }
}

// lse and D of rows [r0, r0 + FA_TILE) of one (sequence, head) into shared
// memory (zeros past T; D NULL: zeros).
__device__ static inline void fa_load_rows(float *sL, float *sD, const float *lse, const float *D, int r0, int T) {
    int t = threadIdx.x, row = r0 + t;
    if (t < FA_TILE) {
        sL[t] = row < T ? lse[row] : 0.0f;
        sD[t] = row < T && D ? D[row] : 0.0f;
    }
}

// One block per (query tile, query head, sequence). Online softmax over the key
// tiles up to the diagonal: the running max m and sum l of each row rescale the
// accumulated output whenever the max grows. With bf16 the probabilities are
// rounded before P V, and the CPU rounds the normalised ones; to round the same
// values a first pass over the key tiles (scores only) finds each row's
// log-sum-exp, and the second forms p = exp(s - lse) directly (no
// rescaling): 1.5x the score arithmetic, for a bf16 forward that agrees with
// the CPU's bf16 forward to fp32 summation order.
template <int NACC>
__global__ static void fa_forward_kernel(float *out, __nv_bfloat16 *out16, float *lse, const float *q, const float *k,
                                         const float *v, int T, int Hq, int Hkv, int hd, int bf16, float scale) {
    extern __shared__ float fa_smem[];
    int ld = hd + 1;
    float *sQ = fa_smem, *sK = sQ + FA_TILE * ld, *sV = sK + FA_TILE * ld, *sP = sV + FA_TILE * ld;
    float *sMax = sP + FA_TILE * FA_SLD;
    // The last query tiles see the most keys: they start first, so the short ones
    // fill the tail.
    int qt = gridDim.x - 1 - blockIdx.x, h = blockIdx.y, b = blockIdx.z, g = h / (Hq / Hkv);
    int r = threadIdx.x / FA_TPR, j = threadIdx.x % FA_TPR, q0 = qt * FA_TILE, row = q0 + r;
    size_t qs = (size_t)Hq * hd, ks = (size_t)Hkv * hd;
    const float *kb = k + (size_t)b * T * ks + (size_t)g * hd, *vb = v + (size_t)b * T * ks + (size_t)g * hd;
    fa_load_tile(sQ, q + (size_t)b * T * qs + (size_t)h * hd, q0, T, qs, hd, bf16);
    const float *qr = sQ + r * ld;
    float m = -INFINITY, l = 0.0f, lse_r = 0.0f, acc[NACC];
    FA_UNROLL
    for (int i = 0; i < NACC; i++) acc[i] = 0.0f;
    for (int pass = bf16 ? 0 : 1; pass < 2; pass++) {  // pass 0 (bf16 only): the row statistics alone
        int stats = pass == 0, normalised = bf16 && !stats;
        for (int kt = 0; kt <= qt; kt++) {
            int k0 = kt * FA_TILE;
            __syncthreads();  // the previous tile's K, V and P are read by every
                              // thread
            fa_load_tile(sK, kb, k0, T, ks, hd, bf16);
            if (!stats) fa_load_tile(sV, vb, k0, T, ks, hd, bf16);
            __syncthreads();
            float s[FA_PER];
            FA_UNROLL
            for (int c = 0; c < FA_PER; c++) s[c] = 0.0f;
            for (int d = 0; d < hd; d++) {
                float x = qr[d];
                FA_UNROLL
                for (int c = 0; c < FA_PER; c++) s[c] += x * sK[(j + FA_TPR * c) * ld + d];
            }
            // Every tile holds a key <= row (key k0 <= q0), so the tile max is finite
            // and no exp sees inf - inf.
            float tmax = -INFINITY;
            FA_UNROLL
            for (int c = 0; c < FA_PER; c++) {
                s[c] = k0 + j + FA_TPR * c <= row ? s[c] * scale : -INFINITY;
                tmax = fmaxf(tmax, s[c]);
            }
            sMax[threadIdx.x] = tmax;
            __syncthreads();
            float mnew = m;
            for (int t = 0; t < FA_TPR; t++) mnew = fmaxf(mnew, sMax[r * FA_TPR + t]);
            float base = normalised ? lse_r : mnew;
            FA_UNROLL
            for (int c = 0; c < FA_PER; c++) sP[r * FA_SLD + j + FA_TPR * c] = expf(s[c] - base);
            __syncthreads();
            // The FA_TPR threads of a row sum the same values in the same order, so
            // they agree on l bit for bit.
            float alpha = normalised ? 1.0f : expf(m - mnew), sum = 0.0f;
            FA_UNROLL
            for (int i = 0; i < NACC; i++) acc[i] *= alpha;
            int kn = row < T ? fa_min(FA_TILE, row - k0 + 1) : 0;  // keys past the diagonal have p = 0
            const float *pr = sP + r * FA_SLD, *vc = sV + j;
            for (int key = 0; key < kn; key++) {
                float p = pr[key];
                sum += p;
                if (stats) continue;
                float pv = fa_round(p, bf16);
                FA_UNROLL
                for (int i = 0; i < NACC; i++)
                    if (j + FA_TPR * i < hd) acc[i] += pv * vc[key * ld + FA_TPR * i];
            }
            l = l * alpha + sum;
            m = mnew;
        }
        if (stats) lse_r = m + logf(l);
    }
    if (row < T) {
        // bf16: acc already sums normalised probabilities
        size_t o = ((size_t)b * T + row) * qs + (size_t)h * hd + j;
        float inv = bf16 ? 1.0f : 1.0f / l;
        FA_UNROLL
        for (int i = 0; i < NACC; i++)
            if (j + FA_TPR * i < hd) {
                float x = acc[i] * inv;
                out[o + FA_TPR * i] = x;
                if (out16) out16[o + FA_TPR * i] = __float2bfloat16_rn(x);
            }
        if (j == 0) lse[((size_t)b * Hq + h) * T + row] = bf16 ? lse_r : m + logf(l);
    }
}

// D[b, h, t] = dot(dout, out) of query row (b, t, h), which equals the softmax
// backward's rowsum(P * dP) (the flash backward never holds a whole row of P).
// Rows are [N, hd] contiguous; FA_TPR threads per row, partial sums combined in
// shared memory in a fixed order. fp32 only: with bf16 products the identity is
// off by the rounding of P in out, and D is summed as the CPU sums it
// (fa_backward_dq_kernel with ROWSUM).
__global__ static void fa_rowdot_kernel(float *D, const float *dout, const float *out, size_t N, int T, int Hq,
                                        int hd) {
    __shared__ float part[FA_THREADS];
    int r = threadIdx.x / FA_TPR, j = threadIdx.x % FA_TPR;
    for (size_t base = (size_t)blockIdx.x * FA_TILE; base < N; base += (size_t)gridDim.x * FA_TILE) {
        size_t n = base + r;
        float s = 0.0f;
        if (n < N)
            for (int d = j; d < hd; d += FA_TPR) s += dout[n * hd + d] * out[n * hd + d];
        part[threadIdx.x] = s;
        __syncthreads();
        if (j == 0 && n < N) {
            for (int t = 1; t < FA_TPR; t++) s += part[threadIdx.x + t];
            size_t bt = n / Hq, b = bt / T;
            int h = (int)(n % Hq), t = (int)(bt % T);
            D[(b * Hq + h) * T + t] = s;
        }
        __syncthreads();  // part is rewritten by the next rows
    }
}

// The backward's scores and dP of one thread: s[i] = x . X[j + FA_TPR i] and dp[i] = y . Y[j + FA_TPR i] over the
// thread's FA_PER rows of the shared tiles X and Y (row stride ld), x and y its own rows (the dK/dV kernel: its key's
// K and V rows against Q and dO; the dQ kernel: its query's Q and dO rows against K and V). Summed over d ascending,
// the forward's order.
__device__ static inline void fa_dot_pairs(float *s, float *dp, const float *x, const float *X, const float *y,
                                           const float *Y, int j, int ld, int hd) {
    FA_UNROLL
    for (int i = 0; i < FA_PER; i++) s[i] = dp[i] = 0.0f;
    for (int d = 0; d < hd; d++) {
        float xd = x[d], yd = y[d];
        FA_UNROLL
        for (int i = 0; i < FA_PER; i++) {
            s[i] += xd * X[(j + FA_TPR * i) * ld + d];
            dp[i] += yd * Y[(j + FA_TPR * i) * ld + d];
        }
    }
}

// P = exp(s * scale - lse) and dS = P (dP - D) scale of one (query row, key)
// pair, zero where masked. The score is summed in the forward's order (q * k
// products over d ascending), so P is the forward's exactly up to the division.
__device__ static inline void fa_p_ds(float *p, float *ds, float s, float dp, float lse_r, float D_r, int ok,
                                      float scale) {
    *p = ok ? expf(s * scale - lse_r) : 0.0f;
    *ds = ok ? *p * (dp - D_r) * scale : 0.0f;
}

// One block per (key tile, kv head, sequence): dK and dV of its keys accumulate
// in registers over the group's query heads and the query tiles at or after the
// key tile, then are written once (no atomics, no other writer).
template <int NACC>
__global__ static void fa_backward_dkdv_kernel(float *dk, float *dv, __nv_bfloat16 *dv16, const float *dout,
                                               const float *lse, const float *D, const float *q, const float *k,
                                               const float *v, int T, int Hq, int Hkv, int hd, int bf16, float scale) {
    extern __shared__ float fa_smem[];
    int ld = hd + 1;
    float *sK = fa_smem, *sV = sK + FA_TILE * ld, *sQ = sV + FA_TILE * ld, *sO = sQ + FA_TILE * ld;
    float *sP = sO + FA_TILE * ld, *sS = sP + FA_TILE * FA_SLD, *sL = sS + FA_TILE * FA_SLD, *sD = sL + FA_TILE;
    int kt = blockIdx.x, g = blockIdx.y, b = blockIdx.z,
        group = Hq / Hkv;  // the first key tiles (most work) first
    int c = threadIdx.x / FA_TPR, j = threadIdx.x % FA_TPR, k0 = kt * FA_TILE, key = k0 + c;
    int nqt = (T + FA_TILE - 1) / FA_TILE;
    size_t qs = (size_t)Hq * hd, ks = (size_t)Hkv * hd;
    fa_load_tile(sK, k + (size_t)b * T * ks + (size_t)g * hd, k0, T, ks, hd, bf16);
    fa_load_tile(sV, v + (size_t)b * T * ks + (size_t)g * hd, k0, T, ks, hd, bf16);
    const float *kr = sK + c * ld, *vr = sV + c * ld;
    float dK[NACC], dV[NACC];
    FA_UNROLL
    for (int i = 0; i < NACC; i++) dK[i] = dV[i] = 0.0f;
    for (int h = g * group; h < (g + 1) * group; h++) {
        const float *qb = q + (size_t)b * T * qs + (size_t)h * hd, *ob = dout + (size_t)b * T * qs + (size_t)h * hd;
        const float *lh = lse + ((size_t)b * Hq + h) * T, *Dh = D + ((size_t)b * Hq + h) * T;
        for (int qt = kt; qt < nqt; qt++) {
            int q0 = qt * FA_TILE;
            __syncthreads();  // the previous Q, dO, P and dS tiles are read by every
                              // thread
            fa_load_tile(sQ, qb, q0, T, qs, hd, bf16);
            fa_load_tile(sO, ob, q0, T, qs, hd, bf16);
            fa_load_rows(sL, sD, lh, Dh, q0, T);
            __syncthreads();
            float s[FA_PER], dp[FA_PER];
            fa_dot_pairs(s, dp, kr, sQ, vr, sO, j, ld, hd);
            FA_UNROLL
            for (int i = 0; i < FA_PER; i++) {
                int rr = j + FA_TPR * i, row = q0 + rr;
                float p, ds;
                fa_p_ds(&p, &ds, s[i], dp[i], sL[rr], sD[rr], row < T && key <= row, scale);
                sP[rr * FA_SLD + c] = fa_round(p, bf16);
                sS[rr * FA_SLD + c] = fa_round(ds, bf16);
            }
            __syncthreads();
            // rows before the key (diagonal tile) and past T contribute zeros
            int r_begin = key > q0 ? fa_min(key - q0, FA_TILE) : 0, r_end = fa_min(FA_TILE, T - q0);
            for (int rr = r_begin; rr < r_end; rr++) {
                float p = sP[rr * FA_SLD + c], ds = sS[rr * FA_SLD + c];
                const float *orow = sO + rr * ld + j, *qrow = sQ + rr * ld + j;
                FA_UNROLL
                for (int i = 0; i < NACC; i++)
                    if (j + FA_TPR * i < hd) {
                        dV[i] += p * orow[FA_TPR * i];
                        dK[i] += ds * qrow[FA_TPR * i];
                    }
            }
        }
    }
    if (key < T) {
        size_t off = ((size_t)b * T + key) * ks + (size_t)g * hd + j;
        FA_UNROLL
        for (int i = 0; i < NACC; i++)
            if (j + FA_TPR * i < hd) {
                dk[off + FA_TPR * i] = dK[i];
                dv[off + FA_TPR * i] = dV[i];
                if (dv16) dv16[off + FA_TPR * i] = __float2bfloat16_rn(dV[i]);
            }
    }
}

// One block per (query tile, query head, sequence): dQ = dS K over the key
// tiles up to the diagonal. P and dS are computed again here (the dK/dV kernel
// computed them too): the price of writing dQ without atomics. ROWSUM: instead
// of dQ, each row's D = rowsum(P * dP) into dq's place ([B, Hq, T]), as the
// CPU's softmax backward sums it (the bf16 backward: an extra pass over the
// scores, so that dS is formed from the same D as on the CPU).
template <int NACC, bool ROWSUM>
__global__ static void fa_backward_dq_kernel(float *dq, const float *dout, const float *lse, const float *D,
                                             const float *q, const float *k, const float *v, int T, int Hq, int Hkv,
                                             int hd, int bf16, float scale) {
    extern __shared__ float fa_smem[];
    int ld = hd + 1;
    float *sQ = fa_smem, *sO = sQ + FA_TILE * ld, *sK = sO + FA_TILE * ld, *sV = sK + FA_TILE * ld;
    float *sS = sV + FA_TILE * ld, *sL = sS + FA_TILE * FA_SLD, *sD = sL + FA_TILE;
    int qt = gridDim.x - 1 - blockIdx.x, h = blockIdx.y, b = blockIdx.z, g = h / (Hq / Hkv);
    int r = threadIdx.x / FA_TPR, j = threadIdx.x % FA_TPR, q0 = qt * FA_TILE, row = q0 + r;
    size_t qs = (size_t)Hq * hd, ks = (size_t)Hkv * hd;
    const float *kb = k + (size_t)b * T * ks + (size_t)g * hd, *vb = v + (size_t)b * T * ks + (size_t)g * hd;
    fa_load_tile(sQ, q + (size_t)b * T * qs + (size_t)h * hd, q0, T, qs, hd, bf16);
    fa_load_tile(sO, dout + (size_t)b * T * qs + (size_t)h * hd, q0, T, qs, hd, bf16);
    fa_load_rows(sL, sD, lse + ((size_t)b * Hq + h) * T, ROWSUM ? NULL : D + ((size_t)b * Hq + h) * T, q0, T);
    const float *qr = sQ + r * ld, *orow = sO + r * ld;
    float acc[NACC], rowsum = 0.0f;
    FA_UNROLL
    for (int i = 0; i < NACC; i++) acc[i] = 0.0f;
    for (int kt = 0; kt <= qt; kt++) {
        int k0 = kt * FA_TILE;
        __syncthreads();  // the previous K and dS tiles are read by every thread
                          // (first pass: Q, dO, lse, D complete)
        fa_load_tile(sK, kb, k0, T, ks, hd, bf16);
        fa_load_tile(sV, vb, k0, T, ks, hd, bf16);
        __syncthreads();
        float s[FA_PER], dp[FA_PER];
        fa_dot_pairs(s, dp, qr, sK, orow, sV, j, ld, hd);
        float lr = sL[r], Dr = sD[r];
        FA_UNROLL
        for (int c = 0; c < FA_PER; c++) {
            int kc = j + FA_TPR * c;
            float p, ds;
            fa_p_ds(&p, &ds, s[c], dp[c], lr, Dr, row < T && k0 + kc <= row, scale);
            if (ROWSUM)
                rowsum += p * dp[c];
            else
                sS[r * FA_SLD + kc] = fa_round(ds, bf16);
        }
        if (ROWSUM) continue;  // uniform across the block: every thread skips the same barrier
        __syncthreads();
        int kn = row < T ? fa_min(FA_TILE, row - k0 + 1) : 0;
        const float *dsr = sS + r * FA_SLD, *kc = sK + j;
        for (int key = 0; key < kn; key++) {
            float ds = dsr[key];
            FA_UNROLL
            for (int i = 0; i < NACC; i++)
                if (j + FA_TPR * i < hd) acc[i] += ds * kc[key * ld + FA_TPR * i];
        }
    }
    if (ROWSUM) {
        __syncthreads();  // sS is free: the row's FA_TPR partial sums meet there,
                          // added in a fixed order
        sS[r * FA_SLD + j] = rowsum;
        __syncthreads();
        if (j == 0 && row < T) {
            float sum = 0.0f;
            for (int t = 0; t < FA_TPR; t++) sum += sS[r * FA_SLD + t];
            dq[((size_t)b * Hq + h) * T + row] = sum;
        }
        return;
    }
    if (row < T) {
        float *o = dq + ((size_t)b * T + row) * qs + (size_t)h * hd + j;
        FA_UNROLL
        for (int i = 0; i < NACC; i++)
            if (j + FA_TPR * i < hd) o[FA_TPR * i] = acc[i];
    }
}

// Shared bytes: forward Q, K, V tiles + P tile + per-thread maxima; backward
// four head-vector tiles + P and dS tiles (dQ: dS only, sized the same) + lse
// and D. hd 64: 29 / 41 KB; hd 128: 53 / 73 KB; hd 256: 101 / 137 KB.
static size_t fa_forward_shared(int hd) {
    return sizeof(float) * ((size_t)3 * FA_TILE * (hd + 1) + FA_TILE * FA_SLD + FA_THREADS);
}
static size_t fa_backward_shared(int hd) {
    return sizeof(float) * ((size_t)4 * FA_TILE * (hd + 1) + 2 * FA_TILE * FA_SLD + 2 * FA_TILE);
}

static int fa_check(int B, int T, int Hq, int Hkv, int hd, Error *err) {
    if (B < 0 || T < 0 || Hkv < 1 || Hq < Hkv || Hq % Hkv != 0 || hd < 1 || hd > FA_MAX_HD)
        return error_set(err,
                         "cuda: flash attention: bad shape B %d T %d Hq %d Hkv %d "
                         "hd %d (hd at most %d)",
                         B, T, Hq, Hkv, hd, FA_MAX_HD);
    if (B > 65535 || Hq > 65535)
        return error_set(err, "cuda: flash attention: B %d or Hq %d above the grid limit 65535", B, Hq);
    return 0;
}

template <int NACC>
static int fa_forward_launch(float *out, __nv_bfloat16 *out16, float *lse, const float *q, const float *k,
                             const float *v, int B, int T, int Hq, int Hkv, int hd, int bf16, Error *err) {
    size_t shared = fa_forward_shared(hd);
    if (cuda_opt_in_shared(fa_forward_kernel<NACC>, shared, "flash attention forward", err)) return -1;
    dim3 grid((T + FA_TILE - 1) / FA_TILE, Hq, B);
    fa_forward_kernel<NACC>
        <<<grid, FA_THREADS, shared>>>(out, out16, lse, q, k, v, T, Hq, Hkv, hd, bf16, 1.0f / sqrtf((float)hd));
    return cuda_launch_check("flash attention forward", err);
}

template <int NACC>
static int fa_backward_launch(float *dq, float *dk, float *dv, __nv_bfloat16 *dv16, const float *dout, const float *out,
                              const float *lse, float *D, const float *q, const float *k, const float *v, int B, int T,
                              int Hq, int Hkv, int hd, int bf16, Error *err) {
    size_t shared = fa_backward_shared(hd);
    float scale = 1.0f / sqrtf((float)hd);
    if (cuda_opt_in_shared(fa_backward_dkdv_kernel<NACC>, shared, "flash attention backward dK/dV", err) ||
        cuda_opt_in_shared(fa_backward_dq_kernel<NACC, false>, shared, "flash attention backward dQ", err) ||
        cuda_opt_in_shared(fa_backward_dq_kernel<NACC, true>, shared, "flash attention backward rowsum", err))
        return -1;
    int tiles = (T + FA_TILE - 1) / FA_TILE;
    if (bf16) {
        fa_backward_dq_kernel<NACC, true><<<dim3(tiles, Hq, B), FA_THREADS, shared>>>(
            D, dout, lse, (const float *)NULL, q, k, v, T, Hq, Hkv, hd, bf16, scale);
    } else {
        size_t N = (size_t)B * T * Hq, blocks = (N + FA_TILE - 1) / FA_TILE;
        fa_rowdot_kernel<<<(unsigned)(blocks < 65535 ? blocks : 65535), FA_THREADS>>>(D, dout, out, N, T, Hq, hd);
    }
    if (cuda_launch_check("flash attention backward D", err)) return -1;
    fa_backward_dkdv_kernel<NACC>
        <<<dim3(tiles, Hkv, B), FA_THREADS, shared>>>(dk, dv, dv16, dout, lse, D, q, k, v, T, Hq, Hkv, hd, bf16, scale);
    if (cuda_launch_check("flash attention backward dK/dV", err)) return -1;
    fa_backward_dq_kernel<NACC, false>
        <<<dim3(tiles, Hq, B), FA_THREADS, shared>>>(dq, dout, lse, D, q, k, v, T, Hq, Hkv, hd, bf16, scale);
    return cuda_launch_check("flash attention backward dQ", err);
}

int cuda_flash_attention_tensor_cores(int hd, int bf16) { return bf16 && fa_tc_supported(hd); }

int cuda_flash_attention_forward(float *out, void *out16, float *lse, const float *q, const float *k, const float *v,
                                 int B, int T, int Hq, int Hkv, int hd, int bf16, Error *err) {
    __nv_bfloat16 *o16 = (__nv_bfloat16 *)out16;
    if (fa_check(B, T, Hq, Hkv, hd, err)) return -1;
    if (B == 0 || T == 0) return 0;
    if (cuda_flash_attention_tensor_cores(hd, bf16))
        return fa_tc_forward(out, out16, lse, q, k, v, B, T, Hq, Hkv, hd, err);
    // Accumulators per thread: hd / FA_TPR rounded up to the next instantiated
    // size.
    if (hd <= 32) return fa_forward_launch<8>(out, o16, lse, q, k, v, B, T, Hq, Hkv, hd, bf16, err);
    if (hd <= 64) return fa_forward_launch<16>(out, o16, lse, q, k, v, B, T, Hq, Hkv, hd, bf16, err);
    if (hd <= 128) return fa_forward_launch<32>(out, o16, lse, q, k, v, B, T, Hq, Hkv, hd, bf16, err);
    return fa_forward_launch<64>(out, o16, lse, q, k, v, B, T, Hq, Hkv, hd, bf16, err);
}

int cuda_flash_attention_backward(float *dq, float *dk, float *dv, void *dv16, const float *dout, const float *out,
                                  const float *lse, const float *q, const float *k, const float *v, int B, int T,
                                  int Hq, int Hkv, int hd, int bf16, float *work, Error *err) {
    __nv_bfloat16 *v16 = (__nv_bfloat16 *)dv16;
    if (fa_check(B, T, Hq, Hkv, hd, err)) return -1;
    if (B == 0 || T == 0) return 0;
    if (cuda_flash_attention_tensor_cores(hd, bf16))
        return fa_tc_backward(dq, dk, dv, dv16, dout, lse, q, k, v, B, T, Hq, Hkv, hd, work, err);
    if (hd <= 32)
        return fa_backward_launch<8>(dq, dk, dv, v16, dout, out, lse, work, q, k, v, B, T, Hq, Hkv, hd, bf16, err);
    if (hd <= 64)
        return fa_backward_launch<16>(dq, dk, dv, v16, dout, out, lse, work, q, k, v, B, T, Hq, Hkv, hd, bf16, err);
    if (hd <= 128)
        return fa_backward_launch<32>(dq, dk, dv, v16, dout, out, lse, work, q, k, v, B, T, Hq, Hkv, hd, bf16, err);
    return fa_backward_launch<64>(dq, dk, dv, v16, dout, out, lse, work, q, k, v, B, T, Hq, Hkv, hd, bf16, err);
}
