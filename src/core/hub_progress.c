// Download progress: one line redrawn in place on a terminal (bytes, rate, ETA, files), plain
// lines (one per finished file, and a summary every few seconds) when stderr is a file or pipe.
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hub.h"
#include "core/timer.h"

struct HubProgress {
    pthread_mutex_t mu;
    FILE *log;
    int mode;                 // 0 quiet, 1 lines, 2 bar
    long long total, done;    // bytes (done includes skipped)
    long long fresh;          // bytes transferred in this run (for the rate)
    int files_total, files_done;
    double start, last_draw;
    int bar_shown;            // a bar line is on screen and must be cleared before a plain line
};

void hub_format_bytes(long long b, char *out, size_t n) {
    const char *units[] = {"B", "kB", "MB", "GB", "TB"};
    double v = (double)b;
    int u = 0;
    while (v >= 1000.0 && u < 4) {
        v /= 1000.0;
        u++;
    }
    if (u == 0)
        snprintf(out, n, "%lld B", b);
    else
        snprintf(out, n, "%.2f %s", v, units[u]);
}

static void format_eta(double s, char *out, size_t n) {
    if (s < 0 || s > 360000) {
        snprintf(out, n, "--:--");
        return;
    }
    int t = (int)(s + 0.5);
    if (t >= 3600)
        snprintf(out, n, "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(out, n, "%d:%02d", t / 60, t % 60);
}

HubProgress *hub_progress_new(const HubOptions *o, long long total_bytes, int total_files) {
    HubProgress *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    pthread_mutex_init(&p->mu, NULL);
    p->log = o->log;
    p->mode = o->log ? o->progress : 0;
    p->total = total_bytes;
    p->files_total = total_files;
    p->start = p->last_draw = time_now();
    return p;
}

// Caller holds the lock.
static void draw(HubProgress *p, int force) {
    double now = time_now();
    if (p->mode == 0) return;
    double interval = p->mode == 2 ? 0.2 : 10.0;
    if (!force && now - p->last_draw < interval) return;
    p->last_draw = now;
    double el = now - p->start;
    double rate = el > 0 ? (double)p->fresh / el : 0;
    char done[32], total[32], r[32], eta[32];
    hub_format_bytes(p->done, done, sizeof done);
    hub_format_bytes(p->total, total, sizeof total);
    hub_format_bytes((long long)rate, r, sizeof r);
    format_eta(rate > 0 ? (double)(p->total - p->done) / rate : -1, eta, sizeof eta);
    double frac = p->total > 0 ? (double)p->done / (double)p->total : 0;
    if (frac > 1) frac = 1;
    if (p->mode == 2) {
        char bar[31];
        int fill = (int)(frac * 30);
        for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
        bar[30] = 0;
        fprintf(p->log, "\r[%s] %5.1f%% %s / %s  %s/s  ETA %s  files %d/%d\033[K", bar, 100 * frac, done,
                total, r, eta, p->files_done, p->files_total);
        p->bar_shown = 1;
    } else {
        fprintf(p->log, "progress: %.1f%% %s / %s, %s/s, ETA %s, files %d/%d\n", 100 * frac, done, total, r,
                eta, p->files_done, p->files_total);
    }
    fflush(p->log);
}

static void clear_bar(HubProgress *p) {
    if (p->bar_shown) {
        fprintf(p->log, "\r\033[K");
        p->bar_shown = 0;
    }
}

void hub_progress_add(HubProgress *p, long long bytes) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->done += bytes;
    p->fresh += bytes;
    draw(p, 0);
    pthread_mutex_unlock(&p->mu);
}

void hub_progress_skip(HubProgress *p, long long bytes) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->done += bytes;
    pthread_mutex_unlock(&p->mu);
}

void hub_progress_file_done(HubProgress *p, const char *name, long long size, const char *how) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->files_done++;
    if (p->mode) {
        char s[32];
        hub_format_bytes(size, s, sizeof s);
        clear_bar(p);
        fprintf(p->log, "%s %s (%s)\n", how, name, s);
        draw(p, p->mode == 2);
    }
    pthread_mutex_unlock(&p->mu);
}

void hub_progress_note(HubProgress *p, const char *fmt, ...) {
    if (!p || !p->mode) return;
    pthread_mutex_lock(&p->mu);
    clear_bar(p);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(p->log, fmt, ap);
    va_end(ap);
    fputc('\n', p->log);
    fflush(p->log);
    pthread_mutex_unlock(&p->mu);
}

void hub_progress_finish(HubProgress *p) {
    if (!p || !p->mode) return;
    pthread_mutex_lock(&p->mu);
    if (p->mode == 2) {
        draw(p, 1);
        fputc('\n', p->log);
        p->bar_shown = 0;
    }
    double el = time_now() - p->start;
    char fresh[32], r[32];
    hub_format_bytes(p->fresh, fresh, sizeof fresh);
    hub_format_bytes(el > 0 ? (long long)((double)p->fresh / el) : 0, r, sizeof r);
    fprintf(p->log, "%d/%d files, %s transferred in %.1f s (%s/s)\n", p->files_done, p->files_total, fresh, el, r);
    fflush(p->log);
    pthread_mutex_unlock(&p->mu);
}

void hub_progress_free(HubProgress *p) {
    if (!p) return;
    pthread_mutex_destroy(&p->mu);
    free(p);
}
