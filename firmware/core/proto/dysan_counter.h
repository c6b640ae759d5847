/*
 * dysan_counter.h -- the last accepted auth counter, persisted as an append-only log in flash.
 *
 * Why a log: flash bits only go from 1 to 0 without an erase, and erases are slow and wear the part.
 * Each accepted command appends one 8-byte record (counter u32 LE, ~counter u32 LE) to an erased area;
 * the current value is the largest valid record. Only when the area is full is it erased and restarted,
 * so a 1 KB area costs one erase per 128 authenticated commands.
 *
 * Power cuts: a torn record (neither erased nor self-consistent) is skipped, never trusted, and its slot
 * is never reused; the log ends after its last non-erased slot. The one unprotected moment is between
 * a compaction's erase and the rewrite of the value (a few flash-word writes, once per size/8 commands;
 * `compacted` runs only after that rewrite so the window stays that short). The firmware's STATE region does
 * not have that moment: dysan_state.c keeps the counter (and the settings) in two pages and writes the new
 * page completely before it erases the old one (docs/firmware.md, "STATE region").
 *
 * Storage is reached through callbacks, so the log is tested on the host against a RAM "flash" that
 * enforces 1 -> 0 writes; dysan_counter_port.h binds it to a dysan_port region.
 */
#ifndef DYSAN_COUNTER_H
#define DYSAN_COUNTER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DYSAN_COUNTER_RECORD_SIZE 8u

typedef struct {
    /* Writes n bytes at `offset` of the (erased) area; 0 or a negative error. */
    int (*write)(void *ctx, size_t offset, const uint8_t *data, size_t n);
    /* Erases the whole area to 0xFF; 0 or a negative error. */
    int (*erase)(void *ctx);
    /* Optional: called after a compaction rewrote the value (e.g. to restore data that shared the erased
     * flash with the log); its failure is reported as DYSAN_ERR_STORAGE but the value is stored. */
    int (*compacted)(void *ctx);
    void *ctx;
} dysan_counter_ops_t;

typedef struct {
    const uint8_t *base; /* memory-mapped read access to the area */
    size_t size;         /* bytes, a multiple of DYSAN_COUNTER_RECORD_SIZE is used */
    dysan_counter_ops_t ops;
    size_t next;         /* offset of the next free record */
    uint32_t value;      /* last stored counter (0 on a blank area) */
} dysan_counter_log_t;

/* Scans the area. DYSAN_OK, or DYSAN_ERR_STORAGE when it cannot hold two records. */
int dysan_counter_log_open(dysan_counter_log_t *log, const uint8_t *base, size_t size,
                           const dysan_counter_ops_t *ops);

/* Appends `counter` (erasing first when full) and reads it back. DYSAN_OK, DYSAN_ERR_REPLAY when not
 * above the stored value, DYSAN_ERR_STORAGE when the write or the read-back failed. */
int dysan_counter_log_store(dysan_counter_log_t *log, uint32_t counter);

/* dysan_auth_persist_fn adapter: ctx is a dysan_counter_log_t *. */
int dysan_counter_log_persist(void *ctx, uint32_t counter);

#ifdef __cplusplus
}
#endif

#endif /* DYSAN_COUNTER_H */
