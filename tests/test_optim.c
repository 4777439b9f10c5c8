// Optimizer tests: Newton-Schulz maps against their closed-form polynomials, Muon orthogonality,
// per-head == separate blocks, spectrum-preserving Pion keeps singular values, schedules, clipping,
// state save/load, diagnostics, and bad configs / tables.
#include <stdint.h>
#include <string.h>

#include "core/json.h"
#include "core/rng.h"
#include "optim/diagnostics.h"
#include "optim/optim.h"
#include "optim/optim_cuda.h"
#include "optim/spectrum.h"
#include "policy/qwen.h"
#include "test.h"

static void fill_normal(float *x, size_t n, uint64_t seed, float scale) {
    Rng r;
    rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) x[i] = (float)rng_normal(&r) * scale;
}

// --- Newton-Schulz ---------------------------------------------------------------------------

static double map_error(const NsSchedule *s, int rows, int cols, int normalize, double *offdiag) {
    int n = rows < cols ? rows : cols;
    double sigma[64] = {0};
    for (int i = 0; i < n; i++) sigma[i] = 0.02 + 0.98 * i / (n - 1);  // grid on [0.02, 1]
    SpectrumResult r;
    Error err;
    if (spectrum_measure(s, sigma, rows, cols, normalize, 42, &r, &err)) return 1e9;
    double worst = 0.0;
    for (int i = 0; i < n; i++) worst = test_worse(worst, fabs(r.sigma_out[i] - r.expected[i]));
    *offdiag = r.max_offdiag;
    spectrum_result_free(&r);
    return worst;
}

static void test_ns_maps_match_polynomials(void) {
    NsSchedule s;
    double off = 0;
    ns_schedule_muon(&s);
    double e = map_error(&s, 48, 64, 0, &off);
    CHECK_MSG(e <= 1e-3 && off <= 1e-3, "muon map error %g offdiag %g", e, off);
    e = map_error(&s, 64, 40, 0, &off);  // tall: the transposed path
    CHECK_MSG(e <= 1e-3 && off <= 1e-3, "muon tall map error %g offdiag %g", e, off);
    for (int kp = 0; kp <= 5; kp++) {
        Error err;
        CHECK(ns_schedule_pion(kp, &s, &err) == 0);
        CHECK(s.steps == 5);
        e = map_error(&s, 48, 64, 0, &off);
        CHECK_MSG(e <= 1e-3 && off <= 1e-3, "pion kp %d map error %g offdiag %g", kp, e, off);
    }
}

static void test_ns_normalized_map(void) {
    // With Frobenius normalisation the map acts on sigma / ||sigma||.
    NsSchedule s;
    Error err;
    CHECK(ns_schedule_pion(0, &s, &err) == 0);
    double off = 0, e = map_error(&s, 32, 48, 1, &off);
    CHECK_MSG(e <= 1e-3, "normalised pion map error %g", e);
}

static void test_ns_polynomial_values(void) {
    NsSchedule s;
    Error err;
    // Both step kinds fix 1 (a + b + c = 1); suppression crushes small values, promotion lifts them.
    CHECK(ns_schedule_pion(0, &s, &err) == 0);
    CHECK_NEAR(ns_schedule_eval(&s, 1.0), 1.0, 1e-6);
    CHECK_NEAR(ns_schedule_eval(&s, 0.0), 0.0, 0.0);
    CHECK(ns_schedule_eval(&s, 0.1) < 1e-3);  // the tail is suppressed
    CHECK(ns_schedule_pion(5, &s, &err) == 0);
    CHECK_NEAR(ns_schedule_eval(&s, 1.0), 1.0, 1e-6);
    CHECK(ns_schedule_eval(&s, 0.1) > 0.5);  // promotion lifts small values
    CHECK(ns_schedule_pion(6, &s, &err) == -1);
    CHECK(strstr(err.msg, "kp") != NULL);
    CHECK(ns_schedule_pion(-1, &s, &err) == -1);
}

// Builds a rows x cols fp32 matrix U diag(sigma) V^T (rows <= cols) and keeps U, V for checks.
static void build_matrix(int r, int c, const double *sigma, double *U, double *V, float *A) {
    Error err;
    random_orthonormal(r, r, 1, U, &err);
    random_orthonormal(c, r, 2, V, &err);
    for (int i = 0; i < r; i++)
        for (int j = 0; j < c; j++) {
            double v = 0;
            for (int k = 0; k < r; k++) v += U[i * r + k] * sigma[k] * V[j * r + k];
            A[i * c + j] = (float)v;
        }
}

static void test_ns_muon_orthogonal(void) {
    // Well-conditioned input (singular values in [0.5, 1] before normalisation). Muon's fixed quintic
    // does not converge to 1: its map lands every normalised sigma in [0.68, 1.14], so the output is
    // the polar factor U V^T up to that band. Check (a) the output keeps the input's singular vectors
    // (U^T O V diagonal to 1e-2), (b) its singular values are in the band, and (c) the same engine
    // with a convergent schedule (16 cubic steps 1.5x - 0.5x^3) is orthogonal to 1e-3.
    int r = 32, c = 48;
    double sigma[32];
    for (int i = 0; i < r; i++) sigma[i] = 0.5 + 0.5 * i / (r - 1);
    double *U = malloc(sizeof(double) * r * r), *V = malloc(sizeof(double) * c * r);
    float *A = malloc(sizeof(float) * r * c), *O = malloc(sizeof(float) * r * c);
    Error err;
    build_matrix(r, c, sigma, U, V, A);
    NsSchedule s;
    ns_schedule_muon(&s);
    NsWork w;
    CHECK(ns_work_init(&w, r, (size_t)r * c, &err) == 0);
    CHECK(ns_orthogonalize(&s, A, r, c, c, O, c, 1e-7f, &w, &err) == 0);
    double off = 0, dmin = 1e9, dmax = 0;
    for (int i = 0; i < r; i++)
        for (int j = 0; j < r; j++) {
            double d = 0;
            for (int a = 0; a < r; a++)
                for (int b = 0; b < c; b++) d += U[a * r + i] * O[a * c + b] * V[b * r + j];
            if (i != j)
                off = fmax(off, fabs(d));
            else
                dmin = fmin(dmin, d), dmax = fmax(dmax, d);
        }
    CHECK_MSG(off <= 1e-2, "U^T O V off-diagonal %g", off);
    CHECK_MSG(dmin >= 0.68 && dmax <= 1.14, "muon output singular values in [%g, %g]", dmin, dmax);
    double sv[32];
    CHECK(singular_values(O, r, c, sv, &err) == 0);
    CHECK_MSG(sv[0] <= 1.14 && sv[r - 1] >= 0.68, "svd of output in [%g, %g]", sv[r - 1], sv[0]);

    NsSchedule cubic = {0};
    for (int i = 0; i < 16; i++) CHECK(ns_schedule_push(&cubic, 1.5f, -0.5f, 0.0f, &err) == 0);
    CHECK(ns_schedule_push(&cubic, 1.5f, -0.5f, 0.0f, &err) == -1);
    CHECK(ns_orthogonalize(&cubic, A, r, c, c, O, c, 1e-7f, &w, &err) == 0);
    double worst = 0;
    for (int i = 0; i < r; i++)
        for (int j = 0; j < r; j++) {
            double d = 0;
            for (int k = 0; k < c; k++) d += (double)O[i * c + k] * O[j * c + k];
            worst = test_worse(worst, fabs(d - (i == j)));
        }
    CHECK_MSG(worst <= 1e-3, "cubic schedule: |O O^T - I| max %g", worst);
    ns_work_free(&w);
    free(U), free(V), free(A), free(O);
}

