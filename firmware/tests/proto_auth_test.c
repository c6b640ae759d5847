/*
 * proto_auth_test.c -- authentication (dysan_auth), the persisted counter log (dysan_counter and its
 * dysan_port binding, against proto_fake_port.c's NOR-flash rules), and the acceptance rules
 * (dysan_proto_accept): replays refused, wrong keys / devices refused, unsigned commands refused,
 * counters persisted before a command is accepted, and nothing accepted when persisting fails.
 */
#include <stdio.h>
#include <string.h>

#include "check_common.h"
#include "dysan_auth.h"
#include "dysan_counter.h"
#include "dysan_counter_port.h"
#include "dysan_proto.h"

extern int proto_fake_fail_write;
extern int proto_fake_fail_erase;
extern int proto_fake_torn_write;
extern unsigned proto_fake_erases;
extern size_t proto_fake_region_size;

static const uint8_t KEY[32] = {0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a,
                                0x4b, 0x4c, 0x4d, 0x4e, 0x4f, 0x50, 0x51, 0x52, 0x53, 0x54, 0x55,
                                0x56, 0x57, 0x58, 0x59, 0x5a, 0x5b, 0x5c, 0x5d, 0x5e, 0x5f};
static const uint8_t DEV[8] = {0xd1, 0x5a, 0x00, 0x00, 0xc0, 0xff, 0xee, 0x01};

/* A RAM persist hook that can be told to fail. */
static uint32_t persisted;
static int persist_fail;
static int persist_calls;

static int ram_persist(void *ctx, uint32_t counter)
{
    (void)ctx;
    persist_calls++;
    if (persist_fail) {
        return -1;
    }
    persisted = counter;
    return 0;
}

/* A signed frame for (id, payload, counter) with the given key and device id. */
static uint8_t tag_buf[DYSAN_AUTH_TAG_SIZE];
static dysan_frame_t signed_frame(uint8_t id, const uint8_t *p, uint16_t len, uint32_t counter, const uint8_t *key,
                                  const uint8_t *dev)
{
    dysan_auth_tag(key, dev, id, counter, p, len, tag_buf);
    dysan_frame_t f = {id, DYSAN_FRAME_FLAG_AUTH, 1, len, p, counter, tag_buf};
    return f;
}

