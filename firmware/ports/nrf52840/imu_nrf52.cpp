/*
 * imu_nrf52.cpp -- register-level drivers of the nRF52840 boards' IMUs (NOT COMPILED IN CI: ../README.md).
 * Register values, I2C addresses and the LSB -> counts factors are in ports/common/imu_defs.h (host-tested).
 *
 *   nano33ble: internal bus Wire1 (the core powers the sensors and the pull-ups in initVariant).
 *     Rev1: LSM9DS1 accelerometer/gyroscope at 0x6B (WHO_AM_I 0x68).
 *     Rev2: BMI270 at 0x68 (CHIP_ID 0x24); it only runs after its 8 KB configuration file is uploaded, taken
 *     from Bosch's BMI270 SensorAPI as shipped in the Arduino_BMI270_BMM150 library (bmi270_config_file).
 *   xiao_ble_sense: LSM6DS3TR-C at 0x6A (WHO_AM_I 0x6A) on Wire1 (P0.07/P0.27), powered from
 *     PIN_LSM6DS3TR_C_POWER (P1.08), which must be driven high 35 ms (turn-on time) before the first access.
 *
 * Sampling (docs/firmware.md, "Sampling and real time"). The XIAO's LSM6DS3TR-C samples into its own 4 KB
 * FIFO at 104 Hz (341 gyro + accelerometer sets, 3.3 s): whatever the core does, no sample is lost until the
 * FIFO is full, and the main loop drains it between pipeline slices (nrf_imu_read); a 50 Hz stream is taken
 * from it by keeping, for each 20 ms tick j, the sensor sample nearest to it (index round(j * 104 / 50)).
 * An overrun (the FIFO filled: the loop stalled for > 3 s) is counted and restarts the FIFO, so the next
 * sample carries a gap mark. The Nano 33 BLE Sense IMUs (LSM9DS1, BMI270) are still read as their latest
 * output on a 50 Hz schedule (dysan_sched_due); a tick the loop polls too late is a lost sample, counted.
 * Either way dysan_port_imu_lost() reports the losses to the core (STATS.samples_missed).
 */
#include <Arduino.h>
#include <Wire.h>
#include <string.h>

#include "arduino_i2c.h"
#include "board_nrf52840.h"
#include "imu_defs.h"
#include "nrf52_internal.h"

#if defined(DYSAN_NRF_CORE_MBED)
#include <Arduino_BMI270_BMM150.h> /* for PlatformIO's LDF: the library that holds bmi270_config_file */
extern "C" const uint8_t bmi270_config_file[];
#define BMI270_CONFIG_LEN 8192u
#endif

static TwoWire &s_bus = Wire1;
static const dysan_imu_desc_t *s_imu;
static uint32_t s_lost; /* samples lost: FIFO overruns (at least one each), unreadable or missed ticks */

#if defined(DYSAN_NRF_CORE_MBED)

static dysan_sched_t s_sched; /* these IMUs are read as their latest output on the 50 Hz schedule */

static int lsm9ds1_begin(void)
{
    const uint8_t a = LSM9DS1_ADDR;
    if (dysan_i2c_write_reg(s_bus, a, LSM9DS1_CTRL_REG8, 0x05u) != 0) { /* SW_RESET, auto-increment */
        return -1;
    }
    delay(10);
    return dysan_i2c_write_reg(s_bus, a, LSM9DS1_CTRL_REG1_G, LSM9DS1_CTRL_REG1_G_VALUE) |
           dysan_i2c_write_reg(s_bus, a, LSM9DS1_CTRL_REG6_XL, LSM9DS1_CTRL_REG6_XL_VALUE) |
           dysan_i2c_write_reg(s_bus, a, LSM9DS1_CTRL_REG8, LSM9DS1_CTRL_REG8_VALUE);
}

