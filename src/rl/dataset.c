// JSONL loading, filtering, the held-out split, per-epoch shuffling and the resumable cursor.
#include "rl/dataset.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "core/json.h"
#include "core/rng.h"

typedef struct {
    DatasetExample *items;
    int n, cap;
    int skipped_empty;  // rows whose gold answer is empty (MATH train has two): not scorable
} ExampleList;

static void free_example(DatasetExample *e) {
    free(e->system);
    free(e->user);
    free(e->answer);
    free(e->solution);
    memset(e, 0, sizeof *e);
}

static void list_free(ExampleList *l) {
    for (int i = 0; i < l->n; i++) free_example(&l->items[i]);
    free(l->items);
    l->items = NULL;
    l->n = l->cap = 0;
}

static int list_push(ExampleList *l, DatasetExample e) {
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 256;
        DatasetExample *p = realloc(l->items, sizeof *p * (size_t)cap);
        if (!p) return -1;
        l->items = p;
        l->cap = cap;
    }
    l->items[l->n++] = e;
    return 0;
}

static int keep_example(const DatasetConfig *cfg, const cJSON *row) {
    if (cfg->levels) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(row, cfg->level_field);
        int level = 0;
        if (cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) && v->valuedouble >= 1 &&
            v->valuedouble <= 31)
            level = (int)v->valuedouble;
        else if (cJSON_IsString(v))
            level = dataset_parse_level_text(v->valuestring);
        if (level == 0 || !(cfg->levels & (1u << level))) return 0;
    }
    if (cfg->num_subjects > 0) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(row, cfg->subject_field);
        if (!cJSON_IsString(v)) return 0;
        int ok = 0;
        for (int i = 0; i < cfg->num_subjects; i++)
            if (strcmp(v->valuestring, cfg->subjects[i]) == 0) ok = 1;
        if (!ok) return 0;
    }
    return 1;
}

// Text of a string or number field (GSM8K-like files sometimes store answers as numbers).
static char *field_text(const cJSON *v) {
    if (cJSON_IsString(v)) return strdup(v->valuestring);
    if (cJSON_IsNumber(v)) {
        char buf[64];
        if (v->valuedouble == floor(v->valuedouble) && fabs(v->valuedouble) < 1e15)
            snprintf(buf, sizeof buf, "%.0f", v->valuedouble);
        else
            snprintf(buf, sizeof buf, "%.17g", v->valuedouble);
        return strdup(buf);
    }
    return NULL;
}

static int parse_row(const DatasetConfig *cfg, const cJSON *row, int filter, const char *where, ExampleList *out,
                     Error *err) {
    if (!cJSON_IsObject(row)) return error_set(err, "%s: expected a JSON object", where);
    if (filter && !keep_example(cfg, row)) return 0;
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(row, cfg->question_field);
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(row, cfg->answer_field);
    if (!q) return error_set(err, "%s: missing field '%s'", where, cfg->question_field);
    if (!cJSON_IsString(q)) return error_set(err, "%s: field '%s' must be a string", where, cfg->question_field);
    if (!a) return error_set(err, "%s: missing field '%s'", where, cfg->answer_field);
    char *answer_text = field_text(a);
    if (!answer_text) return error_set(err, "%s: field '%s' must be a string or a number", where, cfg->answer_field);
    if (answer_text[strspn(answer_text, " \t\r\n")] == 0) {
        free(answer_text);
        out->skipped_empty++;
        return 0;
    }
    DatasetExample e = {0};
    e.answer = dataset_extract_answer(cfg->answer_extract, answer_text, err);
    e.solution = answer_text;
    if (!e.answer) {
        free_example(&e);
        return error_prefix(err, "%s: field '%s'", where, cfg->answer_field);
    }
    e.user = dataset_render_prompt(cfg->prompt_template, q->valuestring, err);
    if (!e.user) {
        free_example(&e);
        return error_prefix(err, "%s", where);
    }
    if (cfg->system_prompt[0] && !(e.system = strdup(cfg->system_prompt))) {
        free_example(&e);
        return error_set(err, "%s: out of memory", where);
    }
    if (list_push(out, e)) {
        free_example(&e);
        return error_set(err, "%s: out of memory", where);
    }
    return 0;
}

