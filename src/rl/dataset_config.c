// Dataset configuration: defaults, the gsm8k/math presets, and the "dataset" JSON object.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "rl/dataset.h"

static void copy(char *dst, size_t n, const char *src) {
    snprintf(dst, n, "%s", src);
}

void dataset_config_default(DatasetConfig *cfg) {
    memset(cfg, 0, sizeof *cfg);
    copy(cfg->question_field, sizeof cfg->question_field, "question");
    copy(cfg->answer_field, sizeof cfg->answer_field, "answer");
    copy(cfg->level_field, sizeof cfg->level_field, "level");
    copy(cfg->subject_field, sizeof cfg->subject_field, "subject");
    copy(cfg->prompt_template, sizeof cfg->prompt_template, DATASET_MATH_TEMPLATE);
    cfg->answer_extract = ANSWER_AS_IS;
    cfg->shuffle = 1;
    synth_config_default(&cfg->synth);
}

int dataset_config_preset(DatasetConfig *cfg, const char *name, Error *err) {
    dataset_config_default(cfg);
    if (strcmp(name, "gsm8k") == 0) {
        // openai/gsm8k main: {"question", "answer": "...reasoning...\n#### 72"}
        copy(cfg->path, sizeof cfg->path, "../shared/data/gsm8k/train.jsonl");
        copy(cfg->eval_path, sizeof cfg->eval_path, "../shared/data/gsm8k/test.jsonl");
        cfg->answer_extract = ANSWER_GSM8K;
        copy(cfg->prompt_template, sizeof cfg->prompt_template, DATASET_GSM8K_TEMPLATE);
    } else if (strcmp(name, "math") == 0) {
        // MATH (train) and MATH-500 (test500): {"problem", "answer", "subject", "level", ...};
        // level is "Level 3" in train and 3 in test500, and the filter reads both.
        copy(cfg->path, sizeof cfg->path, "../shared/data/math/train.jsonl");
        copy(cfg->eval_path, sizeof cfg->eval_path, "../shared/data/math/test500.jsonl");
        copy(cfg->question_field, sizeof cfg->question_field, "problem");
    } else {
        return error_set(err, "unknown dataset preset '%s' (expected gsm8k or math)", name);
    }
    copy(cfg->preset, sizeof cfg->preset, name);
    return 0;
}

// "Level 3" -> 3, "3" -> 3; 0 when there is no level number ("Level ?").
int dataset_parse_level_text(const char *s) {
    const char *p = s + strlen(s);
    while (p > s && p[-1] >= '0' && p[-1] <= '9') p--;
    if (!*p) return 0;
    long v = strtol(p, NULL, 10);
    return v >= 1 && v <= 31 ? (int)v : 0;
}

static int parse_levels(const cJSON *v, uint32_t *out, const char *where, Error *err) {
    uint32_t mask = 0;
    if (cJSON_IsString(v)) {  // "3-5" or "4"
        int a = 0, b = 0;
        char tail;
        int n = sscanf(v->valuestring, "%d-%d%c", &a, &b, &tail);
        if (n == 1) b = a;
        if ((n != 1 && n != 2) || a < 1 || b > 31 || a > b)
            return error_set(err, "%s: key 'levels' must be a range like \"3-5\" with levels 1..31 (got \"%s\")",
                             where, v->valuestring);
        for (int l = a; l <= b; l++) mask |= 1u << l;
    } else if (cJSON_IsArray(v)) {
        for (const cJSON *it = v->child; it; it = it->next) {
            int l = 0;
            if (cJSON_IsNumber(it) && it->valuedouble == floor(it->valuedouble)) l = (int)it->valuedouble;
            else if (cJSON_IsString(it)) l = dataset_parse_level_text(it->valuestring);
            if (l < 1 || l > 31)
                return error_set(err, "%s: key 'levels' entries must be levels 1..31 or \"Level N\"", where);
            mask |= 1u << l;
        }
        if (!mask) return error_set(err, "%s: key 'levels' is an empty list", where);
    } else {
        return error_set(err, "%s: key 'levels' must be a list or a range string like \"3-5\"", where);
    }
    *out = mask;
    return 0;
}

