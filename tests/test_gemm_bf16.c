// bfloat16 matrix products (core/gemm_bf16.h) against a double-precision product of the same
// bf16-rounded inputs (closed form of what the kernel must compute), the native AVX512-BF16 kernel
// against the portable loop, every operand layout and ragged shapes (tiles cut at every edge).
#include "test.h"

#include "core/blas.h"
#include "core/gemm_bf16.h"
#include "core/rng.h"
#include "core/safetensors.h"

static float round_bf16(float x) { return st_bf16_to_f32(st_f32_to_bf16(x)); }

static float *random_matrix(Rng *rng, int rows, int cols) {
    float *a = malloc(sizeof(float) * rows * cols);
    for (int i = 0; i < rows * cols; i++) a[i] = (float)rng_normal(rng);
    return a;
}

// C = alpha * A B^T (+ C0) in double from bf16-rounded operands; A m x k (or k x m when ta),
// B n x k (or k x n when tb)
static void reference(double *C, const float *C0, float alpha, const float *A, int ta, const float *B, int tb, int m,
                      int n, int k) {
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int c = 0; c < k; c++) {
                float a = ta ? A[(size_t)c * m + i] : A[(size_t)i * k + c];
                float b = tb ? B[(size_t)c * n + j] : B[(size_t)j * k + c];
                s += (double)round_bf16(a) * round_bf16(b);
            }
            C[(size_t)i * n + j] = alpha * s + (C0 ? C0[(size_t)i * n + j] : 0.0);
        }
}

// max |C - ref| relative to the sum of |a||b| terms (the scale of fp32 accumulation error)
static double rel_err(const float *C, const double *ref, int m, int n, int k) {
    double worst = 0;
    for (int i = 0; i < m * n; i++) worst = test_worse(worst, fabs(C[i] - ref[i]));
    return worst / sqrt((double)k);
}

static void check_shape(Rng *rng, int m, int n, int k, int ta, int tb, float alpha, int accumulate) {
    float *A = random_matrix(rng, m, k), *B = random_matrix(rng, n, k), *C0 = random_matrix(rng, m, n);
    float *C = malloc(sizeof(float) * m * n), *Cp = malloc(sizeof(float) * m * n);
    double *ref = malloc(sizeof(double) * m * n);
    reference(ref, accumulate ? C0 : NULL, alpha, A, ta, B, tb, m, n, k);
    memcpy(C, C0, sizeof(float) * m * n);
    memcpy(Cp, C0, sizeof(float) * m * n);
    CHECK(gemm_bf16_nt(C, n, alpha, accumulate, A, ta ? m : k, ta, m, B, tb ? n : k, tb, n, k) == 0);
    Bf16Packed pb;
    Error e;
    CHECK(bf16_pack_b(&pb, B, tb ? n : k, tb, n, k, &e) == 0);
    CHECK(gemm_bf16_portable(Cp, n, alpha, accumulate, A, ta ? m : k, ta, m, &pb) == 0);
    double en = rel_err(C, ref, m, n, k), ep = rel_err(Cp, ref, m, n, k);
    CHECK_MSG(en < 2e-6 && ep < 2e-6, "m %d n %d k %d ta %d tb %d: native %.3g portable %.3g", m, n, k, ta, tb, en,
              ep);
    bf16_packed_free(&pb);
    free(A), free(B), free(C0), free(C), free(Cp), free(ref);
}

// Every edge of the 12 x 32 tile and odd k (a half-filled last pair), each operand layout,
// alpha and accumulate.
static void test_gemm_bf16_matches_reference(void) {
    Rng rng;
    rng_seed(&rng, 11);
    int ms[] = {1, 5, 12, 13, 25, 40}, ns[] = {1, 16, 17, 32, 33, 70}, ks[] = {1, 2, 7, 64, 129};
    for (int a = 0; a < 6; a++)
        for (int b = 0; b < 6; b++)
            for (int c = 0; c < 5; c++) {
                int layout = (a + b + c) % 4;
                check_shape(&rng, ms[a], ns[b], ks[c], layout & 1, layout >> 1, c % 2 ? 0.5f : 1.0f, b % 2);
                if (test_state.state) return;
            }
    printf("  native AVX512-BF16 kernel: %s\n", bf16_native() ? "yes" : "no (portable loop tested twice)");
}