// bf16 float: nearest even (the rounding gemm_bf16 and the device apply).
static float to_bf16(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    u += 0x7fffu + ((u >> 16) & 1u);
    u &= 0xffff0000u;
    memcpy(&x, &u, 4);
    return x;
}

// Index of element (i, j) of the wide view (r x c) of a matrix stored r x c (wide) or c x r (tall).
static size_t at(int tall, int r, int c, int i, int j) { return tall ? (size_t)j * r + i : (size_t)i * c + j; }

// ns_dtype bf16 (NsWork.bf16) against a direct reference: per step A = r(X) r(X)^T, B = c r(A) r(A) + b A + a I,
// X <- r(B) r(X), with r() the bf16 rounding and every sum in double, from X = G / ||G||. Both round the same values
// and differ by fp32 vs double sums (and the rare rounding that flips with them): 1e-4 of the output's largest value
// (measured 1.5e-7). The bf16 output must also be 1e-3 of it away from the fp32 engine's (it really rounds: measured
// 1e-2 to 3e-2), on both shapes, wide (32 x 48) and tall (48 x 32), with the Muon and Pion schedules.
static void test_ns_bf16_products(void) {
    Error err;
    NsSchedule sched[2];
    ns_schedule_muon(&sched[0]);
    CHECK(ns_schedule_pion(2, &sched[1], &err) == 0);
    for (int shape = 0; shape < 2; shape++)
        for (int k = 0; k < 2; k++) {
            int rows = shape ? 48 : 32, cols = shape ? 32 : 48, r = 32, c = 48, tall = shape;
            size_t n = (size_t)rows * cols;
            float *G = malloc(sizeof(float) * n), *O = malloc(sizeof(float) * n), *O32 = malloc(sizeof(float) * n);
            double *X = malloc(sizeof(double) * n), *Y = malloc(sizeof(double) * n);
            double *A = malloc(sizeof(double) * r * r), *B = malloc(sizeof(double) * r * r);
            fill_normal(G, n, 11 + shape * 2 + k, 1.0f);
            NsWork w;
            CHECK(ns_work_init(&w, r, n, &err) == 0);
            CHECK(ns_orthogonalize(&sched[k], G, rows, cols, cols, O32, cols, 1e-7f, &w, &err) == 0);
            w.bf16 = 1;
            CHECK(ns_orthogonalize(&sched[k], G, rows, cols, cols, O, cols, 1e-7f, &w, &err) == 0);
            double ss = 0;
            for (size_t i = 0; i < n; i++) ss += (double)G[i] * G[i];
            float inv = (float)(1.0 / (sqrt(ss) + 1e-7));
            for (size_t i = 0; i < n; i++) X[i] = (float)(inv * G[i]);
            for (int t = 0; t < sched[k].steps; t++) {
                for (int i = 0; i < r; i++)
                    for (int j = 0; j < r; j++) {
                        double d = 0;
                        for (int q = 0; q < c; q++)
                            d += (double)to_bf16((float)X[at(tall, r, c, i, q)]) *
                                 to_bf16((float)X[at(tall, r, c, j, q)]);
                        A[i * r + j] = (float)d;
                    }
                for (int i = 0; i < r; i++)
                    for (int j = 0; j < r; j++) {
                        double d = 0;
                        for (int q = 0; q < r; q++)
                            d += (double)to_bf16((float)A[i * r + q]) * to_bf16((float)A[q * r + j]);
                        B[i * r + j] =
                            (float)(sched[k].c[t] * d + sched[k].b[t] * A[i * r + j] + (i == j) * sched[k].a[t]);
                    }
                for (int i = 0; i < r; i++)
                    for (int j = 0; j < c; j++) {
                        double d = 0;
                        for (int q = 0; q < r; q++)
                            d += (double)to_bf16((float)B[i * r + q]) * to_bf16((float)X[at(tall, r, c, q, j)]);
                        Y[at(tall, r, c, i, j)] = (float)d;
                    }
                memcpy(X, Y, sizeof(double) * n);
            }
            double worst = 0, vs32 = 0, big = 0;
            for (size_t i = 0; i < n; i++) {
                worst = test_worse(worst, fabs(O[i] - X[i]));
                vs32 = fmax(vs32, fabs((double)O[i] - O32[i]));
                big = fmax(big, fabs(X[i]));
            }
            printf("  %s %s bf16: %.2e from the reference, %.2e from fp32 (max %.2f)\n", tall ? "tall" : "wide",
                   k ? "pion" : "muon", worst, vs32, big);
            CHECK_MSG(worst <= 1e-4 * big, "%s %s: bf16 engine differs from the reference by %g (max %g)",
                      tall ? "tall" : "wide", k ? "pion" : "muon", worst, big);
            CHECK_MSG(vs32 > 1e-3 * big, "%s %s: bf16 output only %g from fp32's", tall ? "tall" : "wide",
                      k ? "pion" : "muon", vs32);
            ns_work_free(&w);
            free(G), free(O), free(O32), free(X), free(Y), free(A), free(B);
        }
}

static void test_ns_workspace_errors(void) {
    NsSchedule s;
    ns_schedule_muon(&s);
    NsWork w;
    Error err;
    CHECK(ns_work_init(&w, 4, 32, &err) == 0);
    float X[64] = {0}, Y[64];
    CHECK(ns_orthogonalize(&s, X, 8, 8, 8, Y, 8, 1e-7f, &w, &err) == -1);
    CHECK(strstr(err.msg, "exceeds the workspace") != NULL);
    CHECK(ns_iterate(&s, X, 8, 4, &w, &err) == -1);
    // A zero matrix stays zero (eps guards the normalisation).
    CHECK(ns_orthogonalize(&s, X, 4, 8, 8, Y, 8, 1e-7f, &w, &err) == 0);
    for (int i = 0; i < 32; i++) CHECK(Y[i] == 0.0f);
    ns_work_free(&w);
}

