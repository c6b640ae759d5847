/*
 * dysan_frame.c -- frame decoder (streaming, fixed buffer) and encoder (bounded, no temporary copy).
 *
 * Why CRC-32 rather than CRC-16: frames reach 1.5 KB and most are unauthenticated (sanitized windows,
 * upload chunks), so the CRC is all that stands between line noise and a wrong window; CRC-32 lets a
 * random corruption through with probability 2^-32 instead of 2^-16 for 2 more bytes per frame, and is
 * zlib's crc32 on the host (dysan_crc32.h).
 */
#include "dysan_frame.h"

#include <string.h>

#include "dysan_le.h"

/* ------------------------------------------------------------------------------------------ decoder */

dysan_frame_status_t dysan_frame_parse(const uint8_t *raw, size_t n, dysan_frame_t *out)
{
    if (raw == NULL || out == NULL || n < (size_t)(DYSAN_FRAME_HEADER_SIZE + DYSAN_FRAME_CRC_SIZE)) {
        return DYSAN_FRAME_ERR_LENGTH;
    }
    const size_t body = n - DYSAN_FRAME_CRC_SIZE;
    if (dysan_crc32_update(0, raw, body) != dysan_le_get_u32(raw + body)) {
        return DYSAN_FRAME_ERR_CRC;
    }
    const uint8_t flags = raw[1];
    if ((flags & (uint8_t)~DYSAN_FRAME_FLAGS_KNOWN) != 0u) {
        return DYSAN_FRAME_ERR_HEADER;
    }
    const uint16_t len = dysan_le_get_u16(raw + 4);
    const size_t trailer = (flags & DYSAN_FRAME_FLAG_AUTH) ? (size_t)DYSAN_AUTH_TRAILER_SIZE : 0u;
    if (len > DYSAN_MSG_MAX_PAYLOAD ||
        (size_t)DYSAN_FRAME_HEADER_SIZE + len + trailer + DYSAN_FRAME_CRC_SIZE != n) {
        return DYSAN_FRAME_ERR_LENGTH;
    }
    out->msg_id = raw[0];
    out->flags = flags;
    out->seq = dysan_le_get_u16(raw + 2);
    out->len = len;
    out->payload = raw + DYSAN_FRAME_HEADER_SIZE;
    if (trailer != 0u) {
        out->counter = dysan_le_get_u32(raw + DYSAN_FRAME_HEADER_SIZE + len);
        out->tag = raw + DYSAN_FRAME_HEADER_SIZE + len + DYSAN_AUTH_COUNTER_SIZE;
    } else {
        out->counter = 0;
        out->tag = NULL;
    }
    return DYSAN_FRAME_OK;
}

static void reset_packet(dysan_frame_decoder_t *d)
{
    d->n = 0;
    d->encoded = 0;
    d->block_left = 0;
    d->zero_pending = 0;
    d->overflow = 0;
}

void dysan_frame_decoder_init(dysan_frame_decoder_t *d)
{
    if (d == NULL) {
        return;
    }
    memset(d, 0, sizeof *d);
    reset_packet(d);
}

static void count_error(dysan_frame_decoder_t *d, dysan_frame_status_t st)
{
    d->last_error = st;
    switch (st) {
    case DYSAN_FRAME_ERR_CRC:
        d->stats.crc_errors++;
        break;
    case DYSAN_FRAME_ERR_COBS:
        d->stats.cobs_errors++;
        break;
    case DYSAN_FRAME_ERR_LENGTH:
        d->stats.length_errors++;
        break;
    case DYSAN_FRAME_ERR_HEADER:
        d->stats.header_errors++;
        break;
    case DYSAN_FRAME_OK:
    default:
        break;
    }
}

/* The delimiter closed a packet: classify it. */
static int finish_packet(dysan_frame_decoder_t *d, dysan_frame_t *out)
{
    const int overflow = d->overflow;
    const size_t encoded = d->encoded;
    const int truncated_block = d->block_left != 0u;
    const size_t n = d->n;
    reset_packet(d);
    if (overflow) {
        count_error(d, DYSAN_FRAME_ERR_LENGTH);
        return 0;
    }
    if (encoded == 0u) {
        return 0; /* idle filler between frames */
    }
    if (truncated_block) {
        count_error(d, DYSAN_FRAME_ERR_COBS);
        return 0;
    }
    dysan_frame_t f;
    const dysan_frame_status_t st = dysan_frame_parse(d->buf, n, &f);
    if (st != DYSAN_FRAME_OK) {
        count_error(d, st);
        return 0;
    }
    d->stats.frames_ok++;
    if (out != NULL) {
        *out = f;
    }
    return 1;
}

