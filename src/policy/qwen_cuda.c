// GPU forward and backward (see qwen_cuda.h): forward_trunk, qwen_forward and qwen_backward of
// qwen_train.c, op for op, on device buffers.
#include "policy/qwen_cuda.h"

#include <string.h>

#include "core/cuda_ops.h"
#include "policy/qwen_cuda_internal.h"

// The device buffers in one table, for allocation, release and qwen_cuda_acts_bytes (any build).
static int dev_bufs(QwenCuda *qc, CudaBuf *t) {
    const QwenConfig *c = &qc->cfg;
    size_t N = (size_t)qc->max_B * qc->max_T, D = c->hidden_size, F = c->intermediate_size, L = c->num_layers;
    size_t QD = (size_t)c->num_heads * c->head_dim, KD = (size_t)c->num_kv_heads * c->head_dim;
    size_t H = (size_t)c->num_heads, rows = qwen_cuda_logit_rows(c, N);
    size_t f = sizeof(float), S = qc->recompute ? 1 : L;  // layers of room for all but the layer inputs
    // a forward-only model keeps two layer inputs (each layer reads one, writes the other) and nothing for a backward
    size_t bw = qc->forward_only ? 0 : 1, XL = qc->forward_only ? (L < 2 ? L : 2) : L;
    CudaBuf b[] = {
        {(void **)&qc->d_params, f * qc->num_params},
        {(void **)&qc->d_grads, bw * f * qc->num_params},
        {(void **)&qc->x, f * XL * N * D},
        {(void **)&qc->ln1, f * S * N * D},
        {(void **)&qc->rstd1, f * S * N},
        {(void **)&qc->q_raw, f * S * N * QD},
        {(void **)&qc->k_raw, f * S * N * KD},
        {(void **)&qc->rstd_q, f * S * N * c->num_heads},
        {(void **)&qc->rstd_k, f * S * N * c->num_kv_heads},
        {(void **)&qc->q, f * S * N * QD},
        {(void **)&qc->k, f * S * N * KD},
        {(void **)&qc->v, f * S * N * KD},
        {(void **)&qc->lse, f * S * N * H},  // flash attention: a log-sum-exp per query row, no T x T probs
        {(void **)&qc->att, f * S * N * QD},
        {(void **)&qc->x_mid, f * S * N * D},
        {(void **)&qc->ln2, f * S * N * D},
        {(void **)&qc->rstd2, f * S * N},
        {(void **)&qc->gate, f * S * N * F},
        {(void **)&qc->up, f * S * N * F},
        {(void **)&qc->act, f * S * N * F},
        {(void **)&qc->x_out, f * N * D},
        {(void **)&qc->lnf, f * N * D},
        {(void **)&qc->rstdf, f * N},
        {(void **)&qc->dx, bw * f * N * D},
        {(void **)&qc->dln, bw * f * N * D},
        {(void **)&qc->dx_mid, bw * f * N * D},
        {(void **)&qc->dtmp, bw * f * N * KD},
        {(void **)&qc->dq, bw * f * N * QD},
        {(void **)&qc->datt, bw * f * N * QD},
        {(void **)&qc->dk, bw * f * N * KD},
        {(void **)&qc->dv, bw * f * N * KD},
        {(void **)&qc->dgate, bw * f * N * F},
        {(void **)&qc->dup, bw * f * N * F},
        {(void **)&qc->dact, bw * f * N * F},
        {(void **)&qc->att_work, bw * f * N * H},
        {(void **)&qc->logits, f * rows * c->vocab_size},
        {(void **)&qc->logp, f * N},
        {(void **)&qc->ent, f * N},
        {(void **)&qc->wrow, bw * f * N},
        {(void **)&qc->tokens, sizeof(int) * N},
        {(void **)&qc->pos, sizeof(int) * N},
        {(void **)&qc->target, sizeof(int) * N},
    };
    int n = (int)(sizeof b / sizeof b[0]);
    if (t) memcpy(t, b, sizeof b);
    return n;
}

