#include "optim/newton_schulz.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/blas.h"

#include <cblas.h>
#include <omp.h>

void ns_schedule_muon(NsSchedule *s) {
    s->steps = 5;
    for (int i = 0; i < 5; i++) {
        s->a[i] = 3.4445f;
        s->b[i] = -4.7750f;
        s->c[i] = 2.0315f;
    }
}

int ns_schedule_push(NsSchedule *s, float a, float b, float c, Error *err) {
    if (s->steps >= NS_MAX_STEPS) return error_set(err, "newton-schulz schedule: more than %d steps", NS_MAX_STEPS);
    s->a[s->steps] = a;
    s->b[s->steps] = b;
    s->c[s->steps] = c;
    s->steps++;
    return 0;
}

int ns_schedule_pion(int kp, NsSchedule *s, Error *err) {
    if (kp < 0 || kp > 5) return error_set(err, "pion: kp must be in 0..5, got %d", kp);
    s->steps = 0;
    for (int i = 0; i < kp; i++) ns_schedule_push(s, 1.875f, -1.25f, 0.375f, NULL);
    for (int i = kp; i < 5; i++) ns_schedule_push(s, 0.0f, 2.5f, -1.5f, NULL);
    return 0;
}

double ns_schedule_eval(const NsSchedule *s, double x) {
    for (int i = 0; i < s->steps; i++) {
        double x2 = x * x;
        // The coefficients are used as the fp32 values the matrix code multiplies by.
        x = (double)s->a[i] * x + (double)s->b[i] * x2 * x + (double)s->c[i] * x2 * x2 * x;
    }
    return x;
}

int ns_work_init(NsWork *w, int max_short, size_t max_numel, Error *err) {
    memset(w, 0, sizeof *w);
    if (max_short < 1) max_short = 1;
    if (max_numel < 1) max_numel = 1;
    w->max_short = max_short;
    w->max_numel = max_numel;
    size_t sq = (size_t)max_short * max_short;
    w->X = malloc(max_numel * sizeof(float));
    w->Y = malloc(max_numel * sizeof(float));
    w->A = malloc(sq * sizeof(float));
    w->B = malloc(sq * sizeof(float));
    if (!w->X || !w->Y || !w->A || !w->B) {
        ns_work_free(w);
        return error_set(err, "newton-schulz: out of memory for a %d-short, %zu-element workspace", max_short,
                         max_numel);
    }
    return 0;
}

void ns_work_free(NsWork *w) {
    free(w->X);
    free(w->Y);
    free(w->A);
    free(w->B);
    memset(w, 0, sizeof *w);
}

static int check_fits(const NsWork *w, int rows, int cols, Error *err) {
    int r = rows < cols ? rows : cols;
    if (rows < 1 || cols < 1) return error_set(err, "newton-schulz: bad shape %d x %d", rows, cols);
    if (r > w->max_short || (size_t)rows * cols > w->max_numel)
        return error_set(err, "newton-schulz: %d x %d matrix exceeds the workspace (%d short, %zu elements)", rows,
                         cols, w->max_short, w->max_numel);
    return 0;
}

// Runs the schedule on X (r x c, r <= c), ping-ponging between X and other (both r x c); returns the
// buffer that holds the result. Each step is two r x r x {c, r} GEMMs plus one r x c x r GEMM:
//   A = X X^T;  B = A (c A + b I) + a I  (= a I + b A + c A^2);  X <- B X.
// Folding a I into B saves an r x c pass per step, which matters for the small per-head blocks.
static float *iterate(const NsSchedule *s, float *X, float *other, int r, int c, NsWork *w) {
    float *A = w->A, *B = w->B;
    for (int t = 0; t < s->steps; t++) {
        float a = s->a[t], b = s->b[t], cc = s->c[t];
        sgemm(0, 1, r, r, c, 1.0f, X, c, X, c, 0.0f, A, r);  // A = X X^T
        // B = b A + c A^2 (one GEMM accumulating onto b A), then a on the diagonal.
        size_t rr = (size_t)r * r;
        for (size_t i = 0; i < rr; i++) B[i] = b * A[i];
        sgemm(0, 0, r, r, r, cc, A, r, A, r, 1.0f, B, r);
        for (int i = 0; i < r; i++) B[(size_t)i * r + i] += a;
        sgemm(0, 0, r, c, r, 1.0f, B, r, X, c, 0.0f, other, c);  // other = B X
        float *tmp = X;
        X = other;
        other = tmp;
    }
    return X;
}

