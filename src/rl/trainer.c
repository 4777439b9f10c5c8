#include "rl/trainer.h"

#include <dirent.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/blas.h"
#include "core/cuda_ops.h"
#include "core/fileio.h"
#include "core/json.h"
#include "core/timer.h"
#include "optim/diagnostics.h"
#include "optim/optim.h"
#include "optim/optim_cuda.h"
#include "policy/qwen_checkpoint.h"
#include "policy/qwen_cuda.h"
#include "policy/qwen_train.h"
#include "rl/eval.h"
#include "rl/memory_plan.h"
#include "rl/metrics.h"
#include "rl/rollout.h"

// The sequences of one rollout batch laid out for the loss: [S, max_comp] completion tokens.
typedef struct {
    int S, max_comp;
    float *mask, *adv, *old_logp, *ref_logp, *logp, *grad, *entropy;
    int have_old;  // old_logp holds the first iteration's log-probs
} TrainBatch;

typedef struct {
    const TrainConfig *cfg;
    const char *tok_dir;
    QwenModel model, ref;
    int has_ref;
    Tokenizer *tok;
    RewardSet *rewards;
    Dataset data;
    Optimizer *opt;
    ParamInfo *table;
    int ntab;
    float *grads;
    float **chunks;  // diagnostics: per-chunk gradients
    int nchunks;
    QwenActs acts;
    int acts_B, acts_T;
    QwenCuda *gpu, *gpu_ref;  // device copies of the policy / reference ("device": "cuda")
    size_t plan_bytes;        // the memory plan's total for a device run (logged beside what the device uses)
    // the device cache of rollouts and eval, kept between steps with its CUDA graphs (belongs to gpu); one cache for
    // both, so the device never holds two
    QwenCudaKV *rollout_kv;
    OptimCuda *gpu_opt;       // the optimizer on the device (NULL: on the host)
    float *grads_mb;          // one micro-batch's gradients, downloaded from the device
    int *tokens;
    unsigned char *need;
    float *logp_full, *ent_full, *w_full;
    MetricsWriter mw;
    Progress prog;
    int acc_idx;
    long step;      // optimizer steps completed
    int bad_steps;  // non-finite steps in a row
    Rollout roll;
    TrainBatch batch;
} Trainer;

static uint64_t mix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static void batch_free(TrainBatch *b) {
    free(b->mask);
    free(b->adv);
    free(b->old_logp);
    free(b->ref_logp);
    free(b->logp);
    free(b->grad);
    free(b->entropy);
    memset(b, 0, sizeof *b);
}

// Activations and the padded token buffers for micro-batches of B sequences of up to T tokens.
static int ensure_acts(Trainer *t, int B, int T, Error *err) {
    if (B <= t->acts_B && T <= t->acts_T) return 0;
    if (B < t->acts_B) B = t->acts_B;
    if (T < t->acts_T) T = t->acts_T;
    qwen_acts_free(&t->acts);
    free(t->tokens);
    free(t->need);
    free(t->logp_full);
    free(t->ent_full);
    free(t->w_full);
    t->acts_B = t->acts_T = 0;
    // on the device the activations live there (below); the host keeps only the token buffers
    if (!t->gpu && qwen_acts_alloc_ex(&t->acts, &t->model.cfg, B, T, t->cfg->gradient_checkpointing, err))
        return error_prefix(err, "training activations");
    t->acts.matmul_bf16 = t->cfg->matmul_bf16;
    size_t n = (size_t)B * T;
    t->tokens = malloc(sizeof(int) * n);
    t->need = malloc(n);
    t->logp_full = malloc(sizeof(float) * n);
    t->ent_full = malloc(sizeof(float) * n);
    t->w_full = malloc(sizeof(float) * n);
    if (!t->tokens || !t->need || !t->logp_full || !t->ent_full || !t->w_full)
        return error_set(err, "out of memory for training buffers");
    if (t->gpu) {  // the device activations follow the same capacity
        qwen_cuda_kv_free(t->rollout_kv);  // it points into the old device model
        t->rollout_kv = NULL;
        qwen_cuda_free(t->gpu);
        t->gpu = NULL;
        if (qwen_cuda_create_ex(&t->model, B, T, t->cfg->gradient_checkpointing, &t->gpu, err) ||
            qwen_cuda_set_matmul_bf16(t->gpu, t->cfg->matmul_bf16, err))
            return error_prefix(err, "device activations");
        if (t->gpu_ref) {
            qwen_cuda_free(t->gpu_ref);
            t->gpu_ref = NULL;
            if (qwen_cuda_create_forward_only(&t->ref, B, T, &t->gpu_ref, err) ||
                qwen_cuda_set_matmul_bf16(t->gpu_ref, t->cfg->matmul_bf16, err))
                return error_prefix(err, "device reference model");
        }
    }
    t->acts_B = B;
    t->acts_T = T;
    return 0;
}

// The policy (or reference) forward of one packed micro-batch, on the device or the CPU.
static int forward_mb(Trainer *t, int ref, int nb, int T, float temp, float *logp, float *ent, Error *err) {
    QwenCuda *g = ref ? t->gpu_ref : t->gpu;
    if (g) return qwen_cuda_forward(g, t->tokens, nb, T, temp, logp, ent, err);
    return qwen_forward(ref ? &t->ref : &t->model, &t->acts, t->tokens, t->need, nb, T, temp, logp, ent, err);
}

