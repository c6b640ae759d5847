/*
 * dysan_hmac.c -- HMAC-SHA256: H((K ^ opad) || H((K ^ ipad) || m)). Both pads are absorbed at init, so
 * the key itself is not kept in the context, and every key-derived buffer is wiped after use.
 */
#include "dysan_hmac.h"

#include <string.h>

void dysan_hmac_sha256_init(dysan_hmac_sha256_t *c, const uint8_t *key, size_t key_len)
{
    uint8_t k[DYSAN_SHA256_BLOCK];
    memset(k, 0, sizeof k);
    if (key_len > DYSAN_SHA256_BLOCK) {
        dysan_sha256(key, key_len, k);
    } else if (key_len != 0u && key != NULL) {
        memcpy(k, key, key_len);
    }
    uint8_t pad[DYSAN_SHA256_BLOCK];
    for (size_t i = 0; i < sizeof pad; ++i) {
        pad[i] = (uint8_t)(k[i] ^ 0x36u);
    }
    dysan_sha256_init(&c->inner);
    dysan_sha256_update(&c->inner, pad, sizeof pad);
    for (size_t i = 0; i < sizeof pad; ++i) {
        pad[i] = (uint8_t)(k[i] ^ 0x5cu);
    }
    dysan_sha256_init(&c->outer);
    dysan_sha256_update(&c->outer, pad, sizeof pad);
    dysan_wipe(k, sizeof k);
    dysan_wipe(pad, sizeof pad);
}

void dysan_hmac_sha256_update(dysan_hmac_sha256_t *c, const uint8_t *data, size_t n)
{
    dysan_sha256_update(&c->inner, data, n);
}

void dysan_hmac_sha256_final(dysan_hmac_sha256_t *c, uint8_t out[DYSAN_SHA256_SIZE])
{
    uint8_t inner[DYSAN_SHA256_SIZE];
    dysan_sha256_final(&c->inner, inner);
    dysan_sha256_update(&c->outer, inner, sizeof inner);
    dysan_sha256_final(&c->outer, out);
    dysan_wipe(inner, sizeof inner);
}

void dysan_hmac_sha256(const uint8_t *key, size_t key_len, const uint8_t *data, size_t n,
                       uint8_t out[DYSAN_SHA256_SIZE])
{
    dysan_hmac_sha256_t c;
    dysan_hmac_sha256_init(&c, key, key_len);
    dysan_hmac_sha256_update(&c, data, n);
    dysan_hmac_sha256_final(&c, out);
}
