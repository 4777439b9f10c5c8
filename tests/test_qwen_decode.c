// KV-cache decoding against the full-sequence forward, the sampler's filters against their
// definitions, and generation's determinism and stopping rules. Random tiny models, no fixtures.
#include <omp.h>

#include "test.h"

#include "qwen_tiny.h"

#include "core/rng.h"
#include "policy/generate.h"
#include "policy/ops.h"
#include "policy/qwen.h"
#include "policy/qwen_decode.h"
#include "policy/qwen_train.h"
#include "policy/sampler.h"

static QwenConfig tiny(int arch) { return qwen_tiny_config(arch, 48, 32, 40); }

// bf16: the cache stored as bfloat16; mm_bf16: the matrix products on bf16 copies of the weights
// (qwen_kv_pack_bf16). Logits then agree with the fp32 forward only to bf16's precision (checked
// relative to the logits' scale), and must still differ from nothing.
static void decode_matches_forward(int arch, int bf16, int mm_bf16) {
    QwenConfig c = tiny(arch);
    QwenModel m;
    Error e;
    CHECK(qwen_model_init(&m, &c, &e) == 0);
    qwen_model_init_random(&m, 3, 0.2f);
    enum { T = 20 };
    int seqs[2][T];
    Rng rng;
    rng_seed(&rng, 5);
    for (int s = 0; s < 2; s++)
        for (int t = 0; t < T; t++) seqs[s][t] = (int)rng_below(&rng, c.vocab_size);
    // reference: full forward logits of each sequence
    QwenActs a;
    CHECK(qwen_acts_alloc(&a, &c, 2, T, &e) == 0);
    float *ref = malloc(sizeof(float) * 2 * T * c.vocab_size);
    CHECK(qwen_forward_logits(&m, &a, &seqs[0][0], 2, T, ref, &e) == 0);
    // decode: slot 0 prefills 7 tokens at once, slot 1 prefills 3, then both advance one token per
    // call in the same batch (different lengths), checking every logits row produced.
    QwenKVCache kv;
    CHECK(qwen_kv_alloc_ex(&kv, &c, 2, T, 16, bf16, &e) == 0);
    CHECK(!bf16 || qwen_kv_bytes_ex(&c, 2, T, 16, 1) < qwen_kv_bytes(&c, 2, T, 16));
    if (mm_bf16) CHECK(qwen_kv_pack_bf16(&kv, &m, &e) == 0 && kv.wbf16);
    float *lg = malloc(sizeof(float) * 16 * c.vocab_size);
    int slot[16], tok[16];
    int n = 0;
    for (int t = 0; t < 7; t++) slot[n] = 0, tok[n++] = seqs[0][t];
    for (int t = 0; t < 3; t++) slot[n] = 1, tok[n++] = seqs[1][t];
    CHECK(qwen_decode(&m, &kv, slot, tok, n, NULL, lg, &e) == 0);
    double worst = 0;
    for (int i = 0; i < n; i++) {
        int s = slot[i], t = s == 0 ? i : i - 7;
        for (int v = 0; v < c.vocab_size; v++)
            worst =
                test_worse(worst, fabs(lg[(size_t)i * c.vocab_size + v] - ref[((size_t)s * T + t) * c.vocab_size + v]));
    }
    int len[2] = {7, 3};
    while (len[0] < T || len[1] < T) {
        n = 0;
        for (int s = 0; s < 2; s++)
            if (len[s] < T) slot[n] = s, tok[n++] = seqs[s][len[s]];
        CHECK(qwen_decode(&m, &kv, slot, tok, n, NULL, lg, &e) == 0);
        for (int i = 0; i < n; i++) {
            int s = slot[i], t = len[s]++;
            for (int v = 0; v < c.vocab_size; v++)
                worst = fmax(worst,
                             fabs(lg[(size_t)i * c.vocab_size + v] - ref[((size_t)s * T + t) * c.vocab_size + v]));
        }
    }
    double scale = 1;
    for (size_t i = 0; i < (size_t)2 * T * c.vocab_size; i++) scale = fmax(scale, fabs(ref[i]));
    if (bf16 || mm_bf16)
        printf("  bf16 cache %d, bf16 matmul %d: decode vs fp32 forward max |diff| %.2e (logits up to %.2f)\n", bf16,
               mm_bf16, worst, scale);
    if (bf16 || mm_bf16)
        CHECK_MSG(worst > 0 && worst < 2e-2 * scale, "bf16: decode vs forward max |diff| %.3g (scale %.3g)", worst,
                  scale);
    else CHECK_MSG(worst < 1e-4, "decode vs forward max |diff| %.3g", worst);
    // a full slot is an error, not an overflow
    slot[0] = 0, tok[0] = 1;
    CHECK(qwen_decode(&m, &kv, slot, tok, 1, NULL, lg, &e) == -1 && strstr(e.msg, "full"));
    tok[0] = c.vocab_size;
    slot[0] = 1;
    qwen_kv_reset(&kv, 1);
    CHECK(qwen_decode(&m, &kv, slot, tok, 1, NULL, lg, &e) == -1 && strstr(e.msg, "vocabulary"));
    free(lg);
    free(ref);
    qwen_kv_free(&kv);
    qwen_acts_free(&a);
    qwen_model_free(&m);
}

