// pionrl inspect: what a checkpoint directory holds (architecture, sizes, on-disk dtypes) and how
// much memory inference and AdamW training need, without loading the weights unless --verify.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "core/fileio.h"
#include "policy/qwen.h"
#include "policy/qwen_checkpoint.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: pionrl inspect --model DIR [--json] [--context N] [--verify]\n"
            "\n"
            "Describes a Qwen2/Qwen3 checkpoint directory (config.json + model.safetensors, or shards listed\n"
            "by model.safetensors.index.json): architecture, dimensions, parameter counts per role, on-disk\n"
            "dtypes, and memory estimates. Every safetensors header is validated against config.json; the\n"
            "weights themselves are only read with --verify.\n"
            "\n"
            "  --model DIR     checkpoint directory (required)\n"
            "  --json          print one JSON object instead of text\n"
            "  --context N     tokens of KV cache / logits in the memory estimate (default 4096)\n"
            "  --verify        also load every tensor (fp32 conversion, NaN/Inf check)\n");
}

static void human_bytes(char *out, size_t n, double b) {
    const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (b >= 1024 && u < 4) b /= 1024, u++;
    snprintf(out, n, u ? "%.2f %s" : "%.0f %s", b, units[u]);
}

static void human_count(char *out, size_t n, size_t c) {
    if (c >= 1000000000) snprintf(out, n, "%.3fB", c / 1e9);
    else if (c >= 1000000) snprintf(out, n, "%.2fM", c / 1e6);
    else if (c >= 1000) snprintf(out, n, "%.1fK", c / 1e3);
    else snprintf(out, n, "%zu", c);
}

// Parameter counts by what the optimizers see.
typedef struct {
    size_t embedding, lm_head, attn_matrix, mlp_matrix, norm, bias;
} RoleCounts;

static RoleCounts count_roles(const QwenConfig *cfg) {
    RoleCounts r = {0};
    int n = qwen_num_tensors(cfg);
    ParamInfo *t = malloc(sizeof(ParamInfo) * n);
    if (!t) return r;
    qwen_param_table(cfg, t);
    for (int i = 0; i < n; i++) {
        size_t k = param_numel(&t[i]);
        switch (t[i].role) {
        case ROLE_EMBEDDING: r.embedding += k; break;
        case ROLE_LM_HEAD: r.lm_head += k; break;
        case ROLE_NORM: r.norm += k; break;
        case ROLE_BIAS: r.bias += k; break;
        case ROLE_MATRIX:
            if (t[i].heads != HEADS_NONE) r.attn_matrix += k;
            else r.mlp_matrix += k;
            break;
        }
    }
    free(t);
    return r;
}

