#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "policy/qwen.h"

// Sizes (in floats) of each tensor kind over all layers, in buffer order.
typedef struct {
    size_t embed, attn_norm, wq, wk, wv, bq, bk, bv, q_norm, k_norm, wo, mlp_norm, w_gate, w_up, w_down,
        final_norm, lm_head;
} QwenSizes;

static QwenSizes qwen_sizes(const QwenConfig *c) {
    size_t L = c->num_layers, D = c->hidden_size, F = c->intermediate_size, V = c->vocab_size;
    size_t q = (size_t)c->num_heads * c->head_dim, kv = (size_t)c->num_kv_heads * c->head_dim;
    QwenSizes s = {0};
    s.embed = V * D;
    s.attn_norm = L * D;
    s.wq = L * q * D;
    s.wk = L * kv * D;
    s.wv = L * kv * D;
    s.bq = c->attention_bias ? L * q : 0;
    s.bk = c->attention_bias ? L * kv : 0;
    s.bv = c->attention_bias ? L * kv : 0;
    s.q_norm = c->qk_norm ? L * c->head_dim : 0;
    s.k_norm = c->qk_norm ? L * c->head_dim : 0;
    s.wo = L * D * q;
    s.mlp_norm = L * D;
    s.w_gate = L * F * D;
    s.w_up = L * F * D;
    s.w_down = L * D * F;
    s.final_norm = D;
    s.lm_head = c->tie_word_embeddings ? 0 : V * D;
    return s;
}

size_t qwen_num_params(const QwenConfig *c) {
    QwenSizes s = qwen_sizes(c);
    return s.embed + s.attn_norm + s.wq + s.wk + s.wv + s.bq + s.bk + s.bv + s.q_norm + s.k_norm + s.wo +
           s.mlp_norm + s.w_gate + s.w_up + s.w_down + s.final_norm + s.lm_head;
}

// Offsets (in floats) of each tensor kind in buffer order; absent tensors get size 0.
static QwenSizes qwen_offsets(const QwenConfig *c) {
    QwenSizes s = qwen_sizes(c), o;
    size_t at = 0;
    o.embed = at, at += s.embed;
    o.attn_norm = at, at += s.attn_norm;
    o.wq = at, at += s.wq;
    o.wk = at, at += s.wk;
    o.wv = at, at += s.wv;
    o.bq = at, at += s.bq;
    o.bk = at, at += s.bk;
    o.bv = at, at += s.bv;
    o.q_norm = at, at += s.q_norm;
    o.k_norm = at, at += s.k_norm;
    o.wo = at, at += s.wo;
    o.mlp_norm = at, at += s.mlp_norm;
    o.w_gate = at, at += s.w_gate;
    o.w_up = at, at += s.w_up;
    o.w_down = at, at += s.w_down;
    o.final_norm = at, at += s.final_norm;
    o.lm_head = c->tie_word_embeddings ? o.embed : at;
    return o;
}

void qwen_weights_point(const QwenConfig *c, float *base, QwenWeights *w) {
    QwenSizes o = qwen_offsets(c);
    w->embed = base + o.embed;
    w->attn_norm = base + o.attn_norm;
    w->wq = base + o.wq;
    w->wk = base + o.wk;
    w->wv = base + o.wv;
    w->bq = c->attention_bias ? base + o.bq : NULL;
    w->bk = c->attention_bias ? base + o.bk : NULL;
    w->bv = c->attention_bias ? base + o.bv : NULL;
    w->q_norm = c->qk_norm ? base + o.q_norm : NULL;
    w->k_norm = c->qk_norm ? base + o.k_norm : NULL;
    w->wo = base + o.wo;
    w->mlp_norm = base + o.mlp_norm;
    w->w_gate = base + o.w_gate;
    w->w_up = base + o.w_up;
    w->w_down = base + o.w_down;
    w->final_norm = base + o.final_norm;
    w->lm_head = base + o.lm_head;
}

int qwen_num_tensors(const QwenConfig *c) {
    int per_layer = 9 + (c->attention_bias ? 3 : 0) + (c->qk_norm ? 2 : 0);
    return 2 + c->num_layers * per_layer + (c->tie_word_embeddings ? 0 : 1);
}

static void set_info(ParamInfo *p, const char *name, size_t offset, int ndim, int rows, int cols, ParamRole role,
                     HeadSplit heads, int num_heads, int head_dim) {
    snprintf(p->name, sizeof p->name, "%s", name);
    p->offset = offset;
    p->ndim = ndim;
    p->rows = rows;
    p->cols = cols;
    p->role = role;
    p->heads = heads;
    p->num_heads = num_heads;
    p->head_dim = head_dim;
}