// Accumulates the micro-batch's gradient of sum(w_full * logp) into dst. On the device with dst NULL it accumulates
// into the device gradient buffer instead, which train_batch zeroes before the first micro-batch and downloads after
// the last (one copy of the gradients per step instead of one per micro-batch).
static int backward_mb(Trainer *t, float *dst, Error *err) {
    if (!t->gpu) {
        qwen_backward(&t->model, &t->acts, t->w_full, dst);
        return 0;
    }
    if (!dst) return qwen_cuda_backward(t->gpu, t->w_full, err) ? error_prefix(err, "policy backward") : 0;
    if (qwen_cuda_zero_grads(t->gpu, err) || qwen_cuda_backward(t->gpu, t->w_full, err) ||
        qwen_cuda_download_grads(t->gpu, t->grads_mb, err))
        return error_prefix(err, "policy backward");
    for (size_t i = 0; i < t->model.num_params; i++) dst[i] += t->grads_mb[i];
    return 0;
}

// Padded length of the micro-batch of sequences [s0, s0+nb).
static int micro_batch_len(const Trainer *t, int s0, int nb) {
    const Rollout *r = &t->roll;
    int T = 2;
    for (int b = 0; b < nb; b++) {
        int s = s0 + b, len = r->prompt_len[s / r->G] + r->seqs[s].n;
        if (len > T) T = len;
    }
    return T;
}

// Makes room for, then fills, the padded token matrix and the scored-position mask of sequences
// [s0, s0+nb); returns its length T, or -1.
static int pack_micro_batch(Trainer *t, int s0, int nb, Error *err) {
    Rollout *r = &t->roll;
    int T = micro_batch_len(t, s0, nb);
    if (ensure_acts(t, t->cfg->micro_batch_size, T, err)) return -1;
    for (int b = 0; b < nb; b++) {
        int s = s0 + b, p = s / r->G, pl = r->prompt_len[p], n = r->seqs[s].n;
        int *row = t->tokens + (size_t)b * T;
        memcpy(row, r->prompt_ids[p], sizeof(int) * pl);
        memcpy(row + pl, r->seqs[s].tokens, sizeof(int) * n);
        for (int i = pl + n; i < T; i++) row[i] = 0;  // right padding, never scored
        unsigned char *need = t->need + (size_t)b * (T - 1);
        for (int i = 0; i < T - 1; i++) need[i] = i >= pl - 1 && i < pl - 1 + n;
    }
    return T;
}

// Completion position j of sequence s sits at forward position (prompt_len - 1 + j).
static void gather_completion(const Trainer *t, int s0, int nb, int T, const float *full, float *out) {
    const Rollout *r = &t->roll;
    int M = t->batch.max_comp;
    for (int b = 0; b < nb; b++) {
        int s = s0 + b, pl = r->prompt_len[s / r->G];
        for (int j = 0; j < M; j++)
            out[(size_t)s * M + j] = j < r->seqs[s].n ? full[(size_t)b * (T - 1) + pl - 1 + j] : 0.0f;
    }
}

static void scatter_completion(const Trainer *t, int s0, int nb, int T, const float *comp, float *full) {
    const Rollout *r = &t->roll;
    int M = t->batch.max_comp;
    memset(full, 0, sizeof(float) * (size_t)nb * (T - 1));
    for (int b = 0; b < nb; b++) {
        int s = s0 + b, pl = r->prompt_len[s / r->G];
        for (int j = 0; j < r->seqs[s].n; j++) full[(size_t)b * (T - 1) + pl - 1 + j] = comp[(size_t)s * M + j];
    }
}

// Builds the loss layout of a new rollout: masks, advantages, and the reference log-probs.
static int prepare_batch(Trainer *t, AdvantageStats *astats, int *masked_truncated, Error *err) {
    const TrainConfig *c = t->cfg;
    Rollout *r = &t->roll;
    TrainBatch *b = &t->batch;
    batch_free(b);
    b->S = r->S;
    b->max_comp = 1;
    for (int s = 0; s < r->S; s++)
        if (r->seqs[s].n > b->max_comp) b->max_comp = r->seqs[s].n;
    size_t n = (size_t)b->S * b->max_comp;
    b->mask = calloc(n, sizeof(float));
    b->adv = calloc(b->S, sizeof(float));
    b->old_logp = calloc(n, sizeof(float));
    b->logp = calloc(n, sizeof(float));
    b->grad = calloc(n, sizeof(float));
    b->entropy = calloc(n, sizeof(float));
    b->ref_logp = t->has_ref ? calloc(n, sizeof(float)) : NULL;
    if (!b->mask || !b->adv || !b->old_logp || !b->logp || !b->grad || !b->entropy || (t->has_ref && !b->ref_logp))
        return error_set(err, "out of memory for the training batch");
    float *rewards = malloc(sizeof(float) * b->S);
    uint8_t *trunc = malloc(b->S);
    if (!rewards || !trunc) {
        free(rewards);
        free(trunc);
        return error_set(err, "out of memory");
    }
    for (int s = 0; s < b->S; s++) {
        rewards[s] = (float)r->reward[s];
        trunc[s] = r->seqs[s].finish == FINISH_LENGTH;
        for (int j = 0; j < r->seqs[s].n; j++) b->mask[(size_t)s * b->max_comp + j] = 1.0f;
    }
    int rc = advantage_compute(&c->advantage, rewards, r->P, r->G, b->adv, astats, err);
    *masked_truncated = 0;
    if (rc == 0 && c->mask_truncated)
        *masked_truncated = advantage_mask_truncated(trunc, b->S, b->max_comp, b->mask);
    free(rewards);
    free(trunc);
    if (rc) return -1;
    if (t->has_ref) {  // reference log-probs once per rollout (the reference never changes)
        int mb = c->micro_batch_size;
        for (int s0 = 0; s0 < b->S; s0 += mb) {
            int nb = b->S - s0 < mb ? b->S - s0 : mb;
            int T = pack_micro_batch(t, s0, nb, err);
            if (T < 0) return -1;
            if (forward_mb(t, 1, nb, T, c->sampling.temperature > 0 ? c->sampling.temperature : 1.0f, t->logp_full,
                           NULL, err))
                return error_prefix(err, "reference forward");
            gather_completion(t, s0, nb, T, t->logp_full, b->ref_logp);
        }
    }
    return 0;
}

