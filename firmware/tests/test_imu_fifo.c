/*
 * test_imu_fifo.c -- host unit test of the IMU FIFO drivers (ports/common/imu_fifo.c), driven by
 * tests/test_imu_fifo.py. Each IMU is a register-level fake on a fake I2C bus: it produces samples at its
 * ODR on a simulated clock into a FIFO that behaves as its datasheet / public drivers describe (imu_defs.h):
 *   LSM6DS3TR-C  341 gyro+acc sets, FIFO_DATA_OUT word by word (FIFO_PATTERN), continuous: oldest
 *                overwritten, OVER_RUN sticky until bypass;
 *   LSM9DS1      32 slots, gyro read from 0x18 then accelerometer from 0x28 pops the slot, continuous:
 *                oldest overwritten, OVRN sticky until bypass;
 *   BMI270       2048-byte header-mode stream: 0x8C frames, dropped oldest frames reported by a skip
 *                frame, a partially read frame sent again whole, 0x80 past the end, optional input-config
 *                (0x48) and accelerometer-only (0x84) frames;
 *   MPU-6050     1024-byte FIFO of 12-byte big-endian frames (written 6 + 6 bytes apart when asked, so the
 *                count can stand mid-frame), overflow overwrites bytes and raises FIFO_OFLOW.
 * Scenarios: steady 20 ms polling, bursty polling (long gaps under the FIFO's depth), overruns, a failed
 * burst, partial frames, bus bursts of 13..64 bytes. Every delivered sample must be a real sensor sample
 * converted by dysan_imu_to_counts (the one conversion), in order, on the 50 Hz grid (sensor sample
 * round(j * ODR / 50) for tick j), and delivered + lost must account for every tick.
 * Prints "ok <n> checks" and exits 0, or the failures.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check_common.h"
#include "imu_fifo.h"
#include "port_common.h"

#define QCAP 4096u

typedef struct {
    const dysan_imu_desc_t *imu;
    uint32_t odr;
    uint64_t t_us;     /* simulated time */
    uint64_t next_k;   /* next sensor sample (sensor clock, counts from power-on) */
    int running;       /* the FIFO collects */
    uint64_t q[QCAP];  /* FIFO content: sensor sample numbers (BMI270: ~0 = accelerometer-only frame) */
    uint32_t qh, qn;
    uint32_t byte_pos; /* LSM6DS3: bytes of the front set already read */
    int flag_over;     /* LSM6DS3 OVER_RUN / LSM9DS1 OVRN / MPU FIFO_OFLOW */
    int mpu_corrupt;   /* MPU: bytes were overwritten, the data no longer starts on a frame */
    uint32_t skipped;  /* BMI270: frames dropped since the last read (the skip frame) */
    int bmi_cfg_frame; /* BMI270: an input-config frame waits at the front */
    uint32_t mpu_split_us; /* MPU: the second half of a frame lands this late */
    uint64_t acc_only_k;   /* BMI270: this sample is written as an accelerometer-only frame */
    uint64_t collected;    /* samples the FIFO took since the test began */
    uint64_t first_k;      /* first sample collected after the last (re)start */
    uint32_t fail_reads;   /* the next reads of the data register fail */
    uint32_t restarts;
} fake_t;

static fake_t F;

static int16_t raw_of(uint64_t k, int ch)
{
    uint32_t x = (uint32_t)(k * 6u + (uint64_t)ch) * 2654435761u;
    x ^= x >> 15;
    x *= 2246822519u;
    x ^= x >> 13;
    return (int16_t)(x & 0xFFFFu);
}

static void put16(uint8_t *p, int16_t v, int big)
{
    const uint16_t u = (uint16_t)v;
    p[big ? 0 : 1] = (uint8_t)(u >> 8);
    p[big ? 1 : 0] = (uint8_t)(u & 0xFFu);
}

