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
 * Sampling (docs/firmware.md, "Sampling and real time"). Every IMU samples into its own hardware FIFO
 * (LSM6DS3TR-C 104 Hz, 3.3 s deep; LSM9DS1 119 Hz, 32 slots = 269 ms; BMI270 100 Hz, header-mode frames),
 * which the main loop drains between pipeline slices (nrf_imu_read) through the portable driver
 * ports/common/imu_fifo.c (host-tested against register-level fakes, tests/test_imu_fifo.py): frames are read
 * burst-wise, converted with imu_defs.h's factors and decimated onto the 50 Hz grid of the sensor's clock
 * (the sample nearest each 20 ms tick). Overruns are counted as lost samples (the BMI270's skip frame says how
 * many; for the others the driver restarts the FIFO and estimates them from the clock), and
 * dysan_port_imu_lost() reports them to the core (STATS.samples_missed). This file only powers the sensor,
 * writes its range / rate registers (BMI270: uploads its configuration file first) and starts the FIFO.
 */
#include <Arduino.h>
#include <Wire.h>

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
static dysan_imu_fifo_t s_fifo; /* the FIFO driver (ports/common/imu_fifo.h): samples and losses */

/* Starts the FIFO of the IMU the begin function configured; the IMU's name, or NULL. */
static const char *imu_fifo_start(const dysan_imu_desc_t *imu)
{
    const dysan_imu_bus_t bus = dysan_i2c_bus(s_bus);
    s_imu = dysan_imu_fifo_start(&s_fifo, imu, &bus, (uint32_t)micros()) == 0 ? imu : NULL;
    return s_imu != NULL ? s_imu->name : NULL;
}

int nrf_imu_read(int16_t sample[6], uint32_t now_us)
{
    return s_imu != NULL ? dysan_imu_fifo_read(&s_fifo, now_us, sample) : 0;
}

uint32_t nrf_imu_lost(void) { return dysan_imu_fifo_lost(&s_fifo); }

#if defined(DYSAN_NRF_CORE_MBED)

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
    if (dysan_i2c_probe(s_bus, LSM9DS1_ADDR, LSM9DS1_WHO_AM_I, LSM9DS1_WHO_AM_I_VALUE)) {
        return lsm9ds1_begin() == 0 ? imu_fifo_start(&dysan_imu_lsm9ds1) : NULL;
    }
    if (dysan_i2c_probe(s_bus, BMI270_ADDR, BMI270_CHIP_ID, BMI270_CHIP_ID_VALUE)) {
        return bmi270_begin() == 0 ? imu_fifo_start(&dysan_imu_bmi270) : NULL;
    }
    return NULL;
}

#elif defined(DYSAN_NRF_CORE_ADAFRUIT)

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
         dysan_i2c_write_reg(s_bus, a, LSM6DS3_CTRL3_C, LSM6DS3_CTRL3_C_VALUE)) != 0) {
        return NULL;
    }
    return imu_fifo_start(&dysan_imu_lsm6ds3trc);
}

#endif

extern "C" uint32_t dysan_port_imu_lost(void) { return nrf_imu_lost(); }
