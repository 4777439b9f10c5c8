#include "core/gemm_bf16.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/bf16.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define PIONRL_X86 1
#endif

// Tile of C computed by one kernel call: MR rows x NR columns (NR = two 16-lane vectors). 24
// accumulators + 2 B vectors + 1 broadcast fit the 32 vector registers; 24 independent dot products
// per k pair cover the instruction's latency.
enum { NR = 32, MR = 12, A_CHUNK_BYTES = 192 * 1024, A_SLAB_BYTES = 4 << 20 };

static inline uint32_t to_bf16(float f) { return bf16_from_f32(f); }

// the two bf16 values of a packed pair (k even in the low half)
static inline float bf16_lo(uint32_t p) { return bf16_to_f32((uint16_t)p); }
static inline float bf16_hi(uint32_t p) { return bf16_to_f32((uint16_t)(p >> 16)); }

static inline int pairs_of(int k) { return (k + 1) / 2; }

// Row stride of packed A in pairs: an odd number of 64-byte lines, so the MR rows a tile reads
// side by side fall in different L1 sets (a power-of-two stride would put them all in one).
static inline int a_stride(int k) {
    int lines = (pairs_of(k) + 15) / 16;
    return (lines | 1) * 16;
}

size_t bf16_packed_bytes(int n, int k) { return (size_t)((n + NR - 1) / NR) * pairs_of(k) * NR * sizeof(uint32_t); }

static inline uint32_t pair_of(float lo, float hi) { return to_bf16(lo) | to_bf16(hi) << 16; }

// Packing stored rows into panels (B) or stored columns into rows (transposed A) is a transpose of
// 32-bit pairs. Done a pair at a time it is a scatter of 4-byte stores; with AVX-512 a block of
// 16 x 16 pairs is converted with vector loads, transposed in registers and stored as whole lines.
#ifdef PIONRL_X86
#define AVX512_TARGET __attribute__((target("avx512f")))

static int has_avx512f(void) {
    static int has = -1;  // the CPU does not change under a running process
    if (has < 0) {
        __builtin_cpu_init();
        has = __builtin_cpu_supports("avx512f") != 0;
    }
    return has;
}

// bf16_from_f32 on 16 lanes, the bf16 left in the high half of each lane.
AVX512_TARGET static inline __m512i round_bf16_hi(__m512 x) {
    __m512i u = _mm512_castps_si512(x);
    __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7FFFFFFF)),
                                            _mm512_set1_epi32(0x7F800000));
    __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7FFF)));
    return _mm512_mask_or_epi32(r, nan, u, _mm512_set1_epi32(0x00400000));
}

// 16 pairs from two vectors of 16 values: lo[i] | hi[i] << 16.
AVX512_TARGET static inline __m512i pairs_split(const float *lo, const float *hi) {
    __m512i l = _mm512_srli_epi32(round_bf16_hi(_mm512_loadu_ps(lo)), 16);
    __m512i h = _mm512_and_si512(round_bf16_hi(_mm512_loadu_ps(hi)), _mm512_set1_epi32((int)0xFFFF0000u));
    return _mm512_or_si512(l, h);
}

// 16 pairs from 32 consecutive values (x[2i] low, x[2i+1] high).
AVX512_TARGET static inline __m512i pairs_interleaved(const float *x) {
    __m256i a = _mm512_cvtepi32_epi16(_mm512_srli_epi32(round_bf16_hi(_mm512_loadu_ps(x)), 16));
    __m256i b = _mm512_cvtepi32_epi16(_mm512_srli_epi32(round_bf16_hi(_mm512_loadu_ps(x + 16)), 16));
    return _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1);
}

// r[i][j] <- r[j][i] for 16 vectors of 16 32-bit lanes.
AVX512_TARGET static inline void transpose16(__m512i r[16]) {
    __m512i t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
        r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
        r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
        r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
    }
    for (int h = 0; h < 16; h += 8)
        for (int i = 0; i < 4; i++) {
            t[h + i] = _mm512_shuffle_i32x4(r[h + i], r[h + i + 4], 0x88);
            t[h + i + 4] = _mm512_shuffle_i32x4(r[h + i], r[h + i + 4], 0xDD);
        }
    for (int i = 0; i < 8; i++) {
        r[i] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0x88);
        r[i + 8] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0xDD);
    }
}