/* Raw acc (ch 0..2) and gyro (3..5) bytes of sample k in the chip's byte order. */
static void raw_bytes(uint64_t k, uint8_t acc[6], uint8_t gyr[6])
{
    for (int a = 0; a < 3; a++) {
        put16(acc + 2 * a, raw_of(k, a), F.imu->big_endian);
        put16(gyr + 2 * a, raw_of(k, 3 + a), F.imu->big_endian);
    }
}

static void expected_counts(uint64_t k, int16_t s[6])
{
    uint8_t acc[6], gyr[6];
    raw_bytes(k, acc, gyr);
    dysan_imu_to_counts(F.imu, acc, gyr, s);
}

static uint64_t qat(uint32_t i) { return F.q[(F.qh + i) % QCAP]; }
static void qpop(void)
{
    F.qh = (F.qh + 1u) % QCAP;
    F.qn--;
}
static void qclear(void) { F.qh = F.qn = 0u; F.byte_pos = 0u; }

static uint32_t bmi_bytes(void)
{
    uint32_t n = F.skipped ? 2u : 0u;
    n += F.bmi_cfg_frame ? 5u : 0u;
    for (uint32_t i = 0; i < F.qn; i++) {
        n += qat(i) == UINT64_MAX ? 7u : 13u;
    }
    return n;
}

static void push(uint64_t k)
{
    if (F.imu == &dysan_imu_bmi270 && k == F.acc_only_k) {
        k = UINT64_MAX;
    }
    if (F.imu == &dysan_imu_lsm6ds3trc && F.qn == 341u) {
        qpop(); /* continuous: the oldest set goes */
        F.byte_pos = 0u;
        F.flag_over = 1;
    } else if (F.imu == &dysan_imu_lsm9ds1 && F.qn == 32u) {
        qpop();
        F.flag_over = 1;
    } else if (F.imu == &dysan_imu_mpu6050 && (F.qn + 1u) * 12u > 1024u) {
        qpop(); /* really bytes: the frame boundary is gone */
        F.flag_over = 1;
        F.mpu_corrupt = 1;
    } else if (F.imu == &dysan_imu_bmi270) {
        while (bmi_bytes() + 13u + (F.skipped ? 0u : 2u) > 2048u && F.qn > 0u) {
            qpop(); /* stream mode: the oldest frames go, a skip frame counts them */
            if (F.skipped < 255u) {
                F.skipped++;
            }
        }
    }
    F.q[(F.qh + F.qn) % QCAP] = k;
    F.qn++;
    F.collected++;
}

static uint64_t t_of(uint64_t k) { return k * 1000000u / F.odr; }

static void advance(uint64_t t_us)
{
    while (t_of(F.next_k) <= t_us) {
        const uint64_t k = F.next_k++;
        if (F.running) {
            if (F.first_k == UINT64_MAX) {
                F.first_k = k;
            }
            push(k);
        }
    }
    F.t_us = t_us;
}

/* MPU: frames whose second half has not landed yet (written mpu_split_us after the sample time). */
static uint32_t mpu_count(void)
{
    uint32_t n = F.qn * 12u;
    if (F.qn > 0u && F.mpu_split_us && F.t_us < t_of(qat(F.qn - 1u)) + F.mpu_split_us) {
        n -= 6u;
    }
    return F.mpu_corrupt ? 1024u : n;
}

static void restart(void)
{
    qclear();
    F.flag_over = 0;
    F.mpu_corrupt = 0;
    F.skipped = 0u;
    F.first_k = UINT64_MAX;
    F.restarts++;
}

