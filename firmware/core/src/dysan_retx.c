/* dysan_retx.c -- retransmission queue (see dysan_retx.h). */
#include "dysan_retx.h"

#include <string.h>

void dysan_retx_init(dysan_retx_t *q)
{
    memset(q, 0, sizeof *q);
}

dysan_msg_sanitized_window_t *dysan_retx_push(dysan_retx_t *q)
{
    if (q->count == DYSAN_RETX_SLOTS) {
        q->first = (q->first + 1u) % DYSAN_RETX_SLOTS;
        q->count--;
        q->dropped++;
    }
    dysan_msg_sanitized_window_t *e = &q->slot[(q->first + q->count) % DYSAN_RETX_SLOTS];
    q->count++;
    return e;
}

uint32_t dysan_retx_ack(dysan_retx_t *q, uint32_t seq)
{
    uint32_t n = 0;
    while (q->count > 0u && q->slot[q->first].seq <= seq) {
        q->first = (q->first + 1u) % DYSAN_RETX_SLOTS;
        q->count--;
        n++;
    }
    q->acked += n;
    return n;
}

const dysan_msg_sanitized_window_t *dysan_retx_get(const dysan_retx_t *q, uint32_t i)
{
    return i < q->count ? &q->slot[(q->first + i) % DYSAN_RETX_SLOTS] : NULL;
}
