// Parsing of the "optimizer" config block; see optim.h for the keys and README.md for their meaning.
#include <stdio.h>
#include <string.h>

#include "core/json.h"
#include "optim/optim.h"

void optimizer_config_default(OptimConfig *c) {
    memset(c, 0, sizeof *c);
    c->kind = OPT_PION;
    c->lr = 1e-6f;
    c->weight_decay = 0.01f;
    c->momentum = 0.95f;
    c->nesterov = 1;
    c->momentum_form = MOMENTUM_SUM;
    c->per_head = 1;
    c->kp = 0;
    c->scale = SCALE_MATCH_RMS_ADAMW;
    c->scale_factor = 0.2f;
    c->ns_eps = 1e-7f;
    c->ns_custom = 0;
    sp_config_default(&c->spectral);
    c->adamw.lr = 0.0f;             // use the top-level lr
    c->adamw.beta1 = 0.9f;
    c->adamw.beta2 = 0.999f;
    c->adamw.eps = 1e-8f;
    c->adamw.weight_decay = -1.0f;  // use the top-level weight_decay
    lr_schedule_default(&c->schedule);
    c->max_grad_norm = 0.0f;
}

// "betas": [b1, b2], each in [0, 1).
static int get_betas(const cJSON *obj, float *b1, float *b2, const char *where, Error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, "betas");
    if (!v) return 0;
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 2 || !cJSON_IsNumber(cJSON_GetArrayItem(v, 0)) ||
        !cJSON_IsNumber(cJSON_GetArrayItem(v, 1)))
        return error_set(err, "%s: key 'betas' must be an array of two numbers", where);
    double x = cJSON_GetArrayItem(v, 0)->valuedouble, y = cJSON_GetArrayItem(v, 1)->valuedouble;
    if (!(x >= 0.0 && x < 1.0 && y >= 0.0 && y < 1.0))
        return error_set(err, "%s: betas must be in [0, 1), got [%g, %g]", where, x, y);
    *b1 = (float)x;
    *b2 = (float)y;
    return 0;
}

static int parse_adamw(const cJSON *obj, AdamWConfig *a, const char *where, Error *err) {
    static const char *const keys[] = {"lr", "betas", "eps", "weight_decay", NULL};
    if (json_check_keys(obj, keys, where, err)) return -1;
    if (json_get_float(obj, "lr", 0, &a->lr, where, err) || json_get_float(obj, "eps", 0, &a->eps, where, err) ||
        json_get_float(obj, "weight_decay", 0, &a->weight_decay, where, err) ||
        get_betas(obj, &a->beta1, &a->beta2, where, err))
        return -1;
    if (cJSON_GetObjectItemCaseSensitive(obj, "lr") && !(a->lr > 0.0f))
        return error_set(err, "%s: lr must be > 0, got %g", where, a->lr);
    if (cJSON_GetObjectItemCaseSensitive(obj, "weight_decay") && !(a->weight_decay >= 0.0f))
        return error_set(err, "%s: weight_decay must be >= 0, got %g", where, a->weight_decay);
    if (!(a->eps > 0.0f)) return error_set(err, "%s: eps must be > 0, got %g", where, a->eps);
    return 0;
}

static int parse_spectral(const cJSON *obj, SpConfig *s, const char *where, Error *err) {
    static const char *const keys[] = {"betas", "eps", "update_rms", "map", "alternate", NULL};
    if (json_check_keys(obj, keys, where, err)) return -1;
    char map[16] = "";
    if (get_betas(obj, &s->beta1, &s->beta2, where, err) || json_get_float(obj, "eps", 0, &s->eps, where, err) ||
        json_get_float(obj, "update_rms", 0, &s->update_rms, where, err) ||
        json_get_bool(obj, "alternate", 0, &s->alternate, where, err) ||
        json_get_string(obj, "map", 0, map, sizeof map, where, err))
        return -1;
    if (!strcmp(map, "cayley")) s->map = SP_MAP_CAYLEY;
    else if (!strcmp(map, "exp2")) s->map = SP_MAP_EXP2;
    else if (map[0]) return error_set(err, "%s: unknown map '%s' (cayley, exp2)", where, map);
    if (!(s->eps > 0.0f)) return error_set(err, "%s: eps must be > 0, got %g", where, s->eps);
    if (!(s->update_rms > 0.0f)) return error_set(err, "%s: update_rms must be > 0, got %g", where, s->update_rms);
    return 0;
}

static int parse_coefficients(const cJSON *v, NsSchedule *s, const char *where, Error *err) {
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) < 1 || cJSON_GetArraySize(v) > NS_MAX_STEPS)
        return error_set(err, "%s: ns_coefficients must be an array of 1..%d [a, b, c] triples", where, NS_MAX_STEPS);
    s->steps = 0;
    int i = 0;
    for (const cJSON *t = v->child; t; t = t->next, i++) {
        if (!cJSON_IsArray(t) || cJSON_GetArraySize(t) != 3)
            return error_set(err, "%s: ns_coefficients[%d] must be [a, b, c]", where, i);
        float abc[3];
        for (int k = 0; k < 3; k++) {
            const cJSON *x = cJSON_GetArrayItem(t, k);
            if (!cJSON_IsNumber(x)) return error_set(err, "%s: ns_coefficients[%d][%d] must be a number", where, i, k);
            abc[k] = (float)x->valuedouble;
        }
        ns_schedule_push(s, abc[0], abc[1], abc[2], NULL);
    }
    return 0;
}

