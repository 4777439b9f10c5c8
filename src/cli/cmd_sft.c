// pionrl sft: supervised fine-tuning (cross-entropy on completion tokens) from a config.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "rl/sft.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: pionrl sft CONFIG.json [--set key=value ...] [--quiet]\n"
            "\n"
            "Supervised fine-tuning: mean cross-entropy on the completion tokens (the dataset's worked\n"
            "solution, e.g. GSM8K's answer text or the synthetic task's) after the prompt, AdamW by default.\n"
            "Starts from \"model\" (a checkpoint directory) or from \"init\" (a config.json object: a random\n"
            "initialisation, with \"tokenizer\" naming a directory). Writes the final checkpoint, the tokenizer\n"
            "files and sft_log.jsonl to \"out_dir\". Keys: docs/DEMO.md; example: configs/demo-sft.json.\n"
            "\n"
            "  --set a.b=value   override a config key (value parsed as JSON, else a string), repeatable\n"
            "  --quiet           no progress lines\n");
}

int cmd_sft(int argc, char **argv) {
    const char *config = NULL;
    const char **sets = calloc((size_t)argc, sizeof(char *));
    int nsets = 0, quiet = 0;
    if (!sets) return 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            free(sets);
            return 0;
        } else if (!strcmp(argv[i], "--set") && i + 1 < argc) {
            sets[nsets++] = argv[++i];
        } else if (!strcmp(argv[i], "--quiet")) {
            quiet = 1;
        } else if (argv[i][0] != '-' && !config) {
            config = argv[i];
        } else {
            fprintf(stderr, "sft: unexpected argument '%s' (see pionrl sft --help)\n", argv[i]);
            free(sets);
            return 2;
        }
    }
    if (!config) {
        usage(stderr);
        free(sets);
        return 2;
    }
    SftConfig cfg;
    Error e;
    sft_config_default(&cfg);
    int rc = sft_config_load(config, sets, nsets, &cfg, &e);
    free(sets);
    if (rc == 0) {
        SftOptions o = {quiet};
        rc = sft_run(&cfg, &o, &e);
    }
    sft_config_free(&cfg);
    if (rc) {
        fprintf(stderr, "sft: %s\n", e.msg);
        return 1;
    }
    return 0;
}
