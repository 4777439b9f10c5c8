// One RL (GRPO) step on a ~10M-parameter Qwen3, timed phase by phase, against the same step in
// eager PyTorch (tools/bench_rl_step_torch.py) run in the same process tree (issue 6).
//
// A step mirrors src/rl/trainer.c with a synthetic task instead of a dataset and a checker:
//   generate   P prompts of PROMPT random tokens x G samples of NEW tokens (qwen_generate,
//              temperature 1, no EOS: every completion is NEW tokens long)
//   score      reward 1 when the last completion token is even (the same rule as the peer), group
//              advantages (advantage_compute: unbiased std, eps 1e-4)
//   train      micro-batches of MB sequences: qwen_forward (completion positions only, with entropy),
//              GRPO loss 'dapo' eps 0.2 with the ratio against the same forward's log-probs (TRL's
//              detach()), qwen_backward accumulating into one gradient buffer
//   optimizer  global-norm clip at 1.0, then AdamW (the peer's torch.optim.AdamW)
// After each AdamW step the same gradient also goes through a per-head Pion and a Muon optimizer
// acting on a copy of the weights, so their step times are measured on real gradients without
// changing the trained model (torch 1.13 has no Muon, so those two have no peer).
//
// One warm-up step, then STEPS timed steps, whose medians are the step's numbers; the two sides take
// turns twice (this VM drifts) and each keeps, per phase, its lower median.
// PIONRL_BENCH_NO_PEER=1 skips the PyTorch run and leaves bench/results/rl_step.json untouched.
// Writes bench/results/rl_step.json.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/fileio.h"
#include "core/rng.h"
#include "core/timer.h"
#include "optim/optim.h"
#include "policy/generate.h"
#include "policy/qwen.h"
#include "policy/qwen_train.h"
#include "rl/advantage.h"
#include "rl/loss.h"

#include "bench_qwen10m.h"

// Model: the 9.97M-parameter Qwen3 of bench_qwen10m.h. Step: P x G sequences of PROMPT + NEW tokens.
enum { P = 4, G = 8, S = P * G, PROMPT = 32, NEW = 64, T = PROMPT + NEW, MB = 8, WARMUP = 1, STEPS = 3 };
static const float TEMPERATURE = 1.0f;
static const double CLIP_EPS = 0.2, MAX_GRAD_NORM = 1.0;

enum { PH_GENERATE, PH_SCORE, PH_TRAIN, PH_OPTIM, PH_STEP, PH_PION, PH_MUON, NUM_PHASES };
static const char *const PHASE_NAMES[NUM_PHASES] = {"generate_s", "score_s",  "train_s", "optimizer_s",
                                                    "step_s",     "pion_step_s", "muon_step_s"};

typedef struct {
    QwenModel m;
    ParamInfo *table;
    int ntab;
    float *grads;
    float *shadow_pion, *shadow_muon;  // weight copies the extra optimizers act on
    Optimizer *adamw, *pion, *muon;
    QwenActs acts;
    int tokens[MB * T];
    unsigned char need[MB * (T - 1)];
    float logp_full[MB * (T - 1)], ent_full[MB * (T - 1)], w_full[MB * (T - 1)];
    float logp[S * NEW], old_logp[S * NEW], mask[S * NEW], grad[S * NEW];
    float rewards[S], adv[S];
    int prompts[P][PROMPT];
    GenSeq seqs[S];
} Bench;

static int make_optimizer(Bench *b, OptimKind kind, int per_head, Optimizer **out, Error *err) {
    OptimConfig c;
    optimizer_config_default(&c);  // lr 1e-6, wd 0.01, AdamW betas (0.9, 0.999) eps 1e-8: the peer's
    c.kind = kind;
    c.per_head = per_head;
    return optimizer_create(&c, b->table, b->ntab, b->m.num_params, out, err);
}