// --- per-head ----------------------------------------------------------------------------------

static void make_config(OptimConfig *c, OptimKind kind, int per_head, int kp) {
    optimizer_config_default(c);
    c->kind = kind;
    c->per_head = per_head;
    c->kp = kp;
    c->lr = 0.02f;
}

static void test_per_head_equals_blocks(void) {
    // q_proj-like (H=4 heads of 8 rows, 24 cols) and o_proj-like (24 rows, H=4 heads of 8 cols).
    int H = 4, hd = 8, D = 24;
    ParamInfo t[2];
    memset(t, 0, sizeof t);
    snprintf(t[0].name, sizeof t[0].name, "q_proj");
    t[0].offset = 0, t[0].ndim = 2, t[0].rows = H * hd, t[0].cols = D, t[0].role = ROLE_MATRIX;
    t[0].heads = HEADS_ROWS, t[0].num_heads = H, t[0].head_dim = hd;
    snprintf(t[1].name, sizeof t[1].name, "o_proj");
    t[1].offset = (size_t)H * hd * D, t[1].ndim = 2, t[1].rows = D, t[1].cols = H * hd, t[1].role = ROLE_MATRIX;
    t[1].heads = HEADS_COLS, t[1].num_heads = H, t[1].head_dim = hd;
    size_t N = 2 * (size_t)H * hd * D;
    for (int kind = 0; kind < 2; kind++) {
        OptimConfig c;
        make_config(&c, kind ? OPT_PION : OPT_MUON, 1, 1);
        c.weight_decay = 0.0f;
        c.nesterov = 0;
        c.momentum = 0.0f;  // the update is then exactly -lr * scale * NS(G) per block
        Optimizer *o;
        Error err;
        CHECK(optimizer_create(&c, t, 2, N, &o, &err) == 0);
        float *W = calloc(N, sizeof(float)), *G = malloc(N * sizeof(float));
        fill_normal(G, N, 7, 1.0f);
        CHECK(optimizer_step(o, W, G, 1.0f, &err) == 0);
        NsSchedule s;
        if (kind)
            ns_schedule_pion(1, &s, NULL);
        else
            ns_schedule_muon(&s);
        NsWork w;
        CHECK(ns_work_init(&w, D, (size_t)D * D, &err) == 0);
        float blk[24 * 8], outb[24 * 8];
        double worst = 0;
        float sc = c.scale_factor * sqrtf((float)D);  // block 8 x 24 or 24 x 8: max side 24
        for (int h = 0; h < H; h++) {
            // q block: rows h*hd.., contiguous.
            memcpy(blk, G + (size_t)h * hd * D, sizeof(float) * hd * D);
            CHECK(ns_orthogonalize(&s, blk, hd, D, D, outb, D, c.ns_eps, &w, &err) == 0);
            for (int i = 0; i < hd * D; i++)
                worst = test_worse(worst, fabs(W[(size_t)h * hd * D + i] - (-c.lr * sc * outb[i])));
            // o block: columns h*hd.., copied out to a separate contiguous matrix.
            const float *Go = G + t[1].offset;
            for (int i = 0; i < D; i++)
                for (int j = 0; j < hd; j++) blk[i * hd + j] = Go[(size_t)i * H * hd + h * hd + j];
            CHECK(ns_orthogonalize(&s, blk, D, hd, hd, outb, hd, c.ns_eps, &w, &err) == 0);
            const float *Wo = W + t[1].offset;
            for (int i = 0; i < D; i++)
                for (int j = 0; j < hd; j++)
                    worst =
                        test_worse(worst, fabs(Wo[(size_t)i * H * hd + h * hd + j] - (-c.lr * sc * outb[i * hd + j])));
        }
        CHECK_MSG(worst <= 1e-9, "per-head differs from separate blocks by %g", worst);
        // And per-head is really different from whole-matrix.
        OptimConfig c2 = c;
        c2.per_head = 0;
        Optimizer *o2;
        CHECK(optimizer_create(&c2, t, 2, N, &o2, &err) == 0);
        float *W2 = calloc(N, sizeof(float));
        CHECK(optimizer_step(o2, W2, G, 1.0f, &err) == 0);
        double diff = 0;
        for (size_t i = 0; i < N; i++) diff = fmax(diff, fabs(W2[i] - W[i]));
        CHECK(diff > 1e-4);
        optimizer_free(o2);
        free(W2);
        ns_work_free(&w);
        optimizer_free(o);
        free(W), free(G);
    }
}

static void test_per_head_parallel_large_blocks(void) {
    // Blocks big enough that OpenBLAS would thread each GEMM: the parallel per-head path (one BLAS
    // thread per block) must still equal ns_orthogonalize on each block with the default threads.
    int H = 4, hd = 96, D = 640;
    ParamInfo t;
    memset(&t, 0, sizeof t);
    snprintf(t.name, sizeof t.name, "o_proj");
    t.ndim = 2, t.rows = D, t.cols = H * hd, t.role = ROLE_MATRIX;
    t.heads = HEADS_COLS, t.num_heads = H, t.head_dim = hd;
    size_t N = (size_t)D * H * hd;
    OptimConfig c;
    make_config(&c, OPT_PION, 1, 2);
    c.weight_decay = 0.0f, c.nesterov = 0, c.momentum = 0.0f;
    Optimizer *o;
    Error err;
    CHECK(optimizer_create(&c, &t, 1, N, &o, &err) == 0);
    float *W = calloc(N, sizeof(float)), *G = malloc(N * sizeof(float)), *blk = malloc(sizeof(float) * D * hd);
    float *outb = malloc(sizeof(float) * D * hd);
    fill_normal(G, N, 77, 1.0f);
    CHECK(optimizer_step(o, W, G, 1.0f, &err) == 0);
    NsSchedule s;
    ns_schedule_pion(2, &s, NULL);
    NsWork w;
    CHECK(ns_work_init(&w, hd, (size_t)D * hd, &err) == 0);
    float sc = c.scale_factor * sqrtf((float)D);
    double worst = 0;
    for (int h = 0; h < H; h++) {
        for (int i = 0; i < D; i++)
            for (int j = 0; j < hd; j++) blk[i * hd + j] = G[(size_t)i * H * hd + h * hd + j];
        CHECK(ns_orthogonalize(&s, blk, D, hd, hd, outb, hd, c.ns_eps, &w, &err) == 0);
        for (int i = 0; i < D; i++)
            for (int j = 0; j < hd; j++)
                worst = test_worse(worst, fabs(W[(size_t)i * H * hd + h * hd + j] - (-c.lr * sc * outb[i * hd + j])));
    }
    CHECK_MSG(worst <= 1e-9, "parallel per-head differs from separate blocks by %g", worst);
    ns_work_free(&w);
    optimizer_free(o);
    free(W), free(G), free(blk), free(outb);
}

