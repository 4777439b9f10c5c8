#include "policy/qwen_decode.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/bf16.h"
#include "core/blas.h"
#include "policy/ops.h"

// K rows are padded to whole 16-lane vectors, so the score loop never runs a scalar remainder.
static int k_row_of(int max_len) { return (max_len + 15) / 16 * 16; }

size_t qwen_kv_bytes_ex(const QwenConfig *c, int num_slots, int max_len, int max_tokens, int bf16) {
    size_t KD = (size_t)c->num_kv_heads * c->head_dim, QD = (size_t)c->num_heads * c->head_dim;
    size_t cache = (size_t)c->num_layers * num_slots * (max_len + (size_t)k_row_of(max_len)) * KD;
    size_t scratch = (size_t)max_tokens * (3 * c->hidden_size + 2 * QD + 2 * KD + 2 * (size_t)c->intermediate_size);
    return cache * (bf16 ? sizeof(uint16_t) : sizeof(float)) + scratch * sizeof(float);
}

size_t qwen_kv_bytes(const QwenConfig *c, int num_slots, int max_len, int max_tokens) {
    return qwen_kv_bytes_ex(c, num_slots, max_len, max_tokens, 0);
}

int qwen_kv_alloc(QwenKVCache *kv, const QwenConfig *c, int num_slots, int max_len, int max_tokens, Error *err) {
    return qwen_kv_alloc_ex(kv, c, num_slots, max_len, max_tokens, 0, err);
}

int qwen_kv_alloc_ex(QwenKVCache *kv, const QwenConfig *c, int num_slots, int max_len, int max_tokens, int bf16,
                     Error *err) {
    memset(kv, 0, sizeof *kv);
    if (num_slots <= 0 || max_len <= 0 || max_tokens <= 0)
        return error_set(err, "kv cache: slots %d, length %d, tokens %d must be positive", num_slots, max_len,
                         max_tokens);
    if (max_len > c->max_position_embeddings)
        return error_set(err, "kv cache: length %d exceeds max_position_embeddings %d", max_len,
                         c->max_position_embeddings);
    size_t KD = (size_t)c->num_kv_heads * c->head_dim, QD = (size_t)c->num_heads * c->head_dim;
    size_t D = c->hidden_size, F = c->intermediate_size, M = max_tokens;
    kv->num_slots = num_slots;
    kv->max_len = max_len;
    kv->max_tokens = max_tokens;
    kv->L = c->num_layers;
    kv->KD = (int)KD;
    kv->k_row = k_row_of(max_len);
    size_t cache = (size_t)c->num_layers * num_slots * max_len * KD;
    size_t kcache = (size_t)c->num_layers * num_slots * kv->k_row * KD;
    kv->len = calloc(num_slots, sizeof(int));
    kv->bf16 = bf16;
    // K zeroed: the score loop reads a row up to its next multiple of 16 (the values past a
    // slot's length are ignored, but never uninitialised memory)
    if (bf16) {
        kv->k16 = calloc(kcache, sizeof(uint16_t));
        kv->v16 = malloc(sizeof(uint16_t) * cache);
    } else {
        kv->k = calloc(kcache, sizeof(float));
        kv->v = malloc(sizeof(float) * cache);
    }
    kv->x = malloc(sizeof(float) * M * D);
    kv->ln = malloc(sizeof(float) * M * D);
    kv->in = malloc(sizeof(float) * M * D);
    kv->q = malloc(sizeof(float) * M * QD);
    kv->att = malloc(sizeof(float) * M * QD);
    kv->kk = malloc(sizeof(float) * M * KD);
    kv->vv = malloc(sizeof(float) * M * KD);
    kv->gate = malloc(sizeof(float) * M * F);
    kv->up = malloc(sizeof(float) * M * F);
    kv->pos = malloc(sizeof(int) * M);
    if (!kv->len || (bf16 ? !kv->k16 || !kv->v16 : !kv->k || !kv->v) || !kv->x || !kv->ln || !kv->in || !kv->q || !kv->att || !kv->kk || !kv->vv ||
        !kv->gate || !kv->up || !kv->pos) {
        size_t need = qwen_kv_bytes_ex(c, num_slots, max_len, max_tokens, bf16);
        qwen_kv_free(kv);
        return error_set(err, "kv cache: out of memory (%d slots x %d tokens need %.1f MB)", num_slots, max_len,
                         need / 1e6);
    }
    return 0;
}

