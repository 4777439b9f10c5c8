// Finite-difference check of qwen_backward on random tiny Qwen3 and Qwen2 models: for a sample of
// parameters in every tensor, d(sum w*logp)/d param from the backward must match the central
// difference of the forward.
#include "test.h"

#include "qwen_tiny.h"

#include "core/rng.h"
#include "policy/qwen.h"
#include "policy/qwen_train.h"

static QwenConfig tiny(int arch) { return qwen_tiny_config(arch, 40, 16, 24); }

enum { B = 2, T = 7 };

static double loss_of(QwenModel *m, QwenActs *a, const int *tok, const unsigned char *need, const float *w) {
    float logp[B * (T - 1)];
    Error e;
    if (qwen_forward(m, a, tok, need, B, T, 0.7f, logp, NULL, &e)) return NAN;  // exercises 1/temperature
    double s = 0;
    for (int i = 0; i < B * (T - 1); i++) s += (double)w[i] * logp[i];
    return s;
}

static void check_arch(int arch) {
    QwenConfig c = tiny(arch);
    QwenModel m;
    QwenActs a;
    Error e;
    CHECK(qwen_tiny_model(&m, c, 7 + arch, 0.3f, &e) == 0);
    // perturb norm weights away from 1 so their gradients are exercised non-trivially
    Rng rng;
    rng_seed(&rng, 99);
    int nt = qwen_num_tensors(&c);
    ParamInfo *tab = calloc(nt, sizeof *tab);
    qwen_param_table(&c, tab);
    for (int i = 0; i < nt; i++)
        if (tab[i].role == ROLE_NORM || tab[i].role == ROLE_BIAS)
            for (size_t j = 0; j < param_numel(&tab[i]); j++)
                m.params[tab[i].offset + j] += 0.2f * (float)rng_normal(&rng);
    CHECK(qwen_acts_alloc(&a, &c, B, T, &e) == 0);
    int tok[B * T];
    float w[B * (T - 1)];
    unsigned char need[B * (T - 1)];
    for (int i = 0; i < B * T; i++) tok[i] = (int)rng_below(&rng, c.vocab_size);
    for (int i = 0; i < B * (T - 1); i++) {
        w[i] = (float)rng_normal(&rng);
        need[i] = (i % 5) != 1;  // some positions not scored
        if (!need[i]) w[i] = 0;
    }
    float *grads = calloc(m.num_params, sizeof(float));
    CHECK(!isnan(loss_of(&m, &a, tok, need, w)));
    qwen_backward(&m, &a, w, grads);
    double worst = 0;
    const char *worst_name = "";
    for (int i = 0; i < nt; i++) {
        size_t n = param_numel(&tab[i]);
        for (int k = 0; k < 6; k++) {
            size_t j = tab[i].offset + rng_below(&rng, n);
            float orig = m.params[j];
            float h = 1e-2f;
            m.params[j] = orig + h;
            double lp = loss_of(&m, &a, tok, need, w);
            m.params[j] = orig - h;
            double lm = loss_of(&m, &a, tok, need, w);
            m.params[j] = orig;
            double fd = (lp - lm) / (2 * h);
            double an = grads[j];
            double err = fabs(fd - an) / (fabs(fd) + fabs(an) + 1e-2);
            if (err > worst) {
                worst = err;
                worst_name = tab[i].name;
            }
        }
    }
    CHECK_MSG(worst < 2e-2, "arch %d: worst relative FD error %.3g in %s", arch, worst, worst_name);
    free(grads);
    free(tab);
    qwen_acts_free(&a);
    qwen_model_free(&m);
}

static void test_grad_fd_qwen3(void) { check_arch(ARCH_QWEN3); }
static void test_grad_fd_qwen2(void) { check_arch(ARCH_QWEN2); }

