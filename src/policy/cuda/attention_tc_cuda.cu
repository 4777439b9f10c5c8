// Flash attention on tensor cores: the bf16 path of src/policy/attention_cuda.h (hd a multiple of 16, at most 128).
//
// Every product of the bf16 attention takes bf16 inputs and sums in fp32, which is what a tensor core's bf16 mma
// does, so the products run as 16x16x16 warp-level mma (nvcuda::wmma) on 64x64 tiles: the scores Q K^T, the weighted
// sum P V, and in the backward dP = dO V^T, dV = P^T dO, dK = dS^T Q, dQ = dS K. Same semantics as the CUDA-core
// kernels in attention_cuda.cu with bf16 set, only another summation order inside each product.
//
// The softmax is two-pass, as in that kernel's bf16 path: a first pass over the key tiles finds each row's
// log-sum-exp, the second forms the normalised p = exp(s - lse) directly, rounds it to bf16 (as the CPU rounds p / l)
// and multiplies. A side benefit on tensor cores: the output accumulators never need rescaling, so they stay in mma
// fragments whose layout across lanes the code never has to know (wmma leaves it unspecified).
//
// Geometry: a block is 4 warps (128 threads) over one 64-row tile (query rows in the forward and dQ kernels, key rows
// in the dK/dV kernel); warp w owns the tile's rows 16w .. 16w+15 in every product. Elementwise work (masking,
// exp, dS) goes through a shared fp32 score tile, thread t taking row t / 2 and half t % 2 of its 64 columns: the
// rows a warp's products read are the rows its own lanes wrote. Tiles of head vectors are bf16 with row stride hd + 8
// (rows 16 bytes apart, and wmma's 32-byte alignment for every 16x16 sub-tile); score tiles have stride 68 (fp32) and
// probability tiles 72 (bf16). Cooperation is through shared memory and __syncthreads only, every barrier reached by
// all threads, so the emulator in tests/cuda_emu/ (with its wmma in mma.h) runs the same code.
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <mma.h>
#include <stdint.h>

#include "core/cuda/cuda_common.cuh"
#include "policy/cuda/attention_tc.cuh"

using namespace nvcuda;

#ifdef __CUDACC__
#define TC_UNROLL _Pragma("unroll")
#else
#define TC_UNROLL
#endif

enum {
    TC_TILE = 64,
    TC_THREADS = 128,
    TC_HALF = TC_TILE / 2,  // columns of the score tile per thread
    TC_LDS = TC_TILE + 4,   // fp32 score tile row stride
    TC_LDP = TC_TILE + 8,   // bf16 probability tile row stride
    TC_MAX_HD = 128,
};

typedef __nv_bfloat16 bf16_t;
typedef wmma::fragment<wmma::accumulator, 16, 16, 16, float> AccFrag;
typedef wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16_t, wmma::row_major> AFrag;
typedef wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16_t, wmma::row_major> BFragRow;
typedef wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16_t, wmma::col_major> BFragCol;

// Bytes of a [TC_TILE][ld] tile of T, rounded up to 128 so that the next tile starts aligned.
template <typename T>
__host__ __device__ static inline size_t tc_tile_bytes(int ld) {
    return ((size_t)TC_TILE * ld * sizeof(T) + 127) / 128 * 128;
}

// Rows [r0, r0 + TC_TILE) of one head (row stride `stride` floats, hd columns) into a bf16 tile of stride hd + 8.
// Rows at or after T become zeros, so masked products read finite values. hd is a multiple of 16: with a 16-byte
// aligned source every row is too, and the loads are float4.
__device__ static inline void tc_load_tile(bf16_t *dst, const float *src, int r0, int T, size_t stride, int hd) {
    int ldh = hd + 8, quads = hd / 4;
    if (((uintptr_t)src & 15) == 0 && stride % 4 == 0) {
        for (int e = threadIdx.x; e < TC_TILE * quads; e += TC_THREADS) {
            int r = e / quads, d = (e - r * quads) * 4;
            float4 x = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            if (r0 + r < T) x = *(const float4 *)(src + (size_t)(r0 + r) * stride + d);
            bf16_t *o = dst + r * ldh + d;
            o[0] = __float2bfloat16_rn(x.x), o[1] = __float2bfloat16_rn(x.y);
            o[2] = __float2bfloat16_rn(x.z), o[3] = __float2bfloat16_rn(x.w);
        }
        return;
    }
    for (int e = threadIdx.x; e < TC_TILE * hd; e += TC_THREADS) {
        int r = e / hd, d = e - r * hd;
        dst[r * ldh + d] = __float2bfloat16_rn(r0 + r < T ? src[(size_t)(r0 + r) * stride + d] : 0.0f);
    }
}

