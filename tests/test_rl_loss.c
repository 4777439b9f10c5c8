// GRPO/GMPO losses and group-relative advantages: against PyTorch fixtures
// (tools/rl_make_loss_fixtures.py), against finite differences in double, the micro-batch sum
// property, statistics, and bad inputs.
#include <cjson/cJSON.h>

#include "core/json.h"
#include "core/rng.h"
#include "rl/advantage.h"
#include "rl/loss.h"
#include "test.h"

#define FIXTURE "tests/fixtures/rl/loss_fixtures.json"

static cJSON *fixture;
static int B, T, MAXC;
static double logp[64], old_logp[64], ref_logp[64], mask[64], adv[8];

static int read_array(const cJSON *obj, const char *key, double *out, int n) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != n) return -1;
    int i = 0;
    for (const cJSON *v = a->child; v; v = v->next) out[i++] = v->valuedouble;
    return 0;
}

static int load_fixture(void) {
    if (fixture) return 0;
    Error err;
    fixture = json_parse_file(FIXTURE, &err);
    if (!fixture) return -1;
    B = cJSON_GetObjectItem(fixture, "num_seq")->valueint;
    T = cJSON_GetObjectItem(fixture, "max_len")->valueint;
    MAXC = cJSON_GetObjectItem(fixture, "max_completion_length")->valueint;
    if (B * T > 64 || B > 8) return -1;
    if (read_array(fixture, "logp", logp, B * T) || read_array(fixture, "old_logp", old_logp, B * T) ||
        read_array(fixture, "ref_logp", ref_logp, B * T) || read_array(fixture, "mask", mask, B * T) ||
        read_array(fixture, "adv", adv, B))
        return -1;
    return 0;
}

static void case_config(const cJSON *c, LossConfig *cfg) {
    LossType type;
    loss_type_parse(cJSON_GetObjectItem(c, "loss_type")->valuestring, &type, NULL);
    loss_config_default(cfg, type);
    cfg->eps_low = cJSON_GetObjectItem(c, "eps_low")->valuedouble;
    cfg->eps_high = cJSON_GetObjectItem(c, "eps_high")->valuedouble;
    cfg->delta = cJSON_GetObjectItem(c, "delta")->valuedouble;
    cfg->beta = cJSON_GetObjectItem(c, "beta")->valuedouble;
    cfg->max_completion_length = MAXC;
}

static void full_norm(LossNorm *norm) {
    float m[64];
    for (int i = 0; i < B * T; i++) m[i] = (float)mask[i];
    loss_norm_init(norm, MAXC);
    loss_norm_add(norm, m, B, T);
}

static void test_fixture_f64(void) {
    CHECK_MSG(load_fixture() == 0, "cannot read %s", FIXTURE);
    const cJSON *cases = cJSON_GetObjectItem(fixture, "cases");
    CHECK(cJSON_GetArraySize(cases) >= 10);
    for (const cJSON *c = cases->child; c; c = c->next) {
        LossConfig cfg;
        case_config(c, &cfg);
        LossNorm norm;
        full_norm(&norm);
        LossBatchF64 b = {logp, old_logp, cfg.beta != 0 ? ref_logp : NULL, mask, adv, B, T};
        double grad[64], want[64];
        LossStats st;
        loss_stats_init(&st);
        Error err;
        CHECK_MSG(loss_compute_f64(&cfg, &norm, &b, grad, &st, &err) == 0, "%s", err.msg);
        CHECK(read_array(c, "grad", want, B * T) == 0);
        double ref_loss = cJSON_GetObjectItem(c, "loss")->valuedouble;
        // GMPO's reference adds 1e-8 to token counts; everything else is the same expression.
        CHECK_NEAR(st.loss, ref_loss, 1e-7 * (1 + fabs(ref_loss)));
        for (int i = 0; i < B * T; i++) CHECK_NEAR(grad[i], want[i], 1e-7 * (1 + fabs(want[i])));
    }
}