static int bench_init(Bench *b, Error *err) {
    QwenConfig c = bench_qwen10m_config();
    if (qwen_model_init(&b->m, &c, err)) return -1;
    qwen_model_init_random(&b->m, 1, 0.02f);
    size_t n = b->m.num_params;
    b->ntab = qwen_num_tensors(&c);
    b->table = calloc(b->ntab, sizeof(ParamInfo));
    b->grads = calloc(n, sizeof(float));
    b->shadow_pion = malloc(sizeof(float) * n);
    b->shadow_muon = malloc(sizeof(float) * n);
    if (!b->table || !b->grads || !b->shadow_pion || !b->shadow_muon) return error_set(err, "out of memory");
    qwen_param_table(&c, b->table);
    memcpy(b->shadow_pion, b->m.params, sizeof(float) * n);
    memcpy(b->shadow_muon, b->m.params, sizeof(float) * n);
    if (make_optimizer(b, OPT_ADAMW, 0, &b->adamw, err) || make_optimizer(b, OPT_PION, 1, &b->pion, err) ||
        make_optimizer(b, OPT_MUON, 0, &b->muon, err))
        return error_prefix(err, "optimizer");
    return qwen_acts_alloc(&b->acts, &c, MB, T, err);
}

static void bench_free(Bench *b) {
    gen_seqs_free(b->seqs, S);
    qwen_acts_free(&b->acts);
    if (b->adamw) optimizer_free(b->adamw);
    if (b->pion) optimizer_free(b->pion);
    if (b->muon) optimizer_free(b->muon);
    free(b->table);
    free(b->grads);
    free(b->shadow_pion);
    free(b->shadow_muon);
    qwen_model_free(&b->m);
}

static int phase_generate(Bench *b, int step, Error *err) {
    Rng rng;
    rng_seed(&rng, 1000 + (uint64_t)step);
    const int *rows[P];
    int lens[P];
    for (int p = 0; p < P; p++) {
        for (int t = 0; t < PROMPT; t++) b->prompts[p][t] = (int)rng_below(&rng, V);
        rows[p] = b->prompts[p];
        lens[p] = PROMPT;
    }
    GenerateParams gp = {0};
    gp.sampling = (SamplingParams){TEMPERATURE, 0, 1.0f, 0.0f};
    gp.max_new_tokens = NEW;
    gp.seed = 7 + (uint64_t)step;
    gen_seqs_free(b->seqs, S);
    if (qwen_generate(&b->m, rows, lens, P, G, &gp, b->seqs, err)) return -1;
    for (int s = 0; s < S; s++)
        if (b->seqs[s].n != NEW)
            return error_set(err, "sequence %d has %d tokens, expected %d (no EOS is set)", s, b->seqs[s].n, NEW);
    return 0;
}

static int phase_score(Bench *b, double *reward_mean, Error *err) {
    double sum = 0;
    for (int s = 0; s < S; s++) {
        b->rewards[s] = b->seqs[s].tokens[NEW - 1] % 2 == 0 ? 1.0f : 0.0f;
        sum += b->rewards[s];
    }
    *reward_mean = sum / S;
    AdvantageConfig ac;
    advantage_config_default(&ac);
    return advantage_compute(&ac, b->rewards, P, G, b->adv, NULL, err);
}

