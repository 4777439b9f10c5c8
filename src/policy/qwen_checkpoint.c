// Checkpoint directories: config.json + safetensors (single file or sharded through an index).
#include "policy/qwen_checkpoint.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/fileio.h"
#include "core/json.h"

// One tensor on disk and the file holding it.
typedef struct {
    const char *name;  // points into the StFile's table
    int file;
    const StTensor *t;
    int used;
} CkptEntry;

typedef struct {
    char dir[1024];
    int sharded;
    int num_files;
    StFile *files;
    int num_entries;
    CkptEntry *entries;  // sorted by name
} Ckpt;

static void ckpt_close(Ckpt *c) {
    for (int i = 0; i < c->num_files; i++) st_close(&c->files[i]);
    free(c->files);
    free(c->entries);
    memset(c, 0, sizeof *c);
}

static int cmp_entry(const void *a, const void *b) {
    return strcmp(((const CkptEntry *)a)->name, ((const CkptEntry *)b)->name);
}

static CkptEntry *ckpt_find(const Ckpt *c, const char *name) {
    CkptEntry key = {.name = name};
    return bsearch(&key, c->entries, c->num_entries, sizeof key, cmp_entry);
}

// Shard names come from a file the user downloaded: keep them inside the directory.
static int shard_name_ok(const char *s) {
    return s[0] && !strchr(s, '/') && strcmp(s, ".") && strcmp(s, "..") && strlen(s) < 256;
}

// Reads the index: the distinct shard files named by weight_map, in first-seen order.
static int read_index(const char *index_path, char (**names)[256], int *count, cJSON **map_out, Error *err) {
    cJSON *root = json_parse_file(index_path, err);
    if (!root) return -1;
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!cJSON_IsObject(map)) {
        cJSON_Delete(root);
        return error_set(err, "%s: missing 'weight_map' object", index_path);
    }
    int n = cJSON_GetArraySize(map), k = 0;
    char(*out)[256] = calloc(n > 0 ? n : 1, 256);
    if (!out) {
        cJSON_Delete(root);
        return error_set(err, "%s: out of memory", index_path);
    }
    for (const cJSON *it = map->child; it; it = it->next) {
        if (!cJSON_IsString(it) || !shard_name_ok(it->valuestring)) {
            error_set(err, "%s: weight_map entry '%s' must name a file inside the model directory", index_path,
                      it->string);
            free(out);
            cJSON_Delete(root);
            return -1;
        }
        int seen = 0;
        for (int j = 0; j < k && !seen; j++) seen = !strcmp(out[j], it->valuestring);
        if (!seen) snprintf(out[k++], 256, "%s", it->valuestring);
    }
    if (k == 0) {
        free(out);
        cJSON_Delete(root);
        return error_set(err, "%s: weight_map is empty", index_path);
    }
    *names = out;
    *count = k;
    *map_out = root;
    return 0;
}

