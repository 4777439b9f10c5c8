// C-callable shim over Debian's libsentencepiece (C++), so the tokenizer can load a
// tokenizer.model. Implemented in spm_shim.cc; every function catches C++ exceptions.
#ifndef PIONRL_SPM_SHIM_H
#define PIONRL_SPM_SHIM_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct SpmModel SpmModel;

// Loads a model file; on failure returns NULL and writes a message into msg (size n).
SpmModel *spm_load(const char *path, char *msg, size_t n);
void spm_free(SpmModel *m);
int spm_piece_size(const SpmModel *m);
// Piece string of an id (NUL-terminated, owned by the model), or NULL out of range.
const char *spm_id_to_piece(const SpmModel *m, int id);
// Id of a piece, or -1 when unknown.
int spm_piece_to_id(const SpmModel *m, const char *piece);
// 1 for control symbols (<s>, </s>, ...), which decoding skips.
int spm_is_control(const SpmModel *m, int id);
int spm_is_byte(const SpmModel *m, int id);
int spm_unk_id(const SpmModel *m);
int spm_bos_id(const SpmModel *m);
int spm_eos_id(const SpmModel *m);
int spm_pad_id(const SpmModel *m);
// Encodes text (len bytes); *ids malloc'd. 0 / -1 (message in msg).
int spm_encode(const SpmModel *m, const char *text, size_t len, int **ids, int *n, char *msg, size_t msg_n);
// Decodes ids into a malloc'd NUL-terminated string (*len its length). 0 / -1 (message in msg).
int spm_decode(const SpmModel *m, const int *ids, int n, char **text, size_t *len, char *msg, size_t msg_n);

#ifdef __cplusplus
}
#endif

#endif
