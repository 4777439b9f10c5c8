// Reward checker throughput: checks/second of the math checker on MATH-500 completions (built from
// the reference solutions), single-threaded and through a RewardSet batch on all cores, plus the
// gsm8k checker on GSM8K test. Three MATH workloads:
//   solution  - the reference solution as the completion (answer found, usually string-equal)
//   rewritten - the boxed answer respelled (\dfrac, spaces, "x =", \sqrt3), so normalisation and
//               the numeric/symbolic rules run
//   wrong     - the boxed answer with its last digit changed: every rule runs before "not equal"
// The peer is the MATH benchmark's reference checker (Hendrycks et al., is_equiv/strip_string,
// bench/bench_reward_peer.py) on the same pairs, timed in CPython; its accuracy on the same pairs is
// reported too. Writes bench/results/reward.json. Needs ../shared/data; skips without it.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "core/fileio.h"
#include "core/timer.h"
#include "reward/reward.h"

typedef struct {
    char **comp, **ans;
    double *want;
    int n;
} Work;

static void work_add(Work *w, const char *comp, const char *ans, double want) {
    if ((w->n & 1023) == 0) {
        w->comp = realloc(w->comp, sizeof(char *) * (w->n + 1024));
        w->ans = realloc(w->ans, sizeof(char *) * (w->n + 1024));
        w->want = realloc(w->want, sizeof(double) * (w->n + 1024));
    }
    w->comp[w->n] = strdup(comp);
    w->ans[w->n] = strdup(ans);
    w->want[w->n] = want;
    w->n++;
}

// Loads JSONL rows; calls fn(row) for each.
static int each_row(const char *path, void (*fn)(cJSON *, void *), void *ctx) {
    Error err;
    char *text = file_read_all(path, NULL, &err);
    if (!text) return -1;
    for (char *line = text; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        cJSON *o = cJSON_Parse(line);
        if (o) fn(o, ctx);
        cJSON_Delete(o);
        line = nl ? nl + 1 : NULL;
    }
    free(text);
    return 0;
}

static Work solution_w, rewritten_w, wrong_w, gsm_w;

// The solution with its last \boxed{...} content replaced by `inner`.
static char *with_boxed(const char *sol, const char *ans, const char *inner) {
    const char *at = NULL;
    for (const char *p = strstr(sol, "\\boxed{"); p; p = strstr(p + 1, "\\boxed{")) at = p;
    size_t al = strlen(ans);
    if (!at || strncmp(at + 7, ans, al) != 0) return NULL;
    size_t pre = (size_t)(at + 7 - sol), il = strlen(inner);
    const char *post = at + 7 + al;
    char *out = malloc(pre + il + strlen(post) + 1);
    memcpy(out, sol, pre);
    memcpy(out + pre, inner, il);
    strcpy(out + pre + il, post);
    return out;
}

static void respell(const char *in, char *out, size_t cap) {
    size_t w = 0;
    if (!strchr(in, '=') && !strstr(in, "\\in") && cap > 8) memcpy(out, "x = ", 4), w = 4;
    for (const char *p = in; *p && w + 8 < cap;) {
        if (!strncmp(p, "\\frac", 5)) memcpy(out + w, "\\dfrac", 6), w += 6, p += 5;
        else if (!strncmp(p, "\\left", 5)) p += 5;
        else if (!strncmp(p, "\\right", 6)) p += 6;
        else if (!strncmp(p, "\\sqrt{", 6) && p[6] >= '0' && p[6] <= '9' && p[7] == '}')
            memcpy(out + w, "\\sqrt", 5), w += 5, out[w++] = p[6], p += 8;
        else if (*p == ',' && !(p > in && p[-1] >= '0' && p[-1] <= '9' && (p[1] == '\\' || (p[1] >= '0' && p[1] <= '9'))))
            memcpy(out + w, ",\\ ", 3), w += 3, p++;  // a list comma, not a thousands separator
        else out[w++] = *p++;
    }
    out[w] = 0;
}

