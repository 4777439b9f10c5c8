// Core utilities: errors, RNG, JSON helpers, atomic files, parameter layout.
#include "test.h"

#include "qwen_tiny.h"

#include "core/error.h"
#include "core/fileio.h"
#include "core/json.h"
#include "core/rng.h"
#include "policy/qwen.h"

static void test_error_prefix(void) {
    Error e;
    CHECK(error_set(&e, "bad %s", "thing") == -1);
    error_prefix(&e, "file %d", 3);
    CHECK(strcmp(e.msg, "file 3: bad thing") == 0);
}

static void test_rng_deterministic_and_uniform(void) {
    Rng a, b;
    rng_seed(&a, 42);
    rng_seed(&b, 42);
    for (int i = 0; i < 100; i++) CHECK(rng_u64(&a) == rng_u64(&b));
    double sum = 0, sq = 0;
    int n = 200000;
    for (int i = 0; i < n; i++) {
        float u = rng_uniform(&a);
        CHECK(u >= 0.0f && u < 1.0f);
        double z = rng_normal(&a);
        sum += z;
        sq += z * z;
    }
    CHECK_NEAR(sum / n, 0.0, 0.01);
    CHECK_NEAR(sq / n, 1.0, 0.02);
    for (int i = 0; i < 1000; i++) CHECK(rng_below(&a, 7) < 7);
}

static void test_json_keys_and_types(void) {
    Error e;
    cJSON *j = json_parse_text("{\"lr\": 0.5, \"steps\": 3, \"name\": \"x\", \"on\": true}", "cfg", &e);
    CHECK(j);
    const char *allowed[] = {"lr", "steps", "name", "on", NULL};
    CHECK(json_check_keys(j, allowed, "cfg", &e) == 0);
    const char *fewer[] = {"lr", "steps", "name", NULL};
    CHECK(json_check_keys(j, fewer, "cfg", &e) == -1);
    CHECK(strstr(e.msg, "unknown key 'on'"));
    int steps = 0, on = 0, missing = 7;
    double lr = 0;
    char name[4];
    CHECK(json_get_int(j, "steps", 1, &steps, "cfg", &e) == 0 && steps == 3);
    CHECK(json_get_double(j, "lr", 1, &lr, "cfg", &e) == 0 && lr == 0.5);
    CHECK(json_get_bool(j, "on", 1, &on, "cfg", &e) == 0 && on == 1);
    CHECK(json_get_string(j, "name", 1, name, sizeof name, "cfg", &e) == 0 && !strcmp(name, "x"));
    CHECK(json_get_int(j, "absent", 0, &missing, "cfg", &e) == 0 && missing == 7);
    CHECK(json_get_int(j, "absent", 1, &missing, "cfg", &e) == -1);
    CHECK(json_get_int(j, "lr", 1, &steps, "cfg", &e) == -1);
    CHECK(strstr(e.msg, "'lr' must be an integer"));
    cJSON_Delete(j);
    CHECK(json_parse_text("{\"a\": 1,\n \"b\": }", "bad.json", &e) == NULL);
    CHECK(strstr(e.msg, "bad.json") && strstr(e.msg, "line 2"));
}

static void test_atomic_write(void) {
    Error e;
    char dir[] = "/tmp/pionrl-test-XXXXXX";
    CHECK(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/a/b/c.txt", dir);
    char sub[256];
    snprintf(sub, sizeof sub, "%s/a/b", dir);
    CHECK(dir_create(sub, &e) == 0);
    CHECK(file_write_atomic(path, "hello", 5, &e) == 0);
    size_t n;
    char *s = file_read_all(path, &n, &e);
    CHECK(s && n == 5 && !strcmp(s, "hello"));
    free(s);
    CHECK(file_read_all("/nonexistent/x", &n, &e) == NULL && strstr(e.msg, "/nonexistent/x"));
}

static QwenConfig tiny_config(int arch) { return qwen_tiny_config(arch, 50, 16, 24); }

static void test_param_table_covers_buffer(void) {
    for (int arch = 2; arch <= 3; arch++) {
        QwenConfig c = tiny_config(arch);
        int n = qwen_num_tensors(&c);
        ParamInfo *t = calloc(n, sizeof *t);
        qwen_param_table(&c, t);
        size_t total = qwen_num_params(&c);
        char *seen = calloc(total, 1);
        for (int i = 0; i < n; i++) {
            CHECK(t[i].name[0]);
            for (size_t j = 0; j < param_numel(&t[i]); j++) {
                CHECK(t[i].offset + j < total);
                CHECK(!seen[t[i].offset + j]);
                seen[t[i].offset + j] = 1;
            }
        }
        for (size_t j = 0; j < total; j++) CHECK(seen[j]);
        QwenModel m;
        Error e;
        CHECK(qwen_model_init(&m, &c, &e) == 0);
        CHECK((arch == ARCH_QWEN3) == (m.w.lm_head == m.w.embed));
        CHECK((arch == ARCH_QWEN2) == (m.w.bq != NULL));
        qwen_model_free(&m);
        free(seen);
        free(t);
    }
    QwenConfig bad = tiny_config(3);
    bad.num_kv_heads = 3;
    Error e;
    CHECK(qwen_config_validate(&bad, "cfg", &e) == -1 && strstr(e.msg, "num_key_value_heads"));
}

int main(void) {
    RUN(test_error_prefix);
    RUN(test_rng_deterministic_and_uniform);
    RUN(test_json_keys_and_types);
    RUN(test_atomic_write);
    RUN(test_param_table_covers_buffer);
    return test_summary("test_core");
}
