#include "policy/qwen_train.h"

#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/blas.h"
#include "core/gemm_bf16.h"
#include "policy/ops.h"

// Rows of the vocabulary GEMM done at once: bounds the logits buffer to LOGIT_CHUNK x V floats.
#define LOGIT_CHUNK 64

typedef struct {
    size_t N, D, F, QD, KD, L;
} Dims;

static Dims dims_of(const QwenConfig *c, int B, int T) {
    Dims d;
    d.N = (size_t)B * T;
    d.D = c->hidden_size;
    d.F = c->intermediate_size;
    d.QD = (size_t)c->num_heads * c->head_dim;
    d.KD = (size_t)c->num_kv_heads * c->head_dim;
    d.L = c->num_layers;
    return d;
}

static size_t scratch_floats(const QwenConfig *c, Dims d) {
    size_t rows = 4 * d.D + 2 * d.QD + 2 * d.KD + 3 * d.F;
    return d.N * rows + (size_t)LOGIT_CHUNK * (c->vocab_size + 2 * d.D);
}

// Threads the attention backward runs on, each with a T x T work block.
static int att_threads(void) { return omp_get_max_threads(); }

size_t qwen_acts_bytes_ex(const QwenConfig *c, int B, int T, int recompute) {
    Dims d = dims_of(c, B, T);
    // per layer: x (always kept per layer) + everything else (one layer's room when recomputing)
    size_t rest = d.N * (4 * d.D + 2 + 3 * d.QD + 4 * d.KD + c->num_heads + c->num_kv_heads + 3 * d.F) +
                  (size_t)B * c->num_heads * T * T;
    size_t floats = d.L * d.N * d.D + (recompute ? 1 : d.L) * rest + d.N * (2 * d.D + 1) + scratch_floats(c, d) +
                    (size_t)att_threads() * T * T;
    if (d.N * c->vocab_size * sizeof(float) <= QWEN_KEEP_PROBS_MAX_BYTES) floats += d.N * c->vocab_size;
    return floats * sizeof(float) + 3 * d.N * sizeof(int);
}

size_t qwen_acts_bytes(const QwenConfig *c, int B, int T) { return qwen_acts_bytes_ex(c, B, T, 0); }

int qwen_acts_alloc(QwenActs *a, const QwenConfig *c, int B, int T, Error *err) {
    return qwen_acts_alloc_ex(a, c, B, T, 0, err);
}

int qwen_acts_alloc_ex(QwenActs *a, const QwenConfig *c, int B, int T, int recompute, Error *err) {
    memset(a, 0, sizeof *a);
    if (B <= 0 || T <= 0) return error_set(err, "activations: batch %d x length %d must be positive", B, T);
    Dims d = dims_of(c, B, T);
    a->B = B;
    a->T = T;
    a->recompute = recompute;
    a->att_threads = att_threads();
    size_t S = recompute ? 1 : d.L;  // layers of room for everything but the layer inputs
    struct {
        float **p;
        size_t n;
    } f[] = {
        {&a->x, d.L * d.N * d.D},       {&a->ln1, S * d.N * d.D},
        {&a->rstd1, S * d.N},         {&a->q_raw, S * d.N * d.QD},
        {&a->k_raw, S * d.N * d.KD},  {&a->rstd_q, S * d.N * c->num_heads},
        {&a->rstd_k, S * d.N * c->num_kv_heads},
        {&a->q, S * d.N * d.QD},      {&a->k, S * d.N * d.KD},
        {&a->v, S * d.N * d.KD},      {&a->probs, S * (size_t)B * c->num_heads * T * T},
        {&a->att, S * d.N * d.QD},    {&a->x_mid, S * d.N * d.D},
        {&a->ln2, S * d.N * d.D},     {&a->rstd2, S * d.N},
        {&a->gate, S * d.N * d.F},    {&a->up, S * d.N * d.F},
        {&a->act, S * d.N * d.F},     {&a->x_out, d.N * d.D},
        {&a->lnf, d.N * d.D},           {&a->rstdf, d.N},
        {&a->scratch, scratch_floats(c, d)}, {&a->att_work, (size_t)a->att_threads * T * T},
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        *f[i].p = malloc(sizeof(float) * (f[i].n ? f[i].n : 1));
        if (!*f[i].p) {
            qwen_acts_free(a);
            return error_set(err, "out of memory for activations (batch %d x length %d needs %.1f MB)", B, T,
                             qwen_acts_bytes_ex(c, B, T, recompute) / 1e6);
        }
    }
    a->scratch_size = scratch_floats(c, d);
    // optional: without it the backward recomputes the logits (a failed allocation only costs time)
    if (d.N * c->vocab_size * sizeof(float) <= QWEN_KEEP_PROBS_MAX_BYTES)
        a->probs_kept = malloc(sizeof(float) * d.N * c->vocab_size);
    a->pos = malloc(sizeof(int) * d.N);
    a->tokens = malloc(sizeof(int) * d.N);
    a->rows = malloc(sizeof(int) * d.N);
    if (!a->pos || !a->tokens || !a->rows) {
        qwen_acts_free(a);
        return error_set(err, "out of memory for activations");
    }
    return 0;
}

