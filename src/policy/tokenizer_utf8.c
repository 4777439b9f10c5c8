// UTF-8 checks and the lossy conversion decode uses (invalid bytes -> U+FFFD), shared by whole
// and streaming decode so that both give the same text.
#include <stdlib.h>
#include <string.h>

#include "policy/tokenizer_internal.h"

enum { SEQ_VALID, SEQ_INVALID, SEQ_INCOMPLETE };

// Classifies the sequence at s (n > 0 bytes available) by the well-formed table of Unicode 3.9
// (table 3-7). Returns its length: the character's, the maximal invalid subpart's (at least 1), or
// the bytes of a valid but unfinished character that runs into the end of the input.
static size_t utf8_seq(const unsigned char *s, size_t n, int *status) {
    unsigned c = s[0];
    int need;
    unsigned lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c < 0x80) {
        *status = SEQ_VALID;
        return 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
        need = 1;
    } else if (c == 0xE0) {
        need = 2;
        lo = 0xA0;
    } else if (c == 0xED) {
        need = 2;
        hi = 0x9F;
    } else if (c >= 0xE1 && c <= 0xEF) {
        need = 2;
    } else if (c == 0xF0) {
        need = 3;
        lo = 0x90;
    } else if (c == 0xF4) {
        need = 3;
        hi = 0x8F;
    } else if (c >= 0xF1 && c <= 0xF3) {
        need = 3;
    } else {
        *status = SEQ_INVALID;
        return 1;
    }
    for (int i = 1; i <= need; i++) {
        if ((size_t)i >= n) {
            *status = SEQ_INCOMPLETE;
            return (size_t)i;
        }
        unsigned b = s[i];
        unsigned l = i == 1 ? lo : 0x80, h = i == 1 ? hi : 0xBF;
        if (b < l || b > h) {
            *status = SEQ_INVALID;
            return (size_t)i;
        }
    }
    *status = SEQ_VALID;
    return (size_t)need + 1;
}

size_t utf8_valid_prefix(const unsigned char *s, size_t n, int *incomplete_tail) {
    size_t i = 0;
    if (incomplete_tail) *incomplete_tail = 0;
    while (i < n) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        int st;
        size_t k = utf8_seq(s + i, n - i, &st);
        if (st != SEQ_VALID) {
            if (st == SEQ_INCOMPLETE && incomplete_tail) *incomplete_tail = 1;
            return i;
        }
        i += k;
    }
    return n;
}

int buf_reserve(char **buf, size_t *cap, size_t need) {
    if (need + 1 <= *cap) return 0;
    size_t c = *cap ? *cap : 64;
    while (c < need + 1) c *= 2;
    char *p = realloc(*buf, c);
    if (!p) return -1;
    *buf = p;
    *cap = c;
    return 0;
}

int utf8_lossy_append(const unsigned char *s, size_t n, int final, char **buf, size_t *len, size_t *cap,
                      size_t *consumed) {
    // Worst case every byte becomes the 3-byte U+FFFD.
    if (buf_reserve(buf, cap, *len + 3 * n)) return -1;
    char *o = *buf + *len;
    size_t i = 0;
    while (i < n) {
        int st;
        size_t k = utf8_seq(s + i, n - i, &st);
        if (st == SEQ_VALID) {
            memcpy(o, s + i, k);
            o += k;
        } else if (st == SEQ_INCOMPLETE && !final) {
            break;
        } else {
            memcpy(o, "\xEF\xBF\xBD", 3);
            o += 3;
        }
        i += k;
    }
    *o = 0;
    *len = (size_t)(o - *buf);
    if (consumed) *consumed = i;
    return 0;
}
