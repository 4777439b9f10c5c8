// Learning-rate schedules (a multiplier on the configured lr) and global-norm gradient clipping.
#ifndef PIONRL_SCHEDULE_H
#define PIONRL_SCHEDULE_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "core/error.h"

typedef enum { LR_CONSTANT, LR_LINEAR_WARMUP, LR_COSINE } LrScheduleType;

typedef struct {
    LrScheduleType type;
    long warmup_steps;   // linear ramp from 1/warmup to 1 over the first warmup_steps (all types)
    long total_steps;    // cosine: decay from 1 to min_lr_ratio between warmup_steps and total_steps
                         // (0 in a config: the run's length, filled in by the trainer; while still 0
                         // or <= warmup_steps, cosine stays at 1 after the warm-up)
    float min_lr_ratio;  // cosine floor, in [0, 1]
} LrSchedule;

// Defaults: constant, no warm-up.
void lr_schedule_default(LrSchedule *s);
// {"type": "constant"|"linear_warmup"|"cosine", "warmup_steps": N, "total_steps": N,
//  "min_lr_ratio": x}; unknown keys are errors. `where` names the object in messages.
int lr_schedule_parse(const cJSON *obj, LrSchedule *s, const char *where, Error *err);
const char *lr_schedule_name(LrScheduleType t);
// Multiplier for 0-based `step` (the step about to be taken).
float lr_schedule_scale(const LrSchedule *s, long step);

// Global L2 norm of n values (accumulated in double).
double grad_global_norm(const float *g, size_t n);
// Scales g by max_norm / norm when the norm exceeds max_norm (max_norm <= 0: no clipping).
// Returns the norm before clipping.
double grad_clip_global_norm(float *g, size_t n, double max_norm);

#endif
