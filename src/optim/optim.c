#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/blas.h"
#include "optim/optim_internal.h"

const char *optimizer_kind_name(OptimKind k) {
    switch (k) {
        case OPT_ADAMW: return "adamw";
        case OPT_MUON: return "muon";
        case OPT_PION: return "pion";
        case OPT_SPECTRAL: return "spectral";
    }
    return "?";
}

const char *optim_buffer_name(ParamRule rule, int b) {
    static const char *const adamw[] = {"exp_avg", "exp_avg_sq"};
    static const char *const sp[] = {"m_out", "v_out", "m_in", "v_in"};
    if (rule == RULE_ADAMW) return b < 2 ? adamw[b] : "?";
    if (rule == RULE_NS) return b == 0 ? "momentum" : "?";
    return b < 4 ? sp[b] : "?";
}

int optim_is_hidden_matrix(const ParamInfo *p) { return p->role == ROLE_MATRIX && p->ndim == 2; }

static int check_table(const OptimConfig *cfg, const ParamInfo *table, int n, size_t num_params, Error *err) {
    if (n < 1) return error_set(err, "optimizer: empty parameter table");
    int per_head = cfg->per_head && (cfg->kind == OPT_MUON || cfg->kind == OPT_PION);
    for (int i = 0; i < n; i++) {
        const ParamInfo *p = &table[i];
        if (p->ndim != 1 && p->ndim != 2)
            return error_set(err, "optimizer: %s: ndim must be 1 or 2, got %d", p->name, p->ndim);
        if (p->rows < 1 || p->cols < 1)
            return error_set(err, "optimizer: %s: bad shape %d x %d", p->name, p->rows, p->cols);
        size_t numel = param_numel(p);
        if (p->offset > num_params || numel > num_params - p->offset)
            return error_set(err, "optimizer: %s: range [%zu, %zu) is outside the %zu-float parameter buffer", p->name,
                             p->offset, p->offset + numel, num_params);
        if (!per_head || !optim_is_hidden_matrix(p) || p->heads == HEADS_NONE) continue;
        if (p->num_heads < 1 || p->head_dim < 1)
            return error_set(err, "optimizer: %s: per-head split needs num_heads and head_dim >= 1 (got %d, %d)",
                             p->name, p->num_heads, p->head_dim);
        long split = (long)p->num_heads * p->head_dim;
        if (p->heads == HEADS_ROWS && split != p->rows)
            return error_set(err, "optimizer: %s: %d heads x head_dim %d != %d rows (head_dim must divide rows)",
                             p->name, p->num_heads, p->head_dim, p->rows);
        if (p->heads == HEADS_COLS && split != p->cols)
            return error_set(err, "optimizer: %s: %d heads x head_dim %d != %d columns (head_dim must divide columns)",
                             p->name, p->num_heads, p->head_dim, p->cols);
    }
    return 0;
}

static int check_config(const OptimConfig *c, Error *err) {
    if (!(c->lr >= 0.0f) || !isfinite(c->lr)) return error_set(err, "optimizer: lr must be >= 0, got %g", c->lr);
    if (!(c->weight_decay >= 0.0f))
        return error_set(err, "optimizer: weight_decay must be >= 0, got %g", c->weight_decay);
    if (!(c->momentum >= 0.0f && c->momentum < 1.0f))
        return error_set(err, "optimizer: momentum must be in [0, 1), got %g", c->momentum);
    if (c->kp < 0 || c->kp > 5) return error_set(err, "optimizer: kp must be in 0..5, got %d", c->kp);
    if (!(c->scale_factor > 0.0f))
        return error_set(err, "optimizer: pion_scale_factor must be > 0, got %g", c->scale_factor);
    if (!(c->ns_eps > 0.0f)) return error_set(err, "optimizer: ns_eps must be > 0, got %g", c->ns_eps);
    if (c->ns_custom && (c->ns_schedule.steps < 1 || c->ns_schedule.steps > NS_MAX_STEPS))
        return error_set(err, "optimizer: ns_coefficients needs 1..%d steps", NS_MAX_STEPS);
    const AdamWConfig *a = &c->adamw;
    if (!(a->beta1 >= 0.0f && a->beta1 < 1.0f && a->beta2 >= 0.0f && a->beta2 < 1.0f))
        return error_set(err, "optimizer: adamw.betas must be in [0, 1), got (%g, %g)", a->beta1, a->beta2);
    if (!(a->eps > 0.0f)) return error_set(err, "optimizer: adamw.eps must be > 0, got %g", a->eps);
    const SpConfig *s = &c->spectral;
    if (!(s->beta1 >= 0.0f && s->beta1 < 1.0f && s->beta2 >= 0.0f && s->beta2 < 1.0f))
        return error_set(err, "optimizer: spectral.betas must be in [0, 1), got (%g, %g)", s->beta1, s->beta2);
    if (!(s->eps > 0.0f)) return error_set(err, "optimizer: spectral.eps must be > 0, got %g", s->eps);
    if (!(s->update_rms > 0.0f))
        return error_set(err, "optimizer: spectral.update_rms must be > 0, got %g", s->update_rms);
    return 0;
}