// lse and D of rows [r0, r0 + TC_TILE) into shared memory (zeros past T; D NULL: zeros).
__device__ static inline void tc_load_rows(float *sL, float *sD, const float *lse, const float *D, int r0, int T) {
    int t = threadIdx.x, row = r0 + t;
    if (t < TC_TILE) {
        sL[t] = row < T ? lse[row] : 0.0f;
        sD[t] = row < T && D ? D[row] : 0.0f;
    }
}

// Warp w's rows of S = A B^T: S[16w .. 16w+15][0 .. 63] from A's rows 16w.. and all 64 rows of B (both bf16 tiles
// of stride hd + 8, hd columns), fp32 into the score tile.
__device__ static inline void tc_scores(float *S, const bf16_t *A, const bf16_t *B, int hd, int warp) {
    int ldh = hd + 8;
    AccFrag acc[TC_TILE / 16];
    TC_UNROLL
    for (int n = 0; n < TC_TILE / 16; n++) wmma::fill_fragment(acc[n], 0.0f);
    for (int d = 0; d < hd; d += 16) {
        AFrag a;
        wmma::load_matrix_sync(a, A + warp * 16 * ldh + d, ldh);
        TC_UNROLL
        for (int n = 0; n < TC_TILE / 16; n++) {
            BFragCol b;  // B^T's 16 x 16 block (d, key) is B's (key, d) block read column-major
            wmma::load_matrix_sync(b, B + n * 16 * ldh + d, ldh);
            wmma::mma_sync(acc[n], a, b, acc[n]);
        }
    }
    TC_UNROLL
    for (int n = 0; n < TC_TILE / 16; n++)
        wmma::store_matrix_sync(S + warp * 16 * TC_LDS + n * 16, acc[n], TC_LDS, wmma::mem_row_major);
}

// The backward's two score tiles, S = A B^T and dP = C D^T (warp w's rows), once the tiles just loaded are complete;
// ends with the score tiles complete.
__device__ static inline void tc_score_pair(float *S, float *dP, const bf16_t *A, const bf16_t *B, const bf16_t *C,
                                            const bf16_t *D, int hd, int warp) {
    __syncthreads();
    tc_scores(S, A, B, hd, warp);
    tc_scores(dP, C, D, hd, warp);
    __syncthreads();
}

// acc[f] (warp w's rows, head columns 16f .. 16f+15) += P[16w .., 0 .. 63] V[0 .. 63][16f ..]: P a bf16 probability
// tile (stride TC_LDP), V a bf16 head-vector tile; nf = hd / 16 of the NF fragments are live.
template <int NF>
__device__ static inline void tc_accumulate(AccFrag *acc, const bf16_t *P, const bf16_t *V, int hd, int warp) {
    int ldh = hd + 8, nf = hd / 16;
    for (int kk = 0; kk < TC_TILE; kk += 16) {
        AFrag a;
        wmma::load_matrix_sync(a, P + warp * 16 * TC_LDP + kk, TC_LDP);
        TC_UNROLL
        for (int f = 0; f < NF; f++) {
            if (f >= nf) break;
            BFragRow b;
            wmma::load_matrix_sync(b, V + kk * ldh + f * 16, ldh);
            wmma::mma_sync(acc[f], a, b, acc[f]);
        }
    }
}

