/*
 * proto_frame_test.c -- the frame codec (dysan_frame) and the generated message codec (dysan_msg):
 * round trips at every payload size, encoder bounds (never a byte past `cap`), every receive error,
 * resynchronization after garbage / truncation / overlong packets, a random flood, and every message's
 * size and field checks. Exit status 0 when every check passes.
 */
#include <stdio.h>
#include <string.h>

#include "check_common.h"
#include "dysan_frame.h"
#include "dysan_msg.h"

static uint32_t rng_state = 12345u;

static uint8_t rnd(void)
{
    rng_state = rng_state * 1103515245u + 12345u;
    return (uint8_t)(rng_state >> 16);
}

static uint8_t payload[DYSAN_MSG_MAX_PAYLOAD];
static uint8_t tag[DYSAN_AUTH_TAG_SIZE];
static uint8_t wire[DYSAN_FRAME_MAX_ENCODED + 64];
static dysan_frame_decoder_t dec;

/* Feeds n bytes; returns the number of frames completed; *last gets the last one. */
static int feed(const uint8_t *data, size_t n, dysan_frame_t *last)
{
    int frames = 0;
    for (size_t i = 0; i < n; ++i) {
        dysan_frame_t f;
        if (dysan_frame_feed(&dec, data[i], &f)) {
            frames++;
            if (last != NULL) {
                *last = f;
            }
        }
    }
    return frames;
}

static size_t encode(uint8_t id, uint8_t flags, uint16_t seq, size_t len, uint32_t counter)
{
    const dysan_frame_t f = {id, flags, seq, (uint16_t)len, payload, counter,
                             (flags & DYSAN_FRAME_FLAG_AUTH) ? tag : NULL};
    size_t n = 0;
    const int rc = dysan_frame_encode(&f, wire, sizeof wire, &n);
    CHECK_MSG(rc == DYSAN_OK, "encode len=%zu rc=%d", len, rc);
    return n;
}

static void fill(size_t len, int pattern)
{
    for (size_t i = 0; i < len; ++i) {
        payload[i] = pattern == 0 ? 0u : pattern == 1 ? 0xffu : pattern == 2 ? (uint8_t)(i % 255u + 1u) : rnd();
    }
}

static void test_round_trip(void)
{
    for (int pattern = 0; pattern < 4; ++pattern) {
        for (size_t len = 0; len <= DYSAN_MSG_MAX_PAYLOAD; len += (len < 600u ? 1u : 37u)) {
            for (int auth = 0; auth < 2; ++auth) {
                fill(len, pattern);
                for (size_t i = 0; i < sizeof tag; ++i) {
                    tag[i] = rnd();
                }
                const uint8_t flags = auth ? DYSAN_FRAME_FLAG_AUTH : 0u;
                const size_t n = encode(0x22, flags, (uint16_t)(len * 7u), len, 0x01020304u + (uint32_t)len);
                CHECK_MSG(n <= DYSAN_FRAME_ENCODED_BOUND(len), "len=%zu: %zu > bound", len, n);
                CHECK_MSG(n - 1u <= DYSAN_FRAME_MAX_ENCODED, "len=%zu: %zu > max encoded", len, n);
                CHECK_MSG(wire[n - 1u] == 0u && memchr(wire, 0, n - 1u) == NULL, "len=%zu: zero inside", len);
                dysan_frame_t f;
                memset(&f, 0, sizeof f);
                const int got = feed(wire, n, &f);
                CHECK_MSG(got == 1, "len=%zu pattern=%d auth=%d: %d frames", len, pattern, auth, got);
                if (got != 1) {
                    continue;
                }
                CHECK_MSG(f.msg_id == 0x22 && f.flags == flags && f.seq == (uint16_t)(len * 7u) && f.len == len,
                          "header len=%zu", len);
                CHECK_MSG(len == 0u || memcmp(f.payload, payload, len) == 0, "payload len=%zu", len);
                if (auth) {
                    CHECK_MSG(f.counter == 0x01020304u + (uint32_t)len && f.tag != NULL &&
                                  memcmp(f.tag, tag, sizeof tag) == 0,
                              "trailer len=%zu", len);
                } else {
                    CHECK_MSG(f.tag == NULL && f.counter == 0u, "no trailer len=%zu", len);
                }
            }
        }
    }
}