// Pairs [0, 16 * (k / 32)) of a full panel: rows j0 .. j0+15 of src (stored n x k) into lanes
// j0 .. j0+15 of d (NR lanes per pair). Returns the number of pairs done.
AVX512_TARGET static int pack_b_panel_avx512(uint32_t *d, const float *src, int ld, int k) {
    int blocks = k / 32;
    for (int j0 = 0; j0 < NR; j0 += 16)
        for (int qb = 0; qb < blocks; qb++) {
            __m512i v[16];
            for (int i = 0; i < 16; i++) v[i] = pairs_interleaved(src + (size_t)(j0 + i) * ld + 32 * qb);
            transpose16(v);
            for (int i = 0; i < 16; i++) _mm512_storeu_si512(d + (size_t)(16 * qb + i) * NR + j0, v[i]);
        }
    return 16 * blocks;
}

// Rows r0 .. r0+15 of packed A from A stored k x m (columns r0 .. r0+15): pairs [0, 16 * (k / 32)).
AVX512_TARGET static int pack_a_rows_avx512(uint32_t *dst, int as, const float *A, int lda, int r0, int k) {
    int blocks = k / 32;
    for (int qb = 0; qb < blocks; qb++) {
        __m512i v[16];
        for (int i = 0; i < 16; i++) {
            const float *lo = A + (size_t)(32 * qb + 2 * i) * lda + r0;
            v[i] = pairs_split(lo, lo + lda);
        }
        transpose16(v);
        for (int i = 0; i < 16; i++) _mm512_storeu_si512(dst + (size_t)(r0 + i) * as + 16 * qb, v[i]);
    }
    return 16 * blocks;
}
#else
static int has_avx512f(void) { return 0; }
static int pack_b_panel_avx512(uint32_t *d, const float *src, int ld, int k) { return 0; }
static int pack_a_rows_avx512(uint32_t *dst, int as, const float *A, int lda, int r0, int k) { return 0; }
#endif

// Panels of NR rows of B. Stored as is, a row's k values are contiguous: each row converts in one
// vectorised pass and lands in its lane of the panel. Stored transposed, the two values of a pair
// are two contiguous source rows, so the panel fills a lane vector at a time.
static void pack_b_into(uint32_t *dst, const float *src, int ld, int trans, int n, int k) {
    int kq = pairs_of(k), np = (n + NR - 1) / NR, full = k / 2, fast = has_avx512f();
#pragma omp parallel for schedule(static)
    for (int p = 0; p < np; p++) {
        uint32_t *d = dst + (size_t)p * kq * NR;
        int rows = n - p * NR < NR ? n - p * NR : NR;
        if (!trans) {
            int q0 = rows == NR && fast ? pack_b_panel_avx512(d, src + (size_t)p * NR * ld, ld, k) : 0;
            for (int j = 0; j < rows; j++) {
                const float *row = src + (size_t)(p * NR + j) * ld;
#pragma omp simd
                for (int q = q0; q < full; q++) d[(size_t)q * NR + j] = pair_of(row[2 * q], row[2 * q + 1]);
                if (k & 1) d[(size_t)full * NR + j] = to_bf16(row[k - 1]);
            }
        } else {
            for (int q = 0; q < kq; q++) {
                const float *lo = src + (size_t)(2 * q) * ld + (size_t)p * NR, *hi = lo + ld;
                uint32_t *dq = d + (size_t)q * NR;
                if (2 * q + 1 < k) {
#pragma omp simd
                    for (int j = 0; j < rows; j++) dq[j] = pair_of(lo[j], hi[j]);
                } else {
                    for (int j = 0; j < rows; j++) dq[j] = to_bf16(lo[j]);
                }
            }
        }
        for (int q = 0; q < kq && rows < NR; q++)
            for (int j = rows; j < NR; j++) d[(size_t)q * NR + j] = 0;
    }
}

