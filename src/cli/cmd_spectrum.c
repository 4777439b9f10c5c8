// pionrl spectrum: the scalar map f(sigma) of Muon's and Pion's Newton-Schulz schedules, measured
// by running the optimizer's real orthogonalisation code on a matrix with prescribed singular
// values (random orthogonal U, V) and reading the output along each input singular direction.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "optim/newton_schulz.h"
#include "optim/spectrum.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: pionrl spectrum [--optimizer muon|pion] [--kp K] [--json] [--svg FILE] [options]\n"
            "\n"
            "Builds a matrix A = U diag(sigma) V^T with random orthogonal U, V and singular values on a grid\n"
            "in (0, 1], runs the optimizer's Newton-Schulz code on it and prints, per singular direction,\n"
            "the input sigma, the measured output singular value u_i^T NS(A) v_i and the closed-form\n"
            "composed polynomial f(sigma).\n"
            "\n"
            "  --optimizer muon|pion  schedule: Muon 5 x (3.4445, -4.7750, 2.0315), or Pion kp promotion\n"
            "                         steps (1.875, -1.25, 0.375) then 5 - kp suppression steps (0, 2.5, -1.5)\n"
            "                         (default pion)\n"
            "  --kp K                 Pion promotion steps, 0..5 (default 0)\n"
            "  --points N             number of singular values = matrix rows (default 64, 2..1024);\n"
            "                         the matrix is N x 3N/2\n"
            "  --normalize            run the full optimizer path with Frobenius normalisation X / ||X||_F,\n"
            "                         so the map's input is sigma / ||sigma|| (default: the iteration alone)\n"
            "  --seed S               seed for U and V (default 1)\n"
            "  --json                 print one JSON object instead of the table\n"
            "  --svg FILE             also write a self-contained SVG with the maps of Muon and Pion kp = 0..5\n");
}

static int measure(int muon, int kp, int points, int normalize, unsigned long long seed, NsSchedule *s,
                   SpectrumResult *r) {
    Error err;
    if (muon) ns_schedule_muon(s);
    else if (ns_schedule_pion(kp, s, &err)) {
        fprintf(stderr, "pionrl spectrum: %s\n", err.msg);
        return 2;
    }
    int rows = points, cols = points + points / 2;
    double *sigma = malloc(points * sizeof(double));
    if (!sigma) return 1;
    for (int i = 0; i < points; i++) sigma[i] = (double)(i + 1) / points;
    int rc = spectrum_measure(s, sigma, rows, cols, normalize, seed, r, &err);
    free(sigma);
    if (rc) {
        fprintf(stderr, "pionrl spectrum: %s\n", err.msg);
        return 1;
    }
    return 0;
}

static double max_error(const SpectrumResult *r) {
    double e = 0;
    for (int i = 0; i < r->n; i++) e = fmax(e, fabs(r->sigma_out[i] - r->expected[i]));
    return e;
}

static void print_json(const char *name, int kp, const NsSchedule *s, int points, int normalize,
                       const SpectrumResult *r) {
    printf("{\"optimizer\": \"%s\", ", name);
    if (strcmp(name, "pion") == 0) printf("\"kp\": %d, ", kp);
    printf("\"schedule\": [");
    for (int i = 0; i < s->steps; i++) printf("%s[%.9g, %.9g, %.9g]", i ? ", " : "", s->a[i], s->b[i], s->c[i]);
    printf(
        "], \"rows\": %d, \"cols\": %d, \"normalize\": %s, \"max_abs_error\": %.3g, \"max_offdiag\": %.3g, "
        "\"points\": [",
        points, points + points / 2, normalize ? "true" : "false", max_error(r), r->max_offdiag);
    for (int i = 0; i < r->n; i++)
        printf("%s{\"sigma\": %.9g, \"measured\": %.9g, \"expected\": %.9g}", i ? ", " : "", r->sigma_in[i],
               r->sigma_out[i], r->expected[i]);
    printf("]}\n");
}

static void print_table(const char *name, int kp, const NsSchedule *s, int points, int normalize,
                        const SpectrumResult *r) {
    printf("# %s", name);
    if (strcmp(name, "pion") == 0) printf(" kp=%d (%d promotion + %d suppression steps)", kp, kp, 5 - kp);
    printf(", %d x %d matrix, %s\n", points, points + points / 2,
           normalize ? "with Frobenius normalisation (input = sigma / ||sigma||)" : "iteration only");
    printf("# %10s %12s %12s %10s\n", "sigma_in", "measured", "f(sigma)", "|diff|");
    for (int i = 0; i < r->n; i++)
        printf("  %10.6f %12.6f %12.6f %10.2e\n", r->sigma_in[i], r->sigma_out[i], r->expected[i],
               fabs(r->sigma_out[i] - r->expected[i]));
    printf("# max |measured - f| = %.3g, max off-diagonal |u_i^T Y v_j| = %.3g\n", max_error(r), r->max_offdiag);
}

