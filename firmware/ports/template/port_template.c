/*
 * port_template.c -- the starting point of a new port: every function of core/include/dysan_port.h, with
 * what each must do. Copy this folder to ports/<board>/, replace each TODO with the board's driver calls,
 * and keep the contracts (ports/README.md, "Conventions every port follows").
 *
 * As it stands it is a complete, hardware-free port that compiles and behaves: no link bytes, no IMU, a
 * software millisecond/cycle clock, RAM-backed regions with flash semantics (port_common's ramflash helpers)
 * and no identity. tests/test_port_template.py compiles it with -Wall -Wextra -Werror -Wmissing-prototypes
 * and checks it defines every function the header declares, so it cannot fall behind dysan_port.h.
 *
 * Worked examples: ports/qemu-m4 (bare metal, UART ring, MPU), ports/nrf52840 (Arduino cores, BLE, flash
 * through the SoftDevice), ports/esp32 (partitions, NimBLE), ports/host (POSIX). Logic more than one port
 * needs belongs in ports/common (host-tested), not here.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "dysan_port.h"
#include "port_common.h"

/* ---- board configuration (a real port: its board header, e.g. nrf52840/board_nrf52840.h) -------------- */

#define TEMPLATE_BUNDLE_SIZE (64u * 1024u) /* whole pages (DYSAN_PORT_PAGE) */
#define TEMPLATE_RF_SIZE (16u * 1024u)
#define TEMPLATE_STATE_SIZE (2u * DYSAN_PORT_PAGE) /* two pages: dysan_state.h alternates between them */
#define TEMPLATE_LINK_RING 4096u                   /* power of two */

static uint8_t s_bundle[TEMPLATE_BUNDLE_SIZE];
static uint8_t s_rf[TEMPLATE_RF_SIZE];
static uint8_t s_state[TEMPLATE_STATE_SIZE];
static uint8_t s_ring_mem[TEMPLATE_LINK_RING];
static dysan_ring_t s_ring;
static uint32_t s_ms;
static uint64_t s_cycles;
static uint32_t s_imu_lost;

/* The link's receive interrupt / callback (a real port registers it with its UART or BLE stack): queue the
 * bytes; what does not fit is counted in the ring's `dropped` (reported by dysan_port_link_overflows). */
void template_link_rx(const uint8_t *data, size_t n);
void template_link_rx(const uint8_t *data, size_t n)
{
    (void)dysan_ring_push(&s_ring, data, n);
}

/* ---- dysan_port.h ----------------------------------------------------------------------------------------- */

void dysan_port_init(void)
{
    /* TODO: clocks, the cycle counter, the link (UART/USB/BLE: register template_link_rx), the IMU. */
    (void)dysan_ring_init(&s_ring, s_ring_mem, TEMPLATE_LINK_RING);
    (void)dysan_ramflash_erase(s_bundle, sizeof s_bundle); /* real flash keeps its content: no erase here */
    (void)dysan_ramflash_erase(s_rf, sizeof s_rf);
    (void)dysan_ramflash_erase(s_state, sizeof s_state);
    s_ms = 0;
    s_cycles = 0;
    s_imu_lost = 0;
}

size_t dysan_port_link_read(uint8_t *buf, size_t max)
{
    /* Non-blocking: what the RX interrupt queued, never waiting for more. */
    if (buf == NULL || max == 0) {
        return 0;
    }
    return dysan_ring_pop(&s_ring, buf, max);
}

int dysan_port_link_write(const uint8_t *buf, size_t n)
{
    /* TODO: send all n bytes (blocking; chunked to the BLE MTU with dysan_ble_chunk). */
    if (buf == NULL && n > 0) {
        return DYSAN_PORT_EINVAL;
    }
    return DYSAN_PORT_ELINK; /* no link on the template */
}

uint32_t dysan_port_millis(void)
{
    /* TODO: the board's millisecond clock (wraps after ~49 days). */
    return s_ms;
}

uint64_t dysan_port_cycles(void)
{
    /* TODO: a monotonic 64-bit counter (DWT->CYCCNT extended in software on Cortex-M); document its unit in
     * ports/README.md. The template counts calls so that successive readings increase. */
    return ++s_cycles;
}

int dysan_port_imu_read(int16_t sample[6])
{
    /* TODO: at the contract rate (dysan_sched_due), read the IMU and convert to counts (imu_defs.h). */
    (void)sample;
    return 0;
}

uint32_t dysan_port_imu_lost(void)
{
    /* Optional (the core has a weak default): samples lost to a FIFO overflow or a late poll, cumulative. */
    return s_imu_lost;
}

uint32_t dysan_port_link_overflows(void)
{
    /* Optional (weak default): link bytes dropped because the receive buffer was full, cumulative. */
    return s_ring.dropped;
}

static uint8_t *region_mem(dysan_region_t region, size_t *cap)
{
    switch (region) {
    case DYSAN_REGION_BUNDLE:
        *cap = sizeof s_bundle;
        return s_bundle;
    case DYSAN_REGION_RF:
        *cap = sizeof s_rf;
        return s_rf;
    case DYSAN_REGION_STATE:
        *cap = sizeof s_state;
        return s_state;
    default:
        *cap = 0;
        return NULL;
    }
}

const uint8_t *dysan_port_region(dysan_region_t region, size_t *size)
{
    /* Memory-mapped read access (a real port: the flash address, or an mmap of the partition). */
    size_t cap;
    uint8_t *mem = region_mem(region, &cap);
    if (size != NULL) {
        *size = cap;
    }
    return mem;
}

int dysan_port_region_erase(dysan_region_t region)
{
    /* TODO on flash: dysan_flash_region_erase(&hal, &region) with the board's flash driver in a hal. */
    size_t cap;
    uint8_t *mem = region_mem(region, &cap);
    return mem == NULL ? DYSAN_PORT_EINVAL : dysan_ramflash_erase(mem, cap);
}

int dysan_port_region_erase_range(dysan_region_t region, size_t offset, size_t n)
{
    /* TODO on flash: dysan_flash_region_erase_range (page-aligned, inside the region, reads back 0xFF). */
    size_t cap;
    uint8_t *mem = region_mem(region, &cap);
    return mem == NULL ? DYSAN_PORT_EINVAL : dysan_ramflash_erase_range(mem, cap, offset, n);
}

int dysan_port_region_write(dysan_region_t region, size_t offset, const uint8_t *data, size_t n)
{
    /* TODO on flash: dysan_flash_region_write (NOR rule, word padding, read-back verify). */
    size_t cap;
    uint8_t *mem = region_mem(region, &cap);
    return mem == NULL ? DYSAN_PORT_EINVAL : dysan_ramflash_write(mem, cap, offset, data, n);
}

int dysan_port_identity(uint8_t device_id[8], uint8_t key[32])
{
    /* TODO: dysan_provision_parse() of the board's provisioning page (its layout: dysan_provision.h). The
     * key never leaves the device. */
    if (device_id == NULL || key == NULL) {
        return DYSAN_PORT_EINVAL;
    }
    return DYSAN_PORT_ENOID;
}

void dysan_port_idle(void)
{
    /* TODO: sleep until the next interrupt (WFI), or yield to the RTOS. The template advances its clock. */
    s_ms++;
}