static int add_buf(ParamState *s, int rows, int cols, Error *err, const char *name) {
    size_t n = (size_t)rows * cols;
    float *b = calloc(n, sizeof(float));
    if (!b) return error_set(err, "optimizer: %s: out of memory for %zu floats of state", name, n);
    s->buf[s->nbuf] = b;
    s->len[s->nbuf] = n;
    s->rows[s->nbuf] = rows;
    s->cols[s->nbuf] = cols;
    s->nbuf++;
    return 0;
}

int optimizer_create(const OptimConfig *cfg, const ParamInfo *table, int n, size_t num_params, Optimizer **out,
                     Error *err) {
    *out = NULL;
    if (check_config(cfg, err) || check_table(cfg, table, n, num_params, err)) return -1;
    Optimizer *o = calloc(1, sizeof *o);
    if (!o) return error_set(err, "optimizer: out of memory");
    o->cfg = *cfg;
    o->n = n;
    o->num_params = num_params;
    o->table = malloc((size_t)n * sizeof(ParamInfo));
    o->st = calloc((size_t)n, sizeof(ParamState));
    if (!o->table || !o->st) {
        optimizer_free(o);
        return error_set(err, "optimizer: out of memory");
    }
    memcpy(o->table, table, (size_t)n * sizeof(ParamInfo));
    if (cfg->ns_custom) o->sched = cfg->ns_schedule;
    else if (cfg->kind == OPT_PION) ns_schedule_pion(cfg->kp, &o->sched, NULL);
    else ns_schedule_muon(&o->sched);

    int max_short = 0, head_short = 0;
    size_t max_numel = 0, head_numel = 0;
    for (int i = 0; i < n; i++) {
        const ParamInfo *p = &table[i];
        ParamState *s = &o->st[i];
        int rc;
        s->rule = optim_param_rule(cfg, p);
        if (s->rule == RULE_ADAMW) {
            rc = add_buf(s, p->rows, p->cols, err, p->name) || add_buf(s, p->rows, p->cols, err, p->name);
        } else if (s->rule == RULE_SPECTRAL) {
            rc = add_buf(s, p->rows, p->rows, err, p->name) || add_buf(s, p->rows, p->rows, err, p->name) ||
                 add_buf(s, p->cols, p->cols, err, p->name) || add_buf(s, p->cols, p->cols, err, p->name);
        } else {
            rc = add_buf(s, p->rows, p->cols, err, p->name);
            int sh = p->rows < p->cols ? p->rows : p->cols;
            if (sh > max_short) max_short = sh;
            if (param_numel(p) > max_numel) max_numel = param_numel(p);
            if (optim_ns_nblocks(cfg, p) > 1) {  // per-head blocks get their own (smaller) workspaces
                NsBlock b = optim_ns_block(cfg, p, 0);
                int bs = b.rows < b.cols ? b.rows : b.cols;
                if (bs > head_short) head_short = bs;
                if ((size_t)b.rows * b.cols > head_numel) head_numel = (size_t)b.rows * b.cols;
            }
        }
        if (rc) {
            optimizer_free(o);
            return -1;
        }
    }
    if (max_numel > 0) {
        // One workspace per OpenMP thread for per-head blocks (they run in parallel); the first
        // also serves whole matrices.
        o->nws = head_numel > 0 ? omp_get_max_threads() : 1;
        if (o->nws < 1) o->nws = 1;
        o->scratch_in = malloc(max_numel * sizeof(float));
        o->scratch_u = malloc(max_numel * sizeof(float));
        o->ws = calloc((size_t)o->nws, sizeof(NsWork));
        int rc = !o->scratch_in || !o->scratch_u || !o->ws;
        for (int t = 0; t < o->nws && !rc; t++)
            rc = t == 0 ? ns_work_init(&o->ws[t], max_short, max_numel, err)
                        : ns_work_init(&o->ws[t], head_short, head_numel, err);
        for (int t = 0; t < o->nws && !rc; t++) o->ws[t].bf16 = cfg->ns_bf16;
        if (rc) {
            optimizer_free(o);
            return error_set(err, "optimizer: out of memory for Newton-Schulz buffers (%zu floats)", max_numel);
        }
    }
    *out = o;
    return 0;
}

