/*
 * proto_golden_test.c -- replays tests/data/protocol_golden.json through the C protocol stack.
 *
 * Every valid vector must decode to exactly one frame, be accepted (signed ones verified with the test
 * key), and re-encode -- payload, auth tag and COBS bytes -- identical to the frame the Python side wrote.
 * Every reject must be refused for the stated reason (frame counter or ERROR code).
 *
 *   proto_golden_test GOLDEN.json [--corpus DIR]
 *
 * --corpus writes each vector as libFuzzer seeds in fuzz_frame.c's input format.
 * The JSON is written one vector per line (host/dysan/testing/golden.py), so a line scanner reads it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_common.h"
#include "dysan_auth.h"
#include "dysan_frame.h"
#include "dysan_proto.h"
#include "proto_test_common.h"

#define LINE_MAX_BYTES 16384
#define STREAM_MAX 8192

static uint8_t key[DYSAN_AUTH_KEY_SIZE];
static uint8_t dev[DYSAN_DEVICE_ID_SIZE];
static int have_key, have_dev;
static const char *corpus_dir;
static uint32_t persisted;

static int ram_persist(void *ctx, uint32_t counter)
{
    (void)ctx;
    persisted = counter;
    return 0;
}

/* The string value after the last (or first) occurrence of `"name": "` in line; copied into out. */
static int str_field(const char *line, const char *name, int last, char *out, size_t cap)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": \"", name);
    const char *p = strstr(line, pat);
    if (p == NULL) {
        return 0;
    }
    if (last) {
        for (const char *q = p; (q = strstr(q + 1, pat)) != NULL;) {
            p = q;
        }
    }
    p += strlen(pat);
    const char *end = strchr(p, '"');
    if (end == NULL || (size_t)(end - p) >= cap) {
        return 0;
    }
    memcpy(out, p, (size_t)(end - p));
    out[end - p] = '\0';
    return 1;
}

/* The integer after the first `"name": `; returns 0 when absent or null. */
static int int_field(const char *line, const char *name, unsigned long *out)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": ", name);
    const char *p = strstr(line, pat);
    if (p == NULL) {
        return 0;
    }
    p += strlen(pat);
    if (strncmp(p, "null", 4) == 0) {
        return 0;
    }
    char *end = NULL;
    *out = strtoul(p, &end, 10);
    return end != p;
}

static void write_seed(const char *label, int mode, const uint8_t *data, size_t n, const uint8_t *prefix,
                       size_t prefix_len)
{
    if (corpus_dir == NULL) {
        return;
    }
    char path[512];
    snprintf(path, sizeof path, "%s/golden_%s_%d", corpus_dir, label, mode);
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        CHECK_MSG(0, "cannot write %s", path);
        return;
    }
    const uint8_t m = (uint8_t)mode;
    fwrite(&m, 1, 1, f);
    if (prefix_len != 0u) {
        fwrite(prefix, 1, prefix_len, f);
    }
    if (n != 0u) {
        fwrite(data, 1, n, f);
    }
    fclose(f);
}

static uint8_t stream[STREAM_MAX];
static uint8_t again[STREAM_MAX];
static uint8_t scratch[DYSAN_MSG_MAX_PAYLOAD];
static dysan_frame_decoder_t dec;
static dysan_msg_t msg;

/* Feeds a whole stream; returns the frame count (the last one in *out). */
static int feed_all(const uint8_t *data, size_t n, dysan_frame_t *out, size_t *completed_at)
{
    int frames = 0;
    for (size_t i = 0; i < n; ++i) {
        dysan_frame_t f;
        if (dysan_frame_feed(&dec, data[i], &f)) {
            frames++;
            *out = f;
            if (completed_at != NULL) {
                *completed_at = i;
            }
        }
    }
    return frames;
}

static int vectors, rejects;

