/*
 * dysan_hmac.h -- HMAC-SHA256 (RFC 2104 / FIPS 198-1), incremental so a tag can cover
 * device_id || msg_id || counter || payload without copying them together first.
 * Tested against RFC 4231's test cases (firmware/tests/proto_crypto_test.c).
 */
#ifndef DYSAN_HMAC_H
#define DYSAN_HMAC_H

#include <stddef.h>
#include <stdint.h>

#include "dysan_sha256.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    dysan_sha256_t inner;
    dysan_sha256_t outer;
} dysan_hmac_sha256_t;

/* Keys longer than a block are hashed first (RFC 2104); any length is accepted. */
void dysan_hmac_sha256_init(dysan_hmac_sha256_t *c, const uint8_t *key, size_t key_len);
void dysan_hmac_sha256_update(dysan_hmac_sha256_t *c, const uint8_t *data, size_t n);
/* Writes the full 32-byte MAC and wipes the context. */
void dysan_hmac_sha256_final(dysan_hmac_sha256_t *c, uint8_t out[DYSAN_SHA256_SIZE]);
void dysan_hmac_sha256(const uint8_t *key, size_t key_len, const uint8_t *data, size_t n,
                       uint8_t out[DYSAN_SHA256_SIZE]);

#ifdef __cplusplus
}
#endif

#endif /* DYSAN_HMAC_H */