void optimizer_free(Optimizer *o) {
    if (!o) return;
    if (o->st)
        for (int i = 0; i < o->n; i++)
            for (int b = 0; b < o->st[i].nbuf; b++) free(o->st[i].buf[b]);
    free(o->st);
    free(o->table);
    free(o->scratch_in);
    free(o->scratch_u);
    if (o->ws)
        for (int t = 0; t < o->nws; t++) ns_work_free(&o->ws[t]);
    free(o->ws);
    free(o);
}

long optimizer_step_count(const Optimizer *o) { return o->step; }
const OptimConfig *optimizer_config(const Optimizer *o) { return &o->cfg; }

size_t optimizer_state_bytes(const Optimizer *o) {
    size_t b = 0;
    for (int i = 0; i < o->n; i++)
        for (int k = 0; k < o->st[i].nbuf; k++) b += o->st[i].len[k] * sizeof(float);
    return b;
}

ParamRule optim_param_rule(const OptimConfig *c, const ParamInfo *p) {
    if (!optim_is_hidden_matrix(p) || c->kind == OPT_ADAMW) return RULE_ADAMW;
    return c->kind == OPT_SPECTRAL ? RULE_SPECTRAL : RULE_NS;
}

size_t optimizer_state_bytes_planned(const OptimConfig *cfg, const ParamInfo *table, int n) {
    size_t floats = 0;
    for (int i = 0; i < n; i++) {  // the buffers optimizer_create gives each rule
        const ParamInfo *p = &table[i];
        ParamRule rule = optim_param_rule(cfg, p);
        if (rule == RULE_ADAMW)
            floats += 2 * param_numel(p);
        else if (rule == RULE_SPECTRAL)
            floats += 2 * (size_t)p->rows * p->rows + 2 * (size_t)p->cols * p->cols;
        else floats += param_numel(p);
    }
    return floats * sizeof(float);
}

float optimizer_update_rms(const Optimizer *o, int i) { return i >= 0 && i < o->n ? o->st[i].update_rms : 0.0f; }

const char *optimizer_param_rule(const Optimizer *o, int i) {
    if (i < 0 || i >= o->n) return "?";
    if (o->st[i].rule == RULE_ADAMW) return "adamw";
    if (o->st[i].rule == RULE_SPECTRAL) return "spectral";
    return optimizer_kind_name(o->cfg.kind);
}

float optim_block_scale(const OptimConfig *c, int br, int bc) {
    if (c->scale == SCALE_ORIGINAL) return sqrtf(fmaxf(1.0f, (float)br / (float)bc));
    return c->scale_factor * sqrtf((float)(br > bc ? br : bc));
}

static int per_head_split(const OptimConfig *c, const ParamInfo *p) {
    return c->per_head && (p->heads == HEADS_ROWS || p->heads == HEADS_COLS);
}

int optim_ns_nblocks(const OptimConfig *c, const ParamInfo *p) { return per_head_split(c, p) ? p->num_heads : 1; }

NsBlock optim_ns_block(const OptimConfig *c, const ParamInfo *p, int h) {
    if (per_head_split(c, p) && p->heads == HEADS_ROWS)
        return (NsBlock){(size_t)h * p->head_dim * p->cols, p->head_dim, p->cols, p->cols};
    if (per_head_split(c, p)) return (NsBlock){(size_t)h * p->head_dim, p->rows, p->head_dim, p->cols};
    return (NsBlock){0, p->rows, p->cols, p->cols};
}

// M <- mu M + gk G on the block; with Nesterov, in <- gk G + mu M (the orthogonaliser's input).
static void momentum_block(const OptimConfig *c, NsBlock b, float *M, const float *G, float *in) {
    float mu = c->momentum, gk = c->momentum_form == MOMENTUM_EMA ? 1.0f - mu : 1.0f;
    for (int r = 0; r < b.rows; r++) {
        size_t o = b.off + (size_t)r * b.ld;
        for (int j = 0; j < b.cols; j++) {
            float m = mu * M[o + j] + gk * G[o + j];
            M[o + j] = m;
            if (c->nesterov) in[o + j] = gk * G[o + j] + mu * m;
        }
    }
}

// W <- W decay - step U on the block; returns the sum of squared changes (for update_rms).
static double update_block(NsBlock b, float *W, const float *U, float step, float decay) {
    double dsum = 0.0;
    for (int r = 0; r < b.rows; r++) {
        size_t o = b.off + (size_t)r * b.ld;
#pragma omp simd reduction(+ : dsum)
        for (int j = 0; j < b.cols; j++) {
            float old = W[o + j], nw = old * decay - step * U[o + j];
            W[o + j] = nw;
            double d = (double)nw - old;
            dsum += d * d;
        }
    }
    return dsum;
}

