// Private layout of Optimizer, shared by optim.c (steps) and optim_state.c (save/load).
#ifndef PIONRL_OPTIM_INTERNAL_H
#define PIONRL_OPTIM_INTERNAL_H

#include "optim/optim.h"

typedef enum { RULE_ADAMW, RULE_NS, RULE_SPECTRAL } ParamRule;
// The rule config c gives parameter p: AdamW for all but hidden matrices (and for everything in an AdamW run), the
// spectrum-preserving step or Newton-Schulz (Muon/Pion) for hidden matrices.
ParamRule optim_param_rule(const OptimConfig *c, const ParamInfo *p);

#define OPTIM_MAX_BUFS 4

typedef struct {
    ParamRule rule;
    int nbuf;
    float *buf[OPTIM_MAX_BUFS];  // adamw: exp_avg, exp_avg_sq; ns: momentum; spectral: m_out, v_out, m_in, v_in
    size_t len[OPTIM_MAX_BUFS];
    int rows[OPTIM_MAX_BUFS], cols[OPTIM_MAX_BUFS];
    float update_rms;
} ParamState;

struct Optimizer {
    OptimConfig cfg;
    int n;
    ParamInfo *table;
    size_t num_params;
    long step;
    ParamState *st;
    NsSchedule sched;
    NsWork *ws;  // ws[0] fits every matrix; ws[1..nws-1] fit one head block (parallel per-head)
    int nws;
    float *scratch_in, *scratch_u;  // largest NS matrix
};

// The learning rates and AdamW-group weight decay of one step (lr_scale from the schedule).
typedef struct {
    float lr, adamw_lr, adamw_wd;
} StepRates;
int optim_step_rates(const OptimConfig *c, float lr_scale, StepRates *r, Error *err);

// A 2-D hidden matrix (q/k/v/o, gate/up/down): the matrix optimizers apply to these.
int optim_is_hidden_matrix(const ParamInfo *p);
// The blocks a Muon/Pion step orthogonalises separately: in per-head mode one per head (the rows
// of q/k/v_proj, the columns of o_proj), otherwise the whole matrix. Block h starts at offset off
// of the matrix, with row stride ld.
typedef struct {
    size_t off;
    int rows, cols, ld;
} NsBlock;
int optim_ns_nblocks(const OptimConfig *c, const ParamInfo *p);
NsBlock optim_ns_block(const OptimConfig *c, const ParamInfo *p, int h);

// The update scale of a Muon/Pion block of br x bc (the whole matrix, or one head's block).
float optim_block_scale(const OptimConfig *c, int br, int bc);

// Name of state buffer b of a parameter with this rule ("exp_avg", "momentum", ...).
const char *optim_buffer_name(ParamRule rule, int b);

#endif