static int ckpt_open(const char *dir, Ckpt *c, Error *err) {
    memset(c, 0, sizeof *c);
    snprintf(c->dir, sizeof c->dir, "%s", dir);
    char single[2048], index[2048];
    if (path_join(single, sizeof single, dir, "model.safetensors") ||
        path_join(index, sizeof index, dir, "model.safetensors.index.json"))
        return error_set(err, "%s: path too long", dir);
    char(*names)[256] = NULL;
    cJSON *index_root = NULL;
    int n = 0;
    // transformers looks for model.safetensors before the index; do the same.
    if (file_exists(single)) {
        names = calloc(1, 256);
        if (!names) return error_set(err, "out of memory");
        snprintf(names[0], 256, "model.safetensors");
        n = 1;
    } else if (file_exists(index)) {
        if (read_index(index, &names, &n, &index_root, err)) return -1;
        c->sharded = 1;
    } else {
        char bin[2048];
        path_join(bin, sizeof bin, dir, "pytorch_model.bin");
        if (!dir_exists(dir)) return error_set(err, "%s: no such model directory", dir);
        return error_set(err, "%s: no model.safetensors or model.safetensors.index.json%s", dir,
                         file_exists(bin) ? " (pytorch_model.bin is not supported: convert it to safetensors)" : "");
    }
    c->files = calloc(n, sizeof(StFile));
    if (!c->files) {
        free(names);
        cJSON_Delete(index_root);
        return error_set(err, "out of memory");
    }
    int total = 0;
    for (int i = 0; i < n; i++) {
        char path[2048];
        if (path_join(path, sizeof path, dir, names[i])) {
            error_set(err, "%s: path too long", dir);
            goto fail;
        }
        if (st_open(path, &c->files[i], err)) goto fail;
        c->num_files++;
        total += c->files[i].num_tensors;
    }
    c->entries = calloc(total > 0 ? total : 1, sizeof(CkptEntry));
    if (!c->entries) {
        error_set(err, "out of memory");
        goto fail;
    }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < c->files[i].num_tensors; j++) {
            CkptEntry *e = &c->entries[c->num_entries++];
            e->name = c->files[i].tensors[j].name;
            e->file = i;
            e->t = &c->files[i].tensors[j];
        }
    qsort(c->entries, c->num_entries, sizeof(CkptEntry), cmp_entry);
    for (int i = 1; i < c->num_entries; i++)
        if (!strcmp(c->entries[i - 1].name, c->entries[i].name)) {
            error_set(err, "%s: tensor '%s' appears in both %s and %s", dir, c->entries[i].name,
                      c->files[c->entries[i - 1].file].path, c->files[c->entries[i].file].path);
            goto fail;
        }
    if (index_root) {
        // Every tensor the index promises must be in the shard it names.
        const cJSON *map = cJSON_GetObjectItemCaseSensitive(index_root, "weight_map");
        for (const cJSON *it = map->child; it; it = it->next) {
            CkptEntry *e = ckpt_find(c, it->string);
            const char *want = it->valuestring;
            const char *base = e ? strrchr(c->files[e->file].path, '/') : NULL;
            base = base ? base + 1 : (e ? c->files[e->file].path : NULL);
            if (!e || strcmp(base, want)) {
                error_set(err, "%s: model.safetensors.index.json puts tensor '%s' in %s, but that file does not hold it",
                          dir, it->string, want);
                goto fail;
            }
        }
    }
    free(names);
    cJSON_Delete(index_root);
    return 0;
fail:
    free(names);
    cJSON_Delete(index_root);
    ckpt_close(c);
    return -1;
}

static int is_ignored_buffer(const char *name) {
    size_t n = strlen(name);
    const char *suffix = "rotary_emb.inv_freq";
    size_t k = strlen(suffix);
    return n >= k && !strcmp(name + n - k, suffix);
}

static int is_float_dtype(StDtype dt) { return dt == ST_F32 || dt == ST_F16 || dt == ST_BF16 || dt == ST_F64; }

