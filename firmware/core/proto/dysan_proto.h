/*
 * dysan_proto.h -- the message layer on top of dysan_frame: what a receiver accepts, and encoding.
 *
 * dysan_proto_accept() applies the acceptance rules to a frame the link layer delivered, in this order
 * (host/dysan/protocol/receive.py is its Python twin, and a differential test holds them together):
 *
 *   1. unknown id                                  -> DYSAN_ERR_UNKNOWN_MSG
 *   2. a message this side never receives          -> DYSAN_ERR_WRONG_DIRECTION
 *   3. auth required by the table, or a trailer present:
 *        no trailer / not provisioned / wrong tag / stale counter
 *                                                  -> DYSAN_ERR_AUTH_REQUIRED / NOT_PROVISIONED /
 *                                                     AUTH_FAILED / REPLAY
 *   4. payload size or a field constraint          -> DYSAN_ERR_BAD_LENGTH / DYSAN_ERR_BAD_FIELD
 *   5. the counter is committed (persisted)        -> DYSAN_ERR_STORAGE if that fails
 *
 * Authentication comes before parsing: an unauthenticated sender reaches no payload parser of an
 * authenticated command. Errors 1, 2 and 4 are what STATS.msg_errors counts; 3 is counted by dysan_auth.
 */
#ifndef DYSAN_PROTO_H
#define DYSAN_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "dysan_auth.h"
#include "dysan_frame.h"
#include "dysan_msg.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Accepts frame `f` at a receiver of direction `receiver` (DYSAN_DIR_H2D on the device, DYSAN_DIR_D2H on
 * a host). On DYSAN_OK, *msg holds the message and *authenticated says whether it carried a valid, fresh
 * tag (which was committed). `auth` may be NULL on a receiver that accepts no authenticated message. */
int dysan_proto_accept(const dysan_frame_t *f, uint8_t receiver, dysan_auth_t *auth, dysan_msg_t *msg,
                       int *authenticated);

/* Packs `m` into scratch[0..scratch_cap) and frames it (unauthenticated) into out[0..cap). */
int dysan_proto_encode(const dysan_msg_t *m, uint16_t seq, uint8_t *scratch, size_t scratch_cap, uint8_t *out,
                       size_t cap, size_t *written);

/* Same, with an auth trailer for `counter` computed with `key` and `device_id` (host-side tools and
 * tests; the device itself only verifies). */
int dysan_proto_encode_signed(const dysan_msg_t *m, uint16_t seq, const uint8_t key[DYSAN_AUTH_KEY_SIZE],
                              const uint8_t device_id[DYSAN_DEVICE_ID_SIZE], uint32_t counter,
                              uint8_t *scratch, size_t scratch_cap, uint8_t *out, size_t cap, size_t *written);

/* Fills *m with an ERROR reply to a refused frame; `text` (may be NULL) is truncated to fit. */
void dysan_proto_error(dysan_msg_t *m, uint16_t code, uint8_t ref_msg, uint16_t ref_seq, const char *text);

#ifdef __cplusplus
}
#endif

#endif /* DYSAN_PROTO_H */
