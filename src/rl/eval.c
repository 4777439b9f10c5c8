#include "rl/eval.h"

#include <math.h>
#include <stdlib.h>

#include "core/timer.h"

// Prompts per generation call: bounds the KV cache while keeping decode batches large.
#define EVAL_CHUNK 64

static void write_record(FILE *f, int index, const DatasetExample *ex, const Rollout *r, int s) {
    const RewardResult *res = &r->results[(size_t)s * r->K];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "index", index);
    cJSON_AddStringToObject(o, "prompt", ex->user);
    cJSON_AddStringToObject(o, "answer", ex->answer);
    cJSON_AddStringToObject(o, "completion", r->completions[s]);
    cJSON_AddStringToObject(o, "pred", res->pred);
    cJSON_AddNumberToObject(o, "score", r->reward[s]);
    cJSON_AddBoolToObject(o, "correct", r->correct[s]);
    char *line = cJSON_PrintUnformatted(o);
    if (line) fprintf(f, "%s\n", line);
    free(line);
    cJSON_Delete(o);
}

int eval_run(const QwenModel *m, const Tokenizer *tok, RewardSet *rewards, const RolloutParams *greedy,
             const SamplingParams *sampling, int k, const DatasetExample *const *ex, int n, FILE *per_example,
             EvalResult *out, Error *err) {
    double t0 = time_now();
    out->n = n;
    out->mean_at_k = NAN;
    double correct = 0, sampled = 0, tokens = 0, reward = 0;
    RolloutParams gp = *greedy;
    gp.sampling = (SamplingParams){0.0f, 0, 1.0f, 0.0f};
    for (int i0 = 0; i0 < n; i0 += EVAL_CHUNK) {
        int c = n - i0 < EVAL_CHUNK ? n - i0 : EVAL_CHUNK;
        Rollout r;
        if (rollout_run(m, tok, rewards, &gp, ex + i0, c, 1, &r, err)) return error_prefix(err, "eval");
        for (int s = 0; s < r.S; s++) {
            correct += r.correct[s];
            tokens += r.seqs[s].n;
            reward += r.reward[s];
            if (per_example) write_record(per_example, i0 + s, ex[i0 + s], &r, s);
        }
        rollout_free(&r);
        if (k > 0) {
            RolloutParams sp = *greedy;
            sp.sampling = *sampling;
            if (rollout_run(m, tok, rewards, &sp, ex + i0, c, k, &r, err)) return error_prefix(err, "eval");
            for (int s = 0; s < r.S; s++) sampled += r.correct[s];
            rollout_free(&r);
        }
    }
    if (n > 0) {
        out->pass_at_1 = correct / n;
        out->response_length = tokens / n;
        out->reward_mean = reward / n;
        if (k > 0) out->mean_at_k = sampled / ((double)n * k);
    }
    out->seconds = time_now() - t0;
    return 0;
}