static void test_decode_matches_forward_qwen3(void) { decode_matches_forward(ARCH_QWEN3, 0, 0); }
static void test_decode_matches_forward_qwen2(void) { decode_matches_forward(ARCH_QWEN2, 0, 0); }
static void test_decode_bf16_cache_qwen3(void) { decode_matches_forward(ARCH_QWEN3, 1, 0); }
static void test_decode_bf16_matmul_qwen3(void) { decode_matches_forward(ARCH_QWEN3, 0, 1); }
static void test_decode_bf16_matmul_qwen2(void) { decode_matches_forward(ARCH_QWEN2, 0, 1); }
static void test_decode_bf16_cache_and_matmul(void) { decode_matches_forward(ARCH_QWEN3, 1, 1); }

static void test_forward_logp_matches_logits(void) {
    QwenConfig c = tiny(ARCH_QWEN3);
    QwenModel m;
    QwenActs a;
    Error e;
    CHECK(qwen_model_init(&m, &c, &e) == 0);
    qwen_model_init_random(&m, 11, 0.2f);
    enum { B = 2, T = 9 };
    int tok[B * T];
    for (int i = 0; i < B * T; i++) tok[i] = (i * 7 + 3) % c.vocab_size;
    CHECK(qwen_acts_alloc(&a, &c, B, T, &e) == 0);
    float *lg = malloc(sizeof(float) * B * T * c.vocab_size);
    CHECK(qwen_forward_logits(&m, &a, tok, B, T, lg, &e) == 0);
    float logp[B * (T - 1)], ent[B * (T - 1)];
    unsigned char need[B * (T - 1)];
    for (int i = 0; i < B * (T - 1); i++) need[i] = i % 3 != 0;
    CHECK(qwen_forward(&m, &a, tok, need, B, T, 1.0f, logp, ent, &e) == 0);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T - 1; t++) {
            int i = b * (T - 1) + t;
            if (!need[i]) {
                CHECK(logp[i] == 0 && ent[i] == 0);
                continue;
            }
            const float *row = lg + ((size_t)b * T + t) * c.vocab_size;
            double mx = -1e30, sum = 0, h = 0;
            for (int v = 0; v < c.vocab_size; v++) mx = fmax(mx, row[v]);
            for (int v = 0; v < c.vocab_size; v++) sum += exp(row[v] - mx);
            for (int v = 0; v < c.vocab_size; v++) {
                double lp = row[v] - mx - log(sum);
                h -= exp(lp) * lp;
            }
            CHECK_NEAR(logp[i], row[tok[b * T + t + 1]] - mx - log(sum), 1e-5);
            CHECK_NEAR(ent[i], h, 1e-5);
        }
    // bad token id is reported
    tok[3] = -1;
    CHECK(qwen_forward(&m, &a, tok, NULL, B, T, 1.0f, logp, NULL, &e) == -1 && strstr(e.msg, "token id -1"));
    free(lg);
    qwen_acts_free(&a);
    qwen_model_free(&m);
}

