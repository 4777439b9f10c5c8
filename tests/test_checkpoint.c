// Checkpoint directories: config.json parsing, loading the PyTorch-made fixtures (single file,
// sharded, bf16), save + reload, and every way a model directory can be wrong.
#include "test.h"

#include <sys/stat.h>
#include <sys/wait.h>

#include "core/fileio.h"
#include "core/safetensors.h"
#include "policy/qwen.h"
#include "policy/qwen_checkpoint.h"

#define QWEN3_DIR "tests/fixtures/qwen3-tiny"
#define QWEN2_DIR "tests/fixtures/qwen2-tiny"
#define QWEN3_BF16_DIR "tests/fixtures/qwen3-tiny-bf16"

static char tmp_root[64];

static const char *tmp_dir(const char *name) {
    static char buf[8][512];
    static int k;
    char *out = buf[k++ % 8];
    snprintf(out, 512, "%s/%s", tmp_root, name);
    return out;
}

static int write_text(const char *dir, const char *name, const char *text) {
    char path[1024];
    Error e;
    if (dir_create(dir, &e)) return -1;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return file_write_atomic(path, text, strlen(text), &e);
}

static int copy_file(const char *src, const char *dst) {
    Error e;
    size_t n;
    char *d = file_read_all(src, &n, &e);
    if (!d) return -1;
    int rc = file_write_atomic(dst, d, n, &e);
    free(d);
    return rc;
}

// How to alter the fixture's tensors when writing a broken copy.
typedef struct {
    const char *skip;         // leave this tensor out
    const char *nan_in;       // put a NaN into this tensor
    const char *as_i32;       // store this tensor as I32
    const char *shorten;      // drop the last element of this (1-D) tensor
    const char *extra;        // add this tensor (a copy of the embeddings)
    int extra_perturb;        // change the extra tensor's first element
    const char *only_prefix;  // keep only tensors whose name starts with this ... (for shards)
    int invert_prefix;        // ... or only those that do not
} Variant;

// Writes dir/model.safetensors from src_dir/model.safetensors altered by v; config.json is copied.
static int write_variant(const char *src_dir, const char *dir, const char *file, const Variant *v) {
    Error e;
    char path[1024];
    snprintf(path, sizeof path, "%s/model.safetensors", src_dir);
    StFile f;
    if (st_open(path, &f, &e)) return -1;
    if (dir_create(dir, &e)) return -1;
    StWriter *w = st_writer_new();
    float **bufs = calloc(f.num_tensors + 1, sizeof(float *));
    int rc = 0;
    for (int i = 0; i < f.num_tensors && !rc; i++) {
        const StTensor *t = &f.tensors[i];
        if (v->skip && !strcmp(t->name, v->skip)) continue;
        if (v->only_prefix && (strncmp(t->name, v->only_prefix, strlen(v->only_prefix)) == 0) == v->invert_prefix)
            continue;
        bufs[i] = malloc(sizeof(float) * (t->numel + 1));
        rc = st_read_f32(&f, t, bufs[i], 0, &e);
        if (rc) break;
        int64_t shape[8];
        memcpy(shape, t->shape, sizeof shape);
        if (v->nan_in && !strcmp(t->name, v->nan_in)) bufs[i][t->numel / 2] = NAN;
        if (v->shorten && !strcmp(t->name, v->shorten)) shape[0]--;
        if (v->as_i32 && !strcmp(t->name, v->as_i32))
            rc = st_writer_add_i32(w, t->name, t->ndim, shape, (const int32_t *)bufs[i], &e);
        else
            rc = st_writer_add_f32(w, t->name, ST_F32, t->ndim, shape, bufs[i], &e);
    }
    const StTensor *emb = st_find(&f, "model.embed_tokens.weight");
    if (!rc && v->extra && emb) {
        bufs[f.num_tensors] = malloc(sizeof(float) * emb->numel);
        rc = st_read_f32(&f, emb, bufs[f.num_tensors], 0, &e);
        if (v->extra_perturb) bufs[f.num_tensors][0] += 1.0f;
        if (!rc) rc = st_writer_add_f32(w, v->extra, ST_F32, emb->ndim, emb->shape, bufs[f.num_tensors], &e);
    }
    snprintf(path, sizeof path, "%s/%s", dir, file ? file : "model.safetensors");
    if (!rc) rc = st_writer_save(w, path, &e);
    if (rc) fprintf(stderr, "write_variant: %s\n", e.msg);
    st_writer_free(w);
    for (int i = 0; i <= f.num_tensors; i++) free(bufs[i]);
    free(bufs);
    st_close(&f);
    char src_cfg[1024], dst_cfg[1024];
    snprintf(src_cfg, sizeof src_cfg, "%s/config.json", src_dir);
    snprintf(dst_cfg, sizeof dst_cfg, "%s/config.json", dir);
    if (!rc) rc = copy_file(src_cfg, dst_cfg);
    return rc;
}