int bf16_pack_b(Bf16Packed *p, const float *src, int ld, int trans, int n, int k, Error *err) {
    memset(p, 0, sizeof *p);
    if (n <= 0 || k <= 0) return error_set(err, "bf16 pack: shape %d x %d must be positive", n, k);
    p->data = malloc(bf16_packed_bytes(n, k));
    if (!p->data) return error_set(err, "bf16 pack: out of memory (%.1f MB)", bf16_packed_bytes(n, k) / 1e6);
    p->n = n;
    p->k = k;
    pack_b_into(p->data, src, ld, trans, n, k);
    return 0;
}

void bf16_packed_free(Bf16Packed *p) {
    free(p->data);
    memset(p, 0, sizeof *p);
}

// Pairs [q0, kq) of packed rows [r0, r1) from A stored k x m, a pair at a time across the rows:
// the reads along a source row are contiguous.
static void pack_a_cols(uint32_t *dst, int as, const float *A, int lda, int r0, int r1, int q0, int k) {
    for (int q = q0; q < pairs_of(k); q++) {
        const float *lo = A + (size_t)(2 * q) * lda, *hi = lo + lda;
        if (2 * q + 1 < k) {
#pragma omp simd
            for (int r = r0; r < r1; r++) dst[(size_t)r * as + q] = pair_of(lo[r], hi[r]);
        } else {
            for (int r = r0; r < r1; r++) dst[(size_t)r * as + q] = to_bf16(lo[r]);
        }
    }
}

// A (m x k) as m rows of k pairs (the bf16 matrix itself, k padded to even; row stride
// a_stride), on the calling thread. Stored rows convert in one vectorised pass. Stored transposed
// (k x m), the pair of a row is two contiguous source rows: blocks of 64 output rows go 16 x 16
// pairs at a time through the register transpose (AVX-512), the rest a pair at a time across the
// block, so the reads are contiguous and the 64 destination lines stay in L1.
static void pack_a_rows(uint32_t *dst, const float *A, int lda, int trans, int m, int k) {
    int as = a_stride(k), full = k / 2;
    if (!trans) {
        for (int r = 0; r < m; r++) {
            uint32_t *d = dst + (size_t)r * as;
            const float *a = A + (size_t)r * lda;
#pragma omp simd
            for (int q = 0; q < full; q++) d[q] = pair_of(a[2 * q], a[2 * q + 1]);
            if (k & 1) d[full] = to_bf16(a[k - 1]);
        }
        return;
    }
    int fast = has_avx512f();
    for (int b0 = 0; b0 < m; b0 += 64) {
        int b1 = b0 + 64 < m ? b0 + 64 : m, v1 = b0, q0 = 0;
        for (; fast && v1 + 16 <= b1; v1 += 16) q0 = pack_a_rows_avx512(dst, as, A, lda, v1, k);
        pack_a_cols(dst, as, A, lda, b0, v1, q0, k);  // pairs the 16 x 16 blocks left over
        pack_a_cols(dst, as, A, lda, v1, b1, 0, k);   // rows short of 16
    }
}

// pack_a_rows with the rows split across threads.
static void pack_a_into(uint32_t *dst, const float *A, int lda, int trans, int m, int k) {
    int as = a_stride(k), nb = (m + 63) / 64;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < nb; b++) {
        int r0 = b * 64, rows = m - r0 < 64 ? m - r0 : 64;
        pack_a_rows(dst + (size_t)r0 * as, trans ? A + r0 : A + (size_t)r0 * lda, lda, trans, rows, k);
    }
}