enum { W_Q, W_K, W_V, W_O, W_GATE, W_UP, W_DOWN, W_PER_LAYER };

// rows x cols of projection `which` (W is rows x cols, y = x W^T)
static void proj_shape(const QwenConfig *c, int which, int *rows, int *cols) {
    int D = c->hidden_size, F = c->intermediate_size, QD = c->num_heads * c->head_dim;
    int KD = c->num_kv_heads * c->head_dim;
    int r[W_PER_LAYER] = {QD, KD, KD, D, F, F, D}, k[W_PER_LAYER] = {D, D, D, QD, D, D, F};
    *rows = r[which];
    *cols = k[which];
}

static const float *proj_weight(const QwenModel *m, int which, int l) {
    const QwenWeights *w = &m->w;
    const float *base[W_PER_LAYER] = {w->wq, w->wk, w->wv, w->wo, w->w_gate, w->w_up, w->w_down};
    int rows, cols;
    proj_shape(&m->cfg, which, &rows, &cols);
    return base[which] + (size_t)l * rows * cols;
}

size_t qwen_bf16_weight_bytes(const QwenConfig *c) {
    size_t b = bf16_packed_bytes(c->vocab_size, c->hidden_size);
    for (int which = 0; which < W_PER_LAYER; which++) {
        int rows, cols;
        proj_shape(c, which, &rows, &cols);
        b += (size_t)c->num_layers * bf16_packed_bytes(rows, cols);
    }
    return b;
}

static void free_bf16_weights(QwenKVCache *kv) {
    if (!kv->wbf16) return;
    for (int i = 0; i < kv->L * W_PER_LAYER + 1; i++) bf16_packed_free(&kv->wbf16[i]);
    free(kv->wbf16);
    kv->wbf16 = NULL;
}

int qwen_kv_pack_bf16(QwenKVCache *kv, const QwenModel *m, Error *err) {
    const QwenConfig *c = &m->cfg;
    free_bf16_weights(kv);
    int n = c->num_layers * W_PER_LAYER + 1;
    kv->wbf16 = calloc(n, sizeof(Bf16Packed));
    if (!kv->wbf16) return error_set(err, "kv cache: out of memory for the bf16 weights");
    for (int l = 0; l < c->num_layers; l++) {
        for (int which = 0; which < W_PER_LAYER; which++) {
            int rows, cols;
            proj_shape(c, which, &rows, &cols);
            if (bf16_pack_b(&kv->wbf16[l * W_PER_LAYER + which], proj_weight(m, which, l), cols, 0, rows, cols,
                            err)) {
                free_bf16_weights(kv);
                return -1;
            }
        }
    }
    if (bf16_pack_b(&kv->wbf16[n - 1], m->w.lm_head, c->hidden_size, 0, c->vocab_size, c->hidden_size, err)) {
        free_bf16_weights(kv);
        return -1;
    }
    return 0;
}

void qwen_kv_free(QwenKVCache *kv) {
    free_bf16_weights(kv);
    void *p[] = {kv->len, kv->k, kv->v, kv->k16, kv->v16, kv->x, kv->ln, kv->in, kv->q, kv->att, kv->kk, kv->vv,
                 kv->gate, kv->up, kv->pos};
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) free(p[i]);
    memset(kv, 0, sizeof *kv);
}

void qwen_kv_reset(QwenKVCache *kv, int slot) { kv->len[slot] = 0; }

void qwen_kv_copy(QwenKVCache *kv, int dst, int src) {
    int len = kv->len[src];
    size_t slot_floats = (size_t)kv->max_len * kv->KD, slot_k = (size_t)kv->k_row * kv->KD;  // per layer
    size_t es = kv->bf16 ? sizeof(uint16_t) : sizeof(float);  // element size
    char *K = kv->bf16 ? (char *)kv->k16 : (char *)kv->k, *V = kv->bf16 ? (char *)kv->v16 : (char *)kv->v;
    for (int l = 0; l < kv->L; l++) {
        // K: KD rows (kv head x hd) of k_row positions, of which the first len are used
        char *kd = K + ((size_t)l * kv->num_slots + dst) * slot_k * es;
        const char *ks = K + ((size_t)l * kv->num_slots + src) * slot_k * es;
        for (int r = 0; r < kv->KD; r++)
            memcpy(kd + (size_t)r * kv->k_row * es, ks + (size_t)r * kv->k_row * es, es * len);
        memcpy(V + ((size_t)l * kv->num_slots + dst) * slot_floats * es,
               V + ((size_t)l * kv->num_slots + src) * slot_floats * es, es * (size_t)len * kv->KD);
    }
    kv->len[dst] = len;
}