// The bf16 shadows of qwen_cuda_internal.h, for allocation, release and qwen_cuda_bf16_acts_bytes; base (may be NULL)
// gets, entry for entry, the fp32 array each one shadows (what train_shadows registers).
static int shadow_bufs(QwenCuda *qc, CudaBuf *t, const float **base) {
    const QwenConfig *c = &qc->cfg;
    size_t N = (size_t)qc->max_B * qc->max_T, D = c->hidden_size, F = c->intermediate_size;
    size_t QD = (size_t)c->num_heads * c->head_dim, KD = (size_t)c->num_kv_heads * c->head_dim;
    size_t S = qc->recompute ? 1 : c->num_layers, h = 2, bw = qc->forward_only ? 0 : 1,
           rows = qwen_cuda_logit_rows(c, N);
    struct {
        CudaBuf buf;
        const float *base;
    } b[] = {
        {{&qc->ln1_16, h * S * N * D}, qc->ln1},     {{&qc->att16, h * S * N * QD}, qc->att},
        {{&qc->ln2_16, h * S * N * D}, qc->ln2},     {{&qc->act16, h * S * N * F}, qc->act},
        {{&qc->dgate16, bw * h * N * F}, qc->dgate}, {{&qc->dup16, bw * h * N * F}, qc->dup},
        {{&qc->lnf16, h * N * D}, qc->lnf},          {{&qc->logits16, bw * h * rows * c->vocab_size}, qc->logits},
        {{&qc->dx16, bw * h * N * D}, qc->dx},       {{&qc->dx_mid16, bw * h * N * D}, qc->dx_mid},
        {{&qc->datt16, bw * h * N * QD}, qc->datt},  {{&qc->dtmp16, bw * h * N * KD}, qc->dtmp},
        {{&qc->dv16, bw * h * N * KD}, qc->dv},
    };
    int n = (int)(sizeof b / sizeof b[0]);
    for (int i = 0; i < n; i++) {
        if (t) t[i] = b[i].buf;
        if (base) base[i] = b[i].base;
    }
    return n;
}

size_t qwen_cuda_logit_rows(const QwenConfig *c, size_t N) {
    size_t budget = (size_t)512 << 20, rows = budget / (sizeof(float) * (size_t)c->vocab_size);
    if (rows < 256) rows = 256;
    return N < rows ? N : rows;
}

// Bytes of a buffer table (shadows: shadow_bufs, else dev_bufs) at capacity B x T, from entry `first` on.
static size_t table_bytes(const QwenConfig *c, int B, int T, int recompute, int forward_only, int shadows, int first) {
    QwenCuda q;
    memset(&q, 0, sizeof q);
    q.cfg = *c, q.max_B = B, q.max_T = T, q.recompute = recompute, q.forward_only = forward_only;
    CudaBuf t[64] = {{0}};
    int n = shadows ? shadow_bufs(&q, t, NULL) : dev_bufs(&q, t);
    size_t bytes = 0;
    for (int i = first; i < n; i++) bytes += t[i].bytes;
    return bytes;
}

size_t qwen_cuda_acts_bytes(const QwenConfig *c, int B, int T, int recompute) {
    return table_bytes(c, B, T, recompute, 0, 0, 2);  // all but the parameters and gradients
}

size_t qwen_cuda_bf16_acts_bytes(const QwenConfig *c, int B, int T, int recompute) {
    return table_bytes(c, B, T, recompute, 0, 1, 0);
}

size_t qwen_cuda_forward_only_bytes(const QwenConfig *c, int B, int T, int bf16) {
    size_t bytes = table_bytes(c, B, T, 1, 1, 0, 1);  // the weights, then everything else
    if (bf16) bytes += 2 * qwen_num_params(c) + table_bytes(c, B, T, 1, 1, 1, 0);
    return bytes;
}

#ifndef PIONRL_CUDA

static int no_cuda(Error *err) {
    return error_set(err, "model: this pionrl was built without CUDA (rebuild with make CUDA=1)");
}

int qwen_cuda_create(const QwenModel *m, int max_B, int max_T, QwenCuda **out, Error *err) {
    *out = NULL;
    return no_cuda(err);
}
int qwen_cuda_create_ex(const QwenModel *m, int max_B, int max_T, int recompute, QwenCuda **out, Error *err) {
    *out = NULL;
    return no_cuda(err);
}
int qwen_cuda_create_for_decode(const QwenModel *m, QwenCuda **out, Error *err) {
    *out = NULL;
    return no_cuda(err);
}
int qwen_cuda_create_forward_only(const QwenModel *m, int max_B, int max_T, QwenCuda **out, Error *err) {
    *out = NULL;
    return no_cuda(err);
}
void qwen_cuda_free(QwenCuda *qc) {}
int qwen_cuda_upload(QwenCuda *qc, const QwenModel *m, Error *err) { return no_cuda(err); }
int qwen_cuda_forward(QwenCuda *qc, const int *tokens, int B, int T, float temperature, float *logp, float *entropy,
                      Error *err) {
    return no_cuda(err);
}
int qwen_cuda_backward(QwenCuda *qc, const float *w, Error *err) { return no_cuda(err); }
int qwen_cuda_zero_grads(QwenCuda *qc, Error *err) { return no_cuda(err); }
int qwen_cuda_download_grads(const QwenCuda *qc, float *grads, Error *err) { return no_cuda(err); }
int qwen_cuda_upload_grads(QwenCuda *qc, const float *grads, Error *err) { return no_cuda(err); }
int qwen_cuda_download_params(const QwenCuda *qc, QwenModel *m, Error *err) { return no_cuda(err); }
float *qwen_cuda_params(QwenCuda *qc) { return NULL; }
float *qwen_cuda_grads(QwenCuda *qc) { return NULL; }
int qwen_cuda_set_matmul_bf16(QwenCuda *qc, int on, Error *err) { return no_cuda(err); }