static int bmi270_begin(void)
{
    const uint8_t a = BMI270_ADDR;
    if (dysan_i2c_write_reg(s_bus, a, BMI270_CMD, BMI270_CMD_SOFTRESET) != 0) {
        return -1;
    }
    delay(2);
    (void)dysan_i2c_probe(s_bus, a, BMI270_CHIP_ID, BMI270_CHIP_ID_VALUE); /* a dummy read after reset */
    /* Configuration upload: advanced power save off, INIT_CTRL 0, the file in word-addressed bursts. */
    if (dysan_i2c_write_reg(s_bus, a, BMI270_PWR_CONF, 0x00u) != 0) {
        return -1;
    }
    delay(1);
    if (dysan_i2c_write_reg(s_bus, a, BMI270_INIT_CTRL, 0x00u) != 0) {
        return -1;
    }
    const size_t burst = 16u; /* well inside every core's Wire buffer */
    for (size_t off = 0; off < BMI270_CONFIG_LEN; off += burst) {
        const uint8_t addr_words[2] = {(uint8_t)((off / 2u) & 0x0Fu), (uint8_t)((off / 2u) >> 4)};
        if (dysan_i2c_write(s_bus, a, BMI270_INIT_ADDR_0, addr_words, 2) != 0 ||
            dysan_i2c_write(s_bus, a, BMI270_INIT_DATA, bmi270_config_file + off, burst) != 0) {
            return -1;
        }
    }
    if (dysan_i2c_write_reg(s_bus, a, BMI270_INIT_CTRL, 0x01u) != 0) {
        return -1;
    }
    delay(25);
    uint8_t status = 0;
    if (dysan_i2c_read(s_bus, a, BMI270_INTERNAL_STATUS, &status, 1) != 0 || (status & 0x0Fu) != 0x01u) {
        return -1; /* "init ok" not reported: the configuration did not load */
    }
    return dysan_i2c_write_reg(s_bus, a, BMI270_ACC_CONF, BMI270_ACC_CONF_VALUE) |
           dysan_i2c_write_reg(s_bus, a, BMI270_ACC_RANGE, BMI270_ACC_RANGE_VALUE) |
           dysan_i2c_write_reg(s_bus, a, BMI270_GYR_CONF, BMI270_GYR_CONF_VALUE) |
           dysan_i2c_write_reg(s_bus, a, BMI270_GYR_RANGE, BMI270_GYR_RANGE_VALUE) |
           dysan_i2c_write_reg(s_bus, a, BMI270_PWR_CTRL, BMI270_PWR_CTRL_VALUE) |
           dysan_i2c_write_reg(s_bus, a, BMI270_PWR_CONF, 0x02u); /* FIFO self-wake, no adv. power save */
}

const char *nrf_imu_begin(void)
{
    s_bus.begin();
    s_bus.setClock(400000);
    s_imu = NULL;
    dysan_sched_init(&s_sched, 1000000u / DYSAN_RATE_HZ);
    if (dysan_i2c_probe(s_bus, LSM9DS1_ADDR, LSM9DS1_WHO_AM_I, LSM9DS1_WHO_AM_I_VALUE)) {
        if (lsm9ds1_begin() == 0) {
            s_imu = &dysan_imu_lsm9ds1;
        }
    } else if (dysan_i2c_probe(s_bus, BMI270_ADDR, BMI270_CHIP_ID, BMI270_CHIP_ID_VALUE)) {
        if (bmi270_begin() == 0) {
            s_imu = &dysan_imu_bmi270;
        }
    }
    return s_imu != NULL ? s_imu->name : NULL;
}

static int nrf_imu_sample(int16_t sample[6])
{
    uint8_t acc[6];
    uint8_t gyr[6];
    if (s_imu == &dysan_imu_lsm9ds1) {
        if (dysan_i2c_read(s_bus, LSM9DS1_ADDR, LSM9DS1_OUT_X_L_XL, acc, 6) != 0 ||
            dysan_i2c_read(s_bus, LSM9DS1_ADDR, LSM9DS1_OUT_X_L_G, gyr, 6) != 0) {
            return -1;
        }
    } else if (s_imu == &dysan_imu_bmi270) {
        uint8_t raw[12]; /* acc x y z, gyr x y z */
        if (dysan_i2c_read(s_bus, BMI270_ADDR, BMI270_DATA_ACC_X, raw, sizeof raw) != 0) {
            return -1;
        }
        memcpy(acc, raw, 6);
        memcpy(gyr, raw + 6, 6);
    } else {
        return -1;
    }
    dysan_imu_to_counts(s_imu, acc, gyr, sample);
    return 0;
}

int nrf_imu_read(int16_t sample[6], uint32_t now_us)
{
    if (s_imu == NULL || !dysan_sched_due(&s_sched, now_us)) {
        return 0;
    }
    if (nrf_imu_sample(sample) != 0) {
        s_lost++; /* the tick's sample could not be read */
        return 0;
    }
    return 1;
}

uint32_t nrf_imu_lost(void) { return s_lost + s_sched.missed; }

#elif defined(DYSAN_NRF_CORE_ADAFRUIT)

static uint64_t s_fifo_index; /* sensor samples taken out of the FIFO since it (re)started */
static uint64_t s_tick;       /* 50 Hz output samples delivered since then */
static uint32_t s_fifo_sets;  /* whole data sets known to wait in the FIFO */

