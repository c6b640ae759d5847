/* imu_defs.c -- see imu_defs.h. */
#include "imu_defs.h"

#include "port_common.h"

const dysan_imu_desc_t dysan_imu_lsm9ds1 = {
    "LSM9DS1", LSM9DS1_ADDR, LSM9DS1_WHO_AM_I, LSM9DS1_WHO_AM_I_VALUE,
    DYSAN_ST_ACC8G_NUM, DYSAN_ST_ACC8G_DEN, DYSAN_ST_GYR2000_NUM, DYSAN_ST_GYR2000_DEN, 0,
};

const dysan_imu_desc_t dysan_imu_bmi270 = {
    "BMI270", BMI270_ADDR, BMI270_CHIP_ID, BMI270_CHIP_ID_VALUE,
    DYSAN_4096LSB_G_NUM, DYSAN_4096LSB_G_DEN, DYSAN_BMI270_GYR2000_NUM, DYSAN_BMI270_GYR2000_DEN, 0,
};

const dysan_imu_desc_t dysan_imu_lsm6ds3trc = {
    "LSM6DS3TR-C", LSM6DS3_ADDR, LSM6DS3_WHO_AM_I, LSM6DS3TRC_WHO_AM_I_VALUE,
    DYSAN_ST_ACC8G_NUM, DYSAN_ST_ACC8G_DEN, DYSAN_ST_GYR2000_NUM, DYSAN_ST_GYR2000_DEN, 0,
};

const dysan_imu_desc_t dysan_imu_mpu6050 = {
    "MPU-6050", MPU6050_ADDR, MPU6050_WHO_AM_I, MPU6050_WHO_AM_I_VALUE,
    DYSAN_4096LSB_G_NUM, DYSAN_4096LSB_G_DEN, DYSAN_MPU6050_GYR2000_NUM, DYSAN_MPU6050_GYR2000_DEN, 1,
};

static int16_t raw16(const uint8_t *p, uint8_t big_endian)
{
    uint16_t u = big_endian ? (uint16_t)((p[0] << 8) | p[1]) : (uint16_t)((p[1] << 8) | p[0]);
    return (int16_t)u; /* two's complement on every target we build for */
}

void dysan_imu_to_counts(const dysan_imu_desc_t *imu, const uint8_t acc[6], const uint8_t gyr[6],
                         int16_t sample[6])
{
    for (int axis = 0; axis < 3; axis++) {
        sample[DYSAN_CH_ACC_X + axis] =
            dysan_scale_counts(raw16(acc + 2 * axis, imu->big_endian), imu->acc_num, imu->acc_den);
        sample[DYSAN_CH_GYRO_X + axis] =
            dysan_scale_counts(raw16(gyr + 2 * axis, imu->big_endian), imu->gyr_num, imu->gyr_den);
    }
}
