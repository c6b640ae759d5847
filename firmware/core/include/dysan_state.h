/*
 * dysan_state.h -- the STATE region: the auth counter log and the device settings, in one flash page.
 *
 *   [0, DYSAN_STATE_COUNTER_BYTES)        auth counter log (dysan_counter.h: 8-byte append-only records)
 *   [DYSAN_STATE_COUNTER_BYTES, end)      settings log: DYSAN_STATE_RECORD_SIZE-byte records, appended;
 *                                         the last one whose CRC-32 verifies is current
 *
 * Why a log for the settings too: flash bits only go 1 -> 0, so a record is never rewritten in place; a
 * change appends one record, and only a full log costs an erase. The port erases whole regions, so both
 * compactions rewrite both halves from RAM: when the counter log compacts, its `restore` hook writes the
 * current settings back; when the settings log compacts, the counter is written back before the settings.
 * A torn settings record fails its CRC and the previous one stays current.
 *
 * Settings record (little-endian):
 *    0 u8  tag 0x5A               1 u8 flags (DYSAN_STATE_F_*)     2 u8 sensitive value
 *    3 u8  segment_len            4 u8 candidates                  5 u8 reserved (0)
 *    6 u16 weight_x (Q15)         8 u16 weight_y (Q15)            10 u16 reserved (0)
 *   12 u32 bundle size           16 u32 bundle version            20 u8[8] bundle SHA-256 prefix
 *   28 u32 RF size               32 u32 RF version                36 u8[8] RF SHA-256 prefix
 *   44 u32 CRC-32 of bytes 0..43
 * The bundle / RF entries describe the last *committed* upload, so a boot can tell a committed image from
 * one an interrupted upload left half-written.
 */
#ifndef DYSAN_STATE_H
#define DYSAN_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "dysan_counter.h"
#include "dysan_counter_port.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DYSAN_STATE_COUNTER_BYTES 2048u
#define DYSAN_STATE_RECORD_SIZE 48u
#define DYSAN_STATE_TAG 0x5Au

#define DYSAN_STATE_F_SENSITIVE 0x01u /* the sensitive value was stated */
#define DYSAN_STATE_F_CONFIG 0x02u    /* CONFIGURE was received (else: the bundle's schedule defaults) */
#define DYSAN_STATE_F_STREAM 0x04u    /* stream_enable */
#define DYSAN_STATE_F_BUNDLE 0x08u    /* bundle_* describe a committed upload */
#define DYSAN_STATE_F_RF 0x10u        /* rf_* describe a committed upload */

typedef struct {
    uint8_t flags;
    uint8_t sensitive_value;
    uint8_t segment_len, candidates;
    uint16_t weight_x, weight_y;
    uint32_t bundle_size, bundle_version;
    uint8_t bundle_hash8[8];
    uint32_t rf_size, rf_version;
    uint8_t rf_hash8[8];
} dysan_settings_t;

typedef struct {
    dysan_counter_log_t counter;
    dysan_counter_region_t counter_where;
    dysan_settings_t settings; /* current (defaults on a blank page) */
    const uint8_t *base;
    size_t size;
    size_t next; /* offset of the next free settings record */
    int ok;      /* the region exists and holds both logs */
} dysan_state_t;

/* The settings of a blank page: stream enabled, nothing stated, nothing committed. */
void dysan_settings_defaults(dysan_settings_t *s);

/* Opens both logs in the STATE region. DYSAN_OK, or DYSAN_ERR_STORAGE (then every store fails too, and
 * authenticated commands are refused: a counter that cannot be persisted could be replayed). */
int dysan_state_open(dysan_state_t *st);

/* Makes `s` the current settings: appends a record (compacting the page when full). DYSAN_OK or
 * DYSAN_ERR_STORAGE; on failure the RAM copy is unchanged. */
int dysan_state_save(dysan_state_t *st, const dysan_settings_t *s);

/* dysan_auth_persist_fn for the counter log of `st` (ctx: the dysan_state_t). */
int dysan_state_persist_counter(void *ctx, uint32_t counter);

#ifdef __cplusplus
}
#endif

#endif /* DYSAN_STATE_H */