static int fake_write(void *ctx, uint8_t addr, uint8_t reg, uint8_t v)
{
    (void)ctx;
    if (addr != F.imu->i2c_addr) {
        return -1;
    }
    if (F.imu == &dysan_imu_lsm6ds3trc && reg == LSM6DS3_FIFO_CTRL5) {
        if (v == LSM6DS3_FIFO_CTRL5_BYPASS) {
            F.running = 0;
            restart();
        } else {
            F.running = v == LSM6DS3_FIFO_CTRL5_VALUE;
        }
    } else if (F.imu == &dysan_imu_lsm9ds1 && reg == LSM9DS1_FIFO_CTRL) {
        if (v == LSM9DS1_FIFO_CTRL_BYPASS) {
            F.running = 0;
            restart();
        } else {
            F.running = v == LSM9DS1_FIFO_CTRL_CONTINUOUS;
        }
    } else if (F.imu == &dysan_imu_bmi270) {
        if (reg == BMI270_FIFO_CONFIG_1) {
            F.running = v == BMI270_FIFO_CONFIG_1_VALUE;
        } else if (reg == BMI270_CMD && v == BMI270_CMD_FIFO_FLUSH) {
            restart();
        }
    } else if (F.imu == &dysan_imu_mpu6050 && reg == MPU6050_USER_CTRL) {
        if (v & MPU6050_USER_CTRL_FIFO_RESET) {
            restart();
        }
        F.running = (v & MPU6050_USER_CTRL_FIFO_EN) != 0;
    }
    return 0;
}

static int fake_read(void *ctx, uint8_t addr, uint8_t reg, uint8_t *out, size_t n)
{
    (void)ctx;
    if (addr != F.imu->i2c_addr || n == 0u) {
        return -1;
    }
    memset(out, 0, n);
    uint8_t acc[6], gyr[6];
    if (F.imu == &dysan_imu_lsm6ds3trc) {
        if (reg == LSM6DS3_FIFO_STATUS1 && n == 4u) {
            const uint32_t words = F.qn * 6u - F.byte_pos / 2u;
            const uint32_t pattern = F.byte_pos / 2u;
            out[0] = (uint8_t)(words & 0xFFu);
            out[1] = (uint8_t)(((words >> 8) & 0x07u) | (F.flag_over ? LSM6DS3_FIFO_STATUS2_OVER_RUN : 0u));
            out[2] = (uint8_t)pattern;
            return 0;
        }
        if (reg == LSM6DS3_FIFO_DATA_OUT_L) {
            if (F.fail_reads) {
                F.fail_reads--;
                return -1;
            }
            for (size_t i = 0; i < n && F.qn > 0u; i++) { /* rolls back to _L: one set after another */
                raw_bytes(qat(0), acc, gyr);
                out[i] = F.byte_pos < 6u ? gyr[F.byte_pos] : acc[F.byte_pos - 6u];
                if (++F.byte_pos == 12u) {
                    F.byte_pos = 0u;
                    qpop();
                }
            }
            return 0;
        }
    } else if (F.imu == &dysan_imu_lsm9ds1) {
        if (reg == LSM9DS1_FIFO_SRC && n == 1u) {
            out[0] = (uint8_t)((F.qn & LSM9DS1_FIFO_SRC_FSS) | (F.flag_over ? LSM9DS1_FIFO_SRC_OVRN : 0u));
            return 0;
        }
        if ((reg == LSM9DS1_OUT_X_L_G || reg == LSM9DS1_OUT_X_L_XL) && n == 6u && F.qn > 0u) {
            if (F.fail_reads) {
                F.fail_reads--;
                return -1;
            }
            raw_bytes(qat(0), acc, gyr);
            memcpy(out, reg == LSM9DS1_OUT_X_L_G ? gyr : acc, 6);
            if (reg == LSM9DS1_OUT_X_L_XL) {
                qpop(); /* the slot advances once its accelerometer half was read */
            }
            return 0;
        }
    } else if (F.imu == &dysan_imu_bmi270) {
        if (reg == BMI270_FIFO_LENGTH_0 && n == 2u) {
            const uint32_t len = bmi_bytes();
            out[0] = (uint8_t)(len & 0xFFu);
            out[1] = (uint8_t)(len >> 8);
            return 0;
        }
        if (reg == BMI270_FIFO_DATA) {
            if (F.fail_reads) {
                F.fail_reads--;
                return -1;
            }
            size_t i = 0;
            for (;;) { /* whole frames are taken out; a partial one stays (sent again whole next time) */
                uint8_t fr[13];
                size_t len;
                int kind; /* 0 skip, 1 config, 2 queue */
                if (F.skipped) {
                    fr[0] = BMI270_FH_SKIP;
                    fr[1] = (uint8_t)F.skipped;
                    len = 2u;
                    kind = 0;
                } else if (F.bmi_cfg_frame) {
                    fr[0] = BMI270_FH_INPUT_CFG;
                    memset(fr + 1, 0x11, 4);
                    len = 5u;
                    kind = 1;
                } else if (F.qn > 0u) {
                    const uint64_t k = qat(0);
                    if (k == UINT64_MAX) {
                        raw_bytes(F.acc_only_k, acc, gyr);
                        fr[0] = BMI270_FH_ACC;
                        memcpy(fr + 1, acc, 6);
                        len = 7u;
                    } else {
                        raw_bytes(k, acc, gyr);
                        fr[0] = BMI270_FH_GYR_ACC;
                        memcpy(fr + 1, gyr, 6);
                        memcpy(fr + 7, acc, 6);
                        len = 13u;
                    }
                    kind = 2;
                } else {
                    memset(out + i, BMI270_FH_OVER_READ, n - i);
                    return 0;
                }
                const size_t take = n - i < len ? n - i : len;
                memcpy(out + i, fr, take);
                i += take;
                if (take < len) {
                    return 0;
                }
                if (kind == 0) {
                    F.skipped = 0u;
                } else if (kind == 1) {
                    F.bmi_cfg_frame = 0;
                } else {
                    qpop();
                }
                if (i == n) {
                    return 0;
                }
            }
        }
    } else if (F.imu == &dysan_imu_mpu6050) {
        if (reg == MPU6050_INT_STATUS && n == 1u) {
            out[0] = F.flag_over ? MPU6050_INT_STATUS_FIFO_OFLOW : 0u;
            F.flag_over = 0; /* cleared by the read */
            return 0;
        }
        if (reg == MPU6050_FIFO_COUNTH && n == 2u) {
            const uint32_t c = mpu_count();
            out[0] = (uint8_t)(c >> 8);
            out[1] = (uint8_t)(c & 0xFFu);
            return 0;
        }
        if (reg == MPU6050_FIFO_R_W) {
            if (F.fail_reads) {
                F.fail_reads--;
                return -1;
            }
            if (n % 12u != 0u || n > mpu_count() || F.mpu_corrupt) {
                return -1; /* the driver must only read whole, complete frames of an intact FIFO */
            }
            for (size_t f = 0; f < n / 12u; f++) {
                raw_bytes(qat(0), acc, gyr);
                memcpy(out + 12u * f, acc, 6);
                memcpy(out + 12u * f + 6u, gyr, 6);
                qpop();
            }
            return 0;
        }
    }
    return 0; /* other registers read as 0 */
}