int dysan_frame_feed(dysan_frame_decoder_t *d, uint8_t byte, dysan_frame_t *out)
{
    if (d == NULL) {
        return 0;
    }
    if (byte == 0u) {
        return finish_packet(d, out);
    }
    if (d->overflow) {
        return 0;
    }
    if (++d->encoded > (size_t)DYSAN_FRAME_MAX_ENCODED) {
        d->overflow = 1;
        return 0;
    }
    if (d->block_left == 0u) {
        /* A code byte: the previous block's implicit zero is data only now that another block follows. */
        if (d->zero_pending) {
            if (d->n >= sizeof d->buf) {
                d->overflow = 1; /* unreachable (n < encoded), kept as the buffer's guard */
                return 0;
            }
            d->buf[d->n++] = 0;
        }
        d->block_left = (uint8_t)(byte - 1u);
        d->zero_pending = byte != 0xffu;
        return 0;
    }
    if (d->n >= sizeof d->buf) {
        d->overflow = 1;
        return 0;
    }
    d->buf[d->n++] = byte;
    d->block_left--;
    return 0;
}

/* ------------------------------------------------------------------------------------------ encoder */

/* COBS over a sequence of segments, written straight into the output (the Python `cobs` package's
 * encoding: no code byte is added after a full 254-byte block that ends the data). */
typedef struct {
    uint8_t *out;
    size_t cap;
    size_t idx;      /* next output byte */
    size_t code_pos; /* where the current block's code byte goes */
    uint8_t code;    /* current block length + 1 */
    int open;        /* a block is open (its code byte reserved) */
    size_t left;     /* input bytes still to come */
    int err;
} cobs_writer_t;

static void cobs_open(cobs_writer_t *w)
{
    if (w->idx >= w->cap) {
        w->err = 1;
        return;
    }
    w->code_pos = w->idx++;
    w->code = 1;
    w->open = 1;
}

static void cobs_put(cobs_writer_t *w, const uint8_t *data, size_t n)
{
    for (size_t i = 0; i < n && !w->err; ++i) {
        const uint8_t b = data[i];
        w->left--;
        if (b != 0u) {
            if (w->idx >= w->cap) {
                w->err = 1;
                return;
            }
            w->out[w->idx++] = b;
            w->code++;
        }
        if (b == 0u || w->code == 0xffu) {
            w->out[w->code_pos] = w->code;
            w->open = 0;
            if (b == 0u || w->left != 0u) {
                cobs_open(w);
            }
        }
    }
}

int dysan_frame_encode(const dysan_frame_t *f, uint8_t *out, size_t cap, size_t *written)
{
    if (f == NULL || written == NULL) {
        return DYSAN_ERR_INTERNAL;
    }
    *written = 0;
    const int auth = (f->flags & DYSAN_FRAME_FLAG_AUTH) != 0u;
    if ((f->flags & (uint8_t)~DYSAN_FRAME_FLAGS_KNOWN) != 0u || f->len > DYSAN_MSG_MAX_PAYLOAD ||
        (f->len != 0u && f->payload == NULL) || (auth && f->tag == NULL)) {
        return DYSAN_ERR_BAD_FIELD;
    }
    if (out == NULL) {
        return DYSAN_ERR_BAD_LENGTH;
    }
    uint8_t header[DYSAN_FRAME_HEADER_SIZE];
    header[0] = f->msg_id;
    header[1] = f->flags;
    dysan_le_put_u16(header + 2, f->seq);
    dysan_le_put_u16(header + 4, f->len);
    uint8_t counter[DYSAN_AUTH_COUNTER_SIZE];
    dysan_le_put_u32(counter, f->counter);

    uint32_t crc = dysan_crc32_update(0, header, sizeof header);
    if (f->len != 0u) {
        crc = dysan_crc32_update(crc, f->payload, f->len);
    }
    if (auth) {
        crc = dysan_crc32_update(crc, counter, sizeof counter);
        crc = dysan_crc32_update(crc, f->tag, DYSAN_AUTH_TAG_SIZE);
    }
    uint8_t crc_le[DYSAN_FRAME_CRC_SIZE];
    dysan_le_put_u32(crc_le, crc);

    cobs_writer_t w = {out, cap, 0, 0, 0, 0, 0, 0};
    w.left = sizeof header + f->len + (auth ? (size_t)DYSAN_AUTH_TRAILER_SIZE : 0u) + sizeof crc_le;
    cobs_open(&w);
    cobs_put(&w, header, sizeof header);
    if (f->len != 0u) {
        cobs_put(&w, f->payload, f->len);
    }
    if (auth) {
        cobs_put(&w, counter, sizeof counter);
        cobs_put(&w, f->tag, DYSAN_AUTH_TAG_SIZE);
    }
    cobs_put(&w, crc_le, sizeof crc_le);
    if (w.err) {
        return DYSAN_ERR_BAD_LENGTH;
    }
    if (w.open) {
        w.out[w.code_pos] = w.code;
    }
    if (w.idx >= w.cap) {
        return DYSAN_ERR_BAD_LENGTH;
    }
    w.out[w.idx++] = 0; /* delimiter */
    *written = w.idx;
    return DYSAN_OK;
}