static void test_verify(void)
{
    dysan_auth_t a;
    dysan_auth_init(&a, DEV, KEY, 10, ram_persist, NULL);
    const uint8_t mode = DYSAN_MODE_STREAMING;
    dysan_frame_t f = signed_frame(DYSAN_MSG_SET_MODE, &mode, 1, 11, KEY, DEV);
    CHECK_MSG(dysan_auth_verify(&a, &f) == DYSAN_OK, "fresh counter verifies");
    CHECK_MSG(a.last_counter == 10u, "verify has no side effect");
    CHECK_MSG(dysan_auth_commit(&a, 11) == DYSAN_OK && a.last_counter == 11u && persisted == 11u, "commit");
    CHECK_MSG(dysan_auth_verify(&a, &f) == DYSAN_ERR_REPLAY && a.replays == 1u, "same frame again: replay");
    f = signed_frame(DYSAN_MSG_SET_MODE, &mode, 1, 5, KEY, DEV);
    CHECK_MSG(dysan_auth_verify(&a, &f) == DYSAN_ERR_REPLAY, "older counter: replay");
    f = signed_frame(DYSAN_MSG_SET_MODE, &mode, 1, 12, KEY, DEV);
    for (unsigned i = 0; i < DYSAN_AUTH_TAG_SIZE; ++i) {
        uint8_t t[DYSAN_AUTH_TAG_SIZE];
        memcpy(t, f.tag, sizeof t);
        t[i] ^= 0x01u;
        dysan_frame_t g = f;
        g.tag = t;
        CHECK_MSG(dysan_auth_verify(&a, &g) == DYSAN_ERR_AUTH_FAILED, "tag bit flip at %u", i);
    }
    dysan_frame_t g = f;
    g.counter = 13; /* counter not covered -> would allow replays with fresh counters */
    CHECK_MSG(dysan_auth_verify(&a, &g) == DYSAN_ERR_AUTH_FAILED, "counter is covered by the tag");
    g = f;
    g.msg_id = DYSAN_MSG_SET_SENSITIVE;
    CHECK_MSG(dysan_auth_verify(&a, &g) == DYSAN_ERR_AUTH_FAILED, "msg id is covered by the tag");
    const uint8_t other_mode = DYSAN_MODE_IDLE;
    g = f;
    g.payload = &other_mode;
    CHECK_MSG(dysan_auth_verify(&a, &g) == DYSAN_ERR_AUTH_FAILED, "payload is covered by the tag");
    uint8_t wrong_key[32];
    memcpy(wrong_key, KEY, 32);
    wrong_key[31] ^= 0x80u;
    g = signed_frame(DYSAN_MSG_SET_MODE, &mode, 1, 12, wrong_key, DEV);
    CHECK_MSG(dysan_auth_verify(&a, &g) == DYSAN_ERR_AUTH_FAILED, "wrong key");
    uint8_t other_dev[8];
    memcpy(other_dev, DEV, 8);
    other_dev[0] ^= 1u;
    g = signed_frame(DYSAN_MSG_SET_MODE, &mode, 1, 12, KEY, other_dev);
    CHECK_MSG(dysan_auth_verify(&a, &g) == DYSAN_ERR_AUTH_FAILED, "tag for another device");
    g = f;
    g.flags = 0;
    g.tag = NULL;
    CHECK_MSG(dysan_auth_verify(&a, &g) == DYSAN_ERR_AUTH_REQUIRED, "unsigned");
    CHECK_MSG(a.failures == DYSAN_AUTH_TAG_SIZE + 6u, "failures counted (%u)", a.failures);

    /* Persist failure: refused, nothing changes, the same command succeeds once storage works. */
    f = signed_frame(DYSAN_MSG_SET_MODE, &mode, 1, 12, KEY, DEV);
    persist_fail = 1;
    CHECK_MSG(dysan_auth_commit(&a, 12) == DYSAN_ERR_STORAGE && a.last_counter == 11u, "storage failure refuses");
    persist_fail = 0;
    CHECK_MSG(dysan_auth_verify(&a, &f) == DYSAN_OK && dysan_auth_commit(&a, 12) == DYSAN_OK, "retry after storage");
    dysan_auth_t no_hook;
    dysan_auth_init(&no_hook, DEV, KEY, 0, NULL, NULL);
    CHECK_MSG(dysan_auth_commit(&no_hook, 1) == DYSAN_ERR_STORAGE, "no persist hook: fail closed");

    dysan_auth_t blank;
    dysan_auth_init(&blank, NULL, NULL, 0, ram_persist, NULL);
    CHECK_MSG(dysan_auth_verify(&blank, &f) == DYSAN_ERR_NOT_PROVISIONED, "unprovisioned device refuses");
    dysan_auth_clear(&a);
    CHECK_MSG(!a.provisioned && dysan_auth_verify(&a, &f) == DYSAN_ERR_NOT_PROVISIONED, "cleared key");

    /* The largest counter works once; nothing can follow it. */
    dysan_auth_t top;
    dysan_auth_init(&top, DEV, KEY, 0xfffffffeu, ram_persist, NULL);
    f = signed_frame(DYSAN_MSG_SET_MODE, &mode, 1, 0xffffffffu, KEY, DEV);
    CHECK_MSG(dysan_auth_verify(&top, &f) == DYSAN_OK && dysan_auth_commit(&top, 0xffffffffu) == DYSAN_OK,
              "max counter");
    CHECK_MSG(dysan_auth_verify(&top, &f) == DYSAN_ERR_REPLAY, "after the max counter");
}

/* ---------------------------------------------------------------------------------------- counter log */
static uint8_t flash[256];
static int flash_fail_write;

static int flash_write(void *ctx, size_t off, const uint8_t *d, size_t n)
{
    (void)ctx;
    if (off > sizeof flash || n > sizeof flash - off || flash_fail_write) {
        return -1;
    }
    for (size_t i = 0; i < n; ++i) {
        flash[off + i] &= d[i];
    }
    return 0;
}

static unsigned flash_erases;

static int flash_erase(void *ctx)
{
    (void)ctx;
    flash_erases++;
    memset(flash, 0xff, sizeof flash);
    return 0;
}

static const dysan_counter_ops_t FLASH_OPS = {flash_write, flash_erase, NULL, NULL};

static uint32_t reopen(void)
{
    dysan_counter_log_t log;
    CHECK_MSG(dysan_counter_log_open(&log, flash, sizeof flash, &FLASH_OPS) == DYSAN_OK, "reopen");
    return log.value;
}