void qwen_acts_free(QwenActs *a) {
    float **f[] = {&a->x,     &a->ln1,   &a->rstd1, &a->q_raw, &a->k_raw, &a->rstd_q, &a->rstd_k, &a->q,
                   &a->k,     &a->v,     &a->probs, &a->att,   &a->x_mid, &a->ln2,    &a->rstd2,  &a->gate,
                   &a->up,    &a->act,   &a->x_out, &a->lnf,   &a->rstdf, &a->scratch, &a->att_work};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) free(*f[i]);
    free(a->probs_kept);
    free(a->pos);
    free(a->tokens);
    free(a->rows);
    memset(a, 0, sizeof *a);
}

// Layer l's activations: its input x (always kept per layer), the next layer's input, and the rest
// in slot l, or in the single slot when recomputing.
typedef struct {
    float *x, *ln1, *rstd1, *q_raw, *k_raw, *rstd_q, *rstd_k, *q, *k, *v, *probs, *att, *x_mid, *ln2, *rstd2;
    float *gate, *up, *act, *x_next;
} LayerActs;

static LayerActs layer_acts(const QwenActs *a, const QwenConfig *c, Dims d, size_t l) {
    size_t s = a->recompute ? 0 : l, P = (size_t)a->batch * c->num_heads * a->len * a->len;
    LayerActs r;
    r.x = a->x + l * d.N * d.D;
    r.x_next = l + 1 < d.L ? a->x + (l + 1) * d.N * d.D : a->x_out;
    r.ln1 = a->ln1 + s * d.N * d.D, r.rstd1 = a->rstd1 + s * d.N;
    r.q_raw = a->q_raw + s * d.N * d.QD, r.k_raw = a->k_raw + s * d.N * d.KD;
    r.rstd_q = a->rstd_q + s * d.N * c->num_heads, r.rstd_k = a->rstd_k + s * d.N * c->num_kv_heads;
    r.q = a->q + s * d.N * d.QD, r.k = a->k + s * d.N * d.KD, r.v = a->v + s * d.N * d.KD;
    r.probs = a->probs + s * P, r.att = a->att + s * d.N * d.QD;
    r.x_mid = a->x_mid + s * d.N * d.D, r.ln2 = a->ln2 + s * d.N * d.D, r.rstd2 = a->rstd2 + s * d.N;
    r.gate = a->gate + s * d.N * d.F, r.up = a->up + s * d.N * d.F, r.act = a->act + s * d.N * d.F;
    return r;
}

