// Small random-weight Qwen configurations for model tests (no checkpoint needed).
#ifndef PIONRL_TEST_QWEN_TINY_H
#define PIONRL_TEST_QWEN_TINY_H

#include <string.h>

#include "policy/qwen.h"

// Qwen3: q/k norm, tied lm_head. Qwen2: q/k/v biases, untied lm_head. 4 query heads over 2 kv
// heads of head_dim 8, two layers.
static inline QwenConfig qwen_tiny_config(int arch, int vocab, int hidden, int intermediate) {
    QwenConfig c;
    memset(&c, 0, sizeof c);
    c.arch = arch;
    c.vocab_size = vocab;
    c.hidden_size = hidden;
    c.intermediate_size = intermediate;
    c.num_layers = 2;
    c.num_heads = 4;
    c.num_kv_heads = 2;
    c.head_dim = 8;
    c.max_position_embeddings = 128;
    c.rms_norm_eps = 1e-6f;
    c.rope_theta = 10000;
    c.tie_word_embeddings = arch == ARCH_QWEN3;
    c.attention_bias = arch == ARCH_QWEN2;
    c.qk_norm = arch == ARCH_QWEN3;
    return c;
}

// A model of config c with random weights (normal, std) from seed; 0 or -1 with e set.
static inline int qwen_tiny_model(QwenModel *m, QwenConfig c, unsigned long long seed, float std, Error *e) {
    if (qwen_model_init(m, &c, e)) return -1;
    qwen_model_init_random(m, seed, std);
    return 0;
}

#endif
