// Decode with a device KV cache (see qwen_cuda.h): qwen_decode of qwen_decode.c, op for op, on the
// device. Slot lengths live on the host, so positions and "slot full" errors are decided before
// any kernel runs; K and V are [L, slot, position, KD] on the device.
#include "policy/qwen_cuda.h"

#ifndef PIONRL_CUDA

static int no_cuda(Error *err) {
    return error_set(err, "decode: this pionrl was built without CUDA (rebuild with make CUDA=1)");
}

int qwen_cuda_kv_create(QwenCuda *qc, int num_slots, int max_len, int max_tokens, QwenCudaKV **out, Error *err) {
    *out = NULL;
    return no_cuda(err);
}
int qwen_cuda_kv_create_ex(QwenCuda *qc, int num_slots, int max_len, int max_tokens, int bf16, QwenCudaKV **out,
                           Error *err) {
    *out = NULL;
    return no_cuda(err);
}
int qwen_cuda_kv_set_matmul_bf16(QwenCudaKV *kv, int on, Error *err) { return no_cuda(err); }
int qwen_cuda_kv_set_graphs(QwenCudaKV *kv, int on) { return -1; }
int qwen_cuda_kv_fits(const QwenCudaKV *kv, const QwenCuda *qc, int num_slots, int max_len, int max_tokens, int bf16) {
    return 0;
}
void qwen_cuda_kv_reset_all(QwenCudaKV *kv) {}
int qwen_cuda_kv_num_graphs(const QwenCudaKV *kv) { return 0; }
int qwen_cuda_kv_graph_nodes(const QwenCudaKV *kv, int n) { return 0; }
void qwen_cuda_kv_free(QwenCudaKV *kv) {}
void qwen_cuda_kv_reset(QwenCudaKV *kv, int slot) {}
int qwen_cuda_kv_copy(QwenCudaKV *kv, int dst, int src, Error *err) { return no_cuda(err); }
int qwen_cuda_decode(QwenCudaKV *kv, const int *slot, const int *token, int n, const unsigned char *want, float *logits,
                     Error *err) {
    return no_cuda(err);
}
int qwen_cuda_decode_sample(QwenCudaKV *kv, const int *slot, const int *token, int n, const SamplingParams *sp,
                            int n_valid, const double *u, int *out_tok, float *out_logp, Error *err) {
    return no_cuda(err);
}

#else

#include <stdlib.h>
#include <string.h>

#include "core/cuda_ops.h"
#include "policy/qwen_cuda_internal.h"
#include "policy/sampler_cuda.h"

struct QwenCudaKV {
    QwenCuda *qc;  // weights, cuBLAS handle, config (borrowed)
    int num_slots, max_len, max_tokens;
    int cache_slots;  // num_slots + 1: the last is where padding rows of a sampled step write (never read back)
    int *len;         // host: tokens stored per slot
    // One call's inputs travel in one copy and its samples come back in one: h_in/d_in hold, for the call's n rows
    // (n_pad in a sampled step), n uniform numbers (double) then n slots, positions and tokens (int); h_out/d_out n
    // sampled tokens then their n log-probs. The device pointers below point into them, laid out for the current n
    // (a captured step keeps the layout of its own row count).
    void *h_in, *h_out, *d_in, *d_out;
    int *h_row;                                                                   // host: the rows that want logits
    void *K, *V;                                                                  // device cache
    int bf16;                                                                     // cache elements are bfloat16
    int matmul_bf16;                                                              // bf16 matrix products
    // device, max_tokens rows; kk/vv and gate/up are each one allocation (one batched product writes both halves)
    float *x, *ln, *rstd, *q, *kk, *vv, *att, *gate, *up, *in, *logits;
    void *ln16, *att16, *h16;  // bf16 shadows of ln, att and the SwiGLU output (cuda_blas_add_shadow), bf16 products
    int *slot, *pos, *tokens, *rows;  // rows: device copy of h_row
    double *u;  // device sampling: the host's uniform numbers in, a token and log-prob per row out
    int *sampled;
    float *sampled_logp;
    // CUDA Graphs of the sampled decode step, one per batch size n (index n - 1), captured the second time a size is
    // seen (the first run is eager and sizes every buffer); valid for one sampling setup and one generation of the
    // cuBLAS handle's scratch buffers, dropped when either changes
    int graphs;  // on (qwen_cuda_kv_set_graphs)
    CudaGraph **graph;
    unsigned char *seen;
    int num_graphs;
    SamplingParams graph_sp;
    int graph_n_valid;
    unsigned long graph_generation;
};