#else

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "policy/attention_cuda.h"
#include "policy/ops_cuda.h"

void qwen_cuda_free(QwenCuda *qc) {
    if (!qc) return;
    CudaBuf t[64];
    cuda_release_table(t, dev_bufs(qc, t));
    cuda_release_table(t, shadow_bufs(qc, t, NULL));
    cuda_release(qc->d_wbf16);
    cuda_blas_free(qc->cb);
    free(qc->h_logp);
    free(qc->h_ent);
    free(qc->h_wrow);
    free(qc->h_pos);
    free(qc->h_target);
    free(qc);
}

int qwen_cuda_upload(QwenCuda *qc, const QwenModel *m, Error *err) {
    if (m->num_params != qc->num_params) return error_set(err, "model (cuda): parameter count changed");
    if (cuda_to_device(qc->d_params, m->params, sizeof(float) * m->num_params, err))
        return error_prefix(err, "model (cuda)");
    qc->wbf16_stale = 1;
    return 0;
}

int qwen_cuda_gemm_mode(QwenCuda *qc, int bf16, Error *err) {
    cuda_blas_set_bf16(qc->cb, 0);
    if (!bf16) return 0;
    if (!qc->d_wbf16) {
        if (cuda_alloc(&qc->d_wbf16, 2 * qc->num_params, err))
            return error_prefix(err, "model (cuda): bf16 weight copy (%.1f MB)", 2.0 * qc->num_params / 1048576.0);
        qc->wbf16_stale = 1;
    }
    if (qc->wbf16_stale) {
        if (cuda_round_bf16(qc->d_wbf16, qc->d_params, qc->num_params, err)) return error_prefix(err, "model (cuda)");
        qc->wbf16_stale = 0;
    }
    cuda_blas_set_bf16_copy(qc->cb, qc->d_params, qc->d_wbf16, qc->num_params);
    cuda_blas_set_bf16(qc->cb, 1);
    return 0;
}

int qwen_cuda_set_matmul_bf16(QwenCuda *qc, int on, Error *err) {
    qc->train_bf16 = 0;
    if (!on) return 0;
    // allocate the copies now: fail before a run starts
    if (qwen_cuda_gemm_mode(qc, 1, err)) return -1;
    CudaBuf t[16];
    if (!qc->ln1_16 && cuda_alloc_table(t, shadow_bufs(qc, t, NULL), err)) {
        cuda_release_table(t, shadow_bufs(qc, t, NULL));
        return error_prefix(err, "model (cuda): bf16 copies of the activations (%.1f MB)",
                            qwen_cuda_bf16_acts_bytes(&qc->cfg, qc->max_B, qc->max_T, qc->recompute) / 1048576.0);
    }
    qc->train_bf16 = 1;
    return 0;
}

// Registers the training shadows with the cuBLAS handle for a bf16 pass (nothing in fp32 mode); the caller clears
// them (cuda_blas_clear_shadows) when the pass ends, however it ends.
static int train_shadows(QwenCuda *qc, Error *err) {
    if (!qc->train_bf16) return 0;
    const float *base[16];
    CudaBuf t[16];
    int n = shadow_bufs(qc, t, base);
    for (int i = 0; i < n; i++)
        if (cuda_blas_add_shadow(qc->cb, base[i], *t[i].p, t[i].bytes / 2, err)) return -1;
    return 0;
}

// The shadow of fp32 activation x inside the array at base: the same element offset in base16; NULL in fp32 mode.
static void *shadow_at(const QwenCuda *qc, const float *x, const float *base, void *base16) {
    return qc->train_bf16 ? (uint16_t *)base16 + (x - base) : NULL;
}

int qwen_cuda_create(const QwenModel *m, int max_B, int max_T, QwenCuda **out, Error *err) {
    return qwen_cuda_create_ex(m, max_B, max_T, 0, out, err);
}

