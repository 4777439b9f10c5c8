// GPU scoring forward (see qwen_cuda.h): forward_trunk and qwen_forward of qwen_train.c, op for op, on device buffers.
// Activations are not kept per layer (there is no backward yet), so one set of buffers serves every layer.
#include "policy/qwen_cuda.h"

#ifndef PIONRL_CUDA

int qwen_cuda_create(const QwenModel *m, int max_B, int max_T, QwenCuda **out, Error *err) {
    *out = NULL;
    return error_set(err, "model: this pionrl was built without CUDA (rebuild with make CUDA=1)");
}
void qwen_cuda_free(QwenCuda *qc) {}
int qwen_cuda_upload(QwenCuda *qc, const QwenModel *m, Error *err) {
    return error_set(err, "model: this pionrl was built without CUDA (rebuild with make CUDA=1)");
}
int qwen_cuda_forward(QwenCuda *qc, const int *tokens, int B, int T, float temperature, float *logp, float *entropy,
                      Error *err) {
    return error_set(err, "model: this pionrl was built without CUDA (rebuild with make CUDA=1)");
}

#else

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/cuda_ops.h"
#include "policy/ops_cuda.h"

// Rows of the vocabulary GEMM done at once: bounds the device logits buffer to LOGIT_ROWS x V.
#define LOGIT_ROWS 256

struct QwenCuda {
    QwenConfig cfg;
    int max_B, max_T;
    size_t num_params;
    float *d_params;
    QwenWeights w;  // device views into d_params
    CudaBlas *cb;
    float *x, *x_mid, *ln, *rstd, *rstd_h, *q_raw, *k_raw, *q, *k, *v, *probs, *att, *gate, *up, *act;
    float *logits, *logp, *ent;
    int *tokens, *pos, *target;
    float *h_logp, *h_ent;  // host staging, [max_B * max_T]
    int *h_pos, *h_target;
};

void qwen_cuda_free(QwenCuda *qc) {
    if (!qc) return;
    void *d[] = {qc->d_params, qc->x,    qc->x_mid, qc->ln,     qc->rstd, qc->rstd_h, qc->q_raw, qc->k_raw,
                 qc->q,        qc->k,    qc->v,     qc->probs,  qc->att,  qc->gate,   qc->up,    qc->act,
                 qc->logits,   qc->logp, qc->ent,   qc->tokens, qc->pos,  qc->target};
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++) cuda_release(d[i]);
    cuda_blas_free(qc->cb);
    free(qc->h_logp);
    free(qc->h_ent);
    free(qc->h_pos);
    free(qc->h_target);
    free(qc);
}

int qwen_cuda_upload(QwenCuda *qc, const QwenModel *m, Error *err) {
    if (m->num_params != qc->num_params) return error_set(err, "model (cuda): parameter count changed");
    return cuda_to_device(qc->d_params, m->params, sizeof(float) * m->num_params, err)
               ? error_prefix(err, "model (cuda)")
               : 0;
}

