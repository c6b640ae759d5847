/* imu_fifo.c -- see imu_fifo.h. Register values: imu_defs.h (each with the public source it was checked against). */
#include "imu_fifo.h"

#include <string.h>

#include "port_common.h"

#define GYR_ACC_FRAME 12u /* one sample: 6 bytes gyro + 6 bytes accelerometer (order per chip) */
#define BMI270_FRAME 13u  /* header 0x8C + gyro + accelerometer */

enum { CHIP_NONE, CHIP_LSM6DS3, CHIP_LSM9DS1, CHIP_BMI270, CHIP_MPU6050 };

static int chip_of(const dysan_imu_desc_t *imu)
{
    if (imu == &dysan_imu_lsm6ds3trc) {
        return CHIP_LSM6DS3;
    }
    if (imu == &dysan_imu_lsm9ds1) {
        return CHIP_LSM9DS1;
    }
    if (imu == &dysan_imu_bmi270) {
        return CHIP_BMI270;
    }
    if (imu == &dysan_imu_mpu6050) {
        return CHIP_MPU6050;
    }
    return CHIP_NONE;
}

/* ---- the 50 Hz grid ---------------------------------------------------------------------------------- */

uint64_t dysan_imu_grid_keep(uint64_t tick, uint32_t odr_hz)
{
    return (2u * tick * odr_hz + DYSAN_RATE_HZ) / (2u * DYSAN_RATE_HZ);
}

/* keep(t) < n  <=>  2 t odr + R < 2 R n  <=>  t < R (2n - 1) / (2 odr) */
uint64_t dysan_imu_grid_ticks_below(uint64_t n, uint32_t odr_hz)
{
    if (n == 0u || odr_hz == 0u) {
        return 0u;
    }
    return ((uint64_t)DYSAN_RATE_HZ * (2u * n - 1u) + 2u * odr_hz - 1u) / (2u * odr_hz);
}

/* One sensor sample into the grid: 1 (and `sample` filled) when it is the one kept for the next tick.
 * `acc` NULL: a frame without both sensors -- a kept tick on it is a lost sample. */
static int grid_take(dysan_imu_fifo_t *f, const uint8_t *acc, const uint8_t *gyr, int16_t sample[6])
{
    const uint64_t keep = dysan_imu_grid_keep(f->tick, f->odr_hz);
    const uint64_t i = f->index++;
    if (i != keep) {
        return 0;
    }
    f->tick++;
    if (acc == NULL || gyr == NULL) {
        f->lost++;
        return 0;
    }
    dysan_imu_to_counts(f->imu, acc, gyr, sample);
    f->delivered++;
    return 1;
}

/* `n` sensor samples the chip dropped (BMI270 skip frame): every tick that kept one of them is lost. */
static void grid_skip(dysan_imu_fifo_t *f, uint64_t n)
{
    const uint64_t end = f->index + n;
    const uint64_t ticks = dysan_imu_grid_ticks_below(end, f->odr_hz);
    if (ticks > f->tick) {
        f->lost += (uint32_t)(ticks - f->tick);
        f->tick = ticks;
    }
    f->index = end;
}

/* At `now_us` the chip holds `waiting` samples not yet taken into the grid (the staging buffer is empty). */
static void anchor(dysan_imu_fifo_t *f, uint32_t now_us, uint64_t waiting)
{
    f->anchor_us = now_us;
    f->anchor_produced = f->index + waiting;
    f->anchored = 1;
}

/* ---- per-chip register sequences ------------------------------------------------------------------------ */

static int wr(dysan_imu_fifo_t *f, uint8_t reg, uint8_t value)
{
    return f->bus.write(f->bus.ctx, f->imu->i2c_addr, reg, value) == 0 ? 0 : DYSAN_PORT_EIO;
}