static void test_fixture_float(void) {
    CHECK_MSG(load_fixture() == 0, "cannot read %s", FIXTURE);
    float lp[64], ol[64], rf[64], m[64], a[8], grad[64];
    for (int i = 0; i < B * T; i++) {
        lp[i] = (float)logp[i];
        ol[i] = (float)old_logp[i];
        rf[i] = (float)ref_logp[i];
        m[i] = (float)mask[i];
    }
    for (int i = 0; i < B; i++) a[i] = (float)adv[i];
    for (const cJSON *c = cJSON_GetObjectItem(fixture, "cases")->child; c; c = c->next) {
        LossConfig cfg;
        case_config(c, &cfg);
        LossNorm norm;
        full_norm(&norm);
        LossBatch b = {lp, ol, cfg.beta != 0 ? rf : NULL, m, a, B, T};
        LossStats st;
        loss_stats_init(&st);
        Error err;
        CHECK_MSG(loss_compute(&cfg, &norm, &b, grad, &st, &err) == 0, "%s", err.msg);
        double want[64];
        CHECK(read_array(c, "grad", want, B * T) == 0);
        CHECK_NEAR(st.loss, cJSON_GetObjectItem(c, "loss")->valuedouble, 1e-6);
        for (int i = 0; i < B * T; i++) CHECK_NEAR(grad[i], want[i], 1e-6 * (1 + fabs(want[i])));
    }
}

// Random batch with values away from clip boundaries by construction of continuous draws.
static void random_batch(Rng *rng, int nb, int nt, double *lp, double *ol, double *rf, double *m, double *a) {
    for (int i = 0; i < nb * nt; i++) {
        ol[i] = -0.05 - 3 * rng_uniform_double(rng);
        lp[i] = ol[i] + 0.35 * rng_normal(rng);
        rf[i] = ol[i] + 0.2 * rng_normal(rng);
        m[i] = 0;
    }
    for (int i = 0; i < nb; i++) {
        int len = (int)rng_below(rng, (uint64_t)nt + 1);
        for (int t = 0; t < len; t++) m[i * nt + t] = 1;
        a[i] = rng_normal(rng);
    }
    a[0] = 0;  // a zero-advantage sequence
}

static double loss_value(const LossConfig *cfg, const LossNorm *norm, const LossBatchF64 *b) {
    LossStats st;
    loss_stats_init(&st);
    if (loss_compute_f64(cfg, norm, b, NULL, &st, NULL)) return NAN;
    return st.loss;
}

static void test_finite_differences(void) {
    enum { NB = 5, NT = 9 };
    const char *types[] = {"grpo", "bnpo", "dr_grpo", "dapo", "gmpo"};
    Rng rng;
    rng_seed(&rng, 77);
    for (int trial = 0; trial < 3; trial++)
        for (int k = 0; k < 5; k++) {
            double lp[NB * NT], ol[NB * NT], rf[NB * NT], m[NB * NT], a[NB], grad[NB * NT];
            random_batch(&rng, NB, NT, lp, ol, rf, m, a);
            LossConfig cfg;
            LossType type;
            CHECK(loss_type_parse(types[k], &type, NULL) == 0);
            loss_config_default(&cfg, type);
            cfg.max_completion_length = 12;
            cfg.beta = trial == 0 ? 0 : 0.07;
            if (trial == 2 && type != LOSS_GMPO) cfg.delta = 1.3;
            LossNorm norm = {NB, 0, 12};
            for (int i = 0; i < NB * NT; i++) norm.num_tokens += m[i];
            LossBatchF64 b = {lp, ol, rf, m, a, NB, NT};
            LossStats st;
            loss_stats_init(&st);
            Error err;
            CHECK_MSG(loss_compute_f64(&cfg, &norm, &b, grad, &st, &err) == 0, "%s", err.msg);
            for (int i = 0; i < NB * NT; i++) {
                const double h = 1e-6, x = lp[i];
                lp[i] = x + h;
                double up = loss_value(&cfg, &norm, &b);
                lp[i] = x - h;
                double down = loss_value(&cfg, &norm, &b);
                lp[i] = x;
                double fd = (up - down) / (2 * h);
                CHECK_MSG(fabs(fd - grad[i]) <= 1e-7 + 1e-6 * fabs(fd), "%s trial %d token %d: grad %.10g fd %.10g",
                          types[k], trial, i, grad[i], fd);
            }
        }
}