// One decoder layer from la->x to la->x_next, saving its activations in la.
static void layer_forward(const QwenModel *m, const QwenActs *a, const LayerActs *la, size_t l, Dims d) {
    const QwenConfig *c = &m->cfg;
    const QwenWeights *w = &m->w;
    int hd = c->head_dim, Hq = c->num_heads, Hkv = c->num_kv_heads, B = a->batch, T = a->len;
    int bf16 = a->matmul_bf16;
    rmsnorm_forward(la->ln1, la->rstd1, la->x, w->attn_norm + l * d.D, d.N, d.D, c->rms_norm_eps);
    linear_forward(la->q_raw, la->ln1, w->wq + l * d.QD * d.D, w->bq ? w->bq + l * d.QD : NULL, d.N, d.D, d.QD, bf16);
    linear_forward(la->k_raw, la->ln1, w->wk + l * d.KD * d.D, w->bk ? w->bk + l * d.KD : NULL, d.N, d.D, d.KD, bf16);
    linear_forward(la->v, la->ln1, w->wv + l * d.KD * d.D, w->bv ? w->bv + l * d.KD : NULL, d.N, d.D, d.KD, bf16);
    if (c->qk_norm) {
        // per-head RMSNorm over head_dim: rows of width hd
        rmsnorm_forward(la->q, la->rstd_q, la->q_raw, w->q_norm + l * hd, d.N * Hq, hd, c->rms_norm_eps);
        rmsnorm_forward(la->k, la->rstd_k, la->k_raw, w->k_norm + l * hd, d.N * Hkv, hd, c->rms_norm_eps);
    } else {
        memcpy(la->q, la->q_raw, sizeof(float) * d.N * d.QD);
        memcpy(la->k, la->k_raw, sizeof(float) * d.N * d.KD);
    }
    rope_forward(la->q, a->pos, d.N, Hq, hd, c->rope_theta);
    rope_forward(la->k, a->pos, d.N, Hkv, hd, c->rope_theta);
    attention_forward(la->att, la->probs, la->q, la->k, la->v, B, T, Hq, Hkv, hd, bf16);
    memcpy(la->x_mid, la->x, sizeof(float) * d.N * d.D);
    gemm_dt(bf16, 0, 1, d.N, d.D, d.QD, 1.0f, la->att, d.QD, w->wo + l * d.D * d.QD, d.QD, 1.0f, la->x_mid, d.D);
    rmsnorm_forward(la->ln2, la->rstd2, la->x_mid, w->mlp_norm + l * d.D, d.N, d.D, c->rms_norm_eps);
    linear_forward(la->gate, la->ln2, w->w_gate + l * d.F * d.D, NULL, d.N, d.D, d.F, bf16);
    linear_forward(la->up, la->ln2, w->w_up + l * d.F * d.D, NULL, d.N, d.D, d.F, bf16);
    swiglu_forward(la->act, la->gate, la->up, (long)(d.N * d.F));
    memcpy(la->x_next, la->x_mid, sizeof(float) * d.N * d.D);
    gemm_dt(bf16, 0, 1, d.N, d.D, d.F, 1.0f, la->act, d.F, w->w_down + l * d.D * d.F, d.F, 1.0f, la->x_next, d.D);
}