// Forward, loss and backward over the micro-batches; the gradient of the whole step lands in grads.
static int phase_train(Bench *b, double *loss, Error *err) {
    LossConfig lc;
    loss_config_default(&lc, LOSS_DAPO);
    lc.eps_low = lc.eps_high = CLIP_EPS;
    lc.max_completion_length = NEW;
    for (int i = 0; i < S * NEW; i++) b->mask[i] = 1.0f;
    LossNorm norm;
    loss_norm_init(&norm, NEW);
    loss_norm_add(&norm, b->mask, S, NEW);
    LossStats st;
    loss_stats_init(&st);
    memset(b->grads, 0, sizeof(float) * b->m.num_params);
    for (int s0 = 0; s0 < S; s0 += MB) {
        for (int i = 0; i < MB; i++) {
            int *row = b->tokens + i * T;
            memcpy(row, b->prompts[(s0 + i) / G], sizeof(int) * PROMPT);
            memcpy(row + PROMPT, b->seqs[s0 + i].tokens, sizeof(int) * NEW);
            for (int t = 0; t < T - 1; t++) b->need[i * (T - 1) + t] = t >= PROMPT - 1;
        }
        if (qwen_forward(&b->m, &b->acts, b->tokens, b->need, MB, T, TEMPERATURE, b->logp_full, b->ent_full, err))
            return error_prefix(err, "policy forward");
        // completion token j of row i is predicted at forward position PROMPT - 1 + j
        for (int i = 0; i < MB; i++)
            memcpy(b->logp + (s0 + i) * NEW, b->logp_full + i * (T - 1) + PROMPT - 1, sizeof(float) * NEW);
        memcpy(b->old_logp + s0 * NEW, b->logp + s0 * NEW, sizeof(float) * MB * NEW);  // ratio 1, as detach()
        LossBatch lb = {b->logp + s0 * NEW, b->old_logp + s0 * NEW, NULL, b->mask + s0 * NEW, b->adv + s0, MB, NEW};
        if (loss_compute(&lc, &norm, &lb, b->grad + s0 * NEW, &st, err)) return -1;
        memset(b->w_full, 0, sizeof b->w_full);
        for (int i = 0; i < MB; i++)
            memcpy(b->w_full + i * (T - 1) + PROMPT - 1, b->grad + (s0 + i) * NEW, sizeof(float) * NEW);
        qwen_backward(&b->m, &b->acts, b->w_full, b->grads);
    }
    *loss = st.loss;
    return 0;
}

static int phase_optimizer(Bench *b, Error *err) {
    grad_clip_global_norm(b->grads, b->m.num_params, MAX_GRAD_NORM);
    return optimizer_step(b->adamw, b->m.params, b->grads, 1.0f, err);
}

static int rl_step(Bench *b, int step, double times[NUM_PHASES], double *reward_mean, Error *err) {
    double loss, t0 = time_now();
    if (phase_generate(b, step, err)) return error_prefix(err, "generate");
    double t1 = time_now();
    if (phase_score(b, reward_mean, err)) return error_prefix(err, "score");
    double t2 = time_now();
    if (phase_train(b, &loss, err)) return error_prefix(err, "train");
    double t3 = time_now();
    if (phase_optimizer(b, err)) return error_prefix(err, "optimizer");
    double t4 = time_now();
    // the clipped gradient of this step through the matrix optimizers, on their own weight copies
    if (optimizer_step(b->pion, b->shadow_pion, b->grads, 1.0f, err)) return error_prefix(err, "pion");
    double t5 = time_now();
    if (optimizer_step(b->muon, b->shadow_muon, b->grads, 1.0f, err)) return error_prefix(err, "muon");
    double t6 = time_now();
    times[PH_GENERATE] = t1 - t0;
    times[PH_SCORE] = t2 - t1;
    times[PH_TRAIN] = t3 - t2;
    times[PH_OPTIM] = t4 - t3;
    times[PH_STEP] = t4 - t0;
    times[PH_PION] = t5 - t4;
    times[PH_MUON] = t6 - t5;
    return 0;
}

static double median3(double a, double b, double c) {
    if (a > b) {
        double t = a;
        a = b;
        b = t;
    }
    if (b > c) b = c;
    return a > b ? a : b;
}

// Median of n values (n <= STEPS); STEPS is 3, but keep it honest for other counts.
static double median(const double *x, int n) {
    if (n == 3) return median3(x[0], x[1], x[2]);
    double s[16];
    for (int i = 0; i < n; i++) s[i] = x[i];
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && s[j - 1] > s[j]; j--) {
            double t = s[j];
            s[j] = s[j - 1];
            s[j - 1] = t;
        }
    return n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

