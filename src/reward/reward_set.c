// Checker construction by name, the never-failing score wrapper with counters, weighted sets and
// parallel batch scoring.
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/json.h"
#include "reward/checker.h"

void reward_options_default(RewardOptions *opt) {
    opt->threads = 0;
    opt->parallel_requests = 16;
    opt->connect_timeout_s = 2.0;
    opt->timeout_s = 10.0;
    opt->retries = 2;
    opt->thinking = 0;
}

int reward_options_from_json(const cJSON *obj, RewardOptions *opt, const char *where, Error *err) {
    static const char *const keys[] = {"threads", "parallel_requests", "connect_timeout_s", "timeout_s",
                                       "retries", "thinking", NULL};
    RewardOptions o = *opt;  // opt changes only when everything is valid
    if (json_check_keys(obj, keys, where, err)) return -1;
    if (json_get_int(obj, "threads", 0, &o.threads, where, err) ||
        json_get_int(obj, "parallel_requests", 0, &o.parallel_requests, where, err) ||
        json_get_double(obj, "connect_timeout_s", 0, &o.connect_timeout_s, where, err) ||
        json_get_double(obj, "timeout_s", 0, &o.timeout_s, where, err) ||
        json_get_int(obj, "retries", 0, &o.retries, where, err) ||
        json_get_bool(obj, "thinking", 0, &o.thinking, where, err))
        return -1;
    if (o.threads < 0 || o.threads > 1024) return error_set(err, "%s.threads: must be in 0..1024", where);
    if (o.parallel_requests < 1 || o.parallel_requests > 1024)
        return error_set(err, "%s.parallel_requests: must be in 1..1024", where);
    if (!(o.connect_timeout_s > 0) || !(o.timeout_s > 0) || o.timeout_s > 86400 || o.connect_timeout_s > 86400)
        return error_set(err, "%s: timeouts must be in (0, 86400] seconds", where);
    if (o.retries < 0 || o.retries > 10) return error_set(err, "%s.retries: must be in 0..10", where);
    *opt = o;
    return 0;
}

// ---- built-in checker adapters ----

static int score_gsm8k(RewardChecker *c, const char *p, const char *comp, const char *ans, RewardResult *out) {
    reward_gsm8k(comp, ans, out);
    return REWARD_OK;
}

static int score_math(RewardChecker *c, const char *p, const char *comp, const char *ans, RewardResult *out) {
    reward_math(comp, ans, out);
    return REWARD_OK;
}

static int score_format(RewardChecker *c, const char *p, const char *comp, const char *ans, RewardResult *out) {
    reward_format(comp, c->opt.thinking, c->state != NULL, out);
    return REWARD_OK;
}

RewardChecker *reward_checker_create(const char *spec, const RewardOptions *opt, Error *err) {
    if (!spec || !*spec) {
        error_set(err, "reward: empty checker name");
        return NULL;
    }
    RewardChecker *c = calloc(1, sizeof *c);
    if (!c) {
        error_set(err, "reward: out of memory");
        return NULL;
    }
    if (opt) c->opt = *opt;
    else reward_options_default(&c->opt);
    if (strlen(spec) >= sizeof c->name) {
        error_set(err, "reward: checker name longer than %zu bytes", sizeof c->name - 1);
        free(c);
        return NULL;
    }
    strcpy(c->name, spec);
    int rc = 0;
    if (!strcmp(spec, "gsm8k")) c->score = score_gsm8k;
    else if (!strcmp(spec, "math")) c->score = score_math;
    else if (!strcmp(spec, "format")) c->score = score_format;
    else if (!strcmp(spec, "format:hash")) c->score = score_format, c->state = (void *)1;  // accept ####
    else if (!strcmp(spec, "format:think")) c->score = score_format, c->opt.thinking = 1;
    else if (!strncmp(spec, "plugin:", 7)) rc = checker_plugin_init(c, spec + 7, err);
    else if (!strncmp(spec, "http://", 7) || !strncmp(spec, "https://", 8)) rc = checker_http_init(c, spec, err);
    else if (!strncmp(spec, "cmd:", 4)) rc = checker_cmd_init(c, spec + 4, err);
    else
        rc = error_set(err,
                       "reward: unknown checker '%s' (expected gsm8k, math, format, format:hash, format:think, "
                       "plugin:PATH.so, http://URL or cmd:COMMAND)",
                       spec);
    if (rc) {
        free(c);
        return NULL;
    }
    c->cheap = c->score == score_gsm8k || c->score == score_math || c->score == score_format;
    return c;
}