// Embedding through the final norm; fills every saved activation.
static int forward_trunk(const QwenModel *m, QwenActs *a, const int *tokens, int B, int T, Error *err) {
    const QwenConfig *c = &m->cfg;
    const QwenWeights *w = &m->w;
    // a shorter length may take more sequences (rows B * T within capacity), never a longer one: the
    // attention's [T x T] blocks are planned for the capacity's length
    if (B <= 0 || T <= 0 || T > a->T || (size_t)B * T > (size_t)a->B * a->T)
        return error_set(err, "forward: batch %d x %d exceeds the activation capacity %d x %d", B, T, a->B, a->T);
    if (T > c->max_position_embeddings)
        return error_set(err, "forward: sequence length %d exceeds max_position_embeddings %d", T,
                         c->max_position_embeddings);
    Dims d = dims_of(c, B, T);
    a->batch = B;
    a->len = T;
    a->probs_ready = 0;
    for (size_t n = 0; n < d.N; n++) {
        if (tokens[n] < 0 || tokens[n] >= c->vocab_size)
            return error_set(err, "forward: token id %d at position %zu is outside the vocabulary [0, %d)", tokens[n],
                             n, c->vocab_size);
        a->tokens[n] = tokens[n];
        a->pos[n] = (int)(n % T);
    }
    for (size_t n = 0; n < d.N; n++) memcpy(a->x + n * d.D, w->embed + (size_t)tokens[n] * d.D, sizeof(float) * d.D);
    for (size_t l = 0; l < d.L; l++) {
        LayerActs la = layer_acts(a, c, d, l);
        layer_forward(m, a, &la, l, d);
    }
    rmsnorm_forward(a->lnf, a->rstdf, a->x_out, w->final_norm, d.N, d.D, c->rms_norm_eps);
    return 0;
}

// With bf16 products the lm_head is packed once per forward or backward call, not once per chunk
// of LOGIT_CHUNK rows (V x D values each time). trans = 0: the operand of logits = lnf lm_head^T;
// trans = 1: of dlnf = dlogits lm_head. A failed allocation leaves head->data NULL (bf16_pack_b)
// and the chunks pack for themselves (gemm_dt).
static void pack_lm_head(const QwenModel *m, int trans, Bf16Packed *head) {
    int V = m->cfg.vocab_size, D = m->cfg.hidden_size;
    Error ignored;
    if (trans) bf16_pack_b(head, m->w.lm_head, D, 1, D, V, &ignored);
    else bf16_pack_b(head, m->w.lm_head, D, 0, V, D, &ignored);
}

// The final-norm outputs of scored rows a->rows[r0 .. r0+nr) into in (nr x D).
static void gather_lnf(const QwenActs *a, size_t D, int r0, int nr, float *in) {
    for (int i = 0; i < nr; i++) memcpy(in + i * D, a->lnf + (size_t)a->rows[r0 + i] * D, sizeof(float) * D);
}

// logits[r, :] for rows a->rows[r0 .. r0+nr): gathers lnf rows into `in` then one GEMM (on the
// packed bf16 lm_head when given). Logits are divided by the forward's temperature here (alpha).
static void chunk_logits(const QwenModel *m, const QwenActs *a, const Bf16Packed *head, int r0, int nr, float *in,
                         float *logits) {
    size_t D = m->cfg.hidden_size;
    int V = m->cfg.vocab_size;
    gather_lnf(a, D, r0, nr, in);
    if (head && head->data && gemm_bf16(logits, V, 1.0f / a->temperature, 0, in, D, 0, nr, head) == 0) return;
    gemm_dt(a->matmul_bf16, 0, 1, nr, V, D, 1.0f / a->temperature, in, D, m->w.lm_head, D, 0.0f, logits, V);
}

int qwen_forward(const QwenModel *m, QwenActs *a, const int *tokens, const unsigned char *need, int B, int T,
                 float temperature, float *logp, float *entropy, Error *err) {
    if (T < 2) return error_set(err, "forward: sequences need at least 2 tokens to score (got %d)", T);
    if (!(temperature > 0) || !isfinite(temperature))
        return error_set(err, "forward: temperature must be positive (got %g)", temperature);
    if (forward_trunk(m, a, tokens, B, T, err)) return -1;
    a->temperature = temperature;
    int V = m->cfg.vocab_size;
    size_t D = m->cfg.hidden_size;
    a->num_rows = 0;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T - 1; t++) {
            size_t i = (size_t)b * (T - 1) + t;
            logp[i] = 0;
            if (entropy) entropy[i] = 0;
            if (!need || need[i]) a->rows[a->num_rows++] = b * T + t;
        }
    float *in = a->scratch, *logits = a->scratch + LOGIT_CHUNK * D;
    Bf16Packed head = {0};
    if (a->matmul_bf16) pack_lm_head(m, 0, &head);
    for (int r0 = 0; r0 < a->num_rows; r0 += LOGIT_CHUNK) {
        int nr = a->num_rows - r0 < LOGIT_CHUNK ? a->num_rows - r0 : LOGIT_CHUNK;
        chunk_logits(m, a, &head, r0, nr, in, logits);
#pragma omp parallel for
        for (int i = 0; i < nr; i++) {
            int row = a->rows[r0 + i], b = row / T, t = row % T;
            size_t o = (size_t)b * (T - 1) + t;
            float *keep = a->probs_kept ? a->probs_kept + (size_t)(r0 + i) * V : NULL;
            logp[o] = logsoftmax_row(logits + (size_t)i * V, V, tokens[row + 1], entropy ? &entropy[o] : NULL, keep);
        }
    }
    bf16_packed_free(&head);
    a->probs_ready = a->probs_kept != NULL;
    return 0;
}

