// GPU optimizer step (see optim_cuda.h). The host Optimizer decides the rules; this file replays
// optimizer_step (optim.c) with the kernels of src/core/cuda_ops.h.
#include "optim/optim_cuda.h"

#include <stdlib.h>

#include "optim/optim_internal.h"

// Newton-Schulz batches (any build: the memory planner sizes them too). Muon/Pion matrices of one block layout, the
// same kind in every layer (all q_proj, all gate_proj, ...), iterate as one batch of at most NS_GROUP_BYTES of
// inputs: its blocks spread over the whole GPU where one matrix's would not (a per-head q_proj of Qwen3-0.6B is 16
// blocks; the 28 layers' are 448). The inputs, the outputs and the workspace's two copies each hold one batch:
// enough for every layer's copy of a Qwen3-0.6B projection, a few layers' of a 1.7B MLP matrix.
enum { NS_GROUP_BYTES = 128 << 20 };

static int same_ns_layout(const ParamInfo *a, const ParamInfo *b) {
    return a->rows == b->rows && a->cols == b->cols && a->heads == b->heads && a->num_heads == b->num_heads &&
           a->head_dim == b->head_dim;
}

// The Newton-Schulz batches of config c over table: the Muon/Pion matrices (optim_param_rule) grouped by layout, in
// table order, at most NS_GROUP_BYTES of inputs a batch. Batch g is (*member)[(*start)[g] .. (*start)[g + 1])
// (parameter indices; the caller frees both arrays); *numel, *gram and *blocks get the largest batch's input
// elements, Gram elements and blocks. Returns the batch count, -1 out of memory.
static int ns_batches(const OptimConfig *c, const ParamInfo *table, int n, int **start, int **member, size_t *numel,
                      size_t *gram, int *blocks) {
    *start = malloc(sizeof(int) * (n + 1)), *member = malloc(sizeof(int) * (n + 1));
    unsigned char *taken = calloc(n + 1, 1);
    if (!*start || !*member || !taken) {
        free(taken);
        return -1;
    }
    int m = 0, ng = 0;
    *numel = *gram = 0, *blocks = 0;
    for (int i = 0; i < n; i++) {
        const ParamInfo *p = &table[i];
        if (taken[i] || optim_param_rule(c, p) != RULE_NS) continue;
        size_t cap = NS_GROUP_BYTES / (sizeof(float) * param_numel(p));
        (*start)[ng++] = m;
        for (int j = i; j < n && (size_t)(m - (*start)[ng - 1]) < (cap ? cap : 1); j++)
            if (!taken[j] && optim_param_rule(c, &table[j]) == RULE_NS && same_ns_layout(p, &table[j]))
                taken[j] = 1, (*member)[m++] = j;
        int count = m - (*start)[ng - 1], nb = optim_ns_nblocks(c, p);
        NsBlock b0 = optim_ns_block(c, p, 0);
        size_t sh = b0.rows < b0.cols ? b0.rows : b0.cols, g = (size_t)count * nb * sh * sh;
        if (count * nb > *blocks) *blocks = count * nb;
        if (g > *gram) *gram = g;
        if (count * param_numel(p) > *numel) *numel = count * param_numel(p);
    }
    (*start)[ng] = m;
    free(taken);
    return ng;
}

size_t optim_cuda_workspace_bytes(const OptimConfig *c, const ParamInfo *table, int n) {
    int *start = NULL, *member = NULL, blocks = 0;
    size_t numel = 0, gram = 0;
    ns_batches(c, table, n, &start, &member, &numel, &gram, &blocks);  // out of memory: counted as no batch
    free(start), free(member);
    // inputs, outputs, the iterate's two copies, two Gram buffers; bf16 products: rounded copies of one iterate and
    // both Gram buffers
    size_t f = sizeof(float), bytes = 4 * f * numel + 2 * f * gram + f * blocks;
    if (c->ns_bf16) bytes += 2 * (numel + 2 * gram);
    return bytes + sizeof(double) * n;
}

#ifndef PIONRL_CUDA

int optim_cuda_create(const Optimizer *host, OptimCuda **out, Error *err) {
    *out = NULL;
    return error_set(err, "optimizer: this pionrl was built without CUDA (rebuild with make CUDA=1)");
}
void optim_cuda_free(OptimCuda *o) {}
int optim_cuda_step(OptimCuda *o, float *d_params, const float *d_grads, float lr_scale, Error *err) {
    return error_set(err, "optimizer: this pionrl was built without CUDA (rebuild with make CUDA=1)");
}
float optim_cuda_update_rms(const OptimCuda *o, int i) { return 0.0f; }
int optim_cuda_download_state(const OptimCuda *o, Optimizer *host, Error *err) {
    return error_set(err, "optimizer: this pionrl was built without CUDA (rebuild with make CUDA=1)");
}

#else

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/cuda_ops.h"
#include "optim/optim_internal.h"
#include "optim/spectral_cuda.h"

