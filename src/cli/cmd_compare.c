// pionrl compare: the same run config once per optimizer (and seed), into sibling run
// directories, then one HTML report over all of them.
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "core/json.h"
#include "rl/report.h"
#include "rl/trainer.h"

#define MAX_RUNS 32

static volatile sig_atomic_t stop_requested;

static void on_sigint(int sig) {
    (void)sig;
    stop_requested = 1;
    signal(SIGINT, SIG_DFL);
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: pionrl compare CONFIG.json [--optimizers adamw,muon,pion] [--seeds 0,1,2] [--steps N]\n"
            "                      [--set key=value ...] [--out report.html]\n"
            "\n"
            "Runs CONFIG once per optimizer (and seed) into RUN_DIR-<optimizer>[-s<seed>], resuming any that\n"
            "already have checkpoints, then writes one HTML report comparing them (pionrl report).\n"
            "Per-optimizer settings come from the config's \"compare\" object:\n"
            "  \"compare\": {\"optimizers\": [\"adamw\", \"muon\", \"pion\"],\n"
            "              \"set\": {\"adamw\": [\"optimizer.lr=1e-6\"], \"muon\": [\"optimizer.lr=2e-6\"]}}\n"
            "  --out FILE   report path (default RUN_DIR-compare.html)\n");
}

static int split_list(char *s, char **out, int max) {
    int n = 0;
    for (char *save = NULL, *tok = strtok_r(s, ",", &save); tok && n < max; tok = strtok_r(NULL, ",", &save))
        out[n++] = tok;
    return n;
}