int qwen_cuda_create_for_decode(const QwenModel *m, QwenCuda **out, Error *err) {
    return qwen_cuda_create_ex(m, 1, 2, 0, out, err);
}

static int create(const QwenModel *m, int max_B, int max_T, int recompute, int forward_only, QwenCuda **out,
                  Error *err) {
    *out = NULL;
    if (max_B <= 0 || max_T <= 0)
        return error_set(err, "model (cuda): batch %d x length %d must be positive", max_B, max_T);
    QwenCuda *qc = calloc(1, sizeof *qc);
    if (!qc) return error_set(err, "model (cuda): out of memory");
    qc->cfg = m->cfg;
    qc->max_B = max_B, qc->max_T = max_T;
    qc->recompute = recompute;
    qc->forward_only = forward_only;
    qc->num_params = m->num_params;
    qc->logit_rows = qwen_cuda_logit_rows(&m->cfg, (size_t)max_B * max_T);
    CudaBuf t[64];
    if (cuda_alloc_table(t, dev_bufs(qc, t), err)) {
        qwen_cuda_free(qc);
        return error_prefix(err, "model (cuda): batch %d x length %d", max_B, max_T);
    }
    size_t N = (size_t)max_B * max_T;
    qc->h_logp = malloc(sizeof(float) * N);
    qc->h_ent = malloc(sizeof(float) * N);
    qc->h_wrow = malloc(sizeof(float) * N);
    qc->h_pos = malloc(sizeof(int) * N);
    qc->h_target = malloc(sizeof(int) * N);
    if (!qc->h_logp || !qc->h_ent || !qc->h_wrow || !qc->h_pos || !qc->h_target) {
        qwen_cuda_free(qc);
        return error_set(err, "model (cuda): out of memory");
    }
    qwen_weights_point(&qc->cfg, qc->d_params, &qc->w);
    if (!forward_only) qwen_weights_point(&qc->cfg, qc->d_grads, &qc->g);
    if (cuda_blas_create(&qc->cb, err) || qwen_cuda_upload(qc, m, err) ||
        (!forward_only && qwen_cuda_zero_grads(qc, err))) {
        qwen_cuda_free(qc);
        return -1;
    }
    *out = qc;
    return 0;
}

int qwen_cuda_create_ex(const QwenModel *m, int max_B, int max_T, int recompute, QwenCuda **out, Error *err) {
    return create(m, max_B, max_T, recompute, 0, out, err);
}

int qwen_cuda_create_forward_only(const QwenModel *m, int max_B, int max_T, QwenCuda **out, Error *err) {
    return create(m, max_B, max_T, 1, 1, out, err);
}

// The gradient calls on a forward-only model, which has no gradient buffer.
static int no_grads(const QwenCuda *qc, Error *err) {
    return qc->forward_only ? error_set(err, "model (cuda): a forward-only model (the reference) has no gradients") : 0;
}

int qwen_cuda_zero_grads(QwenCuda *qc, Error *err) {
    if (no_grads(qc, err)) return -1;
    return cuda_zero(qc->d_grads, sizeof(float) * qc->num_params, err) ? error_prefix(err, "model (cuda)") : 0;
}

int qwen_cuda_download_grads(const QwenCuda *qc, float *grads, Error *err) {
    if (no_grads(qc, err)) return -1;
    return cuda_to_host(grads, qc->d_grads, sizeof(float) * qc->num_params, err) ? error_prefix(err, "model (cuda)")
                                                                                 : 0;
}

int qwen_cuda_upload_grads(QwenCuda *qc, const float *grads, Error *err) {
    if (no_grads(qc, err)) return -1;
    return cuda_to_device(qc->d_grads, grads, sizeof(float) * qc->num_params, err) ? error_prefix(err, "model (cuda)")
                                                                                   : 0;
}

int qwen_cuda_download_params(const QwenCuda *qc, QwenModel *m, Error *err) {
    if (m->num_params != qc->num_params) return error_set(err, "model (cuda): parameter count changed");
    return cuda_to_host(m->params, qc->d_params, sizeof(float) * qc->num_params, err)
               ? error_prefix(err, "model (cuda)")
               : 0;
}

float *qwen_cuda_params(QwenCuda *qc) {
    qc->wbf16_stale = 1;  // the caller may write through the pointer
    return qc->d_params;
}
float *qwen_cuda_grads(QwenCuda *qc) { return qc->forward_only ? NULL : qc->d_grads; }

