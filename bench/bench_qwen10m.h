// The ~10M-parameter Qwen3 the CPU benchmarks share (bench_model.c, bench_rl_step.c; the PyTorch
// peers get the same numbers on their command lines): V 8192, D 256, F 768, 10 layers, 4 query /
// 2 kv heads of 64, tied embeddings, q/k norm.
#ifndef PIONRL_BENCH_QWEN10M_H
#define PIONRL_BENCH_QWEN10M_H

#include <string.h>

#include "policy/qwen.h"

enum { V = 8192, D = 256, F = 768, L = 10, HQ = 4, HKV = 2, HD = 64 };

static inline QwenConfig bench_qwen10m_config(void) {
    QwenConfig c;
    memset(&c, 0, sizeof c);
    c.arch = ARCH_QWEN3;
    c.vocab_size = V;
    c.hidden_size = D;
    c.intermediate_size = F;
    c.num_layers = L;
    c.num_heads = HQ;
    c.num_kv_heads = HKV;
    c.head_dim = HD;
    c.max_position_embeddings = 1024;
    c.rms_norm_eps = 1e-6f;
    c.rope_theta = 1e6;
    c.tie_word_embeddings = 1;
    c.qk_norm = 1;
    return c;
}

#endif
