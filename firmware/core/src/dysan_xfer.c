/* dysan_xfer.c -- region uploads with resume (see dysan_xfer.h). */
#include "dysan_xfer.h"

#include <string.h>

#include "dysan_auth.h"

void dysan_xfer_init(dysan_xfer_t *x, dysan_region_t region, uint8_t target)
{
    memset(x, 0, sizeof *x);
    x->region = region;
    x->target = target;
    x->state = DYSAN_XFER_STATE_IDLE;
}

static int in_progress(const dysan_xfer_t *x)
{
    return x->state == DYSAN_XFER_STATE_RECEIVING || x->state == DYSAN_XFER_STATE_COMPLETE;
}

int dysan_xfer_begin(dysan_xfer_t *x, uint32_t total, const uint8_t sha[DYSAN_SHA256_SIZE], uint32_t version,
                     int *resumed)
{
    *resumed = 0;
    size_t cap = 0;
    if (dysan_port_region(x->region, &cap) == NULL || total == 0u || total > cap) {
        return DYSAN_ERR_XFER_SIZE;
    }
    if (in_progress(x) && x->total == total && memcmp(x->sha, sha, DYSAN_SHA256_SIZE) == 0) {
        x->version = version;
        *resumed = 1;
        return DYSAN_OK;
    }
    x->total = total;
    x->next = 0;
    x->version = version;
    memcpy(x->sha, sha, DYSAN_SHA256_SIZE);
    if (dysan_port_region_erase(x->region) != 0) {
        x->state = DYSAN_XFER_STATE_FAILED;
        return DYSAN_ERR_STORAGE;
    }
    x->state = DYSAN_XFER_STATE_RECEIVING;
    return DYSAN_OK;
}

int dysan_xfer_chunk(dysan_xfer_t *x, uint32_t offset, const uint8_t *data, size_t n)
{
    if (!in_progress(x)) {
        return DYSAN_ERR_XFER_STATE;
    }
    if (offset != x->next) {
        return DYSAN_OK; /* ignored: the reply tells the host where to continue */
    }
    if (n > x->total - x->next) {
        return DYSAN_ERR_XFER_SIZE;
    }
    if (n > 0u && dysan_port_region_write(x->region, offset, data, n) != 0) {
        return DYSAN_ERR_STORAGE;
    }
    x->next += (uint32_t)n;
    x->state = x->next == x->total ? DYSAN_XFER_STATE_COMPLETE : DYSAN_XFER_STATE_RECEIVING;
    return DYSAN_OK;
}

int dysan_xfer_commit(dysan_xfer_t *x, const uint8_t sha[DYSAN_SHA256_SIZE], int *failed)
{
    *failed = 0;
    if (x->state != DYSAN_XFER_STATE_COMPLETE) {
        return DYSAN_ERR_XFER_STATE;
    }
    if (!dysan_auth_equal(sha, x->sha, DYSAN_SHA256_SIZE)) {
        return DYSAN_ERR_XFER_HASH;
    }
    size_t cap = 0;
    const uint8_t *base = dysan_port_region(x->region, &cap);
    uint8_t got[DYSAN_SHA256_SIZE];
    if (base == NULL || x->total > cap) {
        x->state = DYSAN_XFER_STATE_FAILED;
        *failed = 1;
        return DYSAN_ERR_XFER_HASH;
    }
    dysan_sha256(base, x->total, got);
    if (!dysan_auth_equal(got, x->sha, DYSAN_SHA256_SIZE)) {
        x->state = DYSAN_XFER_STATE_FAILED;
        *failed = 1;
        return DYSAN_ERR_XFER_HASH;
    }
    x->state = DYSAN_XFER_STATE_COMMITTED;
    return DYSAN_OK;
}

void dysan_xfer_status(const dysan_xfer_t *x, dysan_msg_xfer_status_t *out)
{
    out->target = x->target;
    out->state = x->state;
    out->next_offset = x->next;
    out->total_size = x->state == DYSAN_XFER_STATE_IDLE ? 0u : x->total;
}
