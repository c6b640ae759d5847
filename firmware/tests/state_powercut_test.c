/*
 * state_powercut_test.c -- power cuts at every flash operation of the STATE region (dysan_state.h).
 *
 * A fake NOR flash (the STATE region: two 4 KB pages; writes only clear bits; erase sets a page to 0xFF)
 * counts every write and erase. A long run of signed commands -- each verified and committed through
 * dysan_auth exactly as the application does (tag, counter above the last one, persisted before acting),
 * most of them followed by a settings save -- is replayed from a blank region once per flash operation N,
 * and the power is cut at operation N, in three ways: the operation does not happen, it happens for the
 * first half of its bytes, or a random subset of its bits change (a torn write / a partial erase). Then:
 *
 *   reboot (dysan_state_open + dysan_auth_init from what is on flash) and check
 *     - the counter is the last acknowledged one or the one being committed: never lower (no replay of an
 *       acknowledged command), never anything else;
 *     - the settings are the last acknowledged ones, or the ones being saved when the power went;
 *     - the last acknowledged command, re-sent byte for byte, is refused as a replay;
 *   then keep going until two more compactions have happened, with a second cut at a pseudo-random
 *   operation, reboot and check again, and finally check that flash and RAM agree.
 *
 * The run covers both kinds of compaction (a full counter log, a full settings log). Prints one summary
 * line; exits 1 on the first violation (with the cut that caused it). Built and run by
 * tests/test_state_powercut.py.
 */
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dysan_auth.h"
#include "dysan_frame.h"
#include "dysan_msg.h"
#include "dysan_port.h"
#include "dysan_state.h"

/* ---- the fake flash --------------------------------------------------------------------------------------- */

static uint8_t g_flash[DYSAN_STATE_BYTES];
static long g_ops;          /* flash operations performed since the last reset */
static long g_cut_at = -1;  /* the operation at which the power goes (-1: never) */
static int g_torn;          /* 0: the cut operation does nothing; 1: its first half; 2: random bits */
static uint32_t g_rng = 1u; /* xorshift32 for the torn bits */
static jmp_buf g_power;
static long g_stat_writes, g_stat_erases;

static uint32_t rnd(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 17;
    g_rng ^= g_rng << 5;
    return g_rng;
}

const uint8_t *dysan_port_region(dysan_region_t region, size_t *size)
{
    if (region != DYSAN_REGION_STATE) {
        return NULL;
    }
    if (size != NULL) {
        *size = sizeof g_flash;
    }
    return g_flash;
}

int dysan_port_region_erase(dysan_region_t region)
{
    (void)region;
    fprintf(stderr, "FAIL: the STATE module erased the whole region\n");
    exit(1);
}

int dysan_port_region_erase_range(dysan_region_t region, size_t offset, size_t n)
{
    if (region != DYSAN_REGION_STATE || offset % DYSAN_PORT_PAGE != 0 || n % DYSAN_PORT_PAGE != 0 ||
        offset > sizeof g_flash || n > sizeof g_flash - offset) {
        return -1;
    }
    if (g_ops == g_cut_at) {
        for (size_t i = 0; i < n; i++) {
            if (g_torn == 1 && i < n / 2) {
                g_flash[offset + i] = 0xFFu;
            } else if (g_torn == 2) {
                g_flash[offset + i] |= (uint8_t)rnd(); /* a partial erase: some bits back to 1 */
            }
        }
        longjmp(g_power, 1);
    }
    g_ops++;
    g_stat_erases++;
    memset(g_flash + offset, 0xFF, n);
    return 0;
}

int dysan_port_region_write(dysan_region_t region, size_t offset, const uint8_t *data, size_t n)
{
    if (region != DYSAN_REGION_STATE || offset > sizeof g_flash || n > sizeof g_flash - offset) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if ((uint8_t)(g_flash[offset + i] & data[i]) != data[i]) {
            fprintf(stderr, "FAIL: write over programmed flash at %zu (the module must erase first)\n", offset + i);
            exit(1);
        }
    }
    if (g_ops == g_cut_at) {
        for (size_t i = 0; i < n; i++) {
            if (g_torn == 1 && i < n / 2) {
                g_flash[offset + i] = data[i];
            } else if (g_torn == 2) {
                g_flash[offset + i] &= (uint8_t)(data[i] | rnd()); /* some of the 0 bits made it */
            }
        }
        longjmp(g_power, 1);
    }
    g_ops++;
    g_stat_writes++;
    memcpy(g_flash + offset, data, n);
    return 0;
}

