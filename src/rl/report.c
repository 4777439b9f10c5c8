// Report data: reading runs' metrics.jsonl and config.json, and the collapse rules.
#include "rl/report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "core/json.h"

static const ReportMetricInfo METRICS[RM_COUNT] = {
    {"reward_mean", "Reward (mean)"},
    {"accuracy", "Accuracy (train)"},
    {"eval_accuracy", "Eval accuracy (pass@1)"},
    {"entropy", "Entropy (nats / token)"},
    {"response_length_mean", "Response length (tokens)"},
    {"kl", "KL to reference"},
    {"grad_norm", "Gradient norm"},
    {"clip_fraction", "Clip fraction"},
    {"update_rms", "Update RMS (mean over matrices)"},
    {"snr", "Gradient SNR"},
    {"erank", "Effective rank"},
    {"head_norm_spread", "Per-head norm spread (q/k)"},
    {"tokens_per_s", "Tokens / s"},
    {"loss", "Loss"},
};

const ReportMetricInfo *report_metric_info(ReportMetric m) {
    return (unsigned)m < RM_COUNT ? &METRICS[m] : NULL;
}

static int series_push(ReportSeries *s, double step, double value) {
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 64;
        double *a = realloc(s->step, sizeof(double) * (size_t)cap);
        if (!a) return -1;
        s->step = a;
        double *b = realloc(s->value, sizeof(double) * (size_t)cap);
        if (!b) return -1;
        s->value = b;
        s->cap = cap;
    }
    s->step[s->n] = step;
    s->value[s->n] = value;
    s->n++;
    return 0;
}

// A metric's value in one line: number, null (NaN), or an object's mean; 0 when absent.
static int metric_value(const cJSON *line, const char *key, double *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(line, key);
    if (!v) return 0;
    if (cJSON_IsNumber(v)) {
        *out = v->valuedouble;
        return 1;
    }
    if (cJSON_IsNull(v)) {
        *out = NAN;
        return 1;
    }
    if (cJSON_IsObject(v)) {
        double sum = 0;
        int n = 0;
        for (const cJSON *c = v->child; c; c = c->next) {
            if (cJSON_IsNumber(c)) sum += c->valuedouble, n++;
            else if (cJSON_IsNull(c)) sum = NAN, n++;
        }
        if (n == 0) return 0;
        *out = sum / n;
        return 1;
    }
    return 0;
}

typedef struct {
    double step, value;
    int index;
} Point;