enum { STEP_IN_BYTES = sizeof(double) + 3 * sizeof(int), STEP_OUT_BYTES = sizeof(int) + sizeof(float) };

static int kv_bufs(QwenCudaKV *kv, CudaBuf *t) {
    const QwenConfig *c = &kv->qc->cfg;
    size_t M = kv->max_tokens, D = c->hidden_size, F = c->intermediate_size, f = sizeof(float);
    size_t QD = (size_t)c->num_heads * c->head_dim, KD = (size_t)c->num_kv_heads * c->head_dim;
    size_t cache = (size_t)c->num_layers * kv->cache_slots * kv->max_len * KD;
    CudaBuf b[] = {
        {(void **)&kv->K, (kv->bf16 ? 2 : f) * cache},
        {(void **)&kv->V, (kv->bf16 ? 2 : f) * cache},
        {(void **)&kv->x, f * M * D},
        {(void **)&kv->ln, f * M * D},
        {(void **)&kv->ln16, 2 * M * D},
        {(void **)&kv->rstd, f * M},
        {(void **)&kv->q, f * M * QD},
        {(void **)&kv->kk, f * 2 * M * KD},
        {(void **)&kv->att, f * M * QD},
        {(void **)&kv->att16, 2 * M * QD},
        {(void **)&kv->gate, f * 2 * M * F},
        {(void **)&kv->h16, 2 * M * F},
        {(void **)&kv->in, f * M * D},
        {(void **)&kv->logits, f * M * c->vocab_size},
        {(void **)&kv->d_in, STEP_IN_BYTES * M},
        {(void **)&kv->rows, sizeof(int) * M},
        {(void **)&kv->d_out, STEP_OUT_BYTES * M},
    };
    int n = (int)(sizeof b / sizeof b[0]);
    if (t) memcpy(t, b, sizeof b);
    return n;
}

// Drops every captured decode step (their buffers may have moved, or the sampling setup changed).
static void drop_graphs(QwenCudaKV *kv) {
    for (int i = 0; kv->graph && i < kv->max_tokens; i++) {
        cuda_graph_free(kv->graph[i]);
        kv->graph[i] = NULL;
    }
    if (kv->seen) memset(kv->seen, 0, kv->max_tokens);
    kv->num_graphs = 0;
}

void qwen_cuda_kv_free(QwenCudaKV *kv) {
    if (!kv) return;
    drop_graphs(kv);
    free(kv->graph);
    free(kv->seen);
    CudaBuf t[32];
    cuda_release_table(t, kv_bufs(kv, t));
    free(kv->len);
    free(kv->h_in);
    free(kv->h_out);
    free(kv->h_row);
    free(kv);
}

int qwen_cuda_kv_create(QwenCuda *qc, int num_slots, int max_len, int max_tokens, QwenCudaKV **out, Error *err) {
    return qwen_cuda_kv_create_ex(qc, num_slots, max_len, max_tokens, 0, out, err);
}

int qwen_cuda_kv_create_ex(QwenCuda *qc, int num_slots, int max_len, int max_tokens, int bf16, QwenCudaKV **out,
                           Error *err) {
    *out = NULL;
    if (num_slots <= 0 || max_len <= 0 || max_tokens <= 0)
        return error_set(err, "kv cache (cuda): slots %d, length %d, tokens %d must be positive", num_slots, max_len,
                         max_tokens);
    if (max_len > qc->cfg.max_position_embeddings)
        return error_set(err, "kv cache (cuda): length %d exceeds max_position_embeddings %d", max_len,
                         qc->cfg.max_position_embeddings);
    QwenCudaKV *kv = calloc(1, sizeof *kv);
    if (!kv) return error_set(err, "kv cache (cuda): out of memory");
    kv->qc = qc;
    kv->num_slots = num_slots, kv->max_len = max_len, kv->max_tokens = max_tokens, kv->cache_slots = num_slots + 1;
    kv->bf16 = bf16;
    kv->len = calloc(num_slots, sizeof(int));
    kv->h_in = malloc((size_t)STEP_IN_BYTES * max_tokens);
    kv->h_out = malloc((size_t)STEP_OUT_BYTES * max_tokens);
    kv->h_row = malloc(sizeof(int) * max_tokens);
    kv->graph = calloc(max_tokens, sizeof(CudaGraph *));
    kv->seen = calloc(max_tokens, 1);
    kv->graphs = 1;
    if (!kv->len || !kv->h_in || !kv->h_out || !kv->h_row || !kv->graph || !kv->seen) {
        qwen_cuda_kv_free(kv);
        return error_set(err, "kv cache (cuda): out of memory");
    }
    CudaBuf t[32];
    if (cuda_alloc_table(t, kv_bufs(kv, t), err)) {
        qwen_cuda_kv_free(kv);
        return error_prefix(err, "kv cache (cuda): %d slots x %d tokens", num_slots, max_len);
    }
    const QwenConfig *c = &qc->cfg;
    kv->vv = kv->kk + (size_t)max_tokens * c->num_kv_heads * c->head_dim;
    kv->up = kv->gate + (size_t)max_tokens * c->intermediate_size;
    *out = kv;
    return 0;
}