// Loads dir expecting failure; returns the message (static) or NULL when it loaded.
static const char *load_error(const char *dir) {
    static Error e;
    QwenModel m;
    if (qwen_model_load(dir, &m, &e) == 0) {
        qwen_model_free(&m);
        return NULL;
    }
    return e.msg;
}

static int models_equal(const QwenModel *a, const QwenModel *b) {
    return a->num_params == b->num_params && memcmp(a->params, b->params, a->num_params * sizeof(float)) == 0;
}

static int configs_equal(const QwenConfig *a, const QwenConfig *b) {
    return a->arch == b->arch && a->vocab_size == b->vocab_size && a->hidden_size == b->hidden_size &&
           a->intermediate_size == b->intermediate_size && a->num_layers == b->num_layers &&
           a->num_heads == b->num_heads && a->num_kv_heads == b->num_kv_heads && a->head_dim == b->head_dim &&
           a->max_position_embeddings == b->max_position_embeddings && a->rms_norm_eps == b->rms_norm_eps &&
           a->rope_theta == b->rope_theta && a->tie_word_embeddings == b->tie_word_embeddings &&
           a->attention_bias == b->attention_bias && a->qk_norm == b->qk_norm;
}

// Every table tensor of m equals the same-named tensor in dir/model.safetensors, bit for bit.
static int matches_file(const QwenModel *m, const char *dir) {
    char path[1024];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    StFile f;
    Error e;
    if (st_open(path, &f, &e)) return 0;
    int n = qwen_num_tensors(&m->cfg), ok = 1;
    ParamInfo *t = malloc(sizeof(ParamInfo) * n);
    qwen_param_table(&m->cfg, t);
    for (int i = 0; i < n && ok; i++) {
        const StTensor *st = st_find(&f, t[i].name);
        float *buf = st ? malloc(sizeof(float) * st->numel) : NULL;
        ok = st && st->numel == param_numel(&t[i]) && st_read_f32(&f, st, buf, 1, &e) == 0 &&
             memcmp(buf, m->params + t[i].offset, st->numel * sizeof(float)) == 0;
        free(buf);
    }
    free(t);
    st_close(&f);
    return ok;
}

static int have_fixtures(void) {
    if (file_exists(QWEN3_DIR "/model.safetensors") && file_exists(QWEN2_DIR "/model.safetensors")) return 1;
    test_skip("fixtures missing (run /usr/bin/python3 tools/make_qwen_fixtures.py)");
    return 0;
}

// ---------------------------------------------------------------------------------------------

static void test_load_qwen3_fixture(void) {
    if (!have_fixtures()) return;
    QwenModel m;
    QwenCheckpointInfo info;
    Error e;
    CHECK_MSG(qwen_model_load_ex(QWEN3_DIR, &m, &info, &e) == 0, "%s", e.msg);
    QwenConfig *c = &m.cfg;
    CHECK(c->arch == ARCH_QWEN3 && c->vocab_size == 128 && c->hidden_size == 64 && c->intermediate_size == 96);
    CHECK(c->num_layers == 2 && c->num_heads == 4 && c->num_kv_heads == 2 && c->head_dim == 16);
    CHECK(c->rope_theta == 1e6 && c->rms_norm_eps == 1e-6f && c->max_position_embeddings == 256);
    CHECK(c->tie_word_embeddings && c->qk_norm && !c->attention_bias && !strcmp(c->torch_dtype, "float32"));
    CHECK(m.w.lm_head == m.w.embed && m.w.bq == NULL && m.w.q_norm != NULL);
    CHECK(m.num_params == 70016);
    CHECK(!info.sharded && info.num_files == 1 && info.num_tensors == qwen_num_tensors(c));
    CHECK(info.tensors_by_dtype[ST_F32] == (size_t)qwen_num_tensors(c) && info.bytes_by_dtype[ST_F32] == 70016 * 4);
    CHECK(matches_file(&m, QWEN3_DIR));
    // Norm weights are 1 + 0.1 * noise in the fixture: not all ones.
    CHECK(m.w.q_norm[0] != 1.0f && fabsf(m.w.q_norm[0] - 1.0f) < 0.6f);
    qwen_model_free(&m);
}

static void test_load_qwen2_fixture(void) {
    if (!have_fixtures()) return;
    QwenModel m;
    Error e;
    CHECK_MSG(qwen_model_load(QWEN2_DIR, &m, &e) == 0, "%s", e.msg);
    QwenConfig *c = &m.cfg;
    CHECK(c->arch == ARCH_QWEN2 && c->head_dim == 16 && c->rope_theta == 10000.0);
    CHECK(!c->tie_word_embeddings && !c->qk_norm && c->attention_bias);
    CHECK(m.w.lm_head != m.w.embed && m.w.bq != NULL && m.w.q_norm == NULL);
    CHECK(m.num_params == 78400);
    CHECK(matches_file(&m, QWEN2_DIR));
    CHECK(m.w.bq[0] != 0.0f);
    qwen_model_free(&m);
}