/* ---- the harness ---------------------------------------------------------------------------------------- */

typedef struct {
    uint64_t last_k; /* last sensor sample delivered (UINT64_MAX: none yet) */
    uint64_t epoch_first;
    uint64_t j;           /* ticks since the grid (re)started, as the test tracks them */
    uint32_t seen_lost;   /* driver's lost counter at the last delivered sample */
    uint32_t seen_overruns;
    uint32_t bad;         /* samples that were no sensor sample / out of order / off the grid */
    uint32_t off_grid;
    uint32_t n;
    uint32_t late_gap;
    int rebase;
} track_t;

static dysan_imu_fifo_t D;

static void setup(const dysan_imu_desc_t *imu, uint32_t odr, size_t max_read)
{
    memset(&F, 0, sizeof F);
    F.imu = imu;
    F.odr = odr;
    F.first_k = UINT64_MAX;
    F.acc_only_k = UINT64_MAX - 1u;
    F.next_k = 7u; /* the sensor has been running: its numbering does not start with the FIFO */
    F.t_us = t_of(F.next_k) - 1u;
    const dysan_imu_bus_t bus = {fake_read, fake_write, NULL, max_read};
    CHECK_MSG(dysan_imu_fifo_start(&D, imu, &bus, (uint32_t)F.t_us) == 0, "%s: start", imu->name);
    CHECK_MSG(F.running, "%s: the FIFO runs after start", imu->name);
}

