// Tokenizer interface: byte-level BPE from a Hugging Face tokenizer.json (Qwen2/2.5/3) or a
// SentencePiece tokenizer.model; the rest of pionrl does not care which one it has.
#ifndef PIONRL_TOKENIZER_H
#define PIONRL_TOKENIZER_H

#include <stddef.h>

#include "core/error.h"

typedef struct Tokenizer Tokenizer;

// Loads DIR/tokenizer.json, or DIR/tokenizer.model when there is no tokenizer.json; also reads
// tokenizer_config.json / generation_config.json when present (eos, pad, chat template family).
int tokenizer_load(const char *dir, Tokenizer **out, Error *err);
void tokenizer_free(Tokenizer *t);

// Encodes UTF-8 text (special tokens such as <|im_start|> in the text are matched as HF does).
// *ids is malloc'd; the caller frees it. Text that is not valid UTF-8 is an error. Thread-safe: one
// Tokenizer may be shared by threads (encode, decode, streams, rendering never modify it, apart
// from an internal locked word cache).
int tokenizer_encode(const Tokenizer *t, const char *text, size_t len, int **ids, int *n, Error *err);
// Decodes ids to a malloc'd NUL-terminated UTF-8 string (special tokens included as text unless
// skip_special).
int tokenizer_decode(const Tokenizer *t, const int *ids, int n, int skip_special, char **text, Error *err);
// Number of ids the tokenizer can produce (may be smaller than the model's vocab_size).
int tokenizer_vocab_size(const Tokenizer *t);
// Id of a token string (e.g. "<|im_end|>"), or -1.
int tokenizer_token_id(const Tokenizer *t, const char *token);
// End-of-sequence ids to stop generation on (e.g. <|im_end|> and <|endoftext|> for Qwen3).
int tokenizer_eos_ids(const Tokenizer *t, const int **ids);

// Additions beyond the first contract (same conventions):
// Padding / beginning-of-sequence id from tokenizer_config.json or generation_config.json, or -1.
int tokenizer_pad_id(const Tokenizer *t);
int tokenizer_bos_id(const Tokenizer *t);
// 1 when id is a special token (skipped by decode with skip_special), else 0.
int tokenizer_is_special(const Tokenizer *t, int id);
// "bpe" (tokenizer.json) or "sentencepiece" (tokenizer.model).
const char *tokenizer_kind_name(const Tokenizer *t);
// Raw bytes of one id, not NUL-terminated (byte-level BPE only; NULL for SentencePiece or a bad id).
const char *tokenizer_id_bytes(const Tokenizer *t, int id, int *len);

// Streaming decode: feed ids one at a time, get back only complete UTF-8 text.
typedef struct TokenStream TokenStream;
TokenStream *token_stream_new(const Tokenizer *t);
// Appends id; returns a pointer to newly completed text (valid until the next call), "" if none.
const char *token_stream_push(TokenStream *s, int id);
void token_stream_free(TokenStream *s);
// Special tokens give no text when on (default off: they come out as their text).
void token_stream_set_skip_special(TokenStream *s, int skip_special);
// End of the sequence: an unfinished character left over becomes U+FFFD, as tokenizer_decode does.
// Push ids that are out of range give "" and are otherwise ignored.
const char *token_stream_flush(TokenStream *s);

// Chat template (ChatML family). Renders messages (role/content pairs) into text, optionally
// adding the generation prompt "<|im_start|>assistant\n" and, when enable_thinking is 0 on a
// Qwen3-style template, the empty "<think>\n\n</think>\n\n". A tokenizer without a chat template
// (base models) renders "plain": contents concatenated.
typedef struct {
    const char *role;
    const char *content;
} ChatMessage;
int chat_template_render(const Tokenizer *t, const ChatMessage *msgs, int n, int add_generation_prompt,
                         int enable_thinking, char **text, Error *err);
// "chatml-qwen3" (ChatML with the enable_thinking switch), "chatml", "plain" (no template) or
// "unsupported" (a template of another family: chat_template_render fails and says why).
const char *chat_template_family(const Tokenizer *t);

#endif