// Hq * head_dim != hidden_size, 4 query heads per kv head, untied Qwen3.
static void test_load_qwen3_wide_fixture(void) {
    if (!have_fixtures()) return;
    if (!file_exists("tests/fixtures/qwen3-tiny-wide/model.safetensors")) return test_skip("wide fixture missing");
    QwenModel m;
    Error e;
    CHECK_MSG(qwen_model_load("tests/fixtures/qwen3-tiny-wide", &m, &e) == 0, "%s", e.msg);
    QwenConfig *c = &m.cfg;
    CHECK(c->arch == ARCH_QWEN3 && c->hidden_size == 32 && c->num_heads * c->head_dim == 64 && c->num_kv_heads == 1);
    CHECK(!c->tie_word_embeddings && m.w.lm_head != m.w.embed && c->qk_norm && c->rope_theta == 5e6);
    CHECK(matches_file(&m, "tests/fixtures/qwen3-tiny-wide"));
    qwen_model_free(&m);
}

// The bf16 copy was rounded by torch; our round-to-nearest-even must give the same bits.
static void test_load_bf16_matches_rounding(void) {
    if (!have_fixtures()) return;
    if (!file_exists(QWEN3_BF16_DIR "/model.safetensors")) return test_skip("bf16 fixture missing");
    QwenModel a, b;
    QwenCheckpointInfo info;
    Error e;
    CHECK(qwen_model_load(QWEN3_DIR, &a, &e) == 0);
    CHECK_MSG(qwen_model_load_ex(QWEN3_BF16_DIR, &b, &info, &e) == 0, "%s", e.msg);
    CHECK(!strcmp(b.cfg.torch_dtype, "bfloat16"));
    CHECK(info.tensors_by_dtype[ST_BF16] == (size_t)qwen_num_tensors(&b.cfg) && info.tensors_by_dtype[ST_F32] == 0);
    CHECK(a.num_params == b.num_params);
    for (size_t i = 0; i < a.num_params; i++)
        CHECK_MSG(st_bf16_to_f32(st_f32_to_bf16(a.params[i])) == b.params[i], "param %zu: %.9g -> %.9g vs %.9g", i,
                  a.params[i], st_bf16_to_f32(st_f32_to_bf16(a.params[i])), b.params[i]);
    qwen_model_free(&a);
    qwen_model_free(&b);
}

static void test_save_reload_bit_exact(void) {
    if (!have_fixtures()) return;
    const char *dirs[] = {QWEN3_DIR, QWEN2_DIR};
    for (int k = 0; k < 2; k++) {
        QwenModel m, r;
        Error e;
        CHECK(qwen_model_load(dirs[k], &m, &e) == 0);
        const char *out = tmp_dir(k ? "saved2" : "saved3");
        CHECK_MSG(qwen_model_save(out, &m, ST_F32, &e) == 0, "%s", e.msg);
        CHECK_MSG(qwen_model_load(out, &r, &e) == 0, "%s", e.msg);
        CHECK(configs_equal(&m.cfg, &r.cfg));
        CHECK(models_equal(&m, &r));
        // Tied models are saved without lm_head.weight, as transformers does.
        char path[1024];
        snprintf(path, sizeof path, "%s/model.safetensors", out);
        StFile f;
        CHECK(st_open(path, &f, &e) == 0);
        CHECK((st_find(&f, "lm_head.weight") != NULL) == !m.cfg.tie_word_embeddings);
        CHECK(f.num_tensors == qwen_num_tensors(&m.cfg));
        st_close(&f);
        qwen_model_free(&r);

        // BF16 save: values are the rounded ones and config.json says bfloat16.
        const char *out16 = tmp_dir(k ? "saved2-bf16" : "saved3-bf16");
        CHECK(qwen_model_save(out16, &m, ST_BF16, &e) == 0);
        CHECK_MSG(qwen_model_load(out16, &r, &e) == 0, "%s", e.msg);
        CHECK(!strcmp(r.cfg.torch_dtype, "bfloat16"));
        for (size_t i = 0; i < m.num_params; i++)
            CHECK(r.params[i] == st_bf16_to_f32(st_f32_to_bf16(m.params[i])));
        qwen_model_free(&r);
        // F16 too; an integer dtype is refused.
        CHECK(qwen_model_save(tmp_dir("saved-f16"), &m, ST_F16, &e) == 0);
        CHECK(qwen_model_load(tmp_dir("saved-f16"), &r, &e) == 0 && !strcmp(r.cfg.torch_dtype, "float16"));
        for (size_t i = 0; i < m.num_params; i++) CHECK(r.params[i] == st_f16_to_f32(st_f32_to_f16(m.params[i])));
        qwen_model_free(&r);
        CHECK(qwen_model_save(tmp_dir("saved-i32"), &m, ST_I32, &e) == -1 && strstr(e.msg, "I32"));
        qwen_model_free(&m);
    }
}

