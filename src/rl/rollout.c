#include "rl/rollout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/timer.h"
#include "policy/stop_strings.h"

int rollout_encode_prompt(const Tokenizer *tok, const DatasetExample *ex, int chat_template, int enable_thinking,
                          int **ids, int *n, Error *err) {
    char *text = NULL;
    if (chat_template) {
        ChatMessage msgs[2];
        int nm = 0;
        if (ex->system) msgs[nm++] = (ChatMessage){"system", ex->system};
        msgs[nm++] = (ChatMessage){"user", ex->user};
        if (chat_template_render(tok, msgs, nm, 1, enable_thinking, &text, err)) return -1;
    } else {
        size_t len = strlen(ex->user) + (ex->system ? strlen(ex->system) + 2 : 0) + 1;
        text = malloc(len);
        if (!text) return error_set(err, "out of memory");
        snprintf(text, len, "%s%s%s", ex->system ? ex->system : "", ex->system ? "\n\n" : "", ex->user);
    }
    int rc = tokenizer_encode(tok, text, strlen(text), ids, n, err);
    free(text);
    if (rc == 0 && *n == 0) {
        free(*ids);
        return error_set(err, "prompt of example at line %d encodes to no tokens", ex->line);
    }
    return rc;
}

void rollout_free(Rollout *r) {
    if (r->seqs) gen_seqs_free(r->seqs, r->S);
    if (r->prompt_ids)
        for (int p = 0; p < r->P; p++) free(r->prompt_ids[p]);
    if (r->completions)
        for (int i = 0; i < r->S; i++) free(r->completions[i]);
    free(r->prompt_ids);
    free(r->prompt_len);
    free(r->seqs);
    free(r->completions);
    free(r->reward);
    free(r->results);
    free(r->correct);
    memset(r, 0, sizeof *r);
}

int rollout_run(const QwenModel *m, const Tokenizer *tok, RewardSet *rewards, const RolloutParams *rp,
                const DatasetExample *const *examples, int P, int G, Rollout *out, Error *err) {
    memset(out, 0, sizeof *out);
    out->P = P;
    out->G = G;
    out->S = P * G;
    out->K = reward_set_size(rewards);
    out->examples = (const DatasetExample **)examples;
    int S = out->S;
    out->prompt_ids = calloc(P, sizeof(int *));
    out->prompt_len = calloc(P, sizeof(int));
    out->seqs = calloc(S, sizeof(GenSeq));
    out->completions = calloc(S, sizeof(char *));
    out->reward = calloc(S, sizeof(double));
    out->results = calloc((size_t)S * (out->K ? out->K : 1), sizeof(RewardResult));
    out->correct = calloc(S, 1);
    const char **prompts = calloc(S, sizeof(char *)), **answers = calloc(S, sizeof(char *));
    if (!out->prompt_ids || !out->prompt_len || !out->seqs || !out->completions || !out->reward || !out->results ||
        !out->correct || !prompts || !answers) {
        free(prompts);
        free(answers);
        rollout_free(out);
        return error_set(err, "rollout: out of memory");
    }
    for (int p = 0; p < P; p++)
        if (rollout_encode_prompt(tok, examples[p], rp->chat_template, rp->enable_thinking, &out->prompt_ids[p],
                                  &out->prompt_len[p], err))
            goto fail;
    StopStrings stop = {tok, {0}, 0};
    for (int i = 0; i < rp->num_stops && i < STOP_STRINGS_MAX; i++) stop.stops[stop.num_stops++] = rp->stops[i];
    GenerateParams gp = {0};
    gp.sampling = rp->sampling;
    gp.max_new_tokens = rp->max_new_tokens;
    gp.num_eos = tokenizer_eos_ids(tok, &gp.eos_ids);
    gp.n_valid = tokenizer_vocab_size(tok);
    gp.seed = rp->seed;
    gp.cuda = rp->cuda;
    gp.cuda_keep = rp->cuda_keep;
    gp.kv_bf16 = rp->kv_bf16;
    gp.matmul_bf16 = rp->matmul_bf16;
    if (stop.num_stops) {
        gp.stop_fn = stop_strings_check;
        gp.stop_ctx = &stop;
    }
    double t0 = time_now();
    if (qwen_generate(m, (const int *const *)out->prompt_ids, out->prompt_len, P, G, &gp, out->seqs, err)) {
        error_prefix(err, "rollout");
        goto fail;
    }
    out->gen_seconds = time_now() - t0;
    for (int i = 0; i < S; i++) {
        out->gen_tokens += out->seqs[i].n;
        if (tokenizer_decode(tok, out->seqs[i].tokens, out->seqs[i].n, 1, &out->completions[i], err)) goto fail;
        prompts[i] = examples[i / G]->user;
        answers[i] = examples[i / G]->answer;
    }
    t0 = time_now();
    if (reward_set_score_batch(rewards, S, prompts, (const char *const *)out->completions, answers, out->reward,
                               out->results, err))
        goto fail;
    out->score_seconds = time_now() - t0;
    for (int i = 0; i < S; i++) {
        const RewardResult *r = &out->results[(size_t)i * out->K + rp->accuracy_checker];
        out->correct[i] = r->status == REWARD_OK && r->score >= 1.0 - 1e-9;
    }
    free(prompts);
    free(answers);
    return 0;
fail:
    free(prompts);
    free(answers);
    rollout_free(out);
    return -1;
}
