/*
 * proto_fake_port.c -- the persistent-region part of dysan_port.h in RAM, with NOR-flash rules, for the
 * protocol tests: erase sets a whole region to 0xFF, a write can only clear bits (a write that would set
 * a bit leaves the old bit, so read-back catches it), and writes past the region fail.
 * Tests steer failures through proto_fake_fail_* and observe erases through proto_fake_erases.
 */
#include <string.h>

#include "dysan_port.h"

#define FAKE_REGION_SIZE 512u

static uint8_t regions[DYSAN_REGION_COUNT][FAKE_REGION_SIZE];
static int initialized;

int proto_fake_fail_write;    /* nonzero: the next writes fail (count down) */
int proto_fake_fail_erase;    /* nonzero: the next erases fail (count down) */
int proto_fake_torn_write;    /* nonzero: the next write stops after this many bytes */
unsigned proto_fake_erases;
size_t proto_fake_region_size = FAKE_REGION_SIZE;

static void init_once(void)
{
    if (!initialized) {
        memset(regions, 0xff, sizeof regions);
        initialized = 1;
    }
}

const uint8_t *dysan_port_region(dysan_region_t region, size_t *size)
{
    init_once();
    if ((unsigned)region >= (unsigned)DYSAN_REGION_COUNT) {
        return NULL;
    }
    if (size != NULL) {
        *size = proto_fake_region_size;
    }
    return regions[region];
}

int dysan_port_region_erase(dysan_region_t region)
{
    init_once();
    if ((unsigned)region >= (unsigned)DYSAN_REGION_COUNT) {
        return -1;
    }
    if (proto_fake_fail_erase > 0) {
        proto_fake_fail_erase--;
        return -1;
    }
    proto_fake_erases++;
    memset(regions[region], 0xff, sizeof regions[region]);
    return 0;
}

int dysan_port_region_write(dysan_region_t region, size_t offset, const uint8_t *data, size_t n)
{
    init_once();
    if ((unsigned)region >= (unsigned)DYSAN_REGION_COUNT || offset > proto_fake_region_size ||
        n > proto_fake_region_size - offset) {
        return -1;
    }
    if (proto_fake_fail_write > 0) {
        proto_fake_fail_write--;
        return -1;
    }
    size_t todo = n;
    if (proto_fake_torn_write > 0) {
        todo = (size_t)proto_fake_torn_write < n ? (size_t)proto_fake_torn_write : n;
        proto_fake_torn_write = 0;
    }
    for (size_t i = 0; i < todo; ++i) {
        regions[region][offset + i] &= data[i];
    }
    return todo == n ? 0 : -1;
}
