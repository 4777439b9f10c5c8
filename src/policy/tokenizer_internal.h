// Private layout of Tokenizer shared by the tokenizer_*.c files, bpe.c, chat_template.c and the
// SentencePiece shim. Nothing outside src/policy/tokenizer* and chat_template.c includes this.
#ifndef PIONRL_TOKENIZER_INTERNAL_H
#define PIONRL_TOKENIZER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "policy/bpe.h"
#include "policy/spm_shim.h"
#include "policy/tokenizer.h"

typedef enum { TOKENIZER_BPE = 1, TOKENIZER_SPM = 2 } TokenizerKind;

// Chat template family found in tokenizer_config.json (or chat_template.jinja).
typedef enum {
    CHAT_NONE = 0,         // no template: base model, "plain" rendering
    CHAT_CHATML = 1,       // <|im_start|>role\n...<|im_end|>\n (Qwen2, Qwen2.5, Qwen3, ...)
    CHAT_UNSUPPORTED = 2,  // a Jinja template of another family: rendering is refused
} ChatFamily;

// A token from tokenizer.json "added_tokens" (e.g. <|im_start|>, <think>), matched in the raw text
// before normalisation and pre-tokenisation, as Hugging Face's AddedVocabulary does.
typedef struct {
    char *content;
    int len;
    int id;
    int special;      // skipped by decode when skip_special
    int lstrip;       // swallow whitespace on its left
    int rstrip;       // swallow whitespace on its right
    int single_word;  // only match when not inside a word
    int normalized;   // matched after NFC on the normalised text (rare; Qwen has none)
} AddedToken;

struct Tokenizer {
    TokenizerKind kind;
    Bpe *bpe;          // TOKENIZER_BPE
    SpmModel *spm;     // TOKENIZER_SPM
    int vocab_size;    // max id + 1

    // Decode table for every id below vocab_size: raw bytes (byte-level mapping undone).
    char **id_bytes;   // NULL for an id with no token (a hole in the id range)
    int *id_len;
    unsigned char *id_special;  // 1 for special added tokens (skipped by skip_special)

    AddedToken *added;  // sorted by length, longest first, so the first match is the longest
    int n_added;
    unsigned char added_first[256];  // 1 when some added token starts with that byte

    int nfc;  // normalizer is NFC

    int eos_ids[8];
    int n_eos;
    int pad_id;  // -1 when none
    int bos_id;  // -1 when none

    ChatFamily chat;
    int chat_thinking;        // template knows enable_thinking (Qwen3): empty think block when off
    int chat_strip_reasoning; // template drops <think>...</think> of earlier assistant turns (Qwen3)
    int chat_tool_response;   // template wraps role "tool" in <tool_response> inside a user turn
    char *chat_default_system;  // system prompt the template adds when none is given, or NULL
    char chat_note[256];        // why the template is unsupported (for the error message)
};

// tokenizer_utf8.c
// Length of the longest prefix of s[0..n) that is valid UTF-8, and whether what follows is an
// incomplete (but so far valid) character at the very end (*incomplete_tail = 1).
size_t utf8_valid_prefix(const unsigned char *s, size_t n, int *incomplete_tail);
// Appends the lossy UTF-8 conversion of s[0..n) to a growing buffer: each maximal invalid subpart
// becomes U+FFFD (Rust's String::from_utf8_lossy / Python's errors='replace'). When final is 0 an
// incomplete character at the end is not converted; *consumed says how many input bytes were used.
int utf8_lossy_append(const unsigned char *s, size_t n, int final, char **buf, size_t *len, size_t *cap,
                      size_t *consumed);
// Grows a malloc'd byte buffer to hold at least need bytes (+1 for a NUL). 0 / -1.
int buf_reserve(char **buf, size_t *cap, size_t need);

// tokenizer_json.c: fills the BPE side of t from a parsed tokenizer.json.
int tokenizer_load_json(Tokenizer *t, const char *path, Error *err);
// tokenizer_config.c: eos/pad/bos and the chat template family from tokenizer_config.json and
// generation_config.json in dir (both optional).
int tokenizer_load_config(Tokenizer *t, const char *dir, Error *err);
// tokenizer_spm.c: fills t from a SentencePiece tokenizer.model.
int tokenizer_load_spm(Tokenizer *t, const char *path, Error *err);

#endif