int qwen_cuda_create(const QwenModel *m, int max_B, int max_T, QwenCuda **out, Error *err) {
    *out = NULL;
    if (max_B <= 0 || max_T <= 0)
        return error_set(err, "model (cuda): batch %d x length %d must be positive", max_B, max_T);
    QwenCuda *qc = calloc(1, sizeof *qc);
    if (!qc) return error_set(err, "model (cuda): out of memory");
    const QwenConfig *c = &m->cfg;
    qc->cfg = *c;
    qc->max_B = max_B, qc->max_T = max_T;
    qc->num_params = m->num_params;
    size_t N = (size_t)max_B * max_T, D = c->hidden_size, F = c->intermediate_size;
    size_t QD = (size_t)c->num_heads * c->head_dim, KD = (size_t)c->num_kv_heads * c->head_dim;
    size_t rows = N < LOGIT_ROWS ? N : LOGIT_ROWS;
    struct {
        void **p;
        size_t bytes;
    } a[] = {
        {(void **)&qc->d_params, sizeof(float) * m->num_params},
        {(void **)&qc->x, sizeof(float) * N * D},
        {(void **)&qc->x_mid, sizeof(float) * N * D},
        {(void **)&qc->ln, sizeof(float) * N * D},
        {(void **)&qc->rstd, sizeof(float) * N},
        {(void **)&qc->rstd_h, sizeof(float) * N * c->num_heads},
        {(void **)&qc->q_raw, sizeof(float) * N * QD},
        {(void **)&qc->k_raw, sizeof(float) * N * KD},
        {(void **)&qc->q, sizeof(float) * N * QD},
        {(void **)&qc->k, sizeof(float) * N * KD},
        {(void **)&qc->v, sizeof(float) * N * KD},
        {(void **)&qc->probs, sizeof(float) * (size_t)max_B * c->num_heads * max_T * max_T},
        {(void **)&qc->att, sizeof(float) * N * QD},
        {(void **)&qc->gate, sizeof(float) * N * F},
        {(void **)&qc->up, sizeof(float) * N * F},
        {(void **)&qc->act, sizeof(float) * N * F},
        {(void **)&qc->logits, sizeof(float) * rows * c->vocab_size},
        {(void **)&qc->logp, sizeof(float) * N},
        {(void **)&qc->ent, sizeof(float) * N},
        {(void **)&qc->tokens, sizeof(int) * N},
        {(void **)&qc->pos, sizeof(int) * N},
        {(void **)&qc->target, sizeof(int) * N},
    };
    for (size_t i = 0; i < sizeof a / sizeof a[0]; i++)
        if (cuda_alloc(a[i].p, a[i].bytes, err)) {
            qwen_cuda_free(qc);
            return error_prefix(err, "model (cuda): batch %d x length %d", max_B, max_T);
        }
    qc->h_logp = malloc(sizeof(float) * N);
    qc->h_ent = malloc(sizeof(float) * N);
    qc->h_pos = malloc(sizeof(int) * N);
    qc->h_target = malloc(sizeof(int) * N);
    if (!qc->h_logp || !qc->h_ent || !qc->h_pos || !qc->h_target) {
        qwen_cuda_free(qc);
        return error_set(err, "model (cuda): out of memory");
    }
    qwen_weights_point(c, qc->d_params, &qc->w);
    if (cuda_blas_create(&qc->cb, err) || qwen_cuda_upload(qc, m, err)) {
        qwen_cuda_free(qc);
        return -1;
    }
    *out = qc;
    return 0;
}

