#include "optim/schedule.h"

#include <math.h>
#include <string.h>

#include "core/json.h"

void lr_schedule_default(LrSchedule *s) {
    s->type = LR_CONSTANT;
    s->warmup_steps = 0;
    s->total_steps = 0;
    s->min_lr_ratio = 0.0f;
}

const char *lr_schedule_name(LrScheduleType t) {
    switch (t) {
        case LR_CONSTANT: return "constant";
        case LR_LINEAR_WARMUP: return "linear_warmup";
        case LR_COSINE: return "cosine";
    }
    return "?";
}

int lr_schedule_parse(const cJSON *obj, LrSchedule *s, const char *where, Error *err) {
    static const char *const keys[] = {"type", "warmup_steps", "total_steps", "min_lr_ratio", NULL};
    if (json_check_keys(obj, keys, where, err)) return -1;
    char type[32] = "constant";
    int warm = (int)s->warmup_steps, total = (int)s->total_steps;
    if (json_get_string(obj, "type", 0, type, sizeof type, where, err)) return -1;
    if (json_get_int(obj, "warmup_steps", 0, &warm, where, err)) return -1;
    if (json_get_int(obj, "total_steps", 0, &total, where, err)) return -1;
    if (json_get_float(obj, "min_lr_ratio", 0, &s->min_lr_ratio, where, err)) return -1;
    if (!strcmp(type, "constant")) s->type = LR_CONSTANT;
    else if (!strcmp(type, "linear_warmup")) s->type = LR_LINEAR_WARMUP;
    else if (!strcmp(type, "cosine")) s->type = LR_COSINE;
    else return error_set(err, "%s: unknown schedule type '%s' (constant, linear_warmup, cosine)", where, type);
    if (warm < 0) return error_set(err, "%s: warmup_steps must be >= 0, got %d", where, warm);
    if (total < 0) return error_set(err, "%s: total_steps must be >= 0, got %d", where, total);
    // total_steps 0 means "the length of the run": the trainer fills it in.
    if (s->type == LR_COSINE && total > 0 && total <= warm)
        return error_set(err, "%s: cosine needs total_steps (%d) > warmup_steps (%d)", where, total, warm);
    if (!(s->min_lr_ratio >= 0.0f && s->min_lr_ratio <= 1.0f))
        return error_set(err, "%s: min_lr_ratio must be in [0, 1], got %g", where, s->min_lr_ratio);
    s->warmup_steps = warm;
    s->total_steps = total;
    return 0;
}

float lr_schedule_scale(const LrSchedule *s, long step) {
    if (step < 0) step = 0;
    if (s->warmup_steps > 0 && step < s->warmup_steps) return (float)((double)(step + 1) / (double)s->warmup_steps);
    if (s->type != LR_COSINE) return 1.0f;
    long span = s->total_steps - s->warmup_steps;
    if (span <= 0) return 1.0f;  // run length not known yet
    double t = (double)(step - s->warmup_steps) / (double)span;
    if (t > 1.0) t = 1.0;
    double cosv = 0.5 * (1.0 + cos(M_PI * t));
    return (float)(s->min_lr_ratio + (1.0 - s->min_lr_ratio) * cosv);
}

double grad_global_norm(const float *g, size_t n) {
    double ss = 0.0;
#pragma omp simd reduction(+ : ss)  // vectorised: not one serial chain of double adds
    for (size_t i = 0; i < n; i++) ss += (double)g[i] * g[i];
    return sqrt(ss);
}

double grad_clip_global_norm(float *g, size_t n, double max_norm) {
    double norm = grad_global_norm(g, n);
    if (max_norm > 0.0 && norm > max_norm) {
        float f = (float)(max_norm / (norm + 1e-6));
        for (size_t i = 0; i < n; i++) g[i] *= f;
    }
    return norm;
}
