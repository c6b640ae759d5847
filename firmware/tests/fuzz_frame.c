/*
 * fuzz_frame.c -- libFuzzer target: the frame decoder, the message unpackers, auth verification and the
 * encoders, under ASan + UBSan. Built by proto.mk (clang -fsanitize=fuzzer,address,undefined).
 *
 * The first input byte picks what the rest is:
 *   0  link bytes, fed one by one to the streaming decoder (garbage, resync, floods);
 *   1  a decoded frame without its CRC: the harness appends a correct CRC and COBS-encodes it, so
 *      mutations get past the CRC and reach the message layer and auth verification;
 *   2  a message id and a payload, straight to dysan_msg_unpack;
 *   3  frame parameters for the encoder, with an output capacity chosen by the input.
 * Beyond memory safety it asserts the codec's identities (abort = crash): an accepted payload re-packs to
 * the same bytes, a decoded frame re-encodes and decodes to the same frame, the encoder never writes past
 * `cap`, and the decoder classifies every packet exactly once.
 * Seeds: proto_golden_test --corpus (every golden vector in modes 0, 1 and 2).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dysan_auth.h"
#include "dysan_frame.h"
#include "dysan_proto.h"

/* The golden vectors' test key and device id, so signed seeds verify and mutations explore past them. */
static const uint8_t KEY[32] = {0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a,
                                0x4b, 0x4c, 0x4d, 0x4e, 0x4f, 0x50, 0x51, 0x52, 0x53, 0x54, 0x55,
                                0x56, 0x57, 0x58, 0x59, 0x5a, 0x5b, 0x5c, 0x5d, 0x5e, 0x5f};
static const uint8_t DEV[8] = {0xd1, 0x5a, 0x00, 0x00, 0xc0, 0xff, 0xee, 0x01};

#define REQUIRE(cond)                                                                                      \
    do {                                                                                                   \
        if (!(cond)) {                                                                                     \
            abort();                                                                                       \
        }                                                                                                  \
    } while (0)

static int ram_persist(void *ctx, uint32_t counter)
{
    (void)ctx;
    (void)counter;
    return 0;
}

static dysan_frame_decoder_t dec;
static dysan_frame_decoder_t dec2;
static dysan_msg_t msg;
static uint8_t scratch[DYSAN_MSG_MAX_PAYLOAD];
static uint8_t enc[DYSAN_FRAME_MAX_ENCODED + 64];

static uint32_t classified(const dysan_frame_stats_t *s)
{
    return s->frames_ok + s->crc_errors + s->cobs_errors + s->length_errors + s->header_errors;
}

/* Everything a receiver does with a frame, plus the identities. */
static void process(const dysan_frame_t *f)
{
    REQUIRE(f->len <= DYSAN_MSG_MAX_PAYLOAD);
    for (int side = 0; side < 2; ++side) {
        dysan_auth_t auth;
        dysan_auth_init(&auth, DEV, KEY, 42, ram_persist, NULL);
        int authd = 0;
        const int rc = dysan_proto_accept(f, side ? DYSAN_DIR_D2H : DYSAN_DIR_H2D, &auth, &msg, &authd);
        REQUIRE(rc >= DYSAN_OK && rc <= DYSAN_ERR_INTERNAL);
        REQUIRE(!authd || (rc == DYSAN_OK && auth.last_counter == f->counter && f->counter > 42u));
    }
    if (dysan_msg_unpack(f->msg_id, f->payload, f->len, &msg) == DYSAN_OK) {
        size_t n = 0;
        REQUIRE(dysan_msg_pack(&msg, scratch, sizeof scratch, &n) == DYSAN_OK);
        REQUIRE(n == f->len && memcmp(scratch, f->payload, n) == 0);
    }
    size_t n = 0;
    REQUIRE(dysan_frame_encode(f, enc, sizeof enc, &n) == DYSAN_OK);
    REQUIRE(n - 1u <= DYSAN_FRAME_MAX_ENCODED && n <= DYSAN_FRAME_ENCODED_BOUND(f->len));
    dysan_frame_decoder_init(&dec2);
    int frames = 0;
    dysan_frame_t g = {0, 0, 0, 0, NULL, 0, NULL};
    for (size_t i = 0; i < n; ++i) {
        frames += dysan_frame_feed(&dec2, enc[i], &g);
    }
    REQUIRE(frames == 1 && g.msg_id == f->msg_id && g.flags == f->flags && g.seq == f->seq && g.len == f->len);
    REQUIRE(f->len == 0u || memcmp(g.payload, f->payload, f->len) == 0);
    REQUIRE(g.counter == f->counter && ((g.tag == NULL) == (f->tag == NULL)));
    REQUIRE(g.tag == NULL || memcmp(g.tag, f->tag, DYSAN_AUTH_TAG_SIZE) == 0);
}