static void test_counter_log(void)
{
    memset(flash, 0xff, sizeof flash);
    dysan_counter_log_t log;
    CHECK_MSG(dysan_counter_log_open(&log, flash, 8, &FLASH_OPS) == DYSAN_ERR_STORAGE, "too small");
    CHECK_MSG(dysan_counter_log_open(&log, flash, sizeof flash, &FLASH_OPS) == DYSAN_OK && log.value == 0u, "blank");
    /* Three compactions' worth of stores, each surviving a "reboot". */
    for (uint32_t c = 1; c <= 3u * (sizeof flash / DYSAN_COUNTER_RECORD_SIZE) + 5u; ++c) {
        CHECK_MSG(dysan_counter_log_store(&log, c * 3u) == DYSAN_OK, "store %u", c * 3u);
        CHECK_MSG(reopen() == c * 3u, "value after reboot at %u", c * 3u);
    }
    CHECK_MSG(flash_erases == 3u, "compactions: %u", flash_erases);
    CHECK_MSG(dysan_counter_log_store(&log, log.value) == DYSAN_ERR_REPLAY, "equal refused");
    CHECK_MSG(dysan_counter_log_store(&log, 1) == DYSAN_ERR_REPLAY, "lower refused");
    /* A torn record (power cut mid-write) is skipped; the previous value stands and the log goes on. */
    const uint32_t before = log.value;
    const size_t at = log.next;
    flash[at] = 0x00; /* half-programmed counter, check word still erased */
    CHECK_MSG(reopen() == before, "torn record ignored");
    dysan_counter_log_open(&log, flash, sizeof flash, &FLASH_OPS);
    CHECK_MSG(log.next == at + DYSAN_COUNTER_RECORD_SIZE, "torn slot not reused");
    CHECK_MSG(dysan_counter_log_store(&log, before + 1u) == DYSAN_OK && reopen() == before + 1u, "after torn");
    /* A failed write: refused, and the slot is not reused. */
    flash_fail_write = 1;
    CHECK_MSG(dysan_counter_log_store(&log, before + 2u) == DYSAN_ERR_STORAGE, "write failure");
    flash_fail_write = 0;
    CHECK_MSG(reopen() == before + 1u, "value unchanged by a failed write");
    CHECK_MSG(dysan_counter_log_store(&log, before + 2u) == DYSAN_OK && reopen() == before + 2u, "after failure");
    /* Through the auth persist hook. */
    dysan_auth_t a;
    dysan_auth_init(&a, DEV, KEY, log.value, dysan_counter_log_persist, &log);
    CHECK_MSG(dysan_auth_commit(&a, before + 10u) == DYSAN_OK && reopen() == before + 10u, "auth -> log");
}

static int restored;
static int restore_hook(void *ctx)
{
    (void)ctx;
    restored++;
    /* Called after the compaction rewrote the counter: the log's first slot already holds it. */
    const uint8_t *state = dysan_port_region(DYSAN_REGION_STATE, NULL);
    CHECK_MSG(state[256] != 0xffu || state[257] != 0xffu || state[260] != 0xffu, "restore runs after the rewrite");
    return 0;
}

static void test_counter_port(void)
{
    dysan_counter_log_t log;
    dysan_counter_region_t where;
    CHECK_MSG(dysan_counter_log_open_region(&log, &where, DYSAN_REGION_STATE, 500, 64, NULL, NULL) ==
                  DYSAN_ERR_STORAGE,
              "window past the region");
    CHECK_MSG(dysan_counter_log_open_region(&log, &where, DYSAN_REGION_STATE, 256, 128, restore_hook, NULL) ==
                  DYSAN_OK,
              "open in STATE");
    for (uint32_t c = 1; c <= 40u; ++c) {
        CHECK_MSG(dysan_counter_log_store(&log, c) == DYSAN_OK, "port store %u", c);
    }
    CHECK_MSG(proto_fake_erases == 2u && restored == 2, "compactions erase the region, then restore (%u, %d)",
              proto_fake_erases, restored);
    size_t size = 0;
    const uint8_t *state = dysan_port_region(DYSAN_REGION_STATE, &size);
    dysan_counter_log_t again;
    CHECK_MSG(dysan_counter_log_open(&again, state + 256, 128, &log.ops) == DYSAN_OK && again.value == 40u,
              "reopened from the region: %u", again.value);
    proto_fake_torn_write = 3;
    CHECK_MSG(dysan_counter_log_store(&log, 41) == DYSAN_ERR_STORAGE, "torn port write refused");
    proto_fake_fail_erase = 1;
    for (uint32_t c = 42; c < 60u; ++c) {
        (void)dysan_counter_log_store(&log, c);
    }
    dysan_counter_log_open(&again, state + 256, 128, &log.ops);
    CHECK_MSG(again.value >= 42u, "log continues after an erase failure (%u)", again.value);
}

