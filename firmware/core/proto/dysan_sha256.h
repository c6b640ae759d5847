/*
 * dysan_sha256.h -- SHA-256 (FIPS 180-4), incremental, no allocation, no platform dependencies.
 *
 * Used for HMAC tags (dysan_hmac.h) and to check uploaded bundles / RF images against the hash in the
 * authenticated BEGIN. Tested against the FIPS 180-4 example vectors (firmware/tests/proto_crypto_test.c).
 */
#ifndef DYSAN_SHA256_H
#define DYSAN_SHA256_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DYSAN_SHA256_SIZE 32
#define DYSAN_SHA256_BLOCK 64

typedef struct {
    uint32_t h[8];
    uint64_t bytes;  /* message bytes so far */
    uint8_t block[DYSAN_SHA256_BLOCK];
    size_t used;     /* bytes in block */
} dysan_sha256_t;

void dysan_sha256_init(dysan_sha256_t *c);
void dysan_sha256_update(dysan_sha256_t *c, const uint8_t *data, size_t n);
/* Writes the digest and wipes the context. */
void dysan_sha256_final(dysan_sha256_t *c, uint8_t out[DYSAN_SHA256_SIZE]);
void dysan_sha256(const uint8_t *data, size_t n, uint8_t out[DYSAN_SHA256_SIZE]);

/* Overwrites n bytes in a way the compiler may not elide (for keys and key-derived state). */
void dysan_wipe(void *p, size_t n);

#ifdef __cplusplus
}
#endif

#endif /* DYSAN_SHA256_H */