static void test_sharded_index(void) {
    if (!have_fixtures()) return;
    const char *dir = tmp_dir("sharded");
    // Shard 1: embeddings and layer 0; shard 2: everything else.
    Variant a = {.only_prefix = "model.layers.1.", .invert_prefix = 1};
    Variant b = {.only_prefix = "model.layers.1."};
    CHECK(write_variant(QWEN2_DIR, dir, "model-00001-of-00002.safetensors", &a) == 0);
    CHECK(write_variant(QWEN2_DIR, dir, "model-00002-of-00002.safetensors", &b) == 0);
    // The index, built from the shards' own headers.
    char text[65536];
    size_t at = 0;
    at += snprintf(text + at, sizeof text - at, "{\"metadata\": {\"total_size\": 313600}, \"weight_map\": {");
    const char *shards[] = {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"};
    int first = 1;
    for (int s = 0; s < 2; s++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, shards[s]);
        StFile f;
        Error e;
        CHECK(st_open(path, &f, &e) == 0);
        CHECK(f.num_tensors > 0);
        for (int i = 0; i < f.num_tensors; i++) {
            at += snprintf(text + at, sizeof text - at, "%s\"%s\": \"%s\"", first ? "" : ", ", f.tensors[i].name,
                           shards[s]);
            first = 0;
        }
        st_close(&f);
    }
    snprintf(text + at, sizeof text - at, "}}\n");
    CHECK(write_text(dir, "model.safetensors.index.json", text) == 0);
    QwenModel m, ref;
    QwenCheckpointInfo info;
    Error e;
    CHECK_MSG(qwen_model_load_ex(dir, &m, &info, &e) == 0, "%s", e.msg);
    CHECK(info.sharded && info.num_files == 2);
    CHECK(qwen_model_load(QWEN2_DIR, &ref, &e) == 0);
    CHECK(models_equal(&m, &ref));
    qwen_model_free(&m);
    qwen_model_free(&ref);

    // An index that puts a tensor in the wrong shard, or points outside the directory.
    const char *bad = tmp_dir("sharded-bad");
    CHECK(write_variant(QWEN2_DIR, bad, "model-00001-of-00002.safetensors", &a) == 0);
    CHECK(write_variant(QWEN2_DIR, bad, "model-00002-of-00002.safetensors", &b) == 0);
    CHECK(write_text(bad, "model.safetensors.index.json",
                     "{\"weight_map\": {\"model.norm.weight\": \"model-00001-of-00002.safetensors\", "
                     "\"model.embed_tokens.weight\": \"model-00002-of-00002.safetensors\"}}") == 0);
    const char *msg = load_error(bad);
    CHECK(msg && strstr(msg, "index.json puts tensor"));
    CHECK(write_text(bad, "model.safetensors.index.json", "{\"weight_map\": {\"model.norm.weight\": \"../x\"}}") == 0);
    msg = load_error(bad);
    CHECK(msg && strstr(msg, "inside the model directory"));
    CHECK(write_text(bad, "model.safetensors.index.json", "{\"weight_map\": {\"model.norm.weight\": \"gone.safetensors\"}}") == 0);
    msg = load_error(bad);
    CHECK(msg && strstr(msg, "gone.safetensors"));
    CHECK(write_text(bad, "model.safetensors.index.json", "{\"metadata\": {}}") == 0);
    msg = load_error(bad);
    CHECK(msg && strstr(msg, "weight_map"));
    // Index covering only shard 1 while shard 2 holds the rest: layer 1 is missing.
    CHECK(write_text(bad, "model.safetensors.index.json",
                     "{\"weight_map\": {\"model.norm.weight\": \"model-00001-of-00002.safetensors\"}}") == 0);
    msg = load_error(bad);
    CHECK(msg && strstr(msg, "missing tensor 'model.layers.1."));
}