static int rd(dysan_imu_fifo_t *f, uint8_t reg, uint8_t *out, size_t n)
{
    if (n == 0u || n > f->bus.max_read) {
        return DYSAN_PORT_EINVAL;
    }
    if (f->bus.read(f->bus.ctx, f->imu->i2c_addr, reg, out, n) != 0) {
        f->bus_errors++;
        return DYSAN_PORT_EIO;
    }
    return 0;
}

/* Empties the chip's FIFO and starts it again (the FIFO configuration itself stays). */
static int chip_restart(dysan_imu_fifo_t *f)
{
    switch (chip_of(f->imu)) {
    case CHIP_LSM6DS3: /* AN5130: bypass empties the FIFO; then gyro + accelerometer, 104 Hz, continuous */
        return wr(f, LSM6DS3_FIFO_CTRL5, LSM6DS3_FIFO_CTRL5_BYPASS) | wr(f, LSM6DS3_FIFO_CTRL3, LSM6DS3_FIFO_CTRL3_VALUE) |
               wr(f, LSM6DS3_FIFO_CTRL5, LSM6DS3_FIFO_CTRL5_VALUE);
    case CHIP_LSM9DS1: /* DS 3.5.2: bypass resets the content; FIFO_EN, then continuous mode */
        return wr(f, LSM9DS1_FIFO_CTRL, LSM9DS1_FIFO_CTRL_BYPASS) | wr(f, LSM9DS1_CTRL_REG9, LSM9DS1_CTRL_REG9_FIFO_EN) |
               wr(f, LSM9DS1_FIFO_CTRL, LSM9DS1_FIFO_CTRL_CONTINUOUS);
    case CHIP_BMI270: /* bmi2_defs.h: CMD fifo_flush */
        return wr(f, BMI270_CMD, BMI270_CMD_FIFO_FLUSH);
    case CHIP_MPU6050: { /* RM-MPU-6000A: FIFO_RESET while FIFO_EN is 0, then enable; INT_STATUS read clears */
        uint8_t st = 0;
        int rc = wr(f, MPU6050_USER_CTRL, 0x00u) | wr(f, MPU6050_USER_CTRL, MPU6050_USER_CTRL_FIFO_RESET) |
                 wr(f, MPU6050_USER_CTRL, MPU6050_USER_CTRL_FIFO_EN);
        return rc | rd(f, MPU6050_INT_STATUS, &st, 1);
    }
    default:
        return DYSAN_PORT_EINVAL;
    }
}

/* Restarts the FIFO and the grid; counts the samples lost since the last clean status read (>= 1). */
static void resync(dysan_imu_fifo_t *f, uint32_t now_us)
{
    uint64_t lost = 0u;
    if (f->anchored) {
        const uint32_t dt = now_us - f->anchor_us; /* wraps correctly for gaps < 71 min */
        const uint64_t produced = f->anchor_produced + (uint64_t)dt * f->odr_hz / 1000000u;
        const uint64_t ticks = dysan_imu_grid_ticks_below(produced, f->odr_hz);
        lost = ticks > f->tick ? ticks - f->tick : 0u;
    }
    f->lost += (uint32_t)(lost > 0u ? lost : 1u);
    f->overruns++;
    f->index = 0u;
    f->tick = 0u;
    f->avail = 0u;
    f->buf_len = f->buf_pos = 0u;
    if (chip_restart(f) != 0) {
        f->bus_errors++;
    }
    anchor(f, now_us, 0u);
}

