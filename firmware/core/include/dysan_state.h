/*
 * dysan_state.h -- the STATE region: the auth counter and the device settings, power-cut safe.
 *
 * The region holds two flash pages (DYSAN_STATE_PAGE bytes each, the port's erase unit). One of them is
 * current; each is a self-contained snapshot plus two append-only logs:
 *
 *   [0, 16)                              page header: u32 magic "DYST", u32 seq, u32 ~seq, u32 CRC-32 of 0..11
 *   [16, DYSAN_STATE_SETTINGS_OFF)       auth counter log: 8-byte records (counter u32, ~counter u32)
 *   [DYSAN_STATE_SETTINGS_OFF, page end) settings log: DYSAN_STATE_RECORD_SIZE-byte records, CRC-32 each
 *
 * Why logs: flash bits only go 1 -> 0, so a record is never rewritten in place; a change appends one
 * record, and only a full log costs an erase. Why two pages: when a log is full, the current counter and
 * settings are written to the *other* page (erased first if it is not blank), read back, and only then is
 * that page's header written (with seq + 1) and read back; the old page is erased last. At boot the page
 * whose header verifies with the highest seq is current. So at every step of a compaction one complete,
 * verified copy of the counter and the settings is on flash: a power cut at any write or erase brings
 * back either the state before the command or the state after it, never an older counter, never a lost
 * setting (tests/test_state_powercut.py cuts power at every flash operation of a long run).
 *
 * Torn writes: a counter record (v, ~v) torn by a power cut either reads back as exactly (v, ~v) or fails
 * the complement check (bits only go 1 -> 0); the same holds for the header's seq / ~seq, whose CRC covers
 * the magic too. A torn settings record fails its CRC and the previous record stays current. A slot that
 * is not erased is never reused: the next record goes after the last non-erased slot.
 *
 * Settings record (little-endian):
 *    0 u8  tag 0x5A               1 u8 flags (DYSAN_STATE_F_*)     2 u8 sensitive value
 *    3 u8  segment_len            4 u8 candidates                  5 u8 reserved (0)
 *    6 u16 weight_x (Q15)         8 u16 weight_y (Q15)            10 u16 boot_epoch
 *   12 u32 bundle size           16 u32 bundle version            20 u8[8] bundle SHA-256 prefix
 *   28 u32 RF size               32 u32 RF version                36 u8[8] RF SHA-256 prefix
 *   44 u32 CRC-32 of bytes 0..43
 * The bundle / RF entries describe the last *committed* upload, so a boot can tell a committed image from
 * one an interrupted upload left half-written. boot_epoch is raised by every boot of a provisioned device
 * (dysan_app_init) and mixed into that boot's jitter seed (dysan_jitter_seed): sequence numbers restart at 1,
 * the epoch does not, so no boot repeats another's transforms. It was the reserved u16 (0) of records written
 * before it existed, which read back as epoch 0.
 */
#ifndef DYSAN_STATE_H
#define DYSAN_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "dysan_port.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DYSAN_STATE_PAGE DYSAN_PORT_PAGE
#define DYSAN_STATE_PAGES 2u
#define DYSAN_STATE_BYTES (DYSAN_STATE_PAGES * DYSAN_STATE_PAGE) /* the STATE region must hold this */
#define DYSAN_STATE_HEADER_SIZE 16u
#define DYSAN_STATE_MAGIC 0x54535944u /* "DYST" in memory order */
#define DYSAN_STATE_COUNTER_RECORD 8u
#define DYSAN_STATE_SETTINGS_OFF 2048u /* counter log: [16, 2048) = 254 records */
#define DYSAN_STATE_RECORD_SIZE 48u    /* settings log: [2048, 4096) = 42 records */
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
    uint16_t boot_epoch; /* boots of this provisioned device (0 never booted provisioned) */
    uint32_t bundle_size, bundle_version;
    uint8_t bundle_hash8[8];
    uint32_t rf_size, rf_version;
    uint8_t rf_hash8[8];
} dysan_settings_t;

typedef struct {
    struct {
        uint32_t value; /* last persisted auth counter (0 on a blank region) */
        size_t next;    /* page offset of the next free counter slot */
    } counter;
    dysan_settings_t settings; /* current (defaults on a blank region) */
    size_t settings_next;      /* page offset of the next free settings slot */
    const uint8_t *base;       /* the region, memory-mapped */
    int page;                  /* current page (0 or 1), -1 while the region is blank */
    uint32_t seq;              /* the current page's sequence number */
    uint32_t compactions;      /* compactions since boot (tests, diagnostics) */
    int ok;                    /* the region exists and is large enough */
} dysan_state_t;

/* The settings of a blank region: stream enabled, nothing stated, nothing committed. */
void dysan_settings_defaults(dysan_settings_t *s);

/* Reads the STATE region (no flash write). DYSAN_OK, or DYSAN_ERR_STORAGE when it is absent or smaller than
 * DYSAN_STATE_BYTES (then every store fails too, and authenticated commands are refused: a counter that
 * cannot be persisted could be replayed). */
int dysan_state_open(dysan_state_t *st);

/* Makes `s` the current settings: appends a record (compacting into the other page when full). DYSAN_OK or
 * DYSAN_ERR_STORAGE; on failure the RAM copy is unchanged. */
int dysan_state_save(dysan_state_t *st, const dysan_settings_t *s);

/* Persists `counter` as the last accepted auth counter. DYSAN_OK, DYSAN_ERR_REPLAY when not above the
 * stored one, DYSAN_ERR_STORAGE when a write or its read-back failed (the RAM copy is then unchanged). */
int dysan_state_store_counter(dysan_state_t *st, uint32_t counter);

/* dysan_auth_persist_fn for `st` (ctx: the dysan_state_t). */
int dysan_state_persist_counter(void *ctx, uint32_t counter);

#ifdef __cplusplus
}
#endif

#endif /* DYSAN_STATE_H */
