// Private layout of Optimizer, shared by optim.c (steps) and optim_state.c (save/load).
#ifndef PIONRL_OPTIM_INTERNAL_H
#define PIONRL_OPTIM_INTERNAL_H

#include "optim/optim.h"

typedef enum { RULE_ADAMW, RULE_NS, RULE_SPECTRAL } ParamRule;

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

// Name of state buffer b of a parameter with this rule ("exp_avg", "momentum", ...).
const char *optim_buffer_name(ParamRule rule, int b);

#endif
