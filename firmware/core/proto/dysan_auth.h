/*
 * dysan_auth.h -- authentication of commands (docs/protocol.md, "Authentication").
 *
 *   tag = HMAC-SHA256(key, device_id || msg_id || counter_le32 || payload)[0..16)
 *
 * The 32-byte key and the 8-byte device id are provisioned at flash time (dysan_port_identity); the key
 * never leaves the device. A command is accepted only if its tag verifies (constant-time comparison) and
 * its counter is strictly greater than the last accepted one, which is persisted (dysan_counter.h, in the
 * STATE region) *before* the command takes effect: a recorded command can never be replayed, not even
 * after a reboot.
 *
 * Use: dysan_auth_verify() (no side effect besides counting failures), then dysan_auth_commit() once the
 * command is otherwise acceptable; act only if the commit returned DYSAN_OK.
 */
#ifndef DYSAN_AUTH_H
#define DYSAN_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "dysan_frame.h"
#include "dysan_msg.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Persists the last accepted counter; returns 0, or nonzero when storage failed (the command is then
 * refused: without a persisted counter it could be replayed after a reboot). */
typedef int (*dysan_auth_persist_fn)(void *ctx, uint32_t counter);

typedef struct {
    uint8_t device_id[DYSAN_DEVICE_ID_SIZE];
    uint8_t key[DYSAN_AUTH_KEY_SIZE];
    uint8_t provisioned;
    uint32_t last_counter;
    dysan_auth_persist_fn persist;
    void *persist_ctx;
    uint32_t failures; /* missing or wrong tags (STATS.auth_failures) */
    uint32_t replays;  /* valid tags with stale counters (STATS.replays_refused) */
} dysan_auth_t;

/* `device_id` and `key` NULL: not provisioned (every authenticated command is refused).
 * `last_counter` comes from the persisted log (dysan_counter_log_open). */
void dysan_auth_init(dysan_auth_t *a, const uint8_t *device_id, const uint8_t *key, uint32_t last_counter,
                     dysan_auth_persist_fn persist, void *persist_ctx);

/* The 16-byte tag of a message (what the host computes; the device recomputes it to verify). */
void dysan_auth_tag(const uint8_t key[DYSAN_AUTH_KEY_SIZE], const uint8_t device_id[DYSAN_DEVICE_ID_SIZE],
                    uint8_t msg_id, uint32_t counter, const uint8_t *payload, size_t len,
                    uint8_t tag[DYSAN_AUTH_TAG_SIZE]);

/* 1 when the n bytes are equal; the time taken does not depend on where they differ. */
int dysan_auth_equal(const uint8_t *x, const uint8_t *y, size_t n);

/* Checks a frame's auth trailer: DYSAN_OK, or DYSAN_ERR_AUTH_REQUIRED (no trailer),
 * DYSAN_ERR_NOT_PROVISIONED, DYSAN_ERR_AUTH_FAILED (wrong tag), DYSAN_ERR_REPLAY (stale counter). */
int dysan_auth_verify(dysan_auth_t *a, const dysan_frame_t *f);

/* Records `counter` as the last accepted one: persists it first, then updates RAM. DYSAN_OK, or
 * DYSAN_ERR_REPLAY (not above the last one) or DYSAN_ERR_STORAGE (no persist hook, or it failed). */
int dysan_auth_commit(dysan_auth_t *a, uint32_t counter);

/* Wipes the key (e.g. before a reset into a bootloader). */
void dysan_auth_clear(dysan_auth_t *a);

#ifdef __cplusplus
}
#endif

#endif /* DYSAN_AUTH_H */