void qwen_cuda_kv_reset(QwenCudaKV *kv, int slot) {
    if (slot >= 0 && slot < kv->num_slots) kv->len[slot] = 0;
}

void qwen_cuda_kv_reset_all(QwenCudaKV *kv) { memset(kv->len, 0, sizeof(int) * kv->num_slots); }

int qwen_cuda_kv_fits(const QwenCudaKV *kv, const QwenCuda *qc, int num_slots, int max_len, int max_tokens, int bf16) {
    return kv && kv->qc == qc && kv->num_slots >= num_slots && kv->max_len >= max_len && kv->max_tokens >= max_tokens &&
           kv->bf16 == bf16;
}

int qwen_cuda_kv_copy(QwenCudaKV *kv, int dst, int src, Error *err) {
    if (dst < 0 || dst >= kv->num_slots || src < 0 || src >= kv->num_slots)
        return error_set(err, "kv cache (cuda): slot %d or %d out of range", dst, src);
    const QwenConfig *c = &kv->qc->cfg;
    size_t KD = (size_t)c->num_kv_heads * c->head_dim, es = kv->bf16 ? 2 : sizeof(float);
    size_t slot_bytes = (size_t)kv->max_len * KD * es, bytes = es * kv->len[src] * KD;
    char *K = kv->K, *V = kv->V;
    for (size_t l = 0; l < (size_t)c->num_layers; l++) {
        size_t d = (l * kv->cache_slots + dst) * slot_bytes, s = (l * kv->cache_slots + src) * slot_bytes;
        if (cuda_copy(K + d, K + s, bytes, err) || cuda_copy(V + d, V + s, bytes, err))
            return error_prefix(err, "kv cache (cuda): copy slot %d to %d", src, dst);
    }
    kv->len[dst] = kv->len[src];
    return 0;
}

int qwen_cuda_kv_set_matmul_bf16(QwenCudaKV *kv, int on, Error *err) {
    if (kv->matmul_bf16 != on) drop_graphs(kv);  // captured with the other kind of GEMM
    kv->matmul_bf16 = on;
    return on ? qwen_cuda_gemm_mode(kv->qc, 1, err) : 0;  // allocate the weight copy now
}

// in[i] = x[h_row[i]] for i < nw (device rows; one copy per row).
// in[i] = x[h_row[i]] for the nw rows that want logits: one copy of the row list, one gather (the embedding lookup's
// kernel, x as its table).
static int gather_rows(QwenCudaKV *kv, int nw, int D, Error *err) {
    return cuda_to_device(kv->rows, kv->h_row, sizeof(int) * nw, err) ||
           cuda_embedding_forward(kv->in, kv->x, kv->rows, nw, D, err);
}

// The first n rows' slots advanced by prepare_step go back: after a failed step the cache may hold part of it, so the
// new positions are not trusted.
static void undo_positions(QwenCudaKV *kv, const int *slot, int n) {
    for (int i = 0; i < n; i++) kv->len[slot[i]]--;
}

