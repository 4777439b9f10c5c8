// The model against PyTorch: tests/fixtures/qwen{3,2}-tiny hold random tiny checkpoints and, in
// reference.safetensors, the logits, per-token log-probs, entropies, loss = sum(weights * logprobs)
// and the gradient of that loss for every parameter, computed by tools/make_qwen_fixtures.py in
// float64 PyTorch. Targets: logits/log-probs <= 1e-4 max abs error, gradients <= 1e-3 relative
// (fp32); bf16 matrix products to bf16's precision.
#include "test.h"

#include "core/safetensors.h"
#include "policy/qwen.h"
#include "policy/qwen_checkpoint.h"
#include "policy/qwen_train.h"

static float *read_ref(const StFile *f, const char *name, size_t expect_numel) {
    Error e;
    const StTensor *t = st_find(f, name);
    if (!t || t->numel != expect_numel) return NULL;
    float *out = malloc(sizeof(float) * t->numel);
    if (st_read_f32(f, t, out, 1, &e)) {
        free(out);
        return NULL;
    }
    return out;
}

// Largest |a - b| over a parameter tensor relative to the largest |b| in it, worst tensor.
static double max_rel_diff(const float *a, const float *b, const ParamInfo *tab, int nt) {
    double worst = 0;
    for (int i = 0; i < nt; i++) {
        double dmax = 0, rmax = 0;
        for (size_t j = 0; j < param_numel(&tab[i]); j++) {
            dmax = fmax(dmax, fabs(a[tab[i].offset + j] - b[tab[i].offset + j]));
            rmax = fmax(rmax, fabs(b[tab[i].offset + j]));
        }
        worst = fmax(worst, dmax / (rmax + 1e-30));
    }
    return worst;
}