// K is cached transposed, [slot][kv head][hd][k_row], so the scores of one query are hd
// contiguous axpy passes over the positions (vectorised, no per-position horizontal sums); V is
// cached [slot][position][kv width] so the output is an axpy per position.
static size_t k_at(const QwenKVCache *kv, int l, int slot, int g, int hd) {
    return (((size_t)l * kv->num_slots + slot) * (kv->KD / hd) + g) * (size_t)hd * kv->k_row;
}

static size_t v_at(const QwenKVCache *kv, int l, int slot, int pos) {
    return (((size_t)l * kv->num_slots + slot) * kv->max_len + pos) * (size_t)kv->KD;
}

// element i of a cache array: fp32, or bf16 widened in the register (a shift)
static inline __attribute__((always_inline)) float cache_at(const void *p, size_t i, int bf16) {
    return bf16 ? bf16_to_f32(((const uint16_t *)p)[i]) : ((const float *)p)[i];
}

// One query head's attention over len cached positions: K rows (one per head dim) of stride kst,
// V rows (one per position) of stride vst, stored fp32 or bf16 (bf16 is a constant at each call, so
// each storage gets its own vectorised copy). The scores run over len rounded up to 16 (K rows
// are padded to that; the extra scores are ignored), so each pass is whole vectors. sc is that
// many floats of scratch; o gets hd values.
static inline __attribute__((always_inline)) void attend(const float *q, const void *Kt, size_t kst, const void *V,
                                                         size_t vst, int len, int hd, float scale, float *sc, float *o,
                                                         int bf16) {
    // four rows of K per pass: one load/store of sc per four FMAs (head_dim is even; a multiple of 4
    // in every Qwen model, the remainder loop covers the rest)
    int lenv = k_row_of(len);
    for (int s = 0; s < lenv; s++) sc[s] = 0;
    int d = 0;
    for (; d + 4 <= hd; d += 4) {
        float q0 = q[d] * scale, q1 = q[d + 1] * scale, q2 = q[d + 2] * scale, q3 = q[d + 3] * scale;
        size_t k0 = (size_t)d * kst, k1 = k0 + kst, k2 = k1 + kst, k3 = k2 + kst;
#pragma omp simd
        for (int s = 0; s < lenv; s++)
            sc[s] += q0 * cache_at(Kt, k0 + s, bf16) + q1 * cache_at(Kt, k1 + s, bf16) +
                     q2 * cache_at(Kt, k2 + s, bf16) + q3 * cache_at(Kt, k3 + s, bf16);
    }
    for (; d < hd; d++) {
        float qd = q[d] * scale;
        size_t kr = (size_t)d * kst;
#pragma omp simd
        for (int s = 0; s < lenv; s++) sc[s] += qd * cache_at(Kt, kr + s, bf16);
    }
    float mx = max_of(sc, len), sum = 0;
#pragma omp simd reduction(+ : sum)
    for (int s = 0; s < len; s++) {
        sc[s] = exp_fast(sc[s] - mx);
        sum += sc[s];
    }
    float inv = 1.0f / sum;
    for (int e = 0; e < hd; e++) o[e] = 0;
    int s = 0;
    for (; s + 4 <= len; s += 4) {  // four positions per pass over o
        size_t v0 = (size_t)s * vst, v1 = v0 + vst, v2 = v1 + vst, v3 = v2 + vst;
        float p0 = sc[s] * inv, p1 = sc[s + 1] * inv, p2 = sc[s + 2] * inv, p3 = sc[s + 3] * inv;
#pragma omp simd
        for (int e = 0; e < hd; e++)
            o[e] += p0 * cache_at(V, v0 + e, bf16) + p1 * cache_at(V, v1 + e, bf16) + p2 * cache_at(V, v2 + e, bf16) +
                    p3 * cache_at(V, v3 + e, bf16);
    }
    for (; s < len; s++) {
        size_t vs = (size_t)s * vst;
        float p = sc[s] * inv;
#pragma omp simd
        for (int e = 0; e < hd; e++) o[e] += p * cache_at(V, vs + e, bf16);
    }
}