typedef struct {
    LossStats loss;
    double entropy_sum, entropy_tokens;
    double train_tokens;
} StepStats;

// Forward + loss + backward over all micro-batches of the batch; gradients land in t->grads (and,
// on diagnostic steps, per chunk). The first iteration's log-probs become the stored old ones.
static int train_batch(Trainer *t, int diag, StepStats *st, Error *err) {
    const TrainConfig *c = t->cfg;
    TrainBatch *b = &t->batch;
    float temp = c->sampling.temperature > 0 ? c->sampling.temperature : 1.0f;
    LossNorm norm;
    loss_norm_init(&norm, c->max_new_tokens);
    loss_norm_add(&norm, b->mask, b->S, b->max_comp);
    loss_stats_init(&st->loss);
    memset(t->grads, 0, sizeof(float) * t->model.num_params);
    if (diag)
        for (int k = 0; k < t->nchunks; k++) memset(t->chunks[k], 0, sizeof(float) * t->model.num_params);
    int mb = c->micro_batch_size, k = 0;
    // activations sized once for the longest micro-batch: growing them inside the loop would re-create the device
    // model, and with it the gradients summed there so far
    int T_max = 0;
    for (int s0 = 0; s0 < b->S; s0 += mb) {
        int len = micro_batch_len(t, s0, b->S - s0 < mb ? b->S - s0 : mb);
        if (len > T_max) T_max = len;
    }
    if (ensure_acts(t, mb, T_max, err)) return -1;
    // on the device the gradients stay there across micro-batches, except on diagnostic steps (per-chunk sums)
    int on_device = t->gpu && !diag;
    if (on_device && qwen_cuda_zero_grads(t->gpu, err)) return error_prefix(err, "policy backward");
    for (int s0 = 0; s0 < b->S; s0 += mb, k++) {
        int nb = b->S - s0 < mb ? b->S - s0 : mb;
        int T = pack_micro_batch(t, s0, nb, err);
        if (T < 0) return -1;
        if (forward_mb(t, 0, nb, T, temp, t->logp_full, t->ent_full, err)) return error_prefix(err, "policy forward");
        gather_completion(t, s0, nb, T, t->logp_full, b->logp);
        gather_completion(t, s0, nb, T, t->ent_full, b->entropy);
        size_t off = (size_t)s0 * b->max_comp;
        if (!b->have_old)  // first pass over these rollouts: ratio 1, as TRL's detach()
            memcpy(b->old_logp + off, b->logp + off, sizeof(float) * (size_t)nb * b->max_comp);
        LossBatch lb = {b->logp + off, b->old_logp + off, t->has_ref ? b->ref_logp + off : NULL, b->mask + off,
                        b->adv + s0, nb, b->max_comp};
        if (loss_compute(&c->loss, &norm, &lb, b->grad + off, &st->loss, err)) return -1;
        scatter_completion(t, s0, nb, T, b->grad, t->w_full);
        if (backward_mb(t, diag ? t->chunks[k % t->nchunks] : on_device ? NULL : t->grads, err)) return -1;
        for (int i = 0; i < nb; i++) {
            int s = s0 + i;
            for (int j = 0; j < t->roll.seqs[s].n; j++) {
                st->entropy_sum += b->entropy[(size_t)s * b->max_comp + j];
                st->entropy_tokens += 1;
            }
            st->train_tokens += t->roll.prompt_len[s / t->roll.G] + t->roll.seqs[s].n;
        }
    }
    b->have_old = 1;
    if (on_device && qwen_cuda_download_grads(t->gpu, t->grads, err)) return error_prefix(err, "policy backward");
    if (diag)
        for (int q = 0; q < t->nchunks; q++) {
            const float *g = t->chunks[q];
            for (size_t i = 0; i < t->model.num_params; i++) t->grads[i] += g[i];
        }
    loss_stats_finish(&st->loss);
    return 0;
}

