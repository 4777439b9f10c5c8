#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "policy/qwen.h"

int qwen_config_validate(const QwenConfig *c, const char *where, Error *err) {
    if (c->arch != ARCH_QWEN2 && c->arch != ARCH_QWEN3) return error_set(err, "%s: unknown architecture", where);
    struct {
        const char *name;
        int v;
    } pos[] = {{"vocab_size", c->vocab_size},
               {"hidden_size", c->hidden_size},
               {"intermediate_size", c->intermediate_size},
               {"num_hidden_layers", c->num_layers},
               {"num_attention_heads", c->num_heads},
               {"num_key_value_heads", c->num_kv_heads},
               {"head_dim", c->head_dim},
               {"max_position_embeddings", c->max_position_embeddings}};
    for (size_t i = 0; i < sizeof pos / sizeof pos[0]; i++)
        if (pos[i].v <= 0) return error_set(err, "%s: %s must be positive (got %d)", where, pos[i].name, pos[i].v);
    if (c->num_heads % c->num_kv_heads != 0)
        return error_set(err, "%s: num_attention_heads (%d) is not a multiple of num_key_value_heads (%d)", where,
                         c->num_heads, c->num_kv_heads);
    if (c->head_dim % 2 != 0) return error_set(err, "%s: head_dim must be even for rotary embeddings", where);
    if (!(c->rms_norm_eps > 0) || !isfinite(c->rms_norm_eps))
        return error_set(err, "%s: rms_norm_eps must be a positive number", where);
    if (!(c->rope_theta > 0) || !isfinite(c->rope_theta))
        return error_set(err, "%s: rope_theta must be a positive number", where);
    // Guard against configs whose parameter count overflows (hostile or corrupt files).
    double n = (double)c->vocab_size * c->hidden_size * 2 +
               (double)c->num_layers * ((double)c->hidden_size * c->intermediate_size * 3 +
                                        4.0 * c->hidden_size * (double)c->num_heads * c->head_dim);
    if (n > 4e11) return error_set(err, "%s: model too large (%.3g parameters)", where, n);
    return 0;
}

// ---------------------------------------------------------------------------------------------
// Hugging Face config.json. Hugging Face configs carry many keys we do not use (token ids, dropout,
// init ranges, versions); those are ignored. Keys whose non-default value would change the math
// (rope scaling, sliding windows, other activations) are rejected, so a model never runs silently
// with the wrong attention.

static int get_arch(const cJSON *root, const char *where, QwenArch *arch, Error *err) {
    const cJSON *archs = cJSON_GetObjectItemCaseSensitive(root, "architectures");
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    const char *name = NULL;
    if (archs && !cJSON_IsNull(archs)) {
        if (!cJSON_IsArray(archs) || cJSON_GetArraySize(archs) < 1 || !cJSON_IsString(archs->child))
            return error_set(err, "%s: 'architectures' must be a list of strings", where);
        if (cJSON_GetArraySize(archs) > 1)
            return error_set(err, "%s: 'architectures' lists %d classes; expected one", where,
                             cJSON_GetArraySize(archs));
        name = archs->child->valuestring;
        if (!strcmp(name, "Qwen3ForCausalLM")) *arch = ARCH_QWEN3;
        else if (!strcmp(name, "Qwen2ForCausalLM")) *arch = ARCH_QWEN2;
        else
            return error_set(err, "%s: unsupported architecture '%s' (supported: Qwen3ForCausalLM, Qwen2ForCausalLM)",
                             where, name);
    }
    if (mt && !cJSON_IsNull(mt)) {
        if (!cJSON_IsString(mt)) return error_set(err, "%s: 'model_type' must be a string", where);
        QwenArch from_type;
        if (!strcmp(mt->valuestring, "qwen3")) from_type = ARCH_QWEN3;
        else if (!strcmp(mt->valuestring, "qwen2")) from_type = ARCH_QWEN2;
        else
            return error_set(err, "%s: unsupported model_type '%s' (supported: qwen3, qwen2)", where,
                             mt->valuestring);
        if (name && from_type != *arch)
            return error_set(err, "%s: model_type '%s' contradicts architectures '%s'", where, mt->valuestring,
                             name);
        *arch = from_type;
        return 0;
    }
    if (!name) return error_set(err, "%s: neither 'architectures' nor 'model_type' is given", where);
    return 0;
}

