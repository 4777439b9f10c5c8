// The synthetic arithmetic task (rl/synth.h) and the dataset's "synthetic" source: determinism by
// seed and index, correct answers, difficulty parameters honoured, a fixed eval set kept out of the
// training stream, resumable cursor, and bad configs naming the key.
#include "test.h"

#include <stdlib.h>

#include "core/json.h"
#include "rl/dataset.h"
#include "rl/synth.h"

// Recomputes the answer from the question text alone: "X has A things." then "+ B" for "... B more."
// and "- B" for the other steps.
static long answer_from_question(const char *q, int *ops, long *max_operand) {
    const char *p = strstr(q, " has ");
    long value = strtol(p + 5, NULL, 10);
    *ops = 0;
    *max_operand = value;
    for (p = strchr(p, '.'); p && p[1] == ' ' && strncmp(p + 2, "How many", 8) != 0; p = strchr(p + 1, '.')) {
        const char *d = p + 2;
        while (*d && (*d < '0' || *d > '9')) d++;
        char *end;
        long b = strtol(d, &end, 10);
        if (b > *max_operand) *max_operand = b;
        value += strncmp(end, " more.", 6) == 0 ? b : -b;
        (*ops)++;
    }
    return value;
}

static void test_examples_are_correct_and_consistent(void) {
    SynthConfig c;
    synth_config_default(&c);
    c.min_ops = 1;
    c.max_ops = 4;
    c.max_operand = 50;
    int seen_ops[5] = {0};
    for (int i = 0; i < 2000; i++) {
        SynthExample s;
        synth_example(&c, 3, (uint64_t)i, &s);
        int ops;
        long maxop;
        long ans = answer_from_question(s.question, &ops, &maxop);
        CHECK_MSG(ans == strtol(s.answer, NULL, 10), "example %d: '%s' answer %s, recomputed %ld", i, s.question,
                  s.answer, ans);
        CHECK_MSG(ans >= 0, "negative answer: %s", s.question);
        CHECK(ops == s.num_ops && ops >= 1 && ops <= 4);
        CHECK_MSG(maxop >= 1 && maxop <= 50, "operand %ld out of range in '%s'", maxop, s.question);
        CHECK_MSG(synth_solution_is_consistent(s.solution), "inconsistent solution '%s'", s.solution);
        char tail[40];
        snprintf(tail, sizeof tail, "#### %s", s.answer);
        CHECK(strstr(s.solution, tail) != NULL);
        seen_ops[ops]++;
    }
    for (int k = 1; k <= 4; k++) CHECK_MSG(seen_ops[k] > 300, "only %d problems with %d ops", seen_ops[k], k);
}

static void test_determinism_by_seed_and_index(void) {
    SynthConfig c;
    synth_config_default(&c);
    SynthExample a, b, d;
    synth_example(&c, 11, 5, &a);
    synth_example(&c, 12, 0, &d);  // an unrelated call in between changes nothing
    synth_example(&c, 11, 5, &b);
    CHECK(memcmp(&a, &b, sizeof a) == 0);
    int differ = 0;
    for (int i = 0; i < 20; i++) {
        synth_example(&c, 11, (uint64_t)i, &a);
        synth_example(&c, 12, (uint64_t)i, &b);
        differ += strcmp(a.question, b.question) != 0;
    }
    CHECK_MSG(differ >= 15, "seeds 11 and 12 gave %d/20 different problems", differ);
}

static void test_difficulty_parameters(void) {
    SynthConfig c;
    synth_config_default(&c);
    c.min_ops = c.max_ops = 3;
    c.max_operand = 9;
    c.allow_sub = 0;
    for (int i = 0; i < 500; i++) {
        SynthExample s;
        synth_example(&c, 1, (uint64_t)i, &s);
        CHECK(s.num_ops == 3);
        CHECK(strchr(s.solution, '-') == NULL);
        int ops;
        long maxop;
        answer_from_question(s.question, &ops, &maxop);
        CHECK(ops == 3 && maxop <= 9);
    }
    // bigger operands give bigger answers on average
    SynthConfig big = c;
    big.max_operand = 1000;
    double small_sum = 0, big_sum = 0;
    for (int i = 0; i < 200; i++) {
        SynthExample s;
        synth_example(&c, 1, (uint64_t)i, &s);
        small_sum += atof(s.answer);
        synth_example(&big, 1, (uint64_t)i, &s);
        big_sum += atof(s.answer);
    }
    CHECK(big_sum > 20 * small_sum);
}

static void test_consistency_checker_rejects(void) {
    CHECK(synth_solution_is_consistent("2 + 3 = 5. #### 5"));
    CHECK(synth_solution_is_consistent("2 + 3 = 5. 5 - 1 = 4. #### 4"));
    CHECK(!synth_solution_is_consistent("2 + 3 = 6. #### 6"));
    CHECK(!synth_solution_is_consistent("2 + 3 = 5. #### 4"));
    CHECK(!synth_solution_is_consistent("2 + 3 = 5. 4 - 1 = 3. #### 3"));  // chain broken
    CHECK(!synth_solution_is_consistent("#### 4"));
    CHECK(!synth_solution_is_consistent(""));
    CHECK(!synth_solution_is_consistent("2 * 3 = 6. #### 6"));
    CHECK(!synth_solution_is_consistent("2 + 3 = 5. #### 5 extra"));
}