// The host side of a decode call: checks, the slots' new positions (kv->len advanced; undone by undo_positions), the
// inputs copied to the device and the GEMM mode set (which remakes a stale bf16 weight copy). Nothing is launched
// after this that depends on host values but the row count, so the device side can be a captured graph. Rows n ..
// n_pad - 1 are padding: token 0 at position 0 of the scratch slot.
static int prepare_step(QwenCudaKV *kv, const int *slot, const int *token, int n, int n_pad, const double *u,
                        Error *err) {
    QwenCuda *qc = kv->qc;
    int V = qc->cfg.vocab_size;
    if (n <= 0 || n > kv->max_tokens)
        return error_set(err, "decode (cuda): %d tokens (1..%d allowed per call)", n, kv->max_tokens);
    for (int i = 0; i < n; i++) {
        if (slot[i] < 0 || slot[i] >= kv->num_slots)
            return error_set(err, "decode (cuda): slot %d out of range", slot[i]);
        if (token[i] < 0 || token[i] >= V)
            return error_set(err, "decode (cuda): token id %d is outside the vocabulary [0, %d)", token[i], V);
    }
    // the layout of h_in / d_in for n_pad rows (see QwenCudaKV)
    double *hu = kv->h_in;
    int *hs = (int *)(hu + n_pad), *hp = hs + n_pad, *ht = hp + n_pad;
    kv->u = kv->d_in;
    kv->slot = (int *)(kv->u + n_pad), kv->pos = kv->slot + n_pad, kv->tokens = kv->pos + n_pad;
    kv->sampled = kv->d_out, kv->sampled_logp = (float *)(kv->sampled + n_pad);
    for (int i = 0; i < n; i++) {
        int p = kv->len[slot[i]]++;
        if (p >= kv->max_len) {
            undo_positions(kv, slot, i + 1);
            return error_set(err, "decode (cuda): slot %d is full (%d tokens)", slot[i], kv->max_len);
        }
        hu[i] = u ? u[i] : 0.5, hs[i] = slot[i], hp[i] = p, ht[i] = token[i];
    }
    for (int i = n; i < n_pad; i++) hu[i] = 0.5, hs[i] = kv->num_slots, hp[i] = 0, ht[i] = 0;
    if (cuda_to_device(kv->d_in, kv->h_in, (size_t)STEP_IN_BYTES * n_pad, err) ||
        qwen_cuda_gemm_mode(qc, kv->matmul_bf16, err)) {
        undo_positions(kv, slot, n);
        return error_prefix(err, "decode (cuda)");
    }
    return 0;
}

// The layers of a decode step, per layer: RMSNorm, q and (batched) k/v products, one launch for the qk-norm, RoPE
// and cache append, attention, the output product (accumulating into x), RMSNorm, the batched gate/up product,
// SwiGLU, the down product. With bf16 products the norm, attention and SwiGLU kernels also write the bf16 operand of
// the next product (a shadow, ln16/att16/h16), so no separate rounding launches: ten launches per layer.
static int decode_layers(QwenCudaKV *kv, int n, Error *err) {
    QwenCuda *qc = kv->qc;
    const QwenConfig *c = &qc->cfg;
    const QwenWeights *w = &qc->w;
    size_t D = c->hidden_size, F = c->intermediate_size, hd = c->head_dim, M = kv->max_tokens;
    size_t QD = (size_t)c->num_heads * hd, KD = (size_t)c->num_kv_heads * hd;
    float eps = c->rms_norm_eps;
    int b16 = kv->matmul_bf16;
    void *ln16 = b16 ? kv->ln16 : NULL, *att16 = b16 ? kv->att16 : NULL, *h16 = b16 ? kv->h16 : NULL;
    if (cuda_embedding_forward(kv->x, w->embed, kv->tokens, n, (int)D, err)) return -1;
    for (size_t l = 0; l < (size_t)c->num_layers; l++) {
        const float *bk = w->bk ? w->bk + l * KD : NULL;
        int rc =
            cuda_rmsnorm_forward(kv->ln, ln16, kv->rstd, kv->x, w->attn_norm + l * D, n, (int)D, eps, err) ||
            cuda_linear_forward(qc->cb, kv->q, kv->ln, w->wq + l * QD * D, w->bq ? w->bq + l * QD : NULL, n, (int)D,
                                (int)QD, err) ||
            cuda_linear_forward_batched(qc->cb, kv->kk, M * KD, kv->ln, w->wk + l * KD * D, (size_t)(w->wv - w->wk), bk,
                                        bk ? (size_t)(w->bv - w->bk) : 0, 2, n, (int)D, (int)KD, err) ||
            cuda_norm_rope_append(kv->q, kv->kk, kv->vv, kv->K, kv->V, kv->bf16, c->qk_norm ? w->q_norm + l * hd : NULL,
                                  c->qk_norm ? w->k_norm + l * hd : NULL, eps, kv->slot, kv->pos, n, (int)l,
                                  kv->cache_slots, kv->max_len, c->num_heads, c->num_kv_heads, (int)hd, c->rope_theta,
                                  err) ||
            cuda_cached_attention(kv->att, att16, kv->q, kv->K, kv->V, kv->bf16, kv->slot, kv->pos, n, (int)l,
                                  kv->cache_slots, kv->max_len, c->num_heads, c->num_kv_heads, (int)hd, err) ||
            cuda_sgemm(qc->cb, 0, 1, n, (int)D, (int)QD, 1.0f, kv->att, (int)QD, w->wo + l * D * QD, (int)QD, 1.0f,
                       kv->x, (int)D, err) ||
            cuda_rmsnorm_forward(kv->ln, ln16, kv->rstd, kv->x, w->mlp_norm + l * D, n, (int)D, eps, err) ||
            cuda_linear_forward_batched(qc->cb, kv->gate, M * F, kv->ln, w->w_gate + l * F * D,
                                        (size_t)(w->w_up - w->w_gate), NULL, 0, 2, n, (int)D, (int)F, err) ||
            cuda_swiglu_forward(kv->gate, h16, kv->gate, kv->up, (long)n * F, err) ||
            cuda_sgemm(qc->cb, 0, 1, n, (int)D, (int)F, 1.0f, kv->gate, (int)F, w->w_down + l * D * F, (int)F, 1.0f,
                       kv->x, (int)D, err);
        if (rc) return error_prefix(err, "layer %zu", l);
    }
    return 0;
}