// Splitting a batch into micro-batches with the whole batch's LossNorm gives the same loss (sum)
// and the same gradient as one pass over the whole batch.
static void test_microbatch_sum(void) {
    enum { NB = 7, NT = 6 };
    Rng rng;
    rng_seed(&rng, 5);
    const char *types[] = {"grpo", "bnpo", "dr_grpo", "dapo", "gmpo"};
    for (int k = 0; k < 5; k++) {
        double lp[NB * NT], ol[NB * NT], rf[NB * NT], m[NB * NT], a[NB], g_full[NB * NT], g_micro[NB * NT];
        random_batch(&rng, NB, NT, lp, ol, rf, m, a);
        float mf[NB * NT];
        for (int i = 0; i < NB * NT; i++) mf[i] = (float)m[i];
        LossConfig cfg;
        LossType type;
        loss_type_parse(types[k], &type, NULL);
        loss_config_default(&cfg, type);
        cfg.beta = 0.02;
        cfg.max_completion_length = NT;
        Error err;
        // Normaliser from the micro-batches' masks added one by one equals the whole batch's.
        LossNorm norm, norm2;
        loss_norm_init(&norm, NT);
        loss_norm_add(&norm, mf, NB, NT);
        loss_norm_init(&norm2, NT);
        loss_norm_add(&norm2, mf, 3, NT);
        loss_norm_add(&norm2, mf + 3 * NT, 4, NT);
        CHECK(norm.num_seqs == norm2.num_seqs && norm.num_tokens == norm2.num_tokens);
        LossBatchF64 full = {lp, ol, rf, m, a, NB, NT};
        LossStats st_full, st_micro;
        loss_stats_init(&st_full);
        loss_stats_init(&st_micro);
        CHECK_MSG(loss_compute_f64(&cfg, &norm, &full, g_full, &st_full, &err) == 0, "%s", err.msg);
        int splits[] = {0, 2, 5, 6, 7};
        for (int s = 0; s < 4; s++) {
            int r0 = splits[s], n = splits[s + 1] - r0;
            LossBatchF64 mb = {lp + r0 * NT, ol + r0 * NT, rf + r0 * NT, m + r0 * NT, a + r0, n, NT};
            LossStats st;
            loss_stats_init(&st);
            CHECK_MSG(loss_compute_f64(&cfg, &norm, &mb, g_micro + r0 * NT, &st, &err) == 0, "%s", err.msg);
            loss_stats_merge(&st_micro, &st);
        }
        CHECK_NEAR(st_micro.loss, st_full.loss, 1e-12);
        CHECK_NEAR(st_micro.kl_sum, st_full.kl_sum, 1e-12);
        CHECK(st_micro.tokens == st_full.tokens && st_micro.clip_low == st_full.clip_low &&
              st_micro.clip_high == st_full.clip_high);
        for (int i = 0; i < NB * NT; i++) CHECK_NEAR(g_micro[i], g_full[i], 1e-15);
    }
}

static void test_stats(void) {
    CHECK_MSG(load_fixture() == 0, "cannot read %s", FIXTURE);
    LossConfig cfg;
    loss_config_default(&cfg, LOSS_DAPO);
    cfg.beta = 0.04;
    LossNorm norm;
    full_norm(&norm);
    LossBatchF64 b = {logp, old_logp, ref_logp, mask, adv, B, T};
    LossStats st;
    loss_stats_init(&st);
    CHECK(loss_compute_f64(&cfg, &norm, &b, NULL, &st, NULL) == 0);
    loss_stats_finish(&st);
    double tokens = 0, low = 0, high = 0, ratio = 0, kl = 0;
    for (int i = 0; i < B; i++)
        for (int t = 0; t < T; t++) {
            if (!mask[i * T + t]) continue;
            double r = exp(logp[i * T + t] - old_logp[i * T + t]), x = ref_logp[i * T + t] - logp[i * T + t];
            tokens++;
            low += r < 0.8 && adv[i] < 0;
            high += r > 1.2 && adv[i] > 0;
            ratio += r;
            kl += exp(x) - x - 1;
        }
    CHECK(st.tokens == tokens && st.seqs == B);
    CHECK(low > 0 && high > 0);  // the fixture exercises both sides
    CHECK_NEAR(st.clip_frac_low, low / tokens, 1e-12);
    CHECK_NEAR(st.clip_frac_high, high / tokens, 1e-12);
    CHECK_NEAR(st.clip_frac, (low + high) / tokens, 1e-12);
    CHECK_NEAR(st.ratio_mean, ratio / tokens, 1e-12);
    CHECK_NEAR(st.kl_mean, kl / tokens, 1e-12);
    CHECK_NEAR(st.policy_loss + st.kl_loss, st.loss, 1e-12);
    CHECK_NEAR(st.kl_loss, 0.04 * kl / tokens, 1e-12);
    // An empty batch has undefined means (NaN, written as null), not a division crash.
    LossStats empty;
    loss_stats_init(&empty);
    loss_stats_finish(&empty);
    CHECK(isnan(empty.clip_frac) && isnan(empty.kl_mean));
}