static void test_encoder_bounds(void)
{
    static uint8_t out[DYSAN_FRAME_MAX_ENCODED + 16];
    const size_t lens[] = {0, 1, 249, 250, 251, 253, 254, 255, 508, DYSAN_MSG_MAX_PAYLOAD};
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; ++li) {
        const size_t len = lens[li];
        fill(len, 2);
        const dysan_frame_t f = {0x31, DYSAN_FRAME_FLAG_AUTH, 0x0101, (uint16_t)len, payload, 7, tag};
        size_t need = 0;
        CHECK_MSG(dysan_frame_encode(&f, out, sizeof out, &need) == DYSAN_OK, "len=%zu encodes", len);
        for (size_t cap = 0; cap < need; cap += (cap < 300u ? 1u : 97u)) {
            memset(out, 0xa5, sizeof out);
            size_t n = 123;
            CHECK_MSG(dysan_frame_encode(&f, out, cap, &n) == DYSAN_ERR_BAD_LENGTH && n == 0u,
                      "len=%zu cap=%zu must fail", len, cap);
            for (size_t i = cap; i < sizeof out; ++i) {
                if (out[i] != 0xa5u) {
                    CHECK_MSG(0, "len=%zu cap=%zu: wrote out[%zu]", len, cap, i);
                    break;
                }
            }
        }
        size_t n = 0;
        CHECK_MSG(dysan_frame_encode(&f, out, need, &n) == DYSAN_OK && n == need, "len=%zu exact cap", len);
    }
    /* Frames no receiver accepts are refused. */
    size_t n = 0;
    dysan_frame_t bad = {1, 0x02, 0, 0, NULL, 0, NULL};
    CHECK_MSG(dysan_frame_encode(&bad, out, sizeof out, &n) == DYSAN_ERR_BAD_FIELD, "unknown flag");
    bad.flags = DYSAN_FRAME_FLAG_AUTH;
    CHECK_MSG(dysan_frame_encode(&bad, out, sizeof out, &n) == DYSAN_ERR_BAD_FIELD, "auth without tag");
    bad.flags = 0;
    bad.len = DYSAN_MSG_MAX_PAYLOAD + 1;
    bad.payload = payload;
    CHECK_MSG(dysan_frame_encode(&bad, out, sizeof out, &n) == DYSAN_ERR_BAD_FIELD, "payload too long");
    bad.len = 3;
    bad.payload = NULL;
    CHECK_MSG(dysan_frame_encode(&bad, out, sizeof out, &n) == DYSAN_ERR_BAD_FIELD, "NULL payload");
    bad.payload = payload;
    CHECK_MSG(dysan_frame_encode(&bad, NULL, 0, &n) == DYSAN_ERR_BAD_LENGTH, "NULL out");
}

static dysan_frame_stats_t stats_delta(const dysan_frame_stats_t *before)
{
    dysan_frame_stats_t d = dec.stats;
    d.frames_ok -= before->frames_ok;
    d.crc_errors -= before->crc_errors;
    d.cobs_errors -= before->cobs_errors;
    d.length_errors -= before->length_errors;
    d.header_errors -= before->header_errors;
    return d;
}

/* Encodes an arbitrary decoded frame (valid CRC, anything else as given) with the reference COBS. */
static size_t cobs_raw(const uint8_t *raw, size_t n, uint8_t *out)
{
    size_t code_pos = 0, idx = 1;
    uint8_t code = 1;
    for (size_t i = 0; i < n; ++i) {
        if (raw[i] != 0u) {
            out[idx++] = raw[i];
            code++;
        }
        if (raw[i] == 0u || code == 0xffu) {
            out[code_pos] = code;
            code = 1;
            code_pos = idx++;
        }
    }
    out[code_pos] = code;
    out[idx++] = 0;
    return idx;
}

static size_t raw_frame(uint8_t *raw, uint8_t id, uint8_t flags, uint16_t len_field, size_t body_len)
{
    raw[0] = id;
    raw[1] = flags;
    raw[2] = 0;
    raw[3] = 0;
    raw[4] = (uint8_t)len_field;
    raw[5] = (uint8_t)(len_field >> 8);
    memset(raw + 6, 0x42, body_len);
    const uint32_t crc = dysan_crc32_update(0, raw, 6u + body_len);
    for (unsigned i = 0; i < 4u; ++i) {
        raw[6u + body_len + i] = (uint8_t)(crc >> (8u * i));
    }
    return 10u + body_len;
}