static void print_text(const char *dir, const QwenConfig *c, const QwenCheckpointInfo *info, const RoleCounts *r,
                       const QwenMemoryEstimate *m, size_t context, int verified) {
    char a[32], b[32], d[32], e[32];
    printf("model          %s\n", dir);
    printf("architecture   %s\n", c->arch == ARCH_QWEN3 ? "Qwen3ForCausalLM" : "Qwen2ForCausalLM");
    printf("layers %d, hidden %d, intermediate %d, heads %d (kv %d), head_dim %d, vocab %d\n", c->num_layers,
           c->hidden_size, c->intermediate_size, c->num_heads, c->num_kv_heads, c->head_dim, c->vocab_size);
    printf("rope_theta %g, rms_norm_eps %g, max positions %d\n", c->rope_theta, (double)c->rms_norm_eps,
           c->max_position_embeddings);
    printf("tied embeddings %s, q/k norm %s, q/k/v bias %s, config dtype %s\n", c->tie_word_embeddings ? "yes" : "no",
           c->qk_norm ? "yes" : "no", c->attention_bias ? "yes" : "no", c->torch_dtype);
    human_bytes(a, sizeof a, (double)info->file_bytes);
    if (info->num_files == 0) printf("files          none (config.json only; sizes below are from the config)\n");
    else
        printf("files          %d%s, %s\n", info->num_files,
               info->sharded ? " (sharded, index.json)" : " (model.safetensors)", a);
    for (int k = 0; k < QWEN_CKPT_NUM_DTYPES; k++)
        if (info->tensors_by_dtype[k]) {
            human_bytes(a, sizeof a, (double)info->bytes_by_dtype[k]);
            printf("on disk        %s: %zu tensors, %s\n", st_dtype_name((StDtype)k), info->tensors_by_dtype[k], a);
        }
    if (info->ignored_lm_head)
        printf("note           lm_head.weight is stored although embeddings are tied: ignored, the embeddings are "
               "used (as transformers does)%s\n",
               info->ignored_lm_head_differs ? "; WARNING: it differs from the embeddings" : "");
    if (info->ignored_buffers) printf("note           %d rotary inv_freq buffers ignored\n", info->ignored_buffers);
    human_count(a, sizeof a, m->num_params);
    printf("parameters     %zu (%s)\n", m->num_params, a);
    struct {
        const char *name;
        size_t n;
    } rows[] = {{"embedding", r->embedding},     {"lm_head", r->lm_head}, {"attention q/k/v/o", r->attn_matrix},
                {"mlp gate/up/down", r->mlp_matrix}, {"norms", r->norm},     {"biases", r->bias}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        if (!rows[i].n && strcmp(rows[i].name, "lm_head")) continue;
        human_count(a, sizeof a, rows[i].n);
        if (!rows[i].n) printf("  %-18s tied to the embedding\n", rows[i].name);
        else printf("  %-18s %12zu (%s, %.1f%%)\n", rows[i].name, rows[i].n, a, 100.0 * rows[i].n / m->num_params);
    }
    printf("memory (fp32, %zu tokens of context; activations not included)\n", context);
    human_bytes(a, sizeof a, (double)m->weights_fp32);
    human_bytes(b, sizeof b, (double)(context * m->kv_cache_per_token));
    human_bytes(d, sizeof d, (double)m->logits);
    human_bytes(e, sizeof e, (double)m->inference);
    printf("  inference      %s = weights %s + KV cache %s + logits %s\n", e, a, b, d);
    human_bytes(b, sizeof b, (double)m->grads_fp32);
    human_bytes(d, sizeof d, (double)m->adamw_state);
    human_bytes(e, sizeof e, (double)m->training_adamw);
    printf("  train (AdamW)  %s = weights %s + grads %s + AdamW m,v %s + logits and their grad\n", e, a, b, d);
    human_bytes(a, sizeof a, (double)m->weights_bf16);
    printf("  a bf16 copy of the weights (CUDA compute, bf16 checkpoint) is %s\n", a);
    printf("  Muon/Pion keep one momentum buffer per matrix (half of AdamW's state there); spectrum-preserving\n"
           "  Pion keeps out^2 + in^2 floats per matrix; a reference policy for KL adds one more weight copy.\n");
    if (verified) printf("verified       all tensors loaded, finite\n");
}

static void print_json(const char *dir, const QwenConfig *c, const QwenCheckpointInfo *info, const RoleCounts *r,
                       const QwenMemoryEstimate *m, size_t context, int verified) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "model", dir);
    cJSON_AddItemToObject(j, "config", qwen_config_to_json(c));
    cJSON *p = cJSON_AddObjectToObject(j, "parameters");
    cJSON_AddNumberToObject(p, "total", (double)m->num_params);
    cJSON_AddNumberToObject(p, "embedding", (double)r->embedding);
    cJSON_AddNumberToObject(p, "lm_head", (double)r->lm_head);
    cJSON_AddNumberToObject(p, "attention_matrices", (double)r->attn_matrix);
    cJSON_AddNumberToObject(p, "mlp_matrices", (double)r->mlp_matrix);
    cJSON_AddNumberToObject(p, "norms", (double)r->norm);
    cJSON_AddNumberToObject(p, "biases", (double)r->bias);
    cJSON *f = cJSON_AddObjectToObject(j, "files");
    cJSON_AddNumberToObject(f, "count", info->num_files);
    cJSON_AddBoolToObject(f, "sharded", info->sharded);
    cJSON_AddNumberToObject(f, "bytes", (double)info->file_bytes);
    cJSON_AddNumberToObject(f, "tensors", info->num_tensors);
    cJSON_AddBoolToObject(f, "ignored_lm_head", info->ignored_lm_head);
    cJSON_AddBoolToObject(f, "ignored_lm_head_differs", info->ignored_lm_head_differs);
    cJSON_AddNumberToObject(f, "ignored_buffers", info->ignored_buffers);
    cJSON *dt = cJSON_AddObjectToObject(f, "dtypes");
    for (int k = 0; k < QWEN_CKPT_NUM_DTYPES; k++)
        if (info->tensors_by_dtype[k]) {
            cJSON *o = cJSON_AddObjectToObject(dt, st_dtype_name((StDtype)k));
            cJSON_AddNumberToObject(o, "tensors", (double)info->tensors_by_dtype[k]);
            cJSON_AddNumberToObject(o, "bytes", (double)info->bytes_by_dtype[k]);
        }
    cJSON *mem = cJSON_AddObjectToObject(j, "memory_bytes");
    cJSON_AddNumberToObject(mem, "context_tokens", (double)context);
    cJSON_AddNumberToObject(mem, "weights_fp32", (double)m->weights_fp32);
    cJSON_AddNumberToObject(mem, "weights_bf16", (double)m->weights_bf16);
    cJSON_AddNumberToObject(mem, "grads_fp32", (double)m->grads_fp32);
    cJSON_AddNumberToObject(mem, "adamw_state", (double)m->adamw_state);
    cJSON_AddNumberToObject(mem, "kv_cache_per_token", (double)m->kv_cache_per_token);
    cJSON_AddNumberToObject(mem, "logits", (double)m->logits);
    cJSON_AddNumberToObject(mem, "inference", (double)m->inference);
    cJSON_AddNumberToObject(mem, "training_adamw", (double)m->training_adamw);
    cJSON_AddBoolToObject(j, "verified", verified);
    char *s = cJSON_Print(j);
    if (s) printf("%s\n", s);
    cJSON_free(s);
    cJSON_Delete(j);
}