// GMPO: within the clip range the gradient is the unclipped one; outside, the side matching the
// advantage's sign has zero gradient and the other side keeps it.
static void test_gmpo_sign_aware_clip(void) {
    double lp[4], ol[4] = {-1, -1, -1, -1}, m[4] = {1, 1, 1, 1}, a[1] = {1}, g[4];
    double d[4] = {0.1, 0.6, -0.6, -0.1};
    for (int t = 0; t < 4; t++) lp[t] = ol[t] + d[t];
    LossConfig cfg;
    loss_config_default(&cfg, LOSS_GMPO);
    LossNorm norm = {1, 4, 0};
    LossBatchF64 b = {lp, ol, NULL, m, a, 1, 4};
    LossStats st;
    loss_stats_init(&st);
    CHECK(loss_compute_f64(&cfg, &norm, &b, g, &st, NULL) == 0);
    // A > 0: d = 0.6 clipped to 0.4 (gradient 0); d = -0.6 keeps -0.6 (pessimistic, gradient kept).
    double R = exp((0.1 + 0.4 - 0.6 - 0.1) / 4);
    CHECK_NEAR(st.loss, -R, 1e-12);
    CHECK(g[1] == 0 && g[0] != 0 && g[2] != 0 && g[3] != 0);
    CHECK_NEAR(g[0], -R / 4, 1e-12);
    CHECK(st.clip_high == 1 && st.clip_low == 0);
    a[0] = -1;
    loss_stats_init(&st);
    CHECK(loss_compute_f64(&cfg, &norm, &b, g, &st, NULL) == 0);
    R = exp((0.1 + 0.6 - 0.4 - 0.1) / 4);
    CHECK_NEAR(st.loss, R, 1e-12);
    CHECK(g[2] == 0 && g[1] != 0);
    CHECK(st.clip_low == 1 && st.clip_high == 0);
}

static void test_bad_inputs(void) {
    Error err;
    LossType type;
    CHECK(loss_type_parse("ppo", &type, &err) == -1 && strstr(err.msg, "ppo") && strstr(err.msg, "dapo"));
    LossConfig cfg;
    loss_config_default(&cfg, LOSS_GRPO);
    cfg.delta = 1.1;  // must exceed 1 + eps_high
    CHECK(loss_config_check(&cfg, &err) == -1 && strstr(err.msg, "delta"));
    loss_config_default(&cfg, LOSS_DR_GRPO);
    CHECK(loss_config_check(&cfg, &err) == -1 && strstr(err.msg, "max_completion_length"));
    loss_config_default(&cfg, LOSS_GRPO);
    cfg.eps_low = -0.1;
    CHECK(loss_config_check(&cfg, &err) == -1 && strstr(err.msg, "eps_low"));
    loss_config_default(&cfg, LOSS_GMPO);
    cfg.delta = 2;
    CHECK(loss_config_check(&cfg, &err) == -1 && strstr(err.msg, "GRPO"));

    float lp[4] = {-1, -1, -1, -1}, m[4] = {1, 1, 1, 1}, a[2] = {1, -1}, g[4];
    LossNorm norm;
    loss_norm_init(&norm, 2);
    loss_norm_add(&norm, m, 2, 2);
    loss_config_default(&cfg, LOSS_GRPO);
    cfg.beta = 0.1;
    LossBatch b = {lp, lp, NULL, m, a, 2, 2};
    LossStats st;
    loss_stats_init(&st);
    CHECK(loss_compute(&cfg, &norm, &b, g, &st, &err) == -1 && strstr(err.msg, "ref_logp"));
    cfg.beta = 0;
    b.old_logp = NULL;
    CHECK(loss_compute(&cfg, &norm, &b, g, &st, &err) == -1 && strstr(err.msg, "required"));
    b.old_logp = lp;
    m[1] = -1;
    CHECK(loss_compute(&cfg, &norm, &b, g, &st, &err) == -1 && strstr(err.msg, "mask[1]"));
    m[1] = 1;
    LossNorm small = {1, 2, 2};
    CHECK(loss_compute(&cfg, &norm, &b, g, &st, &err) == 0);
    CHECK(loss_compute(&cfg, &small, &b, g, &st, &err) == -1 && strstr(err.msg, "whole batch"));
    b.num_seq = -1;
    CHECK(loss_compute(&cfg, &norm, &b, g, &st, &err) == -1 && strstr(err.msg, "negative"));
    // At ratio 1 (on-policy, num_iterations = 1) the GRPO gradient is -A / (tokens * seqs).
    b.num_seq = 2;
    loss_stats_init(&st);
    CHECK(loss_compute(&cfg, &norm, &b, g, &st, &err) == 0);
    CHECK_NEAR(g[0], -1.0 / 4, 1e-7);
    CHECK_NEAR(g[3], 1.0 / 4, 1e-7);
    CHECK_NEAR(st.loss, 0, 1e-12);
}

