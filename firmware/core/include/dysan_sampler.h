/*
 * dysan_sampler.h -- the sample ring between acquisition and the pipeline (docs/firmware.md, "Sampling").
 *
 * Single producer, single consumer, lock-free: the producer may be an interrupt handler (a timer-driven IMU
 * read, a FIFO watermark interrupt) or the main loop draining an IMU's hardware FIFO; the consumer is the main
 * loop, which assembles windows from it between pipeline slices. Nothing is lost silently: a sample pushed
 * into a full ring, or reported lost upstream (dysan_sampler_lost: a FIFO that overflowed), is counted, and
 * the next sample that does get in carries a gap mark, so every window spanning the discontinuity can be
 * flagged.
 *
 * Memory ordering: the producer writes the slot, then publishes it with `head`; the consumer reads the slot,
 * then releases it with `tail` (compiler barriers; a single-core M4 needs no more, and the host build only
 * uses it from one thread).
 */
#ifndef DYSAN_SAMPLER_H
#define DYSAN_SAMPLER_H

#include <stdint.h>

#include "dysan_contract.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifndef DYSAN_SAMPLER_SLOTS
#define DYSAN_SAMPLER_SLOTS 256u /* 5.1 s at 50 Hz: what the pipeline may fall behind before samples are lost */
#endif

typedef struct {
    int16_t data[DYSAN_SAMPLER_SLOTS][DYSAN_N_CHANNELS];
    uint8_t gap[DYSAN_SAMPLER_SLOTS]; /* 1: samples were lost right before this one */
    volatile uint32_t head;           /* samples published (producer) */
    volatile uint32_t tail;           /* samples taken (consumer) */
    volatile uint32_t lost;           /* samples lost since the reset: ring full, or reported upstream */
    volatile uint32_t pushed;         /* samples that got in since the reset */
    uint8_t gap_pending;              /* producer: the next sample follows a loss */
} dysan_sampler_t;

/* Empties the ring and zeroes its counters. Call with the producer quiescent (interrupt masked / not yet
 * started). */
void dysan_sampler_reset(dysan_sampler_t *r);

/* Producer: adds one sample (DYSAN_N_CHANNELS counts). Returns 1, or 0 when the ring was full (the sample
 * is counted lost). Safe from an interrupt handler. */
int dysan_sampler_push(dysan_sampler_t *r, const int16_t *sample);

/* Producer: `n` samples were lost before reaching the ring (a hardware FIFO overrun, a missed tick). */
void dysan_sampler_lost(dysan_sampler_t *r, uint32_t n);

/* Consumer: takes the oldest sample into `out`; `*gap` (may be NULL) = 1 when samples were lost just before
 * it. Returns 1, or 0 when the ring is empty. */
int dysan_sampler_pop(dysan_sampler_t *r, int16_t *out, uint8_t *gap);

/* Samples waiting (consumer side). */
uint32_t dysan_sampler_count(const dysan_sampler_t *r);

#ifdef __cplusplus
}
#endif

#endif /* DYSAN_SAMPLER_H */
