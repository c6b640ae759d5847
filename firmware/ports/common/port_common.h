/*
 * port_common.h -- helpers shared by every port (host, qemu-m4, nrf52840, esp32).
 *
 * Ports stay thin: what more than one port needs (flash-semantics checks, the provisioning page parser,
 * IMU unit conversion, the 50 Hz sample schedule) lives here once, and is unit-tested on the host
 * (firmware/tests/port_test_common.c). Nothing here touches hardware.
 */
#ifndef DYSAN_PORT_COMMON_H
#define DYSAN_PORT_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "dysan_port.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Error codes returned by the port functions (dysan_port.h only promises "negative"). */
#define DYSAN_PORT_OK 0
#define DYSAN_PORT_EINVAL (-1)     /* bad argument: unknown region, NULL buffer */
#define DYSAN_PORT_ERANGE (-2)     /* offset/length outside the region */
#define DYSAN_PORT_ENOTERASED (-3) /* the write would need a 0 -> 1 bit change: erase first */
#define DYSAN_PORT_EIO (-4)        /* the flash driver reported a failure */
#define DYSAN_PORT_ENOID (-5)      /* not provisioned (blank, torn or unknown-version page) */
#define DYSAN_PORT_ELINK (-6)      /* link down */

/* The application entry point. Every firmware build compiles the application's `main` as
 * `dysan_app_main` (-Dmain=dysan_app_main), and each port's own entry calls it: the QEMU Reset_Handler,
 * the host build's main(argc, argv) after parsing options, the Arduino setup() on the boards. */
int dysan_app_main(void);

/* ---- Flash semantics on RAM-backed regions (QEMU, host) ---------------------------------------- */

/* Erases `cap` bytes at `base` to 0xFF. */
int dysan_ramflash_erase(uint8_t *base, size_t cap);

/* Erases [offset, offset + n) of a `cap`-byte region to 0xFF: both multiples of DYSAN_PORT_PAGE
 * (DYSAN_PORT_EINVAL otherwise) and inside the region (DYSAN_PORT_ERANGE). */
int dysan_ramflash_erase_range(uint8_t *base, size_t cap, size_t offset, size_t n);

/* Programs `n` bytes at `offset` like NOR flash, where a bit can only go 1 -> 0, but strictly: the write
 * must read back as written. Returns DYSAN_PORT_ERANGE when [offset, offset + n) is not inside [0, cap),
 * DYSAN_PORT_ENOTERASED (and writes nothing) when some byte would need a 0 -> 1 change -- where real flash
 * would silently keep the 0 bits and the core would read back something else than it wrote. */
int dysan_ramflash_write(uint8_t *base, size_t cap, size_t offset, const uint8_t *data, size_t n);

/* 1 when [offset, offset + n) fits in a region of `cap` bytes (overflow-safe). */
int dysan_range_ok(size_t cap, size_t offset, size_t n);

/* ---- Flash regions on real flash (boards): bounds, NOR rule, word padding, verify ---------------- */

/* What a board's flash driver provides. Addresses are absolute (memory-mapped). */
typedef struct {
    /* Programs `len` bytes at `addr`; both multiples of `align`. Returns 0 or negative. */
    int (*program)(void *ctx, uintptr_t addr, const uint8_t *data, size_t len);
    /* Erases `len` bytes at `addr`; both multiples of `page`. Returns 0 or negative. */
    int (*erase)(void *ctx, uintptr_t addr, size_t len);
    /* Optional (NULL): commits buffered programming, once at the end of each region write (a driver
     * with a page cache, like the Adafruit core's). Returns 0 or negative. */
    int (*flush)(void *ctx);
    void *ctx;
    size_t align; /* program unit: 4 on nRF52 (NVMC words), 4 on ESP32 (safe with flash encryption) */
    size_t page;  /* erase unit: 4096 on both */
} dysan_flash_hal_t;

typedef struct {
    uintptr_t addr;        /* page-aligned start */
    size_t size;           /* multiple of the page size */
    const uint8_t *mapped; /* where the CPU reads it (== addr on nRF52; an mmap on ESP32) */
} dysan_flash_region_t;

int dysan_flash_region_erase(const dysan_flash_hal_t *hal, const dysan_flash_region_t *r);