// Warp w's accumulators (rows 16w.., hd columns) into a fp32 staging tile of stride hd + 4, then the tile's rows
// below T out to dst (rows of `stride` floats from r0). Starts and ends with a barrier: the staging area may alias
// tiles other warps were reading, and is read again by the caller's next use.
template <int NF>
__device__ static inline void tc_write_rows(float *dst, bf16_t *dst16, size_t stride, int r0, int T, float *stage,
                                            const AccFrag *acc, int hd, int warp) {
    int ldo = hd + 4, nf = hd / 16;
    __syncthreads();
    TC_UNROLL
    for (int f = 0; f < NF; f++) {
        if (f >= nf) break;
        wmma::store_matrix_sync(stage + warp * 16 * ldo + f * 16, acc[f], ldo, wmma::mem_row_major);
    }
    __syncthreads();
    for (int e = threadIdx.x; e < TC_TILE * hd; e += TC_THREADS) {
        int r = e / hd, d = e - r * hd;
        if (r0 + r >= T) continue;
        float x = stage[r * ldo + d];
        dst[(size_t)(r0 + r) * stride + d] = x;
        if (dst16) dst16[(size_t)(r0 + r) * stride + d] = __float2bfloat16_rn(x);
    }
    __syncthreads();
}

// One block per (query tile, query head, sequence); see the file comment for the two passes.
template <int NF>
__global__ static void fa_tc_forward_kernel(float *out, bf16_t *out16, float *lse, const float *q, const float *k,
                                            const float *v, int T, int Hq, int Hkv, int hd, float scale) {
    extern __shared__ __align__(128) unsigned char fa_tc_smem[];
    int ldh = hd + 8;
    unsigned char *p = fa_tc_smem;
    bf16_t *sQ = (bf16_t *)p, *sK = (bf16_t *)(p += tc_tile_bytes<bf16_t>(ldh));
    bf16_t *sV = (bf16_t *)(p += tc_tile_bytes<bf16_t>(ldh));
    float *sS = (float *)(p += tc_tile_bytes<bf16_t>(ldh));
    bf16_t *sP = (bf16_t *)(p += tc_tile_bytes<float>(TC_LDS));
    float *sStat = (float *)(p += tc_tile_bytes<bf16_t>(TC_LDP));  // 2 x TC_THREADS: the halves' (max, sum)
    // The last query tiles see the most keys: they start first, so the short ones fill the tail.
    int qt = gridDim.x - 1 - blockIdx.x, h = blockIdx.y, b = blockIdx.z, g = h / (Hq / Hkv);
    int warp = threadIdx.x / 32, r = threadIdx.x / 2, half = threadIdx.x % 2, q0 = qt * TC_TILE, row = q0 + r;
    size_t qs = (size_t)Hq * hd, ks = (size_t)Hkv * hd;
    const float *kb = k + (size_t)b * T * ks + (size_t)g * hd, *vb = v + (size_t)b * T * ks + (size_t)g * hd;
    tc_load_tile(sQ, q + (size_t)b * T * qs + (size_t)h * hd, q0, T, qs, hd);

    // Pass 1: each thread's running max and sum over its half of every key tile's columns.
    float m = -INFINITY, l = 0.0f;
    for (int kt = 0; kt <= qt; kt++) {
        int k0 = kt * TC_TILE, c0 = k0 + half * TC_HALF;
        __syncthreads();  // every warp is done reading the previous K tile
        tc_load_tile(sK, kb, k0, T, ks, hd);
        __syncthreads();
        tc_scores(sS, sQ, sK, hd, warp);
        __syncthreads();
        const float *sr = sS + r * TC_LDS + half * TC_HALF;
        float tmax = -INFINITY;
        for (int c = 0; c < TC_HALF; c++)
            if (c0 + c <= row) tmax = fmaxf(tmax, sr[c] * scale);
        if (tmax == -INFINITY) continue;  // this half is wholly past the diagonal
        float mnew = fmaxf(m, tmax), sum = 0.0f;
        for (int c = 0; c < TC_HALF; c++)
            if (c0 + c <= row) sum += expf(sr[c] * scale - mnew);
        l = l * expf(m - mnew) + sum;
        m = mnew;
    }
    sStat[threadIdx.x] = m;
    sStat[TC_THREADS + threadIdx.x] = l;
    __syncthreads();
    // Key 0 is in half 0 of every row, so m0 is finite.
    float m0 = sStat[2 * r], m1 = sStat[2 * r + 1], mx = fmaxf(m0, m1);
    float lse_r = mx + logf(sStat[TC_THREADS + 2 * r] * expf(m0 - mx) + sStat[TC_THREADS + 2 * r + 1] * expf(m1 - mx));

    // Pass 2: P = exp(s - lse), rounded to bf16, times V.
    AccFrag acc[NF];
    TC_UNROLL
    for (int f = 0; f < NF; f++) wmma::fill_fragment(acc[f], 0.0f);
    for (int kt = 0; kt <= qt; kt++) {
        int k0 = kt * TC_TILE, c0 = k0 + half * TC_HALF;
        __syncthreads();  // every warp is done reading the previous K, V and P tiles
        tc_load_tile(sK, kb, k0, T, ks, hd);
        tc_load_tile(sV, vb, k0, T, ks, hd);
        __syncthreads();
        tc_scores(sS, sQ, sK, hd, warp);
        __syncthreads();
        const float *sr = sS + r * TC_LDS + half * TC_HALF;
        bf16_t *pr = sP + r * TC_LDP + half * TC_HALF;
        for (int c = 0; c < TC_HALF; c++)
            pr[c] = __float2bfloat16_rn(c0 + c <= row ? expf(sr[c] * scale - lse_r) : 0.0f);
        __syncthreads();
        tc_accumulate<NF>(acc, sP, sV, hd, warp);
    }
    // K and V are done with: their tiles (2 x 64 x (hd + 8) bf16) hold the fp32 staging tile (64 x (hd + 4)).
    size_t o = (size_t)b * T * qs + (size_t)h * hd;
    tc_write_rows<NF>(out + o, out16 ? out16 + o : NULL, qs, q0, T, (float *)sK, acc, hd, warp);
    if (half == 0 && row < T) lse[((size_t)b * Hq + h) * T + row] = lse_r;
}

