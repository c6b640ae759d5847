#define _POSIX_C_SOURCE 200809L
/* An in-process port for the ctypes shim: RAM regions, a byte queue as the link, a fixed test identity.
 * Nothing here is hardware: it lets pytest call core functions that touch the port interface. */
#include <string.h>
#include <time.h>

#include "dysan_port.h"

#define SHIM_REGION_SIZE (700u * 1024u)
#define SHIM_LINK_SIZE (1u << 16)

static uint8_t regions[DYSAN_REGION_COUNT][SHIM_REGION_SIZE];
static int regions_ready;
static uint8_t link_out[SHIM_LINK_SIZE];
static size_t link_out_len;

void dysan_port_init(void) {}

size_t dysan_port_link_read(uint8_t *buf, size_t max)
{
    (void)buf;
    (void)max;
    return 0;
}

int dysan_port_link_write(const uint8_t *buf, size_t n)
{
    if (n > SHIM_LINK_SIZE - link_out_len) {
        link_out_len = 0; /* tests read the link often; an overflow restarts the capture */
    }
    memcpy(link_out + link_out_len, buf, n);
    link_out_len += n;
    return 0;
}

size_t shim_link_take(uint8_t *buf, size_t max)
{
    size_t n = link_out_len < max ? link_out_len : max;
    memcpy(buf, link_out, n);
    memmove(link_out, link_out + n, link_out_len - n);
    link_out_len -= n;
    return n;
}

uint32_t dysan_port_millis(void) { return (uint32_t)(clock() / (CLOCKS_PER_SEC / 1000)); }

uint64_t dysan_port_cycles(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int dysan_port_imu_read(int16_t sample[6])
{
    (void)sample;
    return 0;
}

static void regions_init(void)
{
    if (!regions_ready) {
        memset(regions, 0xFF, sizeof regions);
        regions_ready = 1;
    }
}

const uint8_t *dysan_port_region(dysan_region_t region, size_t *size)
{
    if ((unsigned)region >= DYSAN_REGION_COUNT) {
        return NULL;
    }
    regions_init();
    if (size != NULL) {
        *size = SHIM_REGION_SIZE;
    }
    return regions[region];
}

int dysan_port_region_erase(dysan_region_t region)
{
    if ((unsigned)region >= DYSAN_REGION_COUNT) {
        return -1;
    }
    regions_init();
    memset(regions[region], 0xFF, SHIM_REGION_SIZE);
    return 0;
}

int dysan_port_region_erase_range(dysan_region_t region, size_t offset, size_t n)
{
    if ((unsigned)region >= DYSAN_REGION_COUNT || offset % DYSAN_PORT_PAGE != 0 || n % DYSAN_PORT_PAGE != 0 ||
        offset > SHIM_REGION_SIZE || n > SHIM_REGION_SIZE - offset) {
        return -1;
    }
    regions_init();
    memset(regions[region] + offset, 0xFF, n);
    return 0;
}

int dysan_port_region_write(dysan_region_t region, size_t offset, const uint8_t *data, size_t n)
{
    if ((unsigned)region >= DYSAN_REGION_COUNT || offset > SHIM_REGION_SIZE || n > SHIM_REGION_SIZE - offset) {
        return -1;
    }
    regions_init();
    for (size_t i = 0; i < n; i++) {
        regions[region][offset + i] &= data[i]; /* flash semantics: bits only go 1 -> 0 */
    }
    return 0;
}

int dysan_port_identity(uint8_t device_id[8], uint8_t key[32])
{
    for (int i = 0; i < 8; i++) {
        device_id[i] = (uint8_t)(0xD0 + i);
    }
    for (int i = 0; i < 32; i++) {
        key[i] = (uint8_t)i;
    }
    return 0;
}

void dysan_port_idle(void) {}