// SNR of the chunk gradients, effective rank of the gradient, and the spread of per-head norms of
// q/k projections, each averaged over matrices.
static void diagnostics(Trainer *t, int used_chunks, MetricsLine *line) {
    double snr_sum = 0, er_sum = 0, spread_sum = 0;
    int n_snr = 0, n_er = 0, n_spread = 0;
    Error e;
    for (int i = 0; i < t->ntab; i++) {
        const ParamInfo *p = &t->table[i];
        if (p->role != ROLE_MATRIX) continue;
        if (used_chunks >= 2) {
            const float *ptrs[64];
            for (int k = 0; k < used_chunks && k < 64; k++) ptrs[k] = t->chunks[k] + p->offset;
            GradSnr gs;
            if (grad_snr(ptrs, used_chunks, param_numel(p), &gs, &e) == 0 && isfinite(gs.snr)) {
                snr_sum += gs.snr;
                n_snr++;
            }
        }
        double er;
        if (effective_rank(t->grads + p->offset, p->rows, p->cols, &er, &e) == 0) {
            er_sum += er;
            n_er++;
        }
        if (p->heads == HEADS_ROWS && p->num_heads == t->model.cfg.num_heads && strstr(p->name, "q_proj")) {
            double norms[512];
            HeadSpread hs;
            if (p->num_heads <= 512 && head_norms(t->model.params + p->offset, p, norms, &e) == 0) {
                head_spread(norms, p->num_heads, &hs);
                spread_sum += hs.cv;
                n_spread++;
            }
        }
        if (p->heads == HEADS_ROWS && strstr(p->name, "k_proj")) {
            double norms[512];
            HeadSpread hs;
            if (p->num_heads <= 512 && head_norms(t->model.params + p->offset, p, norms, &e) == 0) {
                head_spread(norms, p->num_heads, &hs);
                spread_sum += hs.cv;
                n_spread++;
            }
        }
    }
    if (n_snr) metrics_set(line, "snr", snr_sum / n_snr);
    if (n_er) metrics_set(line, "erank", er_sum / n_er);
    if (n_spread) metrics_set(line, "head_norm_spread", spread_sum / n_spread);
}

// Greedy pass@1 (and sampled mean@k) on the held-out split.
static int run_eval(Trainer *t, MetricsLine *line, Error *err) {
    const TrainConfig *c = t->cfg;
    int n = t->data.num_eval < c->eval_examples ? t->data.num_eval : c->eval_examples;
    if (n <= 0) return 0;
    const char *stops[TRAIN_MAX_STOPS];
    for (int i = 0; i < c->num_stops; i++) stops[i] = c->stops[i];
    RolloutParams rp = {c->sampling, c->eval_max_new_tokens, c->chat_template, c->enable_thinking, stops,
                        c->num_stops, t->acc_idx, mix64(c->seed ^ 0xe7a1ULL), t->gpu,
                        t->gpu ? &t->rollout_kv : NULL, c->kv_bf16, c->rollout_matmul_bf16};
    const DatasetExample **ex = malloc(sizeof(*ex) * n);
    if (!ex) return error_set(err, "out of memory");
    for (int i = 0; i < n; i++) ex[i] = &t->data.eval[i];
    EvalResult r;
    int rc = eval_run(&t->model, t->tok, t->rewards, &rp, &c->sampling, c->eval_samples, ex, n, NULL, &r, err);
    free(ex);
    if (rc) return -1;
    metrics_set(line, "eval_accuracy", r.pass_at_1);
    metrics_set(line, "eval_response_length_mean", r.response_length);
    if (c->eval_samples > 0) metrics_set(line, "eval_mean_at_k", r.mean_at_k);
    metrics_set_int(line, "eval_examples", n);
    metrics_set(line, "time_eval", r.seconds);
    return 0;
}

static int checkpoint_dir(const char *run_dir, long step, char *out, size_t n) {
    int w = snprintf(out, n, "%s/checkpoints/step-%08ld", run_dir, step);
    return w < 0 || (size_t)w >= n ? -1 : 0;
}

int trainer_latest_checkpoint(const char *run_dir, char *out, size_t n, Error *err) {
    char path[4200];
    snprintf(path, sizeof path, "%s/checkpoints/latest", run_dir);
    char *name = file_read_all(path, NULL, err);
    if (!name) return error_set(err, "%s has no checkpoint (no checkpoints/latest)", run_dir);
    name[strcspn(name, "\r\n")] = 0;
    int w = snprintf(out, n, "%s/checkpoints/%s", run_dir, name);
    int bad = strchr(name, '/') != NULL || !name[0];
    free(name);
    if (bad || w < 0 || (size_t)w >= n) return error_set(err, "%s: corrupt checkpoints/latest", run_dir);
    if (!dir_exists(out)) return error_set(err, "%s: checkpoints/latest names a missing directory %s", run_dir, out);
    return 0;
}

// Keeps the newest keep_last step-* directories.
static void prune_checkpoints(const char *run_dir, int keep_last) {
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/checkpoints", run_dir);
    DIR *d = opendir(dir);
    if (!d) return;
    long steps[4096];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 4096) {
        long s;
        char tail;
        if (sscanf(e->d_name, "step-%ld%c", &s, &tail) == 1) steps[n++] = s;
    }
    closedir(d);
    for (int i = 0; i < n; i++) {
        int newer = 0;
        for (int j = 0; j < n; j++) newer += steps[j] > steps[i];
        if (newer >= keep_last) {
            char p[4300];
            Error ignore;
            checkpoint_dir(run_dir, steps[i], p, sizeof p);
            path_remove_recursive(p, &ignore);
        }
    }
}

