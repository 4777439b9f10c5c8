// Optimizer steps against PyTorch references (tests/fixtures/optim/reference.json, made by
// tools/optim_make_fixtures.py): AdamW is torch.optim.AdamW; Muon / Pion (whole matrix and per
// head, sum and ema momentum, both scale rules) are the published rules written in plain torch.
#include "core/fileio.h"
#include "core/json.h"
#include "optim/optim.h"
#include "test.h"

static const char *FIXTURE = "tests/fixtures/optim/reference.json";

static int read_floats(const cJSON *arr, float *out, int n) {
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) != n) return -1;
    int i = 0;
    for (const cJSON *x = arr->child; x; x = x->next) out[i++] = (float)x->valuedouble;
    return 0;
}

static cJSON *load_fixture(void) {
    Error err;
    cJSON *root = json_parse_file(FIXTURE, &err);
    if (!root) test_skip("%s", err.msg);
    return root;
}

static void test_adamw_matches_torch(void) {
    cJSON *root = load_fixture();
    if (!root) return;
    const cJSON *a = cJSON_GetObjectItem(root, "adamw");
    int rows = cJSON_GetObjectItem(a, "rows")->valueint, cols = cJSON_GetObjectItem(a, "cols")->valueint;
    int n = rows * cols;
    float *W = malloc(n * sizeof(float)), *G = malloc(n * sizeof(float)), *E = malloc(n * sizeof(float));
    CHECK(read_floats(cJSON_GetObjectItem(a, "w0"), W, n) == 0);
    CHECK(read_floats(cJSON_GetObjectItem(a, "expected"), E, n) == 0);
    // Through the optimizer object: a norm-role parameter takes the AdamW group.
    ParamInfo t;
    memset(&t, 0, sizeof t);
    snprintf(t.name, sizeof t.name, "w");
    t.ndim = 2, t.rows = rows, t.cols = cols, t.role = ROLE_EMBEDDING;
    OptimConfig c;
    optimizer_config_default(&c);
    c.kind = OPT_MUON;
    c.lr = 123.0f;  // must not be used: the adamw group has its own lr
    c.adamw.lr = (float)cJSON_GetObjectItem(a, "lr")->valuedouble;
    c.adamw.weight_decay = (float)cJSON_GetObjectItem(a, "weight_decay")->valuedouble;
    c.adamw.eps = (float)cJSON_GetObjectItem(a, "eps")->valuedouble;
    c.adamw.beta1 = (float)cJSON_GetArrayItem(cJSON_GetObjectItem(a, "betas"), 0)->valuedouble;
    c.adamw.beta2 = (float)cJSON_GetArrayItem(cJSON_GetObjectItem(a, "betas"), 1)->valuedouble;
    Optimizer *o;
    Error err;
    CHECK(optimizer_create(&c, &t, 1, n, &o, &err) == 0);
    const cJSON *grads = cJSON_GetObjectItem(a, "grads");
    for (const cJSON *g = grads->child; g; g = g->next) {
        CHECK(read_floats(g, G, n) == 0);
        CHECK(optimizer_step(o, W, G, 1.0f, &err) == 0);
    }
    double worst = 0;
    for (int i = 0; i < n; i++) worst = test_worse(worst, fabs(W[i] - E[i]));
    CHECK_MSG(worst <= 1e-6, "AdamW differs from torch by %g", worst);
    optimizer_free(o);
    free(W), free(G), free(E);
    cJSON_Delete(root);
}

static void test_matrix_cases_match_torch(void) {
    cJSON *root = load_fixture();
    if (!root) return;
    const cJSON *cases = cJSON_GetObjectItem(root, "matrix_cases");
    CHECK(cJSON_GetArraySize(cases) >= 8);
    for (const cJSON *k = cases->child; k; k = k->next) {
        const char *name = cJSON_GetObjectItem(k, "name")->valuestring;
        int rows = cJSON_GetObjectItem(k, "rows")->valueint, cols = cJSON_GetObjectItem(k, "cols")->valueint;
        int n = rows * cols;
        OptimConfig c;
        optimizer_config_default(&c);
        c.kind = strcmp(cJSON_GetObjectItem(k, "optimizer")->valuestring, "muon") ? OPT_PION : OPT_MUON;
        c.kp = cJSON_GetObjectItem(k, "kp")->valueint;
        c.lr = (float)cJSON_GetObjectItem(k, "lr")->valuedouble;
        c.weight_decay = (float)cJSON_GetObjectItem(k, "weight_decay")->valuedouble;
        c.momentum = (float)cJSON_GetObjectItem(k, "momentum")->valuedouble;
        c.nesterov = cJSON_IsTrue(cJSON_GetObjectItem(k, "nesterov"));
        c.momentum_form =
            strcmp(cJSON_GetObjectItem(k, "momentum_form")->valuestring, "ema") ? MOMENTUM_SUM : MOMENTUM_EMA;
        c.scale =
            strcmp(cJSON_GetObjectItem(k, "scale")->valuestring, "original") ? SCALE_MATCH_RMS_ADAMW : SCALE_ORIGINAL;
        c.scale_factor = (float)cJSON_GetObjectItem(k, "pion_scale_factor")->valuedouble;
        const char *heads = cJSON_GetObjectItem(k, "heads")->valuestring;
        ParamInfo t;
        memset(&t, 0, sizeof t);
        snprintf(t.name, sizeof t.name, "%s", name);
        t.ndim = 2, t.rows = rows, t.cols = cols, t.role = ROLE_MATRIX;
        t.heads = !strcmp(heads, "rows") ? HEADS_ROWS : !strcmp(heads, "cols") ? HEADS_COLS : HEADS_NONE;
        t.num_heads = cJSON_GetObjectItem(k, "num_heads")->valueint;
        t.head_dim = cJSON_GetObjectItem(k, "head_dim")->valueint;
        c.per_head = t.heads != HEADS_NONE;
        float *W = malloc(n * sizeof(float)), *G = malloc(n * sizeof(float)), *E = malloc(n * sizeof(float));
        float *W0 = malloc(n * sizeof(float));
        CHECK(read_floats(cJSON_GetObjectItem(k, "w0"), W, n) == 0);
        CHECK(read_floats(cJSON_GetObjectItem(k, "expected"), E, n) == 0);
        memcpy(W0, W, n * sizeof(float));
        Optimizer *o;
        Error err;
        CHECK_MSG(optimizer_create(&c, &t, 1, n, &o, &err) == 0, "%s: %s", name, err.msg);
        for (const cJSON *g = cJSON_GetObjectItem(k, "grads")->child; g; g = g->next) {
            CHECK(read_floats(g, G, n) == 0);
            CHECK(optimizer_step(o, W, G, 1.0f, &err) == 0);
        }
        // Compare the accumulated change relative to its size (fp32 GEMM order differs from torch).
        double worst = 0, size = 0;
        for (int i = 0; i < n; i++) {
            worst = test_worse(worst, fabs(W[i] - E[i]));
            size = fmax(size, fabs(E[i] - W0[i]));
        }
        CHECK_MSG(worst <= 1e-5 * size + 1e-7, "%s: differs from torch by %g (change size %g)", name, worst, size);
        optimizer_free(o);
        free(W), free(G), free(E), free(W0);
    }
    cJSON_Delete(root);
}

int main(void) {
    RUN(test_adamw_matches_torch);
    RUN(test_matrix_cases_match_torch);
    return test_summary("test_optim_reference");
}