static void expect_one_error(const char *what, const uint8_t *data, size_t n, int crc, int cobs, int length,
                             int header)
{
    const dysan_frame_stats_t before = dec.stats;
    const int frames = feed(data, n, NULL);
    const dysan_frame_stats_t d = stats_delta(&before);
    CHECK_MSG(frames == 0 && d.frames_ok == 0u, "%s: no frame expected", what);
    CHECK_MSG(d.crc_errors == (uint32_t)crc && d.cobs_errors == (uint32_t)cobs &&
                  d.length_errors == (uint32_t)length && d.header_errors == (uint32_t)header,
              "%s: errors crc=%u cobs=%u length=%u header=%u", what, d.crc_errors, d.cobs_errors, d.length_errors,
              d.header_errors);
}

static void expect_frame_next(const char *what)
{
    fill(16, 3);
    const size_t n = encode(0x23, 0, 77, 4, 0);
    dysan_frame_t f;
    CHECK_MSG(feed(wire, n, &f) == 1 && f.seq == 77, "%s: the next frame decodes", what);
}

static void test_errors_and_resync(void)
{
    static uint8_t raw[DYSAN_FRAME_MAX + 64];
    static uint8_t enc[3 * DYSAN_FRAME_MAX_ENCODED + 8];
    dysan_frame_decoder_init(&dec);

    /* CRC: flip one bit of the payload of a valid frame. */
    fill(20, 2);
    size_t n = encode(0x23, 0, 5, 4, 0);
    wire[3] ^= 0x10u;
    expect_one_error("crc", wire, n, 1, 0, 0, 0);
    expect_frame_next("after crc");

    /* COBS: a code byte promising more bytes than arrive. */
    const uint8_t trunc[] = {0x05, 0x01, 0x02, 0x00};
    expect_one_error("cobs", trunc, sizeof trunc, 0, 1, 0, 0);
    expect_frame_next("after cobs");

    /* Runt: valid COBS, 3 bytes. */
    const uint8_t runt[] = {0x04, 0x23, 0x01, 0x01, 0x00};
    expect_one_error("runt", runt, sizeof runt, 0, 0, 1, 0);

    /* Unknown flag bit with a valid CRC. */
    n = cobs_raw(raw, raw_frame(raw, 0x23, 0x80, 4, 4), enc);
    expect_one_error("flags", enc, n, 0, 0, 0, 1);

    /* len field disagreeing with the size (valid CRC), and len above the maximum. */
    n = cobs_raw(raw, raw_frame(raw, 0x23, 0, 5, 4), enc);
    expect_one_error("len mismatch", enc, n, 0, 0, 1, 0);
    n = cobs_raw(raw, raw_frame(raw, 0x23, 0, DYSAN_MSG_MAX_PAYLOAD + 1, DYSAN_MSG_MAX_PAYLOAD + 1), enc);
    expect_one_error("len > max", enc, n, 0, 0, 1, 0);
    n = cobs_raw(raw, raw_frame(raw, 0x23, DYSAN_FRAME_FLAG_AUTH, 4, 4), enc);
    expect_one_error("auth flag without trailer", enc, n, 0, 0, 1, 0);
    expect_frame_next("after length errors");

    /* Overlong: MAX_ENCODED + 1 nonzero bytes, counted once; MAX_ENCODED exactly is decoded (and fails
     * on its content, here COBS: 0x11 codes promise 16 bytes). */
    memset(enc, 0x11, DYSAN_FRAME_MAX_ENCODED + 1u);
    enc[DYSAN_FRAME_MAX_ENCODED + 1u] = 0;
    expect_one_error("overlong", enc, DYSAN_FRAME_MAX_ENCODED + 2u, 0, 0, 1, 0);
    memset(enc, 0x11, 3u * DYSAN_FRAME_MAX_ENCODED);
    enc[3u * DYSAN_FRAME_MAX_ENCODED] = 0;
    expect_one_error("very overlong", enc, 3u * DYSAN_FRAME_MAX_ENCODED + 1u, 0, 0, 1, 0);
    memset(enc, 0xff, DYSAN_FRAME_MAX_ENCODED);
    enc[DYSAN_FRAME_MAX_ENCODED] = 0;
    expect_one_error("max encoded garbage", enc, DYSAN_FRAME_MAX_ENCODED + 1u, 0, 1, 0, 0);
    expect_frame_next("after overlong");

    /* Garbage glued to the front of a frame spoils that frame only (no delimiter between them). */
    fill(8, 2);
    n = encode(0x23, 0, 9, 4, 0);
    memmove(wire + 3, wire, n);
    wire[0] = 0x37;
    wire[1] = 0x99;
    wire[2] = 0x42;
    const dysan_frame_stats_t before = dec.stats;
    CHECK_MSG(feed(wire, n + 3u, NULL) == 0, "glued garbage spoils the frame");
    const dysan_frame_stats_t d = stats_delta(&before);
    CHECK_MSG(d.crc_errors + d.cobs_errors + d.length_errors + d.header_errors == 1u, "one error for glued garbage");
    expect_frame_next("after glued garbage");

    /* A delimiter before the frame (what a sender does after an error) isolates it from the garbage. */
    n = encode(0x23, 0, 10, 4, 0);
    memmove(wire + 4, wire, n);
    wire[0] = 0x37;
    wire[1] = 0x99;
    wire[2] = 0x42;
    wire[3] = 0x00;
    dysan_frame_t f;
    CHECK_MSG(feed(wire, n + 4u, &f) == 1 && f.seq == 10, "garbage, 0x00, frame");

    /* Truncated frame (bytes lost in the middle), then a good one. */
    fill(100, 3);
    n = encode(0x21, 0, 11, 100, 0);
    memmove(wire + 40, wire + 60, n - 60u);
    const dysan_frame_stats_t b2 = dec.stats;
    CHECK_MSG(feed(wire, n - 20u, NULL) == 0, "truncated frame refused");
    const dysan_frame_stats_t d2 = stats_delta(&b2);
    CHECK_MSG(d2.crc_errors + d2.cobs_errors + d2.length_errors == 1u, "one error for a truncated frame");
    expect_frame_next("after truncation");

    /* Idle delimiters are not errors. */
    const uint8_t zeros[8] = {0};
    expect_one_error("idle zeros", zeros, sizeof zeros, 0, 0, 0, 0);
}