// Embedding through the final norm (into qc->ln); forward_trunk of qwen_train.c.
static int trunk(QwenCuda *qc, int B, int T, Error *err) {
    const QwenConfig *c = &qc->cfg;
    const QwenWeights *w = &qc->w;
    int N = B * T, D = c->hidden_size, F = c->intermediate_size, hd = c->head_dim, Hq = c->num_heads;
    int Hkv = c->num_kv_heads, QD = Hq * hd, KD = Hkv * hd;
    float eps = c->rms_norm_eps;
    if (cuda_embedding_forward(qc->x, w->embed, qc->tokens, N, D, err)) return -1;
    for (size_t l = 0; l < (size_t)c->num_layers; l++) {
        int rc = cuda_rmsnorm_forward(qc->ln, qc->rstd, qc->x, w->attn_norm + l * D, N, D, eps, err) ||
                 cuda_linear_forward(qc->cb, qc->q_raw, qc->ln, w->wq + l * QD * D, w->bq ? w->bq + l * QD : NULL, N, D,
                                     QD, err) ||
                 cuda_linear_forward(qc->cb, qc->k_raw, qc->ln, w->wk + l * KD * D, w->bk ? w->bk + l * KD : NULL, N, D,
                                     KD, err) ||
                 cuda_linear_forward(qc->cb, qc->v, qc->ln, w->wv + l * KD * D, w->bv ? w->bv + l * KD : NULL, N, D, KD,
                                     err);
        if (!rc && c->qk_norm)  // per-head RMSNorm over head_dim: rows of width hd
            rc = cuda_rmsnorm_forward(qc->q, qc->rstd_h, qc->q_raw, w->q_norm + l * hd, N * Hq, hd, eps, err) ||
                 cuda_rmsnorm_forward(qc->k, qc->rstd_h, qc->k_raw, w->k_norm + l * hd, N * Hkv, hd, eps, err);
        else if (!rc)
            rc = cuda_copy(qc->q, qc->q_raw, sizeof(float) * N * QD, err) ||
                 cuda_copy(qc->k, qc->k_raw, sizeof(float) * N * KD, err);
        rc = rc || cuda_rope_forward(qc->q, qc->pos, N, Hq, hd, c->rope_theta, err) ||
             cuda_rope_forward(qc->k, qc->pos, N, Hkv, hd, c->rope_theta, err) ||
             cuda_attention_forward(qc->cb, qc->att, qc->probs, qc->q, qc->k, qc->v, B, T, Hq, Hkv, hd, err) ||
             cuda_copy(qc->x_mid, qc->x, sizeof(float) * N * D, err) ||
             cuda_sgemm(qc->cb, 0, 1, N, D, QD, 1.0f, qc->att, QD, w->wo + l * D * QD, QD, 1.0f, qc->x_mid, D, err) ||
             cuda_rmsnorm_forward(qc->ln, qc->rstd, qc->x_mid, w->mlp_norm + l * D, N, D, eps, err) ||
             cuda_linear_forward(qc->cb, qc->gate, qc->ln, w->w_gate + l * F * D, NULL, N, D, F, err) ||
             cuda_linear_forward(qc->cb, qc->up, qc->ln, w->w_up + l * F * D, NULL, N, D, F, err) ||
             cuda_swiglu_forward(qc->act, qc->gate, qc->up, (long)N * F, err) ||
             cuda_copy(qc->x, qc->x_mid, sizeof(float) * N * D, err) ||
             cuda_sgemm(qc->cb, 0, 1, N, D, F, 1.0f, qc->act, F, w->w_down + l * D * F, F, 1.0f, qc->x, D, err);
        if (rc) return error_prefix(err, "layer %zu", l);
    }
    return cuda_rmsnorm_forward(qc->ln, qc->rstd, qc->x, w->final_norm, N, D, eps, err);
}

int qwen_cuda_forward(QwenCuda *qc, const int *tokens, int B, int T, float temperature, float *logp, float *entropy,
                      Error *err) {
    const QwenConfig *c = &qc->cfg;
    if (T < 2) return error_set(err, "forward (cuda): sequences need at least 2 tokens to score (got %d)", T);
    if (!(temperature > 0) || !isfinite(temperature))
        return error_set(err, "forward (cuda): temperature must be positive (got %g)", temperature);
    if (B <= 0 || B > qc->max_B || T > qc->max_T)
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
    if (cuda_to_device(qc->tokens, tokens, sizeof(int) * N, err) ||
        cuda_to_device(qc->pos, qc->h_pos, sizeof(int) * N, err) ||
        cuda_to_device(qc->target, qc->h_target, sizeof(int) * N, err) || trunk(qc, B, T, err))
        return error_prefix(err, "forward (cuda)");
    for (int r0 = 0; r0 < N; r0 += LOGIT_ROWS) {
        int nr = N - r0 < LOGIT_ROWS ? N - r0 : LOGIT_ROWS;
        if (cuda_sgemm(qc->cb, 0, 1, nr, V, D, 1.0f / temperature, qc->ln + (size_t)r0 * D, D, qc->w.lm_head, D, 0.0f,
                       qc->logits, V, err) ||
            cuda_logsoftmax_rows(qc->logits, qc->target + r0, qc->logp + r0, entropy ? qc->ent + r0 : NULL, nr, V, err))
            return error_prefix(err, "forward (cuda): logits");
    }
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

#endif
