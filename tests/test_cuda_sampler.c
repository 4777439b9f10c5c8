// Device sampling (src/policy/sampler_cuda.h) against a float64 reference of sampler_sample's rules (temperature,
// top-k, top-p on the renormalised top-k set, min-p, padded ids never drawn, the kept set walked in id order with u
// or u * mass) and against sampler_sample itself, for the same uniform numbers, over random rows: peaked, flat, and
// rows with many equal logits (ties at every cut-off). Skips in a CPU-only build and without a GPU.
// Tolerances: the device's token equals the reference's, or the reference gives it for u moved by 1e-9 (u fell on a
// boundary within summation rounding); log-probs to 1e-4; sampler_sample agrees on at least 99% of the rows (it uses
// its own exp approximation, so the rows where u lies within ~1e-7 of a boundary may differ).
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/cuda_ops.h"
#include "core/rng.h"
#include "policy/sampler.h"
#include "policy/sampler_cuda.h"
#include "test.h"
#include "test_gpu.h"

#ifdef PIONRL_CUDA
enum { V = 1000, N_VALID = 990, ROWS = 96 };

typedef struct {
    int id;
    double p;
} Cand;

static int by_p_desc(const void *a, const void *b) {
    const Cand *x = a, *y = b;
    if (x->p != y->p) return x->p > y->p ? -1 : 1;
    return x->id - y->id;
}

static int by_id(const void *a, const void *b) { return ((const Cand *)a)->id - ((const Cand *)b)->id; }

// sampler_sample's rules in float64 with a given u; *logp as sampler_sample reports it.
static int reference(const float *l, const SamplingParams *sp, double u, double *logp) {
    double temp = sp->temperature > 0 ? sp->temperature : 1.0, mx = -INFINITY, sum = 0, full = 0;
    for (int i = 0; i < V; i++) mx = fmax(mx, l[i]);
    Cand c[V];
    for (int i = 0; i < V; i++) {
        double e = exp((l[i] - mx) / temp);
        full += e;
        if (i < N_VALID) sum += e, c[i] = (Cand){i, e};
    }
    for (int i = 0; i < N_VALID; i++) c[i].p /= sum;
    qsort(c, N_VALID, sizeof(Cand), by_p_desc);
    int k = N_VALID, tok;
    if (sp->temperature <= 0) {
        tok = c[0].id;
    } else {
        int plain = sp->top_k <= 0 && sp->top_p >= 1 && sp->min_p <= 0;
        if (sp->top_k > 0 && sp->top_k < k) k = sp->top_k;
        if (sp->top_p < 1) {
            double kept = 0, cum = 0;
            for (int i = 0; i < k; i++) kept += c[i].p;
            if (sp->top_k <= 0) kept = 1;
            for (int i = 0; i < k; i++)
                if ((cum += c[i].p) >= sp->top_p * kept) {
                    k = i + 1;
                    break;
                }
        }
        if (sp->min_p > 0) {
            int keep = 1;
            while (keep < k && c[keep].p >= sp->min_p * c[0].p) keep++;
            k = keep;
        }
        qsort(c, k, sizeof(Cand), by_id);
        double mass = 0, acc = 0, x;
        for (int i = 0; i < k; i++) mass += c[i].p;
        x = plain ? u : u * mass;
        tok = c[k - 1].id;
        for (int i = 0; i < k; i++)
            if (x < (acc += c[i].p)) {
                tok = c[i].id;
                break;
            }
    }
    *logp = (l[tok] - mx) / temp - log(full);
    return tok;
}

// Row kinds: peaked (scale 4), flat (scale 0.3), and logits on a grid of 0.5 (many exact ties).
static void make_rows(float *l, Rng *rng) {
    for (int r = 0; r < ROWS; r++)
        for (int i = 0; i < V; i++) {
            double z = rng_normal(rng);
            int kind = r % 3;
            l[(size_t)r * V + i] = kind == 0 ? (float)(4 * z) : kind == 1 ? (float)(0.3 * z) : (float)(0.5 * floor(2 * z));
        }
}