static int load_json_dataset(const char *text, Dataset *ds, Error *e) {
    cJSON *j = json_parse_text(text, "test", e);
    if (!j) return -1;
    DatasetConfig cfg;
    int rc = dataset_config_from_json(j, &cfg, "dataset", e);
    cJSON_Delete(j);
    if (rc == 0) rc = dataset_load(&cfg, ds, e);
    return rc;
}

static void test_dataset_synthetic_source(void) {
    const char *text = "{\"synthetic\": {\"min_ops\": 1, \"max_ops\": 1, \"max_operand\": 12}, \"seed\": 4, "
                       "\"eval_count\": 40}";
    Dataset a, b;
    Error e;
    CHECK_MSG(load_json_dataset(text, &a, &e) == 0, "%s", e.msg);
    CHECK_MSG(load_json_dataset(text, &b, &e) == 0, "%s", e.msg);
    CHECK(a.num_eval == 40 && a.num_train == DATASET_SYNTH_WINDOW && a.fingerprint == b.fingerprint);
    CHECK(strncmp(a.eval[0].user, "Question: ", 10) == 0 && strstr(a.eval[0].user, " Answer:"));
    for (int i = 0; i < 40; i++) {
        CHECK(strcmp(a.eval[i].user, b.eval[i].user) == 0);
        CHECK(a.eval[i].solution && synth_solution_is_consistent(a.eval[i].solution));
    }
    // the training stream is deterministic and never repeats an eval question (the 1-op, 12-operand
    // space is small: ~300 problems per name/object, so collisions would happen without the filter)
    int collisions = 0;
    for (int i = 0; i < 3000; i++) {
        const DatasetExample *x = dataset_next(&a), *y = dataset_next(&b);
        CHECK(x && y && strcmp(x->user, y->user) == 0 && strcmp(x->answer, y->answer) == 0);
        for (int k = 0; k < a.num_eval; k++) collisions += strcmp(x->user, a.eval[k].user) == 0;
    }
    CHECK_MSG(collisions == 0, "%d training problems equal an eval problem", collisions);
    // resume: a cursor saved now continues with the same examples in a fresh dataset
    cJSON *cur = dataset_cursor_to_json(&a);
    Dataset c;
    CHECK(load_json_dataset(text, &c, &e) == 0);
    CHECK_MSG(dataset_cursor_from_json(&c, cur, &e) == 0, "%s", e.msg);
    for (int i = 0; i < 10; i++) {
        const DatasetExample *x = dataset_next(&a), *y = dataset_next(&c);
        CHECK(strcmp(x->user, y->user) == 0);
    }
    cJSON_Delete(cur);
    // a different difficulty is a different data set: its cursor is refused
    Dataset d;
    CHECK(load_json_dataset("{\"synthetic\": {\"max_operand\": 13}, \"seed\": 4, \"eval_count\": 40}", &d, &e) == 0);
    cur = dataset_cursor_to_json(&a);
    CHECK(dataset_cursor_from_json(&d, cur, &e) == -1 && strstr(e.msg, "fingerprint"));
    cJSON_Delete(cur);
    dataset_free(&a);
    dataset_free(&b);
    dataset_free(&c);
    dataset_free(&d);
}

static void test_bad_configs(void) {
    struct {
        const char *json, *expect;
    } cases[] = {
        {"{\"synthetic\": {\"max_ops\": 9}}", "max_ops"},
        {"{\"synthetic\": {\"min_ops\": 0}}", "min_ops"},
        {"{\"synthetic\": {\"min_ops\": 3, \"max_ops\": 2}}", "max_ops"},
        {"{\"synthetic\": {\"max_operand\": 1}}", "max_operand"},
        {"{\"synthetic\": {\"max_operand\": \"big\"}}", "max_operand"},
        {"{\"synthetic\": {\"levels\": 3}}", "levels"},
        {"{\"synthetic\": 5}", "synthetic"},
        {"{\"synthetic\": {}, \"path\": \"x.jsonl\"}", "synthetic"},
        {"{\"synthetic\": {}, \"preset\": \"gsm8k\"}", "synthetic"},
        {"{\"eval_count\": 3}", "path"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Dataset ds;
        Error e;
        int rc = load_json_dataset(cases[i].json, &ds, &e);
        CHECK_MSG(rc == -1 && strstr(e.msg, cases[i].expect), "%s: rc %d, message '%s'", cases[i].json, rc,
                  rc ? e.msg : "");
        if (rc == 0) dataset_free(&ds);
    }
}

int main(void) {
    RUN(test_examples_are_correct_and_consistent);
    RUN(test_determinism_by_seed_and_index);
    RUN(test_difficulty_parameters);
    RUN(test_consistency_checker_rejects);
    RUN(test_dataset_synthetic_source);
    RUN(test_bad_configs);
    return test_summary("test_synth");
}