// The backward kernels' shared memory: four bf16 head-vector tiles (Q, dO, K, V in some order), two fp32 score tiles
// (S and dP), nprob bf16 probability tiles (dS; the dK/dV kernel also P), and per row of the tile lse, D and the
// halves' partial sums. Returns the pointers; bytes: the size (with smem NULL, only that).
struct TcBackwardTiles {
    bf16_t *head[4], *prob[2];
    float *score, *dscore, *lse, *D, *sum;
    size_t bytes;
};
__host__ __device__ static inline TcBackwardTiles tc_backward_tiles(unsigned char *smem, int hd, int nprob) {
    size_t off = 0, at[9];  // byte offsets: 4 head tiles, 2 score tiles, up to 2 probability tiles, the rows
    for (int i = 0; i < 9; i++) {
        at[i] = off;
        off += i < 4           ? tc_tile_bytes<bf16_t>(hd + 8)
               : i < 6         ? tc_tile_bytes<float>(TC_LDS)
               : i < 6 + nprob ? tc_tile_bytes<bf16_t>(TC_LDP)
                               : 0;
    }
    TcBackwardTiles t = {};
    t.bytes = off + sizeof(float) * (2 * TC_TILE + TC_THREADS);
    if (!smem) return t;
    for (int i = 0; i < 4; i++) t.head[i] = (bf16_t *)(smem + at[i]);
    t.score = (float *)(smem + at[4]), t.dscore = (float *)(smem + at[5]);
    for (int i = 0; i < nprob; i++) t.prob[i] = (bf16_t *)(smem + at[6 + i]);
    t.lse = (float *)(smem + at[8]), t.D = t.lse + TC_TILE, t.sum = t.D + TC_TILE;
    return t;
}