// The device side of a decode step (after prepare_step) up to the logits of the wanted rows (*nw of them), which
// stay on the device in kv->logits.
static int decode_logits(QwenCudaKV *kv, int n, const unsigned char *want, int *nw_out, Error *err) {
    QwenCuda *qc = kv->qc;
    const QwenConfig *c = &qc->cfg;
    size_t D = c->hidden_size, M = kv->max_tokens;
    size_t QD = (size_t)c->num_heads * c->head_dim;
    int rc = 0;
    if (kv->matmul_bf16)  // the bf16 operands the kernels write next to ln, att and the SwiGLU output
        rc = cuda_blas_add_shadow(qc->cb, kv->ln, kv->ln16, M * D, err) ||
             cuda_blas_add_shadow(qc->cb, kv->att, kv->att16, M * QD, err) ||
             cuda_blas_add_shadow(qc->cb, kv->gate, kv->h16, M * c->intermediate_size, err);
    rc = rc || decode_layers(kv, n, err);
    // final norm + lm_head only on the rows that want logits (a decode step wants them all: no gather)
    int nw = 0;
    for (int i = 0; i < n; i++)
        if (!want || want[i]) kv->h_row[nw++] = i;
    const float *last = kv->x;
    if (!rc && nw > 0 && nw < n) {
        rc = gather_rows(kv, nw, (int)D, err);
        last = kv->in;
    }
    if (!rc && nw > 0)
        rc = cuda_rmsnorm_forward(kv->ln, kv->matmul_bf16 ? kv->ln16 : NULL, kv->rstd, last, qc->w.final_norm, nw,
                                  (int)D, c->rms_norm_eps, err) ||
             cuda_sgemm(qc->cb, 0, 1, nw, c->vocab_size, (int)D, 1.0f, kv->ln, (int)D, qc->w.lm_head, (int)D, 0.0f,
                        kv->logits, c->vocab_size, err);
    cuda_blas_clear_shadows(qc->cb);
    *nw_out = nw;
    return rc ? error_prefix(err, "decode (cuda)") : 0;
}

int qwen_cuda_decode(QwenCudaKV *kv, const int *slot, const int *token, int n, const unsigned char *want, float *logits,
                     Error *err) {
    int nw;
    if (prepare_step(kv, slot, token, n, n, NULL, err)) return -1;
    if (decode_logits(kv, n, want, &nw, err) ||
        (nw > 0 && cuda_to_host(logits, kv->logits, sizeof(float) * nw * kv->qc->cfg.vocab_size, err))) {
        undo_positions(kv, slot, n);
        return error_prefix(err, "decode (cuda)");
    }
    return 0;
}