// One tile in portable C: the same sums as VDPBF16PS (odd element's product first, both exact
// products of bf16 values added in fp32).
static void tile_portable(int mr, const uint32_t *a, int kq, const uint32_t *b, float *c, int ldc, int ncols,
                          float alpha, int accumulate) {
    float acc[MR][NR];
    int as = a_stride(2 * kq);
    memset(acc, 0, sizeof acc);
    for (int q = 0; q < kq; q++) {
        const uint32_t *bq = b + (size_t)q * NR;
        for (int r = 0; r < mr; r++) {
            uint32_t av = a[(size_t)r * as + q];
            float alo = bf16_lo(av), ahi = bf16_hi(av);
#pragma omp simd
            for (int j = 0; j < NR; j++) {
                acc[r][j] += ahi * bf16_hi(bq[j]);
                acc[r][j] += alo * bf16_lo(bq[j]);
            }
        }
    }
    for (int r = 0; r < mr; r++) {
        float *cr = c + (size_t)r * ldc;
        for (int j = 0; j < ncols; j++) cr[j] = accumulate ? cr[j] + alpha * acc[r][j] : alpha * acc[r][j];
    }
}

#ifdef PIONRL_X86
#define BF16_TARGET __attribute__((target("avx512f,avx512bf16")))

// MR_ is a constant at every call site (see tile_native), so the accumulator arrays live in registers.
BF16_TARGET static inline __attribute__((always_inline)) void tile_avx512(const int MR_, const uint32_t *a, int kq,
                                                                          const uint32_t *b, float *c, int ldc,
                                                                          int ncols, float alpha,
                                                                          int accumulate) {
    __m512 c0[MR], c1[MR];
    int as = a_stride(2 * kq);
#pragma GCC unroll 12
    for (int r = 0; r < MR_; r++) c0[r] = c1[r] = _mm512_setzero_ps();
    for (int q = 0; q < kq; q++) {
        __m512bh b0 = (__m512bh)_mm512_loadu_si512(b + (size_t)q * NR);
        __m512bh b1 = (__m512bh)_mm512_loadu_si512(b + (size_t)q * NR + 16);
#pragma GCC unroll 12
        for (int r = 0; r < MR_; r++) {
            __m512bh av = (__m512bh)_mm512_set1_epi32((int)a[(size_t)r * as + q]);
            c0[r] = _mm512_dpbf16_ps(c0[r], av, b0);
            c1[r] = _mm512_dpbf16_ps(c1[r], av, b1);
        }
    }
    __mmask16 m0 = ncols >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << ncols) - 1);
    __mmask16 m1 = ncols >= 32 ? (__mmask16)0xffff : ncols > 16 ? (__mmask16)((1u << (ncols - 16)) - 1) : 0;
    __m512 va = _mm512_set1_ps(alpha);
#pragma GCC unroll 12
    for (int r = 0; r < MR_; r++) {
        float *cr = c + (size_t)r * ldc;
        c0[r] = _mm512_mul_ps(c0[r], va);
        c1[r] = _mm512_mul_ps(c1[r], va);
        if (accumulate) {
            c0[r] = _mm512_add_ps(c0[r], _mm512_maskz_loadu_ps(m0, cr));
            c1[r] = _mm512_add_ps(c1[r], _mm512_maskz_loadu_ps(m1, cr + 16));
        }
        _mm512_mask_storeu_ps(cr, m0, c0[r]);
        _mm512_mask_storeu_ps(cr + 16, m1, c1[r]);
    }
}

BF16_TARGET static void tile_native(int mr, const uint32_t *a, int kq, const uint32_t *b, float *c, int ldc,
                                    int ncols, float alpha, int accumulate) {
    switch (mr) {
        case 12: tile_avx512(12, a, kq, b, c, ldc, ncols, alpha, accumulate); break;
        case 11: tile_avx512(11, a, kq, b, c, ldc, ncols, alpha, accumulate); break;
        case 10: tile_avx512(10, a, kq, b, c, ldc, ncols, alpha, accumulate); break;
        case 9: tile_avx512(9, a, kq, b, c, ldc, ncols, alpha, accumulate); break;
        case 8: tile_avx512(8, a, kq, b, c, ldc, ncols, alpha, accumulate); break;
        case 7: tile_avx512(7, a, kq, b, c, ldc, ncols, alpha, accumulate); break;
        case 6: tile_avx512(6, a, kq, b, c, ldc, ncols, alpha, accumulate); break;
        case 5: tile_avx512(5, a, kq, b, c, ldc, ncols, alpha, accumulate); break;
        case 4: tile_avx512(4, a, kq, b, c, ldc, ncols, alpha, accumulate); break;
        case 3: tile_avx512(3, a, kq, b, c, ldc, ncols, alpha, accumulate); break;
        case 2: tile_avx512(2, a, kq, b, c, ldc, ncols, alpha, accumulate); break;
        default: tile_avx512(1, a, kq, b, c, ldc, ncols, alpha, accumulate); break;
    }
}