static void shape_str(char *out, size_t n, int ndim, const int64_t *shape) {
    size_t at = 0;
    at += snprintf(out + at, n - at, "[");
    for (int i = 0; i < ndim && at < n; i++) at += snprintf(out + at, n - at, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (at < n) snprintf(out + at, n - at, "]");
}

// Checks that tensor e matches the table entry p (dtype and shape).
static int check_tensor(const Ckpt *c, const CkptEntry *e, const ParamInfo *p, Error *err) {
    const char *file = c->files[e->file].path;
    if (!is_float_dtype(e->t->dtype))
        return error_set(err, "%s: tensor '%s' has dtype %s; expected a floating type (F32, BF16, F16, F64)", file,
                         p->name, st_dtype_name(e->t->dtype));
    int64_t want[2];
    int wnd = p->ndim;
    if (wnd == 1) want[0] = p->cols;
    else want[0] = p->rows, want[1] = p->cols;
    int ok = e->t->ndim == wnd;
    for (int i = 0; ok && i < wnd; i++) ok = e->t->shape[i] == want[i];
    if (!ok) {
        char got[128], exp[64];
        shape_str(got, sizeof got, e->t->ndim, e->t->shape);
        shape_str(exp, sizeof exp, wnd, want);
        return error_set(err, "%s: tensor '%s' has shape %s but config.json implies %s", file, p->name, got, exp);
    }
    return 0;
}

static void arch_name(const QwenConfig *cfg, char *out, size_t n) {
    snprintf(out, n, "%s", cfg->arch == ARCH_QWEN3 ? "Qwen3ForCausalLM" : "Qwen2ForCausalLM");
}

// Matches the files against the parameter table. When m is not NULL, converts the data into it.
static int ckpt_apply(Ckpt *c, const QwenConfig *cfg, QwenModel *m, QwenCheckpointInfo *info, Error *err) {
    int n = qwen_num_tensors(cfg);
    ParamInfo *table = malloc(sizeof(ParamInfo) * n);
    if (!table) return error_set(err, "out of memory");
    qwen_param_table(cfg, table);
    int rc = -1;
    for (int i = 0; i < n; i++) {
        CkptEntry *e = ckpt_find(c, table[i].name);
        if (!e) {
            error_set(err, "%s: missing tensor '%s' (required by config.json)", c->dir, table[i].name);
            goto done;
        }
        if (check_tensor(c, e, &table[i], err)) goto done;
        e->used = 1;
        if (info) {
            info->tensors_by_dtype[e->t->dtype]++;
            info->bytes_by_dtype[e->t->dtype] += e->t->nbytes;
        }
        if (m && st_read_f32(&c->files[e->file], e->t, m->params + table[i].offset, 1, err)) goto done;
    }
    char arch[32];
    arch_name(cfg, arch, sizeof arch);
    for (int i = 0; i < c->num_entries; i++) {
        CkptEntry *e = &c->entries[i];
        if (e->used) continue;
        if (is_ignored_buffer(e->name)) {
            if (info) info->ignored_buffers++;
            continue;
        }
        if (cfg->tie_word_embeddings && !strcmp(e->name, "lm_head.weight")) {
            // Some exporters write the tied matrix a second time (Qwen3-1.7B's files count 2.03B
            // parameters). transformers re-ties lm_head to the embeddings after loading, so the copy
            // is ignored; whether it differed is reported through info.
            ParamInfo p = table[0];  // embed_tokens: same shape as lm_head
            snprintf(p.name, sizeof p.name, "lm_head.weight");
            if (check_tensor(c, e, &p, err)) goto done;
            int differs = 0;
            if (m) {
                size_t k = param_numel(&p);
                float *tmp = malloc(sizeof(float) * k);
                if (!tmp) {
                    error_set(err, "out of memory");
                    goto done;
                }
                // Not checked for NaN: the values are not used.
                if (st_read_f32(&c->files[e->file], e->t, tmp, 0, err)) {
                    free(tmp);
                    goto done;
                }
                differs = memcmp(tmp, m->w.embed, sizeof(float) * k) != 0;
                free(tmp);
            }
            if (info) {
                info->ignored_lm_head = 1;
                info->ignored_lm_head_differs = differs;
            }
            continue;
        }
        error_set(err, "%s: unexpected tensor '%s' (not part of %s with this config.json)", c->files[e->file].path,
                  e->name, arch);
        goto done;
    }
    if (info) {
        info->sharded = c->sharded;
        info->num_files = c->num_files;
        info->num_tensors = c->num_entries;
        for (int i = 0; i < c->num_files; i++) info->file_bytes += c->files[i].map_size;
    }
    rc = 0;
done:
    free(table);
    return rc;
}

static int load_config(const char *dir, QwenConfig *cfg, Error *err) {
    char path[2048];
    if (path_join(path, sizeof path, dir, "config.json")) return error_set(err, "%s: path too long", dir);
    if (!file_exists(path)) {
        if (!dir_exists(dir)) return error_set(err, "%s: no such model directory", dir);
        return error_set(err, "%s: no config.json (a Hugging Face model directory needs one)", dir);
    }
    return qwen_config_load(path, cfg, err);
}

int qwen_model_load_config_only(const char *dir, QwenConfig *cfg, QwenCheckpointInfo *info, Error *err) {
    if (info) memset(info, 0, sizeof *info);
    if (load_config(dir, cfg, err)) return -1;
    Ckpt c;
    if (ckpt_open(dir, &c, err)) return -1;
    int rc = ckpt_apply(&c, cfg, NULL, info, err);
    ckpt_close(&c);
    return rc;
}

// The fresh parameter buffer is touched page by page during conversion; with 2 MB pages that is
// 512x fewer page faults (numpy does the same for large arrays). Only a hint: errors are ignored.
static void advise_huge_pages(void *p, size_t bytes) {
#ifdef MADV_HUGEPAGE
    const uintptr_t huge = (uintptr_t)2 << 20;
    uintptr_t start = ((uintptr_t)p + huge - 1) & ~(huge - 1), end = ((uintptr_t)p + bytes) & ~(huge - 1);
    if (end > start) madvise((void *)start, end - start, MADV_HUGEPAGE);
#else
    (void)p;
    (void)bytes;
#endif
}

int qwen_model_load_ex(const char *dir, QwenModel *m, QwenCheckpointInfo *info, Error *err) {
    memset(m, 0, sizeof *m);
    if (info) memset(info, 0, sizeof *info);
    QwenConfig cfg;
    if (load_config(dir, &cfg, err)) return -1;
    Ckpt c;
    if (ckpt_open(dir, &c, err)) return -1;
    if (qwen_model_init(m, &cfg, err)) {
        ckpt_close(&c);
        return -1;
    }
    advise_huge_pages(m->params, m->num_params * sizeof(float));
    int rc = ckpt_apply(&c, &cfg, m, info, err);
    ckpt_close(&c);
    if (rc) qwen_model_free(m);
    return rc;
}

int qwen_model_load(const char *dir, QwenModel *m, Error *err) { return qwen_model_load_ex(dir, m, NULL, err); }

// ---------------------------------------------------------------------------------------------
// saving

static const char *torch_dtype_for(StDtype dt) {
    switch (dt) {
    case ST_F32: return "float32";
    case ST_BF16: return "bfloat16";
    case ST_F16: return "float16";
    default: return NULL;
    }
}

int qwen_model_save(const char *dir, const QwenModel *m, StDtype dtype, Error *err) {
    const char *td = torch_dtype_for(dtype);
    if (!td) return error_set(err, "%s: cannot save weights as %s (F32, BF16 or F16)", dir, st_dtype_name(dtype));
    if (!m || !m->params) return error_set(err, "%s: no model to save", dir);
    if (dir_create(dir, err)) return -1;
    char cfg_path[2048], st_path[2048];
    if (path_join(cfg_path, sizeof cfg_path, dir, "config.json") ||
        path_join(st_path, sizeof st_path, dir, "model.safetensors"))
        return error_set(err, "%s: path too long", dir);

    QwenConfig cfg = m->cfg;
    snprintf(cfg.torch_dtype, sizeof cfg.torch_dtype, "%s", td);
    int n = qwen_num_tensors(&cfg);
    ParamInfo *table = malloc(sizeof(ParamInfo) * n);
    StWriter *w = st_writer_new();
    if (!table || !w) {
        free(table);
        st_writer_free(w);
        return error_set(err, "out of memory");
    }
    qwen_param_table(&cfg, table);
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        int64_t shape[2];
        int nd = table[i].ndim;
        if (nd == 1) shape[0] = table[i].cols;
        else shape[0] = table[i].rows, shape[1] = table[i].cols;
        rc = st_writer_add_f32(w, table[i].name, dtype, nd, shape, m->params + table[i].offset, err);
    }
    if (!rc) rc = st_writer_save(w, st_path, err);
    st_writer_free(w);
    free(table);
    if (rc) return -1;

    cJSON *j = qwen_config_to_json(&cfg);
    char *text = j ? cJSON_Print(j) : NULL;
    cJSON_Delete(j);
    if (!text) return error_set(err, "%s: out of memory serialising config.json", cfg_path);
    size_t len = strlen(text);
    char *withnl = malloc(len + 2);
    if (!withnl) {
        cJSON_free(text);
        return error_set(err, "out of memory");
    }
    memcpy(withnl, text, len);
    withnl[len] = '\n';
    cJSON_free(text);
    rc = file_write_atomic(cfg_path, withnl, len + 1, err);
    free(withnl);
    return rc;
}