static void test_advantage_fixture(void) {
    CHECK_MSG(load_fixture() == 0, "cannot read %s", FIXTURE);
    const cJSON *fa = cJSON_GetObjectItem(fixture, "advantage");
    int G = cJSON_GetObjectItem(fa, "group_size")->valueint;
    double r[12], want[12];
    CHECK(read_array(fa, "rewards", r, 12) == 0);
    float rf[12], out[12];
    for (int i = 0; i < 12; i++) rf[i] = (float)r[i];
    const char *names[] = {"group", "batch", "none"};
    for (int k = 0; k < 3; k++) {
        AdvantageConfig cfg;
        advantage_config_default(&cfg);
        CHECK(adv_scale_parse(names[k], &cfg.scale, NULL) == 0);
        CHECK(read_array(fa, names[k], want, 12) == 0);
        AdvantageStats st;
        Error err;
        CHECK_MSG(advantage_compute(&cfg, rf, 12 / G, G, out, &st, &err) == 0, "%s", err.msg);
        for (int i = 0; i < 12; i++) CHECK_NEAR(out[i], want[i], 1e-5 * (1 + fabs(want[i])));
        CHECK(st.num_groups == 3 && st.zero_variance_groups == 1);
        for (int i = 8; i < 12; i++) CHECK(out[i] == 0.0f);
        CHECK_NEAR(st.reward_mean, 7.75 / 12, 1e-12);
    }
}

static void test_advantage_cases(void) {
    AdvantageConfig cfg;
    advantage_config_default(&cfg);
    CHECK(cfg.scale == ADV_SCALE_GROUP && cfg.eps == 1e-4);
    float r[4] = {1, 0, 1, 0}, a[4];
    AdvantageStats st;
    Error err;
    CHECK(advantage_compute(&cfg, r, 1, 4, a, &st, &err) == 0);
    double std = sqrt(4 * 0.25 / 3);  // unbiased
    CHECK_NEAR(a[0], 0.5 / (std + 1e-4), 1e-6);
    CHECK_NEAR(a[1], -0.5 / (std + 1e-4), 1e-6);
    CHECK_NEAR(st.group_std_mean, std, 1e-12);
    CHECK(st.zero_variance_groups == 0);
    // 0.1 three times: the mean is not exactly 0.1 in floating point, A must still be exactly 0.
    float same[3] = {0.1f, 0.1f, 0.1f};
    CHECK(advantage_compute(&cfg, same, 1, 3, a, &st, &err) == 0);
    CHECK(a[0] == 0 && a[1] == 0 && a[2] == 0 && st.zero_variance_groups == 1);
    // Errors.
    // Groups of one carry no signal (TRL: std 0, A = 0).
    CHECK(advantage_compute(&cfg, r, 4, 1, a, &st, &err) == 0);
    CHECK(a[0] == 0 && a[1] == 0 && a[2] == 0 && a[3] == 0 && st.zero_variance_groups == 4);
    CHECK(advantage_compute(&cfg, r, 1, 0, a, &st, &err) == -1 && strstr(err.msg, "group_size"));
    r[2] = NAN;
    CHECK(advantage_compute(&cfg, r, 1, 4, a, &st, &err) == -1 && strstr(err.msg, "reward[2]"));
    r[2] = 1;
    CHECK(advantage_compute(&cfg, r, 0, 4, a, &st, &err) == -1);
    AdvScale sc;
    CHECK(adv_scale_parse("rank", &sc, &err) == -1 && strstr(err.msg, "rank"));
    cfg.eps = -1;
    CHECK(advantage_compute(&cfg, r, 1, 4, a, &st, &err) == -1 && strstr(err.msg, "eps"));
    // Truncation masking zeroes whole rows.
    float mask[6] = {1, 1, 1, 1, 1, 0};
    uint8_t trunc[3] = {0, 1, 0};
    CHECK(advantage_mask_truncated(trunc, 3, 2, mask) == 1);
    CHECK(mask[0] == 1 && mask[2] == 0 && mask[3] == 0 && mask[4] == 1);
}