static void test_exp_fast_accuracy(void) {
    double worst = 0;
    for (int i = 0; i <= 2000000; i++) {
        float x = -87.0f + 175.0f * (float)i / 2000000.0f;
        double ref = exp((double)x);
        worst = test_worse(worst, fabs(exp_fast(x) - ref) / ref);
    }
    printf("  exp_fast max relative error %.2e on [-87, 88]\n", worst);
    CHECK(worst < 3e-7);
    CHECK(exp_fast(-INFINITY) < 1e-37f && exp_fast(-INFINITY) >= 0.0f);
    CHECK(exp_fast(0.0f) == 1.0f);
}

static void test_sampler_filters(void) {
    enum { V = 6 };
    // probabilities 0.4 0.25 0.15 0.1 0.06 0.04
    float p[V] = {0.4f, 0.25f, 0.15f, 0.1f, 0.06f, 0.04f};
    float logits[V];
    for (int i = 0; i < V; i++) logits[i] = logf(p[i]);
    Sampler s;
    Error e;
    CHECK(sampler_init(&s, V, &e) == 0);
    Rng rng;
    rng_seed(&rng, 1);
    struct {
        SamplingParams sp;
        int n_valid;
        double expect[V];  // expected frequencies
    } cases[] = {
        {{1.0f, 0, 1.0f, 0.0f}, V, {0.4, 0.25, 0.15, 0.1, 0.06, 0.04}},
        {{1.0f, 2, 1.0f, 0.0f}, V, {0.4 / 0.65, 0.25 / 0.65, 0, 0, 0, 0}},
        {{1.0f, 0, 0.7f, 0.0f}, V, {0.4 / 0.8, 0.25 / 0.8, 0.15 / 0.8, 0, 0, 0}},  // 0.4+0.25 < 0.7 <= 0.8
        {{1.0f, 0, 0.5f, 0.0f}, V, {0.4 / 0.65, 0.25 / 0.65, 0, 0, 0, 0}},  // 0.4 < 0.5 <= 0.65: as transformers
        {{1.0f, 0, 1.0f, 0.3f}, V, {0.4 / 0.8, 0.25 / 0.8, 0.15 / 0.8, 0, 0, 0}},  // p >= 0.12
        {{1.0f, 3, 0.6f, 0.0f}, V, {0.4 / 0.65, 0.25 / 0.65, 0, 0, 0, 0}},  // top-p on the renormalised top-3
        {{1.0f, 0, 1.0f, 0.0f}, 3, {0.4 / 0.8, 0.25 / 0.8, 0.15 / 0.8, 0, 0, 0}},  // padded ids never drawn
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        int count[V] = {0}, n = 40000;
        for (int i = 0; i < n; i++) count[sampler_sample(&s, logits, V, cases[k].n_valid, &cases[k].sp, &rng, NULL)]++;
        for (int v = 0; v < V; v++)
            CHECK_MSG(fabs(count[v] / (double)n - cases[k].expect[v]) < 0.012, "case %zu token %d: freq %.4f want %.4f",
                      k, v, count[v] / (double)n, cases[k].expect[v]);
    }
    // greedy and its log-prob; temperature scales the reported log-prob
    SamplingParams greedy = {0.0f, 0, 1.0f, 0.0f};
    float lp;
    CHECK(sampler_sample(&s, logits, V, V, &greedy, &rng, &lp) == 0);
    CHECK_NEAR(lp, logf(0.4f), 1e-5);
    SamplingParams hot = {2.0f, 0, 1.0f, 0.0f};
    int t = sampler_sample(&s, logits, V, V, &hot, &rng, &lp);
    double z = 0;
    for (int v = 0; v < V; v++) z += sqrt(p[v]);
    CHECK_NEAR(lp, log(sqrt(p[t]) / z), 1e-5);
    // restricted to 3 valid ids, the reported log-prob is still over all 6 rows
    t = sampler_sample(&s, logits, V, 3, &hot, &rng, &lp);
    CHECK(t < 3);
    CHECK_NEAR(lp, log(sqrt(p[t]) / z), 1e-5);
    SamplingParams bad = {1.0f, 0, 0.0f, 0.0f};
    CHECK(sampling_params_validate(&bad, "cfg", &e) == -1 && strstr(e.msg, "top_p"));
    sampler_free(&s);
}