static void check_vector(const char *line)
{
    char label[64], name[64], hex[LINE_MAX_BYTES];
    unsigned long id = 0, seq = 0, counter = 0;
    uint8_t payload[DYSAN_MSG_MAX_PAYLOAD];
    if (!str_field(line, "label", 0, label, sizeof label) || !str_field(line, "name", 0, name, sizeof name) ||
        !int_field(line, "id", &id) || !int_field(line, "seq", &seq)) {
        CHECK_MSG(0, "malformed vector line: %.60s", line);
        return;
    }
    const int is_signed = int_field(line, "counter", &counter);
    if (!str_field(line, "payload", 1, hex, sizeof hex)) {
        CHECK_MSG(0, "%s: no payload", label);
        return;
    }
    const size_t plen = unhex(hex, payload, sizeof payload);
    if (!str_field(line, "frame", 1, hex, sizeof hex)) {
        CHECK_MSG(0, "%s: no frame", label);
        return;
    }
    const size_t n = unhex(hex, stream, sizeof stream);
    if (n == (size_t)-1 || plen == (size_t)-1) {
        CHECK_MSG(0, "%s: bad hex", label);
        return;
    }
    vectors++;

    dysan_frame_decoder_init(&dec);
    dysan_frame_t f;
    size_t at = 0;
    const int got = feed_all(stream, n, &f, &at);
    CHECK_MSG(got == 1 && at == n - 1u, "%s: %d frames (completed at %zu of %zu)", label, got, at, n);
    if (got != 1) {
        return;
    }
    CHECK_MSG(f.msg_id == id && f.seq == seq && f.len == plen && memcmp(f.payload, payload, plen) == 0,
              "%s: header / payload", label);
    CHECK_MSG(((f.flags & DYSAN_FRAME_FLAG_AUTH) != 0u) == is_signed && (!is_signed || f.counter == counter),
              "%s: auth trailer", label);

    const dysan_msg_desc_t *d = dysan_msg_desc(f.msg_id);
    CHECK_MSG(d != NULL && strcmp(d->name, name) == 0, "%s: name %s", label, name);
    if (d == NULL) {
        return;
    }
    dysan_auth_t auth;
    dysan_auth_init(&auth, dev, key, is_signed ? (uint32_t)(counter - 1u) : 0u, ram_persist, NULL);
    const uint8_t receiver = d->dir == DYSAN_DIR_D2H ? DYSAN_DIR_D2H : DYSAN_DIR_H2D;
    int authd = 0;
    const int rc = dysan_proto_accept(&f, receiver, &auth, &msg, &authd);
    CHECK_MSG(rc == DYSAN_OK && authd == is_signed, "%s: accept rc=%d authenticated=%d", label, rc, authd);
    if (rc != DYSAN_OK) {
        return;
    }
    CHECK_MSG(!is_signed || persisted == counter, "%s: counter persisted", label);

    size_t m = 0;
    const int erc = is_signed ? dysan_proto_encode_signed(&msg, f.seq, key, dev, (uint32_t)counter, scratch,
                                                          sizeof scratch, again, sizeof again, &m)
                              : dysan_proto_encode(&msg, f.seq, scratch, sizeof scratch, again, sizeof again, &m);
    CHECK_MSG(erc == DYSAN_OK && m == n && memcmp(again, stream, n) == 0, "%s: re-encoding differs (rc=%d, %zu vs %zu)",
              label, erc, m, n);

    /* Seeds: the wire bytes (mode 0), the decoded frame without CRC (mode 1), the payload (mode 2). */
    write_seed(label, 0, stream, n, NULL, 0);
    const uint8_t *raw = f.payload - DYSAN_FRAME_HEADER_SIZE;
    const size_t raw_len = DYSAN_FRAME_HEADER_SIZE + f.len + (is_signed ? (size_t)DYSAN_AUTH_TRAILER_SIZE : 0u);
    write_seed(label, 1, raw, raw_len, NULL, 0);
    const uint8_t idb = f.msg_id;
    write_seed(label, 2, payload, plen, &idb, 1);
}

static const struct {
    const char *name;
    size_t offset;
} FRAME_COUNTERS[] = {
    {"crc", offsetof(dysan_frame_stats_t, crc_errors)},
    {"cobs", offsetof(dysan_frame_stats_t, cobs_errors)},
    {"length", offsetof(dysan_frame_stats_t, length_errors)},
    {"header", offsetof(dysan_frame_stats_t, header_errors)},
};

static uint32_t counter_at(const dysan_frame_stats_t *s, size_t offset)
{
    uint32_t v;
    memcpy(&v, (const uint8_t *)s + offset, sizeof v);
    return v;
}