static void math_row(cJSON *o, void *ctx) {
    const cJSON *s = cJSON_GetObjectItem(o, "solution"), *a = cJSON_GetObjectItem(o, "answer");
    if (!cJSON_IsString(s) || !cJSON_IsString(a) || !*a->valuestring) return;
    work_add(&solution_w, s->valuestring, a->valuestring, 1);
    char buf[4096];
    respell(a->valuestring, buf, sizeof buf);
    char *c = with_boxed(s->valuestring, a->valuestring, buf);
    if (c) work_add(&rewritten_w, c, a->valuestring, 1), free(c);
    strncpy(buf, a->valuestring, sizeof buf - 1);
    buf[sizeof buf - 1] = 0;
    for (size_t i = strlen(buf); i-- > 0;)
        if (buf[i] >= '0' && buf[i] <= '9' && !(i >= 2 && buf[i - 1] == '^' && buf[i - 2] == '}')) {  // not cm^2
            buf[i] = (char)('0' + (buf[i] - '0' + 1) % 10);
            c = with_boxed(s->valuestring, a->valuestring, buf);
            if (c) work_add(&wrong_w, c, a->valuestring, 0), free(c);
            break;
        }
}

static void gsm_row(cJSON *o, void *ctx) {
    const cJSON *a = cJSON_GetObjectItem(o, "answer");
    if (cJSON_IsString(a)) work_add(&gsm_w, a->valuestring, a->valuestring, 1);
}

typedef struct {
    double checks_per_s, agreement;
    int n, reps;
} Timing;

// Scores the workload repeatedly for at least `secs` with one thread.
static Timing time_single(const Work *w, int gsm, double secs) {
    Timing t = {0};
    int right = 0;
    double t0 = time_now(), el;
    long done = 0;
    do {
        for (int i = 0; i < w->n; i++) {
            RewardResult r;
            if (gsm) reward_gsm8k(w->comp[i], w->ans[i], &r);
            else reward_math(w->comp[i], w->ans[i], &r);
            if (t.reps == 0) right += r.score == w->want[i];
        }
        done += w->n;
        t.reps++;
        el = time_now() - t0;
    } while (el < secs);
    t.checks_per_s = done / el;
    t.agreement = (double)right / w->n;
    t.n = w->n;
    return t;
}

static Timing time_batch(const Work *w, int threads, double secs) {
    Timing t = {0};
    RewardOptions opt;
    reward_options_default(&opt);
    opt.threads = threads;
    Error err;
    RewardSet *set = reward_set_create(&opt, &err);
    reward_set_add(set, "math", 1.0, &err);
    double *total = malloc(sizeof(double) * w->n);
    double t0 = time_now(), el;
    long done = 0;
    do {
        reward_set_score_batch(set, w->n, NULL, (const char *const *)w->comp, (const char *const *)w->ans, total,
                               NULL, &err);
        done += w->n;
        t.reps++;
        el = time_now() - t0;
    } while (el < secs);
    t.checks_per_s = done / el;
    t.n = w->n;
    free(total);
    reward_set_free(set);
    return t;
}

static size_t mean_len(const Work *w) {
    size_t s = 0;
    for (int i = 0; i < w->n; i++) s += strlen(w->comp[i]);
    return w->n ? s / w->n : 0;
}

// Writes the (boxed prediction, answer, expected) pairs the Python peer scores.
static int write_pairs(const char *path) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    const Work *ws[3] = {&solution_w, &rewritten_w, &wrong_w};
    const char *names[3] = {"solution", "rewritten", "wrong"};
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < ws[k]->n; i++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "set", names[k]);
            cJSON_AddStringToObject(o, "completion", ws[k]->comp[i]);
            cJSON_AddStringToObject(o, "answer", ws[k]->ans[i]);
            cJSON_AddNumberToObject(o, "want", ws[k]->want[i]);
            char *s = cJSON_PrintUnformatted(o);
            fprintf(f, "%s\n", s);
            free(s);
            cJSON_Delete(o);
        }
    return fclose(f);
}

