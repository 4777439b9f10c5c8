#include "optim/newton_schulz.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/blas.h"
#include "core/gemm_bf16.h"

#include <cblas.h>

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

int ns_work_check(const NsWork *w, int rows, int cols, Error *err) {
    int r = rows < cols ? rows : cols;
    if (rows < 1 || cols < 1) return error_set(err, "newton-schulz: bad shape %d x %d", rows, cols);
    if (r > w->max_short || (size_t)rows * cols > w->max_numel)
        return error_set(err, "newton-schulz: %d x %d matrix exceeds the workspace (%d short, %zu elements)", rows,
                         cols, w->max_short, w->max_numel);
    return 0;
}

// Runs the schedule on X = scale * S and writes the result to D (S and D have row strides lds and
// ldd; D may be S). Wide X (tall = 0) is r x c with r <= c, and each step is
//   A = X X^T;  B = a I + b A + c A^2;  X <- B X.
// Tall X (tall = 1) is c x r, the transpose of a wide one; the same step on X^T reads
//   A = X^T X;  X <- X B   (B is symmetric),
// so a tall matrix needs no transposed copy. A and A^2 = A A^T are symmetric and go through SYRK
// (half the flops of a GEMM): a step costs 3 r^2 c + r^3 flops instead of the 4 r^2 c + 2 r^3 of
// three plain GEMMs. The scale rides on the first step's GEMM alphas, intermediate steps ping-pong
// between the workspace's X and Y, and the last step writes straight into D, so no pass over the
// r x c data is spent on copies (it matters for the small per-head blocks).
static void iterate(const NsSchedule *s, const float *S, int lds, float scale, float *D, int ldd, int r, int c,
                    int tall, NsWork *w) {
    int rows = tall ? c : r, cols = tall ? r : c;  // X as stored
    if (s->steps == 0) {
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++) D[(size_t)i * ldd + j] = scale * S[(size_t)i * lds + j];
        return;
    }
    float *A = w->A, *B = w->B, *bufs[2] = {w->X, w->Y};
    size_t rr = (size_t)r * r;
    const float *cur = S;
    int ldx = lds;
    float alpha = scale;
    for (int t = 0; t < s->steps; t++) {
        float a = s->a[t], b = s->b[t], cc = s->c[t];
        // the last step goes straight to D unless D is also its input (in place, one step)
        int direct = t == s->steps - 1 && cur != D;
        float *next = direct ? D : bufs[t & 1];
        int ldn = direct ? ldd : cols;
        ssyrk_full(tall, r, c, alpha * alpha, cur, ldx, A, r);  // A = X X^T (wide) or X^T X (tall)
        ssyrk_full(0, r, r, cc, A, r, B, r);                     // B = c A^2
        for (size_t i = 0; i < rr; i++) B[i] += b * A[i];
        for (int i = 0; i < r; i++) B[(size_t)i * r + i] += a;
        if (tall) sgemm(0, 0, c, r, r, alpha, cur, ldx, B, r, 0.0f, next, ldn);  // X B
        else sgemm(0, 0, r, c, r, alpha, B, r, cur, ldx, 0.0f, next, ldn);       // B X
        cur = next;
        ldx = ldn;
        alpha = 1.0f;
    }
    if (cur != D)
        for (int i = 0; i < rows; i++) memcpy(D + (size_t)i * ldd, cur + (size_t)i * ldx, cols * sizeof(float));
}