int qwen_checkpoint_copy_aux_files(const char *src_dir, const char *dst_dir, Error *err) {
    static const char *const names[] = {"tokenizer.json", "tokenizer.model", "tokenizer_config.json", "vocab.json",
                                        "merges.txt",              "special_tokens_map.json", "added_tokens.json",
                                        "generation_config.json"};
    int copied = 0;
    if (dir_create(dst_dir, err)) return -1;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char src[2048], dst[2048];
        if (path_join(src, sizeof src, src_dir, names[i]) || path_join(dst, sizeof dst, dst_dir, names[i]))
            return error_set(err, "%s: path too long", src_dir);
        if (!file_exists(src)) continue;
        size_t len;
        char *data = file_read_all(src, &len, err);
        if (!data) return -1;
        int rc = file_write_atomic(dst, data, len, err);
        free(data);
        if (rc) return -1;
        copied++;
    }
    return copied;
}

// ---------------------------------------------------------------------------------------------
// memory estimate

size_t qwen_memory_estimate(const QwenConfig *cfg, size_t context_tokens, QwenMemoryEstimate *out) {
    QwenMemoryEstimate e = {0};
    e.num_params = qwen_num_params(cfg);
    e.weights_fp32 = e.num_params * 4;
    e.weights_bf16 = e.num_params * 2;
    e.grads_fp32 = e.num_params * 4;
    e.adamw_state = e.num_params * 8;
    e.kv_cache_per_token = (size_t)2 * cfg->num_layers * cfg->num_kv_heads * cfg->head_dim * 4;
    e.logits = context_tokens * (size_t)cfg->vocab_size * 4;
    e.inference = e.weights_fp32 + context_tokens * e.kv_cache_per_token + e.logits;
    e.training_adamw = e.weights_fp32 + e.grads_fp32 + e.adamw_state + 2 * e.logits;
    if (out) *out = e;
    return e.training_adamw;
}