/* ---------------------------------------------------------------------------------------- accept */
static void test_accept(void)
{
    dysan_auth_t a;
    dysan_auth_init(&a, DEV, KEY, 100, ram_persist, NULL);
    static dysan_msg_t m;
    int authd = 7;
    const uint8_t ack[4] = {5, 0, 0, 0};
    dysan_frame_t f = {DYSAN_MSG_ACK, 0, 1, 4, ack, 0, NULL};
    CHECK_MSG(dysan_proto_accept(&f, DYSAN_DIR_H2D, &a, &m, &authd) == DYSAN_OK && !authd && m.body.ack.seq == 5u,
              "unsigned ACK");
    CHECK_MSG(dysan_proto_accept(&f, DYSAN_DIR_D2H, &a, &m, &authd) == DYSAN_ERR_WRONG_DIRECTION, "ACK at the host");
    f.msg_id = 0x7f;
    CHECK_MSG(dysan_proto_accept(&f, DYSAN_DIR_H2D, &a, &m, &authd) == DYSAN_ERR_UNKNOWN_MSG, "unknown id");
    f.msg_id = DYSAN_MSG_ACK;
    f.len = 3;
    CHECK_MSG(dysan_proto_accept(&f, DYSAN_DIR_H2D, &a, &m, &authd) == DYSAN_ERR_BAD_LENGTH, "short ACK");

    const uint8_t mode = DYSAN_MODE_IDLE;
    dysan_frame_t u = {DYSAN_MSG_SET_MODE, 0, 2, 1, &mode, 0, NULL};
    CHECK_MSG(dysan_proto_accept(&u, DYSAN_DIR_H2D, &a, &m, &authd) == DYSAN_ERR_AUTH_REQUIRED, "unsigned SET_MODE");
    CHECK_MSG(dysan_proto_accept(&u, DYSAN_DIR_H2D, NULL, &m, &authd) == DYSAN_ERR_AUTH_REQUIRED, "no auth ctx");

    persist_calls = 0;
    dysan_frame_t s = signed_frame(DYSAN_MSG_SET_MODE, &mode, 1, 101, KEY, DEV);
    CHECK_MSG(dysan_proto_accept(&s, DYSAN_DIR_H2D, &a, &m, &authd) == DYSAN_OK && authd && persisted == 101u &&
                  persist_calls == 1,
              "signed SET_MODE accepted and persisted");
    CHECK_MSG(dysan_proto_accept(&s, DYSAN_DIR_H2D, &a, &m, &authd) == DYSAN_ERR_REPLAY && !authd, "replayed");

    /* A correctly signed but malformed command is refused and does not consume its counter. */
    const uint8_t bad_mode = 9;
    s = signed_frame(DYSAN_MSG_SET_MODE, &bad_mode, 1, 102, KEY, DEV);
    CHECK_MSG(dysan_proto_accept(&s, DYSAN_DIR_H2D, &a, &m, &authd) == DYSAN_ERR_BAD_FIELD && a.last_counter == 101u,
              "signed bad field");
    /* A forged command never reaches the payload parser: the auth error wins. */
    s.tag = ack;
    s.len = 1;
    dysan_frame_t forged = s;
    uint8_t zeros[DYSAN_AUTH_TAG_SIZE] = {0};
    forged.tag = zeros;
    CHECK_MSG(dysan_proto_accept(&forged, DYSAN_DIR_H2D, &a, &m, &authd) == DYSAN_ERR_AUTH_FAILED,
              "forged + bad field");

    /* Optional auth: a signed HELLO is authenticated, an unsigned one is fine too. */
    const uint8_t hello[6] = {1, 0, 0x78, 0x56, 0x34, 0x12}; /* proto_version 1, nonce 0x12345678 */
    s = signed_frame(DYSAN_MSG_HELLO, hello, sizeof hello, 150, KEY, DEV);
    CHECK_MSG(dysan_proto_accept(&s, DYSAN_DIR_H2D, &a, &m, &authd) == DYSAN_OK && authd && a.last_counter == 150u,
              "signed HELLO");
    s.counter = 151; /* tag no longer matches */
    CHECK_MSG(dysan_proto_accept(&s, DYSAN_DIR_H2D, &a, &m, &authd) == DYSAN_ERR_AUTH_FAILED,
              "bad optional tag refused");
    dysan_frame_t h = {DYSAN_MSG_HELLO, 0, 3, sizeof hello, hello, 0, NULL};
    CHECK_MSG(dysan_proto_accept(&h, DYSAN_DIR_H2D, &a, &m, &authd) == DYSAN_OK && !authd, "unsigned HELLO");
    s = signed_frame(DYSAN_MSG_HELLO, hello, sizeof hello, 160, KEY, DEV);
    CHECK_MSG(dysan_proto_accept(&s, DYSAN_DIR_H2D, NULL, &m, &authd) == DYSAN_ERR_NOT_PROVISIONED,
              "no auth ctx, signed");

    /* Storage failure: refused, counter unchanged. */
    persist_fail = 1;
    s = signed_frame(DYSAN_MSG_SET_MODE, &mode, 1, 200, KEY, DEV);
    CHECK_MSG(dysan_proto_accept(&s, DYSAN_DIR_H2D, &a, &m, &authd) == DYSAN_ERR_STORAGE && !authd &&
                  a.last_counter == 150u,
              "storage failure");
    persist_fail = 0;

    /* ERROR helper truncates. */
    char longtext[200];
    memset(longtext, 'x', sizeof longtext - 1u);
    longtext[sizeof longtext - 1u] = '\0';
    dysan_proto_error(&m, DYSAN_ERR_REPLAY, 0x11, 9, longtext);
    CHECK_MSG(m.id == DYSAN_MSG_ERROR && m.body.error.text_len == DYSAN_TEXT_MAX && m.body.error.code == 7u, "error");
    dysan_proto_error(&m, DYSAN_ERR_BUSY, 0, 0, NULL);
    CHECK_MSG(m.body.error.text_len == 0u, "error without text");
}

