// pionrl: RL post-training (RLVR) of Qwen-style models with the Pion optimizer family.
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"

#define PIONRL_VERSION "0.1.0"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} Command;

static const Command COMMANDS[] = {
    // One line per command, kept in the order `pionrl --help` shows them.
    {"train", cmd_train, "RLVR training: GRPO/GMPO with AdamW, Muon or Pion (CONFIG.json [--set k=v] [--resume])"},
    {"compare", cmd_compare, "run one config per optimizer (adamw,muon,pion) and write the comparison report"},
    {"eval", cmd_eval, "greedy pass@1 / sampled mean@k of a checkpoint on gsm8k, math or a JSONL file"},
    {"sft", cmd_sft, "supervised fine-tuning on worked solutions; builds the demo base model (CONFIG.json)"},
    {"synth", cmd_synth, "print synthetic arithmetic word problems (the demo task) as JSONL or text"},
    {"generate", cmd_generate, "sample completions from a checkpoint (--model DIR --prompt TEXT | --prompts F.jsonl)"},
    {"download", cmd_download, "fetch a model from the Hugging Face Hub, or gsm8k/math/math500 as JSONL"},
    {"spectrum", cmd_spectrum, "measure the singular-value map f(sigma) of Muon / Pion (--optimizer, --kp, --svg)"},
    {"inspect", cmd_inspect, "describe a checkpoint: architecture, sizes, dtypes, memory (--model DIR)"},
    {"report", cmd_report, "compare runs: one HTML page of metric charts with collapse flags (RUN_DIR...)"},
    {"tokenize", cmd_tokenize, "text <-> token ids with a model's tokenizer (--tokenizer DIR --text T | --jsonl F)"},
    {"reward", cmd_reward, "score completions with answer checkers: math, gsm8k, format, plug-ins (--checker --jsonl)"},
    {NULL, NULL, NULL},
};

static void usage(FILE *f) {
    fprintf(f,
            "pionrl %s: reinforcement learning with verifiable rewards for Qwen2/Qwen3 models\n\n"
            "usage: pionrl <command> [options]   (pionrl <command> --help for a command's options)\n\n"
            "commands:\n",
            PIONRL_VERSION);
    for (size_t i = 0; COMMANDS[i].name; i++)
        fprintf(f, "  %-10s %s\n", COMMANDS[i].name, COMMANDS[i].summary);
    fprintf(f, "\nDocumentation: README.md and docs/ in the source tree.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("pionrl %s\n", PIONRL_VERSION);
        return 0;
    }
    for (size_t i = 0; COMMANDS[i].name; i++)
        if (!strcmp(argv[1], COMMANDS[i].name)) return COMMANDS[i].run(argc - 1, argv + 1);
    fprintf(stderr, "pionrl: unknown command '%s' (see pionrl --help)\n", argv[1]);
    return 2;
}
