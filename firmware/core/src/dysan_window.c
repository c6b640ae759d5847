/* dysan_window.c -- sample ring and window cadence (see dysan_window.h). */
#include "dysan_window.h"

#include <string.h>

void dysan_window_reset(dysan_window_t *w)
{
    memset(w->ring, 0, sizeof w->ring);
    w->pos = 0;
    w->until = DYSAN_WINDOW;
    w->total = 0;
}

int dysan_window_push(dysan_window_t *w, const int16_t *sample)
{
    memcpy(&w->ring[w->pos * DYSAN_N_CHANNELS], sample, DYSAN_N_CHANNELS * sizeof(int16_t));
    w->pos = w->pos + 1u >= DYSAN_WINDOW ? 0u : w->pos + 1u;
    if (w->total < UINT32_MAX) {
        w->total++;
    }
    if (--w->until == 0u) {
        w->until = DYSAN_HOP;
        return 1;
    }
    return 0;
}

void dysan_window_copy(const dysan_window_t *w, int16_t *out)
{
    /* The oldest sample sits at pos (the ring is full whenever a window is complete). */
    const uint32_t tail = DYSAN_WINDOW - w->pos;
    memcpy(out, &w->ring[w->pos * DYSAN_N_CHANNELS], tail * DYSAN_N_CHANNELS * sizeof(int16_t));
    memcpy(out + tail * DYSAN_N_CHANNELS, w->ring, w->pos * DYSAN_N_CHANNELS * sizeof(int16_t));
}