static void check_params(const SamplingParams *sp, const char *name) {
    float *l = malloc(sizeof(float) * ROWS * V), *logp = malloc(sizeof(float) * ROWS);
    double *u = malloc(sizeof(double) * ROWS);
    int *tok = malloc(sizeof(int) * ROWS);
    float *d_l = NULL, *d_logp = NULL;
    double *d_u = NULL;
    int *d_tok = NULL;
    Error err;
    Rng rng;
    rng_seed(&rng, 7);
    make_rows(l, &rng);
    Rng draws;
    rng_seed(&draws, 11);
    Rng *row_rng = malloc(sizeof(Rng) * ROWS);
    for (int r = 0; r < ROWS; r++) {
        row_rng[r] = draws;  // sampler_sample below draws the same u from a copy of this state
        u[r] = rng_uniform_double(&draws);
    }
    int ok = l && logp && u && tok && row_rng && !cuda_alloc((void **)&d_l, sizeof(float) * ROWS * V, &err) &&
             !cuda_alloc((void **)&d_logp, sizeof(float) * ROWS, &err) &&
             !cuda_alloc((void **)&d_u, sizeof(double) * ROWS, &err) &&
             !cuda_alloc((void **)&d_tok, sizeof(int) * ROWS, &err) &&
             !cuda_to_device(d_l, l, sizeof(float) * ROWS * V, &err) &&
             !cuda_to_device(d_u, u, sizeof(double) * ROWS, &err) &&
             !cuda_sample_rows(d_tok, d_logp, d_l, d_u, ROWS, V, N_VALID, sp, &err) &&
             !cuda_to_host(tok, d_tok, sizeof(int) * ROWS, &err) &&
             !cuda_to_host(logp, d_logp, sizeof(float) * ROWS, &err);
    CHECK_MSG(ok, "%s: %s", name, err.msg);
    Sampler s;
    CHECK(sampler_init(&s, V, &err) == 0);
    int unexplained = 0, cpu_same = 0;
    double worst_lp = 0;
    for (int r = 0; ok && r < ROWS; r++) {
        const float *row = l + (size_t)r * V;
        double lp, lp2;
        int want = reference(row, sp, u[r], &lp);
        if (tok[r] != want && tok[r] != reference(row, sp, u[r] - 1e-9, &lp2) &&
            tok[r] != reference(row, sp, u[r] + 1e-9, &lp2)) {
            if (unexplained++ < 3) test_fail_at(__FILE__, __LINE__, "%s row %d: device %d, reference %d (u %.9f)", name, r, tok[r], want, u[r]);
        }
        if (tok[r] == want) worst_lp = test_worse(worst_lp, fabs(logp[r] - lp));
        CHECK_MSG(tok[r] >= 0 && tok[r] < N_VALID, "%s row %d: token %d outside the valid ids", name, r, tok[r]);
        float cpu_lp;
        Rng rr = row_rng[r];
        cpu_same += sampler_sample(&s, row, V, N_VALID, sp, &rr, &cpu_lp) == tok[r];
    }
    printf("  %-22s device = reference on %d/%d rows, = sampler_sample on %d, worst log-prob diff %.1e\n", name,
           ROWS - unexplained, ROWS, cpu_same, worst_lp);
    CHECK(unexplained == 0);
    CHECK_MSG(worst_lp < 1e-4, "%s: log-prob differs by %g", name, worst_lp);
    CHECK_MSG(cpu_same >= ROWS * 99 / 100, "%s: sampler_sample agrees on %d of %d rows", name, cpu_same, ROWS);
    sampler_free(&s);
    cuda_release(d_l);
    cuda_release(d_logp);
    cuda_release(d_u);
    cuda_release(d_tok);
    free(l);
    free(logp);
    free(u);
    free(tok);
    free(row_rng);
}

#endif

static void test_filters(void) {
    if (!test_gpu_ready()) return;
#ifdef PIONRL_CUDA
    struct {
        SamplingParams sp;
        const char *name;
    } cases[] = {
        {{0.0f, 0, 1.0f, 0.0f}, "greedy"},
        {{1.0f, 0, 1.0f, 0.0f}, "T 1"},
        {{0.7f, 0, 1.0f, 0.0f}, "T 0.7"},
        {{1.0f, 50, 1.0f, 0.0f}, "top-k 50"},
        {{1.0f, 1, 1.0f, 0.0f}, "top-k 1"},
        {{1.0f, 0, 0.9f, 0.0f}, "top-p 0.9"},
        {{0.8f, 0, 0.3f, 0.0f}, "T 0.8 top-p 0.3"},
        {{1.0f, 20, 0.8f, 0.0f}, "top-k 20 top-p 0.8"},
        {{1.0f, 0, 1.0f, 0.05f}, "min-p 0.05"},
        {{1.2f, 0, 0.95f, 0.1f}, "T 1.2 top-p .95 min-p .1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_params(&cases[i].sp, cases[i].name);
#endif
}

int main(void) {
    RUN(test_filters);
    return test_summary("test_cuda_sampler");
}