// --- spectrum-preserving -----------------------------------------------------------------------

static void test_spectral_preserves_singular_values(void) {
    // Cases: wide Cayley (2000 steps), tall Cayley alternating (500 steps), wide exp2 (200 steps).
    for (int cs = 0; cs < 3; cs++) {
        int map = cs == 2, r = cs == 1 ? 16 : 12, c = cs == 1 ? 12 : 16;
        size_t N = (size_t)r * c;
        ParamInfo t;
        memset(&t, 0, sizeof t);
        snprintf(t.name, sizeof t.name, "w");
        t.ndim = 2, t.rows = r, t.cols = c, t.role = ROLE_MATRIX;
        OptimConfig cfg;
        make_config(&cfg, OPT_SPECTRAL, 0, 0);
        cfg.lr = 0.01f;
        cfg.spectral.map = map ? SP_MAP_EXP2 : SP_MAP_CAYLEY;
        cfg.spectral.alternate = cs == 1;  // exercise both sides-at-once and alternating
        Optimizer *o;
        Error err;
        CHECK(optimizer_create(&cfg, &t, 1, N, &o, &err) == 0);
        float *W = malloc(N * sizeof(float)), *G = malloc(N * sizeof(float)), *W0 = malloc(N * sizeof(float));
        fill_normal(W, N, 3, 0.3f);
        memcpy(W0, W, N * sizeof(float));
        double s0[16], s1[16];
        int nsv = r < c ? r : c;
        CHECK(singular_values(W, r, c, s0, &err) == 0);
        int steps = cs == 0 ? 2000 : cs == 1 ? 500 : 200;
        for (int k = 0; k < steps; k++) {
            fill_normal(G, N, 100 + k, 1.0f);
            CHECK(optimizer_step(o, W, G, 1.0f, &err) == 0);
        }
        CHECK(singular_values(W, r, c, s1, &err) == 0);
        double worst = 0, moved = 0;
        for (int i = 0; i < nsv; i++) worst = test_worse(worst, fabs(s1[i] - s0[i]) / s0[0]);
        for (size_t i = 0; i < N; i++) moved = fmax(moved, fabs(W[i] - W0[i]));
        if (map == 0) {
            // Cayley: exactly orthogonal factors; only fp32 rounding of W accumulates.
            CHECK_MSG(worst <= 2e-5, "cayley: singular values drifted by %g (relative) over %d steps", worst, steps);
        } else {
            // Truncated exponential: orthogonal to O(B^4) only; still small drift at this step size.
            CHECK_MSG(worst <= 1e-3, "exp2: singular values drifted by %g over %d steps", worst, steps);
        }
        CHECK_MSG(moved > 0.05, "W barely moved (%g): the rotation did nothing", moved);
        CHECK(optimizer_update_rms(o, 0) > 0.0f);
        optimizer_free(o);
        free(W), free(G), free(W0);
    }
}

static void test_spectral_first_step_rms(void) {
    // The first-order change has RMS lr * update_rms; with a small lr the actual change matches.
    int r = 8, c = 10;
    size_t N = (size_t)r * c;
    ParamInfo t;
    memset(&t, 0, sizeof t);
    snprintf(t.name, sizeof t.name, "w");
    t.ndim = 2, t.rows = r, t.cols = c, t.role = ROLE_MATRIX;
    OptimConfig cfg;
    make_config(&cfg, OPT_SPECTRAL, 0, 0);
    cfg.lr = 1e-4f;
    Optimizer *o;
    Error err;
    CHECK(optimizer_create(&cfg, &t, 1, N, &o, &err) == 0);
    float W[80], G[80];
    fill_normal(W, N, 5, 1.0f);
    fill_normal(G, N, 6, 1.0f);
    CHECK(optimizer_step(o, W, G, 1.0f, &err) == 0);
    CHECK_NEAR(optimizer_update_rms(o, 0), cfg.lr * cfg.spectral.update_rms, 2e-7);
    CHECK(optimizer_state_bytes(o) == sizeof(float) * 2 * (r * r + c * c));
    optimizer_free(o);
}

// --- schedules and clipping ----------------------------------------------------------------------

static void test_lr_schedules(void) {
    LrSchedule s;
    lr_schedule_default(&s);
    CHECK_NEAR(lr_schedule_scale(&s, 0), 1.0, 0);
    CHECK_NEAR(lr_schedule_scale(&s, 1000), 1.0, 0);
    s.type = LR_LINEAR_WARMUP;
    s.warmup_steps = 4;
    CHECK_NEAR(lr_schedule_scale(&s, 0), 0.25, 1e-7);
    CHECK_NEAR(lr_schedule_scale(&s, 3), 1.0, 1e-7);
    CHECK_NEAR(lr_schedule_scale(&s, 50), 1.0, 1e-7);
    s.type = LR_COSINE;
    s.warmup_steps = 10;
    s.total_steps = 110;
    s.min_lr_ratio = 0.1f;
    CHECK_NEAR(lr_schedule_scale(&s, 9), 1.0, 1e-7);
    CHECK_NEAR(lr_schedule_scale(&s, 10), 1.0, 1e-7);
    CHECK_NEAR(lr_schedule_scale(&s, 60), 0.1 + 0.9 * 0.5, 1e-6);
    CHECK_NEAR(lr_schedule_scale(&s, 110), 0.1, 1e-6);
    CHECK_NEAR(lr_schedule_scale(&s, 500), 0.1, 1e-6);
    Error err;
    cJSON *j = json_parse_text("{\"type\": \"cosine\", \"warmup_steps\": 5, \"total_steps\": 3}", "t", &err);
    CHECK(j != NULL);
    CHECK(lr_schedule_parse(j, &s, "sched", &err) == -1);
    CHECK(strstr(err.msg, "total_steps") != NULL);
    cJSON_Delete(j);
    // total_steps left out (0) is accepted: the trainer fills in the run length.
    lr_schedule_default(&s);
    j = json_parse_text("{\"type\": \"cosine\", \"warmup_steps\": 5}", "t", &err);
    CHECK(lr_schedule_parse(j, &s, "sched", &err) == 0);
    CHECK(s.type == LR_COSINE && s.total_steps == 0);
    CHECK_NEAR(lr_schedule_scale(&s, 100), 1.0, 0);
    cJSON_Delete(j);
    j = json_parse_text("{\"type\": \"step\"}", "t", &err);
    CHECK(lr_schedule_parse(j, &s, "sched", &err) == -1);
    CHECK(strstr(err.msg, "unknown schedule type 'step'") != NULL);
    cJSON_Delete(j);
}

