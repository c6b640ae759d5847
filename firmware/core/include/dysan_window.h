/*
 * dysan_window.h -- window assembly: a ring of the last DYSAN_WINDOW int16 samples, and a window every
 * DYSAN_HOP samples once DYSAN_WINDOW are in (windows start at samples 0, HOP, 2*HOP, ... of the stream,
 * as host/dysan/device/reference.py cuts them). Samples are copied once into the ring; a window is
 * linearized (oldest first) only when it is complete.
 */
#ifndef DYSAN_WINDOW_H
#define DYSAN_WINDOW_H

#include <stdint.h>

#include "dysan_contract.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int16_t ring[DYSAN_WINDOW * DYSAN_N_CHANNELS];
    uint32_t pos;   /* next ring slot (sample index mod DYSAN_WINDOW) */
    uint32_t until; /* samples until the next window is complete */
    uint32_t total; /* samples since the last reset (saturates) */
} dysan_window_t;

/* Forgets every sample: the next window needs DYSAN_WINDOW new ones. */
void dysan_window_reset(dysan_window_t *w);

/* Adds one sample (DYSAN_N_CHANNELS counts). Returns 1 when this sample completed a window. */
int dysan_window_push(dysan_window_t *w, const int16_t *sample);

/* The last DYSAN_WINDOW samples, oldest first, sample-major (DYSAN_WINDOW * DYSAN_N_CHANNELS values). */
void dysan_window_copy(const dysan_window_t *w, int16_t *out);

#ifdef __cplusplus
}
#endif

#endif /* DYSAN_WINDOW_H */