// Reads every non-blank line of a JSONL file (keeping the rows that pass the level/subject filters
// when filter is set); errors name path:line.
static int read_jsonl(const DatasetConfig *cfg, const char *path, int filter, ExampleList *out, Error *err) {
    size_t len;
    char *text = file_read_all(path, &len, err);
    if (!text) return -1;
    char *p = text;
    if (len >= 3 && (unsigned char)p[0] == 0xEF && (unsigned char)p[1] == 0xBB && (unsigned char)p[2] == 0xBF)
        p += 3;  // UTF-8 byte order mark
    int line = 0, rc = 0;
    while (*p && rc == 0) {
        line++;
        char *nl = strchr(p, '\n');
        char *next = nl ? nl + 1 : p + strlen(p);
        if (nl) *nl = 0;
        if (nl && nl > p && nl[-1] == '\r') nl[-1] = 0;
        size_t skip = strspn(p, " \t\r");
        if (p[skip]) {
            char where[1100];
            snprintf(where, sizeof where, "%s:%d", path, line);
            cJSON *row = json_parse_text(p, where, err);
            if (!row) {
                rc = -1;
            } else {
                int before = out->n;
                rc = parse_row(cfg, row, filter, where, out, err);
                if (rc == 0 && out->n > before) out->items[out->n - 1].line = line;
                cJSON_Delete(row);
            }
        }
        p = next;
    }
    free(text);
    return rc;
}

static void permute(int *order, int n, uint64_t seed) {
    Rng rng;
    rng_seed(&rng, seed);
    for (int i = 0; i < n; i++) order[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)rng_below(&rng, (uint64_t)i + 1);
        int t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

// Distinct streams for the split and for each epoch, all from the one configured seed.
static uint64_t split_seed(uint64_t seed) {
    return seed ^ 0xA5EED5B11700D00DULL;
}
static uint64_t epoch_seed(uint64_t seed, uint64_t epoch) {
    return seed * 0x9E3779B97F4A7C15ULL + epoch + 1;
}

static void make_order(Dataset *ds) {
    if (ds->cfg.synthetic) return;  // the stream has no permutation: slot = position
    if (ds->cfg.shuffle) {
        permute(ds->order, ds->num_train, epoch_seed(ds->cfg.seed, ds->epoch));
    } else {
        for (int i = 0; i < ds->num_train; i++) ds->order[i] = i;
    }
}

static uint64_t fnv1a(uint64_t h, const char *s) {
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) h = (h ^ *p) * 0x100000001b3ULL;
    return (h ^ 0xff) * 0x100000001b3ULL;  // separator, so "ab"+"c" != "a"+"bc"
}

static int cmp_line(const void *a, const void *b) {
    const DatasetExample *x = a, *y = b;
    return (x->line > y->line) - (x->line < y->line);
}

