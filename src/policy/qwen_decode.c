#include "policy/qwen_decode.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/blas.h"
#include "core/safetensors.h"
#include "policy/ops.h"

size_t qwen_kv_bytes_ex(const QwenConfig *c, int num_slots, int max_len, int max_tokens, int bf16) {
    size_t KD = (size_t)c->num_kv_heads * c->head_dim, QD = (size_t)c->num_heads * c->head_dim;
    size_t cache = 2 * (size_t)c->num_layers * num_slots * max_len * KD;
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
    size_t cache = (size_t)c->num_layers * num_slots * max_len * KD;
    kv->len = calloc(num_slots, sizeof(int));
    kv->bf16 = bf16;
    if (bf16) {
        kv->k16 = malloc(sizeof(uint16_t) * cache);
        kv->v16 = malloc(sizeof(uint16_t) * cache);
    } else {
        kv->k = malloc(sizeof(float) * cache);
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

void qwen_kv_free(QwenKVCache *kv) {
    void *p[] = {kv->len, kv->k, kv->v, kv->k16, kv->v16, kv->x, kv->ln, kv->in, kv->q, kv->att, kv->kk, kv->vv,
                 kv->gate, kv->up, kv->pos};
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) free(p[i]);
    memset(kv, 0, sizeof *kv);
}

void qwen_kv_reset(QwenKVCache *kv, int slot) { kv->len[slot] = 0; }

void qwen_kv_copy(QwenKVCache *kv, int dst, int src) {
    int len = kv->len[src];
    size_t slot_floats = (size_t)kv->max_len * kv->KD;  // one slot's K (or V) region per layer
    size_t es = kv->bf16 ? sizeof(uint16_t) : sizeof(float);  // element size
    char *K = kv->bf16 ? (char *)kv->k16 : (char *)kv->k, *V = kv->bf16 ? (char *)kv->v16 : (char *)kv->v;
    for (int l = 0; l < kv->L; l++) {
        // K: KD rows (kv head x hd) of max_len positions, of which the first len are used
        char *kd = K + ((size_t)l * kv->num_slots + dst) * slot_floats * es;
        const char *ks = K + ((size_t)l * kv->num_slots + src) * slot_floats * es;
        for (int r = 0; r < kv->KD; r++)
            memcpy(kd + (size_t)r * kv->max_len * es, ks + (size_t)r * kv->max_len * es, es * len);
        memcpy(V + ((size_t)l * kv->num_slots + dst) * slot_floats * es,
               V + ((size_t)l * kv->num_slots + src) * slot_floats * es, es * (size_t)len * kv->KD);
    }
    kv->len[dst] = len;
}

// K is cached transposed, [slot][kv head][hd][max_len], so the scores of one query are hd
// contiguous axpy passes over the positions (vectorised, no per-position horizontal sums); V is
// cached [slot][position][kv width] so the output is an axpy per position.
static size_t k_at(const QwenKVCache *kv, int l, int slot, int g, int hd) {
    return (((size_t)l * kv->num_slots + slot) * (kv->KD / hd) + g) * (size_t)hd * kv->max_len;
}

static size_t v_at(const QwenKVCache *kv, int l, int slot, int pos) {
    return (((size_t)l * kv->num_slots + slot) * kv->max_len + pos) * (size_t)kv->KD;
}

// One query head's attention over len cached positions: K rows (one per head dim) of stride kst,
// V rows (one per position) of stride vst. sc is len floats of scratch; o gets hd values.
static void attend(const float *q, const float *Kt, size_t kst, const float *V, size_t vst, int len, int hd,
                   float scale, float *sc, float *o) {
    // four rows of K per pass: one load/store of sc per four FMAs (head_dim is even; a multiple of 4
    // in every Qwen model, the remainder loop covers the rest)
    for (int s = 0; s < len; s++) sc[s] = 0;
    int d = 0;
    for (; d + 4 <= hd; d += 4) {
        float q0 = q[d] * scale, q1 = q[d + 1] * scale, q2 = q[d + 2] * scale, q3 = q[d + 3] * scale;
        const float *k0 = Kt + (size_t)d * kst, *k1 = k0 + kst, *k2 = k1 + kst, *k3 = k2 + kst;
#pragma omp simd
        for (int s = 0; s < len; s++) sc[s] += q0 * k0[s] + q1 * k1[s] + q2 * k2[s] + q3 * k3[s];
    }
    for (; d < hd; d++) {
        float qd = q[d] * scale;
        const float *kr = Kt + (size_t)d * kst;
#pragma omp simd
        for (int s = 0; s < len; s++) sc[s] += qd * kr[s];
    }
    float mx = -INFINITY, sum = 0;
    for (int s = 0; s < len; s++) mx = sc[s] > mx ? sc[s] : mx;
#pragma omp simd reduction(+ : sum)
    for (int s = 0; s < len; s++) {
        sc[s] = exp_fast(sc[s] - mx);
        sum += sc[s];
    }
    float inv = 1.0f / sum;
    for (int e = 0; e < hd; e++) o[e] = 0;
    int s = 0;
    for (; s + 4 <= len; s += 4) {  // four positions per pass over o
        const float *v0 = V + (size_t)s * vst, *v1 = v0 + vst, *v2 = v1 + vst, *v3 = v2 + vst;
        float p0 = sc[s] * inv, p1 = sc[s + 1] * inv, p2 = sc[s + 2] * inv, p3 = sc[s + 3] * inv;
#pragma omp simd
        for (int e = 0; e < hd; e++) o[e] += p0 * v0[e] + p1 * v1[e] + p2 * v2[e] + p3 * v3[e];
    }
    for (; s < len; s++) {
        const float *vs = V + (size_t)s * vst;
        float p = sc[s] * inv;
#pragma omp simd
        for (int e = 0; e < hd; e++) o[e] += p * vs[e];
    }
}

static inline float bf16_load(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

// Attention of n query rows against their slots' caches (positions 0..pos[i] inclusive). One work
// item is a (token, kv head) pair and the query heads sharing it. A bf16 cache is widened once per
// item into per-thread fp32 copies (K: hd rows of len, V: len rows of hd), so the arithmetic is the
// fp32 path's and only the memory read halves.
static void cached_attention(QwenKVCache *kv, int l, const int *slot, int n, int Hq, int Hkv, int hd) {
    int group = Hq / Hkv, QD = Hq * hd, M = kv->max_len;
    float scale = 1.0f / sqrtf((float)hd);
#pragma omp parallel
    {
        float *sc = malloc(sizeof(float) * M);
        float *kf = kv->bf16 ? malloc(sizeof(float) * (size_t)hd * M) : NULL;
        float *vf = kv->bf16 ? malloc(sizeof(float) * (size_t)hd * M) : NULL;
#pragma omp for collapse(2) schedule(dynamic)
        for (int i = 0; i < n; i++) {
            for (int g = 0; g < Hkv; g++) {
                int len = kv->pos[i] + 1;
                const float *K = kf, *V = vf;
                size_t kst = len, vst = hd;
                if (kv->bf16) {
                    const uint16_t *Kh = kv->k16 + k_at(kv, l, slot[i], g, hd);
                    const uint16_t *Vh = kv->v16 + v_at(kv, l, slot[i], 0) + g * hd;
                    for (int d = 0; d < hd; d++)
#pragma omp simd
                        for (int s = 0; s < len; s++) kf[(size_t)d * len + s] = bf16_load(Kh[(size_t)d * M + s]);
                    for (int s = 0; s < len; s++)
#pragma omp simd
                        for (int e = 0; e < hd; e++) vf[(size_t)s * hd + e] = bf16_load(Vh[(size_t)s * kv->KD + e]);
                } else {
                    K = kv->k + k_at(kv, l, slot[i], g, hd), kst = M;
                    V = kv->v + v_at(kv, l, slot[i], 0) + g * hd, vst = kv->KD;
                }
                for (int h = g * group; h < (g + 1) * group; h++)
                    attend(kv->q + (size_t)i * QD + h * hd, K, kst, V, vst, len, hd, scale, sc,
                           kv->att + (size_t)i * QD + h * hd);
            }
        }
        free(sc);
        free(kf);
        free(vf);
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
        linear_forward(kv->q, kv->ln, w->wq + (size_t)l * QD * D, w->bq ? w->bq + (size_t)l * QD : NULL, n, D, QD);
        linear_forward(kv->kk, kv->ln, w->wk + (size_t)l * KD * D, w->bk ? w->bk + (size_t)l * KD : NULL, n, D, KD);
        linear_forward(kv->vv, kv->ln, w->wv + (size_t)l * KD * D, w->bv ? w->bv + (size_t)l * KD : NULL, n, D, KD);
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
                for (int e = 0; e < KD; e++) vd[e] = st_f32_to_bf16(vsrc[e]);
            } else {
                memcpy(kv->v + v_at(kv, l, slot[i], kv->pos[i]), vsrc, sizeof(float) * KD);
            }
            for (int g = 0; g < Hkv; g++) {
                size_t at = k_at(kv, l, slot[i], g, hd) + kv->pos[i];
                const float *src = kv->kk + (size_t)i * KD + g * hd;
                if (kv->bf16)
                    for (int d = 0; d < hd; d++) kv->k16[at + (size_t)d * kv->max_len] = st_f32_to_bf16(src[d]);
                else
                    for (int d = 0; d < hd; d++) kv->k[at + (size_t)d * kv->max_len] = src[d];
            }
        }
        cached_attention(kv, l, slot, n, Hq, Hkv, hd);
        sgemm(0, 1, n, D, QD, 1.0f, kv->att, QD, w->wo + (size_t)l * D * QD, QD, 1.0f, kv->x, D);
        rmsnorm_forward(kv->ln, rstd, kv->x, w->mlp_norm + (size_t)l * D, n, D, c->rms_norm_eps);
        linear_forward(kv->gate, kv->ln, w->w_gate + (size_t)l * F * D, NULL, n, D, F);
        linear_forward(kv->up, kv->ln, w->w_up + (size_t)l * F * D, NULL, n, D, F);
        swiglu_forward(kv->gate, kv->gate, kv->up, (long)n * F);
        sgemm(0, 1, n, D, F, 1.0f, kv->gate, F, w->w_down + (size_t)l * D * F, F, 1.0f, kv->x, D);
    }
    // final norm + lm_head only on the rows that want logits
    int nw = 0;
    for (int i = 0; i < n; i++)
        if (!want || want[i]) memcpy(kv->in + (size_t)nw++ * D, kv->x + (size_t)i * D, sizeof(float) * D);
    if (nw > 0) {
        rmsnorm_forward(kv->ln, rstd, kv->in, w->final_norm, nw, D, c->rms_norm_eps);
        sgemm(0, 1, nw, c->vocab_size, D, 1.0f, kv->ln, D, w->lm_head, D, 0.0f, logits, c->vocab_size);
    }
    free(rstd);
    return 0;
}