void reward_checker_free(RewardChecker *c) {
    if (!c) return;
    if (c->destroy) c->destroy(c);
    free(c);
}

const char *reward_checker_name(const RewardChecker *c) { return c->name; }

// Scores one item without touching the shared counters; returns the status.
static int score_one(RewardChecker *c, const char *prompt, const char *completion, const char *answer,
                     RewardResult *out) {
    out->score = 0;
    out->status = REWARD_OK;
    out->pred[0] = 0;
    out->reason[0] = 0;
    int st = c->score(c, prompt ? prompt : "", completion ? completion : "", answer ? answer : "", out);
    out->pred[sizeof out->pred - 1] = 0;
    out->reason[sizeof out->reason - 1] = 0;
    if (st == REWARD_OK && !isfinite(out->score)) {
        st = REWARD_FAILED;
        snprintf(out->reason, sizeof out->reason, "checker returned a non-finite score");
    }
    out->status = st;
    if (st != REWARD_OK) out->score = 0;
    return st;
}

static void count(RewardChecker *c, long calls, long failures, long timeouts) {
    __atomic_add_fetch(&c->calls, calls, __ATOMIC_RELAXED);
    if (failures) __atomic_add_fetch(&c->failures, failures, __ATOMIC_RELAXED);
    if (timeouts) __atomic_add_fetch(&c->timeouts, timeouts, __ATOMIC_RELAXED);
}

void reward_checker_score(RewardChecker *c, const char *prompt, const char *completion, const char *answer,
                          RewardResult *out) {
    int st = score_one(c, prompt, completion, answer, out);
    count(c, 1, st == REWARD_FAILED, st == REWARD_TIMEOUT);
}

void reward_checker_counts(const RewardChecker *c, RewardCounts *out) {
    out->calls = __atomic_load_n(&c->calls, __ATOMIC_RELAXED);
    out->failures = __atomic_load_n(&c->failures, __ATOMIC_RELAXED);
    out->timeouts = __atomic_load_n(&c->timeouts, __ATOMIC_RELAXED);
}

// ---- weighted sets ----

#define MAX_CHECKERS 16

struct RewardSet {
    RewardOptions opt;
    int n;
    RewardChecker *checkers[MAX_CHECKERS];
    double weights[MAX_CHECKERS];
};

RewardSet *reward_set_create(const RewardOptions *opt, Error *err) {
    RewardSet *s = calloc(1, sizeof *s);
    if (!s) {
        error_set(err, "reward: out of memory");
        return NULL;
    }
    if (opt) s->opt = *opt;
    else reward_options_default(&s->opt);
    return s;
}

int reward_set_add(RewardSet *set, const char *spec, double weight, Error *err) {
    if (set->n >= MAX_CHECKERS) return error_set(err, "reward: more than %d checkers", MAX_CHECKERS);
    if (!isfinite(weight)) return error_set(err, "reward: weight of '%s' must be a finite number", spec);
    for (int k = 0; k < set->n; k++)
        if (!strcmp(set->checkers[k]->name, spec)) return error_set(err, "reward: checker '%s' given twice", spec);
    RewardChecker *c = reward_checker_create(spec, &set->opt, err);
    if (!c) return -1;
    set->checkers[set->n] = c;
    set->weights[set->n] = weight;
    set->n++;
    return 0;
}

RewardSet *reward_set_from_json(const cJSON *weights, const RewardOptions *opt, const char *where, Error *err) {
    if (!cJSON_IsObject(weights)) {
        error_set(err, "%s: expected an object of checker weights like {\"math\": 1.0, \"format\": 0.1}", where);
        return NULL;
    }
    if (!weights->child) {
        error_set(err, "%s: no checkers given", where);
        return NULL;
    }
    RewardSet *s = reward_set_create(opt, err);
    if (!s) return NULL;
    for (const cJSON *it = weights->child; it; it = it->next) {
        if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble)) {
            error_set(err, "%s.%s: weight must be a finite number", where, it->string);
            reward_set_free(s);
            return NULL;
        }
        if (reward_set_add(s, it->string, it->valuedouble, err)) {
            error_prefix(err, "%s", where);
            reward_set_free(s);
            return NULL;
        }
    }
    return s;
}

void reward_set_free(RewardSet *set) {
    if (!set) return;
    for (int k = 0; k < set->n; k++) reward_checker_free(set->checkers[k]);
    free(set);
}

