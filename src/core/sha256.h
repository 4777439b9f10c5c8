// SHA-256 (FIPS 180-4), streaming. Used to verify downloaded files against the Hub's LFS sha256,
// so a corrupted or truncated transfer is never taken for a complete one.
#ifndef PIONRL_SHA256_H
#define PIONRL_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef struct {
    uint32_t h[8];
    uint64_t total;       // bytes hashed so far
    uint8_t block[64];    // pending partial block
    size_t block_len;
} Sha256;

void sha256_init(Sha256 *s);
void sha256_update(Sha256 *s, const void *data, size_t len);
// Writes the 32-byte digest; the context must be re-initialised before reuse.
void sha256_final(Sha256 *s, uint8_t digest[32]);
// Lower-case hex of a digest into out (65 bytes with the NUL).
void sha256_hex(const uint8_t digest[32], char out[65]);
// One-shot hex digest of a buffer.
void sha256_buffer_hex(const void *data, size_t len, char out[65]);
// Hashes the first `limit` bytes of a file into s (limit < 0: the whole file). Used to resume a
// verified download: the partial file's bytes are hashed before new bytes arrive.
int sha256_update_file(Sha256 *s, const char *path, long long limit, Error *err);
// Hex digest of a whole file.
int sha256_file_hex(const char *path, char out[65], Error *err);

#endif