static void check_reject(const char *line)
{
    char label[64], at[16], expect[32], hex[LINE_MAX_BYTES];
    unsigned long last = 0, code = 0;
    if (!str_field(line, "label", 0, label, sizeof label) || !str_field(line, "at", 0, at, sizeof at) ||
        !str_field(line, "expect", 0, expect, sizeof expect) || !int_field(line, "last_counter", &last) ||
        !int_field(line, "code", &code) || !str_field(line, "stream", 1, hex, sizeof hex)) {
        CHECK_MSG(0, "malformed reject line: %.60s", line);
        return;
    }
    const size_t n = unhex(hex, stream, sizeof stream);
    if (n == (size_t)-1) {
        CHECK_MSG(0, "%s: bad hex", label);
        return;
    }
    rejects++;
    write_seed(label, 0, stream, n, NULL, 0);
    dysan_frame_decoder_init(&dec);
    dysan_frame_t f;
    const int got = feed_all(stream, n, &f, NULL);
    if (code == 0u) {
        int found = 0;
        for (size_t i = 0; i < sizeof FRAME_COUNTERS / sizeof FRAME_COUNTERS[0]; ++i) {
            const uint32_t v = counter_at(&dec.stats, FRAME_COUNTERS[i].offset);
            const int want = strcmp(FRAME_COUNTERS[i].name, expect) == 0;
            found |= want;
            CHECK_MSG(v == (uint32_t)want, "%s: %s errors = %u", label, FRAME_COUNTERS[i].name, v);
        }
        CHECK_MSG(found && got == 0 && dec.stats.frames_ok == 0u, "%s: refused by the frame layer (%s)", label, expect);
        return;
    }
    CHECK_MSG(got == 1, "%s: %d frames", label, got);
    if (got != 1) {
        return;
    }
    dysan_auth_t auth;
    dysan_auth_init(&auth, dev, key, (uint32_t)last, ram_persist, NULL);
    int authd = 0;
    const uint8_t receiver = strcmp(at, "host") == 0 ? DYSAN_DIR_D2H : DYSAN_DIR_H2D;
    const int rc = dysan_proto_accept(&f, receiver, &auth, &msg, &authd);
    CHECK_MSG(rc == (int)code && !authd, "%s: rc=%d, expected %lu (%s)", label, rc, code, expect);
    CHECK_MSG(auth.last_counter == (uint32_t)last, "%s: refused frame changed the counter", label);
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    for (int i = 1; i < argc; ++i) {
        if (strcmp(argv[i], "--corpus") == 0 && i + 1 < argc) {
            corpus_dir = argv[++i];
        } else {
            path = argv[i];
        }
    }
    if (path == NULL) {
        fprintf(stderr, "usage: %s GOLDEN.json [--corpus DIR]\n", argv[0]);
        return 2;
    }
    FILE *fp = fopen(path, "r");
    if (fp == NULL) {
        fprintf(stderr, "cannot open %s\n", path);
        return 2;
    }
    static char line[LINE_MAX_BYTES];
    char hex[128];
    int section = 0; /* 1: vectors, 2: rejects */
    while (fgets(line, sizeof line, fp) != NULL) {
        if (strchr(line, '\n') == NULL && !feof(fp)) {
            CHECK_MSG(0, "line longer than %d bytes", LINE_MAX_BYTES);
            break;
        }
        if (str_field(line, "key", 0, hex, sizeof hex)) {
            have_key = unhex(hex, key, sizeof key) == sizeof key;
        } else if (str_field(line, "device_id", 0, hex, sizeof hex) && section == 0) {
            have_dev = unhex(hex, dev, sizeof dev) == sizeof dev;
        } else if (strstr(line, "\"vectors\": [") != NULL) {
            section = 1;
        } else if (strstr(line, "\"rejects\": [") != NULL) {
            section = 2;
        } else if (section == 1 && strstr(line, "\"label\"") != NULL) {
            check_vector(line);
        } else if (section == 2 && strstr(line, "\"label\"") != NULL) {
            check_reject(line);
        }
    }
    fclose(fp);
    CHECK_MSG(have_key && have_dev, "key and device id read");
    CHECK_MSG(vectors > 0 && rejects > 0, "vectors read");
    printf("proto_golden_test: %d vectors, %d rejects: %s (%d failures)\n", vectors, rejects,
           s_failures ? "FAILED" : "ok", s_failures);
    return s_failures ? 1 : 0;
}