// Runs the PyTorch peer; returns its parsed JSON, or NULL (message on stdout) when unavailable.
static cJSON *run_peer(const char *threads) {
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 tools/bench_rl_step_torch.py %d %d %d %d %d %d %d %d %d %d %d %d %g %g %d %s", V, D, F,
             L, HQ, HKV, HD, P, G, PROMPT, NEW, MB, TEMPERATURE, CLIP_EPS, STEPS, threads);
    FILE *f = popen(cmd, "r");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    if (buf) n = fread(buf, 1, cap - 1, f);
    int rc = pclose(f);
    cJSON *peer = NULL;
    if (buf && rc == 0 && n > 0) {
        buf[n] = 0;
        peer = cJSON_Parse(buf);
    }
    free(buf);
    if (!peer) printf("pytorch: not available (%s)\n", cmd);
    return peer;
}

static double peer_median(const cJSON *peer, const char *key) {
    const cJSON *med = cJSON_GetObjectItemCaseSensitive(peer, "median");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(med, key);
    return cJSON_IsNumber(v) ? v->valuedouble : 0.0;
}

// One line of the summary table: pionrl, the peer ("-" when absent) and the speedup of pionrl
// (peer time / our time for seconds, our rate / peer rate for tokens/s).
static void print_row(const char *label, double ours, double theirs, int is_rate, const char *fmt) {
    char a[32], b[32] = "-", c[32] = "-";
    snprintf(a, sizeof a, fmt, ours);
    if (theirs > 0) {
        snprintf(b, sizeof b, fmt, theirs);
        snprintf(c, sizeof c, "%.2fx", is_rate ? ours / theirs : theirs / ours);
    }
    printf("%-22s %12s %12s %9s\n", label, a, b, c);
}

static void add_phase(cJSON *phases, const char *name, double ours, double theirs) {
    cJSON *row = cJSON_AddObjectToObject(phases, name);
    cJSON_AddNumberToObject(row, "pionrl_s", ours);
    if (theirs > 0) {
        cJSON_AddNumberToObject(row, "pytorch_s", theirs);
        cJSON_AddNumberToObject(row, "speedup", theirs / ours);
    }
}