static int cmp_point(const void *a, const void *b) {
    const Point *x = a, *y = b;
    if (x->step != y->step) return x->step < y->step ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

// Steps in increasing order; a repeated step (a resumed run that re-logged it) keeps the last.
static int sort_series(ReportSeries *s) {
    if (s->n < 2) return 0;
    Point *p = malloc(sizeof *p * (size_t)s->n);
    if (!p) return -1;
    for (int i = 0; i < s->n; i++) p[i] = (Point){s->step[i], s->value[i], i};
    qsort(p, (size_t)s->n, sizeof *p, cmp_point);
    int m = 0;
    for (int i = 0; i < s->n; i++) {
        if (i + 1 < s->n && p[i + 1].step == p[i].step) continue;
        s->step[m] = p[i].step;
        s->value[m] = p[i].value;
        m++;
    }
    s->n = m;
    free(p);
    return 0;
}

static void read_optimizer(ReportRun *run) {
    char path[1100];
    if (path_join(path, sizeof path, run->dir, "config.json") || !file_exists(path)) return;
    cJSON *cfg = json_parse_file(path, NULL);
    if (!cfg) return;  // a broken config does not stop the report; the legend just lacks the name
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(cfg, "optimizer");
    const cJSON *name = NULL;
    if (cJSON_IsString(o)) name = o;
    else if (cJSON_IsObject(o)) {
        name = cJSON_GetObjectItemCaseSensitive(o, "name");
        if (!cJSON_IsString(name)) name = cJSON_GetObjectItemCaseSensitive(o, "type");
    }
    if (cJSON_IsString(name)) snprintf(run->optimizer, sizeof run->optimizer, "%s", name->valuestring);
    cJSON_Delete(cfg);
}

int report_load_run(const char *dir, ReportRun *run, Error *err) {
    memset(run, 0, sizeof *run);
    snprintf(run->dir, sizeof run->dir, "%s", dir);
    size_t dl = strlen(run->dir);
    while (dl > 1 && run->dir[dl - 1] == '/') run->dir[--dl] = 0;
    const char *base = strrchr(run->dir, '/');
    base = base ? base + 1 : run->dir;
    char path[1100];
    if (path_join(path, sizeof path, run->dir, "metrics.jsonl")) return error_set(err, "%s: path too long", dir);
    size_t len;
    char *text = file_read_all(path, &len, err);
    if (!text) return -1;
    int line = 0, rc = 0;
    for (char *p = text; *p && rc == 0;) {
        line++;
        char *nl = strchr(p, '\n');
        char *next = nl ? nl + 1 : p + strlen(p);
        if (nl) *nl = 0;
        if (p[strspn(p, " \t\r")]) {
            char where[1200];
            snprintf(where, sizeof where, "%s:%d", path, line);
            cJSON *o = cJSON_Parse(p);
            if (!o && !nl) {
                run->dropped_partial = 1;  // the run was killed while writing its last line
            } else if (!o || !cJSON_IsObject(o)) {
                rc = error_set(err, "%s: not a JSON object", where);
            } else {
                const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "step");
                if (!cJSON_IsNumber(st)) {
                    rc = error_set(err, "%s: missing numeric 'step'", where);
                } else {
                    run->num_lines++;
                    for (int m = 0; m < RM_COUNT && rc == 0; m++) {
                        double v;
                        if (metric_value(o, METRICS[m].key, &v) && series_push(&run->series[m], st->valuedouble, v))
                            rc = error_set(err, "%s: out of memory", where);
                    }
                    // A step the trainer skipped for non-finite values: record it as NaN loss.
                    const cJSON *skip = cJSON_GetObjectItemCaseSensitive(o, "skipped_nonfinite");
                    if (rc == 0 && cJSON_IsTrue(skip) && !cJSON_GetObjectItemCaseSensitive(o, "loss") &&
                        series_push(&run->series[RM_LOSS], st->valuedouble, NAN))
                        rc = error_set(err, "%s: out of memory", where);
                }
            }
            cJSON_Delete(o);
        }
        p = next;
    }
    free(text);
    if (rc == 0 && run->num_lines == 0) rc = error_set(err, "%s: no metric lines", path);
    for (int m = 0; m < RM_COUNT && rc == 0; m++)
        if (sort_series(&run->series[m])) rc = error_set(err, "%s: out of memory", path);
    if (rc) {
        report_run_free(run);
        return -1;
    }
    read_optimizer(run);
    // "runs/pion" with optimizer "pion" needs no "(pion)" suffix.
    if (run->optimizer[0] && !strstr(base, run->optimizer))
        snprintf(run->label, sizeof run->label, "%.180s (%.60s)", base, run->optimizer);
    else snprintf(run->label, sizeof run->label, "%.250s", base);
    report_detect_collapse(run);
    return 0;
}

void report_run_free(ReportRun *run) {
    for (int m = 0; m < RM_COUNT; m++) {
        free(run->series[m].step);
        free(run->series[m].value);
        run->series[m] = (ReportSeries){0};
    }
}

static void add_flag(ReportRun *run, ReportFlagKind kind, ReportMetric metric, double step, const char *text) {
    if (run->num_flags == REPORT_MAX_FLAGS) return;
    ReportFlag *f = &run->flags[run->num_flags++];
    f->kind = kind;
    f->metric = metric;
    f->step = step;
    snprintf(f->text, sizeof f->text, "%s", text);
}