int bf16_native(void) { return has_avx512f() && __builtin_cpu_supports("avx512bf16"); }
#else
static void tile_native(int mr, const uint32_t *a, int kq, const uint32_t *b, float *c, int ldc, int ncols,
                        float alpha, int accumulate) {
    tile_portable(mr, a, kq, b, c, ldc, ncols, alpha, accumulate);
}

int bf16_native(void) { return 0; }
#endif

// Rows of A in chunks of MR blocks whose packed A stays in L2 while every B panel passes over it.
static int chunk_blocks(int k) {
    int blocks = A_CHUNK_BYTES / (a_stride(k) * MR * (int)sizeof(uint32_t));
    return blocks < 1 ? 1 : blocks;
}

static void run_chunk(float *C, int ldc, float alpha, int accumulate, const uint32_t *ap, int rows,
                      const Bf16Packed *B, int p0, int p1, int native) {
    int kq = pairs_of(B->k), as = a_stride(B->k);
    for (int p = p0; p < p1; p++) {
        const uint32_t *bp = B->data + (size_t)p * kq * NR;
        int ncols = B->n - p * NR < NR ? B->n - p * NR : NR;
        for (int r = 0; r < rows; r += MR) {
            int mr = rows - r < MR ? rows - r : MR;
            float *c = C + (size_t)r * ldc + (size_t)p * NR;
            if (native)
                tile_native(mr, ap + (size_t)r * as, kq, bp, c, ldc, ncols, alpha, accumulate);
            else
                tile_portable(mr, ap + (size_t)r * as, kq, bp, c, ldc, ncols, alpha, accumulate);
        }
    }
}

// Few rows (decode): A is packed once and shared, and the (chunk, panel) pairs are split across
// threads, so the panels of B spread the work.
static void run_shared(float *C, int ldc, float alpha, int accumulate, const uint32_t *ap, int m,
                       const Bf16Packed *B, int native) {
    int np = (B->n + NR - 1) / NR, mb = (m + MR - 1) / MR, per_chunk = chunk_blocks(B->k);
    int nch = (mb + per_chunk - 1) / per_chunk;
#pragma omp parallel for collapse(2) schedule(dynamic)
    for (int ch = 0; ch < nch; ch++) {
        for (int p = 0; p < np; p++) {
            int r0 = ch * per_chunk * MR, rows = m - r0 < per_chunk * MR ? m - r0 : per_chunk * MR;
            run_chunk(C + (size_t)r0 * ldc, ldc, alpha, accumulate, ap + (size_t)r0 * a_stride(B->k), rows, B, p,
                      p + 1, native);
        }
    }
}

// Many rows (training): each thread packs a chunk of A into its own buffer, where it stays in L2,
// and runs every panel of B over it; packing and products share one parallel region. Chunks are
// whole 48-row groups when A is stored transposed (the register transpose goes 16 columns at a
// time) and at least four per thread, for the dynamic schedule to even out.
static void run_fused(float *C, int ldc, float alpha, int accumulate, const float *A, int lda, int trans_a, int m,
                      const Bf16Packed *B, int native, int nt, int chunk_rows, uint32_t *bufs) {
    int np = (B->n + NR - 1) / NR, nch = (m + chunk_rows - 1) / chunk_rows;
    size_t buf_words = (size_t)chunk_rows * a_stride(B->k);
#pragma omp parallel for num_threads(nt) schedule(dynamic)
    for (int ch = 0; ch < nch; ch++) {
        uint32_t *ap = bufs + (size_t)omp_get_thread_num() * buf_words;
        int r0 = ch * chunk_rows, rows = m - r0 < chunk_rows ? m - r0 : chunk_rows;
        pack_a_rows(ap, trans_a ? A + r0 : A + (size_t)r0 * lda, lda, trans_a, rows, B->k);
        run_chunk(C + (size_t)r0 * ldc, ldc, alpha, accumulate, ap, rows, B, 0, np, native);
    }
}