int cmd_compare(int argc, char **argv) {
    const char *config = NULL, *out_path = NULL;
    char opt_list[512] = "", seed_list[256] = "";
    const char **sets = calloc(argc + 64, sizeof(char *));
    int nsets = 0, steps = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            free(sets);
            return 0;
        }
        if (a[0] != '-' && !config) config = a;
        else if (!v) {
            fprintf(stderr, "compare: %s needs a value (see pionrl compare --help)\n", a);
            free(sets);
            return 2;
        } else {
            i++;
            if (!strcmp(a, "--optimizers")) snprintf(opt_list, sizeof opt_list, "%s", v);
            else if (!strcmp(a, "--seeds")) snprintf(seed_list, sizeof seed_list, "%s", v);
            else if (!strcmp(a, "--steps")) steps = atoi(v);
            else if (!strcmp(a, "--set")) sets[nsets++] = v;
            else if (!strcmp(a, "--out")) out_path = v;
            else {
                fprintf(stderr, "compare: unknown option '%s'\n", a);
                free(sets);
                return 2;
            }
        }
    }
    if (!config) {
        usage(stderr);
        free(sets);
        return 2;
    }
    Error e;
    cJSON *base = json_parse_file(config, &e);
    if (!base) {
        fprintf(stderr, "compare: %s\n", e.msg);
        free(sets);
        return 1;
    }
    const cJSON *cmp = cJSON_GetObjectItemCaseSensitive(base, "compare");
    static const char *const cmp_keys[] = {"optimizers", "set", NULL};
    char where[1100];
    snprintf(where, sizeof where, "%s: compare", config);
    if (cmp && json_check_keys(cmp, cmp_keys, where, &e)) {
        fprintf(stderr, "compare: %s\n", e.msg);
        cJSON_Delete(base);
        free(sets);
        return 1;
    }
    if (!opt_list[0]) {
        const cJSON *ol = cmp ? cJSON_GetObjectItemCaseSensitive(cmp, "optimizers") : NULL;
        const cJSON *it;
        if (cJSON_IsArray(ol))
            cJSON_ArrayForEach(it, ol) if (cJSON_IsString(it) && strlen(opt_list) + strlen(it->valuestring) + 2 < sizeof opt_list) {
                if (opt_list[0]) strcat(opt_list, ",");
                strcat(opt_list, it->valuestring);
            }
        if (!opt_list[0]) snprintf(opt_list, sizeof opt_list, "adamw,muon,pion");
    }
    char *opts[MAX_RUNS], *seeds[MAX_RUNS];
    int nopt = split_list(opt_list, opts, MAX_RUNS), nseed = seed_list[0] ? split_list(seed_list, seeds, MAX_RUNS) : 0;
    char run_dirs[MAX_RUNS][1100];
    const char *dirs[MAX_RUNS];
    int nruns = 0, failures = 0;
    signal(SIGINT, on_sigint);
    for (int oi = 0; oi < nopt && !stop_requested; oi++) {
        for (int si = 0; si < (nseed ? nseed : 1) && !stop_requested && nruns < MAX_RUNS; si++) {
            // per-run overrides: optimizer name, its compare.set entries, seed, steps, then --set
            const char *run_sets[128];
            int n = 0;
            char name_set[128], seed_set[64], steps_set[64], dir_set[1200];
            snprintf(name_set, sizeof name_set, "optimizer.name=%s", opts[oi]);
            run_sets[n++] = name_set;
            const cJSON *per = cmp ? cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(cmp, "set"), opts[oi]) : NULL;
            const cJSON *it;
            if (per)
                cJSON_ArrayForEach(it, per) if (cJSON_IsString(it) && n < 96) run_sets[n++] = it->valuestring;
            if (nseed) {
                snprintf(seed_set, sizeof seed_set, "seed=%s", seeds[si]);
                run_sets[n++] = seed_set;
            }
            if (steps > 0) {
                snprintf(steps_set, sizeof steps_set, "steps=%d", steps);
                run_sets[n++] = steps_set;
            }
            for (int k = 0; k < nsets && n < 127; k++) run_sets[n++] = sets[k];
            TrainConfig cfg;
            cJSON *json = NULL;
            if (train_config_load(config, run_sets, n, &cfg, &json, &e)) {
                fprintf(stderr, "compare: %s: %s\n", opts[oi], e.msg);
                train_config_free(&cfg);
                failures++;
                continue;
            }
            // sibling directory; written into the saved config so --resume finds it
            snprintf(run_dirs[nruns], sizeof run_dirs[nruns], "%s-%s%s%s", cfg.run_dir, opts[oi], nseed ? "-s" : "",
                     nseed ? seeds[si] : "");
            snprintf(dir_set, sizeof dir_set, "run_dir=\"%s\"", run_dirs[nruns]);
            train_config_apply_set(json, dir_set, &e);
            snprintf(cfg.run_dir, sizeof cfg.run_dir, "%s", run_dirs[nruns]);
            char probe[4200];
            Error ignore;
            TrainOptions o = {trainer_latest_checkpoint(cfg.run_dir, probe, sizeof probe, &ignore) == 0, &stop_requested, 0, 0};
            fprintf(stderr, "compare: %s -> %s%s\n", opts[oi], cfg.run_dir, o.resume ? " (resuming)" : "");
            if (trainer_run(&cfg, json, &o, &e)) {
                fprintf(stderr, "compare: %s: %s (continuing with the others)\n", opts[oi], e.msg);
                failures++;
            }
            dirs[nruns] = run_dirs[nruns];
            nruns++;
            cJSON_Delete(json);
            train_config_free(&cfg);
        }
    }
    int rc = 0;
    if (nruns > 0) {
        char default_out[1200];
        if (!out_path) {
            TrainConfig cfg;
            train_config_default(&cfg);
            train_config_load(config, (const char *const *)sets, nsets, &cfg, NULL, &e);
            snprintf(default_out, sizeof default_out, "%s-compare.html", cfg.run_dir);
            train_config_free(&cfg);
            out_path = default_out;
        }
        if (report_write(dirs, nruns, out_path, "pionrl optimizer comparison", &e)) {
            fprintf(stderr, "compare: report: %s\n", e.msg);
            rc = 1;
        } else {
            fprintf(stderr, "compare: report written to %s\n", out_path);
        }
    }
    cJSON_Delete(base);
    free(sets);
    return rc || failures ? 1 : 0;
}