/* Finds the sensor sample a delivered sample came from (the first match after the last one). */
static uint64_t find_k(const int16_t s[6], uint64_t from)
{
    int16_t e[6];
    for (uint64_t k = from; k < F.next_k; k++) {
        expected_counts(k, e);
        if (memcmp(e, s, sizeof e) == 0) {
            return k;
        }
    }
    return UINT64_MAX;
}

/* One turn of the core's acquire(): reads until the driver has nothing (or has just counted a loss, which
 * the core sees before asking again). `drain` runs turns while they make progress, as the main loop does
 * when no slice is pending. */
static void drain_turn(track_t *t);

static void drain(track_t *t)
{
    for (int turn = 0; turn < 64; turn++) {
        const uint32_t lost = D.lost, n = t->n;
        drain_turn(t);
        if (D.lost == lost && t->n == n) {
            break;
        }
    }
}

static void drain_turn(track_t *t)
{
    int16_t s[6];
    for (;;) {
        const uint32_t lost_before = D.lost;
        if (!dysan_imu_fifo_read(&D, (uint32_t)F.t_us, s)) {
            break;
        }
        if (D.lost != lost_before) {
            t->late_gap++; /* a loss counted in the call that delivers the next sample: the gap mark comes late */
        }
        const uint64_t from = t->last_k == UINT64_MAX ? 0u : t->last_k + 1u;
        const uint64_t k = find_k(s, from);
        t->n++;
        if (k == UINT64_MAX) {
            t->bad++;
            continue;
        }
        if (D.overruns != t->seen_overruns) { /* the grid restarted at the FIFO's first sample */
            t->seen_overruns = D.overruns;
            t->epoch_first = F.first_k;
            t->j = 0u;
        }
        if (t->last_k == UINT64_MAX) {
            t->epoch_first = F.first_k;
        }
        /* BMI270 skip frames advance the grid over dropped frames: the tick follows the driver's (and with
         * an estimated count the grid's phase is the estimate's: `rebase` checks the spacing from there) */
        if (D.lost != t->seen_lost && D.overruns == t->seen_overruns) {
            t->j = D.tick - 1u;
            if (t->rebase) {
                t->epoch_first = k - dysan_imu_grid_keep(t->j, F.odr);
            }
        }
        if (k != t->epoch_first + dysan_imu_grid_keep(t->j, F.odr)) {
            t->off_grid++;
        }
        t->j++;
        t->seen_lost = D.lost;
        t->last_k = k;
    }
}

static void track_init(track_t *t)
{
    memset(t, 0, sizeof *t);
    t->last_k = UINT64_MAX;
}

static uint32_t rnd_state = 12345u;
static uint32_t rnd(uint32_t n)
{
    rnd_state = rnd_state * 1103515245u + 12345u;
    return (rnd_state >> 8) % (n ? n : 1u);
}

typedef struct {
    const dysan_imu_desc_t *imu;
    uint32_t odr;
    uint32_t fifo_ms; /* how long the FIFO holds */
} chip_t;

static const chip_t CHIPS[] = {
    {&dysan_imu_lsm6ds3trc, LSM6DS3_FIFO_ODR_HZ, 341u * 1000u / LSM6DS3_FIFO_ODR_HZ},
    {&dysan_imu_lsm9ds1, LSM9DS1_ODR_HZ, LSM9DS1_FIFO_DEPTH * 1000u / LSM9DS1_ODR_HZ},
    {&dysan_imu_bmi270, BMI270_ODR_HZ, (2048u / 13u) * 1000u / BMI270_ODR_HZ},
    {&dysan_imu_mpu6050, MPU6050_ODR_HZ, (MPU6050_FIFO_SIZE / 12u) * 1000u / MPU6050_ODR_HZ},
};

/* Every tick accounted for: delivered + lost = ticks of the samples the FIFOs collected (exact with no
 * resync; a resync's estimate is within `tol`). */