/* Reads the FIFO status: sets `avail`, resynchronises after an overrun. Returns > 0 when data waits. */
static int chip_level(dysan_imu_fifo_t *f, uint32_t now_us)
{
    uint8_t st[4];
    switch (chip_of(f->imu)) {
    case CHIP_LSM6DS3: { /* FIFO_STATUS1..4: DIFF_FIFO (words), OVER_RUN, FIFO_PATTERN (next word's place) */
        if (rd(f, LSM6DS3_FIFO_STATUS1, st, 4) != 0) {
            return 0;
        }
        const uint32_t words = ((uint32_t)(st[1] & LSM6DS3_FIFO_STATUS2_DIFF_HI) << 8) | st[0];
        const uint32_t pattern = ((uint32_t)(st[3] & LSM6DS3_FIFO_STATUS4_PATTERN_HI) << 8) | st[2];
        if ((st[1] & LSM6DS3_FIFO_STATUS2_OVER_RUN) || pattern != 0u) {
            resync(f, now_us);
            return 0;
        }
        f->avail = words / 6u; /* whole gyro + accelerometer sets */
        break;
    }
    case CHIP_LSM9DS1: /* FIFO_SRC: OVRN, FSS = unread slots */
        if (rd(f, LSM9DS1_FIFO_SRC, st, 1) != 0) {
            return 0;
        }
        if (st[0] & LSM9DS1_FIFO_SRC_OVRN) {
            resync(f, now_us);
            return 0;
        }
        f->avail = st[0] & LSM9DS1_FIFO_SRC_FSS;
        break;
    case CHIP_BMI270: /* FIFO_LENGTH_0/1: bytes (skip frames included) */
        if (rd(f, BMI270_FIFO_LENGTH_0, st, 2) != 0) {
            return 0;
        }
        f->avail = ((uint32_t)(st[1] & BMI270_FIFO_LENGTH_MSB_MASK) << 8) | st[0];
        f->est_waiting = 0u; /* for a saturated skip frame: what the clock says since the last anchor */
        if (f->anchored) {
            const uint64_t est = f->anchor_produced + (uint64_t)(now_us - f->anchor_us) * f->odr_hz / 1000000u;
            f->est_waiting = est > f->index ? est - f->index : 0u;
        }
        anchor(f, now_us, f->avail / BMI270_FRAME);
        return f->avail > 0u;
    case CHIP_MPU6050: { /* INT_STATUS (FIFO_OFLOW, cleared by the read), FIFO_COUNT (bytes, big-endian) */
        if (rd(f, MPU6050_INT_STATUS, st, 1) != 0 || rd(f, MPU6050_FIFO_COUNTH, st + 1, 2) != 0) {
            return 0;
        }
        const uint32_t bytes = ((uint32_t)st[1] << 8) | st[2];
        if ((st[0] & MPU6050_INT_STATUS_FIFO_OFLOW) || bytes >= MPU6050_FIFO_SIZE) {
            resync(f, now_us); /* bytes were overwritten: the frame boundary is lost */
            return 0;
        }
        f->avail = bytes / GYR_ACC_FRAME; /* a frame being written shows as a remainder: left for later */
        break;
    }
    default:
        return 0;
    }
    anchor(f, now_us, f->avail);
    return f->avail > 0u;
}

