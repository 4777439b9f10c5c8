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
    c->adamw.lr = 0.0f;  // use the top-level lr
    c->adamw.beta1 = 0.9f;
    c->adamw.beta2 = 0.999f;
    c->adamw.eps = 1e-8f;
    c->adamw.weight_decay = -1.0f;  // use the top-level weight_decay
    lr_schedule_default(&c->schedule);
    c->max_grad_norm = 0.0f;
}

// A string key whose value must be one of `names`; *out becomes its index. Absent: *out unchanged.
static int get_choice(const cJSON *obj, const char *key, const char *const *names, int *out, const char *what,
                      const char *where, Error *err) {
    char value[64] = "";
    if (json_get_string(obj, key, 0, value, sizeof value, where, err)) return -1;
    if (!value[0]) return 0;
    char list[256] = "";
    for (int i = 0; names[i]; i++) {
        if (!strcmp(value, names[i])) {
            *out = i;
            return 0;
        }
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", names[i]);
    }
    return error_set(err, "%s: unknown %s '%s' (%s)", where, what, value, list);
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
    static const char *const maps[] = {"cayley", "exp2", NULL};  // order of SpMap
    int map = (int)s->map;
    if (get_betas(obj, &s->beta1, &s->beta2, where, err) || json_get_float(obj, "eps", 0, &s->eps, where, err) ||
        json_get_float(obj, "update_rms", 0, &s->update_rms, where, err) ||
        json_get_bool(obj, "alternate", 0, &s->alternate, where, err) ||
        get_choice(obj, "map", maps, &map, "map", where, err))
        return -1;
    s->map = (SpMap)map;
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
    static const char *const keys[] = {
        "name",     "lr",    "weight_decay", "momentum",          "nesterov", "momentum_form",
        "per_head", "kp",    "scale",        "pion_scale_factor", "ns_eps",   "ns_coefficients",
        "spectral", "adamw", "schedule",     "max_grad_norm",     "ns_dtype", NULL};
    if (json_check_keys(obj, keys, where, err)) return -1;
    static const char *const kinds[] = {"adamw", "muon", "pion", "spectral", NULL};  // order of OptimKind
    static const char *const forms[] = {"sum", "ema", NULL};                          // order of MomentumForm
    static const char *const scales[] = {"original", "match_rms_adamw", NULL};        // order of MuonScale
    static const char *const dtypes[] = {"fp32", "bf16", NULL};                       // ns_bf16 0 / 1
    int kind = (int)c->kind, form = (int)c->momentum_form, scale = (int)c->scale, ns_dtype = c->ns_bf16;
    if (get_choice(obj, "name", kinds, &kind, "optimizer", where, err) ||
        get_choice(obj, "momentum_form", forms, &form, "momentum_form", where, err) ||
        get_choice(obj, "scale", scales, &scale, "scale", where, err) ||
        get_choice(obj, "ns_dtype", dtypes, &ns_dtype, "ns_dtype", where, err))
        return -1;
    c->ns_bf16 = ns_dtype;
    c->kind = (OptimKind)kind;
    c->momentum_form = (MomentumForm)form;
    c->scale = (MuonScale)scale;
    if (json_get_float(obj, "lr", 0, &c->lr, where, err) ||
        json_get_float(obj, "weight_decay", 0, &c->weight_decay, where, err) ||
        json_get_float(obj, "momentum", 0, &c->momentum, where, err) ||
        json_get_bool(obj, "nesterov", 0, &c->nesterov, where, err) ||
        json_get_bool(obj, "per_head", 0, &c->per_head, where, err) || json_get_int(obj, "kp", 0, &c->kp, where, err) ||
        json_get_float(obj, "pion_scale_factor", 0, &c->scale_factor, where, err) ||
        json_get_float(obj, "ns_eps", 0, &c->ns_eps, where, err) ||
        json_get_float(obj, "max_grad_norm", 0, &c->max_grad_norm, where, err))
        return -1;
    if (!(c->lr >= 0.0f)) return error_set(err, "%s: lr must be >= 0, got %g", where, c->lr);
    if (!(c->weight_decay >= 0.0f))
        return error_set(err, "%s: weight_decay must be >= 0, got %g", where, c->weight_decay);
    if (!(c->momentum >= 0.0f && c->momentum < 1.0f))
        return error_set(err, "%s: momentum must be in [0, 1), got %g", where, c->momentum);
    if (c->kp < 0 || c->kp > 5) return error_set(err, "%s: kp must be in 0..5, got %d", where, c->kp);
    if (!(c->scale_factor > 0.0f))
        return error_set(err, "%s: pion_scale_factor must be > 0, got %g", where, c->scale_factor);
    if (!(c->ns_eps > 0.0f)) return error_set(err, "%s: ns_eps must be > 0, got %g", where, c->ns_eps);

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