struct OptimCuda {
    OptimConfig cfg;
    int n;
    ParamInfo *table;
    ParamRule *rule;
    float **state;  // n x OPTIM_MAX_BUFS device buffers (adamw: exp_avg, exp_avg_sq; ns: momentum)
    long step;
    NsSchedule sched;
    CudaNs *ns;
    CudaSpectral *sp;  // spectrum-preserving matrices' workspace, sized for the largest
    // Muon/Pion matrices of one layout (the same kind in every layer: all q_proj, all gate_proj, ...) run their
    // Newton-Schulz iterations as one batch, up to NS_GROUP_BYTES of inputs at a time: group g is members
    // group_member[group_start[g] .. group_start[g + 1]) (parameter indices)
    int ngroups, *group_start, *group_member;
    float *d_in, *d_u;  // a group's Newton-Schulz inputs and outputs, one matrix after another
    double *d_dsum;     // per parameter: sum of squared changes of the last step
    double *dsum;
    float *update_rms;
};

void optim_cuda_free(OptimCuda *o) {
    if (!o) return;
    if (o->state)
        for (int i = 0; i < o->n * OPTIM_MAX_BUFS; i++) cuda_release(o->state[i]);
    cuda_ns_free(o->ns);
    cuda_sp_free(o->sp);
    cuda_release(o->d_in);
    cuda_release(o->d_u);
    cuda_release(o->d_dsum);
    free(o->group_start);
    free(o->group_member);
    free(o->state);
    free(o->table);
    free(o->rule);
    free(o->dsum);
    free(o->update_rms);
    free(o);
}

int optim_cuda_create(const Optimizer *host, OptimCuda **out, Error *err) {
    *out = NULL;
    OptimCuda *o = calloc(1, sizeof *o);
    if (!o) return error_set(err, "optimizer (cuda): out of memory");
    o->cfg = host->cfg;
    o->n = host->n;
    o->step = host->step;
    o->sched = host->sched;
    o->table = malloc(sizeof(ParamInfo) * host->n);
    o->rule = malloc(sizeof(ParamRule) * host->n);
    o->state = calloc((size_t)host->n * OPTIM_MAX_BUFS, sizeof(float *));
    o->dsum = calloc(host->n, sizeof(double));
    o->update_rms = calloc(host->n, sizeof(float));
    if (!o->table || !o->rule || !o->state || !o->dsum || !o->update_rms) {
        optim_cuda_free(o);
        return error_set(err, "optimizer (cuda): out of memory");
    }
    memcpy(o->table, host->table, sizeof(ParamInfo) * host->n);
    int max_blocks = 0, sp_rows = 0, sp_cols = 0;
    size_t max_gram = 0, max_numel = 0;
    for (int i = 0; i < host->n; i++) {
        const ParamState *s = &host->st[i];
        const ParamInfo *p = &host->table[i];
        o->rule[i] = s->rule;
        if (s->rule == RULE_SPECTRAL) {
            if (p->rows > sp_rows) sp_rows = p->rows;
            if (p->cols > sp_cols) sp_cols = p->cols;
        }
        for (int b = 0; b < s->nbuf; b++) {
            float **d = &o->state[i * OPTIM_MAX_BUFS + b];
            if (cuda_alloc((void **)d, s->len[b] * sizeof(float), err) ||
                cuda_to_device(*d, s->buf[b], s->len[b] * sizeof(float), err)) {
                optim_cuda_free(o);
                return error_prefix(err, "optimizer (cuda): %s %s", p->name, optim_buffer_name(s->rule, b));
            }
        }
    }
    o->ngroups =
        ns_batches(&o->cfg, o->table, o->n, &o->group_start, &o->group_member, &max_numel, &max_gram, &max_blocks);
    if (o->ngroups < 0) {
        optim_cuda_free(o);
        return error_set(err, "optimizer (cuda): out of memory");
    }
    if (cuda_alloc((void **)&o->d_dsum, sizeof(double) * host->n, err) ||
        (sp_rows > 0 && cuda_sp_create(sp_rows, sp_cols, &o->sp, err)) ||
        (max_numel > 0 && (cuda_ns_create(max_numel, max_gram, max_blocks, o->cfg.ns_bf16, &o->ns, err) ||
                           cuda_alloc((void **)&o->d_in, max_numel * sizeof(float), err) ||
                           cuda_alloc((void **)&o->d_u, max_numel * sizeof(float), err)))) {
        optim_cuda_free(o);
        return error_prefix(err, "optimizer (cuda)");
    }
    *out = o;
    return 0;
}