// iterate with bf16 products (w->bf16): X = scale * S is formed in fp32 first, so the values rounded are the scaled
// ones (as on the device, which scales while gathering the blocks); then per step
//   A = bf16(X) bf16(X)^T;  B = c bf16(A) bf16(A) + b A + a I;  X <- bf16(B) bf16(X)
// with fp32 sums (gemm_bf16_nt). Returns -1 when the bf16 packing buffers cannot be allocated.
static int iterate_bf16(const NsSchedule *s, const float *S, int lds, float scale, float *D, int ldd, int r, int c,
                        int tall, NsWork *w) {
    int rows = tall ? c : r, cols = tall ? r : c;  // X as stored
    float *A = w->A, *B = w->B;
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) w->X[(size_t)i * cols + j] = scale * S[(size_t)i * lds + j];
    float *cur = w->X;
    size_t rr = (size_t)r * r;
    int rc = 0;
    for (int t = 0; t < s->steps && !rc; t++) {
        int last = t == s->steps - 1;
        float *next = last ? D : (cur == w->X ? w->Y : w->X);
        int ldn = last ? ldd : cols;
        if (tall)  // A = X^T X: both operands X^T, stored c x r
            rc = gemm_bf16_nt(A, r, 1.0f, 0, cur, cols, 1, r, cur, cols, 1, r, c);
        else
            rc = gemm_bf16_nt(A, r, 1.0f, 0, cur, cols, 0, r, cur, cols, 0, r, c);
        rc = rc || gemm_bf16_nt(B, r, s->c[t], 0, A, r, 0, r, A, r, 0, r, r);  // c A A^T = c A^2 (A symmetric)
        if (rc) break;
        for (size_t i = 0; i < rr; i++) B[i] += s->b[t] * A[i];
        for (int i = 0; i < r; i++) B[(size_t)i * r + i] += s->a[t];
        if (tall)  // X B (B symmetric: B^T = B)
            rc = gemm_bf16_nt(next, ldn, 1.0f, 0, cur, cols, 0, c, B, r, 0, r, r);
        else  // B X: the second operand is X^T, stored r x c
            rc = gemm_bf16_nt(next, ldn, 1.0f, 0, B, r, 0, r, cur, cols, 1, c, r);
        cur = next;
    }
    return rc ? -1 : 0;
}

// iterate or iterate_bf16, as the workspace says.
static int run_schedule(const NsSchedule *s, const float *S, int lds, float scale, float *D, int ldd, int r, int c,
                        int tall, NsWork *w, Error *err) {
    if (!w->bf16 || s->steps == 0) {
        iterate(s, S, lds, scale, D, ldd, r, c, tall, w);
        return 0;
    }
    if (iterate_bf16(s, S, lds, scale, D, ldd, r, c, tall, w))
        return error_set(err, "newton-schulz: out of memory for the bf16 products of a %d x %d matrix", r, c);
    return 0;
}

int ns_iterate(const NsSchedule *s, float *X, int rows, int cols, NsWork *w, Error *err) {
    if (rows > cols) return error_set(err, "ns_iterate: needs rows <= cols, got %d x %d", rows, cols);
    if (ns_work_check(w, rows, cols, err)) return -1;
    return run_schedule(s, X, cols, 1.0f, X, cols, rows, cols, 0, w, err);
}

int ns_orthogonalize(const NsSchedule *s, const float *G, int rows, int cols, int ldg, float *out, int ldo, float eps,
                     NsWork *w, Error *err) {
    if (ns_work_check(w, rows, cols, err)) return -1;
    double ss = 0.0;
    for (int i = 0; i < rows; i++)
#pragma omp simd reduction(+ : ss)
        for (int j = 0; j < cols; j++) {
            double v = G[(size_t)i * ldg + j];
            ss += v * v;
        }
    float inv = (float)(1.0 / (sqrt(ss) + (double)eps));
    // G is read in place (strided head blocks included); a tall matrix (rows > cols) is iterated
    // as it stands.
    int tall = rows > cols;
    return run_schedule(s, G, ldg, inv, out, ldo, tall ? cols : rows, tall ? rows : cols, tall, w, err);
}

int ns_orthogonalize_batched(const NsSchedule *s, const float *G, int batch, int rows, int cols, float *out, float eps,
                             NsWork *w, Error *err) {
    size_t n = (size_t)rows * cols;
    for (int h = 0; h < batch; h++)
        if (ns_orthogonalize(s, G + h * n, rows, cols, cols, out + h * n, cols, eps, w, err))
            return error_prefix(err, "block %d of %d", h, batch);
    return 0;
}

double ns_gemm_flops(const NsSchedule *s, int rows, int cols) {
    double r = rows < cols ? rows : cols, c = rows < cols ? cols : rows;
    return s->steps * (4.0 * r * r * c + 2.0 * r * r * r);
}

double ns_executed_flops(const NsSchedule *s, int rows, int cols) {
    double r = rows < cols ? rows : cols, c = rows < cols ? cols : rows;
    return s->steps * (3.0 * r * r * c + r * r * r);
}