/* ---- the commands ------------------------------------------------------------------------------------------- */

static const uint8_t DEV[DYSAN_DEVICE_ID_SIZE] = {0xd1, 0x5a, 0, 0, 0xc0, 0xff, 0xee, 0x01};
static const uint8_t KEY[DYSAN_AUTH_KEY_SIZE] = {0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a,
                                                 0x4b, 0x4c, 0x4d, 0x4e, 0x4f, 0x50, 0x51, 0x52, 0x53, 0x54, 0x55,
                                                 0x56, 0x57, 0x58, 0x59, 0x5a, 0x5b, 0x5c, 0x5d, 0x5e, 0x5f};

#define N_COMMANDS 520
#define PHASE1 350 /* commands [0, PHASE1): few settings saves, so the counter log fills first */

/* Command i: counter i + 1; changes the settings when saves(i). */
static int saves(int i) { return i < PHASE1 ? i % 10 == 0 : i % 4 != 0; }

static void settings_of(int i, dysan_settings_t *s)
{
    dysan_settings_defaults(s);
    s->flags = (uint8_t)(DYSAN_STATE_F_CONFIG | DYSAN_STATE_F_SENSITIVE | ((i & 1) ? DYSAN_STATE_F_STREAM : 0u));
    s->sensitive_value = (uint8_t)(i % 3);
    s->segment_len = (uint8_t)(1 + i % 8);
    s->candidates = (uint8_t)(1 + i % 36);
    s->weight_x = (uint16_t)(i * 37);
    s->weight_y = (uint16_t)(32768 - i);
    s->boot_epoch = (uint16_t)(1 + i / 3); /* a boot's epoch, like any setting, must survive every cut */
    s->bundle_size = (uint32_t)i * 1000u;
    s->bundle_version = (uint32_t)i;
    for (int k = 0; k < 8; k++) {
        s->bundle_hash8[k] = (uint8_t)(i + k);
        s->rf_hash8[k] = (uint8_t)(i * 3 + k);
    }
    s->rf_size = (uint32_t)i * 7u;
    s->rf_version = (uint32_t)(i + 100);
}

/* The signed frame of command i (a SET_SENSITIVE-like payload: the command's index). */
typedef struct {
    dysan_frame_t f;
    uint8_t payload[4];
    uint8_t tag[DYSAN_AUTH_TAG_SIZE];
} cmd_t;

static void make_cmd(int i, cmd_t *c)
{
    memset(c, 0, sizeof *c);
    c->payload[0] = (uint8_t)i;
    c->payload[1] = (uint8_t)(i >> 8);
    c->f.msg_id = 0x12;
    c->f.flags = DYSAN_FRAME_FLAG_AUTH;
    c->f.seq = (uint16_t)i;
    c->f.len = sizeof c->payload;
    c->f.payload = c->payload;
    c->f.counter = (uint32_t)i + 1u;
    dysan_auth_tag(KEY, DEV, c->f.msg_id, c->f.counter, c->payload, sizeof c->payload, c->tag);
    c->f.tag = c->tag;
}

/* ---- the device --------------------------------------------------------------------------------------------- */

static dysan_state_t g_st;
static dysan_auth_t g_auth;

static void boot(void)
{
    if (dysan_state_open(&g_st) != DYSAN_OK) {
        fprintf(stderr, "FAIL: dysan_state_open\n");
        exit(1);
    }
    dysan_auth_init(&g_auth, DEV, KEY, g_st.counter.value, dysan_state_persist_counter, &g_st);
}

/* What the host knows: what was acknowledged, and what was in flight when the power went. */
typedef struct {
    uint32_t acked_counter;
    int acked_cmd; /* index of the last acknowledged command, -1: none */
    dysan_settings_t acked;
    int inflight;          /* index of the command being handled at the cut, -1: none */
    int inflight_committed; /* its counter commit had returned OK */
    dysan_settings_t inflight_settings;
    long cut_at;
    int torn;
} world_t;