// One group's Muon/Pion step: each member's momentum (and Newton-Schulz input, one after another in d_in), the
// iterations of every member's blocks in one batch, then each member's update from its part of d_u.
static int ns_group_step(OptimCuda *o, int g, float *d_params, const float *d_grads, float lr, Error *err) {
    const OptimConfig *c = &o->cfg;
    const int *member = o->group_member + o->group_start[g];
    int count = o->group_start[g + 1] - o->group_start[g];
    const ParamInfo *p0 = &o->table[member[0]];
    size_t n = param_numel(p0);
    float mu = c->momentum, gk = c->momentum_form == MOMENTUM_EMA ? 1.0f - mu : 1.0f;
    for (int j = 0; j < count; j++) {
        int i = member[j];
        if (cuda_momentum(o->state[i * OPTIM_MAX_BUFS], d_grads + o->table[i].offset, o->d_in + j * n, n, mu, gk,
                          c->nesterov, err))
            return error_prefix(err, "optimizer (cuda): %s", o->table[i].name);
    }
    // all blocks of a matrix in one batch: block h sits h block strides after block 0 (see optim_ns_block)
    int nb = optim_ns_nblocks(c, p0);
    NsBlock b0 = optim_ns_block(c, p0, 0);
    size_t stride = nb > 1 ? optim_ns_block(c, p0, 1).off : 0;
    if (cuda_ns_matrices(o->ns, o->sched.a, o->sched.b, o->sched.c, o->sched.steps, count, o->d_in, n, nb, b0.rows,
                         b0.cols, b0.ld, stride, o->d_u, n, b0.ld, stride, c->ns_eps, err))
        return error_prefix(err, "optimizer (cuda): %s and %d more of its shape", p0->name, count - 1);
    float step = lr * optim_block_scale(c, b0.rows, b0.cols), decay = 1.0f - lr * c->weight_decay;
    for (int j = 0; j < count; j++) {
        int i = member[j];
        if (cuda_scaled_update(d_params + o->table[i].offset, o->d_u + j * n, n, step, decay, o->d_dsum + i, err))
            return error_prefix(err, "optimizer (cuda): %s", o->table[i].name);
    }
    return 0;
}

int optim_cuda_step(OptimCuda *o, float *d_params, const float *d_grads, float lr_scale, Error *err) {
    StepRates rt = {0};
    if (optim_step_rates(&o->cfg, lr_scale, &rt, err)) return -1;
    const OptimConfig *c = &o->cfg;
    long t = o->step + 1;
    float lr = rt.lr, alr = rt.adamw_lr, awd = rt.adamw_wd;
    if (cuda_zero(o->d_dsum, sizeof(double) * o->n, err)) return error_prefix(err, "optimizer (cuda)");
    for (int i = 0; i < o->n; i++) {
        const ParamInfo *p = &o->table[i];
        float *W = d_params + p->offset, **st = &o->state[i * OPTIM_MAX_BUFS];
        const float *G = d_grads + p->offset;
        size_t n = param_numel(p);
        int rc;
        if (o->rule[i] == RULE_SPECTRAL) {
            rc = cuda_sp_update(o->sp, W, G, st[0], st[1], st[2], st[3], p->rows, p->cols, &c->spectral, lr, t,
                                o->d_dsum + i, err);
        } else if (o->rule[i] == RULE_ADAMW) {
            int top = optim_is_hidden_matrix(p);  // matrices of an AdamW run: top-level lr / wd
            rc = cuda_adamw(W, G, st[0], st[1], n, top ? lr : alr, c->adamw.beta1, c->adamw.beta2, c->adamw.eps,
                            top ? c->weight_decay : awd, t, o->d_dsum + i, err);
        } else {
            continue;  // Muon/Pion: by group, below
        }
        if (rc) return error_prefix(err, "optimizer (cuda): %s", p->name);
    }
    for (int g = 0; g < o->ngroups; g++)
        if (ns_group_step(o, g, d_params, d_grads, lr, err)) return -1;
    // the one synchronising copy of the step: also where a failed kernel reports
    if (cuda_to_host(o->dsum, o->d_dsum, sizeof(double) * o->n, err)) return error_prefix(err, "optimizer (cuda)");
    for (int i = 0; i < o->n; i++) o->update_rms[i] = (float)sqrt(o->dsum[i] / (double)param_numel(&o->table[i]));
    o->step = t;
    return 0;
}

float optim_cuda_update_rms(const OptimCuda *o, int i) { return i >= 0 && i < o->n ? o->update_rms[i] : 0.0f; }

int optim_cuda_download_state(const OptimCuda *o, Optimizer *host, Error *err) {
    if (host->n != o->n) return error_set(err, "optimizer (cuda): host optimizer has %d parameters, not %d", host->n, o->n);
    for (int i = 0; i < o->n; i++) {
        ParamState *s = &host->st[i];
        for (int b = 0; b < s->nbuf; b++)
            if (cuda_to_host(s->buf[b], o->state[i * OPTIM_MAX_BUFS + b], s->len[b] * sizeof(float), err))
                return error_prefix(err, "optimizer (cuda): %s", o->table[i].name);
        s->update_rms = o->update_rms[i];
    }
    host->step = o->step;
    return 0;
}

#endif