int qwen_forward_logits(const QwenModel *m, QwenActs *a, const int *tokens, int B, int T, float *logits,
                        Error *err) {
    if (forward_trunk(m, a, tokens, B, T, err)) return -1;
    a->temperature = 1.0f;
    size_t D = m->cfg.hidden_size;
    gemm_dt(a->matmul_bf16, 0, 1, B * T, m->cfg.vocab_size, D, 1.0f, a->lnf, D, m->w.lm_head, D, 0.0f, logits,
            m->cfg.vocab_size);
    return 0;
}

// Scored rows r0 .. r0+nr-1: probs (nr x V, their softmax) becomes d(sum w logp) / d logits =
// w * (onehot(target) - p), in place.
static void dlogits_rows(const QwenActs *a, const float *wgt, int V, int r0, int nr, float *probs) {
    int T = a->len;
#pragma omp parallel for
    for (int i = 0; i < nr; i++) {
        int row = a->rows[r0 + i], b = row / T, t = row % T;
        float wt = wgt[(size_t)b * (T - 1) + t];
        float *lg = probs + (size_t)i * V;
        for (int v = 0; v < V; v++) lg[v] = -wt * lg[v];
        lg[a->tokens[row + 1]] += wt;
    }
}

// The lm_head's backward for scored rows r0 .. r0+nr-1, given their d logits (nr x V) and their
// lnf rows `in`: dlnf = d logits lm_head / temperature into those rows of dln (through the nr x D
// work space dlnf; on head_t, the lm_head packed transposed, when given), and the lm_head
// gradient += d logits^T in / temperature.
static void head_backward_rows(const QwenModel *m, const QwenActs *a, const Bf16Packed *head_t, int r0, int nr,
                               const float *dlogits, const float *in, float *dlnf, float *g_head, float *dln) {
    int V = m->cfg.vocab_size, bf16 = a->matmul_bf16;
    size_t D = m->cfg.hidden_size;
    float inv_t = 1.0f / a->temperature;  // logits = (lnf @ lm_head^T) / temperature
    if (!head_t || !head_t->data || gemm_bf16(dlnf, D, inv_t, 0, dlogits, V, 0, nr, head_t))
        gemm_dt(bf16, 0, 0, nr, D, V, inv_t, dlogits, V, m->w.lm_head, D, 0.0f, dlnf, D);
    gemm_dt(bf16, 1, 0, V, D, nr, inv_t, dlogits, V, in, D, 1.0f, g_head, D);
    for (int i = 0; i < nr; i++) memcpy(dln + (size_t)a->rows[r0 + i] * D, dlnf + i * D, sizeof(float) * D);
}