static void test_bad_tensors(void) {
    if (!have_fixtures()) return;
    const char *msg;
    Variant v = {.skip = "model.layers.1.mlp.up_proj.weight"};
    CHECK(write_variant(QWEN3_DIR, tmp_dir("missing"), NULL, &v) == 0);
    msg = load_error(tmp_dir("missing"));
    CHECK(msg && strstr(msg, "missing tensor 'model.layers.1.mlp.up_proj.weight'"));

    Variant s = {.shorten = "model.layers.0.self_attn.k_norm.weight"};
    CHECK(write_variant(QWEN3_DIR, tmp_dir("shape"), NULL, &s) == 0);
    msg = load_error(tmp_dir("shape"));
    CHECK(msg && strstr(msg, "'model.layers.0.self_attn.k_norm.weight' has shape [15] but config.json implies [16]"));

    Variant d = {.as_i32 = "model.norm.weight"};
    CHECK(write_variant(QWEN3_DIR, tmp_dir("dtype"), NULL, &d) == 0);
    msg = load_error(tmp_dir("dtype"));
    CHECK(msg && strstr(msg, "'model.norm.weight' has dtype I32"));

    Variant n = {.nan_in = "model.layers.1.self_attn.o_proj.weight"};
    CHECK(write_variant(QWEN3_DIR, tmp_dir("nan"), NULL, &n) == 0);
    msg = load_error(tmp_dir("nan"));
    CHECK(msg && strstr(msg, "'model.layers.1.self_attn.o_proj.weight'") && strstr(msg, "NaN") &&
          strstr(msg, "nan/model.safetensors"));

    Variant x = {.extra = "model.layers.0.mlp.extra_proj.weight"};
    CHECK(write_variant(QWEN3_DIR, tmp_dir("extra"), NULL, &x) == 0);
    msg = load_error(tmp_dir("extra"));
    CHECK(msg && strstr(msg, "unexpected tensor 'model.layers.0.mlp.extra_proj.weight'") &&
          strstr(msg, "Qwen3ForCausalLM"));

    // A tied model that also carries lm_head.weight: ignored (the embeddings win, as in transformers),
    // with a flag when the copy differs.
    Variant t = {.extra = "lm_head.weight"};
    CHECK(write_variant(QWEN3_DIR, tmp_dir("tied-copy"), NULL, &t) == 0);
    QwenModel m;
    QwenCheckpointInfo info;
    Error e;
    CHECK_MSG(qwen_model_load_ex(tmp_dir("tied-copy"), &m, &info, &e) == 0, "%s", e.msg);
    CHECK(info.ignored_lm_head == 1 && info.ignored_lm_head_differs == 0);
    qwen_model_free(&m);
    Variant t2 = {.extra = "lm_head.weight", .extra_perturb = 1};
    CHECK(write_variant(QWEN3_DIR, tmp_dir("tied-diff"), NULL, &t2) == 0);
    QwenModel ref;
    CHECK_MSG(qwen_model_load_ex(tmp_dir("tied-diff"), &m, &info, &e) == 0, "%s", e.msg);
    CHECK(info.ignored_lm_head == 1 && info.ignored_lm_head_differs == 1);
    CHECK(qwen_model_load(QWEN3_DIR, &ref, &e) == 0);
    CHECK(models_equal(&m, &ref));
    qwen_model_free(&m);
    qwen_model_free(&ref);

    // Rotary buffers some exporters keep are ignored.
    Variant r = {.extra = "model.layers.0.self_attn.rotary_emb.inv_freq"};
    CHECK(write_variant(QWEN3_DIR, tmp_dir("invfreq"), NULL, &r) == 0);
    CHECK_MSG(qwen_model_load_ex(tmp_dir("invfreq"), &m, &info, &e) == 0, "%s", e.msg);
    CHECK(info.ignored_buffers == 1);
    qwen_model_free(&m);

    // Untied model without its lm_head.
    Variant u = {.skip = "lm_head.weight"};
    CHECK(write_variant(QWEN2_DIR, tmp_dir("no-head"), NULL, &u) == 0);
    msg = load_error(tmp_dir("no-head"));
    CHECK(msg && strstr(msg, "missing tensor 'lm_head.weight'"));
}

static void test_bad_directories(void) {
    if (!have_fixtures()) return;
    const char *msg = load_error(tmp_dir("does-not-exist"));
    CHECK(msg && strstr(msg, "no such model directory"));
    const char *d = tmp_dir("config-only");
    char src[256];
    snprintf(src, sizeof src, "%s/config.json", QWEN3_DIR);
    CHECK(write_text(d, "x", "") == 0);
    msg = load_error(d);
    CHECK(msg && strstr(msg, "no config.json"));
    char dst[1024];
    snprintf(dst, sizeof dst, "%s/config.json", d);
    CHECK(copy_file(src, dst) == 0);
    msg = load_error(d);
    CHECK(msg && strstr(msg, "no model.safetensors"));
    CHECK(write_text(d, "pytorch_model.bin", "x") == 0);
    msg = load_error(d);
    CHECK(msg && strstr(msg, "pytorch_model.bin is not supported"));
    // A safetensors file that is not one.
    CHECK(write_text(d, "model.safetensors", "this is not a safetensors file") == 0);
    msg = load_error(d);
    CHECK(msg && strstr(msg, "model.safetensors") && strstr(msg, "header"));
}

// config.json variants, each starting from the Qwen3 fixture's text with one change.
static const char *config_error(const char *json) {
    static Error e;
    cJSON *j = cJSON_Parse(json);
    if (!j) return "unparsable test input";
    QwenConfig c;
    int rc = qwen_config_parse(j, "config.json", &c, &e);
    cJSON_Delete(j);
    return rc ? e.msg : NULL;
}

#define BASE3                                                                                               \
    "\"vocab_size\": 128, \"hidden_size\": 64, \"intermediate_size\": 96, \"num_hidden_layers\": 2, "       \
    "\"num_attention_heads\": 4, \"num_key_value_heads\": 2, \"head_dim\": 16"