// Attention of n query rows against their slots' caches (positions 0..pos[i] inclusive). One work
// item is a (token, kv head) pair and the query heads sharing it. A bf16 cache is read as bf16 and
// widened in registers: the arithmetic is the fp32 path's, the memory read halves.
static void cached_attention(QwenKVCache *kv, int l, const int *slot, int n, int Hq, int Hkv, int hd) {
    int group = Hq / Hkv, QD = Hq * hd, M = kv->k_row;
    float scale = 1.0f / sqrtf((float)hd);
#pragma omp parallel
    {
        float *sc = malloc(sizeof(float) * M);
#pragma omp for collapse(2) schedule(dynamic)
        for (int i = 0; i < n; i++) {
            for (int g = 0; g < Hkv; g++) {
                int len = kv->pos[i] + 1;
                size_t ko = k_at(kv, l, slot[i], g, hd), vo = v_at(kv, l, slot[i], 0) + g * hd;
                for (int h = g * group; h < (g + 1) * group; h++) {
                    const float *qh = kv->q + (size_t)i * QD + h * hd;
                    float *oh = kv->att + (size_t)i * QD + h * hd;
                    if (kv->bf16)
                        attend(qh, kv->k16 + ko, M, kv->v16 + vo, kv->KD, len, hd, scale, sc, oh, 1);
                    else
                        attend(qh, kv->k + ko, M, kv->v + vo, kv->KD, len, hd, scale, sc, oh, 0);
                }
            }
        }
        free(sc);
    }
}

// y (+)= x W^T (+ b) for projection `which` of layer l over n rows: the bf16 copy when the cache
// has one, else the fp32 weight. The bf16 product needs a small packing buffer; should it not be
// allocatable the fp32 product runs instead.
static void project(const QwenModel *m, const QwenKVCache *kv, int which, int l, float *y, const float *x,
                    const float *b, int n, int accumulate) {
    int rows, cols;
    proj_shape(&m->cfg, which, &rows, &cols);
    const float *W = proj_weight(m, which, l);
    if (kv->wbf16 && gemm_bf16(y, rows, 1.0f, accumulate, x, cols, 0, n, &kv->wbf16[l * W_PER_LAYER + which]) == 0) {
        if (b)
            for (int i = 0; i < n; i++)
                for (int o = 0; o < rows; o++) y[(size_t)i * rows + o] += b[o];
    } else if (accumulate) {
        sgemm(0, 1, n, rows, cols, 1.0f, x, cols, W, cols, 1.0f, y, rows);
    } else {
        linear_forward(y, x, W, b, n, cols, rows, 0);
    }
}

