#include <math.h>
#include <stdio.h>
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