static void test_config_errors(void) {
    const char *m;
    CHECK(config_error("{\"architectures\": [\"Qwen3ForCausalLM\"], " BASE3 "}") == NULL);
    m = config_error("{\"architectures\": [\"LlamaForCausalLM\"], " BASE3 "}");
    CHECK(m && strstr(m, "unsupported architecture 'LlamaForCausalLM'"));
    m = config_error("{\"model_type\": \"qwen3_moe\", " BASE3 "}");
    CHECK(m && strstr(m, "unsupported model_type 'qwen3_moe'"));
    m = config_error("{" BASE3 "}");
    CHECK(m && strstr(m, "architectures"));
    m = config_error("{\"architectures\": [\"Qwen2ForCausalLM\"], \"model_type\": \"qwen3\", " BASE3 "}");
    CHECK(m && strstr(m, "contradicts"));
    m = config_error("{\"model_type\": \"qwen3\", \"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4}, " BASE3 "}");
    CHECK(m && strstr(m, "rope_scaling type 'yarn' is not supported"));
    m = config_error("{\"model_type\": \"qwen3\", \"rope_scaling\": {\"type\": \"linear\", \"factor\": 2}, " BASE3 "}");
    CHECK(m && strstr(m, "'linear'"));
    m = config_error("{\"model_type\": \"qwen2\", \"use_sliding_window\": true, " BASE3 "}");
    CHECK(m && strstr(m, "use_sliding_window"));
    m = config_error("{\"model_type\": \"qwen3\", \"layer_types\": [\"full_attention\", \"sliding_attention\"], " BASE3 "}");
    CHECK(m && strstr(m, "sliding_attention"));
    m = config_error("{\"model_type\": \"qwen3\", \"hidden_act\": \"gelu\", " BASE3 "}");
    CHECK(m && strstr(m, "hidden_act 'gelu'"));
    m = config_error("{\"model_type\": \"qwen3\", \"attention_bias\": true, " BASE3 "}");
    CHECK(m && strstr(m, "attention_bias"));
    m = config_error("{\"model_type\": \"qwen3\", \"vocab_size\": 128}");
    CHECK(m && strstr(m, "missing required key 'hidden_size'"));
    m = config_error("{\"model_type\": \"qwen3\", \"hidden_size\": \"64\", \"vocab_size\": 128, "
                     "\"intermediate_size\": 96, \"num_hidden_layers\": 2, \"num_attention_heads\": 4}");
    CHECK(m && strstr(m, "'hidden_size' must be an integer"));
    m = config_error("{\"model_type\": \"qwen3\", \"vocab_size\": 128, \"hidden_size\": 64, \"intermediate_size\": 96, "
                     "\"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"num_key_value_heads\": 3, \"head_dim\": 16}");
    CHECK(m && strstr(m, "num_key_value_heads"));
    m = config_error("{\"model_type\": \"qwen3\", \"tie_word_embeddings\": 1, " BASE3 "}");
    CHECK(m && strstr(m, "tie_word_embeddings"));
    m = config_error("{\"model_type\": \"qwen3\", \"quantization_config\": {\"quant_method\": \"awq\"}, " BASE3 "}");
    CHECK(m && strstr(m, "quantized") && strstr(m, "awq"));
    CHECK(config_error("{\"model_type\": \"qwen3\", \"quantization_config\": null, " BASE3 "}") == NULL);
    m = config_error("[1, 2]");
    CHECK(m && strstr(m, "object"));

    // From a file: invalid JSON names the file and line.
    const char *d = tmp_dir("badjson");
    CHECK(write_text(d, "config.json", "{\n\"model_type\": \"qwen3\",\n}") == 0);
    QwenConfig c;
    Error e;
    char path[1024];
    snprintf(path, sizeof path, "%s/config.json", d);
    CHECK(qwen_config_load(path, &c, &e) == -1 && strstr(e.msg, "config.json") && strstr(e.msg, "invalid JSON"));
    const char *msg = load_error(d);
    CHECK(msg && strstr(msg, "invalid JSON"));
}

