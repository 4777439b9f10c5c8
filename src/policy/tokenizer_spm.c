// SentencePiece tokenizer.model behind the same Tokenizer interface (through spm_shim.cc).
#include <stdlib.h>
#include <string.h>

#include "policy/tokenizer_internal.h"

int tokenizer_load_spm(Tokenizer *t, const char *path, Error *err) {
    char msg[512] = "";
    t->kind = TOKENIZER_SPM;
    t->spm = spm_load(path, msg, sizeof msg);
    if (!t->spm) return error_set(err, "%s: cannot load SentencePiece model: %s", path, msg);
    t->vocab_size = spm_piece_size(t->spm);
    if (t->vocab_size <= 0) return error_set(err, "%s: SentencePiece model has no pieces", path);
    return 0;
}
