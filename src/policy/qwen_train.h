// Full-sequence forward (training / scoring) and its exact backward.
//
// Input: B right-padded sequences of T tokens. The forward returns per-token log-probs
// logp[b, t] = log p(tokens[b, t+1] | tokens[b, 0..t]) for t < T-1 (and optionally the entropy of
// that next-token distribution), computing the lm_head only at positions marked in `need` (the
// completion tokens in RL; prompt positions cost no vocabulary GEMM). The backward computes the
// gradient of loss = sum_{b,t} w[b,t] * logp[b,t] w.r.t. every parameter (w = d loss / d logp, which
// is what GRPO/GMPO produce). When the scored rows' softmax fits QWEN_KEEP_PROBS_MAX_BYTES the
// forward keeps it for the backward (which then takes the lm_head's products over all rows at
// once); otherwise the backward recomputes the logits in chunks, so no large [tokens x vocab]
// buffer is ever held. The gradients agree to fp32 rounding: only the order in which the lm_head
// gradient sums its rows differs.
#ifndef PIONRL_QWEN_TRAIN_H
#define PIONRL_QWEN_TRAIN_H

#include "policy/qwen.h"

// The largest [N x vocab] softmax buffer qwen_acts_alloc keeps for the backward (N = B * T).
#define QWEN_KEEP_PROBS_MAX_BYTES ((size_t)256 << 20)

typedef struct {
    int B, T;          // capacity this was allocated for
    int batch, len;    // shape of the last forward call (batch <= B, len <= T, batch*len <= B*T)
    float temperature; // logits were divided by it in the last forward call
    // per layer (L blocks each), N = B*T rows
    float *x;       // [L, N, D] residual stream entering layer l
    float *ln1;     // [L, N, D]
    float *rstd1;   // [L, N]
    float *q_raw;   // [L, N, Hq*hd] projection output (+bias), before q_norm
    float *k_raw;   // [L, N, Hkv*hd]
    float *rstd_q;  // [L, N, Hq]   (qk_norm only)
    float *rstd_k;  // [L, N, Hkv]
    float *q;       // [L, N, Hq*hd] after norm and rotary
    float *k;       // [L, N, Hkv*hd]
    float *v;       // [L, N, Hkv*hd]
    float *probs;   // [L, B, Hq, T, T]
    float *att;     // [L, N, Hq*hd] attention output before o_proj
    float *x_mid;   // [L, N, D] residual after attention
    float *ln2;     // [L, N, D]
    float *rstd2;   // [L, N]
    float *gate;    // [L, N, F]
    float *up;      // [L, N, F]
    float *act;     // [L, N, F] silu(gate) * up
    float *x_out;   // [N, D] residual after the last layer
    float *lnf;     // [N, D]
    float *rstdf;   // [N]
    int *pos;       // [N] position of each row
    int *tokens;    // [N] copy of the input
    int *rows;      // [N] rows whose next token is scored (need[b,t]), in order
    int num_rows;
    float *probs_kept;  // [N, V] softmax of the scored rows (row order of `rows`), or NULL: recompute
    int probs_ready;    // probs_kept holds the last qwen_forward's softmax (its backward overwrites it)
    float *scratch; // backward work space
    size_t scratch_size;
    float *att_work;  // [att_threads, T, T] attention backward's dS, one block per thread
    int att_threads;  // threads the attention backward runs on (OpenMP's count at allocation)
    // Activation recomputation: only each layer's input x is kept; every other per-layer array
    // has one layer's room, and the backward re-runs a layer's forward from its input before
    // differentiating it (bit-identical gradients; one more forward of the layers).
    int recompute;
    // Matrix products (projections, lm_head, attention's scores and weighted sums, forward and
    // backward) from bfloat16-rounded inputs with fp32 accumulation (core/gemm_bf16.h; matmul_dtype
    // "bf16"). Norms, rotary, softmax, the loss and the gradients' sums stay fp32. 0 = fp32
    // throughout. Set after alloc.
    int matmul_bf16;
} QwenActs;

int qwen_acts_alloc(QwenActs *a, const QwenConfig *cfg, int B, int T, Error *err);
// The same with recompute set: activation memory ~ layer inputs + one layer instead of L layers.
int qwen_acts_alloc_ex(QwenActs *a, const QwenConfig *cfg, int B, int T, int recompute, Error *err);
void qwen_acts_free(QwenActs *a);
// Bytes qwen_acts_alloc(_ex) would allocate (for memory planning).
size_t qwen_acts_bytes(const QwenConfig *cfg, int B, int T);
size_t qwen_acts_bytes_ex(const QwenConfig *cfg, int B, int T, int recompute);

// tokens [B, T]; need [B, T-1] (NULL = all positions); logp, entropy [B, T-1] (entropy may be NULL).
// Log-probs are of softmax(logits / temperature) (TRL scores completions at the sampling
// temperature; pass 1 for the plain model). Positions not needed get logp = entropy = 0. Fails on
// token ids outside [0, vocab_size).
int qwen_forward(const QwenModel *m, QwenActs *a, const int *tokens, const unsigned char *need, int B, int T,
                 float temperature, float *logp, float *entropy, Error *err);
// Accumulates (+=) d(sum w * logp)/d params into grads (same layout as m->params). w is [B, T-1];
// only positions marked in the forward's `need` contribute. Call after qwen_forward on the same acts.
void qwen_backward(const QwenModel *m, QwenActs *a, const float *w, float *grads);

// Full logits [B*T, V] for every position (tests and tools; allocates nothing, uses acts).
int qwen_forward_logits(const QwenModel *m, QwenActs *a, const int *tokens, int B, int T, float *logits,
                        Error *err);

#endif