#define CHECK(cond, ...)                                                                                         \
    do {                                                                                                         \
        if (!(cond)) {                                                                                           \
            fprintf(stderr, "FAIL (cut at op %ld, torn %d, command %d): ", w->cut_at, w->torn, w->inflight);   \
            fprintf(stderr, __VA_ARGS__);                                                                        \
            fputc('\n', stderr);                                                                                 \
            exit(1);                                                                                             \
        }                                                                                                        \
    } while (0)

/* Handles commands [from, to) like the application; stops early at `stop_after_compactions` compactions
 * since the call (0: no limit). Returns the index after the last command handled. A cut longjmps out. */
static int run(world_t *w, int from, int to, uint32_t stop_after_compactions)
{
    const uint32_t c0 = g_st.compactions;
    for (int i = from; i < to; i++) {
        if (stop_after_compactions && g_st.compactions - c0 >= stop_after_compactions) {
            return i;
        }
        cmd_t c;
        make_cmd(i, &c);
        w->inflight = i;
        w->inflight_committed = 0;
        settings_of(i, &w->inflight_settings);
        CHECK(dysan_auth_verify(&g_auth, &c.f) == DYSAN_OK, "a fresh signed command was refused");
        CHECK(dysan_auth_commit(&g_auth, c.f.counter) == DYSAN_OK, "commit failed without a cut");
        w->inflight_committed = 1;
        if (saves(i)) {
            CHECK(dysan_state_save(&g_st, &w->inflight_settings) == DYSAN_OK, "save failed without a cut");
            w->acked = w->inflight_settings;
        }
        w->acked_counter = c.f.counter;
        w->acked_cmd = i;
        w->inflight = -1;
    }
    return to;
}

static int settings_equal(const dysan_settings_t *a, const dysan_settings_t *b)
{
    dysan_settings_t x = *a; /* compare through the encoding's fields only (no padding) */
    dysan_settings_t y = *b;
    return x.flags == y.flags && x.sensitive_value == y.sensitive_value && x.segment_len == y.segment_len &&
           x.candidates == y.candidates && x.weight_x == y.weight_x && x.weight_y == y.weight_y &&
           x.boot_epoch == y.boot_epoch &&
           x.bundle_size == y.bundle_size && x.bundle_version == y.bundle_version &&
           memcmp(x.bundle_hash8, y.bundle_hash8, 8) == 0 && x.rf_size == y.rf_size &&
           x.rf_version == y.rf_version && memcmp(x.rf_hash8, y.rf_hash8, 8) == 0;
}

/* After a cut: reboot and check the invariants. Returns the next command index the host will send. */
static int reboot_and_check(world_t *w)
{
    boot();
    const uint32_t got = g_st.counter.value;
    const uint32_t want_hi = w->inflight >= 0 ? (uint32_t)w->inflight + 1u : w->acked_counter;
    CHECK(got >= w->acked_counter, "counter went back: %u < acknowledged %u", got, w->acked_counter);
    CHECK(got == w->acked_counter || got == want_hi, "counter %u is neither %u nor %u", got, w->acked_counter,
          want_hi);
    int ok_settings = settings_equal(&g_st.settings, &w->acked);
    if (!ok_settings && w->inflight >= 0 && w->inflight_committed && saves(w->inflight)) {
        ok_settings = settings_equal(&g_st.settings, &w->inflight_settings);
    }
    CHECK(ok_settings, "settings lost (segment_len %u, version %u; acknowledged version %u)",
          g_st.settings.segment_len, g_st.settings.bundle_version, w->acked.bundle_version);
    if (w->acked_cmd >= 0) {
        cmd_t c;
        make_cmd(w->acked_cmd, &c);
        CHECK(dysan_auth_verify(&g_auth, &c.f) == DYSAN_ERR_REPLAY, "acknowledged command %d replayed",
              w->acked_cmd);
    }
    /* The device now holds `got` (and maybe the in-flight settings): that is what is acknowledged from now on. */
    if (got > w->acked_counter) {
        w->acked_counter = got;
        w->acked_cmd = w->inflight;
        if (saves(w->inflight) && settings_equal(&g_st.settings, &w->inflight_settings)) {
            w->acked = w->inflight_settings;
        }
    }
    const int next = w->inflight >= 0 ? w->inflight + 1 : w->acked_cmd + 1;
    w->inflight = -1;
    return next;
}

