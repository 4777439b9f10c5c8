// Qwen2 / Qwen3 decoder-only model: configuration, parameter layout, and the model handle.
// Parameters live in one contiguous fp32 buffer (llm.c style), tensor-major: all layers' q_proj
// weights are one block, then all k_proj, and so on. Gradients and optimizer state use the same
// layout, so one offset addresses a tensor in all of them.
#ifndef PIONRL_QWEN_H
#define PIONRL_QWEN_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "core/error.h"
#include "core/param.h"

typedef enum { ARCH_QWEN2 = 2, ARCH_QWEN3 = 3 } QwenArch;

typedef struct {
    QwenArch arch;
    int vocab_size;         // rows of embed_tokens / lm_head (may exceed the tokenizer's id range)
    int hidden_size;        // D
    int intermediate_size;  // F
    int num_layers;         // L
    int num_heads;          // Hq
    int num_kv_heads;       // Hkv (grouped-query attention: Hq % Hkv == 0)
    int head_dim;           // hd (Qwen3 sets it explicitly; Qwen2 uses D / Hq)
    int max_position_embeddings;
    float rms_norm_eps;
    double rope_theta;
    int tie_word_embeddings;
    int attention_bias;     // q/k/v projection biases (Qwen2)
    int qk_norm;            // per-head RMSNorm on q and k (Qwen3)
    char torch_dtype[16];   // dtype named in config.json ("bfloat16", "float32", ...)
} QwenConfig;

// Pointers into the parameter (or gradient) buffer. Per-layer tensors are [L, ...] blocks.
typedef struct {
    float *embed;       // [V, D]            model.embed_tokens.weight
    float *attn_norm;   // [L, D]            input_layernorm.weight
    float *wq;          // [L, Hq*hd, D]     self_attn.q_proj.weight
    float *wk;          // [L, Hkv*hd, D]    self_attn.k_proj.weight
    float *wv;          // [L, Hkv*hd, D]    self_attn.v_proj.weight
    float *bq;          // [L, Hq*hd]        q_proj.bias   (NULL unless attention_bias)
    float *bk;          // [L, Hkv*hd]       k_proj.bias
    float *bv;          // [L, Hkv*hd]       v_proj.bias
    float *q_norm;      // [L, hd]           self_attn.q_norm.weight (NULL unless qk_norm)
    float *k_norm;      // [L, hd]           self_attn.k_norm.weight
    float *wo;          // [L, D, Hq*hd]     self_attn.o_proj.weight
    float *mlp_norm;    // [L, D]            post_attention_layernorm.weight
    float *w_gate;      // [L, F, D]         mlp.gate_proj.weight
    float *w_up;        // [L, F, D]         mlp.up_proj.weight
    float *w_down;      // [L, D, F]         mlp.down_proj.weight
    float *final_norm;  // [D]               model.norm.weight
    float *lm_head;     // [V, D]            lm_head.weight (== embed when tied)
} QwenWeights;

typedef struct {
    QwenConfig cfg;
    size_t num_params;  // floats in params
    float *params;      // owned, contiguous
    QwenWeights w;      // views into params
} QwenModel;

// Config: parse a Hugging Face config.json object (Qwen2ForCausalLM / Qwen3ForCausalLM).
int qwen_config_parse(const cJSON *root, const char *where, QwenConfig *cfg, Error *err);
int qwen_config_load(const char *config_json_path, QwenConfig *cfg, Error *err);
int qwen_config_validate(const QwenConfig *cfg, const char *where, Error *err);
// Serialises cfg as a Hugging Face config.json object (caller frees with cJSON_Delete).
cJSON *qwen_config_to_json(const QwenConfig *cfg);

// Layout.
size_t qwen_num_params(const QwenConfig *cfg);
void qwen_weights_point(const QwenConfig *cfg, float *base, QwenWeights *w);
// Number of tensors in the table (embed, per-layer tensors, norm, lm_head unless tied).
int qwen_num_tensors(const QwenConfig *cfg);
// Fills out[0 .. qwen_num_tensors) with names, offsets, shapes and optimizer roles.
void qwen_param_table(const QwenConfig *cfg, ParamInfo *out);

// Model lifetime. qwen_model_init allocates a zeroed buffer for cfg.
int qwen_model_init(QwenModel *m, const QwenConfig *cfg, Error *err);
void qwen_model_free(QwenModel *m);
// Fills the parameters like transformers' _init_weights (normal(0, std) for matrices, ones for
// norms, zeros for biases); deterministic in seed. For tests, benchmarks and new models.
void qwen_model_init_random(QwenModel *m, unsigned long long seed, float std);

#endif