/* Encode a message with dysan_proto_encode_signed and accept it back. */
static void test_encode_accept(void)
{
    static dysan_msg_t m;
    static dysan_msg_t back;
    static uint8_t scratch[DYSAN_MSG_MAX_PAYLOAD];
    static uint8_t out[DYSAN_FRAME_MAX_ENCODED + 1];
    memset(&m, 0, sizeof m);
    m.id = DYSAN_MSG_CONFIGURE;
    m.body.configure.segment_len = 5;
    m.body.configure.candidates = 4;
    m.body.configure.weight_x = 6554;
    m.body.configure.weight_y = 26214;
    m.body.configure.stream_enable = 1;
    size_t n = 0;
    CHECK_MSG(dysan_proto_encode_signed(&m, 13, KEY, DEV, 500, scratch, sizeof scratch, out, sizeof out, &n) ==
                  DYSAN_OK,
              "encode signed");
    dysan_frame_decoder_t dec;
    dysan_frame_decoder_init(&dec);
    dysan_frame_t f;
    int got = 0;
    for (size_t i = 0; i < n; ++i) {
        got += dysan_frame_feed(&dec, out[i], &f);
    }
    dysan_auth_t a;
    dysan_auth_init(&a, DEV, KEY, 499, ram_persist, NULL);
    int authd = 0;
    CHECK_MSG(got == 1 && dysan_proto_accept(&f, DYSAN_DIR_H2D, &a, &back, &authd) == DYSAN_OK && authd &&
                  back.body.configure.weight_y == 26214u,
              "signed CONFIGURE round trip");
    CHECK_MSG(dysan_proto_encode(&m, 13, scratch, 3, out, sizeof out, &n) == DYSAN_ERR_BAD_LENGTH, "scratch too small");
    CHECK_MSG(dysan_proto_encode_signed(&m, 13, NULL, DEV, 1, scratch, sizeof scratch, out, sizeof out, &n) ==
                  DYSAN_ERR_NOT_PROVISIONED,
              "no key");
}

int main(void)
{
    test_verify();
    test_counter_log();
    test_counter_port();
    test_accept();
    test_encode_accept();
    printf("proto_auth_test: %s (%d failures)\n", s_failures ? "FAILED" : "ok", s_failures);
    return s_failures ? 1 : 0;
}