void qwen_param_table(const QwenConfig *c, ParamInfo *out) {
    QwenSizes w = qwen_offsets(c);
    int D = c->hidden_size, F = c->intermediate_size, hd = c->head_dim;
    int q = c->num_heads * hd, kv = c->num_kv_heads * hd;
    int n = 0;
    char name[96];
    set_info(&out[n++], "model.embed_tokens.weight", w.embed, 2, c->vocab_size, D, ROLE_EMBEDDING, HEADS_NONE,
             0, 0);
    for (int l = 0; l < c->num_layers; l++) {
#define NAME(suffix) (snprintf(name, sizeof name, "model.layers.%d.%s", l, suffix), name)
        set_info(&out[n++], NAME("input_layernorm.weight"), w.attn_norm + (size_t)l * D, 1, 1, D, ROLE_NORM,
                 HEADS_NONE, 0, 0);
        set_info(&out[n++], NAME("self_attn.q_proj.weight"), w.wq + (size_t)l * q * D, 2, q, D, ROLE_MATRIX,
                 HEADS_ROWS, c->num_heads, hd);
        set_info(&out[n++], NAME("self_attn.k_proj.weight"), w.wk + (size_t)l * kv * D, 2, kv, D, ROLE_MATRIX,
                 HEADS_ROWS, c->num_kv_heads, hd);
        set_info(&out[n++], NAME("self_attn.v_proj.weight"), w.wv + (size_t)l * kv * D, 2, kv, D, ROLE_MATRIX,
                 HEADS_ROWS, c->num_kv_heads, hd);
        if (c->attention_bias) {
            set_info(&out[n++], NAME("self_attn.q_proj.bias"), w.bq + (size_t)l * q, 1, 1, q, ROLE_BIAS,
                     HEADS_NONE, 0, 0);
            set_info(&out[n++], NAME("self_attn.k_proj.bias"), w.bk + (size_t)l * kv, 1, 1, kv, ROLE_BIAS,
                     HEADS_NONE, 0, 0);
            set_info(&out[n++], NAME("self_attn.v_proj.bias"), w.bv + (size_t)l * kv, 1, 1, kv, ROLE_BIAS,
                     HEADS_NONE, 0, 0);
        }
        if (c->qk_norm) {
            set_info(&out[n++], NAME("self_attn.q_norm.weight"), w.q_norm + (size_t)l * hd, 1, 1, hd,
                     ROLE_NORM, HEADS_NONE, 0, 0);
            set_info(&out[n++], NAME("self_attn.k_norm.weight"), w.k_norm + (size_t)l * hd, 1, 1, hd,
                     ROLE_NORM, HEADS_NONE, 0, 0);
        }
        set_info(&out[n++], NAME("self_attn.o_proj.weight"), w.wo + (size_t)l * D * q, 2, D, q, ROLE_MATRIX,
                 HEADS_COLS, c->num_heads, hd);
        set_info(&out[n++], NAME("post_attention_layernorm.weight"), w.mlp_norm + (size_t)l * D, 1, 1, D,
                 ROLE_NORM, HEADS_NONE, 0, 0);
        set_info(&out[n++], NAME("mlp.gate_proj.weight"), w.w_gate + (size_t)l * F * D, 2, F, D, ROLE_MATRIX,
                 HEADS_NONE, 0, 0);
        set_info(&out[n++], NAME("mlp.up_proj.weight"), w.w_up + (size_t)l * F * D, 2, F, D, ROLE_MATRIX,
                 HEADS_NONE, 0, 0);
        set_info(&out[n++], NAME("mlp.down_proj.weight"), w.w_down + (size_t)l * D * F, 2, D, F, ROLE_MATRIX,
                 HEADS_NONE, 0, 0);
#undef NAME
    }
    set_info(&out[n++], "model.norm.weight", w.final_norm, 1, 1, D, ROLE_NORM, HEADS_NONE, 0, 0);
    if (!c->tie_word_embeddings)
        set_info(&out[n++], "lm_head.weight", w.lm_head, 2, c->vocab_size, D, ROLE_LM_HEAD, HEADS_NONE, 0, 0);
}

int qwen_model_init(QwenModel *m, const QwenConfig *cfg, Error *err) {
    memset(m, 0, sizeof *m);
    if (qwen_config_validate(cfg, "model config", err)) return -1;
    m->cfg = *cfg;
    m->num_params = qwen_num_params(cfg);
    m->params = calloc(m->num_params, sizeof(float));
    if (!m->params)
        return error_set(err, "out of memory allocating %zu parameters (%.1f MB)", m->num_params,
                         m->num_params * 4.0 / 1e6);
    qwen_weights_point(cfg, m->params, &m->w);
    return 0;
}

void qwen_model_free(QwenModel *m) {
    free(m->params);
    memset(m, 0, sizeof *m);
}

void qwen_model_init_random(QwenModel *m, unsigned long long seed, float std) {
    Rng rng;
    rng_seed(&rng, seed);
    int n = qwen_num_tensors(&m->cfg);
    ParamInfo *t = malloc(sizeof(ParamInfo) * n);
    if (!t) return;
    qwen_param_table(&m->cfg, t);
    for (int i = 0; i < n; i++) {
        float *p = m->params + t[i].offset;
        size_t k = param_numel(&t[i]);
        for (size_t j = 0; j < k; j++) {
            if (t[i].role == ROLE_NORM) p[j] = 1.0f;
            else if (t[i].role == ROLE_BIAS) p[j] = 0.0f;
            else p[j] = (float)(std * rng_normal(&rng));
        }
    }
    free(t);
}
