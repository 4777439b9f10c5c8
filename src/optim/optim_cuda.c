// GPU optimizer step (see optim_cuda.h). The host Optimizer decides the rules; this file replays
// optimizer_step (optim.c) with the kernels of src/core/cuda_ops.h.
#include "optim/optim_cuda.h"

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
    float *d_in, *d_u;  // Nesterov input and NS output, sized for the largest matrix
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
    int max_blocks = 0, max_short = 0, sp_rows = 0, sp_cols = 0;
    size_t max_block = 0, max_numel = 0;
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
        if (s->rule == RULE_NS) {
            int nb = optim_ns_nblocks(&o->cfg, p);
            NsBlock b0 = optim_ns_block(&o->cfg, p, 0);
            int sh = b0.rows < b0.cols ? b0.rows : b0.cols;
            if (nb > max_blocks) max_blocks = nb;
            if ((size_t)b0.rows * b0.cols > max_block) max_block = (size_t)b0.rows * b0.cols;
            if (sh > max_short) max_short = sh;
            if (param_numel(p) > max_numel) max_numel = param_numel(p);
        }
    }
    if (cuda_alloc((void **)&o->d_dsum, sizeof(double) * host->n, err) ||
        (sp_rows > 0 && cuda_sp_create(sp_rows, sp_cols, &o->sp, err)) ||
        (max_numel > 0 && (cuda_ns_create(max_blocks, max_block, max_short, o->cfg.ns_bf16, &o->ns, err) ||
                           cuda_alloc((void **)&o->d_in, max_numel * sizeof(float), err) ||
                           cuda_alloc((void **)&o->d_u, max_numel * sizeof(float), err)))) {
        optim_cuda_free(o);
        return error_prefix(err, "optimizer (cuda)");
    }
    *out = o;
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
            float mu = c->momentum, gk = c->momentum_form == MOMENTUM_EMA ? 1.0f - mu : 1.0f;
            float *in = c->nesterov ? o->d_in : st[0];
            // all blocks in one batch: block h sits h block strides after block 0 (see optim_ns_block)
            int nb = optim_ns_nblocks(c, p);
            NsBlock b0 = optim_ns_block(c, p, 0);
            size_t stride = nb > 1 ? optim_ns_block(c, p, 1).off : 0;
            float step = lr * optim_block_scale(c, b0.rows, b0.cols), decay = 1.0f - lr * c->weight_decay;
            rc = cuda_momentum(st[0], G, o->d_in, n, mu, gk, c->nesterov, err) ||
                 cuda_ns_blocks(o->ns, o->sched.a, o->sched.b, o->sched.c, o->sched.steps, in, nb, b0.rows, b0.cols,
                                b0.ld, stride, o->d_u, b0.ld, stride, c->ns_eps, err) ||
                 cuda_scaled_update(W, o->d_u, n, step, decay, o->d_dsum + i, err);
        }
        if (rc) return error_prefix(err, "optimizer (cuda): %s", p->name);
    }
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