static uint64_t hash_text(const char *s) {
    return fnv1a(0xcbf29ce484222325ULL, s);
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

// One synthetic problem as a dataset example (strings malloc'd); -1 when out of memory.
static int synth_to_example(const DatasetConfig *cfg, const SynthExample *s, DatasetExample *e, Error *err) {
    memset(e, 0, sizeof *e);
    e->user = dataset_render_prompt(cfg->prompt_template, s->question, err);
    e->answer = strdup(s->answer);
    e->solution = strdup(s->solution);
    if (cfg->system_prompt[0]) e->system = strdup(cfg->system_prompt);
    if (!e->user || !e->answer || !e->solution || (cfg->system_prompt[0] && !e->system)) {
        free_example(e);
        return error_set(err, "dataset: out of memory");
    }
    return 0;
}

// Training example `index` of the synthetic stream: a problem whose question is in the eval set
// is replaced by a draw from a derived stream (deterministic; gives up after 64 tries, which only
// a problem space smaller than the eval set reaches).
static void synth_train_problem(const Dataset *ds, uint64_t index, SynthExample *s) {
    for (uint64_t attempt = 0; attempt < 64; attempt++) {
        synth_example(&ds->cfg.synth, ds->cfg.seed ^ (attempt * 0xD6E8FEB86659FD93ULL), index, s);
        uint64_t h = hash_text(s->question);
        if (!ds->num_eval || !bsearch(&h, ds->eval_hashes, (size_t)ds->num_eval, sizeof h, cmp_u64)) return;
    }
}

static int load_synthetic(const DatasetConfig *cfg, Dataset *ds, Error *err) {
    const SynthConfig *sc = &cfg->synth;
    if (synth_config_validate(sc, "dataset.synthetic", err)) return -1;
    ds->eval = calloc((size_t)(cfg->eval_count > 0 ? cfg->eval_count : 1), sizeof *ds->eval);
    ds->eval_hashes = calloc((size_t)(cfg->eval_count > 0 ? cfg->eval_count : 1), sizeof *ds->eval_hashes);
    ds->train = calloc(DATASET_SYNTH_WINDOW, sizeof *ds->train);
    if (!ds->eval || !ds->eval_hashes || !ds->train) {
        dataset_free(ds);
        return error_set(err, "dataset: out of memory");
    }
    for (int i = 0; i < cfg->eval_count; i++) {
        SynthExample s;
        synth_example(sc, split_seed(cfg->seed), (uint64_t)i, &s);
        if (synth_to_example(cfg, &s, &ds->eval[i], err)) {
            dataset_free(ds);
            return -1;
        }
        ds->eval[i].line = i + 1;
        ds->eval_hashes[i] = hash_text(s.question);
        ds->num_eval = i + 1;
    }
    qsort(ds->eval_hashes, (size_t)ds->num_eval, sizeof *ds->eval_hashes, cmp_u64);
    ds->num_train = DATASET_SYNTH_WINDOW;  // slots, filled by dataset_next
    char desc[128];
    snprintf(desc, sizeof desc, "synthetic ops %d-%d operand %d sub %d eval %d", sc->min_ops, sc->max_ops,
             sc->max_operand, sc->allow_sub, cfg->eval_count);
    ds->fingerprint = fnv1a(fnv1a(0xcbf29ce484222325ULL, desc), cfg->prompt_template);
    return 0;
}

int dataset_load(const DatasetConfig *cfg, Dataset *ds, Error *err) {
    memset(ds, 0, sizeof *ds);
    ds->cfg = *cfg;
    if (cfg->synthetic) {
        if (!strstr(cfg->prompt_template, "{question}"))
            return error_set(err, "dataset: prompt_template must contain {question}");
        if (cfg->eval_count < 0) return error_set(err, "dataset: eval_count must be >= 0");
        return load_synthetic(cfg, ds, err);
    }
    if (!cfg->path[0]) return error_set(err, "dataset: no path configured");
    if (!strstr(cfg->prompt_template, "{question}"))
        return error_set(err, "dataset: prompt_template must contain {question}");
    if (cfg->eval_count < 0 || cfg->max_examples < 0)
        return error_set(err, "dataset: eval_count and max_examples must be >= 0");
    ExampleList train = {0}, eval = {0};
    if (read_jsonl(cfg, cfg->path, 1, &train, err)) goto fail;
    if (train.n == 0) {
        error_set(err, "%s: no examples%s", cfg->path,
                  cfg->levels || cfg->num_subjects ? " left after the level/subject filters" : "");
        goto fail;
    }
    if (cfg->eval_path[0]) {
        // A separate eval file is used whole unless filter_eval: the usual recipe trains on MATH
        // levels 3-5 and reports MATH-500 over all levels.
        if (read_jsonl(cfg, cfg->eval_path, cfg->filter_eval, &eval, err)) goto fail;
        if (cfg->eval_count > 0 && eval.n > cfg->eval_count) {
            for (int i = cfg->eval_count; i < eval.n; i++) free_example(&eval.items[i]);
            eval.n = cfg->eval_count;
        }
    } else if (cfg->eval_count > 0) {
        if (cfg->eval_count >= train.n) {
            error_set(err, "%s: eval_count %d leaves no training examples (%d after filters)", cfg->path,
                      cfg->eval_count, train.n);
            goto fail;
        }
        // A seeded random subset is held out (files may be sorted by subject or difficulty); both
        // parts keep file order.
        int *order = malloc(sizeof(int) * (size_t)train.n);
        DatasetExample *all = train.items;
        ExampleList rest = {0};
        rest.skipped_empty = train.skipped_empty;
        if (!order) {
            error_set(err, "dataset: out of memory");
            goto fail;
        }
        permute(order, train.n, split_seed(cfg->seed));
        for (int i = 0; i < train.n; i++) {
            DatasetExample e = all[order[i]];
            if ((i < cfg->eval_count ? list_push(&eval, e) : list_push(&rest, e)) != 0) {
                // Ownership of the strings moved entry by entry; free the not-yet-moved tail.
                free_example(&e);
                for (int j = i + 1; j < train.n; j++) free_example(&all[order[j]]);
                free(order);
                free(all);
                train = rest;
                error_set(err, "dataset: out of memory");
                goto fail;
            }
        }
        free(order);
        free(all);
        train = rest;
        qsort(train.items, (size_t)train.n, sizeof *train.items, cmp_line);
        qsort(eval.items, (size_t)eval.n, sizeof *eval.items, cmp_line);
    }
    if (cfg->max_examples > 0 && train.n > cfg->max_examples) {
        for (int i = cfg->max_examples; i < train.n; i++) free_example(&train.items[i]);
        train.n = cfg->max_examples;
    }
    ds->skipped_empty_answers = train.skipped_empty + eval.skipped_empty;
    ds->train = train.items;
    ds->num_train = train.n;
    ds->eval = eval.items;
    ds->num_eval = eval.n;
    ds->fingerprint = 0xcbf29ce484222325ULL;
    for (int i = 0; i < ds->num_train; i++) {
        ds->fingerprint = fnv1a(ds->fingerprint, ds->train[i].system ? ds->train[i].system : "");
        ds->fingerprint = fnv1a(ds->fingerprint, ds->train[i].user);
        ds->fingerprint = fnv1a(ds->fingerprint, ds->train[i].answer);
    }
    ds->order = malloc(sizeof(int) * (size_t)ds->num_train);
    if (!ds->order) {
        dataset_free(ds);
        return error_set(err, "dataset: out of memory");
    }
    make_order(ds);
    return 0;
fail:
    list_free(&train);
    list_free(&eval);
    return -1;
}

void dataset_free(Dataset *ds) {
    for (int i = 0; i < ds->num_train; i++) free_example(&ds->train[i]);
    for (int i = 0; i < ds->num_eval; i++) free_example(&ds->eval[i]);
    free(ds->train);
    free(ds->eval);
    free(ds->order);
    free(ds->eval_hashes);
    memset(ds, 0, sizeof *ds);
}

const DatasetExample *dataset_next(Dataset *ds) {
    if (ds->num_train <= 0) return NULL;
    if (ds->cfg.synthetic) {
        if (ds->position >= (uint64_t)ds->num_train) {
            ds->epoch++;
            ds->position = 0;
        }
        DatasetExample *slot = &ds->train[ds->position];
        SynthExample s;
        Error e;
        synth_train_problem(ds, ds->epoch * DATASET_SYNTH_WINDOW + ds->position, &s);
        free_example(slot);
        if (synth_to_example(&ds->cfg, &s, slot, &e)) return NULL;  // out of memory only
        slot->line = (int)(ds->position + 1);
        ds->position++;
        return slot;
    }
    if (ds->position >= (uint64_t)ds->num_train) {
        ds->epoch++;
        ds->position = 0;
        make_order(ds);
    }
    return &ds->train[ds->order[ds->position++]];
}

cJSON *dataset_cursor_to_json(const Dataset *ds) {
    cJSON *o = cJSON_CreateObject();
    char fp[32];
    snprintf(fp, sizeof fp, "%016" PRIx64, ds->fingerprint);
    if (!o || !cJSON_AddNumberToObject(o, "epoch", (double)ds->epoch) ||
        !cJSON_AddNumberToObject(o, "position", (double)ds->position) ||
        !cJSON_AddNumberToObject(o, "seed", (double)ds->cfg.seed) ||
        !cJSON_AddNumberToObject(o, "num_train", ds->num_train) || !cJSON_AddStringToObject(o, "fingerprint", fp)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static int get_u64(const cJSON *obj, const char *key, uint64_t *out, Error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble != floor(v->valuedouble) ||
        v->valuedouble > 9007199254740992.0)
        return error_set(err, "dataset cursor: key '%s' must be a non-negative integer", key);
    *out = (uint64_t)v->valuedouble;
    return 0;
}

int dataset_cursor_from_json(Dataset *ds, const cJSON *obj, Error *err) {
    static const char *const KEYS[] = {"epoch", "position", "seed", "num_train", "fingerprint", NULL};
    if (json_check_keys(obj, KEYS, "dataset cursor", err)) return -1;
    uint64_t epoch = 0, position = 0, seed = 0, num_train = 0;
    if (get_u64(obj, "epoch", &epoch, err) || get_u64(obj, "position", &position, err) ||
        get_u64(obj, "seed", &seed, err) || get_u64(obj, "num_train", &num_train, err))
        return -1;
    const cJSON *fp = cJSON_GetObjectItemCaseSensitive(obj, "fingerprint");
    if (!cJSON_IsString(fp)) return error_set(err, "dataset cursor: key 'fingerprint' must be a string");
    if (seed != ds->cfg.seed)
        return error_set(err, "dataset cursor: seed %" PRIu64 " differs from the configured seed %" PRIu64, seed,
                         ds->cfg.seed);
    if (num_train != (uint64_t)ds->num_train)
        return error_set(err, "dataset cursor: num_train %" PRIu64 " differs from the loaded dataset's %d",
                         num_train, ds->num_train);
    char mine[32];
    snprintf(mine, sizeof mine, "%016" PRIx64, ds->fingerprint);
    if (strcmp(mine, fp->valuestring) != 0)
        return error_set(err, "dataset cursor: fingerprint %s differs from the loaded dataset's %s (the data or "
                         "the prompt template changed)", fp->valuestring, mine);
    if (position > num_train)
        return error_set(err, "dataset cursor: position %" PRIu64 " is past the %" PRIu64 " examples", position,
                         num_train);
    ds->epoch = epoch;
    ds->position = position;
    make_order(ds);
    return 0;
}