int cmd_inspect(int argc, char **argv) {
    const char *dir = NULL;
    int json = 0, verify = 0;
    long context = 4096;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--model") && i + 1 < argc) {
            dir = argv[++i];
        } else if (!strcmp(argv[i], "--json")) {
            json = 1;
        } else if (!strcmp(argv[i], "--verify")) {
            verify = 1;
        } else if (!strcmp(argv[i], "--context") && i + 1 < argc) {
            char *end;
            context = strtol(argv[++i], &end, 10);
            if (*end || context < 0 || context > 100000000) {
                fprintf(stderr, "pionrl inspect: --context must be a non-negative integer\n");
                return 2;
            }
        } else {
            fprintf(stderr, "pionrl inspect: unknown or incomplete option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (!dir) {
        fprintf(stderr, "pionrl inspect: --model DIR is required\n");
        usage(stderr);
        return 2;
    }
    QwenConfig cfg;
    QwenCheckpointInfo info;
    Error err;
    // A directory with config.json but no weights yet (e.g. sizing a model before downloading it):
    // describe the config and say so.
    char single[2048], index[2048], cfg_path[2048];
    if (path_join(single, sizeof single, dir, "model.safetensors") ||
        path_join(index, sizeof index, dir, "model.safetensors.index.json") ||
        path_join(cfg_path, sizeof cfg_path, dir, "config.json")) {
        fprintf(stderr, "pionrl inspect: %s: path too long\n", dir);
        return 2;
    }
    int no_weights = file_exists(cfg_path) && !file_exists(single) && !file_exists(index);
    if (no_weights && verify) {
        fprintf(stderr, "pionrl inspect: %s: no model.safetensors or model.safetensors.index.json to verify\n", dir);
        return 1;
    }
    if (no_weights) {
        memset(&info, 0, sizeof info);
        if (qwen_config_load(cfg_path, &cfg, &err)) {
            fprintf(stderr, "pionrl inspect: %s\n", err.msg);
            return 1;
        }
    } else if (verify) {
        QwenModel m;
        if (qwen_model_load_ex(dir, &m, &info, &err)) {
            fprintf(stderr, "pionrl inspect: %s\n", err.msg);
            return 1;
        }
        cfg = m.cfg;
        qwen_model_free(&m);
    } else if (qwen_model_load_config_only(dir, &cfg, &info, &err)) {
        fprintf(stderr, "pionrl inspect: %s\n", err.msg);
        return 1;
    }
    RoleCounts roles = count_roles(&cfg);
    QwenMemoryEstimate mem;
    qwen_memory_estimate(&cfg, (size_t)context, &mem);
    if (json) print_json(dir, &cfg, &info, &roles, &mem, (size_t)context, verify);
    else print_text(dir, &cfg, &info, &roles, &mem, (size_t)context, verify);
    return 0;
}
