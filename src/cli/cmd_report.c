// pionrl report RUN_DIR... [--out FILE] [--title TEXT]: one HTML page comparing runs.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "rl/report.h"

static void report_usage(FILE *f) {
    fprintf(f,
            "usage: pionrl report RUN_DIR... [--out FILE] [--title TEXT]\n\n"
            "Reads RUN_DIR/metrics.jsonl of each run (and RUN_DIR/config.json for the optimizer name)\n"
            "and writes one self-contained HTML page: an SVG line chart per metric (reward, accuracy,\n"
            "eval accuracy, entropy, response length, KL, grad norm, clip fraction, update RMS, SNR,\n"
            "erank, per-head norm spread, tokens/s, loss) with one line per run on a shared step axis,\n"
            "and a table flagging collapse per run (reward / accuracy / eval accuracy falling to near\n"
            "zero, entropy or response length collapsing, NaN) with the step where it happened.\n\n"
            "options:\n"
            "  --out FILE     where to write the page (default report.html)\n"
            "  --title TEXT   page title (default \"pionrl runs\")\n"
            "  -h, --help     this help\n");
}

int cmd_report(int argc, char **argv) {
    const char *out = "report.html", *title = "pionrl runs";
    const char **dirs = calloc((size_t)argc + 1, sizeof *dirs);
    int n = 0;
    if (!dirs) {
        fprintf(stderr, "pionrl report: out of memory\n");
        return 1;
    }
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            report_usage(stdout);
            free(dirs);
            return 0;
        } else if (!strcmp(argv[i], "--out") || !strcmp(argv[i], "--title")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "pionrl report: %s needs a value\n", argv[i]);
                free(dirs);
                return 2;
            }
            if (!strcmp(argv[i], "--out")) out = argv[++i];
            else title = argv[++i];
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "pionrl report: unknown option '%s' (see pionrl report --help)\n", argv[i]);
            free(dirs);
            return 2;
        } else {
            dirs[n++] = argv[i];
        }
    }
    if (n == 0) {
        report_usage(stderr);
        free(dirs);
        return 2;
    }
    Error err;
    int rc = report_write(dirs, n, out, title, &err);
    free(dirs);
    if (rc) {
        fprintf(stderr, "pionrl report: %s\n", err.msg);
        return 1;
    }
    printf("wrote %s (%d run%s)\n", out, n, n == 1 ? "" : "s");
    return 0;
}
