/*
 * imu_defs.h -- the IMUs of the supported boards: identification, the configuration the ports write, and
 * the integer conversion of their raw LSB to contract counts (dysan_contract.h). Shared by the board ports
 * and unit-tested on the host (firmware/tests/port_test_common.c checks every factor against the datasheet
 * sensitivity in floating point).
 *
 * Every IMU is configured to +-8 g and +-2000 deg/s, which the contract's int16 counts hold without
 * clipping (2048 counts/g: +-16 g; 512 counts/(rad/s): +-64 rad/s = +-3667 deg/s). Output data rates are
 * at least twice the contract's 50 Hz, with the sensor's low-pass filter below 25 Hz where it has one;
 * the ports drain the IMUs' hardware FIFOs onto the 50 Hz grid (imu_fifo.h).
 *
 * counts = round(raw * num / den): e.g. ST +-8 g, 0.244 mg/LSB: raw * 0.244e-3 * 2048 = raw * 0.499712.
 * Sensitivities are the datasheets' typical values (parts vary by about 1-2 %; calibrate if that matters).
 * Axes are the sensor's own: a board whose IMU is rotated relative to the wearer's frame maps them here.
 */
#ifndef DYSAN_IMU_DEFS_H
#define DYSAN_IMU_DEFS_H

#include <stdint.h>

#include "dysan_contract.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const char *name;
    uint8_t i2c_addr;
    uint8_t id_reg;   /* WHO_AM_I / CHIP_ID register */
    uint8_t id_value; /* expected content */
    int32_t acc_num, acc_den;
    int32_t gyr_num, gyr_den;
    uint8_t big_endian; /* output registers are high byte first (MPU-6050) */
} dysan_imu_desc_t;

/* ---- ST LSM9DS1 (Arduino Nano 33 BLE Sense Rev1): accelerometer + gyroscope part at 0x6B ---------- */
#define LSM9DS1_ADDR 0x6Bu
#define LSM9DS1_WHO_AM_I 0x0Fu
#define LSM9DS1_WHO_AM_I_VALUE 0x68u
#define LSM9DS1_CTRL_REG1_G 0x10u  /* ODR_G[7:5] FS_G[4:3] BW_G[1:0] */
#define LSM9DS1_CTRL_REG6_XL 0x20u /* ODR_XL[7:5] FS_XL[4:3] BW_SCAL[2] BW_XL[1:0] */
#define LSM9DS1_CTRL_REG8 0x22u    /* BDU[6] IF_ADD_INC[2] SW_RESET[0] */
#define LSM9DS1_OUT_X_L_G 0x18u    /* 6 bytes, little-endian x, y, z */
#define LSM9DS1_OUT_X_L_XL 0x28u
/* 119 Hz, +-2000 dps, LPF 14 Hz | 119 Hz, +-8 g, anti-alias 50 Hz | BDU, auto-increment */
#define LSM9DS1_CTRL_REG1_G_VALUE 0x78u  /* 011 11 0 00 */
#define LSM9DS1_CTRL_REG6_XL_VALUE 0x7Fu /* 011 11 1 11 */
#define LSM9DS1_CTRL_REG8_VALUE 0x44u