// rope_scaling (and transformers v5's rope_parameters) may only ask for the plain rotary embedding.
static int check_rope(const cJSON *root, const char *where, double *theta, Error *err) {
    const char *keys[] = {"rope_scaling", "rope_parameters"};
    for (int i = 0; i < 2; i++) {
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(root, keys[i]);
        if (!r || cJSON_IsNull(r)) continue;
        if (!cJSON_IsObject(r)) return error_set(err, "%s: '%s' must be an object or null", where, keys[i]);
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(r, "rope_type");
        if (!type) type = cJSON_GetObjectItemCaseSensitive(r, "type");
        if (type && !(cJSON_IsString(type) && !strcmp(type->valuestring, "default")))
            return error_set(err, "%s: %s type '%s' is not supported (only the default rotary embedding; "
                                  "remove %s to run without scaling)",
                             where, keys[i], cJSON_IsString(type) ? type->valuestring : "?", keys[i]);
        if (!type && i == 0)
            return error_set(err, "%s: rope_scaling without a rope_type is not supported", where);
        char sub[256];
        snprintf(sub, sizeof sub, "%s.%s", where, keys[i]);
        if (json_get_double(r, "rope_theta", 0, theta, sub, err)) return -1;
    }
    return 0;
}

static int check_unsupported(const cJSON *root, const char *where, Error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "use_sliding_window");
    if (v && cJSON_IsTrue(v))
        return error_set(err, "%s: use_sliding_window true is not supported (full attention only)", where);
    v = cJSON_GetObjectItemCaseSensitive(root, "layer_types");
    if (v && cJSON_IsArray(v))
        for (const cJSON *it = v->child; it; it = it->next)
            if (!cJSON_IsString(it) || strcmp(it->valuestring, "full_attention"))
                return error_set(err, "%s: layer_types entry '%s' is not supported (full_attention only)", where,
                                 cJSON_IsString(it) ? it->valuestring : "?");
    v = cJSON_GetObjectItemCaseSensitive(root, "quantization_config");
    if (v && !cJSON_IsNull(v)) {
        const cJSON *qm = cJSON_IsObject(v) ? cJSON_GetObjectItemCaseSensitive(v, "quant_method") : NULL;
        return error_set(err, "%s: quantized checkpoints are not supported (quantization_config%s%s); use the bf16 model",
                         where, cJSON_IsString(qm) ? " quant_method " : "", cJSON_IsString(qm) ? qm->valuestring : "");
    }
    v = cJSON_GetObjectItemCaseSensitive(root, "hidden_act");
    if (v && !cJSON_IsNull(v) && !(cJSON_IsString(v) && !strcmp(v->valuestring, "silu")))
        return error_set(err, "%s: hidden_act '%s' is not supported (silu only)", where,
                         cJSON_IsString(v) ? v->valuestring : "?");
    return 0;
}

int qwen_config_parse(const cJSON *root, const char *where, QwenConfig *cfg, Error *err) {
    memset(cfg, 0, sizeof *cfg);
    if (!cJSON_IsObject(root)) return error_set(err, "%s: expected a JSON object", where);
    if (get_arch(root, where, &cfg->arch, err)) return -1;
    if (check_unsupported(root, where, err)) return -1;
    int qwen3 = cfg->arch == ARCH_QWEN3;
    if (json_get_int(root, "vocab_size", 1, &cfg->vocab_size, where, err) ||
        json_get_int(root, "hidden_size", 1, &cfg->hidden_size, where, err) ||
        json_get_int(root, "intermediate_size", 1, &cfg->intermediate_size, where, err) ||
        json_get_int(root, "num_hidden_layers", 1, &cfg->num_layers, where, err) ||
        json_get_int(root, "num_attention_heads", 1, &cfg->num_heads, where, err))
        return -1;
    cfg->num_kv_heads = cfg->num_heads;
    if (json_get_int(root, "num_key_value_heads", 0, &cfg->num_kv_heads, where, err)) return -1;
    // Defaults are transformers' config-class defaults: Qwen3Config has head_dim=128, Qwen2 derives it.
    cfg->head_dim = qwen3 ? 128 : (cfg->num_heads > 0 ? cfg->hidden_size / cfg->num_heads : 0);
    if (json_get_int(root, "head_dim", 0, &cfg->head_dim, where, err)) return -1;
    cfg->max_position_embeddings = 32768;
    if (json_get_int(root, "max_position_embeddings", 0, &cfg->max_position_embeddings, where, err)) return -1;
    double eps = 1e-6, theta = 10000.0;
    if (json_get_double(root, "rms_norm_eps", 0, &eps, where, err) ||
        json_get_double(root, "rope_theta", 0, &theta, where, err) || check_rope(root, where, &theta, err))
        return -1;
    cfg->rms_norm_eps = (float)eps;
    cfg->rope_theta = theta;
    if (json_get_bool(root, "tie_word_embeddings", 0, &cfg->tie_word_embeddings, where, err)) return -1;
    // Qwen2's attention always has q/k/v biases (modeling_qwen2 ignores attention_bias). Qwen3's
    // attention_bias would add biases to o_proj as well, which this layout does not hold.
    int bias = 0;
    if (json_get_bool(root, "attention_bias", 0, &bias, where, err)) return -1;
    if (qwen3 && bias)
        return error_set(err, "%s: attention_bias true is not supported for Qwen3 (q/k/v/o biases)", where);
    cfg->attention_bias = qwen3 ? 0 : 1;
    cfg->qk_norm = qwen3;
    // transformers >= 4.56 writes "dtype"; older versions "torch_dtype".
    snprintf(cfg->torch_dtype, sizeof cfg->torch_dtype, "float32");
    if (json_get_string(root, "torch_dtype", 0, cfg->torch_dtype, sizeof cfg->torch_dtype, where, err) ||
        json_get_string(root, "dtype", 0, cfg->torch_dtype, sizeof cfg->torch_dtype, where, err))
        return -1;
    return qwen_config_validate(cfg, where, err);
}