static void test_config_defaults_and_round_trip(void) {
    Error e;
    QwenConfig c;
    // Qwen3 without head_dim: transformers' Qwen3Config default is 128, not hidden / heads.
    cJSON *j = cJSON_Parse("{\"architectures\": [\"Qwen3ForCausalLM\"], \"vocab_size\": 10, \"hidden_size\": 512, "
                           "\"intermediate_size\": 8, \"num_hidden_layers\": 1, \"num_attention_heads\": 8, "
                           "\"dtype\": \"bfloat16\", \"rope_parameters\": {\"rope_type\": \"default\", \"rope_theta\": 5000000}, "
                           "\"bos_token_id\": 1, \"rope_scaling\": null, \"sliding_window\": null}");
    CHECK(j);
    CHECK_MSG(qwen_config_parse(j, "cfg", &c, &e) == 0, "%s", e.msg);
    cJSON_Delete(j);
    CHECK(c.head_dim == 128 && c.num_kv_heads == 8 && c.rope_theta == 5e6 && !strcmp(c.torch_dtype, "bfloat16"));
    CHECK(c.rms_norm_eps == 1e-6f && c.max_position_embeddings == 32768 && !c.tie_word_embeddings && c.qk_norm);
    // Qwen2: head_dim = hidden / heads, biases always on.
    j = cJSON_Parse("{\"model_type\": \"qwen2\", \"vocab_size\": 10, \"hidden_size\": 512, \"intermediate_size\": 8, "
                    "\"num_hidden_layers\": 1, \"num_attention_heads\": 8, \"num_key_value_heads\": 2, "
                    "\"rms_norm_eps\": 1e-5, \"rope_theta\": 1000000.0, \"tie_word_embeddings\": true}");
    CHECK(qwen_config_parse(j, "cfg", &c, &e) == 0);
    cJSON_Delete(j);
    CHECK(c.arch == ARCH_QWEN2 && c.head_dim == 64 && c.attention_bias && !c.qk_norm && c.tie_word_embeddings);
    CHECK(c.rms_norm_eps == 1e-5f && c.rope_theta == 1e6);
    // to_json -> parse gives the same config, and eps prints as the short decimal.
    cJSON *out = qwen_config_to_json(&c);
    CHECK(out);
    char *text = cJSON_PrintUnformatted(out);
    CHECK(text && strstr(text, "\"rms_norm_eps\":1e-05") && strstr(text, "\"Qwen2ForCausalLM\""));
    QwenConfig back;
    CHECK_MSG(qwen_config_parse(out, "roundtrip", &back, &e) == 0, "%s", e.msg);
    CHECK(configs_equal(&c, &back));
    cJSON_free(text);
    cJSON_Delete(out);
}

static void test_config_only_and_memory_estimate(void) {
    if (!have_fixtures()) return;
    QwenConfig c;
    QwenCheckpointInfo info;
    Error e;
    CHECK_MSG(qwen_model_load_config_only(QWEN2_DIR, &c, &info, &e) == 0, "%s", e.msg);
    CHECK(c.arch == ARCH_QWEN2 && info.num_files == 1 && info.bytes_by_dtype[ST_F32] == 78400 * 4);
    Variant v = {.skip = "model.norm.weight"};
    CHECK(write_variant(QWEN2_DIR, tmp_dir("cfgonly-missing"), NULL, &v) == 0);
    CHECK(qwen_model_load_config_only(tmp_dir("cfgonly-missing"), &c, &info, &e) == -1 &&
          strstr(e.msg, "missing tensor 'model.norm.weight'"));

    // Qwen3-1.7B's shape: 1.72B parameters with tied embeddings (1.41B non-embedding).
    QwenConfig q = {.arch = ARCH_QWEN3, .vocab_size = 151936, .hidden_size = 2048, .intermediate_size = 6144,
                    .num_layers = 28, .num_heads = 16, .num_kv_heads = 8, .head_dim = 128,
                    .max_position_embeddings = 40960, .rms_norm_eps = 1e-6f, .rope_theta = 1e6,
                    .tie_word_embeddings = 1, .qk_norm = 1};
    QwenMemoryEstimate est;
    size_t train = qwen_memory_estimate(&q, 1000, &est);
    CHECK(est.num_params == 1720574976ull);
    CHECK(est.weights_fp32 == 4 * est.num_params && est.adamw_state == 8 * est.num_params);
    CHECK(est.kv_cache_per_token == 2ull * 28 * 8 * 128 * 4);
    CHECK(est.logits == 1000ull * 151936 * 4);
    CHECK(train == est.training_adamw && train == 16 * est.num_params + 2 * est.logits);
    CHECK(est.inference == est.weights_fp32 + 1000 * est.kv_cache_per_token + est.logits);
}

static void test_copy_aux_files(void) {
    const char *src = tmp_dir("aux-src"), *dst = tmp_dir("aux-dst");
    CHECK(write_text(src, "tokenizer.json", "{}") == 0);
    CHECK(write_text(src, "generation_config.json", "{\"eos_token_id\": [1, 2]}") == 0);
    CHECK(write_text(src, "unrelated.txt", "x") == 0);
    Error e;
    CHECK(qwen_checkpoint_copy_aux_files(src, dst, &e) == 2);
    char p[1024];
    snprintf(p, sizeof p, "%s/generation_config.json", dst);
    CHECK(file_exists(p));
    snprintf(p, sizeof p, "%s/unrelated.txt", dst);
    CHECK(!file_exists(p));
}

// The pionrl binary beside this test program's directory (BUILD/tests/test_checkpoint -> BUILD/pionrl).
static char pionrl_bin[1024];