// Muon / Pion on one matrix: momentum, (Nesterov) input, orthogonalisation (whole or per head),
// decoupled decay and the scaled update. Per head, each block goes through all four stages on
// one thread (heads spread over the OpenMP threads, one BLAS thread each): the elementwise passes
// then run in parallel on data that is still in that core's cache. A whole matrix is one block on
// this thread, with OpenBLAS's own threads inside its GEMMs.
static int ns_param_step(Optimizer *o, const ParamInfo *p, ParamState *s, float *W, const float *G, float lr,
                         Error *err) {
    const OptimConfig *c = &o->cfg;
    float *M = s->buf[0], *in = c->nesterov ? o->scratch_in : M, *U = o->scratch_u;
    int nblocks = optim_ns_nblocks(c, p);
    NsBlock b0 = optim_ns_block(c, p, 0);
    float step = lr * optim_block_scale(c, b0.rows, b0.cols), decay = 1.0f - lr * c->weight_decay;
    int threads = nblocks > 1 ? (o->nws < nblocks ? o->nws : nblocks) : 1;
    if (threads > omp_get_max_threads()) threads = omp_get_max_threads();
    if (threads < 1) threads = 1;
    for (int t = 0; t < threads; t++)
        if (ns_work_check(&o->ws[t], b0.rows, b0.cols, err)) return -1;
    // OpenBLAS's own threads would compete with ours: one BLAS thread per block while this runs.
    int blas_threads = blas_get_threads();
    if (threads > 1) blas_set_threads(1);
    double dsum = 0.0;
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static) reduction(+ : dsum)
    for (int h = 0; h < nblocks; h++) {
        NsBlock b = optim_ns_block(c, p, h);
        momentum_block(c, b, M, G, in);
        // cannot fail: the workspace was checked above for this block shape
        ns_orthogonalize(&o->sched, in + b.off, b.rows, b.cols, b.ld, U + b.off, b.ld, c->ns_eps,
                         &o->ws[omp_get_thread_num()], NULL);
        dsum += update_block(b, W, U, step, decay);
    }
    if (threads > 1) blas_set_threads(blas_threads);
    s->update_rms = (float)sqrt(dsum / (double)param_numel(p));
    return 0;
}

int optim_step_rates(const OptimConfig *c, float lr_scale, StepRates *r, Error *err) {
    if (!(lr_scale >= 0.0f) || !isfinite(lr_scale))
        return error_set(err, "optimizer_step: lr_scale must be finite and >= 0, got %g", lr_scale);
    r->lr = c->lr * lr_scale;
    r->adamw_lr = (c->adamw.lr > 0.0f ? c->adamw.lr : c->lr) * lr_scale;
    r->adamw_wd = c->adamw.weight_decay >= 0.0f ? c->adamw.weight_decay : c->weight_decay;
    return 0;
}

int optimizer_step(Optimizer *o, float *params, const float *grads, float lr_scale, Error *err) {
    StepRates rt = {0};
    if (optim_step_rates(&o->cfg, lr_scale, &rt, err)) return -1;
    const OptimConfig *c = &o->cfg;
    long t = o->step + 1;
    float lr = rt.lr, alr = rt.adamw_lr, awd = rt.adamw_wd;
    for (int i = 0; i < o->n; i++) {
        const ParamInfo *p = &o->table[i];
        ParamState *s = &o->st[i];
        float *W = params + p->offset;
        const float *G = grads + p->offset;
        size_t n = param_numel(p);
        if (s->rule == RULE_ADAMW) {
            // Matrices in an AdamW run use the top-level lr / weight_decay; the rest the adamw group.
            int top = optim_is_hidden_matrix(p);
            double d = adamw_update(W, G, s->buf[0], s->buf[1], n, top ? lr : alr, c->adamw.beta1, c->adamw.beta2,
                                    c->adamw.eps, top ? c->weight_decay : awd, t);
            s->update_rms = (float)sqrt(d / (double)n);
        } else if (s->rule == RULE_NS) {
            if (ns_param_step(o, p, s, W, G, lr, err)) return error_prefix(err, "optimizer: %s", p->name);
        } else {
            double d = 0.0;
            if (sp_update(W, G, s->buf[0], s->buf[1], s->buf[2], s->buf[3], p->rows, p->cols, &c->spectral, lr, t, &d,
                          err))
                return error_prefix(err, "optimizer: %s", p->name);
            s->update_rms = (float)sqrt(d / (double)n);
        }
    }
    o->step = t;
    return 0;
}