int qwen_config_load(const char *config_json_path, QwenConfig *cfg, Error *err) {
    cJSON *root = json_parse_file(config_json_path, err);
    if (!root) return -1;
    int rc = qwen_config_parse(root, config_json_path, cfg, err);
    cJSON_Delete(root);
    return rc;
}

cJSON *qwen_config_to_json(const QwenConfig *c) {
    int qwen3 = c->arch == ARCH_QWEN3;
    cJSON *j = cJSON_CreateObject();
    if (!j) return NULL;
    cJSON *archs = cJSON_AddArrayToObject(j, "architectures");
    if (archs) cJSON_AddItemToArray(archs, cJSON_CreateString(qwen3 ? "Qwen3ForCausalLM" : "Qwen2ForCausalLM"));
    cJSON_AddStringToObject(j, "model_type", qwen3 ? "qwen3" : "qwen2");
    cJSON_AddNumberToObject(j, "vocab_size", c->vocab_size);
    cJSON_AddNumberToObject(j, "hidden_size", c->hidden_size);
    cJSON_AddNumberToObject(j, "intermediate_size", c->intermediate_size);
    cJSON_AddNumberToObject(j, "num_hidden_layers", c->num_layers);
    cJSON_AddNumberToObject(j, "num_attention_heads", c->num_heads);
    cJSON_AddNumberToObject(j, "num_key_value_heads", c->num_kv_heads);
    cJSON_AddNumberToObject(j, "head_dim", c->head_dim);
    cJSON_AddNumberToObject(j, "max_position_embeddings", c->max_position_embeddings);
    // Print the float eps through its shortest decimal so 1e-6f round-trips as 1e-06, not 9.99e-07.
    char eps[32];
    snprintf(eps, sizeof eps, "%.9g", (double)c->rms_norm_eps);
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(eps, sizeof eps, "%.*g", prec, (double)c->rms_norm_eps);
        if ((float)strtod(eps, NULL) == c->rms_norm_eps) break;
    }
    cJSON_AddItemToObject(j, "rms_norm_eps", cJSON_CreateNumber(strtod(eps, NULL)));
    cJSON_AddNumberToObject(j, "rope_theta", c->rope_theta);
    cJSON_AddNullToObject(j, "rope_scaling");
    cJSON_AddBoolToObject(j, "tie_word_embeddings", c->tie_word_embeddings);
    cJSON_AddBoolToObject(j, "attention_bias", qwen3 ? 0 : 1);
    cJSON_AddStringToObject(j, "hidden_act", "silu");
    cJSON_AddBoolToObject(j, "use_sliding_window", 0);
    cJSON_AddNumberToObject(j, "attention_dropout", 0.0);
    cJSON_AddStringToObject(j, "torch_dtype", c->torch_dtype[0] ? c->torch_dtype : "float32");
    return j;
}
