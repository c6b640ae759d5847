/* dysan_state.c -- the two-page STATE region (format, power-cut reasoning: dysan_state.h). */
#include "dysan_state.h"

#include <string.h>

#include "dysan_crc32.h"
#include "dysan_le.h"
#include "dysan_msg.h"
#include "dysan_port.h"

_Static_assert(DYSAN_STATE_SETTINGS_OFF > DYSAN_STATE_HEADER_SIZE + 2u * DYSAN_STATE_COUNTER_RECORD,
               "the counter log holds at least two records");
_Static_assert(DYSAN_STATE_PAGE - DYSAN_STATE_SETTINGS_OFF >= 2u * DYSAN_STATE_RECORD_SIZE,
               "the settings log holds at least two records");
_Static_assert((DYSAN_STATE_SETTINGS_OFF - DYSAN_STATE_HEADER_SIZE) % DYSAN_STATE_COUNTER_RECORD == 0u,
               "whole counter records");

void dysan_settings_defaults(dysan_settings_t *s)
{
    memset(s, 0, sizeof *s);
    s->flags = DYSAN_STATE_F_STREAM;
}

/* ---- records ---------------------------------------------------------------------------------------- */

static void encode_settings(const dysan_settings_t *s, uint8_t rec[DYSAN_STATE_RECORD_SIZE])
{
    memset(rec, 0, DYSAN_STATE_RECORD_SIZE);
    rec[0] = DYSAN_STATE_TAG;
    rec[1] = s->flags;
    rec[2] = s->sensitive_value;
    rec[3] = s->segment_len;
    rec[4] = s->candidates;
    dysan_le_put_u16(rec + 6, s->weight_x);
    dysan_le_put_u16(rec + 8, s->weight_y);
    dysan_le_put_u16(rec + 10, s->boot_epoch);
    dysan_le_put_u32(rec + 12, s->bundle_size);
    dysan_le_put_u32(rec + 16, s->bundle_version);
    memcpy(rec + 20, s->bundle_hash8, 8);
    dysan_le_put_u32(rec + 28, s->rf_size);
    dysan_le_put_u32(rec + 32, s->rf_version);
    memcpy(rec + 36, s->rf_hash8, 8);
    dysan_le_put_u32(rec + 44, dysan_crc32_update(0, rec, 44));
}

static int decode_settings(const uint8_t *rec, dysan_settings_t *s)
{
    if (rec[0] != DYSAN_STATE_TAG || dysan_le_get_u32(rec + 44) != dysan_crc32_update(0, rec, 44)) {
        return 0;
    }
    s->flags = rec[1];
    s->sensitive_value = rec[2];
    s->segment_len = rec[3];
    s->candidates = rec[4];
    s->weight_x = dysan_le_get_u16(rec + 6);
    s->weight_y = dysan_le_get_u16(rec + 8);
    s->boot_epoch = dysan_le_get_u16(rec + 10);
    s->bundle_size = dysan_le_get_u32(rec + 12);
    s->bundle_version = dysan_le_get_u32(rec + 16);
    memcpy(s->bundle_hash8, rec + 20, 8);
    s->rf_size = dysan_le_get_u32(rec + 28);
    s->rf_version = dysan_le_get_u32(rec + 32);
    memcpy(s->rf_hash8, rec + 36, 8);
    return 1;
}

static void encode_counter(uint32_t v, uint8_t rec[DYSAN_STATE_COUNTER_RECORD])
{
    dysan_le_put_u32(rec, v);
    dysan_le_put_u32(rec + 4, ~v);
}

static void encode_header(uint32_t seq, uint8_t h[DYSAN_STATE_HEADER_SIZE])
{
    dysan_le_put_u32(h, DYSAN_STATE_MAGIC);
    dysan_le_put_u32(h + 4, seq);
    dysan_le_put_u32(h + 8, ~seq);
    dysan_le_put_u32(h + 12, dysan_crc32_update(0, h, 12));
}