int qwen_decode(const QwenModel *m, QwenKVCache *kv, const int *slot, const int *token, int n,
                const unsigned char *want, float *logits, Error *err) {
    const QwenConfig *c = &m->cfg;
    const QwenWeights *w = &m->w;
    if (n <= 0 || n > kv->max_tokens) return error_set(err, "decode: %d tokens (1..%d allowed per call)", n, kv->max_tokens);
    int D = c->hidden_size, F = c->intermediate_size, hd = c->head_dim, Hq = c->num_heads, Hkv = c->num_kv_heads;
    int QD = Hq * hd, KD = kv->KD;
    // positions: continue each slot from its length, in call order
    for (int i = 0; i < n; i++) {
        if (slot[i] < 0 || slot[i] >= kv->num_slots) return error_set(err, "decode: slot %d out of range", slot[i]);
        if (token[i] < 0 || token[i] >= c->vocab_size)
            return error_set(err, "decode: token id %d is outside the vocabulary [0, %d)", token[i], c->vocab_size);
    }
    for (int i = 0; i < n; i++) {
        int p = kv->len[slot[i]]++;
        if (p >= kv->max_len) {
            for (int j = 0; j <= i; j++) kv->len[slot[j]]--;
            return error_set(err, "decode: slot %d is full (%d tokens)", slot[i], kv->max_len);
        }
        kv->pos[i] = p;
        memcpy(kv->x + (size_t)i * D, w->embed + (size_t)token[i] * D, sizeof(float) * D);
    }
    float *rstd = malloc(sizeof(float) * (size_t)n * (Hq > 1 ? Hq : 1));
    if (!rstd) return error_set(err, "decode: out of memory");
    for (int l = 0; l < c->num_layers; l++) {
        rmsnorm_forward(kv->ln, rstd, kv->x, w->attn_norm + (size_t)l * D, n, D, c->rms_norm_eps);
        project(m, kv, W_Q, l, kv->q, kv->ln, w->bq ? w->bq + (size_t)l * QD : NULL, n, 0);
        project(m, kv, W_K, l, kv->kk, kv->ln, w->bk ? w->bk + (size_t)l * KD : NULL, n, 0);
        project(m, kv, W_V, l, kv->vv, kv->ln, w->bv ? w->bv + (size_t)l * KD : NULL, n, 0);
        if (c->qk_norm) {
            rmsnorm_forward(kv->q, rstd, kv->q, w->q_norm + (size_t)l * hd, n * Hq, hd, c->rms_norm_eps);
            rmsnorm_forward(kv->kk, rstd, kv->kk, w->k_norm + (size_t)l * hd, n * Hkv, hd, c->rms_norm_eps);
        }
        rope_forward(kv->q, kv->pos, n, Hq, hd, c->rope_theta);
        rope_forward(kv->kk, kv->pos, n, Hkv, hd, c->rope_theta);
        for (int i = 0; i < n; i++) {
            const float *vsrc = kv->vv + (size_t)i * KD;
            if (kv->bf16) {
                uint16_t *vd = kv->v16 + v_at(kv, l, slot[i], kv->pos[i]);
                for (int e = 0; e < KD; e++) vd[e] = bf16_from_f32(vsrc[e]);
            } else {
                memcpy(kv->v + v_at(kv, l, slot[i], kv->pos[i]), vsrc, sizeof(float) * KD);
            }
            for (int g = 0; g < Hkv; g++) {
                size_t at = k_at(kv, l, slot[i], g, hd) + kv->pos[i];
                const float *src = kv->kk + (size_t)i * KD + g * hd;
                if (kv->bf16)
                    for (int d = 0; d < hd; d++) kv->k16[at + (size_t)d * kv->k_row] = bf16_from_f32(src[d]);
                else
                    for (int d = 0; d < hd; d++) kv->k[at + (size_t)d * kv->k_row] = src[d];
            }
        }
        cached_attention(kv, l, slot, n, Hq, Hkv, hd);
        project(m, kv, W_O, l, kv->x, kv->att, NULL, n, 1);
        rmsnorm_forward(kv->ln, rstd, kv->x, w->mlp_norm + (size_t)l * D, n, D, c->rms_norm_eps);
        project(m, kv, W_GATE, l, kv->gate, kv->ln, NULL, n, 0);
        project(m, kv, W_UP, l, kv->up, kv->ln, NULL, n, 0);
        swiglu_forward(kv->gate, kv->gate, kv->up, (long)n * F);
        project(m, kv, W_DOWN, l, kv->x, kv->gate, NULL, n, 1);
    }
    // final norm + lm_head only on the rows that want logits
    int nw = 0;
    for (int i = 0; i < n; i++)
        if (!want || want[i]) memcpy(kv->in + (size_t)nw++ * D, kv->x + (size_t)i * D, sizeof(float) * D);
    if (nw > 0) {
        rmsnorm_forward(kv->ln, rstd, kv->in, w->final_norm, nw, D, c->rms_norm_eps);
        const Bf16Packed *head = kv->wbf16 ? &kv->wbf16[c->num_layers * W_PER_LAYER] : NULL;
        if (!head || gemm_bf16(logits, c->vocab_size, 1.0f, 0, kv->ln, D, 0, nw, head))
            sgemm(0, 1, nw, c->vocab_size, D, 1.0f, kv->ln, D, w->lm_head, D, 0.0f, logits, c->vocab_size);
    }
    free(rstd);
    return 0;
}