// A product big enough to take several row chunks and threads, against fp32 SGEMM: the
// difference is bf16 rounding of the inputs, ~2^-8 relative per term.
static void test_gemm_bf16_large_vs_sgemm(void) {
    Rng rng;
    rng_seed(&rng, 12);
    int m = 700, n = 300, k = 517;
    float *A = random_matrix(&rng, m, k), *B = random_matrix(&rng, n, k);
    float *C = malloc(sizeof(float) * m * n), *R = malloc(sizeof(float) * m * n);
    gemm_dt(1, 0, 1, m, n, k, 1.0f, A, k, B, k, 0.0f, C, n);
    sgemm(0, 1, m, n, k, 1.0f, A, k, B, k, 0.0f, R, n);
    double worst = 0, scale = 0;
    for (int i = 0; i < m * n; i++) worst = test_worse(worst, fabs(C[i] - R[i])), scale = fmax(scale, fabs(R[i]));
    printf("  700 x 300 x 517: bf16 vs fp32 max |diff| %.3g (values up to %.3g)\n", worst, scale);
    CHECK(worst > 0 && worst < 2e-2 * scale);
    // gemm_dt with both operands read transposed equals the same product
    float *At = malloc(sizeof(float) * m * k), *Bt = malloc(sizeof(float) * n * k), *C2 = malloc(sizeof(float) * m * n);
    for (int i = 0; i < m; i++)
        for (int c = 0; c < k; c++) At[(size_t)c * m + i] = A[(size_t)i * k + c];
    for (int j = 0; j < n; j++)
        for (int c = 0; c < k; c++) Bt[(size_t)c * n + j] = B[(size_t)j * k + c];
    gemm_dt(1, 1, 0, m, n, k, 1.0f, At, m, Bt, n, 0.0f, C2, n);
    CHECK(!memcmp(C, C2, sizeof(float) * m * n));
    free(A), free(B), free(C), free(R), free(At), free(Bt), free(C2);
}

// Operands and result inside larger row-major arrays (row strides past their widths, as attention
// calls it on one head's columns): the same values as the dense product, and nothing outside C's
// columns written.
static void test_gemm_bf16_strides(void) {
    Rng rng;
    rng_seed(&rng, 13);
    int m = 29, n = 45, k = 37, lda = 50, ldb = 52, ldc = 60;
    float *A = random_matrix(&rng, m, lda), *B = random_matrix(&rng, k, ldb), *C = random_matrix(&rng, m, ldc);
    float *Ad = malloc(sizeof(float) * m * k), *Bd = malloc(sizeof(float) * n * k), *Cd = malloc(sizeof(float) * m * n);
    float *C0 = malloc(sizeof(float) * m * ldc);
    memcpy(C0, C, sizeof(float) * m * ldc);
    for (int i = 0; i < m; i++)
        for (int c = 0; c < k; c++) Ad[i * k + c] = A[i * lda + c];
    for (int j = 0; j < n; j++)
        for (int c = 0; c < k; c++) Bd[j * k + c] = B[c * ldb + j];  // B stored k x n (transposed)
    CHECK(gemm_bf16_nt(C, ldc, 0.5f, 0, A, lda, 0, m, B, ldb, 1, n, k) == 0);
    CHECK(gemm_bf16_nt(Cd, n, 0.5f, 0, Ad, k, 0, m, Bd, k, 0, n, k) == 0);
    for (int i = 0; i < m; i++) {
        CHECK(!memcmp(C + i * ldc, Cd + i * n, sizeof(float) * n));
        CHECK(!memcmp(C + i * ldc + n, C0 + i * ldc + n, sizeof(float) * (ldc - n)));
    }
    free(A), free(B), free(C), free(Ad), free(Bd), free(Cd), free(C0);
}