// From the forward's kept softmax: every scored row at once, so the gradient of the (V x D)
// lm_head is one product over all rows instead of a pass over it per chunk of rows (which cost 3x
// its FLOPs in memory traffic). The kept softmax is overwritten. in, dlnf: num_rows x D of work
// space.
static void head_backward_kept(const QwenModel *m, QwenActs *a, const float *wgt, float *g_head, float *dln,
                               float *in, float *dlnf) {
    int nr = a->num_rows;
    if (nr == 0) return;
    a->probs_ready = 0;  // a second backward of the same forward recomputes the logits
    dlogits_rows(a, wgt, m->cfg.vocab_size, 0, nr, a->probs_kept);
    gather_lnf(a, m->cfg.hidden_size, 0, nr, in);
    head_backward_rows(m, a, NULL, 0, nr, a->probs_kept, in, dlnf, g_head, dln);
}

// The same from logits recomputed LOGIT_CHUNK rows at a time (no N x V buffer). in, dlnf_rows:
// LOGIT_CHUNK x D; logits: LOGIT_CHUNK x V.
static void head_backward_chunked(const QwenModel *m, QwenActs *a, const float *wgt, float *g_head, float *dln,
                                  float *in, float *dlnf_rows, float *logits) {
    int V = m->cfg.vocab_size;
    Bf16Packed head = {0}, head_t = {0};
    if (a->matmul_bf16) {
        pack_lm_head(m, 1, &head_t);
        pack_lm_head(m, 0, &head);
    }
    for (int r0 = 0; r0 < a->num_rows; r0 += LOGIT_CHUNK) {
        int nr = a->num_rows - r0 < LOGIT_CHUNK ? a->num_rows - r0 : LOGIT_CHUNK;
        chunk_logits(m, a, &head, r0, nr, in, logits);
#pragma omp parallel for
        for (int i = 0; i < nr; i++) logsoftmax_row(logits + (size_t)i * V, V, 0, NULL, logits + (size_t)i * V);
        dlogits_rows(a, wgt, V, r0, nr, logits);
        head_backward_rows(m, a, &head_t, r0, nr, logits, in, dlnf_rows, g_head, dln);
    }
    bf16_packed_free(&head);
    bf16_packed_free(&head_t);
}