static void check_fixture(const char *dir) {
    char path[512];
    QwenModel m;
    Error e;
    int rc = qwen_model_load(dir, &m, &e);
    CHECK_MSG(rc == 0, "load %s: %s", dir, e.msg);
    snprintf(path, sizeof path, "%s/reference.safetensors", dir);
    StFile ref;
    CHECK_MSG(st_open(path, &ref, &e) == 0, "%s", e.msg);
    const StTensor *tt = st_find(&ref, "tokens");
    CHECK(tt && tt->ndim == 2);
    int B = (int)tt->shape[0], T = (int)tt->shape[1], V = m.cfg.vocab_size;
    int *tok = malloc(sizeof(int) * B * T);
    CHECK(st_read_i32(&ref, tt, tok, &e) == 0);
    float *logits_ref = read_ref(&ref, "logits", (size_t)B * T * V);
    float *logp_ref = read_ref(&ref, "logprobs", (size_t)B * (T - 1));
    float *ent_ref = read_ref(&ref, "entropy", (size_t)B * (T - 1));
    float *w = read_ref(&ref, "weights", (size_t)B * (T - 1));
    float *loss_ref = read_ref(&ref, "loss", 1);
    CHECK(logits_ref && logp_ref && ent_ref && w && loss_ref);

    QwenActs a;
    CHECK(qwen_acts_alloc(&a, &m.cfg, B, T, &e) == 0);
    float *logits = malloc(sizeof(float) * B * T * V);
    CHECK(qwen_forward_logits(&m, &a, tok, B, T, logits, &e) == 0);
    double worst = 0;
    for (size_t i = 0; i < (size_t)B * T * V; i++) worst = test_worse(worst, fabs(logits[i] - logits_ref[i]));
    CHECK_MSG(worst <= 1e-4, "%s logits max abs err %.3g", dir, worst);
    printf("  %s: logits max abs err %.2e\n", dir, worst);

    float *logp = malloc(sizeof(float) * B * (T - 1)), *ent = malloc(sizeof(float) * B * (T - 1));
    CHECK(qwen_forward(&m, &a, tok, NULL, B, T, 1.0f, logp, ent, &e) == 0);
    double wl = 0, we = 0, loss = 0;
    for (int i = 0; i < B * (T - 1); i++) {
        wl = fmax(wl, fabs(logp[i] - logp_ref[i]));
        we = fmax(we, fabs(ent[i] - ent_ref[i]));
        loss += (double)w[i] * logp[i];
    }
    CHECK_MSG(wl <= 1e-4 && we <= 1e-4, "%s logprob err %.3g entropy err %.3g", dir, wl, we);
    CHECK_NEAR(loss, loss_ref[0], 1e-4 * (1 + fabs(loss_ref[0])));

    float *grads = calloc(m.num_params, sizeof(float));
    qwen_backward(&m, &a, w, grads);
    int nt = qwen_num_tensors(&m.cfg);
    ParamInfo *tab = calloc(nt, sizeof *tab);
    qwen_param_table(&m.cfg, tab);
    double worst_rel = 0;
    const char *worst_name = "";
    for (int i = 0; i < nt; i++) {
        char name[200];
        snprintf(name, sizeof name, "grad.%s", tab[i].name);
        size_t n = param_numel(&tab[i]);
        float *g = read_ref(&ref, name, n);
        CHECK_MSG(g, "%s: reference has no %s", dir, name);
        double dmax = 0, rmax = 0;
        for (size_t j = 0; j < n; j++) {
            dmax = fmax(dmax, fabs(grads[tab[i].offset + j] - g[j]));
            rmax = fmax(rmax, fabs(g[j]));
        }
        double rel = dmax / (rmax + 1e-12);
        if (rel > worst_rel) worst_rel = rel, worst_name = tab[i].name;
        free(g);
    }
    printf("  %s: gradient worst relative err %.2e (%s)\n", dir, worst_rel, worst_name);
    CHECK_MSG(worst_rel <= 1e-3, "%s gradient rel err %.3g in %s", dir, worst_rel, worst_name);
    // The other lm_head path: without the forward's kept softmax the backward recomputes the logits
    // in chunks of rows (what a large vocabulary does). Only the order in which the lm_head
    // gradient sums its rows differs: the same gradients to fp32 rounding. A second backward of
    // the same forward (the kept softmax is consumed by the first) takes that path too.
    CHECK_MSG(a.probs_kept != NULL, "%s: the tiny model's softmax should be kept", dir);
    float *grads2 = calloc(m.num_params, sizeof(float));
    qwen_backward(&m, &a, w, grads2);
    double chunk_err = max_rel_diff(grads2, grads, tab, nt);
    free(a.probs_kept);
    a.probs_kept = NULL;
    memset(grads2, 0, sizeof(float) * m.num_params);
    CHECK(qwen_forward(&m, &a, tok, NULL, B, T, 1.0f, logp, ent, &e) == 0);
    qwen_backward(&m, &a, w, grads2);
    double none_err = max_rel_diff(grads2, grads, tab, nt);
    printf("  %s: recomputed vs kept softmax: gradients differ by %.2e / %.2e of each tensor's largest\n", dir,
           chunk_err, none_err);
    CHECK_MSG(chunk_err <= 1e-5 && none_err <= 1e-5, "%s: recomputed-logits gradients differ by %.3g / %.3g", dir,
              chunk_err, none_err);
    size_t ndiff = 0;
    // Activation recomputation (only the layer inputs kept, each layer re-run in the backward):
    // the same log-probs and the same gradients, bit for bit, with less activation memory.
    QwenActs ar;
    CHECK(qwen_acts_alloc_ex(&ar, &m.cfg, B, T, 1, &e) == 0);
    CHECK(qwen_acts_bytes_ex(&m.cfg, B, T, 1) < qwen_acts_bytes(&m.cfg, B, T));
    float *logp3 = malloc(sizeof(float) * B * (T - 1));
    memset(grads2, 0, sizeof(float) * m.num_params);
    CHECK(qwen_forward(&m, &ar, tok, NULL, B, T, 1.0f, logp3, NULL, &e) == 0);
    qwen_backward(&m, &ar, w, grads2);
    size_t nd_logp = 0;
    ndiff = 0;
    for (int i = 0; i < B * (T - 1); i++) nd_logp += logp3[i] != logp[i];
    for (size_t i = 0; i < m.num_params; i++) ndiff += grads2[i] != grads[i];
    CHECK_MSG(nd_logp == 0 && ndiff == 0, "%s: recomputation changes %zu log-probs and %zu gradient values", dir,
              nd_logp, ndiff);
    // Mixed precision (matmul_dtype "bf16"): the matrix products from bf16-rounded inputs, fp32
    // sums and everything else fp32. Against the float64 reference at bf16's precision: log-probs
    // to 4e-2, each gradient tensor to 4e-2 of its norm (kept softmax, with recomputation). Then
    // both lm_head paths: with recomputation and without, the same bits; against the kept
    // softmax, the same to fp32 rounding.
    a.matmul_bf16 = ar.matmul_bf16 = 1;
    float *gb = calloc(m.num_params, sizeof(float));
    CHECK(qwen_forward(&m, &ar, tok, NULL, B, T, 1.0f, logp3, NULL, &e) == 0);
    qwen_backward(&m, &ar, w, gb);
    double lb = 0, gworst = 0;
    const char *gname = "";
    for (int i = 0; i < B * (T - 1); i++) lb = fmax(lb, fabs(logp3[i] - logp_ref[i]));
    for (int i = 0; i < nt; i++) {
        char name[200];
        snprintf(name, sizeof name, "grad.%s", tab[i].name);
        size_t n = param_numel(&tab[i]);
        float *g = read_ref(&ref, name, n);
        double dn = 0, rn = 0;
        for (size_t j = 0; j < n; j++) {
            double dd = gb[tab[i].offset + j] - g[j];
            dn += dd * dd;
            rn += (double)g[j] * g[j];
        }
        double rel = sqrt(dn / (rn + 1e-30));
        if (rel > gworst) gworst = rel, gname = tab[i].name;
        free(g);
    }
    printf("  %s: bf16 matmuls: log-prob max abs err %.2e, gradient worst relative (norm) err %.2e (%s)\n", dir, lb,
           gworst, gname);
    CHECK_MSG(lb > 0 && lb <= 4e-2, "%s bf16 log-prob err %.3g", dir, lb);
    CHECK_MSG(gworst <= 4e-2, "%s bf16 gradient rel err %.3g in %s", dir, gworst, gname);
    free(ar.probs_kept);
    ar.probs_kept = NULL;
    float *logp4 = malloc(sizeof(float) * B * (T - 1)), *gb2 = calloc(m.num_params, sizeof(float));
    memset(grads2, 0, sizeof(float) * m.num_params);
    CHECK(qwen_forward(&m, &ar, tok, NULL, B, T, 1.0f, logp4, NULL, &e) == 0);
    qwen_backward(&m, &ar, w, grads2);
    CHECK(!memcmp(logp4, logp3, sizeof(float) * B * (T - 1)));
    CHECK(qwen_forward(&m, &a, tok, NULL, B, T, 1.0f, logp4, NULL, &e) == 0);
    qwen_backward(&m, &a, w, gb2);
    CHECK(!memcmp(logp4, logp3, sizeof(float) * B * (T - 1)) && !memcmp(grads2, gb2, sizeof(float) * m.num_params));
    double bf_paths = max_rel_diff(gb2, gb, tab, nt);
    CHECK_MSG(bf_paths <= 1e-5, "%s: bf16 recomputed-logits gradients differ by %.3g", dir, bf_paths);
    free(gb2);
    free(logp4);
    free(gb);
    qwen_acts_free(&ar);
    free(logp3);
    free(grads2);
    free(tab);
    free(grads);
    free(logp);
    free(ent);
    free(logits);
    free(logits_ref);
    free(logp_ref);
    free(ent_ref);
    free(w);
    free(loss_ref);
    free(tok);
    qwen_acts_free(&a);
    st_close(&ref);
    qwen_model_free(&m);
}

static void test_reference_qwen3(void) { check_fixture("tests/fixtures/qwen3-tiny"); }
static void test_reference_qwen2(void) { check_fixture("tests/fixtures/qwen2-tiny"); }
// heads x head_dim != hidden (as in Qwen3-0.6B), 4 query heads per kv head, untied, theta 5e6
static void test_reference_qwen3_wide(void) { check_fixture("tests/fixtures/qwen3-tiny-wide"); }

int main(void) {
    RUN(test_reference_qwen3);
    RUN(test_reference_qwen2);
    RUN(test_reference_qwen3_wide);
    return test_summary("test_qwen_reference");
}