/* Empties and restarts the FIFO (bypass, then continuous): the 50 Hz grid restarts with it. */
static int lsm6ds3_fifo_restart(void)
{
    const uint8_t a = LSM6DS3_ADDR;
    s_fifo_index = 0u;
    s_tick = 0u;
    s_fifo_sets = 0u;
    return dysan_i2c_write_reg(s_bus, a, LSM6DS3_FIFO_CTRL5, LSM6DS3_FIFO_CTRL5_BYPASS) |
           dysan_i2c_write_reg(s_bus, a, LSM6DS3_FIFO_CTRL3, LSM6DS3_FIFO_CTRL3_VALUE) |
           dysan_i2c_write_reg(s_bus, a, LSM6DS3_FIFO_CTRL5, LSM6DS3_FIFO_CTRL5_VALUE);
}

/* How many whole sets wait; restarts the FIFO after an overrun or a misaligned pattern (-1: I2C error). */
static int lsm6ds3_fifo_level(void)
{
    uint8_t st[4]; /* FIFO_STATUS1..4 */
    if (dysan_i2c_read(s_bus, LSM6DS3_ADDR, LSM6DS3_FIFO_STATUS1, st, sizeof st) != 0) {
        return -1;
    }
    const uint32_t words = ((uint32_t)(st[1] & 0x07u) << 8) | st[0];
    const uint32_t pattern = ((uint32_t)(st[3] & 0x03u) << 8) | st[2];
    if ((st[1] & LSM6DS3_FIFO_STATUS2_OVER_RUN) || pattern != 0u) {
        s_lost++; /* at least one sample was overwritten (or the set boundary lost): restart, gap marked */
        return lsm6ds3_fifo_restart() == 0 ? 0 : -1;
    }
    return (int)(words / 6u);
}

#endif

#if defined(DYSAN_NRF_CORE_ADAFRUIT)

const char *nrf_imu_begin(void)
{
    s_imu = NULL;
#if defined(PIN_LSM6DS3TR_C_POWER)
    pinMode(PIN_LSM6DS3TR_C_POWER, OUTPUT);
    digitalWrite(PIN_LSM6DS3TR_C_POWER, HIGH);
    delay(40);
#endif
    s_bus.begin();
    s_bus.setClock(400000);
    const uint8_t a = LSM6DS3_ADDR;
    if (!dysan_i2c_probe(s_bus, a, LSM6DS3_WHO_AM_I, LSM6DS3TRC_WHO_AM_I_VALUE)) {
        return NULL;
    }
    if (dysan_i2c_write_reg(s_bus, a, LSM6DS3_CTRL3_C, 0x01u) != 0) { /* SW_RESET */
        return NULL;
    }
    delay(10);
    if ((dysan_i2c_write_reg(s_bus, a, LSM6DS3_CTRL1_XL, LSM6DS3_CTRL1_XL_VALUE) |
         dysan_i2c_write_reg(s_bus, a, LSM6DS3_CTRL2_G, LSM6DS3_CTRL2_G_VALUE) |
         dysan_i2c_write_reg(s_bus, a, LSM6DS3_CTRL3_C, LSM6DS3_CTRL3_C_VALUE)) != 0 ||
        lsm6ds3_fifo_restart() != 0) {
        return NULL;
    }
    s_imu = &dysan_imu_lsm6ds3trc;
    return s_imu->name;
}

int nrf_imu_read(int16_t sample[6], uint32_t now_us)
{
    (void)now_us; /* the sensor's own clock paces the FIFO */
    if (s_imu == NULL) {
        return 0;
    }
    for (;;) {
        if (s_fifo_sets == 0u) {
            const int sets = lsm6ds3_fifo_level();
            if (sets <= 0) {
                return 0;
            }
            s_fifo_sets = (uint32_t)sets;
        }
        uint8_t raw[12]; /* one data set: gyro x y z, then acc x y z */
        if (dysan_i2c_read(s_bus, LSM6DS3_ADDR, LSM6DS3_FIFO_DATA_OUT_L, raw, sizeof raw) != 0) {
            s_fifo_sets = 0u;
            return 0;
        }
        s_fifo_sets--;
        /* Keep the sensor sample nearest to the next 20 ms tick: index round(tick * ODR / RATE). */
        const uint64_t keep = (2u * s_tick * LSM6DS3_FIFO_ODR_HZ + DYSAN_RATE_HZ) / (2u * DYSAN_RATE_HZ);
        const uint64_t index = s_fifo_index++;
        if (index == keep) {
            s_tick++;
            dysan_imu_to_counts(s_imu, raw + 6, raw, sample);
            return 1;
        }
    }
}

uint32_t nrf_imu_lost(void) { return s_lost; }

#endif

extern "C" uint32_t dysan_port_imu_lost(void) { return nrf_imu_lost(); }