// Writes a complete checkpoint into step-N.tmp, renames it to step-N, then points latest at it: a
// crash at any point leaves the previous checkpoint intact and named by latest.
static int save_checkpoint(Trainer *t, Error *err) {
    const char *run_dir = t->cfg->run_dir;
    char dir[4200], tmp[4300], path[4400], latest[4300], name[64];
    if (checkpoint_dir(run_dir, t->step, dir, sizeof dir)) return error_set(err, "%s: path too long", run_dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", dir);
    if (path_remove_recursive(tmp, err) || dir_create(tmp, err)) return -1;
    if (qwen_model_save(tmp, &t->model, ST_F32, err)) return error_prefix(err, "checkpoint");
    if (qwen_checkpoint_copy_aux_files(t->tok_dir, tmp, err) < 0) return error_prefix(err, "checkpoint");
    snprintf(path, sizeof path, "%s/optimizer.safetensors", tmp);
    if (t->gpu_opt && optim_cuda_download_state(t->gpu_opt, t->opt, err)) return error_prefix(err, "checkpoint");
    if (optimizer_state_save(t->opt, path, err)) return error_prefix(err, "checkpoint");
    cJSON *st = cJSON_CreateObject();
    cJSON_AddNumberToObject(st, "format", 1);
    cJSON_AddNumberToObject(st, "step", (double)t->step);
    cJSON_AddNumberToObject(st, "bad_steps", t->bad_steps);
    cJSON_AddItemToObject(st, "dataset", dataset_cursor_to_json(&t->data));
    char *text = cJSON_Print(st);
    cJSON_Delete(st);
    snprintf(path, sizeof path, "%s/trainer_state.json", tmp);
    int rc = text ? file_write_atomic(path, text, strlen(text), err) : error_set(err, "out of memory");
    free(text);
    if (rc) return -1;
    if (path_remove_recursive(dir, err)) return -1;
    if (rename(tmp, dir) != 0) return error_set(err, "%s: cannot rename checkpoint into place", dir);
    snprintf(latest, sizeof latest, "%s/checkpoints/latest", run_dir);
    snprintf(name, sizeof name, "step-%08ld\n", t->step);
    if (file_write_atomic(latest, name, strlen(name), err)) return -1;
    prune_checkpoints(run_dir, t->cfg->keep_last);
    return 0;
}

static int load_trainer_state(Trainer *t, const char *ckpt, Error *err) {
    char path[4400];
    snprintf(path, sizeof path, "%s/trainer_state.json", ckpt);
    cJSON *st = json_parse_file(path, err);
    if (!st) return -1;
    double step = -1, bad = 0;
    int rc = json_get_double(st, "step", 1, &step, path, err) || json_get_double(st, "bad_steps", 0, &bad, path, err);
    const cJSON *cur = cJSON_GetObjectItemCaseSensitive(st, "dataset");
    if (!rc && !cur) rc = error_set(err, "%s: missing 'dataset' cursor", path);
    if (!rc && dataset_cursor_from_json(&t->data, cur, err)) rc = error_prefix(err, "%s", path);
    cJSON_Delete(st);
    if (rc) return -1;
    if (step < 0 || step > t->cfg->steps)
        return error_set(err, "%s: step %.0f is outside this run's 0..%ld steps", path, step, t->cfg->steps);
    t->step = (long)step;
    t->bad_steps = (int)bad;
    snprintf(path, sizeof path, "%s/optimizer.safetensors", ckpt);
    return optimizer_state_load(t->opt, path, err) ? error_prefix(err, "resume") : 0;
}

static void trainer_free(Trainer *t) {
    rollout_free(&t->roll);
    batch_free(&t->batch);
    qwen_acts_free(&t->acts);
    qwen_cuda_kv_free(t->rollout_kv);
    qwen_cuda_free(t->gpu);
    qwen_cuda_free(t->gpu_ref);
    optim_cuda_free(t->gpu_opt);
    free(t->grads_mb);
    free(t->tokens);
    free(t->need);
    free(t->logp_full);
    free(t->ent_full);
    free(t->w_full);
    if (t->chunks)
        for (int k = 0; k < t->nchunks; k++) free(t->chunks[k]);
    free(t->chunks);
    free(t->grads);
    free(t->table);
    if (t->opt) optimizer_free(t->opt);
    if (t->rewards) reward_set_free(t->rewards);
    dataset_free(&t->data);
    if (t->tok) tokenizer_free(t->tok);
    qwen_model_free(&t->model);
    if (t->has_ref) qwen_model_free(&t->ref);
    if (t->mw.fd > 0) metrics_close(&t->mw);
}

// The longest prompt the run will see: every training and held-out prompt encoded, or, for the
// synthetic task (an endless stream), the held-out ones with a 25% margin.
static int longest_prompt(Trainer *t, int *out, Error *err) {
    const TrainConfig *c = t->cfg;
    int synthetic = t->data.eval_hashes != NULL, longest = 0;
    for (int split = synthetic ? 1 : 0; split < 2; split++) {
        const DatasetExample *ex = split ? t->data.eval : t->data.train;
        int n = split ? t->data.num_eval : t->data.num_train;
        for (int i = 0; i < n; i++) {
            int *ids, len;
            if (rollout_encode_prompt(t->tok, &ex[i], c->chat_template, c->enable_thinking, &ids, &len, err))
                return error_prefix(err, "memory plan");
            free(ids);
            if (len > longest) longest = len;
        }
    }
    *out = synthetic ? (longest * 5 + 3) / 4 : longest;
    if (*out <= 0) *out = 512;  // nothing to measure: a generous default
    return 0;
}

// The run's memory plan for model config mc (needs t->tok and t->data loaded). The optimizer's
// state is counted without allocating it.
static int memory_plan(Trainer *t, const QwenConfig *mc, TrainMemoryPlan *plan, Error *err) {
    int nt = qwen_num_tensors(mc), prompt_tokens = 0;
    ParamInfo *table = calloc(nt, sizeof(ParamInfo));
    if (!table) return error_set(err, "out of memory");
    qwen_param_table(mc, table);
    size_t opt_bytes = optimizer_state_bytes_planned(&t->cfg->optim, table, nt);
    if (!strcmp(t->cfg->device, "cuda")) opt_bytes += optim_cuda_workspace_bytes(&t->cfg->optim, table, nt);
    free(table);
    if (longest_prompt(t, &prompt_tokens, err)) return -1;
    train_memory_plan(t->cfg, mc, opt_bytes, prompt_tokens, plan);
    return 0;
}

// --plan: the memory plan from config.json alone (no weights loaded, no optimizer state
// allocated, so a model can be planned before it is downloaded), printed on stdout; returns 1.
static int plan_only(Trainer *t, const TrainConfig *c, Error *err) {
    QwenConfig mc;
    char path[1100];
    TrainMemoryPlan plan;
    snprintf(path, sizeof path, "%s/config.json", c->model);
    if (qwen_config_load(path, &mc, err)) return -1;
    if (tokenizer_load(t->tok_dir, &t->tok, err) || dataset_load(&c->dataset, &t->data, err) ||
        memory_plan(t, &mc, &plan, err))
        return -1;
    train_memory_plan_print(stdout, &plan, c->device);
    return 1;
}

// Loads everything a run needs; on resume the weights come from the latest checkpoint.
static int trainer_init(Trainer *t, const TrainConfig *c, const cJSON *cfg_json, const TrainOptions *o,
                        char *resume_ckpt, size_t rn, Error *err) {
    memset(t, 0, sizeof *t);
    t->cfg = c;
    t->mw.fd = -1;
    t->tok_dir = c->tokenizer[0] ? c->tokenizer : c->model;
    if (c->threads > 0) {
        omp_set_num_threads(c->threads);
        blas_set_threads(c->threads);
    }
    resume_ckpt[0] = 0;
    if (o->resume) {
        if (trainer_latest_checkpoint(c->run_dir, resume_ckpt, rn, err)) return error_prefix(err, "--resume");
    } else if (!o->plan_only) {  // a plan writes nothing, so an existing run is no obstacle
        char probe[4200];
        if (trainer_latest_checkpoint(c->run_dir, probe, sizeof probe, err) == 0)
            return error_set(err, "%s already holds checkpoints (latest %s): use --resume, or another run_dir",
                             c->run_dir, probe);
    }
    if (o->plan_only) return plan_only(t, c, err);
    if (qwen_model_load(resume_ckpt[0] ? resume_ckpt : c->model, &t->model, err)) return -1;
    if (c->loss.beta > 0) {
        if (qwen_model_load(c->model, &t->ref, err)) return error_prefix(err, "reference model");
        t->has_ref = 1;
    }
    if (tokenizer_load(t->tok_dir, &t->tok, err)) return -1;
    if (tokenizer_vocab_size(t->tok) > t->model.cfg.vocab_size)
        return error_set(err, "tokenizer in %s has %d ids but the model's vocab_size is %d", t->tok_dir,
                         tokenizer_vocab_size(t->tok), t->model.cfg.vocab_size);
    char where[1200];
    snprintf(where, sizeof where, "reward");
    t->rewards = reward_set_from_json(c->reward_weights, &c->reward_options, where, err);
    if (!t->rewards) return -1;
    t->acc_idx = 0;
    if (c->accuracy_checker[0]) {
        t->acc_idx = -1;
        for (int k = 0; k < reward_set_size(t->rewards); k++)
            if (!strcmp(reward_set_name(t->rewards, k), c->accuracy_checker)) t->acc_idx = k;
        if (t->acc_idx < 0)
            return error_set(err, "accuracy_checker '%s' is not one of the reward checkers", c->accuracy_checker);
    }
    if (dataset_load(&c->dataset, &t->data, err)) return -1;
    if (t->data.num_train == 0) return error_set(err, "dataset %s has no training examples", c->dataset.path);
    t->ntab = qwen_num_tensors(&t->model.cfg);
    t->table = calloc(t->ntab, sizeof(ParamInfo));
    t->grads = calloc(t->model.num_params, sizeof(float));
    if (!t->table || !t->grads) return error_set(err, "out of memory for gradients");
    qwen_param_table(&t->model.cfg, t->table);
    if (optimizer_create(&c->optim, t->table, t->ntab, t->model.num_params, &t->opt, err)) return -1;
    int cuda = !strcmp(c->device, "cuda");
    if (cuda) {
        TrainMemoryPlan plan;
        if (memory_plan(t, &t->model.cfg, &plan, err)) return -1;
        char gpu[256];
        size_t mem = 0;
        if (cuda_device_probe(gpu, sizeof gpu, &mem, err)) return error_prefix(err, "device \"cuda\"");
        t->plan_bytes = plan.total;
        if (plan.total > mem) {
            train_memory_plan_print(stderr, &plan, c->device);
            return error_set(err, "device \"cuda\": the run needs %.1f GB but %s has %.1f GB (plan above): lower "
                                  "micro_batch_size, rollout.prompts_per_step x group_size or max_new_tokens",
                             plan.total / 1073741824.0, gpu, mem / 1073741824.0);
        }
    }
    if (c->diagnostics_every > 0) {
        int mbs = (c->prompts_per_step * c->group_size + c->micro_batch_size - 1) / c->micro_batch_size;
        t->nchunks = c->snr_chunks < mbs ? c->snr_chunks : mbs;
        if (t->nchunks < 1) t->nchunks = 1;
        if (t->nchunks > 64) t->nchunks = 64;
        t->chunks = calloc(t->nchunks, sizeof(float *));
        if (!t->chunks) return error_set(err, "out of memory");
        for (int k = 0; k < t->nchunks; k++)
            if (!(t->chunks[k] = malloc(sizeof(float) * t->model.num_params)))
                return error_set(err, "out of memory for %d diagnostic gradient copies", t->nchunks);
    }
    if (cuda) {
        // the device copies start small and grow with the micro-batches (ensure_acts)
        if (qwen_cuda_create_for_decode(&t->model, &t->gpu, err) ||
            (t->has_ref && qwen_cuda_create_forward_only(&t->ref, 1, 2, &t->gpu_ref, err)))
            return error_prefix(err, "device \"cuda\"");
        if (!(t->grads_mb = malloc(sizeof(float) * t->model.num_params)))
            return error_set(err, "out of memory for gradients");
    }
    if (dir_create(c->run_dir, err)) return -1;
    if (resume_ckpt[0]) {
        if (load_trainer_state(t, resume_ckpt, err)) return -1;
        int kept = 0;
        if (metrics_truncate_after(c->run_dir, t->step, &kept, err)) return -1;
    } else if (cfg_json) {
        char path[1100], *text = cJSON_Print(cfg_json);
        snprintf(path, sizeof path, "%s/config.json", c->run_dir);
        int rc = text ? file_write_atomic(path, text, strlen(text), err) : error_set(err, "out of memory");
        free(text);
        if (rc) return -1;
    }
    if (t->gpu) {  // the optimizer follows the model to the device, with the (resumed) host state
        Error why;
        if (optim_cuda_create(t->opt, &t->gpu_opt, &why))
            fprintf(stderr, "train: the optimizer stays on the host: %s\n", why.msg);
    }
    return metrics_open(&t->mw, c->run_dir, err);
}

int trainer_run(const TrainConfig *c, const cJSON *cfg_json, const TrainOptions *o, Error *err) {
    Trainer t;
    char resume_ckpt[4200];
    int init = trainer_init(&t, c, cfg_json, o, resume_ckpt, sizeof resume_ckpt, err);
    if (init) {  // 1: the memory plan was asked for and printed
        trainer_free(&t);
        return init > 0 ? 0 : -1;
    }
    if (!o->quiet) {
        fprintf(stderr, "train: %s (%zu parameters), %d train / %d eval examples, optimizer %s, loss %s, run dir %s\n",
                c->model, t.model.num_params, t.data.num_train, t.data.num_eval, optimizer_kind_name(c->optim.kind),
                loss_type_name(c->loss.type), c->run_dir);
        if (resume_ckpt[0]) fprintf(stderr, "train: resumed from %s at step %ld\n", resume_ckpt, t.step);
    }
    progress_init(&t.prog, stderr, c->steps, t.step);
    const char *stops[TRAIN_MAX_STOPS];
    for (int i = 0; i < c->num_stops; i++) stops[i] = c->stops[i];
    int P = c->prompts_per_step, G = c->group_size, rc = 0, stopped = 0;
    AdvantageStats astats = {0};
    int masked = 0;
    double t_gen = 0, t_score = 0;
    while (t.step < c->steps) {
        double t0 = time_now();
        long it = t.step % c->num_iterations;
        if (it == 0) {  // new rollouts; the seed depends only on (run seed, rollout index)
            rollout_free(&t.roll);
            const DatasetExample **ex = malloc(sizeof(*ex) * P);
            if (!ex) {
                rc = error_set(err, "out of memory");
                break;
            }
            for (int p = 0; p < P && rc == 0; p++)
                if (!(ex[p] = dataset_next(&t.data))) rc = error_set(err, "dataset: out of memory for the next example");
            if (rc) {
                free(ex);
                break;
            }
            RolloutParams rp = {c->sampling, c->max_new_tokens, c->chat_template, c->enable_thinking, stops,
                                c->num_stops, t.acc_idx, mix64(c->seed * 1000003ULL + (uint64_t)(t.step / c->num_iterations)),
                                t.gpu, t.gpu ? &t.rollout_kv : NULL, c->kv_bf16, c->rollout_matmul_bf16};
            rc = rollout_run(&t.model, t.tok, t.rewards, &rp, ex, P, G, &t.roll, err);
            free(ex);
            if (rc) break;
            t_gen = t.roll.gen_seconds;
            t_score = t.roll.score_seconds;
            if ((rc = prepare_batch(&t, &astats, &masked, err))) break;
        }
        double t1 = time_now();
        int diag = c->diagnostics_every > 0 && (t.step + 1) % c->diagnostics_every == 0;
        StepStats st = {0};
        if ((rc = train_batch(&t, diag, &st, err))) break;
        double t2 = time_now();
        double gnorm = grad_clip_global_norm(t.grads, t.model.num_params, c->optim.max_grad_norm);
        int finite = isfinite(gnorm) && isfinite(st.loss.loss);
        float lr_scale = lr_schedule_scale(&c->optim.schedule, t.step);
        if (finite) {
            if (t.gpu_opt) {
                // clipped gradients up, the step on the device, the new weights back to the host copy
                // (checkpoints, diagnostics, and the device buffers' next re-creation read it)
                rc = qwen_cuda_upload_grads(t.gpu, t.grads, err) ||
                     optim_cuda_step(t.gpu_opt, qwen_cuda_params(t.gpu), qwen_cuda_grads(t.gpu), lr_scale, err) ||
                     qwen_cuda_download_params(t.gpu, &t.model, err);
                if (rc) break;
            } else {
                if ((rc = optimizer_step(t.opt, t.model.params, t.grads, lr_scale, err))) break;
                // the optimizer ran on the host: the device copy follows the new weights
                if (t.gpu && (rc = qwen_cuda_upload(t.gpu, &t.model, err))) break;
            }
            t.bad_steps = 0;
        } else {
            t.bad_steps++;
        }
        double t3 = time_now();
        t.step++;
        // metrics
        MetricsLine line;
        if ((rc = metrics_line_init(&line, t.step, err))) break;
        Rollout *r = &t.roll;
        double acc = 0, len_sum = 0, len_max = 0, trunc = 0;
        for (int s = 0; s < r->S; s++) {
            acc += r->correct[s];
            len_sum += r->seqs[s].n;
            if (r->seqs[s].n > len_max) len_max = r->seqs[s].n;
            trunc += r->seqs[s].finish == FINISH_LENGTH;
        }
        metrics_set_advantage_stats(&line, &astats);
        for (int k = 0; k < r->K; k++) {
            double sum = 0;
            for (int s = 0; s < r->S; s++) sum += r->results[(size_t)s * r->K + k].score;
            metrics_set_in(&line, "reward_by_checker", reward_set_name(t.rewards, k), sum / r->S);
            RewardCounts rcnt;
            reward_set_counts(t.rewards, k, &rcnt);
            if (rcnt.failures || rcnt.timeouts)
                metrics_set_in(&line, "reward_failures", reward_set_name(t.rewards, k),
                               (double)(rcnt.failures + rcnt.timeouts));
        }
        metrics_set(&line, "accuracy", acc / r->S);
        metrics_set(&line, "response_length_mean", len_sum / r->S);
        metrics_set(&line, "response_length_max", len_max);
        metrics_set(&line, "truncation_rate", trunc / r->S);
        if (c->mask_truncated) metrics_set_int(&line, "masked_truncated", masked);
        metrics_set_loss_stats(&line, &st.loss, t.has_ref, c->loss.type == LOSS_GMPO);
        metrics_set(&line, "entropy", st.entropy_tokens > 0 ? st.entropy_sum / st.entropy_tokens : NAN);
        metrics_set(&line, "grad_norm", gnorm);
        metrics_set(&line, "lr", c->optim.lr * lr_scale);
        size_t dev_used = 0;
        Error mem_err;
        if (t.gpu && cuda_memory_in_use(&dev_used, &mem_err) == 0) {  // the plan's check against what was allocated
            metrics_set(&line, "device_memory_gb", dev_used / 1073741824.0);
            metrics_set(&line, "device_memory_plan_gb", t.plan_bytes / 1073741824.0);
        }
        if (!finite) metrics_set_bool(&line, "skipped_nonfinite", 1);
        double rms_sum = 0;
        int nrms = 0;
        for (int i = 0; i < t.ntab; i++)
            if (t.table[i].role == ROLE_MATRIX) {
                double u = t.gpu_opt ? optim_cuda_update_rms(t.gpu_opt, i) : optimizer_update_rms(t.opt, i);
                metrics_set_in(&line, "update_rms_by_matrix", t.table[i].name, u);
                rms_sum += u;
                nrms++;
            }
        if (nrms) metrics_set(&line, "update_rms", rms_sum / nrms);
        if (diag) diagnostics(&t, t.nchunks, &line);
        double step_s = time_now() - t0 + (it == 0 ? 0 : 0);
        double gen_s = it == 0 ? t_gen : 0, score_s = it == 0 ? t_score : 0;
        metrics_set(&line, "tokens_per_s", (len_sum + st.train_tokens) / (step_s > 0 ? step_s : 1e-9));
        metrics_set(&line, "gen_tokens_per_s", it == 0 && gen_s > 0 ? r->gen_tokens / gen_s : NAN);
        metrics_set(&line, "train_tokens_per_s", st.train_tokens / (t2 - t1 > 0 ? t2 - t1 : 1e-9));
        metrics_set(&line, "time_generate", gen_s);
        metrics_set(&line, "time_score", score_s);
        metrics_set(&line, "time_train", t2 - t1);
        metrics_set(&line, "time_optimizer", t3 - t2);
        int at_boundary = t.step % c->num_iterations == 0;
        int do_eval = c->eval_examples > 0 && ((c->eval_every > 0 && t.step % c->eval_every == 0) || t.step == c->steps);
        if (do_eval && (rc = run_eval(&t, &line, err))) {
            metrics_line_free(&line);
            break;
        }
        metrics_set(&line, "time_step", time_now() - t0);
        rc = metrics_write(&t.mw, &line, err);
        metrics_line_free(&line);
        if (rc) break;
        if (!o->quiet) progress_update(&t.prog, t.step, astats.reward_mean, acc / r->S, (len_sum + st.train_tokens) / step_s);
        if (t.bad_steps >= c->max_bad_steps) {
            rc = error_set(err, "%d non-finite steps in a row (loss or gradient NaN/Inf) at step %ld; the last good "
                                "checkpoint is kept in %s/checkpoints",
                           t.bad_steps, t.step, c->run_dir);
            break;
        }
        stopped = o->stop && *o->stop;
        int do_save = at_boundary && ((c->save_every > 0 && t.step % c->save_every == 0) || t.step == c->steps || stopped);
        if (do_save && (rc = save_checkpoint(&t, err))) break;
        if (stopped && at_boundary) break;
    }
    if (!o->quiet) progress_finish(&t.prog);
    if (rc == 0 && !o->quiet) {
        if (stopped) fprintf(stderr, "train: stopped at step %ld; checkpoint saved, continue with --resume\n", t.step);
        else fprintf(stderr, "train: done, %ld steps; checkpoint in %s/checkpoints\n", t.step, c->run_dir);
    }
    trainer_free(&t);
    return rc;
}