static void test_flood(void)
{
    dysan_frame_decoder_init(&dec);
    uint32_t packets = 0;
    uint8_t prev = 0;
    for (size_t i = 0; i < 2000000u; ++i) {
        uint8_t b = rnd();
        if (i % 1000u == 0u) {
            b = 0;
        }
        if (b == 0u && prev != 0u) {
            packets++;
        }
        prev = b;
        dysan_frame_t f;
        (void)dysan_frame_feed(&dec, b, &f);
    }
    const dysan_frame_stats_t s = dec.stats;
    const uint32_t total = s.frames_ok + s.crc_errors + s.cobs_errors + s.length_errors + s.header_errors;
    CHECK_MSG(total == packets, "flood: %u packets, %u classified", packets, total);
    const uint8_t zero = 0;
    feed(&zero, 1, NULL);
    expect_frame_next("after flood");
}

static void test_messages(void)
{
    static uint8_t p[DYSAN_MSG_MAX_PAYLOAD + 8];
    static uint8_t out[DYSAN_MSG_MAX_PAYLOAD + 8];
    static dysan_msg_t m;
    int seen = 0;
    for (unsigned id = 0; id < 256u; ++id) {
        const dysan_msg_desc_t *d = dysan_msg_desc((uint8_t)id);
        if (d == NULL) {
            CHECK_MSG(dysan_msg_unpack((uint8_t)id, p, 0, &m) == DYSAN_ERR_UNKNOWN_MSG, "id %u unknown", id);
            continue;
        }
        seen++;
        CHECK_MSG(d->id == id && d->max_size <= DYSAN_MSG_MAX_PAYLOAD && d->fixed_size <= d->max_size, "desc %u", id);
        int ok_count = 0;
        for (size_t len = 0; len <= (size_t)d->max_size + 3u; ++len) {
            memset(p, 0x01, sizeof p);
            const int rc = dysan_msg_unpack((uint8_t)id, p, len, &m);
            if (len < d->fixed_size || len > d->max_size || (!d->has_var && len != d->fixed_size)) {
                CHECK_MSG(rc == DYSAN_ERR_BAD_LENGTH, "%s len=%zu: rc=%d", d->name, len, rc);
                continue;
            }
            CHECK_MSG(rc == DYSAN_OK || rc == DYSAN_ERR_BAD_LENGTH || rc == DYSAN_ERR_BAD_FIELD, "%s len=%zu rc=%d",
                      d->name, len, rc);
            if (rc != DYSAN_OK) {
                continue;
            }
            ok_count++;
            size_t n = 0;
            CHECK_MSG(dysan_msg_pack(&m, out, sizeof out, &n) == DYSAN_OK && n == len && memcmp(out, p, len) == 0,
                      "%s len=%zu: re-pack identical", d->name, len);
            if (len > 0u) {
                memset(out, 0xa5, sizeof out);
                CHECK_MSG(dysan_msg_pack(&m, out, len - 1u, &n) == DYSAN_ERR_BAD_LENGTH && n == 0u,
                          "%s: cap too small", d->name);
                CHECK_MSG(out[len - 1u] == 0xa5u, "%s: no write past cap", d->name);
            }
        }
        CHECK_MSG(ok_count >= 1, "%s: some length unpacks", d->name);
    }
    CHECK_MSG(seen == DYSAN_MSG_COUNT, "table has %d entries", seen);
}

