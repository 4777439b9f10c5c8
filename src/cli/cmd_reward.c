// pionrl reward: score completions from a JSONL file with one or more checkers, one output line
// per input line, in order.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "core/json.h"
#include "reward/reward.h"

#define BATCH 512

static void reward_usage(FILE *f) {
    fprintf(f,
            "usage: pionrl reward --checker NAME [--checker NAME ...] --jsonl IN.jsonl [options]\n"
            "       pionrl reward --weights '{\"math\": 1.0, \"format\": 0.1}' --jsonl IN.jsonl [options]\n"
            "\n"
            "Reads lines {\"completion\": ..., \"answer\": ..., \"prompt\"?: ...} (other keys, such as those\n"
            "`pionrl generate` writes, are ignored) and writes one line per input, in order:\n"
            "  {\"score\": s, \"pred\": \"...\", \"reason\": \"...\"}\n"
            "With several checkers, score is the weighted sum and \"scores\" holds each checker's score;\n"
            "pred/reason come from the first checker. A checker that failed or timed out adds\n"
            "\"status\": \"failed\"|\"timeout\" (its score is 0). A summary goes to stderr.\n"
            "\n"
            "checkers:\n"
            "  gsm8k          reference after ####; prediction = \\boxed{}, else ####, else the last number\n"
            "  math           last \\boxed{} against the reference, LaTeX-aware equivalence\n"
            "  format         a non-empty \\boxed{} answer (and one </think> with --thinking)\n"
            "  format:hash    like format, also accepting '#### answer'\n"
            "  format:think   like format with --thinking\n"
            "  plugin:PATH    shared library exporting pionrl_reward_score (src/reward/reward_plugin.h)\n"
            "  http://URL     POST {\"prompt\",\"completion\",\"answer\"}, expects {\"score\": x}\n"
            "  cmd:COMMAND    /bin/sh -c COMMAND with that JSON on stdin, {\"score\": x} on stdout\n"
            "\n"
            "options:\n"
            "  --checker NAME       a checker with weight 1 (repeatable)\n"
            "  --weights JSON       checkers and weights as in the run config's reward section\n"
            "  --jsonl FILE         input ('-' for stdin)\n"
            "  --out FILE           output (default stdout)\n"
            "  --threads N          threads for built-in and plug-in checkers (default: all CPUs)\n"
            "  --parallel N         concurrent HTTP requests / commands (default 16)\n"
            "  --timeout S          HTTP total time per attempt / command run time (default 10)\n"
            "  --connect-timeout S  HTTP connect timeout (default 2)\n"
            "  --retries N          HTTP retries after a failed attempt (default 2)\n"
            "  --thinking           format: require the completion to close </think>\n");
}

static int parse_num(const char *flag, const char *v, double lo, double hi, double *out) {
    char *end;
    double x = strtod(v, &end);
    if (!*v || *end || !(x >= lo && x <= hi)) {
        fprintf(stderr, "pionrl reward: %s expects a number in [%g, %g], got '%s'\n", flag, lo, hi, v);
        return -1;
    }
    *out = x;
    return 0;
}

typedef struct {
    char **prompts, **completions, **answers;
    int n;
} Items;

static void items_clear(Items *it) {
    for (int i = 0; i < it->n; i++) {
        free(it->prompts[i]);
        free(it->completions[i]);
        free(it->answers[i]);
    }
    it->n = 0;
}

// Reads the string field `key` (a number is accepted and printed, for numeric answers).
static char *field_text(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (cJSON_IsString(v)) return strdup(v->valuestring);
    if (cJSON_IsNumber(v)) {
        char buf[64];
        snprintf(buf, sizeof buf, "%.17g", v->valuedouble);
        return strdup(buf);
    }
    return NULL;
}

static const char *status_name(int st) { return st == REWARD_TIMEOUT ? "timeout" : "failed"; }

