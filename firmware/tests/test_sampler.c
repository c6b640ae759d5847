/*
 * test_sampler.c -- host unit test of the sample ring (core/src/dysan_sampler.c), driven by
 * tests/test_firmware_realtime.py: order, capacity, losses counted, the gap mark on the first sample after a
 * loss (ring full or reported upstream), reset. Prints "ok <n> checks" and exits 0, or the failures.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check_common.h"
#include "dysan_sampler.h"

static dysan_sampler_t s_ring;

static void sample_of(uint32_t i, int16_t *s)
{
    for (int c = 0; c < DYSAN_N_CHANNELS; c++) {
        s[c] = (int16_t)(i * 7u + (uint32_t)c);
    }
}

static int is_sample(const int16_t *s, uint32_t i)
{
    int16_t want[DYSAN_N_CHANNELS];
    sample_of(i, want);
    return memcmp(s, want, sizeof want) == 0;
}

int main(void)
{
    int16_t s[DYSAN_N_CHANNELS];
    uint8_t gap = 9;
    dysan_sampler_reset(&s_ring);
    CHECK(dysan_sampler_count(&s_ring) == 0u && !dysan_sampler_pop(&s_ring, s, &gap));

    /* fill it exactly: every sample in, in order, none marked */
    for (uint32_t i = 0; i < DYSAN_SAMPLER_SLOTS; i++) {
        sample_of(i, s);
        CHECK(dysan_sampler_push(&s_ring, s) == 1);
    }
    CHECK(dysan_sampler_count(&s_ring) == DYSAN_SAMPLER_SLOTS && s_ring.lost == 0u);
    /* one more: refused, counted */
    sample_of(999, s);
    CHECK(dysan_sampler_push(&s_ring, s) == 0 && s_ring.lost == 1u);
    for (uint32_t i = 0; i < 10u; i++) {
        CHECK(dysan_sampler_pop(&s_ring, s, &gap) == 1 && is_sample(s, i) && gap == 0u);
    }
    /* the next sample that gets in carries the gap mark, the one after it does not */
    sample_of(1000, s);
    CHECK(dysan_sampler_push(&s_ring, s) == 1);
    sample_of(1001, s);
    CHECK(dysan_sampler_push(&s_ring, s) == 1);
    for (uint32_t i = 10; i < DYSAN_SAMPLER_SLOTS; i++) {
        CHECK(dysan_sampler_pop(&s_ring, s, &gap) == 1 && is_sample(s, i) && gap == 0u);
    }
    CHECK(dysan_sampler_pop(&s_ring, s, &gap) == 1 && is_sample(s, 1000) && gap == 1u);
    CHECK(dysan_sampler_pop(&s_ring, s, &gap) == 1 && is_sample(s, 1001) && gap == 0u);
    CHECK(dysan_sampler_count(&s_ring) == 0u && !dysan_sampler_pop(&s_ring, s, NULL));

    /* a loss reported upstream (an IMU FIFO overrun) marks the next sample too, and is counted */
    dysan_sampler_lost(&s_ring, 5u);
    dysan_sampler_lost(&s_ring, 0u);
    CHECK(s_ring.lost == 6u);
    sample_of(2000, s);
    CHECK(dysan_sampler_push(&s_ring, s) == 1);
    CHECK(dysan_sampler_pop(&s_ring, s, &gap) == 1 && is_sample(s, 2000) && gap == 1u);

    /* the indices wrap around the slots many times without losing order */
    for (uint32_t i = 0; i < 10u * DYSAN_SAMPLER_SLOTS; i++) {
        sample_of(i, s);
        CHECK(dysan_sampler_push(&s_ring, s) == 1);
        if (i % 3u == 2u) {
            for (int k = 0; k < 3; k++) {
                CHECK(dysan_sampler_pop(&s_ring, s, &gap) == 1 && is_sample(s, i - 2u + (uint32_t)k) && !gap);
            }
        }
    }

    /* reset: empty, counters zero, no pending mark */
    sample_of(1, s);
    dysan_sampler_lost(&s_ring, 1u);
    dysan_sampler_reset(&s_ring);
    CHECK(dysan_sampler_count(&s_ring) == 0u && s_ring.lost == 0u && s_ring.pushed == 0u);
    CHECK(dysan_sampler_push(&s_ring, s) == 1 && dysan_sampler_pop(&s_ring, s, &gap) == 1 && gap == 0u);

    return check_summary("test_sampler");
}