// NaN and infinity pass through (no silent finite answer); bad shapes are refused.
static void test_gemm_bf16_nonfinite_and_errors(void) {
    float A[4] = {1, NAN, 2, 3}, B[4] = {1, 1, INFINITY, 0}, C[4];
    CHECK(gemm_bf16_nt(C, 2, 1.0f, 0, A, 2, 0, 2, B, 2, 0, 2, 2) == 0);
    CHECK(isnan(C[0]) && isnan(C[1]) && C[2] == 5.0f && isinf(C[3]));
    Bf16Packed p;
    Error e;
    CHECK(bf16_pack_b(&p, B, 2, 0, 0, 2, &e) == -1 && strstr(e.msg, "shape"));
}

// Every packing path rounds exactly as the scalar conversion does, special values included: the
// vectorised 16 x 16 block transposes (B stored as rows, A stored transposed) and the scalar
// edges. B's panels are compared word for word (NaN, infinities, ties, denormals). A times the
// identity gives bf16(A) back exactly (one exact product per sum), which checks A's two layouts
// on finite values (a NaN or infinity would turn its whole row to NaN through the zeros).
static void test_gemm_bf16_packing_rounds_exactly(void) {
    Rng rng;
    rng_seed(&rng, 14);
    int m = 150, k = 70;  // two full 64-row blocks + an edge; k: two 32-value blocks + an edge
    float specials[] = {0.0f,        -0.0f,       1e-40f,         -3e-39f,   3.3e38f,    1.00390625f,
                        1.01171875f, -1.00390625f, 65504.5f,      NAN,       INFINITY,   -INFINITY};
    int ns = sizeof specials / sizeof specials[0], finite = ns - 3;
    float *A = random_matrix(&rng, m, k), *At = malloc(sizeof(float) * m * k), *I = calloc((size_t)k * k, sizeof(float));
    for (int i = 0; i < m * k; i += 7) A[i] = specials[(i / 7) % ns];
    for (int n = 64; n <= 70; n += 6) {  // B stored n x k: full panels, then a ragged last panel
        Bf16Packed p;
        Error e;
        CHECK(bf16_pack_b(&p, A, k, 0, n, k, &e) == 0);
        size_t wrong = 0;
        for (int j = 0; j < n; j++)
            for (int c = 0; c < k; c++) {
                uint32_t word = p.data[((size_t)(j / 32) * ((k + 1) / 2) + c / 2) * 32 + j % 32];
                uint16_t got = c % 2 ? (uint16_t)(word >> 16) : (uint16_t)word;
                wrong += got != st_f32_to_bf16(A[(size_t)j * k + c]);
            }
        CHECK_MSG(wrong == 0, "n %d: %zu packed B values differ from the scalar rounding", n, wrong);
        bf16_packed_free(&p);
    }
    for (int i = 0; i < m * k; i += 7) A[i] = specials[(i / 7) % finite];
    for (int i = 0; i < m; i++)
        for (int c = 0; c < k; c++) At[(size_t)c * m + i] = A[(size_t)i * k + c];
    for (int c = 0; c < k; c++) I[(size_t)c * k + c] = 1.0f;
    float *C = malloc(sizeof(float) * m * k), *Ct = malloc(sizeof(float) * m * k);
    CHECK(gemm_bf16_nt(C, k, 1.0f, 0, A, k, 0, m, I, k, 0, k, k) == 0);
    CHECK(gemm_bf16_nt(Ct, k, 1.0f, 0, At, m, 1, m, I, k, 0, k, k) == 0);
    size_t bad = 0;
    for (int i = 0; i < m * k; i++) {
        float want = round_bf16(A[i]);
        if (fabsf(want) < 1.2e-38f)  // AVX512-BF16 treats denormal inputs as zero; the portable loop does not
            bad += (C[i] != 0.0f && C[i] != want) || (Ct[i] != 0.0f && Ct[i] != want);
        else
            bad += C[i] != want || Ct[i] != want;
    }
    CHECK_MSG(bad == 0, "%zu values of A packed differently from the scalar rounding", bad);
    free(A), free(At), free(I), free(C), free(Ct);
}

// C = A B^T at bf16 for A stored both ways (At is A transposed): against SGEMM at bf16 precision,
// and the same bits from both layouts. The operands and C are left in o for the caller.
typedef struct {
    float *A, *At, *B, *C;
} Operands;

