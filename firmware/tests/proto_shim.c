/*
 * proto_shim.c -- a flat C API over the protocol core for the Python differential tests
 * (tests/test_protocol_c.py loads it with ctypes as build/proto/libdysan_proto_shim.so).
 * Plain integers and byte buffers only, so Python never mirrors a C struct layout.
 */
#include <string.h>

#include "dysan_auth.h"
#include "dysan_frame.h"
#include "dysan_hmac.h"
#include "dysan_proto.h"


static dysan_frame_decoder_t dec;

/* Feeds n bytes to a fresh decoder. Each frame is appended to out as
 * id u8 | flags u8 | seq u16 | len u16 | counter u32 | tag[16] (zeros without one) | payload[len].
 * Returns the number of frames, or -1 when out is too small; stats gets the 5 receive counters. */
long shim_decode(const uint8_t *data, size_t n, uint8_t *out, size_t cap, size_t *used, uint32_t stats[5])
{
    dysan_frame_decoder_init(&dec);
    long frames = 0;
    size_t pos = 0;
    for (size_t i = 0; i < n; ++i) {
        dysan_frame_t f;
        if (!dysan_frame_feed(&dec, data[i], &f)) {
            continue;
        }
        const size_t need = 26u + f.len;
        if (pos + need > cap) {
            return -1;
        }
        uint8_t *r = out + pos;
        r[0] = f.msg_id;
        r[1] = f.flags;
        r[2] = (uint8_t)f.seq;
        r[3] = (uint8_t)(f.seq >> 8);
        r[4] = (uint8_t)f.len;
        r[5] = (uint8_t)(f.len >> 8);
        for (unsigned k = 0; k < 4u; ++k) {
            r[6 + k] = (uint8_t)(f.counter >> (8u * k));
        }
        memset(r + 10, 0, DYSAN_AUTH_TAG_SIZE);
        if (f.tag != NULL) {
            memcpy(r + 10, f.tag, DYSAN_AUTH_TAG_SIZE);
        }
        if (f.len != 0u) {
            memcpy(r + 26, f.payload, f.len);
        }
        pos += need;
        frames++;
    }
    *used = pos;
    stats[0] = dec.stats.frames_ok;
    stats[1] = dec.stats.crc_errors;
    stats[2] = dec.stats.cobs_errors;
    stats[3] = dec.stats.length_errors;
    stats[4] = dec.stats.header_errors;
    return frames;
}

static int shim_persist(void *ctx, uint32_t counter)
{
    (void)ctx;
    (void)counter;
    return 0;
}

/* dysan_proto_accept on a frame given field by field; key NULL: an auth context that is not provisioned,
 * no_auth nonzero: no auth context at all. The accepted message is re-packed into out. */
int shim_accept(uint8_t id, uint8_t flags, uint16_t seq, const uint8_t *payload, uint16_t len, uint32_t counter,
                const uint8_t *tag, uint8_t receiver, const uint8_t *key, const uint8_t *dev, uint32_t last,
                int no_auth, uint32_t *last_after, int *authenticated, uint8_t *out, size_t cap, size_t *n)
{
    static dysan_msg_t m;
    dysan_auth_t auth;
    dysan_auth_init(&auth, key != NULL ? dev : NULL, key, last, shim_persist, NULL);
    const dysan_frame_t f = {id, flags, seq, len, payload, counter, (flags & DYSAN_FRAME_FLAG_AUTH) ? tag : NULL};
    const int rc = dysan_proto_accept(&f, receiver, no_auth ? NULL : &auth, &m, authenticated);
    *last_after = auth.last_counter;
    *n = 0;
    if (rc == DYSAN_OK) {
        const int prc = dysan_msg_pack(&m, out, cap, n);
        if (prc != DYSAN_OK) {
            return 1000 + prc;
        }
    }
    return rc;
}

/* dysan_msg_unpack, then re-pack into out (rc of the unpack; 1000 + rc when the re-pack fails). */
int shim_unpack_repack(uint8_t id, const uint8_t *p, size_t len, uint8_t *out, size_t cap, size_t *n)
{
    static dysan_msg_t m;
    *n = 0;
    const int rc = dysan_msg_unpack(id, p, len, &m);
    if (rc != DYSAN_OK) {
        return rc;
    }
    const int prc = dysan_msg_pack(&m, out, cap, n);
    return prc == DYSAN_OK ? DYSAN_OK : 1000 + prc;
}

int shim_encode(uint8_t id, uint8_t flags, uint16_t seq, const uint8_t *payload, uint16_t len, uint32_t counter,
                const uint8_t *tag, uint8_t *out, size_t cap, size_t *n)
{
    const dysan_frame_t f = {id, flags, seq, len, payload, counter, tag};
    return dysan_frame_encode(&f, out, cap, n);
}

void shim_tag(const uint8_t *key, const uint8_t *dev, uint8_t id, uint32_t counter, const uint8_t *p, size_t len,
              uint8_t *tag)
{
    dysan_auth_tag(key, dev, id, counter, p, len, tag);
}

void shim_sha256(const uint8_t *data, size_t n, uint8_t *out)
{
    dysan_sha256(data, n, out);
}

void shim_hmac(const uint8_t *key, size_t key_len, const uint8_t *data, size_t n, uint8_t *out)
{
    dysan_hmac_sha256(key, key_len, data, n, out);
}

uint32_t shim_crc32(const uint8_t *data, size_t n)
{
    return dysan_crc32_update(0, data, n);
}

/* Limits the tests compare with the Python table. */
long shim_limit(int which)
{
    switch (which) {
    case 0:
        return DYSAN_MSG_MAX_PAYLOAD;
    case 1:
        return DYSAN_FRAME_MAX;
    case 2:
        return DYSAN_FRAME_MAX_ENCODED;
    case 3:
        return DYSAN_MSG_COUNT;
    default:
        return -1;
    }
}
