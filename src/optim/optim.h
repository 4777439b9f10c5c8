// The optimizer the trainer calls: one object over the whole parameter table (src/core/param.h).
// 2-D ROLE_MATRIX parameters get the configured matrix optimizer (Muon, Pion or spectrum-preserving
// Pion; AdamW in AdamW runs); embeddings, lm_head, norms and biases always get AdamW with the
// "adamw" group's lr / betas / eps / weight_decay, as in public Muon setups.
//
//   OptimConfig cfg; optimizer_config_default(&cfg);
//   optimizer_config_parse(json_obj, &cfg, "config.json: optimizer", &err);
//   Optimizer *opt; optimizer_create(&cfg, table, n, num_params, &opt, &err);
//   each step: grad_clip_global_norm(grads, num_params, cfg.max_grad_norm);
//              optimizer_step(opt, params, grads, lr_schedule_scale(&cfg.schedule, step), &err);
//   checkpoint: optimizer_state_save(opt, "optim.safetensors", &err) / optimizer_state_load(...)
#ifndef PIONRL_OPTIM_H
#define PIONRL_OPTIM_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "core/error.h"
#include "core/param.h"
#include "optim/adamw.h"
#include "optim/newton_schulz.h"
#include "optim/schedule.h"
#include "optim/spectral.h"

typedef enum { OPT_ADAMW, OPT_MUON, OPT_PION, OPT_SPECTRAL } OptimKind;
typedef enum { SCALE_ORIGINAL, SCALE_MATCH_RMS_ADAMW } MuonScale;
typedef enum { MOMENTUM_SUM, MOMENTUM_EMA } MomentumForm;

typedef struct {
    OptimKind kind;
    float lr;            // matrix parameters (all parameters' AdamW group defaults to it)
    float weight_decay;  // decoupled, W <- W (1 - lr wd); not used by spectral
    // Muon / Pion
    float momentum;              // mu (0.95)
    int nesterov;                // 1: orthogonalise G + mu M (sum form) / (1-mu) G + mu M (ema form)
    MomentumForm momentum_form;  // sum: M <- mu M + G (default); ema: M <- mu M + (1-mu) G
    int per_head;                // q/k/v rows and o columns orthogonalised per head
    int kp;                      // Pion promotion steps, 0..5 (5 - kp suppression steps)
    MuonScale scale;             // original: sqrt(max(1, r/c)); match_rms_adamw: f sqrt(max(r, c))
    float scale_factor;          // f ("pion_scale_factor", 0.2)
    float ns_eps;                // Frobenius normalisation eps (1e-7)
    int ns_bf16;                 // "ns_dtype" "bf16": Newton-Schulz products on bf16 operands, fp32 sums
    int ns_custom;               // 1: ns_schedule below replaces the Muon / Pion schedule
    NsSchedule ns_schedule;
    SpConfig spectral;
    AdamWConfig adamw;  // non-matrix group (lr <= 0 / weight_decay < 0 mean "use the top level")
    // Used by the trainer, parsed here so the optimizer block is self-contained.
    LrSchedule schedule;
    float max_grad_norm;  // <= 0: no clipping
} OptimConfig;

// Defaults: pion, lr 1e-6, wd 0.01, momentum 0.95 sum-form Nesterov, per_head on, kp 0,
// match_rms_adamw with f 0.2, AdamW group betas (0.9, 0.999), eps 1e-8, lr/wd from the top level.
void optimizer_config_default(OptimConfig *c);
// Reads {"name": "adamw"|"muon"|"pion"|"spectral", "lr", "weight_decay", "momentum", "nesterov",
// "momentum_form": "sum"|"ema", "per_head", "kp", "scale": "original"|"match_rms_adamw",
// "pion_scale_factor", "ns_eps", "ns_dtype": "fp32"|"bf16", "ns_coefficients": [[a,b,c],...],
// "spectral": {"betas", "eps", "update_rms", "map": "cayley"|"exp2", "alternate"}, "adamw": {"lr",
// "betas", "eps", "weight_decay"}, "schedule": {...}, "max_grad_norm"} over the defaults already in c.
// Unknown keys and out-of-range values are errors naming where.key.
int optimizer_config_parse(const cJSON *obj, OptimConfig *c, const char *where, Error *err);
const char *optimizer_kind_name(OptimKind k);

typedef struct Optimizer Optimizer;

// Validates the table (shapes, offsets inside num_params, head splits) and allocates the state.
int optimizer_create(const OptimConfig *cfg, const ParamInfo *table, int n, size_t num_params, Optimizer **out,
                     Error *err);
void optimizer_free(Optimizer *opt);
// One step: lr = cfg lr * lr_scale for every group. grads has the layout of params. Not
// thread-safe: per-head steps run heads in parallel with OpenMP and set OpenBLAS to one thread
// for that time (see ns_param_step in optim.c).
int optimizer_step(Optimizer *opt, float *params, const float *grads, float lr_scale, Error *err);
long optimizer_step_count(const Optimizer *opt);
const OptimConfig *optimizer_config(const Optimizer *opt);
// Bytes of optimizer state (for memory estimates).
size_t optimizer_state_bytes(const Optimizer *opt);
// The same number without creating the optimizer (planning a run before its weights exist).
size_t optimizer_state_bytes_planned(const OptimConfig *cfg, const ParamInfo *table, int n);
// RMS of the last step's change of parameter i (0 before the first step).
float optimizer_update_rms(const Optimizer *opt, int i);
// Which rule parameter i uses ("adamw", "muon", "pion", "spectral").
const char *optimizer_param_rule(const Optimizer *opt, int i);

// State save/load: a safetensors file with one tensor per state buffer ("<param>.exp_avg",
// ".exp_avg_sq", ".momentum", ".m_out", ".v_out", ".m_in", ".v_in") and metadata "optimizer",
// "step", "kp", "per_head". Load requires the same optimizer, table and shapes and restores the
// state bit-exactly.
int optimizer_state_save(const Optimizer *opt, const char *path, Error *err);
int optimizer_state_load(Optimizer *opt, const char *path, Error *err);

#endif