static void test_grad_clip(void) {
    float g[4] = {3, 4, 0, 0};
    CHECK_NEAR(grad_global_norm(g, 4), 5.0, 1e-12);
    double n = grad_clip_global_norm(g, 4, 1.0);
    CHECK_NEAR(n, 5.0, 1e-12);
    CHECK_NEAR(grad_global_norm(g, 4), 1.0, 1e-6);
    float h[2] = {0.3f, 0.4f};
    grad_clip_global_norm(h, 2, 1.0);  // below the limit: unchanged
    CHECK(h[0] == 0.3f && h[1] == 0.4f);
    grad_clip_global_norm(h, 2, 0.0);  // 0 disables clipping
    CHECK(h[0] == 0.3f);
}

// --- config and table errors ---------------------------------------------------------------------

static int parse_str(const char *text, OptimConfig *c, Error *err) {
    optimizer_config_default(c);
    cJSON *j = json_parse_text(text, "test", err);
    if (!j) return -1;
    int rc = optimizer_config_parse(j, c, "config.json: optimizer", err);
    cJSON_Delete(j);
    return rc;
}

static void test_config_parse(void) {
    OptimConfig c;
    Error err;
    CHECK(parse_str("{\"name\": \"muon\", \"lr\": 0.02, \"weight_decay\": 0.1, \"kp\": 2, \"per_head\": false,"
                    " \"momentum\": 0.9, \"nesterov\": false, \"momentum_form\": \"ema\", \"scale\": \"original\","
                    " \"pion_scale_factor\": 5.0, \"adamw\": {\"lr\": 3e-4, \"betas\": [0.8, 0.95], \"eps\": 1e-6,"
                    " \"weight_decay\": 0}, \"schedule\": {\"type\": \"cosine\", \"warmup_steps\": 2,"
                    " \"total_steps\": 10}, \"max_grad_norm\": 1.0, \"ns_coefficients\": [[3, -3.2, 1.2], [2, -1, 0]],"
                    " \"spectral\": {\"map\": \"exp2\", \"alternate\": true, \"update_rms\": 0.3}}",
                    &c, &err) == 0);
    CHECK(c.kind == OPT_MUON && c.kp == 2 && !c.per_head && !c.nesterov && c.momentum_form == MOMENTUM_EMA);
    CHECK(c.scale == SCALE_ORIGINAL && c.scale_factor == 5.0f && c.lr == 0.02f && c.weight_decay == 0.1f);
    CHECK(c.adamw.lr == 3e-4f && c.adamw.beta1 == 0.8f && c.adamw.beta2 == 0.95f && c.adamw.weight_decay == 0.0f);
    CHECK(c.schedule.type == LR_COSINE && c.schedule.total_steps == 10 && c.max_grad_norm == 1.0f);
    CHECK(c.ns_custom && c.ns_schedule.steps == 2 && c.ns_schedule.b[0] == -3.2f);
    CHECK(c.spectral.map == SP_MAP_EXP2 && c.spectral.alternate && c.spectral.update_rms == 0.3f);
    // Defaults.
    CHECK(parse_str("{}", &c, &err) == 0);
    CHECK(c.kind == OPT_PION && c.kp == 0 && c.per_head && c.nesterov && c.momentum_form == MOMENTUM_SUM);
    CHECK(!c.ns_bf16 && parse_str("{\"ns_dtype\": \"bf16\"}", &c, &err) == 0 && c.ns_bf16);

    struct {
        const char *json, *msg;
    } bad[] = {
        {"{\"name\": \"sgd\"}", "unknown optimizer 'sgd'"},
        {"{\"kp\": 6}", "kp must be in 0..5"},
        {"{\"kp\": -1}", "kp must be in 0..5"},
        {"{\"lr\": \"big\"}", "'lr' must be a finite number"},
        {"{\"learning_rate\": 1}", "unknown key 'learning_rate'"},
        {"{\"adamw\": {\"betas\": [0.9]}}", "optimizer.adamw: key 'betas' must be an array of two numbers"},
        {"{\"adamw\": {\"betas\": [0.9, 1.0]}}", "betas must be in [0, 1)"},
        {"{\"adamw\": {\"beta1\": 0.9}}", "optimizer.adamw: unknown key 'beta1'"},
        {"{\"momentum\": 1.0}", "momentum must be in [0, 1)"},
        {"{\"scale\": \"spectral\"}", "unknown scale 'spectral'"},
        {"{\"momentum_form\": \"avg\"}", "unknown momentum_form 'avg'"},
        {"{\"ns_dtype\": \"fp16\"}", "unknown ns_dtype 'fp16' (fp32, bf16)"},
        {"{\"spectral\": {\"map\": \"qr\"}}", "unknown map 'qr'"},
        {"{\"ns_coefficients\": [[1, 2]]}", "ns_coefficients[0] must be [a, b, c]"},
        {"{\"ns_coefficients\": []}", "ns_coefficients must be an array"},
        {"{\"schedule\": {\"type\": \"cosine\", \"warmup\": 3}}", "optimizer.schedule: unknown key 'warmup'"},
        {"{\"weight_decay\": -0.1}", "weight_decay must be >= 0"},
        {"{\"pion_scale_factor\": 0}", "pion_scale_factor must be > 0"},
        {"[1, 2]", "expected a JSON object"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err.msg[0] = 0;
        CHECK_MSG(parse_str(bad[i].json, &c, &err) == -1, "accepted %s", bad[i].json);
        CHECK_MSG(strstr(err.msg, bad[i].msg) != NULL, "%s: got '%s', want '%s'", bad[i].json, err.msg, bad[i].msg);
    }
}

static void test_bad_tables(void) {
    OptimConfig c;
    make_config(&c, OPT_PION, 1, 0);
    Error err;
    Optimizer *o = (Optimizer *)1;
    ParamInfo t;
    memset(&t, 0, sizeof t);
    snprintf(t.name, sizeof t.name, "model.layers.0.self_attn.q_proj.weight");
    t.ndim = 2, t.rows = 30, t.cols = 16, t.role = ROLE_MATRIX, t.heads = HEADS_ROWS, t.num_heads = 4, t.head_dim = 8;
    CHECK(optimizer_create(&c, &t, 1, 480, &o, &err) == -1 && o == NULL);
    CHECK_MSG(strstr(err.msg, "q_proj") && strstr(err.msg, "head_dim must divide rows"), "%s", err.msg);
    t.rows = 32, t.heads = HEADS_COLS;
    CHECK(optimizer_create(&c, &t, 1, 512, &o, &err) == -1);
    CHECK_MSG(strstr(err.msg, "head_dim must divide columns"), "%s", err.msg);
    // Without per-head the split is not used, so the same table is fine.
    c.per_head = 0;
    CHECK(optimizer_create(&c, &t, 1, 512, &o, &err) == 0);
    optimizer_free(o);
    t.heads = HEADS_NONE;
    CHECK(optimizer_create(&c, &t, 1, 500, &o, &err) == -1);
    CHECK_MSG(strstr(err.msg, "outside the 500-float parameter buffer"), "%s", err.msg);
    t.rows = 0;
    CHECK(optimizer_create(&c, &t, 1, 512, &o, &err) == -1);
    CHECK(strstr(err.msg, "bad shape") != NULL);
    t.rows = 32, t.ndim = 3;
    CHECK(optimizer_create(&c, &t, 1, 512, &o, &err) == -1);
    CHECK(optimizer_create(&c, &t, 0, 512, &o, &err) == -1);
    CHECK(strstr(err.msg, "empty") != NULL);
    t.ndim = 2;
    c.kp = 9;  // a config built in code is checked too
    CHECK(optimizer_create(&c, &t, 1, 512, &o, &err) == -1);
    CHECK(strstr(err.msg, "kp must be in 0..5") != NULL);
    c.kp = 0;
    CHECK(optimizer_create(&c, &t, 1, 512, &o, &err) == 0);
    float W[512] = {0}, G[512] = {0};
    CHECK(optimizer_step(o, W, G, -1.0f, &err) == -1);
    CHECK(strstr(err.msg, "lr_scale") != NULL);
    CHECK(optimizer_step(o, W, G, NAN, &err) == -1);
    optimizer_free(o);
}

// --- groups, state ---------------------------------------------------------------------------

// A small model-like table: embedding, norm, q (heads), o (heads), mlp matrix, bias.
static int small_table(ParamInfo *t, size_t *num) {
    struct {
        const char *name;
        int ndim, rows, cols;
        ParamRole role;
        HeadSplit heads;
        int H, hd;
    } d[] = {
        {"model.embed_tokens.weight", 2, 20, 16, ROLE_EMBEDDING, HEADS_NONE, 0, 0},
        {"model.layers.0.input_layernorm.weight", 1, 1, 16, ROLE_NORM, HEADS_NONE, 0, 0},
        {"model.layers.0.self_attn.q_proj.weight", 2, 16, 16, ROLE_MATRIX, HEADS_ROWS, 4, 4},
        {"model.layers.0.self_attn.q_proj.bias", 1, 1, 16, ROLE_BIAS, HEADS_NONE, 0, 0},
        {"model.layers.0.self_attn.o_proj.weight", 2, 16, 16, ROLE_MATRIX, HEADS_COLS, 4, 4},
        {"model.layers.0.mlp.up_proj.weight", 2, 24, 16, ROLE_MATRIX, HEADS_NONE, 0, 0},
    };
    size_t at = 0;
    int n = (int)(sizeof d / sizeof d[0]);
    memset(t, 0, sizeof(ParamInfo) * n);
    for (int i = 0; i < n; i++) {
        snprintf(t[i].name, sizeof t[i].name, "%s", d[i].name);
        t[i].offset = at;
        t[i].ndim = d[i].ndim, t[i].rows = d[i].rows, t[i].cols = d[i].cols, t[i].role = d[i].role;
        t[i].heads = d[i].heads, t[i].num_heads = d[i].H, t[i].head_dim = d[i].hd;
        at += (size_t)d[i].rows * d[i].cols;
    }
    *num = at;
    return n;
}

static void test_param_groups(void) {
    ParamInfo t[8];
    size_t N;
    int n = small_table(t, &N);
    OptimConfig c;
    make_config(&c, OPT_PION, 1, 0);
    Optimizer *o;
    Error err;
    CHECK(optimizer_create(&c, t, n, N, &o, &err) == 0);
    CHECK(!strcmp(optimizer_param_rule(o, 0), "adamw"));
    CHECK(!strcmp(optimizer_param_rule(o, 1), "adamw"));
    CHECK(!strcmp(optimizer_param_rule(o, 2), "pion"));
    CHECK(!strcmp(optimizer_param_rule(o, 3), "adamw"));
    CHECK(!strcmp(optimizer_param_rule(o, 5), "pion"));
    // Matrices hold 1 buffer (momentum), the rest 2 (m, v).
    size_t mat = 16 * 16 * 2 + 24 * 16, rest = N - mat;
    CHECK(optimizer_state_bytes(o) == sizeof(float) * (mat + 2 * rest));
    optimizer_free(o);
    make_config(&c, OPT_ADAMW, 1, 0);
    CHECK(optimizer_create(&c, t, n, N, &o, &err) == 0);
    CHECK(!strcmp(optimizer_param_rule(o, 2), "adamw"));
    CHECK(optimizer_state_bytes(o) == sizeof(float) * 2 * N);
    optimizer_free(o);
}

static void run_steps(Optimizer *o, float *W, size_t N, int from, int to) {
    float *G = malloc(N * sizeof(float));
    Error err;
    for (int k = from; k < to; k++) {
        fill_normal(G, N, 1000 + k, 1.0f);
        optimizer_step(o, W, G, 1.0f, &err);
    }
    free(G);
}

static void test_state_roundtrip(void) {
    ParamInfo t[8];
    size_t N;
    int n = small_table(t, &N);
    char path[256];  // per process: other build trees may run this test at the same time
    snprintf(path, sizeof path, "/tmp/pionrl-test-optim-state-%d.safetensors", (int)getpid());
    OptimKind kinds[] = {OPT_ADAMW, OPT_MUON, OPT_PION, OPT_SPECTRAL};
    for (int k = 0; k < 4; k++) {
        OptimConfig c;
        make_config(&c, kinds[k], 1, 1);
        Optimizer *a, *b;
        Error err;
        CHECK(optimizer_create(&c, t, n, N, &a, &err) == 0);
        float *W = malloc(N * sizeof(float)), *W2 = malloc(N * sizeof(float));
        fill_normal(W, N, 9, 0.2f);
        run_steps(a, W, N, 0, 3);
        CHECK_MSG(optimizer_state_save(a, path, &err) == 0, "%s", err.msg);
        memcpy(W2, W, N * sizeof(float));
        run_steps(a, W, N, 3, 6);  // continue uninterrupted
        CHECK(optimizer_create(&c, t, n, N, &b, &err) == 0);
        CHECK_MSG(optimizer_state_load(b, path, &err) == 0, "%s", err.msg);
        CHECK(optimizer_step_count(b) == 3);
        run_steps(b, W2, N, 3, 6);  // resumed
        CHECK_MSG(memcmp(W, W2, N * sizeof(float)) == 0, "%s: resumed run differs", optimizer_kind_name(kinds[k]));
        optimizer_free(b);
        // Loading into a different optimizer is refused with a clear message.
        OptimConfig c2 = c;
        c2.kind = kinds[(k + 1) % 4];
        CHECK(optimizer_create(&c2, t, n, N, &b, &err) == 0);
        CHECK(optimizer_state_load(b, path, &err) == -1);
        CHECK_MSG(strstr(err.msg, "state is for optimizer"), "%s", err.msg);
        CHECK(optimizer_step_count(b) == 0);
        optimizer_free(b);
        optimizer_free(a);
        free(W), free(W2);
    }
    // A table whose shapes differ is refused naming the tensor.
    OptimConfig c;
    make_config(&c, OPT_PION, 1, 1);
    Optimizer *a, *b;
    Error err;
    CHECK(optimizer_create(&c, t, n, N, &a, &err) == 0);
    CHECK(optimizer_state_save(a, path, &err) == 0);
    t[5].rows = 20;
    CHECK(optimizer_create(&c, t, n, N, &b, &err) == 0);
    CHECK(optimizer_state_load(b, path, &err) == -1);
    CHECK_MSG(strstr(err.msg, "up_proj.weight.momentum' must be F32 [20, 16]"), "%s", err.msg);
    optimizer_free(a);
    optimizer_free(b);
    // Not a state file / missing file.
    FILE *f = fopen(path, "wb");
    fputs("garbage", f);
    fclose(f);
    t[5].rows = 24;
    CHECK(optimizer_create(&c, t, n, N, &b, &err) == 0);
    CHECK(optimizer_state_load(b, path, &err) == -1);
    CHECK(optimizer_state_load(b, "/nonexistent/optim.safetensors", &err) == -1);
    CHECK(strstr(err.msg, "optimizer state load") != NULL);
    optimizer_free(b);
    remove(path);
}

// --- diagnostics -------------------------------------------------------------------------------

static void test_diagnostics(void) {
    // Rank-2 matrix with singular values 3 and 1: p = (0.75, 0.25), erank = exp(H).
    int r = 6, c = 9;
    double U[6 * 6], V[9 * 6];
    Error err;
    CHECK(random_orthonormal(r, r, 11, U, &err) == 0);
    CHECK(random_orthonormal(c, r, 12, V, &err) == 0);
    float A[54];
    for (int i = 0; i < r; i++)
        for (int j = 0; j < c; j++) A[i * c + j] = (float)(3 * U[i * r] * V[j * r] + 1 * U[i * r + 1] * V[j * r + 1]);
    double s[6], e;
    CHECK(singular_values(A, r, c, s, &err) == 0);
    CHECK_NEAR(s[0], 3.0, 1e-5);
    CHECK_NEAR(s[1], 1.0, 1e-5);
    CHECK(s[2] < 1e-3);
    CHECK(effective_rank(A, r, c, &e, &err) == 0);
    double h = -(0.75 * log(0.75) + 0.25 * log(0.25));
    CHECK_NEAR(e, exp(h), 1e-3);
    // Transposed shape gives the same values; identity gives erank n.
    float At[54];
    for (int i = 0; i < r; i++)
        for (int j = 0; j < c; j++) At[j * r + i] = A[i * c + j];
    double st[6];
    CHECK(singular_values(At, c, r, st, &err) == 0);
    CHECK_NEAR(st[0], 3.0, 1e-5);
    float I[16] = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1};
    CHECK(effective_rank(I, 4, 4, &e, &err) == 0);
    CHECK_NEAR(e, 4.0, 1e-9);
    float Z[4] = {0};
    CHECK(effective_rank(Z, 2, 2, &e, &err) == 0 && e == 0.0);
    CHECK(singular_values(A, 0, 3, s, &err) == -1);

    // SNR: g_k = mu + noise_k with hand-computed values.
    float g1[2] = {1, 0}, g2[2] = {3, 2};
    const float *gs[2] = {g1, g2};
    GradSnr snr;
    CHECK(grad_snr(gs, 2, 2, &snr, &err) == 0);
    // mean (2, 1): ||g||^2 = 5; deviations (-1,-1),(1,1): sum 4; V = 4; snr = 5 / (4/2) = 2.5
    CHECK_NEAR(snr.mean_sq, 5.0, 1e-12);
    CHECK_NEAR(snr.var_sum, 4.0, 1e-12);
    CHECK_NEAR(snr.snr, 2.5, 1e-12);
    CHECK_NEAR(snr.snr_unbiased, (5.0 - 2.0) / 4.0, 1e-12);
    CHECK(grad_snr(gs, 1, 2, &snr, &err) == -1);

    float x[4] = {1, -1, 1, -1};
    CHECK_NEAR(rms(x, 4), 1.0, 1e-12);

    ParamInfo p;
    memset(&p, 0, sizeof p);
    p.rows = 4, p.cols = 2, p.heads = HEADS_ROWS, p.num_heads = 2, p.head_dim = 2;
    float W[8] = {1, 0, 0, 0, 3, 4, 0, 0};
    double hn[2];
    CHECK(head_norms(W, &p, hn, &err) == 0);
    CHECK_NEAR(hn[0], 1.0, 1e-12);
    CHECK_NEAR(hn[1], 5.0, 1e-12);
    p.rows = 2, p.cols = 4, p.heads = HEADS_COLS;
    float Wc[8] = {1, 0, 3, 0, 0, 0, 4, 0};
    CHECK(head_norms(Wc, &p, hn, &err) == 0);
    CHECK_NEAR(hn[0], 1.0, 1e-12);
    CHECK_NEAR(hn[1], 5.0, 1e-12);
    HeadSpread sp;
    head_spread(hn, 2, &sp);
    CHECK_NEAR(sp.mean, 3.0, 1e-12);
    CHECK_NEAR(sp.std, 2.0, 1e-12);
    CHECK_NEAR(sp.cv, 2.0 / 3.0, 1e-12);
    CHECK(sp.min == 1.0 && sp.max == 5.0);
    p.head_dim = 3;
    CHECK(head_norms(Wc, &p, hn, &err) == -1);
    p.heads = HEADS_NONE;
    CHECK(head_norms(Wc, &p, hn, &err) == -1);
}

