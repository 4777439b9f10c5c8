// Per-step metrics: one JSON object per line appended to RUN_DIR/metrics.jsonl (each line written
// with one write() and fsync'd, so a kill leaves at most an incomplete last line), NaN/Inf written
// as null; and the live progress line (carriage-return updates on a terminal, plain lines when
// not). Standard key names are listed in README.md ("Training: ... metrics"); `pionrl report`
// plots them.
#ifndef PIONRL_METRICS_H
#define PIONRL_METRICS_H

#include <stdio.h>

#include <cjson/cJSON.h>

#include "core/error.h"
#include "rl/advantage.h"
#include "rl/loss.h"

// One line under construction. Keys keep insertion order; setting a key twice replaces it.
typedef struct {
    cJSON *obj;
} MetricsLine;

// Starts a line with "step": step. Returns -1 only when out of memory.
int metrics_line_init(MetricsLine *line, long step, Error *err);
void metrics_line_free(MetricsLine *line);
// Numbers (non-finite -> null), integers, strings, booleans.
int metrics_set(MetricsLine *line, const char *key, double value);
int metrics_set_int(MetricsLine *line, const char *key, long value);
int metrics_set_str(MetricsLine *line, const char *key, const char *value);
int metrics_set_bool(MetricsLine *line, const char *key, int value);
// A number inside a nested object, e.g. ("update_rms", "model.layers.0.self_attn.q_proj.weight").
int metrics_set_in(MetricsLine *line, const char *group, const char *key, double value);
// The line as compact JSON without the newline (malloc'd).
char *metrics_line_text(const MetricsLine *line);

// The standard keys for the loss and advantage statistics of a step (docs/RL.md), so every
// trainer names them the way `pionrl report` reads them. Loss (stats after loss_stats_finish):
// loss, policy_loss, clip_fraction, clip_fraction_low, clip_fraction_high, ratio_mean, ratio_max,
// loss_tokens, and with a reference model (has_ref) kl and kl_loss; GMPO adds seq_ratio_mean.
// Advantages: reward_mean, reward_std, reward_group_std_mean, zero_variance_groups,
// zero_variance_fraction, advantage_abs_mean.
int metrics_set_loss_stats(MetricsLine *line, const LossStats *stats, int has_ref, int is_gmpo);
int metrics_set_advantage_stats(MetricsLine *line, const AdvantageStats *stats);

typedef struct {
    int fd;
    char path[4096];
} MetricsWriter;

// Opens (creating) run_dir/metrics.jsonl for appending; run_dir must exist.
int metrics_open(MetricsWriter *w, const char *run_dir, Error *err);
// Appends the line and a newline in one write, then fsyncs.
int metrics_write(MetricsWriter *w, const MetricsLine *line, Error *err);
void metrics_close(MetricsWriter *w);
// For --resume: rewrites run_dir/metrics.jsonl (atomically) keeping only lines with step <=
// last_step, and drops an incomplete last line (and any line that is not an object with a
// numeric step). A missing file is not an error. *kept (may be
// NULL) receives the number of lines kept.
int metrics_truncate_after(const char *run_dir, long last_step, int *kept, Error *err);

// Live progress.
typedef struct {
    FILE *out;
    int tty;         // carriage-return updates when 1, one plain line per update when 0
    long total;      // last step of the run
    long start_step; // step the run (or resume) started from, for the ETA
    double start_time;
    int last_len;    // length of the line on screen, so a shorter one can blank it out
} Progress;

void progress_init(Progress *p, FILE *out, long total_steps, long start_step);
// Prints "step 12/200 | reward 0.512 | acc 48.4% | 1234 tok/s | ETA 1h02m" (NaN fields as "-").
void progress_update(Progress *p, long step, double reward, double accuracy, double tokens_per_s);
// Ends the carriage-return line with a newline (nothing to do when not a terminal).
void progress_finish(Progress *p);
// The text of a progress line; eta_s < 0 or NaN prints "ETA -". Returns the length.
int progress_format(char *buf, size_t n, long step, long total, double reward, double accuracy,
                    double tokens_per_s, double eta_s);

#endif