// Pointers to layer l's saved activations.
typedef struct {
    float *x, *ln1, *rstd1, *q_raw, *k_raw, *rstd_q, *rstd_k, *q, *k, *v, *lse, *att, *x_mid, *ln2, *rstd2;
    float *gate, *up, *act, *x_next;
} Layer;

static Layer layer_acts(const QwenCuda *qc, size_t l) {
    const QwenConfig *c = &qc->cfg;
    size_t N = (size_t)qc->B * qc->T, D = c->hidden_size, F = c->intermediate_size;
    size_t QD = (size_t)c->num_heads * c->head_dim, KD = (size_t)c->num_kv_heads * c->head_dim;
    size_t s = qc->recompute ? 0 : l;  // slot of everything but the layer input
    Layer a;
    size_t xl = qc->forward_only ? l % 2 : l, xn = qc->forward_only ? (l + 1) % 2 : l + 1;  // see dev_bufs
    a.x = qc->x + xl * N * D, a.ln1 = qc->ln1 + s * N * D, a.rstd1 = qc->rstd1 + s * N;
    a.q_raw = qc->q_raw + s * N * QD, a.k_raw = qc->k_raw + s * N * KD;
    a.rstd_q = qc->rstd_q + s * N * c->num_heads, a.rstd_k = qc->rstd_k + s * N * c->num_kv_heads;
    a.q = qc->q + s * N * QD, a.k = qc->k + s * N * KD, a.v = qc->v + s * N * KD,
    a.lse = qc->lse + s * N * c->num_heads;
    a.att = qc->att + s * N * QD, a.x_mid = qc->x_mid + s * N * D, a.ln2 = qc->ln2 + s * N * D;
    a.rstd2 = qc->rstd2 + s * N, a.gate = qc->gate + s * N * F, a.up = qc->up + s * N * F, a.act = qc->act + s * N * F;
    a.x_next = l + 1 < (size_t)c->num_layers ? qc->x + xn * N * D : qc->x_out;
    return a;
}

// One decoder layer from a->x to a->x_next, saving its activations in a.
static int layer_forward(QwenCuda *qc, size_t l, const Layer *pa, Error *err) {
    const QwenConfig *c = &qc->cfg;
    const QwenWeights *w = &qc->w;
    Layer a = *pa;
    int B = qc->B, T = qc->T, N = B * T, D = c->hidden_size, F = c->intermediate_size, hd = c->head_dim;
    int Hq = c->num_heads, Hkv = c->num_kv_heads, QD = Hq * hd, KD = Hkv * hd;
    float eps = c->rms_norm_eps;
    // bf16 mode: ln1, att, ln2 and act also written as bf16 (shadows), the inputs of the products that read them, so
    // the projections that share an input (q, k and v; gate and up) read one rounding of it
    int rc = cuda_rmsnorm_forward(a.ln1, shadow_at(qc, a.ln1, qc->ln1, qc->ln1_16), a.rstd1, a.x, w->attn_norm + l * D,
                                  N, D, eps, err);
    rc =
        rc ||
        cuda_linear_forward(qc->cb, a.q_raw, a.ln1, w->wq + l * QD * D, w->bq ? w->bq + l * QD : NULL, N, D, QD, err) ||
        cuda_linear_forward(qc->cb, a.k_raw, a.ln1, w->wk + l * KD * D, w->bk ? w->bk + l * KD : NULL, N, D, KD, err) ||
        cuda_linear_forward(qc->cb, a.v, a.ln1, w->wv + l * KD * D, w->bv ? w->bv + l * KD : NULL, N, D, KD, err);
    if (!rc && c->qk_norm)  // per-head RMSNorm over head_dim: rows of width hd
        rc = cuda_rmsnorm_forward(a.q, NULL, a.rstd_q, a.q_raw, w->q_norm + l * hd, N * Hq, hd, eps, err) ||
             cuda_rmsnorm_forward(a.k, NULL, a.rstd_k, a.k_raw, w->k_norm + l * hd, N * Hkv, hd, eps, err);
    else if (!rc)
        rc = cuda_copy(a.q, a.q_raw, sizeof(float) * N * QD, err) ||
             cuda_copy(a.k, a.k_raw, sizeof(float) * N * KD, err);
    rc = rc || cuda_rope_forward(a.q, qc->pos, N, Hq, hd, c->rope_theta, err) ||
         cuda_rope_forward(a.k, qc->pos, N, Hkv, hd, c->rope_theta, err) ||
         cuda_flash_attention_forward(a.att, shadow_at(qc, a.att, qc->att, qc->att16), a.lse, a.q, a.k, a.v, B, T, Hq,
                                      Hkv, hd, qc->train_bf16, err) ||
         cuda_copy(a.x_mid, a.x, sizeof(float) * N * D, err) ||
         cuda_sgemm(qc->cb, 0, 1, N, D, QD, 1.0f, a.att, QD, w->wo + l * D * QD, QD, 1.0f, a.x_mid, D, err) ||
         cuda_rmsnorm_forward(a.ln2, shadow_at(qc, a.ln2, qc->ln2, qc->ln2_16), a.rstd2, a.x_mid, w->mlp_norm + l * D,
                              N, D, eps, err);
    rc = rc || cuda_linear_forward(qc->cb, a.gate, a.ln2, w->w_gate + l * F * D, NULL, N, D, F, err) ||
         cuda_linear_forward(qc->cb, a.up, a.ln2, w->w_up + l * F * D, NULL, N, D, F, err);
    rc = rc || cuda_swiglu_forward(a.act, shadow_at(qc, a.act, qc->act, qc->act16), a.gate, a.up, (long)N * F, err) ||
         cuda_copy(a.x_next, a.x_mid, sizeof(float) * N * D, err) ||
         cuda_sgemm(qc->cb, 0, 1, N, D, F, 1.0f, a.act, F, w->w_down + l * D * F, F, 1.0f, a.x_next, D, err);
    return rc ? error_prefix(err, "layer %zu", l) : 0;
}