/* 1 and *seq when the page's header verifies. */
static int header_valid(const uint8_t *page, uint32_t *seq)
{
    const uint32_t s = dysan_le_get_u32(page + 4);
    if (dysan_le_get_u32(page) != DYSAN_STATE_MAGIC || dysan_le_get_u32(page + 8) != (uint32_t)~s ||
        dysan_le_get_u32(page + 12) != dysan_crc32_update(0, page, 12)) {
        return 0;
    }
    *seq = s;
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

/* ---- flash access ------------------------------------------------------------------------------------- */

static const uint8_t *page_base(const dysan_state_t *st, int page)
{
    return st->base + (size_t)page * DYSAN_STATE_PAGE;
}

/* Writes n bytes at `off` of `page` and reads them back. */
static int write_verify(const dysan_state_t *st, int page, size_t off, const uint8_t *data, size_t n)
{
    const size_t at = (size_t)page * DYSAN_STATE_PAGE + off;
    if (dysan_port_region_write(DYSAN_REGION_STATE, at, data, n) != 0 || memcmp(st->base + at, data, n) != 0) {
        return DYSAN_ERR_STORAGE;
    }
    return DYSAN_OK;
}

static int erase_page(const dysan_state_t *st, int page)
{
    if (dysan_port_region_erase_range(DYSAN_REGION_STATE, (size_t)page * DYSAN_STATE_PAGE, DYSAN_STATE_PAGE) != 0 ||
        !erased(page_base(st, page), DYSAN_STATE_PAGE)) {
        return DYSAN_ERR_STORAGE;
    }
    return DYSAN_OK;
}

/* ---- open ---------------------------------------------------------------------------------------------- */

/* Reads the logs of the current page into st. */
static void scan_page(dysan_state_t *st)
{
    const uint8_t *p = page_base(st, st->page);
    st->counter.value = 0;
    st->counter.next = DYSAN_STATE_HEADER_SIZE;
    for (size_t off = DYSAN_STATE_HEADER_SIZE; off < DYSAN_STATE_SETTINGS_OFF; off += DYSAN_STATE_COUNTER_RECORD) {
        if (erased(p + off, DYSAN_STATE_COUNTER_RECORD)) {
            continue; /* a hole left by a failed write is not the end of the log */
        }
        st->counter.next = off + DYSAN_STATE_COUNTER_RECORD;
        const uint32_t v = dysan_le_get_u32(p + off);
        if (dysan_le_get_u32(p + off + 4u) == (uint32_t)~v && v > st->counter.value) {
            st->counter.value = v;
        }
    }
    dysan_settings_defaults(&st->settings);
    st->settings_next = DYSAN_STATE_SETTINGS_OFF;
    for (size_t off = DYSAN_STATE_SETTINGS_OFF; off + DYSAN_STATE_RECORD_SIZE <= DYSAN_STATE_PAGE;
         off += DYSAN_STATE_RECORD_SIZE) {
        if (erased(p + off, DYSAN_STATE_RECORD_SIZE)) {
            continue;
        }
        st->settings_next = off + DYSAN_STATE_RECORD_SIZE;
        dysan_settings_t s;
        if (decode_settings(p + off, &s)) {
            st->settings = s; /* the last valid record wins */
        }
    }
}

int dysan_state_open(dysan_state_t *st)
{
    memset(st, 0, sizeof *st);
    dysan_settings_defaults(&st->settings);
    st->page = -1;
    size_t size = 0;
    st->base = dysan_port_region(DYSAN_REGION_STATE, &size);
    if (st->base == NULL || size < DYSAN_STATE_BYTES) {
        st->base = NULL;
        return DYSAN_ERR_STORAGE;
    }
    uint32_t seq[DYSAN_STATE_PAGES];
    int valid[DYSAN_STATE_PAGES];
    for (unsigned i = 0; i < DYSAN_STATE_PAGES; i++) {
        valid[i] = header_valid(page_base(st, (int)i), &seq[i]);
    }
    if (valid[0] && valid[1]) {
        /* A compaction was cut after the new page's header and before the old page's erase: the newer wins
         * (serial-number order, so even a wrapped seq compares right). */
        st->page = (int32_t)(seq[1] - seq[0]) > 0 ? 1 : 0;
    } else if (valid[0] || valid[1]) {
        st->page = valid[0] ? 0 : 1;
    }
    if (st->page >= 0) {
        st->seq = seq[st->page];
        scan_page(st);
    }
    st->ok = 1;
    return DYSAN_OK;
}

/* ---- compaction ------------------------------------------------------------------------------------------ */

/* Writes counter + settings to the other page, then its header, then erases the old page. On success the
 * RAM state moves to the new page; on failure it stays as it was (and the flash still holds it). */
static int compact(dysan_state_t *st, uint32_t counter, const dysan_settings_t *s)
{
    const int to = st->page == 1 ? 0 : 1;
    if (!erased(page_base(st, to), DYSAN_STATE_PAGE) && erase_page(st, to) != DYSAN_OK) {
        return DYSAN_ERR_STORAGE;
    }
    uint8_t crec[DYSAN_STATE_COUNTER_RECORD];
    uint8_t srec[DYSAN_STATE_RECORD_SIZE];
    uint8_t head[DYSAN_STATE_HEADER_SIZE];
    const uint32_t seq = st->page >= 0 ? st->seq + 1u : 1u;
    encode_counter(counter, crec);
    encode_settings(s, srec);
    encode_header(seq, head);
    if (write_verify(st, to, DYSAN_STATE_HEADER_SIZE, crec, sizeof crec) != DYSAN_OK ||
        write_verify(st, to, DYSAN_STATE_SETTINGS_OFF, srec, sizeof srec) != DYSAN_OK ||
        write_verify(st, to, 0, head, sizeof head) != DYSAN_OK) {
        return DYSAN_ERR_STORAGE;
    }
    /* The new page is complete and verified: from here on a boot takes it. */
    const int from = st->page;
    st->page = to;
    st->seq = seq;
    st->counter.value = counter;
    st->counter.next = DYSAN_STATE_HEADER_SIZE + DYSAN_STATE_COUNTER_RECORD;
    st->settings = *s;
    st->settings_next = DYSAN_STATE_SETTINGS_OFF + DYSAN_STATE_RECORD_SIZE;
    st->compactions++;
    if (from >= 0) {
        /* A failed or interrupted erase is harmless: the old page has the lower seq, and the next compaction
         * erases it before writing. */
        (void)erase_page(st, from);
    }
    return DYSAN_OK;
}

/* ---- stores ------------------------------------------------------------------------------------------------- */

int dysan_state_store_counter(dysan_state_t *st, uint32_t counter)
{
    if (st == NULL || !st->ok) {
        return DYSAN_ERR_STORAGE;
    }
    if (counter <= st->counter.value) {
        return DYSAN_ERR_REPLAY;
    }
    if (st->page < 0 || st->counter.next + DYSAN_STATE_COUNTER_RECORD > DYSAN_STATE_SETTINGS_OFF) {
        return compact(st, counter, &st->settings);
    }
    uint8_t rec[DYSAN_STATE_COUNTER_RECORD];
    encode_counter(counter, rec);
    const size_t off = st->counter.next;
    st->counter.next += DYSAN_STATE_COUNTER_RECORD; /* a slot that failed half-way is never reused */
    if (write_verify(st, st->page, off, rec, sizeof rec) != DYSAN_OK) {
        return DYSAN_ERR_STORAGE;
    }
    st->counter.value = counter;
    return DYSAN_OK;
}

int dysan_state_save(dysan_state_t *st, const dysan_settings_t *s)
{
    if (st == NULL || s == NULL || !st->ok) {
        return DYSAN_ERR_STORAGE;
    }
    if (st->page < 0 || st->settings_next + DYSAN_STATE_RECORD_SIZE > DYSAN_STATE_PAGE) {
        return compact(st, st->counter.value, s);
    }
    uint8_t rec[DYSAN_STATE_RECORD_SIZE];
    encode_settings(s, rec);
    const size_t off = st->settings_next;
    st->settings_next += DYSAN_STATE_RECORD_SIZE;
    if (write_verify(st, st->page, off, rec, sizeof rec) != DYSAN_OK) {
        return DYSAN_ERR_STORAGE;
    }
    st->settings = *s;
    return DYSAN_OK;
}

int dysan_state_persist_counter(void *ctx, uint32_t counter)
{
    return dysan_state_store_counter((dysan_state_t *)ctx, counter) == DYSAN_OK ? 0 : -1;
}
