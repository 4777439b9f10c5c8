// A named parameter tensor inside one contiguous fp32 buffer, with the role the optimizers need.
// The policy builds the table (src/policy/qwen_params.c); optimizers, checkpoints and metrics read
// it. Optimizers know matrices and roles, not transformers.
#ifndef PIONRL_PARAM_H
#define PIONRL_PARAM_H

#include <stddef.h>

typedef enum {
    ROLE_MATRIX,     // 2-D hidden matrix (attention projections, MLP): Muon / Pion / SP apply
    ROLE_EMBEDDING,  // token embedding (AdamW)
    ROLE_LM_HEAD,    // output projection when not tied (AdamW)
    ROLE_NORM,       // RMSNorm weights (AdamW)
    ROLE_BIAS,       // biases (AdamW)
} ParamRole;

// How a matrix splits into attention heads for per-head optimizer modes.
typedef enum {
    HEADS_NONE,  // whole matrix
    HEADS_ROWS,  // q/k/v_proj: rows are num_heads blocks of head_dim rows
    HEADS_COLS,  // o_proj: columns are num_heads blocks of head_dim columns
} HeadSplit;

typedef struct {
    char name[96];     // Hugging Face tensor name, e.g. model.layers.3.self_attn.q_proj.weight
    size_t offset;     // in floats, from the start of the parameter buffer
    int ndim;          // 1 or 2
    int rows, cols;    // shape (1-D: rows = 1, cols = length); row-major, out x in for Linear
    ParamRole role;
    HeadSplit heads;
    int num_heads, head_dim;
} ParamInfo;

static inline size_t param_numel(const ParamInfo *p) { return (size_t)p->rows * (size_t)p->cols; }

#endif