// Embedding through the final norm, saving every activation; forward_trunk of qwen_train.c.
static int trunk(QwenCuda *qc, Error *err) {
    const QwenConfig *c = &qc->cfg;
    const QwenWeights *w = &qc->w;
    int N = qc->B * qc->T, D = c->hidden_size;
    if (cuda_embedding_forward(qc->x, w->embed, qc->tokens, N, D, err)) return -1;
    for (size_t l = 0; l < (size_t)c->num_layers; l++) {
        Layer a = layer_acts(qc, l);
        if (layer_forward(qc, l, &a, err)) return -1;
    }
    return cuda_rmsnorm_forward(qc->lnf, shadow_at(qc, qc->lnf, qc->lnf, qc->lnf16), qc->rstdf, qc->x_out,
                                w->final_norm, N, D, c->rms_norm_eps, err);
}

int qwen_cuda_forward(QwenCuda *qc, const int *tokens, int B, int T, float temperature, float *logp, float *entropy,
                      Error *err) {
    const QwenConfig *c = &qc->cfg;
    if (T < 2) return error_set(err, "forward (cuda): sequences need at least 2 tokens to score (got %d)", T);
    if (!(temperature > 0) || !isfinite(temperature))
        return error_set(err, "forward (cuda): temperature must be positive (got %g)", temperature);
    if (B <= 0 || (size_t)B * T > (size_t)qc->max_B * qc->max_T)
        return error_set(err, "forward (cuda): batch %d x %d exceeds the capacity %d x %d", B, T, qc->max_B, qc->max_T);
    if (T > c->max_position_embeddings)
        return error_set(err, "forward (cuda): sequence length %d exceeds max_position_embeddings %d", T,
                         c->max_position_embeddings);
    int N = B * T, V = c->vocab_size, D = c->hidden_size;
    for (int n = 0; n < N; n++) {
        if (tokens[n] < 0 || tokens[n] >= V)
            return error_set(err, "forward (cuda): token id %d at position %d is outside the vocabulary [0, %d)",
                             tokens[n], n, V);
        qc->h_pos[n] = n % T;
        qc->h_target[n] = n % T < T - 1 ? tokens[n + 1] : -1;  // the last position of a sequence is not scored
    }
    qc->B = B, qc->T = T, qc->temperature = temperature;
    int rc = qwen_cuda_gemm_mode(qc, qc->train_bf16, err) || train_shadows(qc, err) ||
             cuda_to_device(qc->tokens, tokens, sizeof(int) * N, err) ||
             cuda_to_device(qc->pos, qc->h_pos, sizeof(int) * N, err) ||
             cuda_to_device(qc->target, qc->h_target, sizeof(int) * N, err) || trunk(qc, err);
    int rows = (int)qc->logit_rows;
    for (int r0 = 0; r0 < N && !rc; r0 += rows) {
        int nr = N - r0 < rows ? N - r0 : rows;
        rc =
            cuda_sgemm(qc->cb, 0, 1, nr, V, D, 1.0f / temperature, qc->lnf + (size_t)r0 * D, D, qc->w.lm_head, D, 0.0f,
                       qc->logits, V, err) ||
            cuda_logsoftmax_rows(qc->logits, qc->target + r0, qc->logp + r0, entropy ? qc->ent + r0 : NULL, nr, V, err);
        if (rc) error_prefix(err, "logits");
    }
    cuda_blas_clear_shadows(qc->cb);
    if (rc) return error_prefix(err, "forward (cuda)");
    if (cuda_to_host(qc->h_logp, qc->logp, sizeof(float) * N, err) ||
        (entropy && cuda_to_host(qc->h_ent, qc->ent, sizeof(float) * N, err)))
        return error_prefix(err, "forward (cuda)");
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T - 1; t++) {
            logp[(size_t)b * (T - 1) + t] = qc->h_logp[(size_t)b * T + t];
            if (entropy) entropy[(size_t)b * (T - 1) + t] = qc->h_ent[(size_t)b * T + t];
        }
    return 0;
}

