/*
 * dysan_auth.c -- tag computation, constant-time verification, counter check and commit.
 *
 * Why a 128-bit tag: truncating HMAC-SHA256 to 128 bits is standard (RFC 4868's HMAC-SHA-256-128 for
 * IPsec; NIST SP 800-107 allows truncation down to 64 bits). A forgery succeeds with probability 2^-128
 * per attempt and each attempt costs a radio frame, so 16 bytes buy the same practical security as 32
 * while saving 16 bytes on every command.
 */
#include "dysan_auth.h"

#include <string.h>

#include "dysan_hmac.h"

void dysan_auth_init(dysan_auth_t *a, const uint8_t *device_id, const uint8_t *key, uint32_t last_counter,
                     dysan_auth_persist_fn persist, void *persist_ctx)
{
    if (a == NULL) {
        return;
    }
    memset(a, 0, sizeof *a);
    if (device_id != NULL && key != NULL) {
        memcpy(a->device_id, device_id, sizeof a->device_id);
        memcpy(a->key, key, sizeof a->key);
        a->provisioned = 1;
    }
    a->last_counter = last_counter;
    a->persist = persist;
    a->persist_ctx = persist_ctx;
}

void dysan_auth_tag(const uint8_t key[DYSAN_AUTH_KEY_SIZE], const uint8_t device_id[DYSAN_DEVICE_ID_SIZE],
                    uint8_t msg_id, uint32_t counter, const uint8_t *payload, size_t len,
                    uint8_t tag[DYSAN_AUTH_TAG_SIZE])
{
    uint8_t prefix[DYSAN_DEVICE_ID_SIZE + 1 + DYSAN_AUTH_COUNTER_SIZE];
    memcpy(prefix, device_id, DYSAN_DEVICE_ID_SIZE);
    prefix[DYSAN_DEVICE_ID_SIZE] = msg_id;
    for (unsigned i = 0; i < 4u; ++i) {
        prefix[DYSAN_DEVICE_ID_SIZE + 1u + i] = (uint8_t)(counter >> (8u * i));
    }
    dysan_hmac_sha256_t h;
    dysan_hmac_sha256_init(&h, key, DYSAN_AUTH_KEY_SIZE);
    dysan_hmac_sha256_update(&h, prefix, sizeof prefix);
    if (len != 0u && payload != NULL) {
        dysan_hmac_sha256_update(&h, payload, len);
    }
    uint8_t mac[DYSAN_SHA256_SIZE];
    dysan_hmac_sha256_final(&h, mac);
    memcpy(tag, mac, DYSAN_AUTH_TAG_SIZE);
    dysan_wipe(mac, sizeof mac);
}

int dysan_auth_equal(const uint8_t *x, const uint8_t *y, size_t n)
{
    uint8_t diff = 0;
    for (size_t i = 0; i < n; ++i) {
        diff |= (uint8_t)(x[i] ^ y[i]);
    }
    /* Map diff (0..255) to 1 when zero, 0 otherwise, without a data-dependent branch. */
    return (int)(1u & (((unsigned)diff - 1u) >> 8));
}

int dysan_auth_verify(dysan_auth_t *a, const dysan_frame_t *f)
{
    if (a == NULL || f == NULL) {
        return DYSAN_ERR_INTERNAL;
    }
    if ((f->flags & DYSAN_FRAME_FLAG_AUTH) == 0u || f->tag == NULL) {
        a->failures++;
        return DYSAN_ERR_AUTH_REQUIRED;
    }
    if (!a->provisioned) {
        a->failures++;
        return DYSAN_ERR_NOT_PROVISIONED;
    }
    uint8_t want[DYSAN_AUTH_TAG_SIZE];
    dysan_auth_tag(a->key, a->device_id, f->msg_id, f->counter, f->payload, f->len, want);
    const int ok = dysan_auth_equal(want, f->tag, sizeof want);
    dysan_wipe(want, sizeof want);
    if (!ok) {
        a->failures++;
        return DYSAN_ERR_AUTH_FAILED;
    }
    if (f->counter <= a->last_counter) {
        a->replays++;
        return DYSAN_ERR_REPLAY;
    }
    return DYSAN_OK;
}

int dysan_auth_commit(dysan_auth_t *a, uint32_t counter)
{
    if (a == NULL) {
        return DYSAN_ERR_INTERNAL;
    }
    if (counter <= a->last_counter) {
        a->replays++;
        return DYSAN_ERR_REPLAY;
    }
    if (a->persist == NULL || a->persist(a->persist_ctx, counter) != 0) {
        return DYSAN_ERR_STORAGE;
    }
    a->last_counter = counter;
    return DYSAN_OK;
}

void dysan_auth_clear(dysan_auth_t *a)
{
    if (a != NULL) {
        dysan_wipe(a->key, sizeof a->key);
        a->provisioned = 0;
    }
}
