// pionrl train: RLVR training from a run config.
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "core/fileio.h"
#include "rl/trainer.h"

static volatile sig_atomic_t stop_requested;

static void on_sigint(int sig) {
    (void)sig;
    stop_requested = 1;
    signal(SIGINT, SIG_DFL);  // a second Ctrl-C ends the process at once
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: pionrl train CONFIG.json [--set key=value ...] [--resume] [--quiet] [--plan]\n"
            "       pionrl train --resume RUN_DIR [--set key=value ...]\n"
            "\n"
            "RLVR training (GRPO / GMPO with AdamW, Muon, Pion or spectrum-preserving Pion) of a Qwen2/Qwen3\n"
            "checkpoint on a JSONL data set with verifiable rewards. Keys: docs/TRAINING.md; examples: configs/.\n"
            "\n"
            "  --set a.b=value   override a config key (value parsed as JSON, else a string), repeatable:\n"
            "                    --set steps=50 --set optimizer.name=muon --set optimizer.lr=2e-6\n"
            "  --resume          continue from the run directory's latest checkpoint, bit-exactly\n"
            "                    (with RUN_DIR alone, its saved config.json is used)\n"
            "  --quiet           no progress line\n"
            "  --plan            print the memory the run needs (weights, gradients, optimizer state,\n"
            "                    activations, KV cache, logits; fp32) and exit without training\n"
            "\n"
            "Ctrl-C finishes the current step, writes a checkpoint and exits; a second Ctrl-C exits at once.\n"
            "Metrics: RUN_DIR/metrics.jsonl (pionrl report RUN_DIR... charts them).\n");
}

int cmd_train(int argc, char **argv) {
    const char *config = NULL, *resume_dir = NULL;
    const char **sets = calloc(argc, sizeof(char *));
    int nsets = 0, resume = 0, quiet = 0, plan = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            free(sets);
            return 0;
        } else if (!strcmp(argv[i], "--set") && i + 1 < argc) {
            sets[nsets++] = argv[++i];
        } else if (!strcmp(argv[i], "--resume")) {
            resume = 1;
            if (i + 1 < argc && argv[i + 1][0] != '-' && dir_exists(argv[i + 1])) resume_dir = argv[++i];
        } else if (!strcmp(argv[i], "--quiet")) {
            quiet = 1;
        } else if (!strcmp(argv[i], "--plan")) {
            plan = 1;
        } else if (argv[i][0] != '-' && !config) {
            config = argv[i];
        } else {
            fprintf(stderr, "train: unexpected argument '%s' (see pionrl train --help)\n", argv[i]);
            free(sets);
            return 2;
        }
    }
    char saved[4200];
    if (!config && resume_dir) {
        snprintf(saved, sizeof saved, "%s/config.json", resume_dir);
        config = saved;
    }
    if (!config) {
        usage(stderr);
        free(sets);
        return 2;
    }
    TrainConfig cfg;
    cJSON *json = NULL;
    Error e;
    if (train_config_load(config, sets, nsets, &cfg, &json, &e)) {
        fprintf(stderr, "train: %s\n", e.msg);
        free(sets);
        train_config_free(&cfg);
        return 1;
    }
    free(sets);
    if (resume_dir && strcmp(resume_dir, cfg.run_dir) != 0) snprintf(cfg.run_dir, sizeof cfg.run_dir, "%s", resume_dir);
    signal(SIGINT, on_sigint);
    signal(SIGTERM, on_sigint);
    TrainOptions opt = {resume, &stop_requested, quiet || plan, plan};
    int rc = trainer_run(&cfg, json, &opt, &e);
    if (rc) fprintf(stderr, "train: %s\n", e.msg);
    cJSON_Delete(json);
    train_config_free(&cfg);
    return rc ? 1 : 0;
}