// One layer of the backward, from dx (the gradient at the layer's output) to dx at its input, accumulating the
// layer's parameter gradients; the activations are the forward's (or rebuilt here with recomputation).
static int layer_backward(QwenCuda *qc, size_t l, Error *err) {
    const QwenConfig *c = &qc->cfg;
    const QwenWeights *w = &qc->w, *g = &qc->g;
    int B = qc->B, T = qc->T, N = B * T, D = c->hidden_size, F = c->intermediate_size;
    int hd = c->head_dim, Hq = c->num_heads, Hkv = c->num_kv_heads, QD = Hq * hd, KD = Hkv * hd;
    Layer a = layer_acts(qc, l);
    if (qc->recompute && layer_forward(qc, l, &a, err)) return -1;  // rebuild this layer's activations from its input
    // MLP: x_next = x_mid + down(silu(gate(ln2)) * up(ln2))
    int rc = cuda_linear_backward(qc->cb, qc->dact, 0, g->w_down + l * D * F, NULL, qc->dx, a.act,
                                  w->w_down + l * D * F, N, F, D, err) ||
             cuda_swiglu_backward(qc->dgate, qc->dup, shadow_at(qc, qc->dgate, qc->dgate, qc->dgate16),
                                  shadow_at(qc, qc->dup, qc->dup, qc->dup16), qc->dact, a.gate, a.up, (long)N * F, err);
    rc = rc ||
         cuda_linear_backward(qc->cb, qc->dln, 0, g->w_gate + l * F * D, NULL, qc->dgate, a.ln2, w->w_gate + l * F * D,
                              N, D, F, err) ||
         cuda_linear_backward(qc->cb, qc->dln, 1, g->w_up + l * F * D, NULL, qc->dup, a.ln2, w->w_up + l * F * D, N, D,
                              F, err);
    // the gradients that feed products next get bf16 copies (shadows) from the kernels that make them
    // (the residual gradient dx passes through: dx_mid = dx + the norm's input gradient, no copy first)
    rc = rc ||
         cuda_rmsnorm_backward(qc->dx_mid, shadow_at(qc, qc->dx_mid, qc->dx_mid, qc->dx_mid16), qc->dx,
                               g->mlp_norm + l * D, qc->dln, a.x_mid, w->mlp_norm + l * D, a.rstd2, N, D, err) ||
         // attention: x_mid = x + o_proj(att)
         cuda_linear_backward(qc->cb, qc->datt, 0, g->wo + l * D * QD, NULL, qc->dx_mid, a.att, w->wo + l * D * QD, N,
                              QD, D, err) ||
         cuda_flash_attention_backward(qc->dq, qc->dk, qc->dv, shadow_at(qc, qc->dv, qc->dv, qc->dv16), qc->datt, a.att,
                                       a.lse, a.q, a.k, a.v, B, T, Hq, Hkv, hd, qc->train_bf16, qc->att_work, err) ||
         cuda_rope_backward(qc->dq, qc->pos, N, Hq, hd, c->rope_theta, err) ||
         cuda_rope_backward(qc->dk, qc->pos, N, Hkv, hd, c->rope_theta, err);
    const float *dq_raw = qc->dq, *dk_raw = qc->dk;  // the q and k projections' output gradients
    if (!rc && c->qk_norm) {  // dq/dk are w.r.t. the normed values: map back to the raw projections
        rc = cuda_rmsnorm_backward(qc->datt, shadow_at(qc, qc->datt, qc->datt, qc->datt16), NULL, g->q_norm + l * hd,
                                   qc->dq, a.q_raw, w->q_norm + l * hd, a.rstd_q, N * Hq, hd, err) ||
             cuda_rmsnorm_backward(qc->dtmp, shadow_at(qc, qc->dtmp, qc->dtmp, qc->dtmp16), NULL, g->k_norm + l * hd,
                                   qc->dk, a.k_raw, w->k_norm + l * hd, a.rstd_k, N * Hkv, hd, err);
        dq_raw = qc->datt, dk_raw = qc->dtmp;
    }
    rc = rc ||
         cuda_linear_backward(qc->cb, qc->dln, 0, g->wq + l * QD * D, g->bq ? g->bq + l * QD : NULL, dq_raw, a.ln1,
                              w->wq + l * QD * D, N, D, QD, err) ||
         cuda_linear_backward(qc->cb, qc->dln, 1, g->wk + l * KD * D, g->bk ? g->bk + l * KD : NULL, dk_raw, a.ln1,
                              w->wk + l * KD * D, N, D, KD, err) ||
         cuda_linear_backward(qc->cb, qc->dln, 1, g->wv + l * KD * D, g->bv ? g->bv + l * KD : NULL, qc->dv, a.ln1,
                              w->wv + l * KD * D, N, D, KD, err);
    rc = rc || cuda_rmsnorm_backward(qc->dx, shadow_at(qc, qc->dx, qc->dx, qc->dx16), qc->dx_mid, g->attn_norm + l * D,
                                     qc->dln, a.x, w->attn_norm + l * D, a.rstd1, N, D, err);
    return rc ? error_prefix(err, "layer %zu", l) : 0;
}

