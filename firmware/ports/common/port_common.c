/* port_common.c -- see port_common.h. Pure C11, no hardware, no allocation. */
#include "port_common.h"

#include <string.h>

#include "dysan_crc32.h"
#include "dysan_le.h"
#include "dysan_provision.h"

int dysan_range_ok(size_t cap, size_t offset, size_t n)
{
    return offset <= cap && n <= cap - offset;
}

int dysan_ramflash_erase(uint8_t *base, size_t cap)
{
    if (base == NULL) {
        return DYSAN_PORT_EINVAL;
    }
    memset(base, 0xFF, cap);
    return DYSAN_PORT_OK;
}

int dysan_ramflash_erase_range(uint8_t *base, size_t cap, size_t offset, size_t n)
{
    if (base == NULL || offset % DYSAN_PORT_PAGE != 0 || n % DYSAN_PORT_PAGE != 0) {
        return DYSAN_PORT_EINVAL;
    }
    if (!dysan_range_ok(cap, offset, n)) {
        return DYSAN_PORT_ERANGE;
    }
    memset(base + offset, 0xFF, n);
    return DYSAN_PORT_OK;
}

int dysan_ramflash_write(uint8_t *base, size_t cap, size_t offset, const uint8_t *data, size_t n)
{
    if (base == NULL || (data == NULL && n > 0)) {
        return DYSAN_PORT_EINVAL;
    }
    if (!dysan_range_ok(cap, offset, n)) {
        return DYSAN_PORT_ERANGE;
    }
    /* Check everything before writing anything: a rejected write leaves the region unchanged. */
    for (size_t i = 0; i < n; i++) {
        if ((uint8_t)(base[offset + i] & data[i]) != data[i]) {
            return DYSAN_PORT_ENOTERASED;
        }
    }
    if (n > 0) {
        memcpy(base + offset, data, n);
    }
    return DYSAN_PORT_OK;
}

/* ---- flash regions on real flash ---------------------------------------------------------------- */

int dysan_flash_region_erase(const dysan_flash_hal_t *hal, const dysan_flash_region_t *r)
{
    return r == NULL ? DYSAN_PORT_EINVAL : dysan_flash_region_erase_range(hal, r, 0, r->size);
}

int dysan_flash_region_erase_range(const dysan_flash_hal_t *hal, const dysan_flash_region_t *r, size_t offset,
                                   size_t n)
{
    if (hal == NULL || r == NULL || hal->erase == NULL || hal->page == 0 || r->addr % hal->page != 0 ||
        r->size % hal->page != 0 || offset % hal->page != 0 || n % hal->page != 0) {
        return DYSAN_PORT_EINVAL;
    }
    if (!dysan_range_ok(r->size, offset, n)) {
        return DYSAN_PORT_ERANGE;
    }
    if (n > 0 && hal->erase(hal->ctx, r->addr + offset, n) != 0) {
        return DYSAN_PORT_EIO;
    }
    for (size_t i = offset; i < offset + n; i++) {
        if (r->mapped[i] != 0xFFu) {
            return DYSAN_PORT_EIO;
        }
    }
    return DYSAN_PORT_OK;
}

#define FLASH_STAGE 64u /* bytes programmed per driver call, from an aligned copy */

int dysan_flash_region_write(const dysan_flash_hal_t *hal, const dysan_flash_region_t *r, size_t offset,
                             const uint8_t *data, size_t n)
{
    if (hal == NULL || r == NULL || hal->program == NULL || hal->align == 0 || hal->align > FLASH_STAGE ||
        FLASH_STAGE % hal->align != 0 || (data == NULL && n > 0)) {
        return DYSAN_PORT_EINVAL;
    }
    if (!dysan_range_ok(r->size, offset, n)) {
        return DYSAN_PORT_ERANGE;
    }
    for (size_t i = 0; i < n; i++) {
        if ((uint8_t)(r->mapped[offset + i] & data[i]) != data[i]) {
            return DYSAN_PORT_ENOTERASED;
        }
    }
    /* [lo, hi): the write widened to whole program units; bytes outside [offset, offset + n) are 0xFF. */
    size_t lo = offset - offset % hal->align;
    size_t hi = offset + n;
    if (hi % hal->align != 0) {
        hi += hal->align - hi % hal->align;
    }
    if (hi > r->size) {
        return DYSAN_PORT_ERANGE; /* a region size that is not a multiple of the program unit */
    }
    _Alignas(8) uint8_t stage[FLASH_STAGE];
    for (size_t pos = lo; pos < hi; pos += FLASH_STAGE) {
        size_t len = hi - pos < FLASH_STAGE ? hi - pos : FLASH_STAGE;
        for (size_t i = 0; i < len; i++) {
            size_t at = pos + i;
            stage[i] = (at >= offset && at < offset + n) ? data[at - offset] : 0xFFu;
        }
        /* Program runs of the units that change something (an all-0xFF unit is a no-op on NOR flash). */
        size_t run = 0; /* start of the pending run, in stage */
        size_t run_len = 0;
        for (size_t u = 0; u <= len; u += hal->align) {
            int blank = 1;
            for (size_t i = u; i < u + hal->align && u < len; i++) {
                blank &= stage[i] == 0xFFu;
            }
            if (u < len && !blank) {
                if (run_len == 0) {
                    run = u;
                }
                run_len += hal->align;
                continue;
            }
            if (run_len > 0) {
                if (hal->program(hal->ctx, r->addr + pos + run, stage + run, run_len) != 0) {
                    return DYSAN_PORT_EIO;
                }
                run_len = 0;
            }
        }
    }
    if (hal->flush != NULL && hal->flush(hal->ctx) != 0) {
        return DYSAN_PORT_EIO;
    }
    for (size_t i = 0; i < n; i++) {
        if (r->mapped[offset + i] != data[i]) {
            return DYSAN_PORT_EIO;
        }
    }
    return DYSAN_PORT_OK;
}