/* Reads what one burst moves into the staging buffer. 0, or negative on a failed transfer. */
static int chip_burst(dysan_imu_fifo_t *f)
{
    const size_t cap = f->bus.max_read < sizeof f->buf ? f->bus.max_read : sizeof f->buf;
    f->buf_len = f->buf_pos = 0u;
    switch (chip_of(f->imu)) {
    case CHIP_LSM6DS3:   /* FIFO_DATA_OUT rolls back to _L: whole sets (gyro xyz, acc xyz) back to back */
    case CHIP_MPU6050: { /* FIFO_R_W: acc xyz, gyro xyz, big-endian */
        const uint8_t reg = chip_of(f->imu) == CHIP_LSM6DS3 ? LSM6DS3_FIFO_DATA_OUT_L : MPU6050_FIFO_R_W;
        const uint32_t n = f->avail < cap / GYR_ACC_FRAME ? f->avail : (uint32_t)(cap / GYR_ACC_FRAME);
        if (rd(f, reg, f->buf, n * GYR_ACC_FRAME) != 0) {
            return DYSAN_PORT_EIO;
        }
        f->avail -= n;
        f->buf_len = n * GYR_ACC_FRAME;
        return 0;
    }
    case CHIP_LSM9DS1: { /* one slot: gyro from OUT_X_L_G, then accelerometer from OUT_X_L_XL */
        const uint32_t room = (uint32_t)(sizeof f->buf / GYR_ACC_FRAME);
        const uint32_t n = f->avail < room ? f->avail : room;
        for (uint32_t s = 0; s < n; s++) {
            uint8_t *p = f->buf + s * GYR_ACC_FRAME;
            if (rd(f, LSM9DS1_OUT_X_L_G, p, 6) != 0 || rd(f, LSM9DS1_OUT_X_L_XL, p + 6, 6) != 0) {
                return DYSAN_PORT_EIO;
            }
            f->avail--;
            f->buf_len += GYR_ACC_FRAME;
        }
        return 0;
    }
    case CHIP_BMI270: { /* bytes; whole 13-byte frames when more wait, so that control frames alone cut one */
        size_t n = f->avail < cap ? f->avail : cap;
        if (n >= BMI270_FRAME) {
            n -= n % BMI270_FRAME;
        }
        if (rd(f, BMI270_FIFO_DATA, f->buf, n) != 0) {
            return DYSAN_PORT_EIO;
        }
        f->buf_len = n; /* `avail` shrinks as frames are parsed: a partial frame is sent again */
        return 0;
    }
    default:
        return DYSAN_PORT_EINVAL;
    }
}

/* Takes staged frames into the grid: 1 with a sample, 0 when the buffer is used up, -1 after a resync or a
 * counted loss (the call returns no sample then, so that the core sees the loss before the next sample and
 * marks the gap on it; the staged frames after it wait for the next call). */
static int parse_staged(dysan_imu_fifo_t *f, uint32_t now_us, int16_t sample[6])
{
    const int chip = chip_of(f->imu);
    const uint32_t lost_before = f->lost;
    while (f->buf_pos < f->buf_len) {
        const uint8_t *p = f->buf + f->buf_pos;
        const size_t left = f->buf_len - f->buf_pos;
        if (chip != CHIP_BMI270) {
            f->buf_pos += GYR_ACC_FRAME; /* the bursts hold whole frames only */
            if (chip == CHIP_MPU6050) {
                if (grid_take(f, p, p + 6, sample)) {
                    return 1;
                }
            } else if (grid_take(f, p + 6, p, sample)) { /* ST: gyro first */
                return 1;
            }
            continue;
        }
        /* BMI270 header mode (bmi2_defs.h): the low two header bits are interrupt tags. */
        const uint8_t h = p[0];
        size_t len;
        switch (h & 0xFCu) {
        case BMI270_FH_GYR_ACC:
            len = BMI270_FRAME;
            break;
        case BMI270_FH_ACC:
        case BMI270_FH_GYR:
            len = 7u;
            break;
        default:
            switch (h) {
            case BMI270_FH_SKIP:
                len = 2u;
                break;
            case BMI270_FH_SENSORTIME:
                len = 4u;
                break;
            case BMI270_FH_INPUT_CFG:
                len = 5u;
                break;
            case BMI270_FH_OVER_READ: /* read past the last frame: the FIFO is empty */
                f->avail = 0u;
                f->buf_len = f->buf_pos = 0u;
                return 0;
            default: /* not a frame boundary: the stream is lost, start again */
                resync(f, now_us);
                return -1;
            }
        }
        if (left < len) { /* partial frame at the burst's end: the chip sends it again whole */
            if (f->buf_pos == 0u) {
                f->avail = 0u; /* not even one frame fitted: read the length again before the next burst */
            }
            f->buf_len = f->buf_pos = 0u;
            return 0;
        }
        f->buf_pos += len;
        f->avail = f->avail > len ? f->avail - (uint32_t)len : 0u;
        if ((h & 0xFCu) == BMI270_FH_GYR_ACC) {
            if (grid_take(f, p + 7, p + 1, sample)) {
                return 1;
            }
        } else if ((h & 0xFCu) == BMI270_FH_ACC || (h & 0xFCu) == BMI270_FH_GYR) {
            (void)grid_take(f, NULL, NULL, sample); /* one sensor only: a kept tick here is lost */
        } else if (h == BMI270_FH_SKIP) {
            uint64_t n = p[1];
            const uint64_t behind = f->avail / BMI270_FRAME; /* frames still in the FIFO after this one */
            if (n == 0xFFu && f->est_waiting > behind + n) {
                n = f->est_waiting - behind; /* the one-byte count saturated: the clock knows better */
            }
            grid_skip(f, n);
            f->anchor_produced += n; /* the anchor counted the FIFO's frames, not the skipped ones */
        }
        if (f->lost != lost_before) {
            return -1;
        }
    }
    f->buf_len = f->buf_pos = 0u;
    return 0;
}