/* ---- Bosch BMI270 (Nano 33 BLE Sense Rev2) at 0x68; needs its 8 KB config file loaded at init ------ */
#define BMI270_ADDR 0x68u
#define BMI270_CHIP_ID 0x00u
#define BMI270_CHIP_ID_VALUE 0x24u
#define BMI270_DATA_ACC_X 0x0Cu /* 6 bytes acc, then 6 bytes gyro, little-endian */
#define BMI270_INTERNAL_STATUS 0x21u /* [3:0] message: 0x1 = init ok */
#define BMI270_ACC_CONF 0x40u
#define BMI270_ACC_RANGE 0x41u
#define BMI270_GYR_CONF 0x42u
#define BMI270_GYR_RANGE 0x43u
#define BMI270_INIT_CTRL 0x59u
#define BMI270_INIT_ADDR_0 0x5Bu
#define BMI270_INIT_ADDR_1 0x5Cu
#define BMI270_INIT_DATA 0x5Eu
#define BMI270_PWR_CONF 0x7Cu
#define BMI270_PWR_CTRL 0x7Du
#define BMI270_CMD 0x7Eu
#define BMI270_CMD_SOFTRESET 0xB6u
/* acc: filter_perf, normal averaging, 100 Hz | +-8 g; gyro: filter+noise perf, normal, 100 Hz | 2000 dps */
#define BMI270_ACC_CONF_VALUE 0xA8u
#define BMI270_ACC_RANGE_VALUE 0x02u
#define BMI270_GYR_CONF_VALUE 0xE8u
#define BMI270_GYR_RANGE_VALUE 0x08u /* gyr_range 2000 dps, ois_range 2000 dps (bit 3): as Arduino_BMI270_BMM150
                                      and ArduPilot set it (ArduPilot: the FIFO gyro is at 250 dps otherwise
                                      in unfiltered mode); bmi2_defs.h: GYR_OIS_RANGE_MASK 0x08 */
#define BMI270_PWR_CTRL_VALUE 0x06u /* gyr_en | acc_en */

/* ---- ST LSM6DS3TR-C (Seeed XIAO nRF52840 Sense) at 0x6A -------------------------------------------- */
#define LSM6DS3_ADDR 0x6Au
#define LSM6DS3_WHO_AM_I 0x0Fu
#define LSM6DS3TRC_WHO_AM_I_VALUE 0x6Au
#define LSM6DS3_CTRL1_XL 0x10u /* ODR_XL[7:4] FS_XL[3:2] LPF1_BW_SEL[1] BW0_XL[0] */
#define LSM6DS3_CTRL2_G 0x11u  /* ODR_G[7:4] FS_G[3:2] FS_125[1] */
#define LSM6DS3_CTRL3_C 0x12u  /* BDU[6] IF_INC[2] SW_RESET[0] */
#define LSM6DS3_OUTX_L_G 0x22u /* 6 bytes gyro, then 6 bytes acc at 0x28, little-endian */
#define LSM6DS3_OUTX_L_XL 0x28u
#define LSM6DS3_CTRL1_XL_VALUE 0x4Cu /* 104 Hz, +-8 g */
#define LSM6DS3_CTRL2_G_VALUE 0x4Cu  /* 104 Hz, 2000 dps */
#define LSM6DS3_CTRL3_C_VALUE 0x44u  /* BDU, auto-increment */
/* FIFO (AN5130): gyro and accelerometer data sets at the FIFO ODR, read 6 words at a time from
 * FIFO_DATA_OUT (the address rolls back to FIFO_DATA_OUT_L in burst reads); pattern Gx Gy Gz XLx XLy XLz. */
#define LSM6DS3_FIFO_CTRL3 0x08u         /* DEC_FIFO_GYRO[5:3] DEC_FIFO_XL[2:0] */
#define LSM6DS3_FIFO_CTRL5 0x0Au         /* ODR_FIFO[6:3] FIFO_MODE[2:0] */
#define LSM6DS3_FIFO_STATUS1 0x3Au       /* DIFF_FIFO[7:0]: unread words; STATUS2: [6] OVER_RUN, [2:0] DIFF[10:8] */
#define LSM6DS3_FIFO_STATUS3 0x3Cu       /* FIFO_PATTERN[7:0]: the next word's place in the pattern */
#define LSM6DS3_FIFO_DATA_OUT_L 0x3Eu
#define LSM6DS3_FIFO_CTRL3_VALUE 0x09u   /* gyro and accelerometer in the FIFO, no decimation */
#define LSM6DS3_FIFO_CTRL5_BYPASS 0x00u  /* FIFO off (empties it) */
#define LSM6DS3_FIFO_CTRL5_VALUE 0x26u   /* FIFO ODR 104 Hz, continuous mode (the oldest is overwritten) */
#define LSM6DS3_FIFO_STATUS2_OVER_RUN 0x40u
#define LSM6DS3_FIFO_ODR_HZ 104u
#define LSM6DS3_FIFO_STATUS4_PATTERN_HI 0x03u /* FIFO_STATUS4[1:0]: FIFO_PATTERN[9:8] */
#define LSM6DS3_FIFO_STATUS2_DIFF_HI 0x07u    /* FIFO_STATUS2[2:0]: DIFF_FIFO[10:8] */