static int write_batch(FILE *out, RewardSet *set, Items *it, double *total, RewardResult *res, double *sum) {
    Error err = {{0}};
    if (reward_set_score_batch(set, it->n, (const char *const *)it->prompts, (const char *const *)it->completions,
                               (const char *const *)it->answers, total, res, &err)) {
        fprintf(stderr, "pionrl reward: %s\n", err.msg);
        return -1;
    }
    int k_n = reward_set_size(set);
    for (int i = 0; i < it->n; i++) {
        const RewardResult *r0 = &res[(size_t)i * k_n];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "score", total[i]);
        cJSON_AddStringToObject(o, "pred", r0->pred);
        cJSON_AddStringToObject(o, "reason", r0->reason);
        int bad = -1;
        for (int k = 0; k < k_n; k++)
            if (res[(size_t)i * k_n + k].status != REWARD_OK && bad < 0) bad = k;
        if (k_n > 1) {
            cJSON *scores = cJSON_AddObjectToObject(o, "scores");
            for (int k = 0; k < k_n; k++) cJSON_AddNumberToObject(scores, reward_set_name(set, k), res[(size_t)i * k_n + k].score);
        }
        if (bad >= 0) {
            cJSON_AddStringToObject(o, "status", status_name(res[(size_t)i * k_n + bad].status));
            if (k_n > 1) cJSON_AddStringToObject(o, "failed_checker", reward_set_name(set, bad));
            if (bad > 0) cJSON_AddStringToObject(o, "failure", res[(size_t)i * k_n + bad].reason);
        }
        char *line = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        if (!line || fprintf(out, "%s\n", line) < 0) {
            free(line);
            fprintf(stderr, "pionrl reward: cannot write output\n");
            return -1;
        }
        free(line);
        *sum += total[i];
    }
    items_clear(it);
    return 0;
}