static void feed_stream(const uint8_t *data, size_t size)
{
    dysan_frame_decoder_init(&dec);
    uint32_t packets = 0;
    size_t run = 0;
    for (size_t i = 0; i < size; ++i) {
        dysan_frame_t f;
        if (data[i] == 0u) {
            packets += run != 0u;
            run = 0;
        } else {
            run++;
        }
        if (dysan_frame_feed(&dec, data[i], &f)) {
            process(&f);
        }
    }
    REQUIRE(classified(&dec.stats) == packets);
}

/* Mode 1: COBS(body || crc32(body)) || 0x00, with a reference encoder independent of the one under test. */
static void feed_fixed_crc(const uint8_t *body, size_t size)
{
    static uint8_t raw[DYSAN_FRAME_MAX_ENCODED + 8];
    static uint8_t wire[DYSAN_FRAME_MAX_ENCODED * 2 + 16];
    if (size + 4u > sizeof raw) {
        return;
    }
    memcpy(raw, body, size);
    const uint32_t crc = dysan_crc32_update(0, body, size);
    for (unsigned i = 0; i < 4u; ++i) {
        raw[size + i] = (uint8_t)(crc >> (8u * i));
    }
    const size_t n = size + 4u;
    size_t code_pos = 0, idx = 1;
    uint8_t code = 1;
    for (size_t i = 0; i < n; ++i) {
        if (raw[i] != 0u) {
            wire[idx++] = raw[i];
            code++;
        }
        if (raw[i] == 0u || code == 0xffu) {
            wire[code_pos] = code;
            code = 1;
            code_pos = idx++;
        }
    }
    wire[code_pos] = code;
    wire[idx++] = 0;
    feed_stream(wire, idx);
}

static void unpack_direct(const uint8_t *data, size_t size)
{
    if (size < 1u) {
        return;
    }
    const uint8_t id = data[0];
    const int rc = dysan_msg_unpack(id, data + 1, size - 1u, &msg);
    const dysan_msg_desc_t *d = dysan_msg_desc(id);
    REQUIRE((d == NULL) == (rc == DYSAN_ERR_UNKNOWN_MSG));
    if (rc == DYSAN_OK) {
        size_t n = 0;
        REQUIRE(dysan_msg_pack(&msg, scratch, sizeof scratch, &n) == DYSAN_OK);
        REQUIRE(n == size - 1u && memcmp(scratch, data + 1, n) == 0);
        REQUIRE(n >= d->fixed_size && n <= d->max_size);
    }
}

static void encode_bounded(const uint8_t *data, size_t size)
{
    static uint8_t out[DYSAN_FRAME_MAX_ENCODED + 64];
    if (size < 8u) {
        return;
    }
    const size_t cap = ((size_t)data[0] | ((size_t)data[1] << 8)) % (sizeof out + 1u);
    const int auth = data[2] & 1u;
    const uint8_t *tag = data + 3;
    if (size < 3u + DYSAN_AUTH_TAG_SIZE + 1u) {
        return;
    }
    const uint8_t *payload = tag + DYSAN_AUTH_TAG_SIZE;
    size_t len = size - 3u - DYSAN_AUTH_TAG_SIZE;
    if (len > DYSAN_MSG_MAX_PAYLOAD) {
        len = DYSAN_MSG_MAX_PAYLOAD;
    }
    const dysan_frame_t f = {payload[0], (uint8_t)(auth ? DYSAN_FRAME_FLAG_AUTH : 0u), (uint16_t)size, (uint16_t)len,
                             payload, auth ? 0x01020304u : 0u, auth ? tag : NULL};
    memset(out, 0xa5, sizeof out);
    size_t n = 0;
    const int rc = dysan_frame_encode(&f, out, cap, &n);
    for (size_t i = cap; i < sizeof out; ++i) {
        REQUIRE(out[i] == 0xa5u);
    }
    REQUIRE((rc == DYSAN_OK) == (n != 0u));
    if (rc == DYSAN_OK) {
        REQUIRE(n <= cap && out[n - 1u] == 0u && memchr(out, 0, n - 1u) == NULL);
        process(&f);
    } else {
        REQUIRE(rc == DYSAN_ERR_BAD_LENGTH);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1u) {
        return 0;
    }
    switch (data[0] & 3u) {
    case 0:
        feed_stream(data + 1, size - 1u);
        break;
    case 1:
        feed_fixed_crc(data + 1, size - 1u);
        break;
    case 2:
        unpack_direct(data + 1, size - 1u);
        break;
    default:
        encode_bounded(data + 1, size - 1u);
        break;
    }
    return 0;
}