// --- the real Qwen parameter table ---------------------------------------------------------------

static void test_qwen_table(void) {
    // Tiny Qwen3 (q/k norm, tied) and Qwen2 (biases, untied) tables: every optimizer accepts them,
    // hidden matrices get the matrix rule and everything else AdamW, per-head splits are valid.
    for (int arch = 2; arch <= 3; arch++) {
        QwenConfig q;
        memset(&q, 0, sizeof q);
        q.arch = arch == 3 ? ARCH_QWEN3 : ARCH_QWEN2;
        q.vocab_size = 40, q.hidden_size = 16, q.intermediate_size = 24, q.num_layers = 2;
        q.num_heads = 4, q.num_kv_heads = 2, q.head_dim = 8;
        q.max_position_embeddings = 64, q.rms_norm_eps = 1e-6f, q.rope_theta = 10000.0;
        q.tie_word_embeddings = arch == 3, q.attention_bias = arch == 2, q.qk_norm = arch == 3;
        int n = qwen_num_tensors(&q);
        size_t N = qwen_num_params(&q);
        ParamInfo *t = calloc(n, sizeof(ParamInfo));
        qwen_param_table(&q, t);
        float *W = malloc(N * sizeof(float)), *G = malloc(N * sizeof(float)), *W0 = malloc(N * sizeof(float));
        fill_normal(W, N, 21, 0.1f);
        fill_normal(G, N, 22, 1.0f);
        memcpy(W0, W, N * sizeof(float));
        OptimKind kinds[] = {OPT_ADAMW, OPT_MUON, OPT_PION, OPT_SPECTRAL};
        for (int k = 0; k < 4; k++) {
            OptimConfig c;
            make_config(&c, kinds[k], 1, 0);
            Optimizer *o;
            Error err;
            CHECK_MSG(optimizer_create(&c, t, n, N, &o, &err) == 0, "qwen%d %s: %s", arch,
                      optimizer_kind_name(kinds[k]), err.msg);
            // the planner's count (no allocation) is the created optimizer's
            CHECK_MSG(optimizer_state_bytes_planned(&c, t, n) == optimizer_state_bytes(o),
                      "qwen%d %s: planned %zu, "
                      "allocated %zu",
                      arch, optimizer_kind_name(kinds[k]), optimizer_state_bytes_planned(&c, t, n),
                      optimizer_state_bytes(o));
            memcpy(W, W0, N * sizeof(float));
            CHECK(optimizer_step(o, W, G, 1.0f, &err) == 0);
            for (int i = 0; i < n; i++) {
                int matrix = t[i].role == ROLE_MATRIX && t[i].ndim == 2;
                const char *want = matrix && kinds[k] != OPT_ADAMW ? optimizer_kind_name(kinds[k]) : "adamw";
                CHECK_MSG(!strcmp(optimizer_param_rule(o, i), want), "%s: rule %s, want %s", t[i].name,
                          optimizer_param_rule(o, i), want);
                CHECK_MSG(optimizer_update_rms(o, i) > 0.0f, "%s did not move", t[i].name);
            }
            for (size_t i = 0; i < N; i++) CHECK(isfinite(W[i]));
            optimizer_free(o);
        }
        free(t), free(W), free(G), free(W0);
    }
}