static void test_fields(void)
{
    static dysan_msg_t m;
    uint8_t p[16];
    /* Enum, range and flag constraints. */
    p[0] = 4;
    CHECK_MSG(dysan_msg_unpack(DYSAN_MSG_SET_MODE, p, 1, &m) == DYSAN_ERR_BAD_FIELD, "mode 4");
    p[0] = DYSAN_MODE_REPLAY;
    CHECK_MSG(dysan_msg_unpack(DYSAN_MSG_SET_MODE, p, 1, &m) == DYSAN_OK && m.body.set_mode.mode == 3u, "mode 3");
    const uint8_t cfg_ok[] = {5, 4, 0x00, 0x80, 0x00, 0x00, 1};
    CHECK_MSG(dysan_msg_unpack(DYSAN_MSG_CONFIGURE, cfg_ok, sizeof cfg_ok, &m) == DYSAN_OK &&
                  m.body.configure.weight_x == 32768u,
              "weight 1.0");
    uint8_t cfg[sizeof cfg_ok];
    memcpy(cfg, cfg_ok, sizeof cfg);
    cfg[2] = 0x01;
    CHECK_MSG(dysan_msg_unpack(DYSAN_MSG_CONFIGURE, cfg, sizeof cfg, &m) == DYSAN_ERR_BAD_FIELD, "weight > 1.0");
    memcpy(cfg, cfg_ok, sizeof cfg);
    cfg[6] = 2;
    CHECK_MSG(dysan_msg_unpack(DYSAN_MSG_CONFIGURE, cfg, sizeof cfg, &m) == DYSAN_ERR_BAD_FIELD, "flag 2");
    memcpy(cfg, cfg_ok, sizeof cfg);
    cfg[0] = 0;
    CHECK_MSG(dysan_msg_unpack(DYSAN_MSG_CONFIGURE, cfg, sizeof cfg, &m) == DYSAN_ERR_BAD_FIELD, "segment 0");
    /* SAMPLES: count must match the size. */
    static uint8_t s[DYSAN_MSG_SAMPLES_MAX_SIZE + 16];
    memset(s, 0, sizeof s);
    s[0] = 2;
    CHECK_MSG(dysan_msg_unpack(DYSAN_MSG_SAMPLES, s, 1u + 2u * 2u * DYSAN_N_CHANNELS, &m) == DYSAN_OK &&
                  m.body.samples.count == 2u,
              "2 samples");
    CHECK_MSG(dysan_msg_unpack(DYSAN_MSG_SAMPLES, s, 1u + 2u * DYSAN_N_CHANNELS, &m) == DYSAN_ERR_BAD_LENGTH,
              "count 2, 1 sample");
    CHECK_MSG(dysan_msg_unpack(DYSAN_MSG_SAMPLES, s, 2u + 2u * DYSAN_N_CHANNELS, &m) == DYSAN_ERR_BAD_LENGTH,
              "half sample");
    s[0] = DYSAN_HOP + 1;
    CHECK_MSG(dysan_msg_unpack(DYSAN_MSG_SAMPLES, s, 1u, &m) == DYSAN_ERR_BAD_FIELD, "count > HOP");
    CHECK_MSG(dysan_msg_unpack(DYSAN_MSG_SAMPLES, s, DYSAN_MSG_SAMPLES_MAX_SIZE + 2u * DYSAN_N_CHANNELS, &m) ==
                  DYSAN_ERR_BAD_LENGTH,
              "one sample too many");
    /* Signed values survive the trip. */
    static dysan_msg_t w;
    static uint8_t buf[DYSAN_MSG_MAX_PAYLOAD];
    memset(&w, 0, sizeof w);
    w.id = DYSAN_MSG_RAW_WINDOW;
    w.body.raw_window.seq = 0xfffffffeu;
    w.body.raw_window.samples[0] = -32768;
    w.body.raw_window.samples[1] = 32767;
    w.body.raw_window.samples[DYSAN_MSG_RAW_WINDOW_SAMPLES_COUNT - 1] = -1;
    size_t n = 0;
    CHECK_MSG(dysan_msg_pack(&w, buf, sizeof buf, &n) == DYSAN_OK && n == DYSAN_MSG_RAW_WINDOW_SIZE, "pack raw");
    CHECK_MSG(buf[0] == 0xfeu && buf[4] == 0x00u && buf[5] == 0x80u && buf[6] == 0xffu && buf[7] == 0x7fu &&
                  buf[n - 1u] == 0xffu && buf[n - 2u] == 0xffu,
              "raw window little-endian bytes");
    CHECK_MSG(dysan_msg_unpack(DYSAN_MSG_RAW_WINDOW, buf, n, &m) == DYSAN_OK &&
                  m.body.raw_window.samples[0] == -32768 && m.body.raw_window.samples[1] == 32767 &&
                  m.body.raw_window.samples[DYSAN_MSG_RAW_WINDOW_SAMPLES_COUNT - 1] == -1,
              "raw window signed values");
    memset(&w, 0, sizeof w);
    w.id = DYSAN_MSG_SANITIZED_WINDOW;
    w.body.sanitized_window.data[0] = -128;
    w.body.sanitized_window.data[1] = 127;
    CHECK_MSG(dysan_msg_pack(&w, buf, sizeof buf, &n) == DYSAN_OK && buf[DYSAN_MSG_SANITIZED_WINDOW_OFF_DATA] == 0x80u,
              "pack sanitized");
    CHECK_MSG(dysan_msg_unpack(DYSAN_MSG_SANITIZED_WINDOW, buf, n, &m) == DYSAN_OK &&
                  m.body.sanitized_window.data[0] == -128 && m.body.sanitized_window.data[1] == 127,
              "sanitized signed values");
    /* The packer refuses what the unpacker would. */
    memset(&w, 0, sizeof w);
    w.id = DYSAN_MSG_ERROR;
    w.body.error.text_len = DYSAN_TEXT_MAX + 1;
    CHECK_MSG(dysan_msg_pack(&w, buf, sizeof buf, &n) == DYSAN_ERR_BAD_FIELD, "text too long");
    w.id = DYSAN_MSG_SET_SENSITIVE;
    w.body.set_sensitive.value = 16; /* 0..15: up to 16 values of the attribute */
    CHECK_MSG(dysan_msg_pack(&w, buf, sizeof buf, &n) == DYSAN_ERR_BAD_FIELD, "sensitive 16");
    w.id = 0x7f;
    CHECK_MSG(dysan_msg_pack(&w, buf, sizeof buf, &n) == DYSAN_ERR_UNKNOWN_MSG, "pack unknown id");
}

int main(void)
{
    dysan_frame_decoder_init(&dec);
    test_round_trip();
    test_encoder_bounds();
    test_errors_and_resync();
    test_flood();
    test_messages();
    test_fields();
    printf("proto_frame_test: %s (%d failures)\n", s_failures ? "FAILED" : "ok", s_failures);
    return s_failures ? 1 : 0;
}