/* ---- API ------------------------------------------------------------------------------------------------- */

int dysan_imu_fifo_start(dysan_imu_fifo_t *f, const dysan_imu_desc_t *imu, const dysan_imu_bus_t *bus,
                         uint32_t now_us)
{
    if (f == NULL || bus == NULL || bus->read == NULL || bus->write == NULL || bus->max_read < BMI270_FRAME) {
        return DYSAN_PORT_EINVAL;
    }
    memset(f, 0, sizeof *f);
    f->imu = imu;
    f->bus = *bus;
    int rc;
    switch (chip_of(imu)) {
    case CHIP_LSM6DS3:
        f->odr_hz = LSM6DS3_FIFO_ODR_HZ;
        rc = chip_restart(f);
        break;
    case CHIP_LSM9DS1:
        f->odr_hz = LSM9DS1_ODR_HZ;
        rc = chip_restart(f);
        break;
    case CHIP_BMI270:
        f->odr_hz = BMI270_ODR_HZ;
        rc = wr(f, BMI270_FIFO_DOWNS, BMI270_FIFO_DOWNS_VALUE) | wr(f, BMI270_FIFO_CONFIG_0, BMI270_FIFO_CONFIG_0_VALUE) |
             wr(f, BMI270_FIFO_CONFIG_1, BMI270_FIFO_CONFIG_1_VALUE) | chip_restart(f);
        break;
    case CHIP_MPU6050:
        f->odr_hz = MPU6050_ODR_HZ;
        rc = wr(f, MPU6050_FIFO_EN, MPU6050_FIFO_EN_VALUE) | wr(f, MPU6050_INT_ENABLE, MPU6050_INT_ENABLE_VALUE) |
             chip_restart(f);
        break;
    default:
        f->imu = NULL;
        return DYSAN_PORT_EINVAL;
    }
    if (rc != 0) {
        f->imu = NULL;
        return DYSAN_PORT_EIO;
    }
    anchor(f, now_us, 0u);
    f->running = 1;
    return 0;
}

int dysan_imu_fifo_read(dysan_imu_fifo_t *f, uint32_t now_us, int16_t sample[6])
{
    if (f == NULL || !f->running || sample == NULL) {
        return 0;
    }
    /* Bounded: each pass parses a burst or returns; the next call goes on where this one stopped. */
    for (int pass = 0; pass < 32; pass++) {
        const int r = parse_staged(f, now_us, sample);
        if (r != 0) {
            return r > 0;
        }
        if (f->avail == 0u && chip_level(f, now_us) <= 0) {
            return 0;
        }
        if (chip_burst(f) != 0) {
            resync(f, now_us); /* a failed burst may have taken bytes out of the FIFO */
            return 0;
        }
    }
    return 0;
}

uint32_t dysan_imu_fifo_lost(const dysan_imu_fifo_t *f) { return f != NULL ? f->lost : 0u; }