static void check_accounting(const char *what, uint32_t tol)
{
    const uint64_t want = dysan_imu_grid_ticks_below(F.collected, F.odr);
    const uint64_t got = (uint64_t)D.delivered + D.lost;
    const uint64_t diff = want > got ? want - got : got - want;
    CHECK_MSG(diff <= tol, "%s %s: delivered %u + lost %u vs %llu ticks collected (tol %u)", F.imu->name, what,
              (unsigned)D.delivered, (unsigned)D.lost, (unsigned long long)want, (unsigned)tol);
}

static void run_clean(const chip_t *c, const char *what, size_t max_read, int bursty)
{
    setup(c->imu, c->odr, max_read);
    track_t t;
    track_init(&t);
    uint64_t now = F.t_us;
    const uint64_t end = now + 40u * 1000000u;
    while (now < end) {
        now += bursty ? 1000u * (1u + rnd(c->fifo_ms * 7u / 10u)) : 20000u;
        advance(now);
        drain(&t);
    }
    CHECK_MSG(D.lost == 0u && D.overruns == 0u, "%s %s: lost %u overruns %u", c->imu->name, what,
              (unsigned)D.lost, (unsigned)D.overruns);
    CHECK_MSG(t.bad == 0u && t.off_grid == 0u && t.n > 1900u, "%s %s: %u samples, %u not sensor samples, %u off the grid",
              c->imu->name, what, (unsigned)t.n, (unsigned)t.bad, (unsigned)t.off_grid);
    check_accounting(what, 0u);
}

/* `stall_ms`: how long the loop does not read (longer than the FIFO holds). */
static void run_overrun(const chip_t *c, uint32_t stall_ms)
{
    setup(c->imu, c->odr, 32u);
    track_t t;
    track_init(&t);
    /* BMI270: a skip count of 255 may be saturated; past ~2.5 s of overflow the clock's estimate is used */
    const int estimated = c->imu == &dysan_imu_bmi270 && (stall_ms - c->fifo_ms) * c->odr / 1000u >= 255u;
    t.rebase = estimated;
    uint64_t now = F.t_us;
    for (int phase = 0; phase < 3; phase++) {
        if (phase == 1) {
            now += stall_ms * 1000u + 333u; /* the loop stalls: the FIFO overflows */
            advance(now);
            drain(&t);
            continue;
        }
        for (int i = 0; i < 250; i++) {
            now += 20000u;
            advance(now);
            drain(&t);
        }
    }
    CHECK_MSG(D.lost >= 1u && t.late_gap == 0u, "%s overrun: lost %u, %u losses reported with a sample",
              c->imu->name, (unsigned)D.lost, (unsigned)t.late_gap);
    CHECK_MSG(t.bad == 0u && t.off_grid == 0u, "%s overrun: %u not sensor samples, %u off the grid", c->imu->name,
              (unsigned)t.bad, (unsigned)t.off_grid);
    if (c->imu == &dysan_imu_bmi270) {
        /* the skip frame says how many frames went: exact, and no restart */
        CHECK_MSG(D.overruns == 0u, "BMI270 overrun: %u resyncs", (unsigned)D.overruns);
        check_accounting(estimated ? "overrun (saturated skip count)" : "overrun", estimated ? 3u : 0u);
    } else {
        CHECK_MSG(D.overruns == 1u, "%s overrun: %u resyncs", c->imu->name, (unsigned)D.overruns);
        /* estimated from the clock: the stall's ticks, give or take the FIFO restart's few */
        const uint64_t want = (now - t_of(7u)) * DYSAN_RATE_HZ / 1000000u;
        const uint64_t got = (uint64_t)D.delivered + D.lost;
        const uint64_t diff = want > got ? want - got : got - want;
        CHECK_MSG(diff <= 3u, "%s overrun: delivered %u + lost %u vs %llu ticks of time", c->imu->name,
                  (unsigned)D.delivered, (unsigned)D.lost, (unsigned long long)want);
    }
}

