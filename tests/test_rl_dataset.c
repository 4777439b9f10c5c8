// Datasets: JSONL loading with file:line errors, answer extraction, filters, prompt templates,
// deterministic shuffling, held-out split, cursor save/restore, presets on the real files.
#include <cjson/cJSON.h>

#include "core/json.h"
#include "rl/dataset.h"
#include "test.h"

#define FIX "tests/fixtures/rl/"

static int load_json_cfg(const char *json, DatasetConfig *cfg, Error *err) {
    cJSON *o = json_parse_text(json, "test", err);
    if (!o) return -1;
    int rc = dataset_config_from_json(o, cfg, "config.json: dataset", err);
    cJSON_Delete(o);
    return rc;
}

static void test_gsm8k_fixture(void) {
    DatasetConfig cfg;
    Error err;
    CHECK_MSG(load_json_cfg("{\"preset\": \"gsm8k\", \"path\": \"" FIX "gsm8k_small.jsonl\", \"eval_path\": \"\","
                            " \"system_prompt\": \"You are a careful solver.\", \"shuffle\": false}",
                            &cfg, &err) == 0, "%s", err.msg);
    Dataset ds;
    CHECK_MSG(dataset_load(&cfg, &ds, &err) == 0, "%s", err.msg);
    CHECK(ds.num_train == 8 && ds.num_eval == 0);
    CHECK(strcmp(ds.train[0].answer, "72") == 0);
    CHECK(strcmp(ds.train[1].answer, "1250") == 0);  // commas removed
    CHECK(strcmp(ds.train[2].answer, "10") == 0);    // trimmed
    CHECK(ds.train[2].line == 4);                    // the blank line 3 is skipped, lines still count
    CHECK(strcmp(ds.train[3].answer, "-2") == 0);
    CHECK(strstr(ds.train[0].user, "Natalia sold clips") == ds.train[0].user);
    CHECK(strstr(ds.train[0].user, "output the final answer after \"####\"."));
    CHECK(strcmp(ds.train[4].user, "Q5 {braces} stay Let's think step by step and output the final answer after "
                                    "\"####\".") == 0);
    CHECK(ds.train[0].system && strcmp(ds.train[0].system, "You are a careful solver.") == 0);
    // shuffle off: file order, then wraps into epoch 1
    for (int i = 0; i < 8; i++) CHECK(dataset_next(&ds) == &ds.train[i]);
    CHECK(dataset_next(&ds) == &ds.train[0] && ds.epoch == 1);
    dataset_free(&ds);
}

static void test_math_filters(void) {
    DatasetConfig cfg;
    Error err;
    CHECK_MSG(load_json_cfg("{\"preset\": \"math\", \"path\": \"" FIX "math_small.jsonl\", \"eval_path\": \"\","
                            " \"levels\": \"3-5\"}", &cfg, &err) == 0, "%s", err.msg);
    Dataset ds;
    CHECK_MSG(dataset_load(&cfg, &ds, &err) == 0, "%s", err.msg);
    // P2 (Level 3), P3 (Level 5), P5 (4 numeric), P7 (Level 3); not Level 1/2/?.
    CHECK(ds.num_train == 4);
    CHECK(strstr(ds.train[0].user, "P2") && strstr(ds.train[1].user, "P3") && strstr(ds.train[2].user, "P5") &&
          strstr(ds.train[3].user, "P7"));
    CHECK(strcmp(ds.train[0].user, "P2 level 3 algebra\n\nPlease reason step by step, and put your final answer "
                                   "within \\boxed{}.") == 0);
    CHECK(ds.train[0].system == NULL);
    CHECK(strcmp(ds.train[0].answer, "\\frac{1}{4}") == 0);
    dataset_free(&ds);

    CHECK(load_json_cfg("{\"preset\": \"math\", \"path\": \"" FIX "math_small.jsonl\", \"eval_path\": \"\","
                        " \"levels\": [2, \"Level 3\"], \"subjects\": [\"Algebra\"]}", &cfg, &err) == 0);
    CHECK_MSG(dataset_load(&cfg, &ds, &err) == 0, "%s", err.msg);
    CHECK(ds.num_train == 3);  // P2, P6 (numeric answer 6), P7
    CHECK(strcmp(ds.train[1].answer, "6") == 0);
    dataset_free(&ds);

    // Answer from the solution's last \boxed{}.
    CHECK(load_json_cfg("{\"path\": \"" FIX "math_small.jsonl\", \"question_field\": \"problem\","
                        " \"answer_field\": \"solution\", \"answer_extract\": \"boxed\", \"subjects\": [\"Algebra\"],"
                        " \"levels\": [3]}", &cfg, &err) == 0);
    CHECK(dataset_load(&cfg, &ds, &err) == -1);  // P2 has no solution field
    CHECK_MSG(strstr(err.msg, "math_small.jsonl:2: missing field 'solution'"), "%s", err.msg);

    CHECK(load_json_cfg("{\"path\": \"" FIX "math_small.jsonl\", \"levels\": [9]}", &cfg, &err) == 0);
    CHECK(dataset_load(&cfg, &ds, &err) == -1 && strstr(err.msg, "no examples left after"));
}