/* ---- InvenSense MPU-6050 (ESP32-DevKitC add-on) at 0x68 (AD0 low) ---------------------------------- */
#define MPU6050_ADDR 0x68u
#define MPU6050_WHO_AM_I 0x75u
#define MPU6050_WHO_AM_I_VALUE 0x68u
#define MPU6050_SMPLRT_DIV 0x19u
#define MPU6050_CONFIG 0x1Au
#define MPU6050_GYRO_CONFIG 0x1Bu
#define MPU6050_ACCEL_CONFIG 0x1Cu
#define MPU6050_ACCEL_XOUT_H 0x3Bu /* 14 bytes, big-endian: acc xyz, temperature, gyro xyz */
#define MPU6050_PWR_MGMT_1 0x6Bu
#define MPU6050_PWR_MGMT_1_VALUE 0x01u   /* awake, clock from the x gyro PLL */
#define MPU6050_CONFIG_VALUE 0x04u       /* DLPF 21 Hz acc / 20 Hz gyro, gyro output 1 kHz */
#define MPU6050_SMPLRT_DIV_VALUE 9u      /* 1 kHz / (1 + 9) = 100 Hz */
#define MPU6050_GYRO_CONFIG_VALUE 0x18u  /* +-2000 dps */
#define MPU6050_ACCEL_CONFIG_VALUE 0x10u /* +-8 g */

/* ---- FIFO registers (ports/common/imu_fifo.h drives them; every value checked against public sources) ----
 *
 * LSM9DS1 -- ST datasheet DocID025715 Rev 3, section 3.5 (FIFO modes: FMODE 001 FIFO, 110 continuous, "if an
 * overrun occurs, the oldest sample in FIFO is overwritten and the OVRN flag in FIFO_SRC (2Fh) is asserted";
 * bypass resets the content); SparkFun_LSM9DS1_Arduino_Library issue #19 (FIFO_CONT = 6 per Table 84);
 * Arduino_LSM9DS1 (the Nano 33 BLE's own library) setContinuousMode(): CTRL_REG9 = 0x02, FIFO_CTRL = 0xC0;
 * ArduPilot AP_InertialSensor_LSM9DS1.cpp: CTRL_REG9 FIFO_EN bit 1, FIFO_SRC OVRN bit 6, FSS[5:0]. Each FIFO
 * slot holds one gyro and one accelerometer sample, read from OUT_X_L_G (6 bytes) then OUT_X_L_XL (6 bytes)
 * as those libraries read them. 32 slots. */
#define LSM9DS1_CTRL_REG9 0x23u
#define LSM9DS1_FIFO_CTRL 0x2Eu /* FMODE[7:5] FTH[4:0] */
#define LSM9DS1_FIFO_SRC 0x2Fu  /* FTH[7] OVRN[6] FSS[5:0] (unread slots, 0..32) */
#define LSM9DS1_CTRL_REG9_FIFO_EN 0x02u
#define LSM9DS1_FIFO_CTRL_BYPASS 0x00u     /* FMODE 000: FIFO off, content reset */
#define LSM9DS1_FIFO_CTRL_CONTINUOUS 0xC0u /* FMODE 110: the oldest slot is overwritten when full */
#define LSM9DS1_FIFO_SRC_OVRN 0x40u
#define LSM9DS1_FIFO_SRC_FSS 0x3Fu
#define LSM9DS1_FIFO_DEPTH 32u
#define LSM9DS1_ODR_HZ 119u /* CTRL_REG1_G ODR_G 011 (both sensors run at the gyro's rate) */