static void run_bus_error(const chip_t *c)
{
    setup(c->imu, c->odr, 32u);
    track_t t;
    track_init(&t);
    uint64_t now = F.t_us;
    for (int i = 0; i < 500; i++) {
        now += 20000u;
        advance(now);
        if (i == 200) {
            F.fail_reads = 1u;
        }
        drain(&t);
    }
    CHECK_MSG(D.lost >= 1u && D.overruns == 1u && D.bus_errors >= 1u && t.late_gap == 0u, "%s bus error: lost %u resyncs %u errors %u",
              c->imu->name, (unsigned)D.lost, (unsigned)D.overruns, (unsigned)D.bus_errors);
    CHECK_MSG(t.bad == 0u && t.off_grid == 0u && D.delivered > 480u, "%s bus error: %u delivered, %u bad, %u off grid",
              c->imu->name, (unsigned)D.delivered, (unsigned)t.bad, (unsigned)t.off_grid);
}

static void test_grid(void)
{
    const uint32_t odrs[] = {50u, 100u, 104u, 119u, 952u};
    for (size_t o = 0; o < sizeof odrs / sizeof odrs[0]; o++) {
        uint64_t below = 0u, tick = 0u;
        int ok = 1;
        for (uint64_t n = 0; n < 5000u; n++) {
            while (dysan_imu_grid_keep(tick, odrs[o]) < n) {
                tick++;
                below = tick;
            }
            if (dysan_imu_grid_ticks_below(n, odrs[o]) != below) {
                ok = 0;
            }
            if (tick > 0u && dysan_imu_grid_keep(tick, odrs[o]) <= dysan_imu_grid_keep(tick - 1u, odrs[o])) {
                ok = 0;
            }
        }
        CHECK_MSG(ok, "grid at %u Hz: ticks_below agrees with keep, keep strictly increasing", (unsigned)odrs[o]);
    }
    /* the nearest sample: tick 1 at 104 Hz is 20 ms -> sample 2 (19.2 ms), tick 3 -> 6 (57.7 ms of 60) */
    CHECK(dysan_imu_grid_keep(1u, 104u) == 2u && dysan_imu_grid_keep(3u, 104u) == 6u);
    CHECK(dysan_imu_grid_keep(1u, 100u) == 2u && dysan_imu_grid_keep(7u, 119u) == 17u);
}

static void test_partial_frames(void)
{
    /* BMI270: an input-config frame at the front and bursts that are not multiples of 13 cut frames */
    const size_t bursts[] = {13u, 16u, 20u, 27u, 64u};
    for (size_t b = 0; b < sizeof bursts / sizeof bursts[0]; b++) {
        setup(&dysan_imu_bmi270, BMI270_ODR_HZ, bursts[b]);
        F.bmi_cfg_frame = 1;
        track_t t;
        track_init(&t);
        uint64_t now = F.t_us;
        for (int i = 0; i < 400; i++) {
            now += 1000u * (1u + rnd(900u));
            advance(now);
            drain(&t);
        }
        CHECK_MSG(D.lost == 0u && D.overruns == 0u && t.bad == 0u && t.off_grid == 0u,
                  "BMI270 partial frames (burst %u): lost %u resyncs %u bad %u off grid %u", (unsigned)bursts[b],
                  (unsigned)D.lost, (unsigned)D.overruns, (unsigned)t.bad, (unsigned)t.off_grid);
        check_accounting("partial frames", 0u);
    }
    /* BMI270: an accelerometer-only frame: lost exactly when it falls on a kept tick */
    for (int on_tick = 0; on_tick < 2; on_tick++) {
        setup(&dysan_imu_bmi270, BMI270_ODR_HZ, 32u);
        F.acc_only_k = F.next_k + 100u + (on_tick ? 0u : 1u); /* sample 100 after the start is kept */
        track_t t;
        track_init(&t);
        uint64_t now = F.t_us;
        for (int i = 0; i < 200; i++) {
            now += 20000u;
            advance(now);
            drain(&t);
        }
        CHECK_MSG(D.lost == (uint32_t)on_tick && t.bad == 0u && t.off_grid == 0u && t.late_gap == 0u,
                  "BMI270 acc-only frame (kept tick %d): lost %u bad %u off grid %u", on_tick, (unsigned)D.lost,
                  (unsigned)t.bad, (unsigned)t.off_grid);
        check_accounting("acc-only frame", 0u);
    }
    /* MPU-6050: the count stands mid-frame at many polls; only whole frames may be read */
    setup(&dysan_imu_mpu6050, MPU6050_ODR_HZ, 32u);
    F.mpu_split_us = 3000u;
    track_t t;
    track_init(&t);
    uint64_t now = F.t_us;
    for (int i = 0; i < 3000; i++) {
        now += 1000u + rnd(20000u);
        advance(now);
        drain(&t);
    }
    CHECK_MSG(D.lost == 0u && D.overruns == 0u && D.bus_errors == 0u && t.bad == 0u && t.off_grid == 0u,
              "MPU-6050 half-written frames: lost %u resyncs %u bus errors %u bad %u off grid %u", (unsigned)D.lost,
              (unsigned)D.overruns, (unsigned)D.bus_errors, (unsigned)t.bad, (unsigned)t.off_grid);
}