// One block per (query tile, query head, sequence): dQ = dS K over the key tiles up to the diagonal, dS = P (dP - D)
// scale rounded to bf16. ROWSUM: instead, each row's D = rowsum(P dP) (P unrounded, dP from bf16 dO and V) into dq's
// place ([B, Hq, T]), the sum the CPU's bf16 softmax backward forms.
template <int NF, bool ROWSUM>
__global__ static void fa_tc_dq_kernel(float *dq, const float *dout, const float *lse, const float *D, const float *q,
                                       const float *k, const float *v, int T, int Hq, int Hkv, int hd, float scale) {
    extern __shared__ __align__(128) unsigned char fa_tc_smem[];
    TcBackwardTiles t = tc_backward_tiles(fa_tc_smem, hd, 1);
    bf16_t *sQ = t.head[0], *sO = t.head[1], *sK = t.head[2], *sV = t.head[3], *sdS = t.prob[0];
    float *sS = t.score, *sdP = t.dscore, *sL = t.lse, *sD = t.D, *sSum = t.sum;
    int qt = gridDim.x - 1 - blockIdx.x, h = blockIdx.y, b = blockIdx.z, g = h / (Hq / Hkv);
    int warp = threadIdx.x / 32, r = threadIdx.x / 2, half = threadIdx.x % 2, q0 = qt * TC_TILE, row = q0 + r;
    size_t qs = (size_t)Hq * hd, ks = (size_t)Hkv * hd;
    const float *kb = k + (size_t)b * T * ks + (size_t)g * hd, *vb = v + (size_t)b * T * ks + (size_t)g * hd;
    tc_load_tile(sQ, q + (size_t)b * T * qs + (size_t)h * hd, q0, T, qs, hd);
    tc_load_tile(sO, dout + (size_t)b * T * qs + (size_t)h * hd, q0, T, qs, hd);
    tc_load_rows(sL, sD, lse + ((size_t)b * Hq + h) * T, ROWSUM ? NULL : D + ((size_t)b * Hq + h) * T, q0, T);
    AccFrag acc[ROWSUM ? 1 : NF];
    if (!ROWSUM) {
        TC_UNROLL
        for (int f = 0; f < NF; f++) wmma::fill_fragment(acc[f], 0.0f);
    }
    float rowsum = 0.0f;
    for (int kt = 0; kt <= qt; kt++) {
        int k0 = kt * TC_TILE, c0 = k0 + half * TC_HALF;
        __syncthreads();  // every warp is done with the previous K, V and dS tiles (first: Q, dO, lse, D complete)
        tc_load_tile(sK, kb, k0, T, ks, hd);
        tc_load_tile(sV, vb, k0, T, ks, hd);
        tc_score_pair(sS, sdP, sQ, sK, sO, sV, hd, warp);
        const float *sr = sS + r * TC_LDS + half * TC_HALF, *dpr = sdP + r * TC_LDS + half * TC_HALF;
        bf16_t *dsr = sdS + r * TC_LDP + half * TC_HALF;
        float lr = sL[r], Dr = sD[r];
        for (int c = 0; c < TC_HALF; c++) {
            int ok = row < T && c0 + c <= row;
            float pc = ok ? expf(sr[c] * scale - lr) : 0.0f;
            if (ROWSUM)
                rowsum += pc * dpr[c];
            else
                dsr[c] = __float2bfloat16_rn(ok ? pc * (dpr[c] - Dr) * scale : 0.0f);
        }
        if (ROWSUM) continue;  // uniform: every thread skips the same barrier
        __syncthreads();
        tc_accumulate<NF>(acc, sdS, sK, hd, warp);
    }
    if (ROWSUM) {  // the two halves of a row, added in a fixed order
        sSum[threadIdx.x] = rowsum;
        __syncthreads();
        if (half == 0 && row < T) dq[((size_t)b * Hq + h) * T + row] = sSum[threadIdx.x] + sSum[threadIdx.x + 1];
        return;
    }
    // The score tiles (2 x 64 x 68 fp32) hold the staging tile (64 x (hd + 4) fp32, hd <= 128).
    tc_write_rows<NF>(dq + (size_t)b * T * qs + (size_t)h * hd, NULL, qs, q0, T, sS, acc, hd, warp);
}

