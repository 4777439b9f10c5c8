// libFuzzer harness for encode / decode / streaming decode (build and run: tools/tokenizer_fuzz.sh).
// Properties checked beyond "no crash, no sanitizer report":
//   - valid UTF-8 text encodes, and decode(encode(text)) == NFC(text);
//   - invalid UTF-8 is refused with an error;
//   - any id sequence decodes (or is refused when out of range) and the streamed text equals the
//     whole decode.
// Uses the Qwen3 tokenizer when ../shared is present, else the tiny fixture.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "policy/tokenizer.h"

static Tokenizer *tok;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    Error err;
    if (tokenizer_load("../shared/tokenizers/qwen3", &tok, &err) &&
        tokenizer_load("tests/fixtures/tokenizer/tiny", &tok, &err)) {
        fprintf(stderr, "fuzz_tokenizer: %s\n", err.msg);
        abort();
    }
    return 0;
}

static void check_text(const uint8_t *data, size_t size) {
    Error err;
    int *ids = NULL, n = 0;
    int rc = tokenizer_encode(tok, (const char *)data, size, &ids, &n, &err);
    utf8proc_uint8_t *nfc = NULL;
    utf8proc_ssize_t m = utf8proc_map(data, (utf8proc_ssize_t)size, &nfc, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    if ((rc == 0) != (m >= 0)) abort();  // encode accepts exactly the valid UTF-8
    if (rc == 0) {
        char *back = NULL;
        if (tokenizer_decode(tok, ids, n, 0, &back, &err)) abort();
        if (strlen(back) != (size_t)m || memcmp(back, nfc, (size_t)m)) {
            // Embedded NULs stop strlen: compare the part before the first one.
            if (memchr(nfc, 0, (size_t)m) == NULL) abort();
        }
        free(back);
    }
    free(nfc);
    free(ids);
}

static void check_ids(const uint8_t *data, size_t size) {
    int n = (int)(size / 3);
    int *ids = malloc((n ? n : 1) * sizeof *ids);
    int vocab = tokenizer_vocab_size(tok);
    for (int i = 0; i < n; i++) {
        uint32_t v = data[3 * i] | (data[3 * i + 1] << 8) | ((uint32_t)data[3 * i + 2] << 16);
        ids[i] = (int)(v % (uint32_t)(vocab + 4)) - 2;  // a few out-of-range ids on both sides
    }
    Error err;
    char *whole = NULL;
    int skip = size & 1;
    int rc = tokenizer_decode(tok, ids, n, skip, &whole, &err);
    int all_valid = 1;
    for (int i = 0; i < n; i++) all_valid &= ids[i] >= 0 && ids[i] < vocab;
    if (rc == 0 && !all_valid) abort();
    // Text is handed out NUL-terminated, so a token for byte 0x00 cuts it: compare only without one.
    int has_nul = 0;
    for (int i = 0; rc == 0 && i < n; i++) {
        int len;
        const char *b = tokenizer_id_bytes(tok, ids[i], &len);
        if (b && memchr(b, 0, len)) has_nul = 1;
    }
    if (rc == 0 && !has_nul) {
        TokenStream *s = token_stream_new(tok);
        token_stream_set_skip_special(s, skip);
        size_t cap = strlen(whole) + 16, len = 0;
        char *acc = malloc(cap);
        acc[0] = 0;
        for (int i = 0; i <= n; i++) {
            const char *piece = i < n ? token_stream_push(s, ids[i]) : token_stream_flush(s);
            size_t k = strlen(piece);
            if (len + k + 1 > cap) abort();  // streamed more than the whole decode
            memcpy(acc + len, piece, k + 1);
            len += k;
        }
        if (strcmp(acc, whole)) abort();
        free(acc);
        token_stream_free(s);
    }
    free(whole);
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    // First byte picks the mode so one corpus exercises both directions.
    if (data[0] & 1)
        check_ids(data + 1, size - 1);
    else
        check_text(data + 1, size - 1);
    return 0;
}
