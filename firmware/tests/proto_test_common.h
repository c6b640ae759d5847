/*
 * proto_test_common.h -- what the protocol test programs share beyond check_common.h: hex test vectors
 * (proto_crypto_test.c: FIPS 180-4 / RFC 4231 digests; proto_golden_test.c: tests/data/protocol_golden.json).
 */
#ifndef PROTO_TEST_COMMON_H
#define PROTO_TEST_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Hex digits -> bytes into out[0..cap): the byte count, or (size_t)-1 when a pair is not hex or the bytes do
 * not fit (a short or truncated vector must fail its test, not pass on a prefix). A trailing odd digit is
 * ignored. */
static inline size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = 0;
    while (hex[0] != '\0' && hex[1] != '\0') {
        unsigned v = 0;
        if (n >= cap || sscanf(hex, "%2x", &v) != 1) {
            return (size_t)-1;
        }
        out[n++] = (uint8_t)v;
        hex += 2;
    }
    return n;
}

#endif /* PROTO_TEST_COMMON_H */