void qwen_backward(const QwenModel *m, QwenActs *a, const float *wgt, float *grads) {
    const QwenConfig *c = &m->cfg;
    const QwenWeights *w = &m->w;
    QwenWeights g;
    qwen_weights_point(c, grads, &g);
    int B = a->batch, T = a->len;
    int hd = c->head_dim, Hq = c->num_heads, Hkv = c->num_kv_heads;
    size_t D = c->hidden_size;
    Dims d = dims_of(c, B, T);
    int bf16 = a->matmul_bf16;
    float *s = a->scratch;
    float *dx = s;                 s += d.N * d.D;  // gradient of the residual stream
    float *dln = s;                s += d.N * d.D;
    float *dx_mid = s;             s += d.N * d.D;
    float *dtmp = s;               s += d.N * d.D;
    float *dq = s;                 s += d.N * d.QD;
    float *datt = s;               s += d.N * d.QD;
    float *dk = s;                 s += d.N * d.KD;
    float *dv = s;                 s += d.N * d.KD;
    float *dgate = s;              s += d.N * d.F;
    float *dup = s;                s += d.N * d.F;
    float *dact = s;               s += d.N * d.F;
    float *in = s;                 s += (size_t)LOGIT_CHUNK * D;
    float *dlnf_rows = s;          s += (size_t)LOGIT_CHUNK * D;
    float *logits = s;

    // lm_head and the final norm: dlnf only on scored rows
    memset(dln, 0, sizeof(float) * d.N * d.D);
    if (a->probs_kept && a->probs_ready)
        head_backward_kept(m, a, wgt, g.lm_head, dln, dx_mid, dtmp);
    else
        head_backward_chunked(m, a, wgt, g.lm_head, dln, in, dlnf_rows, logits);
    rmsnorm_backward(dx, 0, g.final_norm, dln, a->x_out, w->final_norm, a->rstdf, d.N, d.D);

    for (size_t l = d.L; l-- > 0;) {
        LayerActs la = layer_acts(a, c, d, l);
        if (a->recompute) layer_forward(m, a, &la, l, d);  // rebuild this layer's activations from its input
        float *x = la.x, *ln1 = la.ln1, *q_raw = la.q_raw, *k_raw = la.k_raw, *q = la.q, *k = la.k, *v = la.v;
        float *att = la.att, *x_mid = la.x_mid, *ln2 = la.ln2, *gate = la.gate, *up = la.up, *act = la.act;
        float *probs = la.probs;
        // MLP: x_next = x_mid + down(silu(gate(ln2)) * up(ln2))
        linear_backward(dact, 0, g.w_down + l * d.D * d.F, NULL, dx, act, w->w_down + l * d.D * d.F, d.N, d.F, d.D, bf16);
        swiglu_backward(dgate, dup, dact, gate, up, (long)(d.N * d.F));
        linear_backward(dln, 0, g.w_gate + l * d.F * d.D, NULL, dgate, ln2, w->w_gate + l * d.F * d.D, d.N, d.D, d.F, bf16);
        linear_backward(dln, 1, g.w_up + l * d.F * d.D, NULL, dup, ln2, w->w_up + l * d.F * d.D, d.N, d.D, d.F, bf16);
        memcpy(dx_mid, dx, sizeof(float) * d.N * d.D);
        rmsnorm_backward(dx_mid, 1, g.mlp_norm + l * d.D, dln, x_mid, w->mlp_norm + l * d.D, la.rstd2, d.N,
                         d.D);
        // attention: x_mid = x + o_proj(att)
        linear_backward(datt, 0, g.wo + l * d.D * d.QD, NULL, dx_mid, att, w->wo + l * d.D * d.QD, d.N, d.QD, d.D, bf16);
        attention_backward(dq, dk, dv, datt, probs, q, k, v, B, T, Hq, Hkv, hd, bf16, a->att_work, a->att_threads);
        rope_backward(dq, a->pos, d.N, Hq, hd, c->rope_theta);
        rope_backward(dk, a->pos, d.N, Hkv, hd, c->rope_theta);
        if (c->qk_norm) {
            // dq/dk are w.r.t. the normed values: map back to the raw projections (reuse datt / dtmp)
            rmsnorm_backward(datt, 0, g.q_norm + l * hd, dq, q_raw, w->q_norm + l * hd, la.rstd_q,
                             d.N * Hq, hd);
            memcpy(dq, datt, sizeof(float) * d.N * d.QD);
            rmsnorm_backward(dtmp, 0, g.k_norm + l * hd, dk, k_raw, w->k_norm + l * hd, la.rstd_k,
                             d.N * Hkv, hd);
            memcpy(dk, dtmp, sizeof(float) * d.N * d.KD);
        }
        linear_backward(dln, 0, g.wq + l * d.QD * d.D, g.bq ? g.bq + l * d.QD : NULL, dq, ln1, w->wq + l * d.QD * d.D,
                        d.N, d.D, d.QD, bf16);
        linear_backward(dln, 1, g.wk + l * d.KD * d.D, g.bk ? g.bk + l * d.KD : NULL, dk, ln1, w->wk + l * d.KD * d.D,
                        d.N, d.D, d.KD, bf16);
        linear_backward(dln, 1, g.wv + l * d.KD * d.D, g.bv ? g.bv + l * d.KD : NULL, dv, ln1, w->wv + l * d.KD * d.D,
                        d.N, d.D, d.KD, bf16);
        memcpy(dx, dx_mid, sizeof(float) * d.N * d.D);
        rmsnorm_backward(dx, 1, g.attn_norm + l * d.D, dln, x, w->attn_norm + l * d.D, la.rstd1, d.N, d.D);
    }
    // embedding rows (tied: the same buffer as lm_head's gradient)
    for (size_t n = 0; n < d.N; n++) {
        float *ge = g.embed + (size_t)a->tokens[n] * D;
        const float *dr = dx + n * D;
        for (size_t i = 0; i < D; i++) ge[i] += dr[i];
    }
}