// Sampled steps run on a row count rounded up to a multiple of ROW_BUCKET (padding rows in the scratch slot), so a
// batch that shrinks as sequences finish reuses a few captured graphs instead of capturing one per size; decode is
// bound by reading the weights, so the extra rows cost little.
enum { ROW_BUCKET = 8 };

static int padded_rows(const QwenCudaKV *kv, int n) {
    int n_pad = (n + ROW_BUCKET - 1) / ROW_BUCKET * ROW_BUCKET;
    return n_pad > kv->max_tokens ? n : n_pad;
}

int qwen_cuda_kv_set_graphs(QwenCudaKV *kv, int on) {
    drop_graphs(kv);
    kv->graphs = on;
    return 0;
}

int qwen_cuda_kv_num_graphs(const QwenCudaKV *kv) { return kv->num_graphs; }

int qwen_cuda_kv_graph_nodes(const QwenCudaKV *kv, int n) {
    if (n < 1 || n > kv->max_tokens) return 0;
    return (int)cuda_graph_num_nodes(kv->graph[padded_rows(kv, n) - 1]);
}

// The device side of a sampled step: decode to the logits, then one token per row.
static int sample_step(QwenCudaKV *kv, int n, const SamplingParams *sp, int n_valid, Error *err) {
    int nw;
    return decode_logits(kv, n, NULL, &nw, err) || cuda_sample_rows(kv->sampled, kv->sampled_logp, kv->logits, kv->u, n,
                                                                    kv->qc->cfg.vocab_size, n_valid, sp, err);
}

// sample_step through a CUDA graph when one is captured for n rows (the same sampling setup, the same cuBLAS
// scratch); the second step of a row count captures it. A capture that fails (an operation the driver refuses while
// capturing) turns graphs off for this cache and the step runs eagerly: graphs change the speed, never the result.
static int sample_step_graphed(QwenCudaKV *kv, int n, const SamplingParams *sp, int n_valid, Error *err) {
    enum { MAX_GRAPHS = 256 };
    if (!kv->graphs) return sample_step(kv, n, sp, n_valid, err);
    unsigned long gen = cuda_blas_generation(kv->qc->cb);
    if (memcmp(&kv->graph_sp, sp, sizeof *sp) || kv->graph_n_valid != n_valid || kv->graph_generation != gen) {
        drop_graphs(kv);
        kv->graph_sp = *sp, kv->graph_n_valid = n_valid, kv->graph_generation = gen;
    }
    if (!kv->graph[n - 1]) {
        if (!kv->seen[n - 1] || kv->num_graphs >= MAX_GRAPHS) {
            kv->seen[n - 1] = 1;
            return sample_step(kv, n, sp, n_valid, err);
        }
        Error cap;
        if (cuda_graph_begin(&cap)) {
            kv->graphs = 0;
            return sample_step(kv, n, sp, n_valid, err);
        }
        int rc = sample_step(kv, n, sp, n_valid, err);
        if (cuda_graph_end(&kv->graph[n - 1], &cap) || rc) {  // end the capture whatever happened inside it
            kv->graphs = 0;
            drop_graphs(kv);
            return sample_step(kv, n, sp, n_valid, err);
        }
        kv->num_graphs++;
    }
    return cuda_graph_launch(kv->graph[n - 1], err);
}

int qwen_cuda_decode_sample(QwenCudaKV *kv, const int *slot, const int *token, int n, const SamplingParams *sp,
                            int n_valid, const double *u, int *out_tok, float *out_logp, Error *err) {
    int n_pad = padded_rows(kv, n);
    if (sampling_params_validate(sp, "decode (cuda)", err) || prepare_step(kv, slot, token, n, n_pad, u, err))
        return -1;
    if (sample_step_graphed(kv, n_pad, sp, n_valid, err) ||
        cuda_to_host(kv->h_out, kv->d_out, (size_t)STEP_OUT_BYTES * n_pad, err)) {
        undo_positions(kv, slot, n);
        return error_prefix(err, "decode (cuda): sampling");
    }
    memcpy(out_tok, kv->h_out, sizeof(int) * n);  // the layout of h_out (see QwenCudaKV)
    memcpy(out_logp, (int *)kv->h_out + n_pad, sizeof(float) * n);
    return 0;
}

#endif