// One figure: x = input sigma in [0, 1], y = output in [0, 1.3]; measured points as dots, the
// closed-form polynomial as a line, one colour per schedule.
static int write_svg(const char *path, int points, int normalize, unsigned long long seed) {
    static const char *colors[7] = {"#000000", "#d62728", "#ff7f0e", "#bcbd22", "#2ca02c", "#1f77b4", "#9467bd"};
    const double W = 720, H = 520, L = 70, R = 190, T = 40, B = 60;
    const double ymax = 1.3;
    double pw = W - L - R, ph = H - T - B;
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "pionrl spectrum: cannot write %s\n", path);
        return 1;
    }
    fprintf(f,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%g\" height=\"%g\" viewBox=\"0 0 %g %g\" "
            "font-family=\"sans-serif\" font-size=\"12\">\n",
            W, H, W, H);
    fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    fprintf(f, "<text x=\"%g\" y=\"22\" font-size=\"15\">Newton-Schulz singular-value maps f(sigma)%s</text>\n", L,
            normalize ? " (after Frobenius normalisation)" : "");
    for (int i = 0; i <= 10; i++) {  // grid and ticks
        double x = L + pw * i / 10.0;
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", x, T, x, T + ph);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%.1f</text>\n", x, T + ph + 16, i / 10.0);
    }
    for (int i = 0; i <= 13; i++) {
        double y = T + ph - ph * (i / 10.0) / ymax;
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", L, y, L + pw, y);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.1f</text>\n", L - 6, y + 4, i / 10.0);
    }
    fprintf(f, "<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" fill=\"none\" stroke=\"#000\"/>\n", L, T, pw, ph);
    fprintf(f, "<text x=\"%g\" y=\"%g\" text-anchor=\"middle\">input singular value sigma</text>\n", L + pw / 2,
            H - 18);
    fprintf(f,
            "<text x=\"18\" y=\"%g\" text-anchor=\"middle\" transform=\"rotate(-90 18 %g)\">output singular value"
            "</text>\n",
            T + ph / 2, T + ph / 2);
    for (int k = 0; k < 7; k++) {
        NsSchedule s;
        SpectrumResult r;
        int rc = measure(k == 0, k - 1, points, normalize, seed, &s, &r);
        if (rc) {
            fclose(f);
            return rc;
        }
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"", colors[k]);
        for (int i = 0; i <= 200; i++) {
            double x = i / 200.0, y = fmin(fmax(ns_schedule_eval(&s, x), 0.0), ymax);
            fprintf(f, "%.1f,%.1f ", L + pw * x, T + ph - ph * y / ymax);
        }
        fprintf(f, "\"/>\n");
        for (int i = 0; i < r.n; i++) {
            double x = fmin(r.sigma_in[i], 1.0), y = fmin(fmax(r.sigma_out[i], 0.0), ymax);
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.2\" fill=\"%s\"/>\n", L + pw * x, T + ph - ph * y / ymax,
                    colors[k]);
        }
        double ly = T + 14 + 20 * k;
        fprintf(f, "<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"%s\" stroke-width=\"2\"/>\n", L + pw + 12,
                ly, L + pw + 36, ly, colors[k]);
        if (k == 0) fprintf(f, "<text x=\"%g\" y=\"%g\">Muon</text>\n", L + pw + 42, ly + 4);
        else fprintf(f, "<text x=\"%g\" y=\"%g\">Pion kp=%d</text>\n", L + pw + 42, ly + 4, k - 1);
        spectrum_result_free(&r);
    }
    fprintf(f, "<text x=\"%g\" y=\"%g\" font-size=\"11\">dots: measured</text>\n", L + pw + 12, T + 14 + 20 * 7 + 6);
    fprintf(f, "<text x=\"%g\" y=\"%g\" font-size=\"11\">lines: polynomial</text>\n", L + pw + 12, T + 14 + 20 * 8);
    fprintf(f, "</svg>\n");
    if (fclose(f) != 0) {
        fprintf(stderr, "pionrl spectrum: error writing %s\n", path);
        return 1;
    }
    return 0;
}

int cmd_spectrum(int argc, char **argv) {
    const char *opt = "pion", *svg = NULL;
    int kp = 0, points = 64, normalize = 0, json = 0, kp_given = 0;
    unsigned long long seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_val = i + 1 < argc;
        char *end;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else if (!strcmp(a, "--normalize")) {
            normalize = 1;
        } else if (!strcmp(a, "--optimizer") && has_val) {
            opt = argv[++i];
        } else if (!strcmp(a, "--svg") && has_val) {
            svg = argv[++i];
        } else if (!strcmp(a, "--kp") && has_val) {
            kp = (int)strtol(argv[++i], &end, 10);
            kp_given = 1;
            if (*end || end == argv[i] || kp < 0 || kp > 5) {
                fprintf(stderr, "pionrl spectrum: --kp must be an integer in 0..5, got '%s'\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(a, "--points") && has_val) {
            points = (int)strtol(argv[++i], &end, 10);
            if (*end || end == argv[i] || points < 2 || points > 1024) {
                fprintf(stderr, "pionrl spectrum: --points must be an integer in 2..1024, got '%s'\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(a, "--seed") && has_val) {
            seed = strtoull(argv[++i], &end, 10);
            if (*end || end == argv[i]) {
                fprintf(stderr, "pionrl spectrum: --seed must be a non-negative integer, got '%s'\n", argv[i]);
                return 2;
            }
        } else {
            fprintf(stderr, "pionrl spectrum: unknown or incomplete option '%s' (see pionrl spectrum --help)\n", a);
            return 2;
        }
    }
    int muon = !strcmp(opt, "muon");
    if (!muon && strcmp(opt, "pion")) {
        fprintf(stderr, "pionrl spectrum: --optimizer must be muon or pion, got '%s'\n", opt);
        return 2;
    }
    if (muon && kp_given) {
        fprintf(stderr, "pionrl spectrum: --kp applies to --optimizer pion only\n");
        return 2;
    }
    NsSchedule s;
    SpectrumResult r;
    int rc = measure(muon, kp, points, normalize, seed, &s, &r);
    if (rc) return rc;
    if (json) print_json(opt, kp, &s, points, normalize, &r);
    else print_table(opt, kp, &s, points, normalize, &r);
    spectrum_result_free(&r);
    if (svg) {
        rc = write_svg(svg, points, normalize, seed);
        if (rc) return rc;
        if (!json) printf("# wrote %s (Muon and Pion kp = 0..5)\n", svg);
    }
    return 0;
}