/* ---- ring ------------------------------------------------------------------------------------------ */

int dysan_ring_init(dysan_ring_t *r, uint8_t *buf, uint32_t size)
{
    if (r == NULL || buf == NULL || size == 0 || (size & (size - 1u)) != 0) {
        return DYSAN_PORT_EINVAL;
    }
    r->buf = buf;
    r->size = size;
    r->head = 0;
    r->tail = 0;
    r->dropped = 0;
    return DYSAN_PORT_OK;
}

size_t dysan_ring_count(const dysan_ring_t *r)
{
    return (size_t)(uint32_t)(r->head - r->tail);
}

size_t dysan_ring_space(const dysan_ring_t *r)
{
    return (size_t)r->size - dysan_ring_count(r);
}

size_t dysan_ring_push(dysan_ring_t *r, const uint8_t *data, size_t n)
{
    uint32_t head = r->head;
    uint32_t tail = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE);
    size_t space = (size_t)r->size - (size_t)(uint32_t)(head - tail);
    size_t k = n < space ? n : space;
    for (size_t i = 0; i < k; i++) {
        r->buf[(head + (uint32_t)i) & (r->size - 1u)] = data[i];
    }
    __atomic_store_n(&r->head, head + (uint32_t)k, __ATOMIC_RELEASE);
    if (k < n) {
        r->dropped += (uint32_t)(n - k);
    }
    return k;
}

size_t dysan_ring_pop(dysan_ring_t *r, uint8_t *out, size_t max)
{
    uint32_t tail = r->tail;
    uint32_t head = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
    size_t avail = (size_t)(uint32_t)(head - tail);
    size_t k = max < avail ? max : avail;
    for (size_t i = 0; i < k; i++) {
        out[i] = r->buf[(tail + (uint32_t)i) & (r->size - 1u)];
    }
    __atomic_store_n(&r->tail, tail + (uint32_t)k, __ATOMIC_RELEASE);
    return k;
}

size_t dysan_ble_chunk(uint16_t att_mtu, size_t cap)
{
    size_t payload = att_mtu > 23u ? (size_t)att_mtu - 3u : 20u;
    return payload < cap ? payload : (cap > 0 ? cap : 1u);
}

int dysan_provision_parse(const uint8_t *page, size_t len, uint8_t device_id[8], uint8_t key[32])
{
    if (page == NULL || device_id == NULL || key == NULL || len < DYSAN_PROVISION_HEADER_LEN) {
        return DYSAN_PORT_EINVAL;
    }
    if (dysan_le_get_u32(page + DYSAN_PROVISION_OFF_MAGIC) != DYSAN_PROVISION_MAGIC) {
        return DYSAN_PORT_ENOID;
    }
    if (dysan_le_get_u16(page + DYSAN_PROVISION_OFF_VERSION) != DYSAN_PROVISION_VERSION) {
        return DYSAN_PORT_ENOID;
    }
    if (dysan_le_get_u32(page + DYSAN_PROVISION_OFF_CRC) != dysan_crc32_update(0, page, DYSAN_PROVISION_CRC_COVERED)) {
        return DYSAN_PORT_ENOID;
    }
    memcpy(device_id, page + DYSAN_PROVISION_OFF_DEVICE_ID, DYSAN_PROVISION_DEVICE_ID_LEN);
    memcpy(key, page + DYSAN_PROVISION_OFF_KEY, DYSAN_PROVISION_KEY_LEN);
    return DYSAN_PORT_OK;
}

int16_t dysan_scale_counts(int32_t raw, int32_t num, int32_t den)
{
    if (den <= 0) {
        return 0;
    }
    int64_t p = (int64_t)raw * (int64_t)num;
    int64_t mag = p < 0 ? -p : p;
    int64_t q = (mag + den / 2) / den; /* = round(mag / den), half away from 0 */
    if (p < 0) {
        q = -q;
    }
    if (q > INT16_MAX) {
        return INT16_MAX;
    }
    if (q < INT16_MIN) {
        return INT16_MIN;
    }
    return (int16_t)q;
}

void dysan_sched_init(dysan_sched_t *s, uint32_t period_us)
{
    s->next_us = 0;
    s->period_us = period_us > 0 ? period_us : 1;
    s->missed = 0;
    s->started = 0;
}

int dysan_sched_due(dysan_sched_t *s, uint32_t now_us)
{
    if (!s->started) {
        s->started = 1;
        s->next_us = now_us + s->period_us;
        return 1;
    }
    uint32_t late = now_us - s->next_us; /* modular: "now - next" */
    if (late >= 0x80000000u) {
        return 0; /* now is before next (the difference is negative) */
    }
    if (late >= s->period_us) {
        uint32_t skip = late / s->period_us;
        s->missed += skip;
        s->next_us += skip * s->period_us;
    }
    s->next_us += s->period_us;
    return 1;
}