// The device optimizer's Newton-Schulz batches (optim_cuda_workspace_bytes, any build): five 4096 x 4096 matrices of
// one layout (64 MiB each) batch two at a time under the 128 MiB budget, so the workspace holds two matrices'
// inputs, outputs and iterates (4 x 2 x 4096^2 floats), two Gram buffers (2 x 2 x 4096^2) and a dsum per parameter;
// bf16 products add rounded copies of one iterate and both Gram buffers; AdamW needs only the dsums.
static void test_cuda_ns_workspace(void) {
    enum { M = 5, S = 4096 };
    ParamInfo t[M + 1];
    memset(t, 0, sizeof t);
    for (int i = 0; i < M; i++) {
        snprintf(t[i].name, sizeof t[i].name, "model.layers.%d.mlp.down_proj.weight", i);
        t[i].offset = (size_t)i * S * S, t[i].ndim = 2, t[i].rows = S, t[i].cols = S, t[i].role = ROLE_MATRIX;
    }
    snprintf(t[M].name, sizeof t[M].name, "model.norm.weight");  // a vector: AdamW, no batch
    t[M].offset = (size_t)M * S * S, t[M].ndim = 1, t[M].rows = 1, t[M].cols = S, t[M].role = ROLE_NORM;
    OptimConfig c;
    optimizer_config_default(&c);
    c.kind = OPT_MUON;
    size_t two = (size_t)2 * S * S, dsums = sizeof(double) * (M + 1);
    CHECK(optim_cuda_workspace_bytes(&c, t, M + 1) == 4 * 4 * two + 2 * 4 * two + 4 * 2 + dsums);
    c.ns_bf16 = 1;
    CHECK(optim_cuda_workspace_bytes(&c, t, M + 1) == 4 * 4 * two + 2 * 4 * two + 4 * 2 + 2 * 3 * two + dsums);
    c.kind = OPT_ADAMW;
    CHECK(optim_cuda_workspace_bytes(&c, t, M + 1) == dsums);
    // a matrix of another shape is a batch of its own (the largest batch still sets the workspace)
    t[2].rows = S / 2;
    c.kind = OPT_PION, c.ns_bf16 = 0;
    CHECK(optim_cuda_workspace_bytes(&c, t, M + 1) == 4 * 4 * two + 2 * 4 * two + 4 * 2 + dsums);
}

int main(void) {
    RUN(test_ns_maps_match_polynomials);
    RUN(test_ns_normalized_map);
    RUN(test_ns_polynomial_values);
    RUN(test_ns_muon_orthogonal);
    RUN(test_ns_bf16_products);
    RUN(test_ns_workspace_errors);
    RUN(test_per_head_equals_blocks);
    RUN(test_per_head_parallel_large_blocks);
    RUN(test_spectral_preserves_singular_values);
    RUN(test_spectral_first_step_rms);
    RUN(test_lr_schedules);
    RUN(test_grad_clip);
    RUN(test_config_parse);
    RUN(test_bad_tables);
    RUN(test_param_groups);
    RUN(test_state_roundtrip);
    RUN(test_diagnostics);
    RUN(test_qwen_table);
    RUN(test_cuda_ns_workspace);
    return test_summary("test_optim");
}
