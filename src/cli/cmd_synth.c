// pionrl synth: print synthetic arithmetic word problems (rl/synth.h) as JSONL or plain text.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "core/json.h"
#include "rl/synth.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: pionrl synth [--count N] [--seed S] [--start I] [--min-ops A] [--max-ops B]\n"
            "                    [--max-operand M] [--no-sub] [--text]\n"
            "\n"
            "Prints N synthetic arithmetic word problems (the demo task) as JSONL lines\n"
            "{\"question\", \"answer\": \"<worked solution> #### <n>\"}, usable as a dataset \"path\" with\n"
            "\"answer_extract\": \"gsm8k\"; --text prints question and solution as plain lines (tokenizer corpus).\n"
            "Examples are a function of (seed, index): --start I begins at index I. Defaults: 10 problems,\n"
            "seed 0, 1-2 operations, operands up to 20, subtraction on.\n");
}

static int int_arg(const char *s, long lo, long hi, long *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == 0 || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

int cmd_synth(int argc, char **argv) {
    SynthConfig c;
    synth_config_default(&c);
    long count = 10, seed = 0, start = 0, v = 0;
    int text = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *next = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--text")) {
            text = 1;
        } else if (!strcmp(a, "--no-sub")) {
            c.allow_sub = 0;
        } else if (next && !strcmp(a, "--count")) {
            bad = int_arg(next, 0, 100000000, &count), i++;
        } else if (next && !strcmp(a, "--seed")) {
            bad = int_arg(next, 0, 1L << 53, &seed), i++;
        } else if (next && !strcmp(a, "--start")) {
            bad = int_arg(next, 0, 1L << 53, &start), i++;
        } else if (next && !strcmp(a, "--min-ops")) {
            bad = int_arg(next, 1, SYNTH_MAX_OPS, &v), c.min_ops = (int)v, i++;
        } else if (next && !strcmp(a, "--max-ops")) {
            bad = int_arg(next, 1, SYNTH_MAX_OPS, &v), c.max_ops = (int)v, i++;
        } else if (next && !strcmp(a, "--max-operand")) {
            bad = int_arg(next, 2, 100000, &v), c.max_operand = (int)v, i++;
        } else {
            fprintf(stderr, "synth: unexpected argument '%s' (see pionrl synth --help)\n", a);
            return 2;
        }
        if (bad) {
            fprintf(stderr, "synth: bad value '%s' for %s\n", next, a);
            return 2;
        }
    }
    Error e;
    if (synth_config_validate(&c, "synth", &e)) {
        fprintf(stderr, "synth: %s\n", e.msg);
        return 2;
    }
    for (long i = 0; i < count; i++) {
        SynthExample s;
        synth_example(&c, (uint64_t)seed, (uint64_t)(start + i), &s);
        if (text) {
            printf("%s\n%s\n", s.question, s.solution);
        } else {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "question", s.question);
            cJSON_AddStringToObject(o, "answer", s.solution);
            char *line = cJSON_PrintUnformatted(o);
            if (line) printf("%s\n", line);
            free(line);
            cJSON_Delete(o);
        }
    }
    return fflush(stdout) == 0 ? 0 : 1;
}