/* BMI270 -- Bosch BMI270_SensorAPI bmi2_defs.h (v2.x): FIFO_LENGTH_0 0x24 (14-bit byte count, MSB mask
 * 0x3F), FIFO_DATA 0x26, FIFO_DOWNS 0x45 (acc_fifo_filt_data 0x80, gyr_fifo_filt_data 0x08), FIFO_WTM_0/1
 * 0x46/0x47, FIFO_CONFIG_0 0x48 (stop_on_full 0x01, fifo_time_en 0x02), FIFO_CONFIG_1 0x49 (header_en 0x10,
 * acc_en 0x40, gyr_en 0x80), CMD fifo_flush 0xB0; frame headers 0x8C gyro+acc (12 bytes), 0x84 acc, 0x88
 * gyro (6), 0x40 skip (1 byte: the number of frames skipped), 0x44 sensortime (3), 0x48 input config (4),
 * 0x80 over-read (the FIFO is empty). ArduPilot AP_InertialSensor_BMI270.cpp reads 0x8C frames as gyro then
 * accelerometer and the same FIFO_CONFIG_1 / FIFO_DOWNS bits. Stream mode (stop_on_full 0): on overflow the
 * oldest frames are dropped and a skip frame says how many. A partially read frame is sent again whole on
 * the next read (Bosch FIFO, BMA400 datasheet "Partial frame read"; the BMI270 datasheet is not at hand). */
#define BMI270_FIFO_LENGTH_0 0x24u
#define BMI270_FIFO_DATA 0x26u
#define BMI270_FIFO_DOWNS 0x45u
#define BMI270_FIFO_CONFIG_0 0x48u
#define BMI270_FIFO_CONFIG_1 0x49u
#define BMI270_CMD_FIFO_FLUSH 0xB0u
#define BMI270_FIFO_LENGTH_MSB_MASK 0x3Fu
#define BMI270_FIFO_DOWNS_VALUE 0x88u    /* filtered data (the data registers' scale: ArduPilot notes the
                                            unfiltered gyro path needs ois_range for 2000 dps), no down-sampling */
#define BMI270_FIFO_CONFIG_0_VALUE 0x00u /* stream mode (oldest dropped, skip frame), no sensortime frame */
#define BMI270_FIFO_CONFIG_1_VALUE 0xD0u /* gyro + accelerometer, with headers */
#define BMI270_FH_GYR_ACC 0x8Cu
#define BMI270_FH_ACC 0x84u
#define BMI270_FH_GYR 0x88u
#define BMI270_FH_SKIP 0x40u
#define BMI270_FH_SENSORTIME 0x44u
#define BMI270_FH_INPUT_CFG 0x48u
#define BMI270_FH_OVER_READ 0x80u
#define BMI270_ODR_HZ 100u /* ACC_CONF / GYR_CONF odr 0x8 */

/* MPU-6050 -- InvenSense register map RM-MPU-6000A (via i2cdevlib MPU6050.h and kriswiner/MPU6050):
 * FIFO_EN 0x23 (XG 0x40, YG 0x20, ZG 0x10, ACCEL 0x08), INT_ENABLE 0x38 / INT_STATUS 0x3A (FIFO_OFLOW bit 4),
 * USER_CTRL 0x6A (FIFO_EN bit 6, FIFO_RESET bit 2), FIFO_COUNTH/L 0x72/0x73 (big-endian), FIFO_R_W 0x74.
 * Samples are written in register order: accelerometer (0x3B-0x40), then gyro (0x43-0x48), big-endian:
 * 12 bytes a frame. 1024-byte FIFO; when full the oldest BYTES are overwritten, so after an overflow the
 * frame boundary is lost and the FIFO must be reset. */
