/*
 * dysan_retx.h -- the retransmission queue of sent SANITIZED_WINDOW frames (docs/protocol.md, Streaming).
 *
 * Every sanitized window is kept until a cumulative ACK covers its sequence number, so RESEND can send it
 * again. The queue holds only unacknowledged windows (an ACK releases them at once), in increasing seq
 * order; when it is full the oldest is dropped and counted (STATS.windows_dropped). So a window the host
 * acknowledged is never what gets dropped, and a host that stops acknowledging loses only the oldest.
 */
#ifndef DYSAN_RETX_H
#define DYSAN_RETX_H

#include <stdint.h>

#include "dysan_msg.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifndef DYSAN_RETX_SLOTS
#define DYSAN_RETX_SLOTS 16u /* 16 windows = 20 s of stream at one window per 1.24 s hop */
#endif

typedef struct {
    dysan_msg_sanitized_window_t slot[DYSAN_RETX_SLOTS];
    uint32_t first; /* slot of the oldest entry */
    uint32_t count;
    uint32_t dropped, acked;
} dysan_retx_t;

void dysan_retx_init(dysan_retx_t *q);

/* A slot for a new window (the caller fills it, seq increasing); drops the oldest when full. */
dysan_msg_sanitized_window_t *dysan_retx_push(dysan_retx_t *q);

/* Releases every entry with seq <= `seq`; returns how many. */
uint32_t dysan_retx_ack(dysan_retx_t *q, uint32_t seq);

/* The i-th oldest entry (i < count), or NULL. */
const dysan_msg_sanitized_window_t *dysan_retx_get(const dysan_retx_t *q, uint32_t i);

#ifdef __cplusplus
}
#endif

#endif /* DYSAN_RETX_H */