/* Erases [offset, offset + n) of the region (page-aligned, inside it) and checks it reads 0xFF. */
int dysan_flash_region_erase_range(const dysan_flash_hal_t *hal, const dysan_flash_region_t *r, size_t offset,
                                   size_t n);

/* Same contract as dysan_ramflash_write (bounds, "reads back as written", nothing written on refusal),
 * on real flash: unaligned head/tail bytes are padded with 0xFF to whole program units (0xFF leaves a
 * programmed byte as it is), units that would be all 0xFF are skipped, runs of the others go to the driver
 * in one call from an aligned copy, the driver is flushed, and the result is read back (DYSAN_PORT_EIO on
 * mismatch). A word is programmed at
 * most once per call: consecutive calls whose boundaries are not 4-aligned program the shared word twice,
 * which nRF52840's NVMC allows (n_WRITE = 2 per word between erases); chunks shorter than 4 bytes could
 * exceed that, so the core should write in chunks of at least 4 bytes (ideally 4-aligned). */
int dysan_flash_region_write(const dysan_flash_hal_t *hal, const dysan_flash_region_t *r, size_t offset,
                             const uint8_t *data, size_t n);

/* ---- Byte ring for a link: one producer (BLE callback / ISR), one consumer (the core) ------------- */

typedef struct {
    uint8_t *buf;
    uint32_t size;          /* power of two */
    volatile uint32_t head; /* written by the producer only */
    volatile uint32_t tail; /* written by the consumer only */
    volatile uint32_t dropped;
} dysan_ring_t;

/* `size` must be a power of two (returns DYSAN_PORT_EINVAL otherwise). */
int dysan_ring_init(dysan_ring_t *r, uint8_t *buf, uint32_t size);
/* Producer: copies what fits, counts the rest in `dropped`, returns how many bytes were stored. */
size_t dysan_ring_push(dysan_ring_t *r, const uint8_t *data, size_t n);
/* Consumer: copies up to `max` bytes out, returns how many. */
size_t dysan_ring_pop(dysan_ring_t *r, uint8_t *out, size_t max);
size_t dysan_ring_count(const dysan_ring_t *r);
size_t dysan_ring_space(const dysan_ring_t *r);

/* Payload bytes per BLE notification for a negotiated ATT MTU (ATT header: 3 bytes), at least the
 * default 20, at most `cap` (the characteristic's value size). */
size_t dysan_ble_chunk(uint16_t att_mtu, size_t cap);

/* ---- Provisioning page (layout: dysan_provision.h, generated from host/dysan/device/provision.py) -- */

/* Parses a provisioning page: magic, version and CRC must match. Fills `device_id` / `key` and returns
 * 0, or DYSAN_PORT_ENOID (outputs untouched) for a blank, torn or unknown page, DYSAN_PORT_EINVAL for a
 * NULL argument or `len` shorter than the header. */
int dysan_provision_parse(const uint8_t *page, size_t len, uint8_t device_id[8], uint8_t key[32]);

/* ---- IMU: raw sensor LSB -> contract counts, integer only ---------------------------------------- */

/* round(raw * num / den), half away from zero (as dysan.contract.to_counts), saturated to int16.
 * `den` > 0. The products are 64-bit, so num up to ~2^31 is safe for any int16 raw value. */
int16_t dysan_scale_counts(int32_t raw, int32_t num, int32_t den);

/* ---- Sample schedule: one IMU sample every `period_us`, phase-locked to the first one ------------ */

typedef struct {
    uint32_t next_us;   /* when the next sample is due (wrapping microsecond clock) */
    uint32_t period_us; /* 20000 for the contract's 50 Hz */
    uint32_t missed;    /* ticks skipped because the caller polled too late */
    uint8_t started;
} dysan_sched_t;

void dysan_sched_init(dysan_sched_t *s, uint32_t period_us);

/* 1 when a sample is due at `now_us` (and advances the schedule), else 0. If the caller was late by more
 * than one period, the skipped ticks are counted in `missed` and the schedule stays on its grid: samples
 * are never bunched up to catch up. Correct across the 32-bit microsecond wrap. */
int dysan_sched_due(dysan_sched_t *s, uint32_t now_us);

#ifdef __cplusplus
}
#endif

#endif /* DYSAN_PORT_COMMON_H */
