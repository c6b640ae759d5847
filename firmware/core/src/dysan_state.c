/* dysan_state.c -- counter log + settings log in the STATE region (see dysan_state.h). */
#include "dysan_state.h"

#include <string.h>

#include "dysan_frame.h"
#include "dysan_msg.h"
#include "dysan_port.h"

static void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (unsigned i = 0; i < 4u; i++) {
        p[i] = (uint8_t)(v >> (8u * i));
    }
}

static uint16_t get_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

void dysan_settings_defaults(dysan_settings_t *s)
{
    memset(s, 0, sizeof *s);
    s->flags = DYSAN_STATE_F_STREAM;
}

static void encode(const dysan_settings_t *s, uint8_t rec[DYSAN_STATE_RECORD_SIZE])
{
    memset(rec, 0, DYSAN_STATE_RECORD_SIZE);
    rec[0] = DYSAN_STATE_TAG;
    rec[1] = s->flags;
    rec[2] = s->sensitive_value;
    rec[3] = s->segment_len;
    rec[4] = s->candidates;
    put_u16(rec + 6, s->weight_x);
    put_u16(rec + 8, s->weight_y);
    put_u32(rec + 12, s->bundle_size);
    put_u32(rec + 16, s->bundle_version);
    memcpy(rec + 20, s->bundle_hash8, 8);
    put_u32(rec + 28, s->rf_size);
    put_u32(rec + 32, s->rf_version);
    memcpy(rec + 36, s->rf_hash8, 8);
    put_u32(rec + 44, dysan_crc32_update(0, rec, 44));
}

static int decode(const uint8_t *rec, dysan_settings_t *s)
{
    if (rec[0] != DYSAN_STATE_TAG || get_u32(rec + 44) != dysan_crc32_update(0, rec, 44)) {
        return 0;
    }
    s->flags = rec[1];
    s->sensitive_value = rec[2];
    s->segment_len = rec[3];
    s->candidates = rec[4];
    s->weight_x = get_u16(rec + 6);
    s->weight_y = get_u16(rec + 8);
    s->bundle_size = get_u32(rec + 12);
    s->bundle_version = get_u32(rec + 16);
    memcpy(s->bundle_hash8, rec + 20, 8);
    s->rf_size = get_u32(rec + 28);
    s->rf_version = get_u32(rec + 32);
    memcpy(s->rf_hash8, rec + 36, 8);
    return 1;
}

static int erased(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != 0xFFu) {
            return 0;
        }
    }
    return 1;
}

/* Appends the record of `s` at st->next (which the caller made room for) and reads it back. */
static int append(dysan_state_t *st, const dysan_settings_t *s)
{
    uint8_t rec[DYSAN_STATE_RECORD_SIZE];
    encode(s, rec);
    const size_t off = st->next;
    st->next += DYSAN_STATE_RECORD_SIZE; /* a slot that failed half-way is never reused */
    if (dysan_port_region_write(DYSAN_REGION_STATE, off, rec, sizeof rec) != 0 ||
        memcmp(st->base + off, rec, sizeof rec) != 0) {
        return DYSAN_ERR_STORAGE;
    }
    return DYSAN_OK;
}

/* The counter log compacted (erasing the page): write the settings back. */
static int restore_settings(void *ctx)
{
    dysan_state_t *st = (dysan_state_t *)ctx;
    st->next = DYSAN_STATE_COUNTER_BYTES;
    return append(st, &st->settings) == DYSAN_OK ? 0 : -1;
}

int dysan_state_open(dysan_state_t *st)
{
    memset(st, 0, sizeof *st);
    dysan_settings_defaults(&st->settings);
    st->base = dysan_port_region(DYSAN_REGION_STATE, &st->size);
    if (st->base == NULL || st->size < DYSAN_STATE_COUNTER_BYTES + 2u * DYSAN_STATE_RECORD_SIZE) {
        return DYSAN_ERR_STORAGE;
    }
    if (dysan_counter_log_open_region(&st->counter, &st->counter_where, DYSAN_REGION_STATE, 0,
                                      DYSAN_STATE_COUNTER_BYTES, restore_settings, st) != DYSAN_OK) {
        return DYSAN_ERR_STORAGE;
    }
    /* Every slot is read: the log ends after its last non-erased slot; the last valid record wins. */
    st->next = DYSAN_STATE_COUNTER_BYTES;
    for (size_t off = DYSAN_STATE_COUNTER_BYTES; off + DYSAN_STATE_RECORD_SIZE <= st->size;
         off += DYSAN_STATE_RECORD_SIZE) {
        if (erased(st->base + off, DYSAN_STATE_RECORD_SIZE)) {
            continue;
        }
        st->next = off + DYSAN_STATE_RECORD_SIZE;
        dysan_settings_t s;
        if (decode(st->base + off, &s)) {
            st->settings = s;
        }
    }
    st->ok = 1;
    return DYSAN_OK;
}

int dysan_state_save(dysan_state_t *st, const dysan_settings_t *s)
{
    if (st == NULL || s == NULL || !st->ok) {
        return DYSAN_ERR_STORAGE;
    }
    if (st->next + DYSAN_STATE_RECORD_SIZE > st->size) {
        /* Compaction: erase the page, put the counter back first (it guards against replays), then s. */
        const uint32_t counter = st->counter.value;
        if (dysan_port_region_erase(DYSAN_REGION_STATE) != 0) {
            return DYSAN_ERR_STORAGE;
        }
        if (dysan_counter_log_open_region(&st->counter, &st->counter_where, DYSAN_REGION_STATE, 0,
                                          DYSAN_STATE_COUNTER_BYTES, restore_settings, st) != DYSAN_OK ||
            (counter > 0u && dysan_counter_log_store(&st->counter, counter) != DYSAN_OK)) {
            return DYSAN_ERR_STORAGE;
        }
        st->next = DYSAN_STATE_COUNTER_BYTES;
    }
    const int rc = append(st, s);
    if (rc == DYSAN_OK) {
        st->settings = *s;
    }
    return rc;
}

int dysan_state_persist_counter(void *ctx, uint32_t counter)
{
    dysan_state_t *st = (dysan_state_t *)ctx;
    if (st == NULL || !st->ok) {
        return -1;
    }
    return dysan_counter_log_store(&st->counter, counter) == DYSAN_OK ? 0 : -1;
}
