/*
 * dysan_xfer.h -- uploads into a flash region (docs/protocol.md, Uploads): BEGIN / CHUNK / COMMIT, resume.
 *
 * BEGIN (authenticated by the caller) binds the total size and the SHA-256 of the image. The same size and
 * hash as the transfer in progress resumes it; anything else erases the region and restarts at offset 0.
 * A CHUNK is written only at the expected offset (anything else is ignored: the host continues from the
 * offset the device reports). COMMIT (authenticated) hashes what the *region* holds -- what was actually
 * written, not what was received -- and succeeds only if it equals BEGIN's hash. Activating the image
 * (loading a bundle or an RF table) is the caller's job.
 */
#ifndef DYSAN_XFER_H
#define DYSAN_XFER_H

#include <stddef.h>
#include <stdint.h>

#include "dysan_msg.h"
#include "dysan_port.h"
#include "dysan_sha256.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    dysan_region_t region;
    uint8_t target; /* DYSAN_XFER_TARGET_* */
    uint8_t state;  /* DYSAN_XFER_STATE_* */
    uint32_t total, next, version;
    uint8_t sha[DYSAN_SHA256_SIZE];
} dysan_xfer_t;

void dysan_xfer_init(dysan_xfer_t *x, dysan_region_t region, uint8_t target);

/* BEGIN. DYSAN_OK (*resumed says whether the transfer in progress continues), DYSAN_ERR_XFER_SIZE (0 or
 * larger than the region: nothing touched), DYSAN_ERR_STORAGE (the erase failed; state FAILED). */
int dysan_xfer_begin(dysan_xfer_t *x, uint32_t total, const uint8_t sha[DYSAN_SHA256_SIZE], uint32_t version,
                     int *resumed);

/* CHUNK. DYSAN_OK (written, or ignored because the offset is not the expected one), DYSAN_ERR_XFER_STATE
 * (no transfer receiving), DYSAN_ERR_XFER_SIZE (past the total: ignored), DYSAN_ERR_STORAGE (write failed;
 * the offset stays, so the host retries). */
int dysan_xfer_chunk(dysan_xfer_t *x, uint32_t offset, const uint8_t *data, size_t n);

/* COMMIT's checks. DYSAN_OK (the region holds the image: state COMMITTED), DYSAN_ERR_XFER_STATE (not
 * complete: nothing changes), DYSAN_ERR_XFER_HASH with *failed = 0 (the hash is not BEGIN's: nothing
 * changes) or *failed = 1 (the region does not hash to it: state FAILED, upload again). */
int dysan_xfer_commit(dysan_xfer_t *x, const uint8_t sha[DYSAN_SHA256_SIZE], int *failed);

/* XFER_STATUS of the transfer. */
void dysan_xfer_status(const dysan_xfer_t *x, dysan_msg_xfer_status_t *out);

#ifdef __cplusplus
}
#endif

#endif /* DYSAN_XFER_H */