int optimizer_config_parse(const cJSON *obj, OptimConfig *c, const char *where, Error *err) {
    static const char *const keys[] = {"name",      "lr",        "weight_decay",    "momentum",     "nesterov",
                                       "momentum_form", "per_head", "kp",           "scale",        "pion_scale_factor",
                                       "ns_eps",    "ns_coefficients", "spectral",  "adamw",        "schedule",
                                       "max_grad_norm", NULL};
    if (json_check_keys(obj, keys, where, err)) return -1;
    char name[32] = "", form[16] = "", scale[32] = "";
    if (json_get_string(obj, "name", 0, name, sizeof name, where, err)) return -1;
    if (!name[0]) {
    } else if (!strcmp(name, "adamw")) c->kind = OPT_ADAMW;
    else if (!strcmp(name, "muon")) c->kind = OPT_MUON;
    else if (!strcmp(name, "pion")) c->kind = OPT_PION;
    else if (!strcmp(name, "spectral")) c->kind = OPT_SPECTRAL;
    else return error_set(err, "%s: unknown optimizer '%s' (adamw, muon, pion, spectral)", where, name);
    if (json_get_float(obj, "lr", 0, &c->lr, where, err) ||
        json_get_float(obj, "weight_decay", 0, &c->weight_decay, where, err) ||
        json_get_float(obj, "momentum", 0, &c->momentum, where, err) ||
        json_get_bool(obj, "nesterov", 0, &c->nesterov, where, err) ||
        json_get_string(obj, "momentum_form", 0, form, sizeof form, where, err) ||
        json_get_bool(obj, "per_head", 0, &c->per_head, where, err) || json_get_int(obj, "kp", 0, &c->kp, where, err) ||
        json_get_string(obj, "scale", 0, scale, sizeof scale, where, err) ||
        json_get_float(obj, "pion_scale_factor", 0, &c->scale_factor, where, err) ||
        json_get_float(obj, "ns_eps", 0, &c->ns_eps, where, err) ||
        json_get_float(obj, "max_grad_norm", 0, &c->max_grad_norm, where, err))
        return -1;
    if (!(c->lr >= 0.0f)) return error_set(err, "%s: lr must be >= 0, got %g", where, c->lr);
    if (!(c->weight_decay >= 0.0f)) return error_set(err, "%s: weight_decay must be >= 0, got %g", where, c->weight_decay);
    if (!(c->momentum >= 0.0f && c->momentum < 1.0f))
        return error_set(err, "%s: momentum must be in [0, 1), got %g", where, c->momentum);
    if (c->kp < 0 || c->kp > 5) return error_set(err, "%s: kp must be in 0..5, got %d", where, c->kp);
    if (!(c->scale_factor > 0.0f))
        return error_set(err, "%s: pion_scale_factor must be > 0, got %g", where, c->scale_factor);
    if (!(c->ns_eps > 0.0f)) return error_set(err, "%s: ns_eps must be > 0, got %g", where, c->ns_eps);
    if (!form[0]) {
    } else if (!strcmp(form, "sum")) c->momentum_form = MOMENTUM_SUM;
    else if (!strcmp(form, "ema")) c->momentum_form = MOMENTUM_EMA;
    else return error_set(err, "%s: unknown momentum_form '%s' (sum, ema)", where, form);
    if (!scale[0]) {
    } else if (!strcmp(scale, "original")) c->scale = SCALE_ORIGINAL;
    else if (!strcmp(scale, "match_rms_adamw")) c->scale = SCALE_MATCH_RMS_ADAMW;
    else return error_set(err, "%s: unknown scale '%s' (original, match_rms_adamw)", where, scale);

    char sub[256];
    const cJSON *v;
    if ((v = cJSON_GetObjectItemCaseSensitive(obj, "ns_coefficients"))) {
        if (parse_coefficients(v, &c->ns_schedule, where, err)) return -1;
        c->ns_custom = 1;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(obj, "spectral"))) {
        snprintf(sub, sizeof sub, "%s.spectral", where);
        if (parse_spectral(v, &c->spectral, sub, err)) return -1;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(obj, "adamw"))) {
        snprintf(sub, sizeof sub, "%s.adamw", where);
        if (parse_adamw(v, &c->adamw, sub, err)) return -1;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(obj, "schedule"))) {
        snprintf(sub, sizeof sub, "%s.schedule", where);
        if (lr_schedule_parse(v, &c->schedule, sub, err)) return -1;
    }
    return 0;
}