int dataset_config_from_json(const cJSON *obj, DatasetConfig *cfg, const char *where, Error *err) {
    static const char *const KEYS[] = {"preset", "path", "eval_path", "eval_count", "question_field",
                                       "answer_field", "answer_extract", "level_field", "levels",
                                       "subject_field", "subjects", "filter_eval", "prompt_template", "system_prompt",
                                       "seed", "shuffle", "max_examples", "synthetic", NULL};
    if (json_check_keys(obj, KEYS, where, err)) return -1;
    dataset_config_default(cfg);
    char preset[32] = "";
    if (json_get_string(obj, "preset", 0, preset, sizeof preset, where, err)) return -1;
    if (preset[0] && dataset_config_preset(cfg, preset, err)) return error_prefix(err, "%s", where);
    char extract[16] = "";
    const cJSON *synth = cJSON_GetObjectItemCaseSensitive(obj, "synthetic");
    if (synth && !cJSON_IsNull(synth)) {
        char w[300];
        snprintf(w, sizeof w, "%s.synthetic", where);
        if (synth_config_from_json(synth, &cfg->synth, w, err)) return -1;
        if (cJSON_GetObjectItemCaseSensitive(obj, "path") || preset[0])
            return error_set(err, "%s: 'synthetic' replaces 'path'/'preset'; give only one", where);
        cfg->synthetic = 1;
        copy(cfg->prompt_template, sizeof cfg->prompt_template, DATASET_SYNTH_TEMPLATE);
    }
    if (json_get_string(obj, "path", 0, cfg->path, sizeof cfg->path, where, err) ||
        json_get_string(obj, "eval_path", 0, cfg->eval_path, sizeof cfg->eval_path, where, err) ||
        json_get_int(obj, "eval_count", 0, &cfg->eval_count, where, err) ||
        json_get_string(obj, "question_field", 0, cfg->question_field, sizeof cfg->question_field, where, err) ||
        json_get_string(obj, "answer_field", 0, cfg->answer_field, sizeof cfg->answer_field, where, err) ||
        json_get_string(obj, "answer_extract", 0, extract, sizeof extract, where, err) ||
        json_get_string(obj, "level_field", 0, cfg->level_field, sizeof cfg->level_field, where, err) ||
        json_get_string(obj, "subject_field", 0, cfg->subject_field, sizeof cfg->subject_field, where, err) ||
        json_get_string(obj, "prompt_template", 0, cfg->prompt_template, sizeof cfg->prompt_template, where,
                        err) ||
        json_get_string(obj, "system_prompt", 0, cfg->system_prompt, sizeof cfg->system_prompt, where, err) ||
        json_get_bool(obj, "shuffle", 0, &cfg->shuffle, where, err) ||
        json_get_bool(obj, "filter_eval", 0, &cfg->filter_eval, where, err) ||
        json_get_int(obj, "max_examples", 0, &cfg->max_examples, where, err))
        return -1;
    if (extract[0]) {
        if (strcmp(extract, "none") == 0) cfg->answer_extract = ANSWER_AS_IS;
        else if (strcmp(extract, "gsm8k") == 0) cfg->answer_extract = ANSWER_GSM8K;
        else if (strcmp(extract, "boxed") == 0) cfg->answer_extract = ANSWER_BOXED;
        else
            return error_set(err, "%s: key 'answer_extract' must be \"none\", \"gsm8k\" or \"boxed\" (got \"%s\")",
                             where, extract);
    }
    if (cfg->eval_count < 0) return error_set(err, "%s: key 'eval_count' must be >= 0", where);
    if (cfg->max_examples < 0) return error_set(err, "%s: key 'max_examples' must be >= 0", where);
    const cJSON *seed = cJSON_GetObjectItemCaseSensitive(obj, "seed");
    if (seed) {
        if (!cJSON_IsNumber(seed) || seed->valuedouble < 0 || seed->valuedouble > 9007199254740992.0 ||
            seed->valuedouble != floor(seed->valuedouble))
            return error_set(err, "%s: key 'seed' must be an integer in [0, 2^53]", where);
        cfg->seed = (uint64_t)seed->valuedouble;
    }
    const cJSON *levels = cJSON_GetObjectItemCaseSensitive(obj, "levels");
    if (levels && !cJSON_IsNull(levels) && parse_levels(levels, &cfg->levels, where, err)) return -1;
    const cJSON *subjects = cJSON_GetObjectItemCaseSensitive(obj, "subjects");
    if (subjects && !cJSON_IsNull(subjects)) {
        if (!cJSON_IsArray(subjects)) return error_set(err, "%s: key 'subjects' must be a list of strings", where);
        cfg->num_subjects = 0;
        for (const cJSON *it = subjects->child; it; it = it->next) {
            if (!cJSON_IsString(it) || strlen(it->valuestring) >= sizeof cfg->subjects[0])
                return error_set(err, "%s: key 'subjects' entries must be strings of < 64 bytes", where);
            if (cfg->num_subjects == DATASET_MAX_SUBJECTS)
                return error_set(err, "%s: key 'subjects' has more than %d entries", where, DATASET_MAX_SUBJECTS);
            copy(cfg->subjects[cfg->num_subjects++], sizeof cfg->subjects[0], it->valuestring);
        }
    }
    if (!strstr(cfg->prompt_template, "{question}"))
        return error_set(err, "%s: key 'prompt_template' must contain {question}", where);
    if (!cfg->path[0] && !cfg->synthetic)
        return error_set(err, "%s: missing required key 'path' (or a 'preset' or 'synthetic')", where);
    return 0;
}