int reward_set_size(const RewardSet *set) { return set->n; }
const char *reward_set_name(const RewardSet *set, int k) { return set->checkers[k]->name; }
double reward_set_weight(const RewardSet *set, int k) { return set->weights[k]; }
void reward_set_counts(const RewardSet *set, int k, RewardCounts *out) { reward_checker_counts(set->checkers[k], out); }

void reward_set_reset_counts(RewardSet *set) {
    for (int k = 0; k < set->n; k++) {
        RewardChecker *c = set->checkers[k];
        __atomic_store_n(&c->calls, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&c->failures, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&c->timeouts, 0, __ATOMIC_RELAXED);
    }
}

// ---- parallel batch ----

#define CHEAP_ITEMS_PER_THREAD 256

typedef struct {
    RewardChecker *c;
    int n, k, stride;
    const char *const *prompts, *const *completions, *const *answers;
    RewardResult *results;
    int next;   // next item index, taken atomically
    int chunk;  // items taken at a time (cheap checkers: many, so threads do not fight over `next`)
} BatchJob;

static void *batch_worker(void *arg) {
    BatchJob *j = arg;
    long calls = 0, failures = 0, timeouts = 0;  // added to the checker's counters once, at the end
    for (;;) {
        int i0 = __atomic_fetch_add(&j->next, j->chunk, __ATOMIC_RELAXED);
        if (i0 >= j->n) break;
        int i1 = i0 + j->chunk < j->n ? i0 + j->chunk : j->n;
        for (int i = i0; i < i1; i++) {
            int st = score_one(j->c, j->prompts ? j->prompts[i] : NULL, j->completions[i],
                               j->answers ? j->answers[i] : NULL, &j->results[(size_t)i * j->stride + j->k]);
            calls++;
            failures += st == REWARD_FAILED;
            timeouts += st == REWARD_TIMEOUT;
        }
    }
    count(j->c, calls, failures, timeouts);
    return NULL;
}

static int online_cpus(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 256 ? 256 : (int)n;
}

// Runs job over its items with up to `threads` threads (the caller's thread is one of them).
static int run_job(BatchJob *j, int threads, Error *err) {
    if (threads > j->n) threads = j->n;
    if (threads <= 1) {
        batch_worker(j);
        return 0;
    }
    pthread_t *tid = malloc(sizeof *tid * (size_t)threads);
    if (!tid) return error_set(err, "reward: out of memory");
    int started = 0;
    for (int t = 0; t < threads - 1; t++) {
        if (pthread_create(&tid[t], NULL, batch_worker, j) != 0) break;
        started++;
    }
    batch_worker(j);  // with zero started threads this still scores everything
    for (int t = 0; t < started; t++) pthread_join(tid[t], NULL);
    free(tid);
    return 0;
}

int reward_set_score_batch(RewardSet *set, int n, const char *const *prompts, const char *const *completions,
                           const char *const *answers, double *total, RewardResult *results, Error *err) {
    if (n < 0 || (n > 0 && !completions)) return error_set(err, "reward: bad batch arguments");
    if (n == 0) return 0;
    if (set->n == 0) return error_set(err, "reward: no checkers configured");
    RewardResult *res = results;
    if (!res) {
        res = malloc(sizeof *res * (size_t)n * set->n);
        if (!res) return error_set(err, "reward: out of memory for %d results", n);
    }
    int rc = 0;
    for (int k = 0; k < set->n && rc == 0; k++) {
        RewardChecker *c = set->checkers[k];
        BatchJob j = {c, n, k, set->n, prompts, completions, answers, res, 0, c->cheap ? 32 : 1};
        int threads = c->io_bound ? set->opt.parallel_requests : (set->opt.threads ? set->opt.threads : online_cpus());
        // Built-in checkers take about a microsecond an item; starting a thread costs tens of
        // microseconds, so each thread gets at least CHEAP_ITEMS_PER_THREAD items.
        if (c->cheap && threads > n / CHEAP_ITEMS_PER_THREAD) threads = n / CHEAP_ITEMS_PER_THREAD;
        rc = run_job(&j, threads, err);
    }
    if (rc == 0 && total) {
        for (int i = 0; i < n; i++) {
            double t = 0;
            for (int k = 0; k < set->n; k++) t += set->weights[k] * res[(size_t)i * set->n + k].score;
            total[i] = t;
        }
    }
    if (!results) free(res);
    return rc;
}