static void test_answer_extraction(void) {
    Error err;
    char *s = dataset_extract_answer(ANSWER_BOXED, "a \\boxed{1} then \\boxed{\\frac{a}{b}} end", &err);
    CHECK(s && strcmp(s, "\\frac{a}{b}") == 0);
    free(s);
    s = dataset_extract_answer(ANSWER_BOXED, "\\fbox{ 42 }", &err);
    CHECK(s && strcmp(s, "42") == 0);
    free(s);
    s = dataset_extract_answer(ANSWER_BOXED, "so $\\boxed 7$", &err);
    CHECK(s && strcmp(s, "7") == 0);
    free(s);
    CHECK(dataset_extract_answer(ANSWER_BOXED, "\\boxed{1", &err) == NULL && strstr(err.msg, "unbalanced"));
    CHECK(dataset_extract_answer(ANSWER_BOXED, "none here", &err) == NULL && strstr(err.msg, "boxed"));
    CHECK(dataset_extract_answer(ANSWER_GSM8K, "#### ", &err) == NULL && strstr(err.msg, "empty"));
    s = dataset_extract_answer(ANSWER_GSM8K, "#### 3 #### 1,234,567 \n", &err);
    CHECK(s && strcmp(s, "1234567") == 0);
    free(s);
    s = dataset_extract_answer(ANSWER_AS_IS, "  x = 3 \n", &err);
    CHECK(s && strcmp(s, "x = 3") == 0);
    free(s);
    s = dataset_render_prompt("A {question} B {question}", "q", &err);
    CHECK(s && strcmp(s, "A q B q") == 0);
    free(s);
    CHECK(dataset_render_prompt("no placeholder {}", "q", &err) == NULL && strstr(err.msg, "{question}"));
    CHECK(dataset_parse_level_text("Level 4") == 4 && dataset_parse_level_text("Level ?") == 0 &&
          dataset_parse_level_text("12") == 12);
}

static void test_bad_files(void) {
    DatasetConfig cfg;
    Dataset ds;
    Error err;
    dataset_config_preset(&cfg, "gsm8k", &err);
    cfg.eval_path[0] = 0;
    snprintf(cfg.path, sizeof cfg.path, FIX "bad_json.jsonl");
    CHECK(dataset_load(&cfg, &ds, &err) == -1);
    CHECK_MSG(strstr(err.msg, "bad_json.jsonl:3: invalid JSON"), "%s", err.msg);
    snprintf(cfg.path, sizeof cfg.path, FIX "missing_field.jsonl");
    CHECK(dataset_load(&cfg, &ds, &err) == -1);
    CHECK_MSG(strstr(err.msg, "missing_field.jsonl:2: missing field 'question'"), "%s", err.msg);
    snprintf(cfg.path, sizeof cfg.path, FIX "no_hash.jsonl");
    CHECK(dataset_load(&cfg, &ds, &err) == -1);
    CHECK_MSG(strstr(err.msg, "no_hash.jsonl:2: field 'answer'") && strstr(err.msg, "####"), "%s", err.msg);
    snprintf(cfg.path, sizeof cfg.path, FIX "not_object.jsonl");
    CHECK(dataset_load(&cfg, &ds, &err) == -1);
    CHECK_MSG(strstr(err.msg, "not_object.jsonl:2: expected a JSON object"), "%s", err.msg);
    snprintf(cfg.path, sizeof cfg.path, FIX "does_not_exist.jsonl");
    CHECK(dataset_load(&cfg, &ds, &err) == -1 && strstr(err.msg, "does_not_exist.jsonl: cannot open"));
    snprintf(cfg.path, sizeof cfg.path, FIX "gsm8k_small.jsonl");
    cfg.eval_count = 8;
    CHECK(dataset_load(&cfg, &ds, &err) == -1 && strstr(err.msg, "eval_count 8"));
}