static void test_generate_deterministic_and_batch_independent(void) {
    QwenConfig c = tiny(ARCH_QWEN3);
    QwenModel m;
    Error e;
    CHECK(qwen_model_init(&m, &c, &e) == 0);
    qwen_model_init_random(&m, 21, 0.5f);
    int p0[] = {1, 5, 9, 2}, p1[] = {7, 7, 3};
    const int *prompts[] = {p0, p1};
    int lens[] = {4, 3};
    int eos[] = {0};
    GenerateParams gp = {{1.0f, 0, 0.95f, 0.0f}, 12, eos, 1, 40, 1234, NULL, NULL, NULL, NULL, 5, NULL, NULL, 0, 0};
    GenSeq a[6], b[6], solo[3];
    CHECK(qwen_generate(&m, prompts, lens, 2, 3, &gp, a, &e) == 0);
    CHECK(qwen_generate(&m, prompts, lens, 2, 3, &gp, b, &e) == 0);
    for (int i = 0; i < 6; i++) {
        CHECK(a[i].n == b[i].n && !memcmp(a[i].tokens, b[i].tokens, sizeof(int) * a[i].n));
        CHECK(a[i].n >= 1 && a[i].n <= 12);
        CHECK(a[i].prompt == i / 3);
        for (int j = 0; j < a[i].n; j++) CHECK(a[i].tokens[j] < 40);
        if (a[i].finish == FINISH_EOS) CHECK(a[i].tokens[a[i].n - 1] == 0);
        else CHECK(a[i].finish == FINISH_LENGTH && a[i].n == 12);
    }
    // the sequences of a step are sampled in parallel: one thread gives the same tokens and log-probs
    int threads = omp_get_max_threads();
    gen_seqs_free(b, 6);
    omp_set_num_threads(1);
    CHECK(qwen_generate(&m, prompts, lens, 2, 3, &gp, b + 0, &e) == 0);
    omp_set_num_threads(threads);
    for (int i = 0; i < 6; i++) {
        CHECK(a[i].n == b[i].n && !memcmp(a[i].tokens, b[i].tokens, sizeof(int) * a[i].n));
        CHECK(!memcmp(a[i].logps, b[i].logps, sizeof(float) * a[i].n));
    }
    gen_seqs_free(b, 6);
    // bf16 matrix products: valid, reproducible sequences (their tokens may differ from fp32's)
    GenerateParams gb = gp;
    gb.matmul_bf16 = 1;
    CHECK(qwen_generate(&m, prompts, lens, 2, 3, &gb, b, &e) == 0);
    GenSeq b2[6];
    CHECK(qwen_generate(&m, prompts, lens, 2, 3, &gb, b2, &e) == 0);
    for (int i = 0; i < 6; i++) {
        CHECK(b[i].n >= 1 && b[i].n <= 12 && b[i].n == b2[i].n);
        CHECK(!memcmp(b[i].tokens, b2[i].tokens, sizeof(int) * b[i].n));
        for (int j = 0; j < b[i].n; j++) CHECK(b[i].tokens[j] < 40 && b[i].logps[j] <= 0);
    }
    gen_seqs_free(b2, 6);
    // prompt 0 alone gives the same sequences as in the batch (seeded per sequence index)
    CHECK(qwen_generate(&m, prompts, lens, 1, 3, &gp, solo, &e) == 0);
    for (int i = 0; i < 3; i++) CHECK(solo[i].n == a[i].n && !memcmp(solo[i].tokens, a[i].tokens, sizeof(int) * a[i].n));
    // greedy generation equals repeated argmax of the full forward; its logps match the forward
    GenerateParams greedy = gp;
    greedy.sampling.temperature = 0;
    greedy.num_eos = 0;
    greedy.n_valid = 0;
    GenSeq g[1];
    CHECK(qwen_generate(&m, prompts, lens, 1, 1, &greedy, g, &e) == 0);
    CHECK(g[0].n == 12 && g[0].finish == FINISH_LENGTH);
    int seq[16];
    memcpy(seq, p0, sizeof p0);
    memcpy(seq + 4, g[0].tokens, sizeof(int) * 12);
    QwenActs act;
    CHECK(qwen_acts_alloc(&act, &c, 1, 16, &e) == 0);
    float logp[15];
    CHECK(qwen_forward(&m, &act, seq, NULL, 1, 16, 1.0f, logp, NULL, &e) == 0);
    for (int j = 0; j < 12; j++) CHECK_NEAR(logp[3 + j], g[0].logps[j], 1e-4);
    float *lg = malloc(sizeof(float) * 16 * c.vocab_size);
    CHECK(qwen_forward_logits(&m, &act, seq, 1, 16, lg, &e) == 0);
    for (int j = 0; j < 12; j++) {
        const float *row = lg + (size_t)(3 + j) * c.vocab_size;
        int best = 0;
        for (int v = 1; v < c.vocab_size; v++)
            if (row[v] > row[best]) best = v;
        CHECK_MSG(best == g[0].tokens[j], "greedy token %d: %d vs argmax %d", j, g[0].tokens[j], best);
    }
    free(lg);
    // sampled at temperature 1.3: the recorded log-probs are the forward's at the same temperature
    GenerateParams hot = gp;
    hot.sampling.temperature = 1.3f;
    hot.sampling.top_p = 1.0f;
    hot.num_eos = 0;
    GenSeq h[1];
    CHECK(qwen_generate(&m, prompts, lens, 1, 1, &hot, h, &e) == 0);
    memcpy(seq + 4, h[0].tokens, sizeof(int) * 12);
    CHECK(qwen_forward(&m, &act, seq, NULL, 1, 16, 1.3f, logp, NULL, &e) == 0);
    for (int j = 0; j < 12; j++) CHECK_NEAR(logp[3 + j], h[0].logps[j], 1e-4);
    gen_seqs_free(h, 1);
    qwen_acts_free(&act);
    // too long for the model's positions is an error
    GenerateParams big = gp;
    big.max_new_tokens = 1000;
    CHECK(qwen_generate(&m, prompts, lens, 1, 1, &big, g + 0, &e) == -1 && strstr(e.msg, "max_position_embeddings"));
    gen_seqs_free(a, 6);
    gen_seqs_free(b, 6);
    gen_seqs_free(solo, 3);
    gen_seqs_free(g, 1);
    qwen_model_free(&m);
}

int main(void) {
    RUN(test_decode_matches_forward_qwen3);
    RUN(test_decode_matches_forward_qwen2);
    RUN(test_decode_bf16_cache_qwen3);
    RUN(test_decode_bf16_matmul_qwen3);
    RUN(test_decode_bf16_matmul_qwen2);
    RUN(test_decode_bf16_cache_and_matmul);
    RUN(test_forward_logp_matches_logits);
    RUN(test_exp_fast_accuracy);
    RUN(test_sampler_filters);
    RUN(test_generate_deterministic_and_batch_independent);
    return test_summary("test_qwen_decode");
}
