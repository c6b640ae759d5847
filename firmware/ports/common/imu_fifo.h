/*
 * imu_fifo.h -- the IMUs' hardware FIFOs drained onto the contract's 50 Hz, portable and host-tested.
 *
 * Every board IMU samples into its own FIFO at its output data rate (ODR: LSM6DS3TR-C 104 Hz, LSM9DS1 119 Hz,
 * BMI270 and MPU-6050 100 Hz); the main loop drains it between pipeline slices (dysan_imu_fifo_read), so a
 * slice that runs long costs no sample as long as the FIFO does not fill (LSM6DS3TR-C 4 KB = 3.3 s, LSM9DS1
 * 32 slots = 269 ms, BMI270 ~1.5 s of 13-byte frames if its FIFO is 2 KB (not verified here), MPU-6050
 * 1 KB = 850 ms).
 *
 * Shape (the same for the four chips): a status read says how much waits; frames are read burst-wise
 * (as many whole frames as one bus transfer moves, `max_read`), parsed, converted to contract counts by
 * dysan_imu_to_counts (imu_defs.h: the one conversion, from dysan_contract.h's scales), and decimated onto
 * the 50 Hz grid of the sensor's own clock: output tick j keeps sensor sample round(j * ODR / 50), the one
 * nearest to it (at 100 Hz: every other sample).
 *
 * Losses are counted, never hidden (dysan_imu_fifo_lost -> dysan_port_imu_lost -> STATS.samples_missed, and
 * the next sample carries a gap mark in the core):
 *   - BMI270 skip frame (the chip says how many frames it dropped): the grid advances over them and every
 *     tick that fell on a dropped frame counts as one lost sample -- exact up to 254 frames; a count of 255
 *     may be saturated (one byte), so then the clock's estimate is used when it is larger;
 *   - overrun without a count (LSM6DS3TR-C OVER_RUN / misaligned pattern, LSM9DS1 OVRN, MPU-6050 FIFO_OFLOW,
 *     an unknown BMI270 header, a failed burst): the FIFO is restarted and the samples lost are estimated
 *     from the MCU clock since the last status read that saw no overrun (the sensor had then produced
 *     `consumed + waiting` samples; it produced ODR * elapsed more since), at least one; the grid restarts.
 *   - a frame without both sensors (BMI270 0x84 / 0x88) on a kept tick: one lost sample.
 * The port passes its microsecond clock (wrapping) to dysan_imu_fifo_read for the estimate only; the
 * sensor's clock paces the samples.
 *
 * Register values and the public sources they were checked against: imu_defs.h. Not verified on hardware.
 */
#ifndef DYSAN_IMU_FIFO_H
#define DYSAN_IMU_FIFO_H

#include <stddef.h>
#include <stdint.h>

#include "imu_defs.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Register access the port provides (Arduino Wire on the boards, a register-level fake in the tests). */
typedef struct {
    /* Reads `n` (1 <= n <= max_read) consecutive bytes from register `reg` of device `addr`; 0 or negative. */
    int (*read)(void *ctx, uint8_t addr, uint8_t reg, uint8_t *out, size_t n);
    /* Writes one register; 0 or negative. */
    int (*write)(void *ctx, uint8_t addr, uint8_t reg, uint8_t value);
    void *ctx;
    size_t max_read; /* the longest read one transfer moves (Arduino Wire buffers: 32) */
} dysan_imu_bus_t;

#define DYSAN_IMU_FIFO_BUF 64u /* staging buffer: at least one burst */

typedef struct {
    const dysan_imu_desc_t *imu;
    dysan_imu_bus_t bus;
    uint32_t odr_hz;
    /* 50 Hz grid since the FIFO (re)started */
    uint64_t index; /* sensor samples taken into the grid (delivered, skipped or dropped) */
    uint64_t tick;  /* output ticks passed (delivered or lost) */
    /* what waits in the chip, in the chip's unit (LSM6DS3: sets, LSM9DS1: slots, BMI270: bytes, MPU: frames) */
    uint32_t avail;
    uint8_t buf[DYSAN_IMU_FIFO_BUF];
    size_t buf_len, buf_pos;
    /* anchor of the loss estimate: at anchor_us the sensor had produced anchor_produced samples */
    uint32_t anchor_us;
    uint64_t anchor_produced;
    uint8_t anchored;
    uint8_t running;
    uint64_t est_waiting; /* BMI270: samples the clock says the chip produced since the grid's last one */
    /* counters */
    uint32_t lost;       /* 50 Hz samples lost (reported to the core) */
    uint32_t overruns;   /* FIFO overruns / resynchronisations */
    uint32_t bus_errors; /* failed transfers */
    uint32_t delivered;  /* 50 Hz samples delivered */
} dysan_imu_fifo_t;

/* Configures and starts the FIFO of an IMU whose sensors the port has already set up (imu_defs.h values;
 * for the BMI270, after its configuration file was loaded). `imu` is one of the four dysan_imu_* descriptors.
 * Returns 0, or DYSAN_PORT_EINVAL (unknown IMU, bus without read/write or max_read < 12) / DYSAN_PORT_EIO. */
int dysan_imu_fifo_start(dysan_imu_fifo_t *f, const dysan_imu_desc_t *imu, const dysan_imu_bus_t *bus,
                         uint32_t now_us);

/* The next 50 Hz sample in contract order (1), or 0 when none is ready yet -- or when this call has just
 * counted a loss: the caller reads the loss counter before asking again (the core's acquire() does, on its
 * next turn), so the gap mark lands on the first sample after the gap. Bounded: at most a few bursts. */
int dysan_imu_fifo_read(dysan_imu_fifo_t *f, uint32_t now_us, int16_t sample[6]);

/* 50 Hz samples lost so far (overruns, skipped frames, failed transfers). */
uint32_t dysan_imu_fifo_lost(const dysan_imu_fifo_t *f);

/* The grid: the sensor sample kept for output tick j (round(j * odr / 50), halves up), and how many ticks
 * keep a sample below index n. Exposed for the tests. */
uint64_t dysan_imu_grid_keep(uint64_t tick, uint32_t odr_hz);
uint64_t dysan_imu_grid_ticks_below(uint64_t n, uint32_t odr_hz);

#ifdef __cplusplus
}
#endif

#endif /* DYSAN_IMU_FIFO_H */
