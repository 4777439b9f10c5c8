// Hugging Face checkpoint directories for Qwen2/Qwen3: config.json plus model.safetensors, or
// sharded model-0000N-of-0000M.safetensors listed by model.safetensors.index.json. Tensor names are
// the Hugging Face ones (model.layers.N.self_attn.q_proj.weight, ...), so a downloaded model loads as
// is and a saved one loads back into transformers unchanged.
#ifndef PIONRL_QWEN_CHECKPOINT_H
#define PIONRL_QWEN_CHECKPOINT_H

#include <stddef.h>

#include "core/error.h"
#include "core/safetensors.h"
#include "policy/qwen.h"

#define QWEN_CKPT_NUM_DTYPES 9  // StDtype values (ST_F32 .. ST_BOOL)

// What was found on disk (filled by the load functions when not NULL).
typedef struct {
    int sharded;                                 // loaded through model.safetensors.index.json
    int num_files;                               // safetensors files opened
    int num_tensors;                             // tensors on disk, ignored ones included
    size_t tensors_by_dtype[QWEN_CKPT_NUM_DTYPES];  // counts of model tensors per StDtype
    size_t bytes_by_dtype[QWEN_CKPT_NUM_DTYPES];    // on-disk bytes of model tensors per StDtype
    size_t file_bytes;                           // total size of the safetensors files
    int ignored_lm_head;                         // tied model whose files also hold lm_head.weight
    int ignored_lm_head_differs;                 // ... and that copy is not equal to the embeddings
    int ignored_buffers;                         // rotary inv_freq buffers skipped
} QwenCheckpointInfo;

// Loads dir/config.json and the weights, converting every tensor to fp32 into a newly allocated
// model (free with qwen_model_free). Fails, naming file and tensor, on: a missing tensor, an
// unexpected extra tensor, a shape that does not match config.json, a non-floating dtype, NaN/Inf.
// Ignored: rotary inv_freq buffers; lm_head.weight of a tied model (transformers re-ties it to the
// embeddings after loading, so the embeddings win; info says whether the copy differed, so a caller
// can warn). info may be NULL.
int qwen_model_load(const char *dir, QwenModel *m, Error *err);
int qwen_model_load_ex(const char *dir, QwenModel *m, QwenCheckpointInfo *info, Error *err);
// Reads config.json and validates every safetensors header (names, shapes, dtypes) without
// converting any data: cheap even for a multi-GB model (for `pionrl inspect`). info may be NULL.
int qwen_model_load_config_only(const char *dir, QwenConfig *cfg, QwenCheckpointInfo *info, Error *err);

// Writes dir/config.json (torch_dtype matching dtype) and dir/model.safetensors (F32, BF16 or F16,
// rounding to nearest even), each atomically; creates dir. Tied models get no lm_head.weight.
int qwen_model_save(const char *dir, const QwenModel *m, StDtype dtype, Error *err);

// Copies the tokenizer and generation files a Hugging Face model directory carries
// (tokenizer.json, tokenizer_config.json, vocab.json, merges.txt, special_tokens_map.json,
// added_tokens.json, generation_config.json) from src_dir to dst_dir when present, so a saved
// checkpoint is a complete model directory. Returns the number of files copied, -1 on error.
int qwen_checkpoint_copy_aux_files(const char *src_dir, const char *dst_dir, Error *err);

// Memory needed, in bytes. Activations depend on batch, sequence length and the compute path and
// are not included; logits for `context_tokens` positions are, since they dominate for a 152k vocab.
typedef struct {
    size_t num_params;
    size_t weights_fp32;        // fp32 master weights (the CPU path computes in fp32)
    size_t weights_bf16;        // a bf16 copy (on-disk size of a bf16 checkpoint; CUDA compute)
    size_t grads_fp32;          // one fp32 gradient per parameter
    size_t adamw_state;         // AdamW m and v, fp32: 2 floats per parameter
    size_t kv_cache_per_token;  // fp32 K and V over all layers for one token
    size_t logits;              // fp32 logits for context_tokens positions
    size_t inference;           // weights_fp32 + KV cache and logits for context_tokens
    size_t training_adamw;      // weights + grads + AdamW state + logits (+ their gradient)
} QwenMemoryEstimate;

// Fills out and returns out->training_adamw. Muon/Pion keep one momentum buffer per matrix (half of
// AdamW's state on matrices) plus AdamW state on the rest; spectrum-preserving Pion keeps out^2 + in^2
// floats per matrix: those optimizers report their own state size.
size_t qwen_memory_estimate(const QwenConfig *cfg, size_t context_tokens, QwenMemoryEstimate *out);

#endif