static void reset_world(world_t *w)
{
    memset(w, 0, sizeof *w);
    w->acked_cmd = -1;
    w->inflight = -1;
    dysan_settings_defaults(&w->acked);
    memset(g_flash, 0xFF, sizeof g_flash);
    g_ops = 0;
    g_cut_at = -1;
}

int main(void)
{
    world_t w0;
    world_t *w = &w0;

    /* The uncut run: how many flash operations, and both kinds of compaction happen. */
    reset_world(w);
    boot();
    run(w, 0, N_COMMANDS, 0);
    const long total_ops = g_ops;
    const uint32_t total_compactions = g_st.compactions;
    const long total_writes = g_stat_writes;
    const long total_erases = g_stat_erases;
    uint32_t counter_compactions = 0; /* compactions started by a full counter log (the rest: settings log) */
    reset_world(w);
    boot();
    for (int i = 0; i < N_COMMANDS; i++) {
        cmd_t c;
        make_cmd(i, &c);
        const uint32_t before = g_st.compactions;
        if (dysan_auth_verify(&g_auth, &c.f) != DYSAN_OK || dysan_auth_commit(&g_auth, c.f.counter) != DYSAN_OK) {
            fprintf(stderr, "FAIL: command %d refused\n", i);
            return 1;
        }
        counter_compactions += g_st.compactions - before;
        if (saves(i)) {
            settings_of(i, &w->acked);
            (void)dysan_state_save(&g_st, &w->acked);
        }
    }
    if (total_compactions < 4u || counter_compactions < 1u || counter_compactions == total_compactions) {
        fprintf(stderr, "FAIL: the run must compact both logs (%u compactions, %u from the counter log)\n",
                total_compactions, counter_compactions);
        return 1;
    }

    long cuts = 0;
    long second_cuts = 0;
    for (long n = 0; n < total_ops; n++) {
        for (int torn = 0; torn < 3; torn++) {
            reset_world(w);
            w->cut_at = n;
            w->torn = torn;
            g_rng = (uint32_t)(n * 3 + torn) * 2654435761u + 1u;
            boot();
            g_cut_at = n;
            g_torn = torn;
            int next = 0;
            if (setjmp(g_power) == 0) {
                run(w, 0, N_COMMANDS, 0);
                fprintf(stderr, "FAIL: operation %ld never happened\n", n);
                return 1;
            }
            cuts++;
            g_cut_at = -1;
            next = reboot_and_check(w);

            /* Keep going through two more compactions, with a second cut somewhere in there. */
            g_ops = 0;
            g_cut_at = 1 + (long)(rnd() % 600u);
            g_torn = (int)(rnd() % 3u);
            w->cut_at = g_cut_at;
            w->torn = g_torn;
            if (setjmp(g_power) == 0) {
                next = run(w, next, next + 600, 2);
            } else {
                second_cuts++;
                g_cut_at = -1;
                next = reboot_and_check(w);
                next = run(w, next, next + 600, 2);
            }
            g_cut_at = -1;
            /* Flash and RAM agree. */
            const uint32_t ram_counter = g_st.counter.value;
            const dysan_settings_t ram_settings = g_st.settings;
            boot();
            w->inflight = -1;
            CHECK(g_st.counter.value == ram_counter && g_st.counter.value == w->acked_counter,
                  "after recovery: flash counter %u, RAM %u, acknowledged %u", g_st.counter.value, ram_counter,
                  w->acked_counter);
            CHECK(settings_equal(&g_st.settings, &ram_settings) && settings_equal(&g_st.settings, &w->acked),
                  "after recovery: flash settings differ from RAM / acknowledged");
        }
    }
    printf("powercut: commands=%d flash_ops=%ld (writes %ld, erases %ld in the uncut run) compactions=%u "
           "(counter log %u, settings log %u) cuts=%ld second_cuts=%ld violations=0\n",
           N_COMMANDS, total_ops, total_writes, total_erases, total_compactions, counter_compactions,
           total_compactions - counter_compactions, cuts, second_cuts);
    return 0;
}
