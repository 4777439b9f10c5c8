// Byte-level BPE model: vocabulary of raw byte strings, merges by rank, the pre-tokenizer regexes
// (PCRE2, JIT) and a cache of encoded words. Knows nothing about JSON; tokenizer_json.c fills it.
#ifndef PIONRL_BPE_H
#define PIONRL_BPE_H

#include <stddef.h>

#include "core/error.h"

typedef struct Bpe Bpe;

// A growing list of ids (encode output).
typedef struct {
    int *ids;
    int n;
    int cap;
} IdVec;
int idvec_push(IdVec *v, int id);

Bpe *bpe_new(void);
void bpe_free(Bpe *b);

// Building. Token bytes are raw (the byte-to-unicode mapping already undone) and are copied.
// Fails on a duplicate string or id.
int bpe_add_token(Bpe *b, const char *bytes, int len, int id, Error *err);
// Merge of two token ids into a third with the given rank (0 = applied first).
int bpe_add_merge(Bpe *b, int left, int right, int merged, int rank, Error *err);
// Appends a pre-tokenizer split regex (HF "Split" with behavior "Isolated"); regexes apply in order,
// each one splitting the pieces of the previous one.
int bpe_add_split_regex(Bpe *b, const char *pattern, Error *err);
// ByteLevel add_prefix_space: a space is put before text that does not start with one.
void bpe_set_add_prefix_space(Bpe *b, int on);
// ignore_merges (Llama 3 style): a word that is itself in the vocabulary is one token.
void bpe_set_ignore_merges(Bpe *b, int on);
// Call after all tokens: every one of the 256 single bytes must be a token.
int bpe_finish(Bpe *b, Error *err);

// Id of a raw byte string, or -1.
int bpe_token_id(const Bpe *b, const char *bytes, int len);

// Encodes already normalised, valid UTF-8 text (no added tokens in it): pre-tokenizer split, then
// BPE per piece, appending to out. Thread-safe (the word cache is locked per stripe).
int bpe_encode_text(const Bpe *b, const char *text, size_t len, IdVec *out, Error *err);
// BPE of one pre-tokenized piece of raw bytes (no cache). use_heap: 0 the quadratic scan, 1 the
// priority-queue merge, -1 choose by length. Exposed so tests can check the two agree.
int bpe_encode_piece(const Bpe *b, const unsigned char *s, int n, int use_heap, IdVec *out);

// The GPT-2 byte-to-unicode table: the code point that stands for byte b in vocab strings, and the
// byte a code point stands for (-1 when it stands for none).
int bpe_byte_to_unicode(int b);
int bpe_unicode_to_byte(int cp);

#endif
