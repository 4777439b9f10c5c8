// `pionrl report`: reads the metrics.jsonl of one or more runs and writes one self-contained HTML
// page with inline SVG line charts (one chart per metric, one line per run, shared step axis),
// flagging collapse per run: reward / accuracy / eval accuracy falling to near zero after having
// been higher, entropy collapsing towards 0, response length collapsing, NaN. Rules: docs/RL.md.
#ifndef PIONRL_REPORT_H
#define PIONRL_REPORT_H

#include "core/error.h"

// The metrics the page charts, in page order (metrics.jsonl keys). A key whose value is an object
// (e.g. per-matrix "update_rms") is charted as the mean of its numbers.
typedef enum {
    RM_REWARD, RM_ACCURACY, RM_EVAL_ACCURACY, RM_ENTROPY, RM_RESPONSE_LENGTH, RM_KL, RM_GRAD_NORM,
    RM_CLIP_FRACTION, RM_UPDATE_RMS, RM_SNR, RM_ERANK, RM_HEAD_NORM_SPREAD, RM_TOKENS_PER_S, RM_LOSS,
    RM_COUNT
} ReportMetric;

typedef struct {
    const char *key;    // metrics.jsonl key
    const char *title;  // chart title
} ReportMetricInfo;

const ReportMetricInfo *report_metric_info(ReportMetric m);

typedef struct {
    double *step, *value;  // value NaN where the line had null
    int n, cap;
} ReportSeries;

typedef enum { FLAG_NAN, FLAG_REWARD, FLAG_ACCURACY, FLAG_EVAL_ACCURACY, FLAG_ENTROPY, FLAG_LENGTH } ReportFlagKind;

typedef struct {
    ReportFlagKind kind;
    ReportMetric metric;  // the chart the flag belongs to
    double step;          // where it happened
    char text[160];       // e.g. "eval accuracy fell to 0.01 (peak 0.42 at step 40)"
} ReportFlag;

#define REPORT_MAX_FLAGS 16

typedef struct {
    char dir[1024];
    char label[256];      // shown in legends: directory name, plus the optimizer when known
    char optimizer[64];   // from RUN_DIR/config.json ("optimizer": "pion" or {"name": ...}), or ""
    ReportSeries series[RM_COUNT];
    int num_lines;        // metric lines read
    int dropped_partial;  // 1 when an incomplete last line (killed mid-write) was ignored
    ReportFlag flags[REPORT_MAX_FLAGS];
    int num_flags;
} ReportRun;

// Reads RUN_DIR/metrics.jsonl (and config.json when present). Errors name file:line.
int report_load_run(const char *dir, ReportRun *run, Error *err);
void report_run_free(ReportRun *run);
// Fills run->flags from its series (called by report_load_run; exposed for tests).
void report_detect_collapse(ReportRun *run);

// Renders the page into a malloc'd NUL-terminated string.
char *report_render_html(const ReportRun *runs, int num_runs, const char *title, Error *err);
// Loads every run, renders, writes out_path atomically.
int report_write(const char *const *run_dirs, int num_runs, const char *out_path, const char *title, Error *err);

#endif