int main(void) {
    static Bench b;  // large fixed buffers: not on the stack
    Error err;
    setvbuf(stdout, NULL, _IOLBF, 0);  // progress lines show up while the peer runs (make bench | tee)
    if (bench_init(&b, &err)) {
        fprintf(stderr, "bench_rl_step: %s\n", err.msg);
        bench_free(&b);
        return 1;
    }
    printf("model: %.2fM parameters (V %d, D %d, F %d, L %d, heads %d/%d x %d)\n", b.m.num_params / 1e6, V, D, F, L,
           HQ, HKV, HD);
    printf("step: %d prompts x %d samples, prompt %d + %d new tokens, micro-batch %d, %d warm-up + %d timed steps\n",
           P, G, PROMPT, NEW, MB, WARMUP, STEPS);
    // The VM drifts by up to 25% over minutes, so the sides take turns: pionrl, PyTorch (1 and 2
    // threads), pionrl, PyTorch (its faster thread count); per phase each side keeps its lower median.
    int no_peer = getenv("PIONRL_BENCH_NO_PEER") != NULL;
    double times[STEPS][NUM_PHASES], reward_sum = 0, med[NUM_PHASES], pt[NUM_PHASES] = {0};
    for (int ph = 0; ph < NUM_PHASES; ph++) med[ph] = 1e30;
    cJSON *peer = NULL;
    for (int turn = 0; turn < (no_peer ? 1 : 2); turn++) {
        double tt[STEPS][NUM_PHASES];
        for (int k = 0; k < WARMUP + STEPS; k++) {
            double t[NUM_PHASES], rm = 0;
            if (rl_step(&b, k, t, &rm, &err)) {
                fprintf(stderr, "bench_rl_step: step %d: %s\n", k, err.msg);
                bench_free(&b);
                return 1;
            }
            printf("pionrl turn %d step %d%s: generate %.3f s, score %.3f ms, train %.3f s, adamw %.4f s (pion %.4f s, "
                   "muon %.4f s), reward %.3f\n",
                   turn + 1, k, k < WARMUP ? " (warm-up)" : "", t[PH_GENERATE], 1e3 * t[PH_SCORE], t[PH_TRAIN],
                   t[PH_OPTIM], t[PH_PION], t[PH_MUON], rm);
            if (k >= WARMUP) {
                memcpy(tt[k - WARMUP], t, sizeof t);
                if (turn == 0) reward_sum += rm;
            }
        }
        if (turn == 0) memcpy(times, tt, sizeof tt);
        for (int ph = 0; ph < NUM_PHASES; ph++) {
            double col[STEPS];
            for (int k = 0; k < STEPS; k++) col[k] = tt[k][ph];
            double m = median(col, STEPS);
            if (m < med[ph]) med[ph] = m;
        }
        if (no_peer) break;
        char threads[16] = "1,2";
        const cJSON *bt = peer ? cJSON_GetObjectItemCaseSensitive(peer, "threads") : NULL;
        if (cJSON_IsNumber(bt)) snprintf(threads, sizeof threads, "%d", bt->valueint);
        cJSON *p = run_peer(threads);
        if (!p) break;
        for (int ph = 0; ph < NUM_PHASES; ph++) {
            double v = peer_median(p, PHASE_NAMES[ph]);
            if (v > 0 && (pt[ph] == 0 || v < pt[ph])) pt[ph] = v;
        }
        if (!peer) peer = p;  // the first turn's record (both thread counts) goes into the results
        else cJSON_Delete(p);
    }
    double gen_tps = (double)S * NEW / med[PH_GENERATE], train_tps = (double)S * T / med[PH_TRAIN];

    double pt_gen_tps = pt[PH_GENERATE] > 0 ? S * NEW / pt[PH_GENERATE] : 0;
    double pt_train_tps = pt[PH_TRAIN] > 0 ? S * T / pt[PH_TRAIN] : 0;

    printf("\n%-22s %12s %12s %9s\n", "best median (s)", "pionrl", "pytorch", "speedup");
    const char *labels[] = {"generate", "score", "train fwd+bwd", "optimizer (AdamW)", "step total"};
    for (int ph = PH_GENERATE; ph <= PH_STEP; ph++) print_row(labels[ph], med[ph], pt[ph], 0, "%.5f");
    print_row("pion step (per-head)", med[PH_PION], 0, 0, "%.5f");
    print_row("muon step", med[PH_MUON], 0, 0, "%.5f");
    print_row("generation tokens/s", gen_tps, pt_gen_tps, 1, "%.0f");
    print_row("training tokens/s", train_tps, pt_train_tps, 1, "%.0f");
    if (no_peer) {  // a one-sided run must not replace the committed comparison
        bench_free(&b);
        return 0;
    }

    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "benchmark", "rl_step");
    cJSON_AddStringToObject(out, "machine", "CPU, 2 cores (project machine)");
    cJSON *model = cJSON_AddObjectToObject(out, "model");
    cJSON_AddNumberToObject(model, "params", (double)b.m.num_params);
    cJSON_AddNumberToObject(model, "vocab", V);
    cJSON_AddNumberToObject(model, "hidden", D);
    cJSON_AddNumberToObject(model, "intermediate", F);
    cJSON_AddNumberToObject(model, "layers", L);
    cJSON_AddNumberToObject(model, "heads", HQ);
    cJSON_AddNumberToObject(model, "kv_heads", HKV);
    cJSON_AddNumberToObject(model, "head_dim", HD);
    cJSON *shape = cJSON_AddObjectToObject(out, "step");
    cJSON_AddNumberToObject(shape, "prompts", P);
    cJSON_AddNumberToObject(shape, "samples_per_prompt", G);
    cJSON_AddNumberToObject(shape, "prompt_tokens", PROMPT);
    cJSON_AddNumberToObject(shape, "new_tokens", NEW);
    cJSON_AddNumberToObject(shape, "micro_batch", MB);
    cJSON_AddNumberToObject(shape, "temperature", TEMPERATURE);
    cJSON_AddStringToObject(shape, "loss", "grpo dapo (token mean over the step), eps 0.2, ratio vs detached logp");
    cJSON_AddStringToObject(shape, "optimizer", "clip grad norm 1.0, AdamW lr 1e-6 betas 0.9/0.999 eps 1e-8 wd 0.01");
    cJSON_AddNumberToObject(shape, "warmup_steps", WARMUP);
    cJSON_AddNumberToObject(shape, "timed_steps", STEPS);
    cJSON_AddStringToObject(out, "statistic", "per phase, the lower of two interleaved turns' medians over the timed steps, seconds");
    cJSON *phases = cJSON_AddObjectToObject(out, "phases");
    const char *keys[] = {"generate", "score", "train", "optimizer", "step"};
    for (int ph = PH_GENERATE; ph <= PH_STEP; ph++) add_phase(phases, keys[ph], med[ph], pt[ph]);
    cJSON *extra = cJSON_AddObjectToObject(out, "matrix_optimizers");
    cJSON_AddNumberToObject(extra, "pion_per_head_s", med[PH_PION]);
    cJSON_AddNumberToObject(extra, "muon_s", med[PH_MUON]);
    cJSON_AddNumberToObject(extra, "adamw_s", med[PH_OPTIM]);
    cJSON_AddStringToObject(extra, "pytorch", "torch 1.13 has no Muon or Pion: no peer");
    cJSON *tps = cJSON_AddObjectToObject(out, "tokens_per_s");
    cJSON *gen = cJSON_AddObjectToObject(tps, "generation");
    cJSON_AddNumberToObject(gen, "pionrl", gen_tps);
    if (peer) {
        cJSON_AddNumberToObject(gen, "pytorch", pt_gen_tps);
        cJSON_AddNumberToObject(gen, "speedup", gen_tps / pt_gen_tps);
    }
    cJSON *trn = cJSON_AddObjectToObject(tps, "training");
    cJSON_AddNumberToObject(trn, "pionrl", train_tps);
    if (peer) {
        cJSON_AddNumberToObject(trn, "pytorch", pt_train_tps);
        cJSON_AddNumberToObject(trn, "speedup", train_tps / pt_train_tps);
    }
    cJSON_AddNumberToObject(out, "pionrl_reward_mean", reward_sum / STEPS);
    cJSON *pionrl_steps = cJSON_AddArrayToObject(out, "pionrl_steps");
    for (int k = 0; k < STEPS; k++) {
        cJSON *row = cJSON_CreateObject();
        for (int ph = 0; ph < NUM_PHASES; ph++) cJSON_AddNumberToObject(row, PHASE_NAMES[ph], times[k][ph]);
        cJSON_AddItemToArray(pionrl_steps, row);
    }
    if (peer) cJSON_AddItemToObject(out, "pytorch", peer);
    else cJSON_AddNullToObject(out, "pytorch");
    char *text = cJSON_Print(out);
    int rc = !text ? error_set(&err, "out of memory")
                   : dir_create("bench/results", &err) ||
                         file_write_atomic("bench/results/rl_step.json", text, strlen(text), &err);
    if (rc) fprintf(stderr, "bench_rl_step: %s\n", err.msg);
    free(text);
    cJSON_Delete(out);
    bench_free(&b);
    return rc ? 1 : 0;
}