static void test_start_refusals(void)
{
    const dysan_imu_bus_t small = {fake_read, fake_write, NULL, 8u};
    const dysan_imu_bus_t none = {NULL, fake_write, NULL, 32u};
    const dysan_imu_bus_t ok = {fake_read, fake_write, NULL, 32u};
    static const dysan_imu_desc_t other = {"other", 0x10u, 0u, 0u, 1, 1, 1, 1, 0};
    CHECK(dysan_imu_fifo_start(&D, &dysan_imu_bmi270, &small, 0u) == DYSAN_PORT_EINVAL);
    CHECK(dysan_imu_fifo_start(&D, &dysan_imu_bmi270, &none, 0u) == DYSAN_PORT_EINVAL);
    CHECK(dysan_imu_fifo_start(&D, &other, &ok, 0u) == DYSAN_PORT_EINVAL);
    int16_t s[6];
    CHECK(dysan_imu_fifo_read(&D, 0u, s) == 0 && dysan_imu_fifo_read(NULL, 0u, s) == 0);
    CHECK(dysan_imu_fifo_lost(NULL) == 0u);
}

/* The LSB -> counts factors are derived from the contract's scales in imu_defs.h; pin what they come to. */
static void test_factors(void)
{
    CHECK(DYSAN_ACC_COUNTS_PER_G == 2048 && DYSAN_GYRO_COUNTS_PER_RAD_S == 512);
    CHECK((long long)DYSAN_ST_ACC8G_NUM * 15625 == 7808LL * DYSAN_ST_ACC8G_DEN); /* 0.499712 */
    CHECK(DYSAN_ST_GYR2000_NUM == 625526 && DYSAN_BMI270_GYR2000_NUM == 545415 && DYSAN_MPU6050_GYR2000_NUM == 544883);
    CHECK(DYSAN_4096LSB_G_NUM * 2 == DYSAN_4096LSB_G_DEN);
}

int main(void)
{
    test_grid();
    test_factors();
    test_start_refusals();
    const size_t bursts[] = {13u, 24u, 32u, 64u};
    for (size_t c = 0; c < sizeof CHIPS / sizeof CHIPS[0]; c++) {
        run_clean(&CHIPS[c], "steady 20 ms", 32u, 0);
        for (size_t b = 0; b < sizeof bursts / sizeof bursts[0]; b++) {
            run_clean(&CHIPS[c], "bursty", bursts[b], 1);
        }
        run_overrun(&CHIPS[c], 4u * CHIPS[c].fifo_ms);
        run_overrun(&CHIPS[c], CHIPS[c].fifo_ms + 1000u);
        run_bus_error(&CHIPS[c]);
    }
    test_partial_frames();
    return check_summary("test_imu_fifo");
}