int ns_iterate(const NsSchedule *s, float *X, int rows, int cols, NsWork *w, Error *err) {
    if (rows > cols) return error_set(err, "ns_iterate: needs rows <= cols, got %d x %d", rows, cols);
    if (check_fits(w, rows, cols, err)) return -1;
    float *res = iterate(s, X, w->Y, rows, cols, w);
    if (res != X) memcpy(X, res, (size_t)rows * cols * sizeof(float));
    return 0;
}

// out (cols x rows, row stride ldo) = scale * in^T (in: rows x cols, row stride ldi), in 32 x 32
// tiles so both sides stay in cache (the per-head o_proj blocks are strided column slices).
static void transpose_scaled(const float *in, int rows, int cols, int ldi, float *out, int ldo, float scale) {
    enum { TILE = 32 };
    for (int i0 = 0; i0 < rows; i0 += TILE)
        for (int j0 = 0; j0 < cols; j0 += TILE) {
            int i1 = i0 + TILE < rows ? i0 + TILE : rows, j1 = j0 + TILE < cols ? j0 + TILE : cols;
            for (int j = j0; j < j1; j++)
                for (int i = i0; i < i1; i++) out[(size_t)j * ldo + i] = in[(size_t)i * ldi + j] * scale;
        }
}

int ns_orthogonalize(const NsSchedule *s, const float *G, int rows, int cols, int ldg, float *out, int ldo, float eps,
                     NsWork *w, Error *err) {
    if (check_fits(w, rows, cols, err)) return -1;
    double ss = 0.0;
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) {
            double v = G[(size_t)i * ldg + j];
            ss += v * v;
        }
    float inv = (float)(1.0 / (sqrt(ss) + (double)eps));
    int tr = rows > cols;
    int r = tr ? cols : rows, c = tr ? rows : cols;
    float *X = w->X;
    if (tr) {
        transpose_scaled(G, rows, cols, ldg, X, c, inv);
    } else {
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++) X[(size_t)i * c + j] = G[(size_t)i * ldg + j] * inv;
    }
    X = iterate(s, X, w->Y, r, c, w);
    if (tr) {
        transpose_scaled(X, cols, rows, c, out, ldo, 1.0f);
    } else {
        for (int i = 0; i < rows; i++) memcpy(out + (size_t)i * ldo, X + (size_t)i * c, cols * sizeof(float));
    }
    return 0;
}

int ns_orthogonalize_batched(const NsSchedule *s, const float *G, int batch, int rows, int cols, float *out, float eps,
                             NsWork *w, Error *err) {
    size_t n = (size_t)rows * cols;
    for (int h = 0; h < batch; h++)
        if (ns_orthogonalize(s, G + h * n, rows, cols, cols, out + h * n, cols, eps, w, err))
            return error_prefix(err, "block %d of %d", h, batch);
    return 0;
}

int ns_orthogonalize_blocks(const NsSchedule *s, const float *G, int nblocks, int rows, int cols, int ldg,
                            size_t g_stride, float *out, int ldo, size_t o_stride, float eps, NsWork *work, int nwork,
                            Error *err) {
    for (int t = 0; t < nwork; t++)
        if (check_fits(&work[t], rows, cols, err)) return error_prefix(err, "workspace %d", t);
    int threads = nwork < nblocks ? nwork : nblocks;
    if (threads > omp_get_max_threads()) threads = omp_get_max_threads();
    if (threads <= 1) {
        for (int b = 0; b < nblocks; b++)
            if (ns_orthogonalize(s, G + b * g_stride, rows, cols, ldg, out + b * o_stride, ldo, eps, &work[0], err))
                return error_prefix(err, "block %d of %d", b, nblocks);
        return 0;
    }
    // OpenBLAS's own threads would compete with ours: one BLAS thread per block while this runs.
    int blas_threads = openblas_get_num_threads();
    openblas_set_num_threads(1);
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int b = 0; b < nblocks; b++)
        ns_orthogonalize(s, G + b * g_stride, rows, cols, ldg, out + b * o_stride, ldo, eps,
                         &work[omp_get_thread_num()], NULL);  // cannot fail: shapes checked above
    openblas_set_num_threads(blas_threads);
    return 0;
}

double ns_gemm_flops(const NsSchedule *s, int rows, int cols) {
    double r = rows < cols ? rows : cols, c = rows < cols ? cols : rows;
    return s->steps * (4.0 * r * r * c + 2.0 * r * r * r);
}
