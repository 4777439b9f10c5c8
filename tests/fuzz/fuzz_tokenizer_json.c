// libFuzzer harness for the tokenizer.json loader (build and run: tools/tokenizer_fuzz.sh): the input
// is written as DIR/tokenizer.json and loaded; it must load or fail with a message, never crash.
// Seed it with tests/fixtures/tokenizer/tiny/tokenizer.json.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "policy/tokenizer.h"

static char dir[64];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    snprintf(dir, sizeof dir, "/tmp/pionrl_fuzzjson_XXXXXX");
    if (!mkdtemp(dir)) abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[128];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    fwrite(data, 1, size, f);
    fclose(f);
    Tokenizer *t = NULL;
    Error err = {{0}};
    if (tokenizer_load(dir, &t, &err) == 0) {
        // A loaded tokenizer must work on a little text.
        int *ids, n;
        if (tokenizer_encode(t, "Hello <|im_end|> world 123", 26, &ids, &n, &err) == 0) {
            char *back;
            if (tokenizer_decode(t, ids, n, 0, &back, &err) == 0) free(back);
            free(ids);
        }
        tokenizer_free(t);
    } else if (!err.msg[0] || t) {
        abort();  // a failure must say why and leave *out NULL
    }
    return 0;
}