static int parse_cfg(const char *json, int check, LossConfig *loss, AdvantageConfig *adv, int *mt, Error *err) {
    cJSON *o = json_parse_text(json, "test", err);
    if (!o) return -1;
    loss->max_completion_length = 0;
    int rc = loss_config_from_json(o, check, loss, adv, mt, "config.json", err);
    cJSON_Delete(o);
    return rc;
}

static void test_config_json(void) {
    LossConfig loss;
    AdvantageConfig adv;
    int mt = -1;
    Error err;
    CHECK_MSG(parse_cfg("{}", 1, &loss, &adv, &mt, &err) == 0, "%s", err.msg);
    CHECK(loss.type == LOSS_DAPO && loss.eps_low == 0.2 && loss.eps_high == 0.2 && loss.beta == 0 && mt == 0);
    CHECK(adv.scale == ADV_SCALE_GROUP && adv.eps == 1e-4);
    CHECK(parse_cfg("{\"loss_type\": \"gmpo\"}", 1, &loss, &adv, &mt, &err) == 0);
    CHECK(loss.type == LOSS_GMPO && loss.eps_low == 0.4 && loss.eps_high == 0.4);
    CHECK(parse_cfg("{\"loss_type\": \"grpo\", \"epsilon\": 0.1, \"epsilon_high\": 0.28, \"beta\": 0.04, "
                    "\"delta\": 1.5, \"scale_rewards\": \"none\", \"advantage_eps\": 1e-6, "
                    "\"mask_truncated_completions\": true, \"lr\": 1}", 0, &loss, &adv, &mt, &err) == 0);
    CHECK(loss.eps_low == 0.1 && loss.eps_high == 0.28 && loss.beta == 0.04 && loss.delta == 1.5);
    CHECK(adv.scale == ADV_SCALE_NONE && adv.eps == 1e-6 && mt == 1);
    CHECK(parse_cfg("{\"lr\": 1}", 1, &loss, &adv, &mt, &err) == -1 && strstr(err.msg, "unknown key 'lr'"));
    CHECK(parse_cfg("{\"loss_type\": \"ppo\"}", 1, &loss, &adv, &mt, &err) == -1 &&
          strstr(err.msg, "config.json: unknown loss_type 'ppo'"));
    CHECK(parse_cfg("{\"scale_rewards\": \"rank\"}", 1, &loss, &adv, &mt, &err) == -1 && strstr(err.msg, "rank"));
    CHECK(parse_cfg("{\"delta\": 1.1}", 1, &loss, &adv, &mt, &err) == -1 && strstr(err.msg, "delta"));
    CHECK(parse_cfg("{\"beta\": \"x\"}", 1, &loss, &adv, &mt, &err) == -1 && strstr(err.msg, "'beta'"));
}

int main(void) {
    RUN(test_fixture_f64);
    RUN(test_fixture_float);
    RUN(test_finite_differences);
    RUN(test_microbatch_sum);
    RUN(test_stats);
    RUN(test_gmpo_sign_aware_clip);
    RUN(test_bad_inputs);
    RUN(test_advantage_fixture);
    RUN(test_advantage_cases);
    RUN(test_config_json);
    cJSON_Delete(fixture);
    return test_summary("test_rl_loss");
}