// Finds the first point where the trailing mean (window w, finite points only) falls to
// <= frac * its running peak, with peak >= min_peak, and stays there for 3 points (or to the end);
// the step reported is where the raw values entered that low stretch.
// Returns the index into the finite points or -1; *peak_out / *value_out / *peak_step describe it.
static int find_drop(const ReportSeries *s, int w, double frac, double min_peak, double *step_out,
                     double *value_out, double *peak_out, double *peak_step) {
    int n = 0;
    double *x = malloc(sizeof(double) * (size_t)(s->n + 1)), *st = malloc(sizeof(double) * (size_t)(s->n + 1));
    int found = -1;
    if (!x || !st) goto done;
    for (int i = 0; i < s->n; i++)
        if (isfinite(s->value[i])) x[n] = s->value[i], st[n] = s->step[i], n++;
    double *sm = malloc(sizeof(double) * (size_t)(n + 1));
    if (!sm) goto done;
    for (int i = 0; i < n; i++) {
        int a = i - w + 1 < 0 ? 0 : i - w + 1;
        double sum = 0;
        for (int j = a; j <= i; j++) sum += x[j];
        sm[i] = sum / (i - a + 1);
    }
    double peak = -INFINITY, pstep = 0;
    for (int i = 0; i < n && found < 0; i++) {
        if (sm[i] > peak) peak = sm[i], pstep = st[i];
        if (!(peak >= min_peak) || !(sm[i] <= frac * peak)) continue;
        int stays = 1;
        for (int j = i + 1; j < n && j <= i + 2; j++)
            if (!(sm[j] <= frac * peak)) stays = 0;
        if (stays) {
            // The smoothed series lags the drop by up to w - 1 points: report where the raw
            // values first went (and stayed) below the threshold.
            int j = i;
            while (j > 0 && x[j - 1] <= frac * peak && st[j - 1] > pstep) j--;
            found = j;
            *step_out = st[j];
            *value_out = sm[i];
            *peak_out = peak;
            *peak_step = pstep;
        }
    }
    free(sm);
done:
    free(x);
    free(st);
    return found;
}

void report_detect_collapse(ReportRun *run) {
    run->num_flags = 0;
    // NaN: the first null among the core training metrics.
    static const ReportMetric NAN_METRICS[] = {RM_LOSS, RM_REWARD, RM_ACCURACY, RM_GRAD_NORM, RM_ENTROPY,
                                               RM_KL, RM_CLIP_FRACTION, RM_UPDATE_RMS};
    double nan_step = INFINITY;
    ReportMetric nan_metric = RM_LOSS;
    for (size_t k = 0; k < sizeof NAN_METRICS / sizeof *NAN_METRICS; k++) {
        const ReportSeries *s = &run->series[NAN_METRICS[k]];
        for (int i = 0; i < s->n; i++)
            if (!isfinite(s->value[i])) {
                if (s->step[i] < nan_step) nan_step = s->step[i], nan_metric = NAN_METRICS[k];
                break;
            }
    }
    char text[160];
    if (isfinite(nan_step)) {
        snprintf(text, sizeof text, "NaN/Inf in %s at step %.0f", METRICS[nan_metric].key, nan_step);
        add_flag(run, FLAG_NAN, nan_metric, nan_step, text);
    }
    struct {
        ReportMetric metric;
        ReportFlagKind kind;
        int window;
        double frac, min_peak;
        const char *what;
    } rules[] = {
        {RM_EVAL_ACCURACY, FLAG_EVAL_ACCURACY, 1, 0.1, 0.1, "eval accuracy fell to"},
        {RM_REWARD, FLAG_REWARD, 3, 0.1, 0.1, "reward fell to"},
        {RM_ACCURACY, FLAG_ACCURACY, 3, 0.1, 0.1, "accuracy fell to"},
        {RM_ENTROPY, FLAG_ENTROPY, 3, 0.1, 1e-12, "entropy collapsed to"},
        {RM_RESPONSE_LENGTH, FLAG_LENGTH, 3, 0.2, 16, "response length collapsed to"},
    };
    for (size_t r = 0; r < sizeof rules / sizeof *rules; r++) {
        double step, value, peak, peak_step;
        if (find_drop(&run->series[rules[r].metric], rules[r].window, rules[r].frac, rules[r].min_peak, &step,
                      &value, &peak, &peak_step) < 0)
            continue;
        snprintf(text, sizeof text, "%s %.4g at step %.0f (peak %.4g at step %.0f)", rules[r].what, value, step, peak,
                 peak_step);
        add_flag(run, rules[r].kind, rules[r].metric, step, text);
    }
}