int cmd_reward(int argc, char **argv) {
    RewardOptions opt;
    reward_options_default(&opt);
    const char *checkers[16];
    int n_checkers = 0;
    const char *weights = NULL, *in_path = NULL, *out_path = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            reward_usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--thinking")) {
            opt.thinking = 1;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "pionrl reward: unknown option or missing value: %s (see pionrl reward --help)\n", a);
            return 2;
        }
        const char *v = argv[++i];
        double x;
        if (!strcmp(a, "--checker")) {
            if (n_checkers == 16) {
                fprintf(stderr, "pionrl reward: at most 16 checkers\n");
                return 2;
            }
            checkers[n_checkers++] = v;
        } else if (!strcmp(a, "--weights")) {
            weights = v;
        } else if (!strcmp(a, "--jsonl")) {
            in_path = v;
        } else if (!strcmp(a, "--out")) {
            out_path = v;
        } else if (!strcmp(a, "--threads")) {
            if (parse_num(a, v, 0, 1024, &x)) return 2;
            opt.threads = (int)x;
        } else if (!strcmp(a, "--parallel")) {
            if (parse_num(a, v, 1, 1024, &x)) return 2;
            opt.parallel_requests = (int)x;
        } else if (!strcmp(a, "--timeout")) {
            if (parse_num(a, v, 0.001, 86400, &x)) return 2;
            opt.timeout_s = x;
        } else if (!strcmp(a, "--connect-timeout")) {
            if (parse_num(a, v, 0.001, 86400, &x)) return 2;
            opt.connect_timeout_s = x;
        } else if (!strcmp(a, "--retries")) {
            if (parse_num(a, v, 0, 10, &x)) return 2;
            opt.retries = (int)x;
        } else {
            fprintf(stderr, "pionrl reward: unknown option %s (see pionrl reward --help)\n", a);
            return 2;
        }
    }
    if (!in_path || (!n_checkers && !weights) || (n_checkers && weights)) {
        fprintf(stderr, "pionrl reward: needs --jsonl and either --checker or --weights (see pionrl reward --help)\n");
        return 2;
    }
    Error err = {{0}};
    RewardSet *set = NULL;
    if (weights) {
        cJSON *w = json_parse_text(weights, "--weights", &err);
        if (w) set = reward_set_from_json(w, &opt, "--weights", &err);
        cJSON_Delete(w);
    } else {
        set = reward_set_create(&opt, &err);
        for (int k = 0; set && k < n_checkers; k++)
            if (reward_set_add(set, checkers[k], 1.0, &err)) {
                reward_set_free(set);
                set = NULL;
            }
    }
    if (!set) {
        fprintf(stderr, "pionrl reward: %s\n", err.msg);
        return 2;
    }
    int need_answer = 0;
    for (int k = 0; k < reward_set_size(set); k++)
        if (strncmp(reward_set_name(set, k), "format", 6) != 0) need_answer = 1;

    FILE *in = !strcmp(in_path, "-") ? stdin : fopen(in_path, "r");
    if (!in) {
        fprintf(stderr, "pionrl reward: cannot open %s\n", in_path);
        reward_set_free(set);
        return 1;
    }
    FILE *out = out_path ? fopen(out_path, "w") : stdout;
    if (!out) {
        fprintf(stderr, "pionrl reward: cannot write %s\n", out_path);
        if (in != stdin) fclose(in);
        reward_set_free(set);
        return 1;
    }
    Items it = {calloc(BATCH, sizeof(char *)), calloc(BATCH, sizeof(char *)), calloc(BATCH, sizeof(char *)), 0};
    double *total = malloc(sizeof(double) * BATCH);
    RewardResult *res = malloc(sizeof(RewardResult) * BATCH * (size_t)reward_set_size(set));
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0, count = 0;
    double sum = 0;
    int rc = 0;
    if (!it.prompts || !it.completions || !it.answers || !total || !res) {
        fprintf(stderr, "pionrl reward: out of memory\n");
        rc = 1;
    }
    while (rc == 0 && (len = getline(&line, &cap, in)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (len == 0) continue;
        char where[1200];
        snprintf(where, sizeof where, "%s:%ld", in_path, lineno);
        cJSON *o = json_parse_text(line, where, &err);
        if (!o) {
            fprintf(stderr, "pionrl reward: %s\n", err.msg);
            rc = 1;
            break;
        }
        char *completion = cJSON_IsObject(o) ? field_text(o, "completion") : NULL;
        char *answer = cJSON_IsObject(o) ? field_text(o, "answer") : NULL;
        char *prompt = cJSON_IsObject(o) ? field_text(o, "prompt") : NULL;
        cJSON_Delete(o);
        if (!completion || (need_answer && !answer)) {
            fprintf(stderr, "pionrl reward: %s: needs a string \"completion\"%s\n", where,
                    need_answer ? " and an \"answer\"" : "");
            free(completion), free(answer), free(prompt);
            rc = 1;
            break;
        }
        it.prompts[it.n] = prompt;
        it.completions[it.n] = completion;
        it.answers[it.n] = answer;
        it.n++;
        count++;
        if (it.n == BATCH && write_batch(out, set, &it, total, res, &sum)) rc = 1;
    }
    if (rc == 0 && it.n > 0 && write_batch(out, set, &it, total, res, &sum)) rc = 1;
    items_clear(&it);
    free(line);
    if (in != stdin) fclose(in);
    if (out != stdout && fclose(out) != 0) {
        fprintf(stderr, "pionrl reward: cannot write %s\n", out_path);
        rc = 1;
    } else if (out == stdout) {
        fflush(stdout);
    }
    if (rc == 0) {
        fprintf(stderr, "pionrl reward: %ld items, mean score %.4f\n", count, count ? sum / count : 0.0);
        for (int k = 0; k < reward_set_size(set); k++) {
            RewardCounts c;
            reward_set_counts(set, k, &c);
            fprintf(stderr, "  %-24s weight %-6g calls %ld, failures %ld, timeouts %ld\n", reward_set_name(set, k),
                    reward_set_weight(set, k), c.calls, c.failures, c.timeouts);
        }
    }
    free(it.prompts), free(it.completions), free(it.answers), free(total), free(res);
    reward_set_free(set);
    return rc;
}
