// HTML page of `pionrl report`: inline CSS and SVG only (no scripts, no external files), so the
// page can be mailed or archived as one file.
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "rl/report.h"

typedef struct {
    char *s;
    size_t n, cap;
    int oom;
} Buf;

static void put(Buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(Buf *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (k < 0) return;
        if (b->s && b->n + (size_t)k < b->cap) {
            b->n += (size_t)k;
            return;
        }
        size_t cap = b->cap ? b->cap : 65536;
        while (cap <= b->n + (size_t)k) cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->oom = 1;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
}

static void put_escaped(Buf *b, const char *text) {
    for (const char *p = text; *p; p++) {
        switch (*p) {
        case '&': put(b, "&amp;"); break;
        case '<': put(b, "&lt;"); break;
        case '>': put(b, "&gt;"); break;
        case '"': put(b, "&quot;"); break;
        default: put(b, "%c", *p);
        }
    }
}

// Tableau 10: distinguishable, and the usual colours of matplotlib line plots.
static const char *const COLORS[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                     "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
#define NUM_COLORS 10

enum { W = 540, H = 290, PL = 66, PR = 14, PT = 14, PB = 42 };

typedef struct {
    double x0, x1, y0, y1;
    int log_y;
} Axes;

static double px(const Axes *a, double x) {
    return PL + (x - a->x0) / (a->x1 - a->x0) * (W - PL - PR);
}

static double py(const Axes *a, double y) {
    double v = a->log_y ? log10(y) : y;
    return H - PB - (v - a->y0) / (a->y1 - a->y0) * (H - PT - PB);
}

static double nice_step(double range, int target) {
    double raw = range / target, mag = pow(10, floor(log10(raw))), f = raw / mag;
    return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
}

static void fmt_num(char *buf, size_t n, double v) {
    if (v == 0 || (fabs(v) >= 1e-3 && fabs(v) < 1e6)) snprintf(buf, n, "%.4g", v);
    else snprintf(buf, n, "%.2e", v);
}

static int metric_has_data(const ReportRun *runs, int num_runs, ReportMetric m) {
    for (int r = 0; r < num_runs; r++)
        if (runs[r].series[m].n > 0) return 1;
    return 0;
}

static void chart(Buf *b, const ReportRun *runs, int num_runs, ReportMetric m, double xmin, double xmax) {
    const ReportMetricInfo *info = report_metric_info(m);
    double lo = INFINITY, hi = -INFINITY;
    for (int r = 0; r < num_runs; r++)
        for (int i = 0; i < runs[r].series[m].n; i++) {
            double v = runs[r].series[m].value[i];
            if (isfinite(v)) lo = fmin(lo, v), hi = fmax(hi, v);
        }
    Axes a = {xmin, xmax, 0, 1, 0};
    if (xmax <= xmin) a.x0 = xmin - 1, a.x1 = xmax + 1;
    int can_log = m == RM_GRAD_NORM || m == RM_SNR || m == RM_KL || m == RM_UPDATE_RMS;
    if (!isfinite(lo)) {
        lo = 0, hi = 1;
    } else if (can_log && lo > 0 && hi / lo >= 1000) {
        a.log_y = 1;  // values spanning decades: a linear axis would flatten all but the spikes
        lo = log10(lo), hi = log10(hi);
    }
    if (hi - lo <= 1e-12 * fmax(1, fabs(hi))) {
        double d = fabs(hi) > 0 ? fabs(hi) * 0.1 : 1;
        lo -= d, hi += d;
    }
    double pad = (hi - lo) * 0.05;
    a.y0 = lo - pad, a.y1 = hi + pad;
    // Linear metrics that are never negative start at 0 when close to it, so drops read true.
    if (!a.log_y && lo >= 0 && a.y0 < 0) a.y0 = 0;

    put(b, "<figure><figcaption>");
    put_escaped(b, info->title);
    put(b, " <code>%s</code>%s</figcaption>\n", info->key, a.log_y ? " <span class=\"scale\">log scale</span>" : "");
    put(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\">\n",
        W, H, W, H);
    put(b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" class=\"plot\"/>\n", PL, PT, W - PL - PR, H - PT - PB);
    char t[32];
    // y ticks and grid
    if (a.log_y) {
        for (double e = ceil(a.y0); e <= a.y1; e += 1) {
            double y = H - PB - (e - a.y0) / (a.y1 - a.y0) * (H - PT - PB);
            fmt_num(t, sizeof t, pow(10, e));
            put(b, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>", PL, W - PR, y, y);
            put(b, "<text x=\"%d\" y=\"%.1f\" class=\"ytick\">%s</text>\n", PL - 6, y + 4, t);
        }
    } else {
        double step = nice_step(a.y1 - a.y0, 5);
        for (double v = ceil(a.y0 / step) * step; v <= a.y1 + step * 1e-9; v += step) {
            double y = py(&a, v);
            fmt_num(t, sizeof t, fabs(v) < step * 1e-9 ? 0 : v);
            put(b, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>", PL, W - PR, y, y);
            put(b, "<text x=\"%d\" y=\"%.1f\" class=\"ytick\">%s</text>\n", PL - 6, y + 4, t);
        }
    }
    // x ticks (shared step axis)
    double xs = nice_step(a.x1 - a.x0, 6);
    if (xs < 1) xs = 1;
    for (double v = ceil(a.x0 / xs) * xs; v <= a.x1 + xs * 1e-9; v += xs) {
        double x = px(&a, v);
        fmt_num(t, sizeof t, v);
        put(b, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" class=\"grid\"/>", x, x, PT, H - PB);
        put(b, "<text x=\"%.1f\" y=\"%d\" class=\"xtick\">%s</text>\n", x, H - PB + 16, t);
    }
    put(b, "<text x=\"%d\" y=\"%d\" class=\"xlabel\">step</text>\n", (PL + W - PR) / 2, H - 6);
    // one line per run; NaN breaks the line
    for (int r = 0; r < num_runs; r++) {
        const ReportSeries *s = &runs[r].series[m];
        const char *color = COLORS[r % NUM_COLORS];
        int in_seg = 0, markers = s->n <= 60;
        for (int i = 0; i < s->n; i++) {
            double v = s->value[i];
            int ok = isfinite(v) && (!a.log_y || v > 0);
            if (ok && !in_seg) {
                put(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.8\" points=\"", color);
                in_seg = 1;
            }
            if (ok) put(b, "%.1f,%.1f ", px(&a, s->step[i]), py(&a, v));
            if ((!ok || i == s->n - 1) && in_seg) {
                put(b, "\"/>\n");
                in_seg = 0;
            }
        }
        if (markers)
            for (int i = 0; i < s->n; i++) {
                double v = s->value[i];
                if (isfinite(v) && (!a.log_y || v > 0))
                    put(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.4\" fill=\"%s\"/>", px(&a, s->step[i]), py(&a, v),
                        color);
            }
        // collapse / NaN markers of this run on this chart
        for (int f = 0; f < runs[r].num_flags; f++) {
            const ReportFlag *fl = &runs[r].flags[f];
            if (fl->metric != m) continue;
            double x = px(&a, fl->step);
            put(b, "<g class=\"flag\"><title>");
            put_escaped(b, runs[r].label);
            put(b, ": ");
            put_escaped(b, fl->text);
            put(b, "</title><line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-dasharray=\"5,3\" "
                   "stroke-width=\"1.5\"/><text x=\"%.1f\" y=\"%d\" fill=\"%s\" class=\"flagtext\">%s</text></g>\n",
                x, x, PT, H - PB, color, x + 3, PT + 12 + 12 * (r % 4), color,
                fl->kind == FLAG_NAN ? "NaN" : "collapse");
        }
    }
    put(b, "</svg>\n<div class=\"chartlegend\">");
    for (int r = 0; r < num_runs; r++) {
        if (runs[r].series[m].n == 0) continue;
        put(b, "<span><i style=\"background:%s\"></i>", COLORS[r % NUM_COLORS]);
        put_escaped(b, runs[r].label);
        put(b, "</span>");
    }
    put(b, "</div></figure>\n");
}

char *report_render_html(const ReportRun *runs, int num_runs, const char *title, Error *err) {
    Buf b = {0};
    double xmin = INFINITY, xmax = -INFINITY;
    for (int r = 0; r < num_runs; r++)
        for (int m = 0; m < RM_COUNT; m++)
            for (int i = 0; i < runs[r].series[m].n; i++)
                xmin = fmin(xmin, runs[r].series[m].step[i]), xmax = fmax(xmax, runs[r].series[m].step[i]);
    if (!isfinite(xmin)) xmin = 0, xmax = 1;

    put(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>");
    put_escaped(&b, title);
    put(&b, "</title>\n<style>\n"
            "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:24px;color:#222;"
            "background:#fff}\n"
            "h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:22px 0 8px}\n"
            ".meta{color:#666;font-size:13px;margin:0 0 12px}\n"
            ".legend span,.chartlegend span{display:inline-block;margin:0 14px 4px 0;font-size:13px}\n"
            ".legend i,.chartlegend i{display:inline-block;width:14px;height:4px;margin:0 6px 3px 0;"
            "vertical-align:middle}\n"
            ".chartlegend{font-size:12px;padding-left:%dpx}\n"
            "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ddd;padding:4px 8px;"
            "text-align:left;vertical-align:top}th{background:#f5f5f5}\n"
            ".ok{color:#2a7d2a}.bad{color:#b00020;font-weight:600}\n"
            ".grid-charts{display:flex;flex-wrap:wrap;gap:10px 18px}\n"
            "figure{margin:0;border:1px solid #e4e4e4;border-radius:6px;padding:8px 8px 4px}\n"
            "figcaption{font-size:14px;font-weight:600;margin:0 0 2px 6px}figcaption code{font-weight:400;"
            "color:#777;font-size:12px}\n"
            ".scale{font-weight:400;color:#a60;font-size:12px}\n"
            "svg .plot{fill:#fcfcfc;stroke:#bbb}svg .grid{stroke:#e6e6e6;stroke-width:1}\n"
            "svg text{font-size:11px;fill:#555}svg .ytick{text-anchor:end}svg .xtick{text-anchor:middle}\n"
            "svg .xlabel{text-anchor:middle;fill:#333}svg .flagtext{font-size:10px;font-weight:600}\n"
            ".note{color:#666;font-size:12px;margin-top:16px}\n"
            "</style></head><body>\n<h1>",
        PL);
    put_escaped(&b, title);
    put(&b, "</h1>\n<p class=\"meta\">pionrl report of %d run%s, steps %.0f to %.0f.</p>\n<div class=\"legend\">",
        num_runs, num_runs == 1 ? "" : "s", xmin, xmax);
    for (int r = 0; r < num_runs; r++) {
        put(&b, "<span><i style=\"background:%s\"></i>", COLORS[r % NUM_COLORS]);
        put_escaped(&b, runs[r].label);
        put(&b, "</span>");
    }
    put(&b, "</div>\n<h2>Collapse and NaN checks</h2>\n<table><tr><th>run</th><th>directory</th><th>steps logged</th>"
            "<th>flags</th></tr>\n");
    for (int r = 0; r < num_runs; r++) {
        put(&b, "<tr><td><i style=\"display:inline-block;width:10px;height:10px;background:%s;margin-right:6px\">"
                "</i>", COLORS[r % NUM_COLORS]);
        put_escaped(&b, runs[r].label);
        put(&b, "</td><td>");
        put_escaped(&b, runs[r].dir);
        put(&b, "</td><td>%d%s</td><td>", runs[r].num_lines,
            runs[r].dropped_partial ? " (incomplete last line ignored)" : "");
        if (runs[r].num_flags == 0) put(&b, "<span class=\"ok\">none</span>");
        for (int f = 0; f < runs[r].num_flags; f++) {
            put(&b, "<div class=\"bad\">");
            put_escaped(&b, runs[r].flags[f].text);
            put(&b, "</div>");
        }
        put(&b, "</td></tr>\n");
    }
    put(&b, "</table>\n<h2>Metrics</h2>\n<div class=\"grid-charts\">\n");
    char missing[1024] = "";
    for (int m = 0; m < RM_COUNT; m++) {
        if (metric_has_data(runs, num_runs, (ReportMetric)m)) {
            chart(&b, runs, num_runs, (ReportMetric)m, xmin, xmax);
        } else {
            size_t l = strlen(missing);
            snprintf(missing + l, sizeof missing - l, "%s%s", l ? ", " : "", report_metric_info(m)->key);
        }
    }
    put(&b, "</div>\n");
    if (missing[0]) put(&b, "<p class=\"note\">Not recorded by any run: %s.</p>\n", missing);
    put(&b, "<p class=\"note\">Collapse rules: reward, accuracy (trailing 3-step mean) or eval accuracy falling to "
            "&le; 10%% of an earlier peak of at least 0.1; entropy (3-step mean) falling to &le; 10%% of its peak; "
            "response length (3-step mean) falling to &le; 20%% of a peak of at least 16 tokens; each held for 3 "
            "logged points or to the end. NaN: the first null among loss, reward, accuracy, grad norm, entropy, "
            "KL, clip fraction, update RMS.</p>\n</body></html>\n");
    if (b.oom) {
        free(b.s);
        error_set(err, "report: out of memory");
        return NULL;
    }
    return b.s;
}

int report_write(const char *const *run_dirs, int num_runs, const char *out_path, const char *title, Error *err) {
    if (num_runs <= 0) return error_set(err, "report: no run directories given");
    ReportRun *runs = calloc((size_t)num_runs, sizeof *runs);
    if (!runs) return error_set(err, "report: out of memory");
    int loaded = 0, rc = 0;
    for (; loaded < num_runs; loaded++)
        if (report_load_run(run_dirs[loaded], &runs[loaded], err)) {
            rc = -1;
            break;
        }
    if (rc == 0) {
        // Two runs with the same directory name: show the paths instead, so legends stay distinct.
        for (int i = 0; i < num_runs; i++)
            for (int j = 0; j < num_runs; j++)
                if (i != j && strcmp(runs[i].label, runs[j].label) == 0) {
                    char label[256];
                    if (runs[i].optimizer[0])
                        snprintf(label, sizeof label, "%.180s (%.60s)", runs[i].dir, runs[i].optimizer);
                    else
                        snprintf(label, sizeof label, "%.250s", runs[i].dir);
                    memcpy(runs[i].label, label, sizeof label);
                }
        char *html = report_render_html(runs, num_runs, title, err);
        if (!html) rc = -1;
        else rc = file_write_atomic(out_path, html, strlen(html), err);
        free(html);
    }
    for (int i = 0; i < loaded; i++) report_run_free(&runs[i]);
    free(runs);
    return rc;
}