#define MPU6050_FIFO_EN 0x23u
#define MPU6050_INT_ENABLE 0x38u
#define MPU6050_INT_STATUS 0x3Au
#define MPU6050_USER_CTRL 0x6Au
#define MPU6050_FIFO_COUNTH 0x72u
#define MPU6050_FIFO_R_W 0x74u
#define MPU6050_FIFO_EN_VALUE 0x78u        /* gyro x, y, z and accelerometer */
#define MPU6050_INT_ENABLE_VALUE 0x10u     /* FIFO_OFLOW_EN: latch the overflow in INT_STATUS */
#define MPU6050_INT_STATUS_FIFO_OFLOW 0x10u
#define MPU6050_USER_CTRL_FIFO_EN 0x40u
#define MPU6050_USER_CTRL_FIFO_RESET 0x04u
#define MPU6050_FIFO_SIZE 1024u
#define MPU6050_ODR_HZ 100u /* 1 kHz / (1 + SMPLRT_DIV 9) */

/* Conversion factors (counts per LSB as num/den), from the datasheet sensitivities and the contract's scales
 * (DYSAN_ACC_COUNTS_PER_G, DYSAN_GYRO_COUNTS_PER_RAD_S: generated from host/dysan/contract.py, written nowhere
 * else):
 *   ST +-8 g: 0.244 mg/LSB -> 244e-6 * 2048 = 0.499712
 *   ST 2000 dps: 70 mdps/LSB -> 0.070 * pi/180 * 512 = 0.6255260... ~ 625526 / 1e6
 *   Bosch / InvenSense +-8 g: 4096 LSB/g -> 2048 / 4096 = 1 / 2
 *   BMI270 2000 dps: 16.384 LSB/dps -> 512 * pi/180 / 16.384 = 0.5454154... ~ 545415 / 1e6
 *   MPU-6050 2000 dps: 16.4 LSB/dps -> 512 * pi/180 / 16.4 = 0.5448833... ~ 544883 / 1e6
 * The gyro factors are rounded to 1e-6 (< 0.5 count over the int16 range; port_test_common.c checks). */
#define DYSAN_PI_E12 3141592653590LL
/* round(GYRO_COUNTS_PER_RAD_S * pi/180 * (a / b deg/s per LSB) * 1e6), an integer constant expression */
#define DYSAN_GYR_NUM_E6(a, b) \
    ((int32_t)(((long long)DYSAN_GYRO_COUNTS_PER_RAD_S * DYSAN_PI_E12 * (a) / (180LL * (b)) + 500000LL) / 1000000LL))
#define DYSAN_ST_ACC8G_NUM (244 * DYSAN_ACC_COUNTS_PER_G) /* 0.244 mg/LSB */
#define DYSAN_ST_ACC8G_DEN 1000000
#define DYSAN_ST_GYR2000_NUM DYSAN_GYR_NUM_E6(70, 1000) /* 70 mdps/LSB */
#define DYSAN_ST_GYR2000_DEN 1000000
#define DYSAN_4096LSB_G_NUM DYSAN_ACC_COUNTS_PER_G
#define DYSAN_4096LSB_G_DEN 4096
#define DYSAN_BMI270_GYR2000_NUM DYSAN_GYR_NUM_E6(1000, 16384) /* 16.384 LSB/dps */
#define DYSAN_BMI270_GYR2000_DEN 1000000
#define DYSAN_MPU6050_GYR2000_NUM DYSAN_GYR_NUM_E6(10, 164) /* 16.4 LSB/dps */
#define DYSAN_MPU6050_GYR2000_DEN 1000000

extern const dysan_imu_desc_t dysan_imu_lsm9ds1;
extern const dysan_imu_desc_t dysan_imu_bmi270;
extern const dysan_imu_desc_t dysan_imu_lsm6ds3trc;
extern const dysan_imu_desc_t dysan_imu_mpu6050;

/* Assembles a sample in contract order from the IMU's raw output bytes: `acc` and `gyr` each point at the
 * 6 output bytes (x, y, z as int16, in the IMU's byte order). */
void dysan_imu_to_counts(const dysan_imu_desc_t *imu, const uint8_t acc[6], const uint8_t gyr[6],
                         int16_t sample[6]);

#ifdef __cplusplus
}
#endif

#endif /* DYSAN_IMU_DEFS_H */