// One block per (key tile, kv head, sequence): dK and dV of its keys accumulate in mma fragments over the group's
// query heads and the query tiles from the diagonal on, then are written once (no atomics, no other writer). The
// products are transposed (S^T = K Q^T, dP^T = V dO^T) so that each warp's rows are its own keys.
template <int NF>
__global__ static void fa_tc_dkdv_kernel(float *dk, float *dv, bf16_t *dv16, const float *dout, const float *lse,
                                         const float *D, const float *q, const float *k, const float *v, int T, int Hq,
                                         int Hkv, int hd, float scale) {
    extern __shared__ __align__(128) unsigned char fa_tc_smem[];
    TcBackwardTiles t = tc_backward_tiles(fa_tc_smem, hd, 2);
    bf16_t *sK = t.head[0], *sV = t.head[1], *sQ = t.head[2], *sO = t.head[3], *sP = t.prob[0], *sdS = t.prob[1];
    float *sS = t.score, *sdP = t.dscore, *sL = t.lse, *sD = t.D;
    int kt = blockIdx.x, g = blockIdx.y, b = blockIdx.z, group = Hq / Hkv;  // the first key tiles (most work) first
    int warp = threadIdx.x / 32, c = threadIdx.x / 2, half = threadIdx.x % 2, k0 = kt * TC_TILE, key = k0 + c;
    int nqt = (T + TC_TILE - 1) / TC_TILE;
    size_t qs = (size_t)Hq * hd, ks = (size_t)Hkv * hd;
    tc_load_tile(sK, k + (size_t)b * T * ks + (size_t)g * hd, k0, T, ks, hd);
    tc_load_tile(sV, v + (size_t)b * T * ks + (size_t)g * hd, k0, T, ks, hd);
    AccFrag dK[NF], dV[NF];
    TC_UNROLL
    for (int f = 0; f < NF; f++) wmma::fill_fragment(dK[f], 0.0f), wmma::fill_fragment(dV[f], 0.0f);
    for (int h = g * group; h < (g + 1) * group; h++) {
        const float *qb = q + (size_t)b * T * qs + (size_t)h * hd, *ob = dout + (size_t)b * T * qs + (size_t)h * hd;
        const float *lh = lse + ((size_t)b * Hq + h) * T, *Dh = D + ((size_t)b * Hq + h) * T;
        for (int qt = kt; qt < nqt; qt++) {
            int q0 = qt * TC_TILE, r0 = half * TC_HALF;
            __syncthreads();  // every warp is done with the previous Q, dO, P and dS tiles
            tc_load_tile(sQ, qb, q0, T, qs, hd);
            tc_load_tile(sO, ob, q0, T, qs, hd);
            tc_load_rows(sL, sD, lh, Dh, q0, T);
            tc_score_pair(sS, sdP, sK, sQ, sV, sO, hd, warp);
            const float *sr = sS + c * TC_LDS, *dpr = sdP + c * TC_LDS;
            for (int i = r0; i < r0 + TC_HALF; i++) {
                int qrow = q0 + i, ok = qrow < T && key <= qrow;
                float pc = ok ? expf(sr[i] * scale - sL[i]) : 0.0f;
                sP[c * TC_LDP + i] = __float2bfloat16_rn(pc);
                sdS[c * TC_LDP + i] = __float2bfloat16_rn(ok ? pc * (dpr[i] - sD[i]) * scale : 0.0f);
            }
            __syncthreads();
            tc_accumulate<NF>(dV, sP, sO, hd, warp);
            tc_accumulate<NF>(dK, sdS, sQ, hd, warp);
        }
    }
    // The score tiles hold the staging tile (hd <= 128).
    size_t off = (size_t)b * T * ks + (size_t)g * hd;
    tc_write_rows<NF>(dk + off, NULL, ks, k0, T, sS, dK, hd, warp);
    tc_write_rows<NF>(dv + off, dv16 ? dv16 + off : NULL, ks, k0, T, sS, dV, hd, warp);
}

// Shared bytes: forward Q, K, V + scores + P + the halves' statistics; backward: tc_backward_tiles. At hd 128: 78
// KB forward, 113 KB dQ and 121 KB dK/dV (sm_80 allows 163 KB a block, sm_90 227 KB).
static size_t fa_tc_forward_shared(int hd) {
    return 3 * tc_tile_bytes<bf16_t>(hd + 8) + tc_tile_bytes<float>(TC_LDS) + tc_tile_bytes<bf16_t>(TC_LDP) +
           sizeof(float) * 2 * TC_THREADS;
}

