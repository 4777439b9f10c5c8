// metrics.jsonl writing and the progress line; see metrics.h.
#include "rl/metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/fileio.h"
#include "core/timer.h"

int metrics_line_init(MetricsLine *line, long step, Error *err) {
    line->obj = cJSON_CreateObject();
    if (!line->obj || !cJSON_AddNumberToObject(line->obj, "step", (double)step)) {
        cJSON_Delete(line->obj);
        line->obj = NULL;
        return error_set(err, "metrics: out of memory");
    }
    return 0;
}

void metrics_line_free(MetricsLine *line) {
    cJSON_Delete(line->obj);
    line->obj = NULL;
}

static int set_item(cJSON *obj, const char *key, cJSON *item) {
    if (!item) return -1;
    if (cJSON_GetObjectItemCaseSensitive(obj, key)) {
        cJSON_ReplaceItemInObjectCaseSensitive(obj, key, item);
        return 0;
    }
    if (!cJSON_AddItemToObject(obj, key, item)) {
        cJSON_Delete(item);
        return -1;
    }
    return 0;
}

// NaN and infinities are not JSON: they are written as null, which the report reads as NaN.
static cJSON *number_or_null(double v) {
    return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull();
}

int metrics_set(MetricsLine *line, const char *key, double value) {
    return set_item(line->obj, key, number_or_null(value));
}

int metrics_set_int(MetricsLine *line, const char *key, long value) {
    return set_item(line->obj, key, cJSON_CreateNumber((double)value));
}

int metrics_set_str(MetricsLine *line, const char *key, const char *value) {
    return set_item(line->obj, key, cJSON_CreateString(value));
}

int metrics_set_bool(MetricsLine *line, const char *key, int value) {
    return set_item(line->obj, key, cJSON_CreateBool(value));
}

int metrics_set_in(MetricsLine *line, const char *group, const char *key, double value) {
    cJSON *g = cJSON_GetObjectItemCaseSensitive(line->obj, group);
    if (!cJSON_IsObject(g)) {
        g = cJSON_CreateObject();
        if (!g || set_item(line->obj, group, g)) return -1;
    }
    return set_item(g, key, number_or_null(value));
}

char *metrics_line_text(const MetricsLine *line) {
    return cJSON_PrintUnformatted(line->obj);
}

int metrics_open(MetricsWriter *w, const char *run_dir, Error *err) {
    w->fd = -1;
    if (path_join(w->path, sizeof w->path, run_dir, "metrics.jsonl"))
        return error_set(err, "%s: path too long", run_dir);
    w->fd = open(w->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (w->fd < 0) return error_set(err, "%s: cannot open for appending: %s", w->path, strerror(errno));
    return 0;
}

int metrics_write(MetricsWriter *w, const MetricsLine *line, Error *err) {
    if (w->fd < 0) return error_set(err, "metrics: writer is not open");
    char *text = metrics_line_text(line);
    if (!text) return error_set(err, "%s: out of memory", w->path);
    size_t n = strlen(text);
    char *buf = realloc(text, n + 2);
    if (!buf) {
        free(text);
        return error_set(err, "%s: out of memory", w->path);
    }
    buf[n] = '\n';
    buf[n + 1] = 0;
    // One write() per line: with O_APPEND the line lands whole unless the disk fills up.
    size_t done = 0;
    while (done < n + 1) {
        ssize_t k = write(w->fd, buf + done, n + 1 - done);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            int e = errno;
            free(buf);
            return error_set(err, "%s: write failed: %s", w->path, strerror(e));
        }
        done += (size_t)k;
    }
    free(buf);
    if (fsync(w->fd) != 0) return error_set(err, "%s: fsync failed: %s", w->path, strerror(errno));
    return 0;
}

void metrics_close(MetricsWriter *w) {
    if (w->fd >= 0) close(w->fd);
    w->fd = -1;
}

int metrics_truncate_after(const char *run_dir, long last_step, int *kept, Error *err) {
    char path[4096];
    if (kept) *kept = 0;
    if (path_join(path, sizeof path, run_dir, "metrics.jsonl")) return error_set(err, "%s: path too long", run_dir);
    if (!file_exists(path)) return 0;
    size_t len;
    char *text = file_read_all(path, &len, err);
    if (!text) return -1;
    char *out = malloc(len + 1);
    if (!out) {
        free(text);
        return error_set(err, "%s: out of memory", path);
    }
    size_t olen = 0;
    int count = 0;
    for (char *p = text; *p;) {
        char *nl = strchr(p, '\n');
        if (!nl) break;  // incomplete last line (killed mid-write): dropped
        *nl = 0;
        cJSON *o = cJSON_Parse(p);
        const cJSON *s = o ? cJSON_GetObjectItemCaseSensitive(o, "step") : NULL;
        if (cJSON_IsNumber(s) && s->valuedouble <= (double)last_step) {
            size_t l = (size_t)(nl - p);
            memcpy(out + olen, p, l);
            out[olen + l] = '\n';
            olen += l + 1;
            count++;
        }
        cJSON_Delete(o);
        p = nl + 1;
    }
    free(text);
    int rc = file_write_atomic(path, out, olen, err);
    free(out);
    if (rc == 0 && kept) *kept = count;
    return rc;
}

void progress_init(Progress *p, FILE *out, long total_steps, long start_step) {
    p->out = out;
    p->tty = isatty(fileno(out));
    p->total = total_steps;
    p->start_step = start_step;
    p->start_time = time_now();
    p->last_len = 0;
}

static void format_duration(char *buf, size_t n, double s) {
    if (!isfinite(s) || s < 0) {
        snprintf(buf, n, "-");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%ldh%02ldm", t / 3600, (t % 3600) / 60);
    else if (t >= 60) snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
    else snprintf(buf, n, "%lds", t);
}

int progress_format(char *buf, size_t n, long step, long total, double reward, double accuracy,
                    double tokens_per_s, double eta_s) {
    char r[32] = "-", a[32] = "-", tps[32] = "-", eta[32];
    if (isfinite(reward)) snprintf(r, sizeof r, "%.3f", reward);
    if (isfinite(accuracy)) snprintf(a, sizeof a, "%.1f%%", 100 * accuracy);
    if (isfinite(tokens_per_s)) snprintf(tps, sizeof tps, "%.0f", tokens_per_s);
    format_duration(eta, sizeof eta, eta_s);
    int k = snprintf(buf, n, "step %ld/%ld | reward %s | acc %s | %s tok/s | ETA %s", step, total, r, a, tps, eta);
    return k < 0 ? 0 : (size_t)k >= n ? (int)n - 1 : k;
}

void progress_update(Progress *p, long step, double reward, double accuracy, double tokens_per_s) {
    double elapsed = time_now() - p->start_time, eta = NAN;
    long done = step - p->start_step;
    if (done > 0) eta = elapsed / done * (double)(p->total - step);
    char buf[256];
    int len = progress_format(buf, sizeof buf, step, p->total, reward, accuracy, tokens_per_s, eta);
    if (p->tty) {
        // Pad with spaces so a shorter line fully covers the previous one.
        fprintf(p->out, "\r%s%*s", buf, p->last_len > len ? p->last_len - len : 0, "");
        p->last_len = len;
    } else {
        fprintf(p->out, "%s\n", buf);
    }
    fflush(p->out);
}

void progress_finish(Progress *p) {
    if (p->tty && p->last_len > 0) fputc('\n', p->out);
    p->last_len = 0;
    fflush(p->out);
}