static void product_both_layouts(Rng *rng, int m, int n, int k, Operands *o) {
    *o = (Operands){random_matrix(rng, m, k), malloc(sizeof(float) * m * k), random_matrix(rng, n, k),
                    malloc(sizeof(float) * m * n)};
    for (int i = 0; i < m; i++)
        for (int c = 0; c < k; c++) o->At[(size_t)c * m + i] = o->A[(size_t)i * k + c];
    float *Ct = malloc(sizeof(float) * m * n), *R = malloc(sizeof(float) * m * n);
    int rc = gemm_bf16_nt(o->C, n, 1.0f, 0, o->A, k, 0, m, o->B, k, 0, n, k);
    int rct = gemm_bf16_nt(Ct, n, 1.0f, 0, o->At, m, 1, m, o->B, k, 0, n, k);
    sgemm(0, 1, m, n, k, 1.0f, o->A, k, o->B, k, 0.0f, R, n);
    double worst = 0;
    for (int i = 0; i < m * n; i++) worst = test_worse(worst, fabs(o->C[i] - R[i]));
    int same = !memcmp(o->C, Ct, sizeof(float) * m * n);
    free(Ct), free(R);
    CHECK(rc == 0 && rct == 0);
    CHECK_MSG(worst < 2e-2 * sqrt((double)k), "%d x %d x %d: product off SGEMM by %.3g", m, n, k, worst);
    CHECK_MSG(same, "%d x %d x %d: A stored transposed gives other bits", m, n, k);
}

static void operands_free(Operands *o) { free(o->A), free(o->At), free(o->B), free(o->C); }

// Many rows: each thread packs chunks of A for itself (A stored both ways), at k past a 4 MB slab.
// A row of C must not depend on the path or on how many rows the call had: the same rows from a
// call small enough to share one packed A, and the whole call from inside a parallel region (one
// thread), are compared bit for bit.
static void test_gemm_bf16_row_paths(void) {
    Rng rng;
    rng_seed(&rng, 15);
    int m = 700, n = 40, k = 8200, few = 30, r0 = 650;  // rows [650, 680): inside the last chunk
    Operands o;
    product_both_layouts(&rng, m, n, k, &o);
    float *Cin = malloc(sizeof(float) * m * n), *Cfew = malloc(sizeof(float) * few * n);
    CHECK(gemm_bf16_nt(Cfew, n, 1.0f, 0, o.A + (size_t)r0 * k, k, 0, few, o.B, k, 0, n, k) == 0);
    CHECK(!memcmp(Cfew, o.C + (size_t)r0 * n, sizeof(float) * few * n));
    CHECK(gemm_bf16_nt(Cfew, n, 1.0f, 0, o.At + r0, m, 1, few, o.B, k, 0, n, k) == 0);
    CHECK(!memcmp(Cfew, o.C + (size_t)r0 * n, sizeof(float) * few * n));
    int rc = 0;
#pragma omp parallel num_threads(2)
    {
#pragma omp single
        rc = gemm_bf16_nt(Cin, n, 1.0f, 0, o.At, m, 1, m, o.B, k, 0, n, k);
    }
    CHECK(rc == 0 && !memcmp(Cin, o.C, sizeof(float) * m * n));
    operands_free(&o);
    free(Cin), free(Cfew);
}

// Few rows at a k whose packed rows pass 4 MB: A is packed a slab of 12 rows at a time.
static void test_gemm_bf16_slabs(void) {
    Rng rng;
    rng_seed(&rng, 16);
    Operands o;
    product_both_layouts(&rng, 36, 40, 100000, &o);
    operands_free(&o);
}

int main(void) {
    RUN(test_gemm_bf16_matches_reference);
    RUN(test_gemm_bf16_large_vs_sgemm);
    RUN(test_gemm_bf16_strides);
    RUN(test_gemm_bf16_nonfinite_and_errors);
    RUN(test_gemm_bf16_packing_rounds_exactly);
    RUN(test_gemm_bf16_row_paths);
    RUN(test_gemm_bf16_slabs);
    return test_summary("test_gemm_bf16");
}