// Rows per chunk for run_fused, or 0 when there are too few rows to give each thread four chunks.
static int fused_chunk_rows(int m, int k, int trans_a, int nt) {
    int unit = trans_a ? 4 * MR : MR;  // 48 rows: whole MR blocks and 16-column groups
    int units = (m + unit - 1) / unit, want = 4 * nt;
    if (units < want) return 0;
    int per = chunk_blocks(k) * MR / unit;
    if (per < 1) per = 1;
    int nch = (units + per - 1) / per;
    if (nch < want) nch = want;
    return (units + nch - 1) / nch * unit;
}

// Otherwise A is packed a slab of rows at a time (at most A_SLAB_BYTES packed): a whole large
// operand (the 2048 x 8192 gradient of the logits, 34 MB) would be a fresh mapping page-faulted in
// on every call, and the slab buffer is reused across slabs.
static int gemm_run(float *C, int ldc, float alpha, int accumulate, const float *A, int lda, int trans_a, int m,
                    const Bf16Packed *B, int native) {
    if (m <= 0) return 0;
    size_t row_bytes = (size_t)a_stride(B->k) * sizeof(uint32_t);
    int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
    int chunk_rows = fused_chunk_rows(m, B->k, trans_a, nt);
    if (chunk_rows) {
        uint32_t *bufs = malloc((size_t)nt * chunk_rows * row_bytes);
        if (!bufs) return -1;
        run_fused(C, ldc, alpha, accumulate, A, lda, trans_a, m, B, native, nt, chunk_rows, bufs);
        free(bufs);
        return 0;
    }
    int slab = (int)(A_SLAB_BYTES / row_bytes) / MR * MR;
    if (slab < MR) slab = MR;
    if (slab > m) slab = m;
    uint32_t *ap = malloc((size_t)slab * row_bytes);
    if (!ap) return -1;
    for (int r0 = 0; r0 < m; r0 += slab) {
        int rows = m - r0 < slab ? m - r0 : slab;
        const float *a = trans_a ? A + r0 : A + (size_t)r0 * lda;
        pack_a_into(ap, a, lda, trans_a, rows, B->k);
        run_shared(C + (size_t)r0 * ldc, ldc, alpha, accumulate, ap, rows, B, native);
    }
    free(ap);
    return 0;
}

int gemm_bf16(float *C, int ldc, float alpha, int accumulate, const float *A, int lda, int trans_a, int m,
              const Bf16Packed *B) {
    static int native = -1;  // the CPU does not change under a running process
    if (native < 0) native = bf16_native();
    return gemm_run(C, ldc, alpha, accumulate, A, lda, trans_a, m, B, native);
}

int gemm_bf16_portable(float *C, int ldc, float alpha, int accumulate, const float *A, int lda, int trans_a, int m,
                       const Bf16Packed *B) {
    return gemm_run(C, ldc, alpha, accumulate, A, lda, trans_a, m, B, 0);
}

int gemm_bf16_nt(float *C, int ldc, float alpha, int accumulate, const float *A, int lda, int trans_a, int m,
                 const float *B, int ldb, int trans_b, int n, int k) {
    if (m <= 0 || n <= 0 || k <= 0) return 0;
    Bf16Packed pb = {n, k, malloc(bf16_packed_bytes(n, k))};
    if (!pb.data) return -1;
    pack_b_into(pb.data, B, ldb, trans_b, n, k);
    int rc = gemm_bf16(C, ldc, alpha, accumulate, A, lda, trans_a, m, &pb);
    free(pb.data);
    return rc;
}