int fa_tc_supported(int hd) { return hd >= 16 && hd <= TC_MAX_HD && hd % 16 == 0; }

template <int NF>
static int fa_tc_forward_launch(float *out, bf16_t *out16, float *lse, const float *q, const float *k, const float *v,
                                int B, int T, int Hq, int Hkv, int hd, Error *err) {
    size_t shared = fa_tc_forward_shared(hd);
    if (cuda_opt_in_shared(fa_tc_forward_kernel<NF>, shared, "flash attention forward (tensor cores)", err)) return -1;
    dim3 grid((T + TC_TILE - 1) / TC_TILE, Hq, B);
    fa_tc_forward_kernel<NF>
        <<<grid, TC_THREADS, shared>>>(out, out16, lse, q, k, v, T, Hq, Hkv, hd, 1.0f / sqrtf((float)hd));
    return cuda_launch_check("flash attention forward (tensor cores)", err);
}

template <int NF>
static int fa_tc_backward_launch(float *dq, float *dk, float *dv, bf16_t *dv16, const float *dout, const float *lse,
                                 float *D, const float *q, const float *k, const float *v, int B, int T, int Hq,
                                 int Hkv, int hd, Error *err) {
    size_t dq_shared = tc_backward_tiles(NULL, hd, 1).bytes, dkdv_shared = tc_backward_tiles(NULL, hd, 2).bytes;
    float scale = 1.0f / sqrtf((float)hd);
    if (cuda_opt_in_shared(fa_tc_dq_kernel<NF, true>, dq_shared, "flash attention backward D (tensor cores)", err) ||
        cuda_opt_in_shared(fa_tc_dq_kernel<NF, false>, dq_shared, "flash attention backward dQ (tensor cores)", err) ||
        cuda_opt_in_shared(fa_tc_dkdv_kernel<NF>, dkdv_shared, "flash attention backward dK/dV (tensor cores)", err))
        return -1;
    int tiles = (T + TC_TILE - 1) / TC_TILE;
    fa_tc_dq_kernel<NF, true><<<dim3(tiles, Hq, B), TC_THREADS, dq_shared>>>(D, dout, lse, (const float *)NULL, q, k, v,
                                                                             T, Hq, Hkv, hd, scale);
    if (cuda_launch_check("flash attention backward D (tensor cores)", err)) return -1;
    fa_tc_dkdv_kernel<NF>
        <<<dim3(tiles, Hkv, B), TC_THREADS, dkdv_shared>>>(dk, dv, dv16, dout, lse, D, q, k, v, T, Hq, Hkv, hd, scale);
    if (cuda_launch_check("flash attention backward dK/dV (tensor cores)", err)) return -1;
    fa_tc_dq_kernel<NF, false>
        <<<dim3(tiles, Hq, B), TC_THREADS, dq_shared>>>(dq, dout, lse, D, q, k, v, T, Hq, Hkv, hd, scale);
    return cuda_launch_check("flash attention backward dQ (tensor cores)", err);
}

// Fragments per warp: hd / 16 rounded up to the next instantiated count.
int fa_tc_forward(float *out, void *out16, float *lse, const float *q, const float *k, const float *v, int B, int T,
                  int Hq, int Hkv, int hd, Error *err) {
    bf16_t *o16 = (bf16_t *)out16;
    if (hd <= 64) return fa_tc_forward_launch<4>(out, o16, lse, q, k, v, B, T, Hq, Hkv, hd, err);
    return fa_tc_forward_launch<8>(out, o16, lse, q, k, v, B, T, Hq, Hkv, hd, err);
}

int fa_tc_backward(float *dq, float *dk, float *dv, void *dv16, const float *dout, const float *lse, const float *q,
                   const float *k, const float *v, int B, int T, int Hq, int Hkv, int hd, float *work, Error *err) {
    bf16_t *v16 = (bf16_t *)dv16;
    if (hd <= 64) return fa_tc_backward_launch<4>(dq, dk, dv, v16, dout, lse, work, q, k, v, B, T, Hq, Hkv, hd, err);
    return fa_tc_backward_launch<8>(dq, dk, dv, v16, dout, lse, work, q, k, v, B, T, Hq, Hkv, hd, err);
}
