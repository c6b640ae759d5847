/*
 * dysan_frame.h -- the link layer: frames, COBS, CRC-32, 0x00 delimiters (docs/protocol.md).
 *
 *   msg_id u8 | flags u8 | seq u16 | len u16 | payload[len] | [counter u32 | tag[16]] | crc32 u32
 *
 * all little-endian, COBS-encoded and terminated by 0x00. The auth trailer is present exactly when
 * flags & DYSAN_FRAME_FLAG_AUTH; the CRC-32 (IEEE 802.3 / zlib) covers every byte before it.
 *
 * The decoder takes one byte at a time (straight from a UART interrupt's ring buffer or a BLE NUS
 * notification), undoes COBS on the fly into a fixed buffer, and resynchronizes at the next 0x00 after
 * anything wrong: garbage, overlong or truncated frames. It never allocates and never writes past its
 * buffer. Its checks, in order, are those of host/dysan/protocol/framing.py (a differential test holds
 * them together): overlong (> DYSAN_FRAME_MAX_ENCODED bytes) -> length; invalid COBS -> cobs; shorter
 * than header + CRC -> length; CRC -> crc; unknown flags -> header; len disagrees with size -> length.
 */
#ifndef DYSAN_FRAME_H
#define DYSAN_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "dysan_crc32.h" /* dysan_crc32_update: the frames' CRC */
#include "dysan_msg.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A decoded frame. Pointers refer to the decoder's buffer (valid until the next feed) or, for the
 * encoder, to the caller's data. `tag` is NULL and `counter` 0 without DYSAN_FRAME_FLAG_AUTH. */
typedef struct {
    uint8_t msg_id;
    uint8_t flags;
    uint16_t seq;
    uint16_t len;
    const uint8_t *payload;
    uint32_t counter;
    const uint8_t *tag;
} dysan_frame_t;

/* Receive counters (the first five STATS fields). */
typedef struct {
    uint32_t frames_ok;
    uint32_t crc_errors;
    uint32_t cobs_errors;
    uint32_t length_errors;
    uint32_t header_errors;
} dysan_frame_stats_t;

/* Why the last packet was refused (diagnostics). */
typedef enum {
    DYSAN_FRAME_OK = 0,
    DYSAN_FRAME_ERR_CRC,
    DYSAN_FRAME_ERR_COBS,
    DYSAN_FRAME_ERR_LENGTH,
    DYSAN_FRAME_ERR_HEADER,
} dysan_frame_status_t;

typedef struct {
    /* Decoded bytes. A packet of E encoded bytes decodes to at most E - 1, and E is capped at
     * DYSAN_FRAME_MAX_ENCODED, so this size can never be exceeded (and is checked anyway). */
    uint8_t buf[DYSAN_FRAME_MAX_ENCODED];
    size_t n;              /* decoded bytes of the current packet */
    size_t encoded;        /* encoded bytes of the current packet */
    uint8_t block_left;    /* data bytes left in the current COBS block (0: the next byte is a code) */
    uint8_t zero_pending;  /* the block ended below 0xFF: a zero precedes the next block's data */
    uint8_t overflow;      /* the packet is overlong: drop bytes until the delimiter */
    dysan_frame_status_t last_error;
    dysan_frame_stats_t stats;
} dysan_frame_decoder_t;

void dysan_frame_decoder_init(dysan_frame_decoder_t *d);

/* Feeds one received byte. Returns 1 when it completed a valid frame (then *out describes it, pointing
 * into d->buf until the next call), 0 otherwise (errors are counted in d->stats). */
int dysan_frame_feed(dysan_frame_decoder_t *d, uint8_t byte, dysan_frame_t *out);

/* Checks a decoded (un-COBSed) frame of n bytes; fills *out (pointing into raw). */
dysan_frame_status_t dysan_frame_parse(const uint8_t *raw, size_t n, dysan_frame_t *out);

/* Encodes *f as COBS + 0x00 into out[0..cap). Returns DYSAN_OK and *written, or DYSAN_ERR_BAD_FIELD for a
 * frame no receiver would accept (unknown flags, len > DYSAN_MSG_MAX_PAYLOAD, missing tag), or
 * DYSAN_ERR_BAD_LENGTH when cap is too small (nothing meaningful is left in out then). */
int dysan_frame_encode(const dysan_frame_t *f, uint8_t *out, size_t cap, size_t *written);

/* Worst-case size of an encoded frame with a payload of `len` bytes (auth trailer and delimiter
 * included): size output buffers with it. */
#define DYSAN_FRAME_ENCODED_BOUND(len)                                                                   \
    ((DYSAN_FRAME_HEADER_SIZE + (len) + DYSAN_AUTH_TRAILER_SIZE + DYSAN_FRAME_CRC_SIZE) +                  \
     ((DYSAN_FRAME_HEADER_SIZE + (len) + DYSAN_AUTH_TRAILER_SIZE + DYSAN_FRAME_CRC_SIZE) + 253u) / 254u + \
     1u)

#ifdef __cplusplus
}
#endif

#endif /* DYSAN_FRAME_H */