int main(void) {
    const char *math = "../shared/data/math/test500.jsonl", *gsm = "../shared/data/gsm8k/test.jsonl";
    if (access(math, R_OK) != 0) {
        printf("bench_reward: %s not present, skipped\n", math);
        return 0;
    }
    each_row(math, math_row, NULL);
    if (access(gsm, R_OK) == 0) each_row(gsm, gsm_row, NULL);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    Timing sol = time_single(&solution_w, 0, 1.0);
    Timing rew = time_single(&rewritten_w, 0, 1.0);
    Timing wro = time_single(&wrong_w, 0, 1.0);
    Timing gs = gsm_w.n ? time_single(&gsm_w, 1, 0.5) : (Timing){0};
    // The batch path on 8 copies of the solution workload (4,000 items: built-in checkers give
    // each thread at least 256).
    Work big = {0};
    for (int r = 0; r < 8; r++)
        for (int i = 0; i < solution_w.n; i++) work_add(&big, solution_w.comp[i], solution_w.ans[i], 1);
    Timing bat1 = time_batch(&big, 1, 1.0);
    Timing bat = time_batch(&big, (int)ncpu, 1.0);
    printf("math  solution   %5d items (mean %zu bytes): %9.0f checks/s single-thread, agreement %.4f\n", sol.n,
           mean_len(&solution_w), sol.checks_per_s, sol.agreement);
    printf("math  rewritten  %5d items: %9.0f checks/s single-thread, agreement %.4f\n", rew.n, rew.checks_per_s,
           rew.agreement);
    printf("math  wrong      %5d items: %9.0f checks/s single-thread, agreement %.4f\n", wro.n, wro.checks_per_s,
           wro.agreement);
    printf("gsm8k test       %5d items: %9.0f checks/s single-thread, agreement %.4f\n", gs.n, gs.checks_per_s,
           gs.agreement);
    printf("math  solution x8 batch, 1 thread: %9.0f checks/s; %ld threads: %9.0f checks/s\n", bat1.checks_per_s,
           ncpu, bat.checks_per_s);

    // Peer: the MATH reference checker in Python on the same pairs.
    cJSON *peer = NULL;
    if (dir_create("bench/tmp", NULL) == 0 && write_pairs("bench/tmp/reward_pairs.jsonl") == 0) {
        FILE *p = popen("timeout 120 python3 bench/bench_reward_peer.py bench/tmp/reward_pairs.jsonl 2>/dev/null", "r");
        if (p) {
            static char buf[1 << 16];
            size_t n = fread(buf, 1, sizeof buf - 1, p);
            buf[n] = 0;
            pclose(p);
            peer = cJSON_Parse(buf);
        }
    }
    if (peer) printf("peer (Hendrycks is_equiv, CPython): %s\n", cJSON_PrintUnformatted(peer));
    else printf("peer: python3 bench/bench_reward_peer.py did not run\n");

    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "benchmark", "reward checkers (checks/second)");
    cJSON_AddNumberToObject(root, "cpus", (double)ncpu);
    const struct {
        const char *name;
        Timing *t;
    } rows[] = {{"math_solution", &sol}, {"math_rewritten", &rew}, {"math_wrong", &wro}, {"gsm8k_test", &gs}};
    for (size_t i = 0; i < 4; i++) {
        cJSON *o = cJSON_AddObjectToObject(root, rows[i].name);
        cJSON_AddNumberToObject(o, "items", rows[i].t->n);
        cJSON_AddNumberToObject(o, "checks_per_s_single_thread", (double)(long)rows[i].t->checks_per_s);
        cJSON_AddNumberToObject(o, "agreement", rows[i].t->agreement);
    }
    cJSON_AddNumberToObject(root, "math_solution_mean_completion_bytes", (double)mean_len(&solution_w));
    cJSON *b = cJSON_AddObjectToObject(root, "math_solution_batch");
    cJSON_AddNumberToObject(b, "threads", (double)ncpu);
    cJSON_AddNumberToObject(b, "items", bat.n);
    cJSON_AddNumberToObject(b, "checks_per_s", (double)(long)bat.checks_per_s);
    cJSON_AddNumberToObject(b, "checks_per_s_1_thread", (double)(long)bat1.checks_per_s);
    cJSON_AddNumberToObject(root, "target_checks_per_s_single_thread", 20000);
    if (peer) cJSON_AddItemToObject(root, "peer_hendrycks_is_equiv_python", peer);
    char *s = cJSON_Print(root);
    Error err;
    if (dir_create("bench/results", &err) || file_write_atomic("bench/results/reward.json", s, strlen(s), &err)) {
        fprintf(stderr, "bench_reward: %s\n", err.msg);
        return 1;
    }
    printf("wrote bench/results/reward.json\n");
    free(s);
    cJSON_Delete(root);
    return 0;
}