static void test_config_errors(void) {
    DatasetConfig cfg;
    Error err;
    CHECK(load_json_cfg("{\"preset\": \"gsm8k\", \"shufle\": true}", &cfg, &err) == -1);
    CHECK_MSG(strstr(err.msg, "config.json: dataset: unknown key 'shufle'"), "%s", err.msg);
    CHECK(load_json_cfg("{\"preset\": \"aime\"}", &cfg, &err) == -1 && strstr(err.msg, "aime"));
    CHECK(load_json_cfg("{\"path\": \"x\", \"answer_extract\": \"last\"}", &cfg, &err) == -1 &&
          strstr(err.msg, "answer_extract"));
    CHECK(load_json_cfg("{\"path\": \"x\", \"levels\": \"5-3\"}", &cfg, &err) == -1 && strstr(err.msg, "levels"));
    CHECK(load_json_cfg("{\"path\": \"x\", \"levels\": [0]}", &cfg, &err) == -1 && strstr(err.msg, "levels"));
    CHECK(load_json_cfg("{\"path\": \"x\", \"levels\": 3}", &cfg, &err) == -1 && strstr(err.msg, "levels"));
    CHECK(load_json_cfg("{\"path\": \"x\", \"prompt_template\": \"no slot\"}", &cfg, &err) == -1 &&
          strstr(err.msg, "{question}"));
    CHECK(load_json_cfg("{\"path\": \"x\", \"seed\": -1}", &cfg, &err) == -1 && strstr(err.msg, "seed"));
    CHECK(load_json_cfg("{\"path\": \"x\", \"eval_count\": -2}", &cfg, &err) == -1 && strstr(err.msg, "eval_count"));
    CHECK(load_json_cfg("{\"eval_count\": 2}", &cfg, &err) == -1 && strstr(err.msg, "path"));
    CHECK(load_json_cfg("{\"path\": \"x\", \"subjects\": \"Algebra\"}", &cfg, &err) == -1 &&
          strstr(err.msg, "subjects"));
    CHECK(load_json_cfg("{\"path\": \"x\", \"levels\": \"3-5\", \"seed\": 12}", &cfg, &err) == 0);
    CHECK(cfg.levels == ((1u << 3) | (1u << 4) | (1u << 5)) && cfg.seed == 12);
}

static void read_order(Dataset *ds, int n, const DatasetExample **out) {
    for (int i = 0; i < n; i++) out[i] = dataset_next(ds);
}