// The lm_head and the final norm, from the logits to dx at the last layer's output: logits recomputed in chunks (as
// on the CPU) and replaced by their gradients, which in bf16 mode also get their bf16 copy, the operand of the two
// products that follow.
static int lm_head_backward(QwenCuda *qc, Error *err) {
    const QwenConfig *c = &qc->cfg;
    const QwenWeights *w = &qc->w, *g = &qc->g;
    int N = qc->B * qc->T, V = c->vocab_size, D = c->hidden_size, rows = (int)qc->logit_rows;
    float inv_t = 1.0f / qc->temperature;
    void *g16 = shadow_at(qc, qc->logits, qc->logits, qc->logits16);
    for (int r0 = 0; r0 < N; r0 += rows) {
        int nr = N - r0 < rows ? N - r0 : rows;
        const float *in = qc->lnf + (size_t)r0 * D;
        if (cuda_sgemm(qc->cb, 0, 1, nr, V, D, inv_t, in, D, w->lm_head, D, 0.0f, qc->logits, V, err) ||
            cuda_logsoftmax_grad_rows(qc->logits, g16, qc->target + r0, qc->wrow + r0, nr, V, err) ||
            cuda_sgemm(qc->cb, 0, 0, nr, D, V, inv_t, qc->logits, V, w->lm_head, D, 0.0f, qc->dln + (size_t)r0 * D, D,
                       err) ||
            cuda_sgemm(qc->cb, 1, 0, V, D, nr, inv_t, qc->logits, V, in, D, 1.0f, g->lm_head, D, err))
            return error_prefix(err, "lm_head");
    }
    return cuda_rmsnorm_backward(qc->dx, shadow_at(qc, qc->dx, qc->dx, qc->dx16), NULL, g->final_norm, qc->dln,
                                 qc->x_out, w->final_norm, qc->rstdf, N, D, err);
}

int qwen_cuda_backward(QwenCuda *qc, const float *wgt, Error *err) {
    const QwenConfig *c = &qc->cfg;
    int B = qc->B, T = qc->T, N = B * T, D = c->hidden_size;
    if (no_grads(qc, err)) return error_prefix(err, "backward (cuda)");
    if (B <= 0) return error_set(err, "backward (cuda): no forward pass to differentiate");
    for (int n = 0; n < N; n++) qc->h_wrow[n] = n % T < T - 1 ? wgt[(size_t)(n / T) * (T - 1) + n % T] : 0.0f;
    if (qwen_cuda_gemm_mode(qc, qc->train_bf16, err) || cuda_to_device(qc->wrow, qc->h_wrow, sizeof(float) * N, err))
        return error_prefix(err, "backward (cuda)");
    // the bf16 shadows (bf16 mode) stay registered for the whole pass
    int rc = train_shadows(qc, err) || lm_head_backward(qc, err);
    for (size_t l = c->num_layers; l-- > 0 && !rc;) rc = layer_backward(qc, l, err);
    cuda_blas_clear_shadows(qc->cb);
    if (rc) return error_prefix(err, "backward (cuda)");
    // embedding rows (tied: the same buffer as lm_head's gradient)
    if (cuda_embedding_backward(qc->g.embed, qc->dx, qc->tokens, N, D, err))
        return error_prefix(err, "backward (cuda)");
    return 0;
}

#endif