static void test_inspect_cli(void) {
    if (!have_fixtures()) return;
    if (access(pionrl_bin, X_OK) != 0) return test_skip("%s not built", pionrl_bin);
    static char out[65536];
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s inspect --model " QWEN3_DIR " --json 2>&1", pionrl_bin);
    CHECK(test_shell(cmd, out, sizeof out) == 0);
    cJSON *j = cJSON_Parse(out);
    CHECK_MSG(j, "inspect --json printed: %.200s", out);
    const cJSON *p = cJSON_GetObjectItem(j, "parameters");
    CHECK(p && cJSON_GetObjectItem(p, "total")->valuedouble == 70016);
    CHECK(cJSON_GetObjectItem(p, "embedding")->valuedouble == 8192 && cJSON_GetObjectItem(p, "lm_head")->valuedouble == 0);
    const cJSON *f = cJSON_GetObjectItem(j, "files");
    CHECK(f && cJSON_GetObjectItem(cJSON_GetObjectItem(f, "dtypes"), "F32"));
    QwenConfig c;
    Error e;
    CHECK(qwen_config_parse(cJSON_GetObjectItem(j, "config"), "inspect", &c, &e) == 0 && c.arch == ARCH_QWEN3);
    cJSON_Delete(j);
    snprintf(cmd, sizeof cmd, "%s inspect --model " QWEN2_DIR " --verify 2>&1", pionrl_bin);
    CHECK(test_shell(cmd, out, sizeof out) == 0);
    CHECK(strstr(out, "Qwen2ForCausalLM") && strstr(out, "biases") && strstr(out, "verified"));
    // Broken weights: headers are fine, so only --verify finds the NaN.
    Variant v = {.nan_in = "model.layers.0.mlp.down_proj.weight"};
    CHECK(write_variant(QWEN2_DIR, tmp_dir("cli-nan"), NULL, &v) == 0);
    snprintf(cmd, sizeof cmd, "%s inspect --model %s 2>&1", pionrl_bin, tmp_dir("cli-nan"));
    CHECK(test_shell(cmd, out, sizeof out) == 0);
    snprintf(cmd, sizeof cmd, "%s inspect --model %s --verify 2>&1", pionrl_bin, tmp_dir("cli-nan"));
    CHECK(test_shell(cmd, out, sizeof out) == 1);
    CHECK(strstr(out, "model.layers.0.mlp.down_proj.weight") && strstr(out, "NaN"));
    // config.json alone: sized from the config, and --verify refuses.
    const char *cfg_only = tmp_dir("cli-config-only");
    char src[256], dst[1024];
    snprintf(src, sizeof src, "%s/config.json", QWEN3_DIR);
    snprintf(dst, sizeof dst, "%s/config.json", cfg_only);
    CHECK(write_text(cfg_only, "x", "") == 0 && copy_file(src, dst) == 0);
    snprintf(cmd, sizeof cmd, "%s inspect --model %s 2>&1", pionrl_bin, cfg_only);
    CHECK(test_shell(cmd, out, sizeof out) == 0 && strstr(out, "config.json only") && strstr(out, "70016"));
    snprintf(cmd, sizeof cmd, "%s inspect --model %s --verify 2>&1", pionrl_bin, cfg_only);
    CHECK(test_shell(cmd, out, sizeof out) == 1 && strstr(out, "no model.safetensors"));
    snprintf(cmd, sizeof cmd, "%s inspect 2>&1", pionrl_bin);
    CHECK(test_shell(cmd, out, sizeof out) == 2 && strstr(out, "--model DIR is required"));
    snprintf(cmd, sizeof cmd, "%s inspect --help 2>&1", pionrl_bin);
    CHECK(test_shell(cmd, out, sizeof out) == 0 && strstr(out, "--context N") && strstr(out, "--verify"));
    snprintf(cmd, sizeof cmd, "%s --help 2>&1", pionrl_bin);
    CHECK(test_shell(cmd, out, sizeof out) == 0 && strstr(out, "inspect"));
}

int main(int argc, char **argv) {
    // argv[0] is BUILD/tests/test_checkpoint.
    snprintf(pionrl_bin, sizeof pionrl_bin, "%s", argc > 0 ? argv[0] : "");
    char *slash = strrchr(pionrl_bin, '/');
    if (slash) {
        *slash = 0;
        slash = strrchr(pionrl_bin, '/');
    }
    if (slash) snprintf(slash, sizeof pionrl_bin - (slash - pionrl_bin), "/pionrl");
    else snprintf(pionrl_bin, sizeof pionrl_bin, "build/pionrl");
    snprintf(tmp_root, sizeof tmp_root, "/tmp/pionrl-ckpt-XXXXXX");
    if (!mkdtemp(tmp_root)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_load_qwen3_fixture);
    RUN(test_load_qwen2_fixture);
    RUN(test_load_qwen3_wide_fixture);
    RUN(test_load_bf16_matches_rounding);
    RUN(test_save_reload_bit_exact);
    RUN(test_sharded_index);
    RUN(test_bad_tensors);
    RUN(test_bad_directories);
    RUN(test_config_errors);
    RUN(test_config_defaults_and_round_trip);
    RUN(test_config_only_and_memory_estimate);
    RUN(test_copy_aux_files);
    RUN(test_inspect_cli);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_root);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp_root);
    return test_summary("test_checkpoint");
}