static void test_shuffle_split_cursor(void) {
    DatasetConfig cfg;
    Error err;
    dataset_config_preset(&cfg, "gsm8k", &err);
    snprintf(cfg.path, sizeof cfg.path, FIX "gsm8k_small.jsonl");
    cfg.eval_path[0] = 0;
    cfg.eval_count = 2;
    cfg.seed = 99;
    Dataset a, b;
    CHECK_MSG(dataset_load(&cfg, &a, &err) == 0, "%s", err.msg);
    CHECK_MSG(dataset_load(&cfg, &b, &err) == 0, "%s", err.msg);
    CHECK(a.num_train == 6 && a.num_eval == 2);
    // The split is disjoint, covers every example and keeps file order in both parts.
    int seen[10] = {0};
    for (int i = 0; i < a.num_train; i++) seen[a.train[i].line]++;
    for (int i = 0; i < a.num_eval; i++) seen[a.eval[i].line]++;
    for (int l = 1; l <= 9; l++) CHECK(seen[l] == (l == 3 ? 0 : 1));
    for (int i = 1; i < a.num_train; i++) CHECK(a.train[i].line > a.train[i - 1].line);
    CHECK(a.eval[1].line > a.eval[0].line);
    // Same seed, same order; each epoch is a permutation; epochs differ.
    const DatasetExample *ea[18], *eb[18];
    read_order(&a, 18, ea);
    read_order(&b, 18, eb);
    int differs = 0;
    for (int i = 0; i < 18; i++) CHECK(strcmp(ea[i]->user, eb[i]->user) == 0);
    for (int e = 0; e < 3; e++) {
        int count[6] = {0};
        for (int i = 0; i < 6; i++) count[ea[e * 6 + i] - a.train]++;
        for (int i = 0; i < 6; i++) CHECK(count[i] == 1);
    }
    for (int i = 0; i < 6; i++) differs |= ea[i] != ea[6 + i] || ea[i] != ea[12 + i];
    CHECK(differs);
    CHECK(a.epoch == 2 && a.position == 6);
    // Cursor: save mid-epoch, restore into a fresh load, the sequence continues identically.
    dataset_free(&b);
    CHECK(dataset_load(&cfg, &b, &err) == 0);
    Dataset c;
    CHECK(dataset_load(&cfg, &c, &err) == 0);
    const DatasetExample *x[11], *y[11];
    read_order(&b, 9, x);
    cJSON *cur = dataset_cursor_to_json(&b);
    char *text = cJSON_PrintUnformatted(cur);
    cJSON_Delete(cur);
    read_order(&b, 11, x);
    cJSON *back = json_parse_text(text, "cursor", &err);
    free(text);
    CHECK(back != NULL);
    CHECK_MSG(dataset_cursor_from_json(&c, back, &err) == 0, "%s", err.msg);
    read_order(&c, 11, y);
    for (int i = 0; i < 11; i++) CHECK(strcmp(x[i]->user, y[i]->user) == 0);
    // A cursor from another seed or another dataset is refused with the reason.
    cJSON_ReplaceItemInObject(back, "seed", cJSON_CreateNumber(5));
    CHECK(dataset_cursor_from_json(&c, back, &err) == -1 && strstr(err.msg, "seed"));
    cJSON_ReplaceItemInObject(back, "seed", cJSON_CreateNumber(99));
    cJSON_ReplaceItemInObject(back, "fingerprint", cJSON_CreateString("0000000000000000"));
    CHECK(dataset_cursor_from_json(&c, back, &err) == -1 && strstr(err.msg, "fingerprint"));
    cJSON_AddNumberToObject(back, "extra", 1);
    CHECK(dataset_cursor_from_json(&c, back, &err) == -1 && strstr(err.msg, "extra"));
    cJSON_Delete(back);
    dataset_free(&a);
    dataset_free(&b);
    dataset_free(&c);
}

static void test_presets_on_shared_data(void) {
    if (!test_shared_path("data/gsm8k/train.jsonl") || !test_shared_path("data/math/train.jsonl")) {
        test_skip("../shared/data not present");
        return;
    }
    DatasetConfig cfg;
    Dataset ds;
    Error err;
    CHECK(dataset_config_preset(&cfg, "gsm8k", &err) == 0);
    CHECK_MSG(dataset_load(&cfg, &ds, &err) == 0, "%s", err.msg);
    CHECK(ds.num_train == 7473 && ds.num_eval == 1319);
    CHECK(strcmp(ds.train[0].answer, "72") == 0);
    CHECK(strcmp(ds.eval[0].answer, "18") == 0);
    for (int i = 0; i < ds.num_train; i++) CHECK(!strchr(ds.train[i].answer, ','));
    dataset_free(&ds);
    CHECK(load_json_cfg("{\"preset\": \"math\", \"levels\": \"3-5\"}", &cfg, &err) == 0);
    CHECK_MSG(dataset_load(&cfg, &ds, &err) == 0, "%s", err.msg);
    CHECK(ds.num_train > 3000 && ds.num_train < 7500);
    CHECK(ds.num_eval == 500);  // MATH-500 whole: the filters apply to training rows
    CHECK(ds.skipped_empty_answers <= 2);
    dataset_free(&ds);
    CHECK(load_json_cfg("{\"preset\": \"math\", \"levels\": \"3-5\", \"filter_eval\": true}", &cfg, &err) == 0);
    CHECK_MSG(dataset_load(&cfg, &ds, &err) == 0, "%s", err.msg);
    CHECK(ds.num_eval > 200 && ds.num_eval < 500);  // test500's numeric levels are filtered too
    dataset_free(&ds);
}

int main(void) {
    RUN(test_gsm8k_fixture);
    RUN(test_math_filters);
    RUN(test_answer_extraction);
    RUN(test_bad_files);
    RUN(test_config_errors);
    RUN(test_shuffle_split_cursor);
    RUN(test_presets_on_shared_data);
    return test_summary("test_rl_dataset");
}