// The lm_head's two backward paths on more scored rows than one chunk of recomputed logits (so
// the lm_head gradient really is summed in another order): the kept softmax (all rows in one
// product) and the logits recomputed a chunk at a time agree to fp32 rounding, in fp32 and with
// bf16 products; a second backward of one forward (the kept softmax is consumed) agrees too.
static void check_head_paths(int arch, int bf16) {
    enum { HB = 3, HT = 50 };
    QwenConfig c = tiny(arch);
    QwenModel m;
    QwenActs a;
    Error e;
    CHECK(qwen_tiny_model(&m, c, 3 + arch, 0.3f, &e) == 0);
    CHECK(qwen_acts_alloc(&a, &c, HB, HT, &e) == 0);
    a.matmul_bf16 = bf16;
    Rng rng;
    rng_seed(&rng, 5);
    int tok[HB * HT];
    float w[HB * (HT - 1)], logp[HB * (HT - 1)];
    for (int i = 0; i < HB * HT; i++) tok[i] = (int)rng_below(&rng, c.vocab_size);
    for (int i = 0; i < HB * (HT - 1); i++) w[i] = (float)rng_normal(&rng);
    float *g_kept = calloc(m.num_params, sizeof(float)), *g_again = calloc(m.num_params, sizeof(float));
    float *g_chunk = calloc(m.num_params, sizeof(float));
    CHECK(a.probs_kept != NULL);
    CHECK(qwen_forward(&m, &a, tok, NULL, HB, HT, 1.0f, logp, NULL, &e) == 0);
    CHECK(a.num_rows > 64);
    qwen_backward(&m, &a, w, g_kept);
    qwen_backward(&m, &a, w, g_again);
    free(a.probs_kept);
    a.probs_kept = NULL;
    CHECK(qwen_forward(&m, &a, tok, NULL, HB, HT, 1.0f, logp, NULL, &e) == 0);
    qwen_backward(&m, &a, w, g_chunk);
    double worst = 0, scale = 0, again = 0;
    for (size_t i = 0; i < m.num_params; i++) {
        worst = test_worse(worst, fabs(g_chunk[i] - g_kept[i]));
        again = fmax(again, fabs(g_again[i] - g_chunk[i]));
        scale = fmax(scale, fabs(g_kept[i]));
    }
    printf("  arch %d, %s products: kept vs chunked lm_head paths differ by %.2e of the largest gradient\n", arch,
           bf16 ? "bf16" : "fp32", worst / scale);
    CHECK_MSG(scale > 0 && worst <= 1e-5 * scale && again == 0, "arch %d bf16 %d: kept vs chunked %.3g, again %.3g of %.3g",
              arch, bf16, worst, again, scale);
    free(g_kept), free(g_again), free(g_chunk);
    qwen_acts_free(&a);
    qwen_model_free(&m);
}

static void test_head_paths(void) {
    for (int bf16 = 0; bf16 < 2; bf16++) {
        check_head_paths(ARCH_QWEN3, bf16);
        check_head_paths(ARCH_QWEN2, bf16);
    }
}

// Activations allocated for 2 x 8 take more, shorter sequences (4 x 4: the backward runs on them),
// never a longer one (1 x 16 has the same rows, but attention's T x T work is planned for 8) nor
// more rows.
static void test_capacity(void) {
    QwenConfig c = tiny(ARCH_QWEN3);
    QwenModel m;
    QwenActs a;
    Error e;
    CHECK(qwen_tiny_model(&m, c, 4, 0.3f, &e) == 0 && qwen_acts_alloc(&a, &c, 2, 8, &e) == 0);
    int tok[16];
    float logp[16], w[16];
    for (int i = 0; i < 16; i++) tok[i] = i % c.vocab_size, w[i] = 1.0f;
    float *grads = calloc(m.num_params, sizeof(float));
    CHECK(qwen_forward(&m, &a, tok, NULL, 4, 4, 1.0f, logp, NULL, &e) == 0);
    qwen_backward(&m, &a, w, grads);
    double g = 0;
    for (size_t i = 0; i < m.num_params; i++) g += fabs(grads[i]);
    CHECK(isfinite(g) && g > 0);
    CHECK(qwen_forward(&m, &a, tok, NULL, 1, 16, 1.0f, logp, NULL, &e) == -1 && strstr(e.msg, "capacity 2 x 8"));
    CHECK(qwen_forward(&m, &a, tok, NULL, 3, 8, 1.0f, logp, NULL, &e) == -1 && strstr(e.msg, "capacity 2 x 8"));
    free(grads);
    qwen_acts_free(&a);
    qwen_model_free(&m);
}

int main(void) {
    RUN(test_grad_fd_qwen3);
    RUN(test_grad_fd_qwen2);
    RUN(test_head_paths);
    RUN(test_capacity);
    return test_summary("test_qwen_grad");
}
