/* dysan_sampler.c -- the SPSC sample ring (see dysan_sampler.h). */
#include "dysan_sampler.h"

#include <string.h>

#define BARRIER() __asm__ volatile("" : : : "memory")

_Static_assert((DYSAN_SAMPLER_SLOTS & (DYSAN_SAMPLER_SLOTS - 1u)) == 0u, "sampler slots must be a power of 2");

void dysan_sampler_reset(dysan_sampler_t *r)
{
    r->head = 0u;
    r->tail = 0u;
    r->lost = 0u;
    r->pushed = 0u;
    r->gap_pending = 0u;
}

int dysan_sampler_push(dysan_sampler_t *r, const int16_t *sample)
{
    const uint32_t head = r->head;
    if (head - r->tail >= DYSAN_SAMPLER_SLOTS) {
        r->lost = r->lost + 1u;
        r->gap_pending = 1u;
        return 0;
    }
    const uint32_t i = head & (DYSAN_SAMPLER_SLOTS - 1u);
    memcpy(r->data[i], sample, sizeof r->data[i]);
    r->gap[i] = r->gap_pending;
    r->gap_pending = 0u;
    r->pushed = r->pushed + 1u;
    BARRIER();
    r->head = head + 1u;
    return 1;
}

void dysan_sampler_lost(dysan_sampler_t *r, uint32_t n)
{
    if (n > 0u) {
        r->lost = r->lost + n;
        r->gap_pending = 1u;
    }
}

int dysan_sampler_pop(dysan_sampler_t *r, int16_t *out, uint8_t *gap)
{
    const uint32_t tail = r->tail;
    if (tail == r->head) {
        return 0;
    }
    BARRIER();
    const uint32_t i = tail & (DYSAN_SAMPLER_SLOTS - 1u);
    memcpy(out, r->data[i], sizeof r->data[i]);
    if (gap != NULL) {
        *gap = r->gap[i];
    }
    BARRIER();
    r->tail = tail + 1u;
    return 1;
}

uint32_t dysan_sampler_count(const dysan_sampler_t *r) { return r->head - r->tail; }
