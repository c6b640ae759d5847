/* dysan_counter.c -- append-only counter log (see dysan_counter.h for the format and its reasons). */
#include "dysan_counter.h"

#include "dysan_le.h"
#include "dysan_msg.h"

int dysan_counter_log_open(dysan_counter_log_t *log, const uint8_t *base, size_t size,
                           const dysan_counter_ops_t *ops)
{
    if (log == NULL || base == NULL || ops == NULL || ops->write == NULL || ops->erase == NULL ||
        size < 2u * DYSAN_COUNTER_RECORD_SIZE) {
        return DYSAN_ERR_STORAGE;
    }
    log->base = base;
    log->size = size - size % DYSAN_COUNTER_RECORD_SIZE;
    log->ops = *ops;
    log->value = 0;
    log->next = 0;
    /* Every slot is read: a slot left erased by a failed write is a hole, not the end of the log. */
    for (size_t off = 0; off < log->size; off += DYSAN_COUNTER_RECORD_SIZE) {
        const uint32_t v = dysan_le_get_u32(base + off);
        const uint32_t check = dysan_le_get_u32(base + off + 4u);
        if (v == 0xffffffffu && check == 0xffffffffu) {
            continue; /* erased */
        }
        log->next = off + DYSAN_COUNTER_RECORD_SIZE;
        if (check == (uint32_t)~v && v > log->value) {
            log->value = v;
        }
        /* else: a torn record, skipped (and its slot never reused) */
    }
    return DYSAN_OK;
}

int dysan_counter_log_store(dysan_counter_log_t *log, uint32_t counter)
{
    if (log == NULL || log->base == NULL) {
        return DYSAN_ERR_STORAGE;
    }
    if (counter <= log->value) {
        return DYSAN_ERR_REPLAY;
    }
    int compacted = 0;
    if (log->next > log->size || log->size - log->next < DYSAN_COUNTER_RECORD_SIZE) {
        if (log->ops.erase(log->ops.ctx) != 0) {
            return DYSAN_ERR_STORAGE;
        }
        log->next = 0;
        compacted = 1;
    }
    uint8_t rec[DYSAN_COUNTER_RECORD_SIZE];
    dysan_le_put_u32(rec, counter);
    dysan_le_put_u32(rec + 4, ~counter);
    const size_t off = log->next;
    /* The slot is consumed even if the write fails: a half-written slot must never be reused. */
    log->next += DYSAN_COUNTER_RECORD_SIZE;
    if (log->ops.write(log->ops.ctx, off, rec, sizeof rec) != 0) {
        return DYSAN_ERR_STORAGE;
    }
    if (dysan_le_get_u32(log->base + off) != counter || dysan_le_get_u32(log->base + off + 4u) != (uint32_t)~counter) {
        return DYSAN_ERR_STORAGE;
    }
    log->value = counter;
    if (compacted && log->ops.compacted != NULL && log->ops.compacted(log->ops.ctx) != 0) {
        return DYSAN_ERR_STORAGE;
    }
    return DYSAN_OK;
}

int dysan_counter_log_persist(void *ctx, uint32_t counter)
{
    return dysan_counter_log_store((dysan_counter_log_t *)ctx, counter) == DYSAN_OK ? 0 : -1;
}
