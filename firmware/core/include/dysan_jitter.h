/*
 * dysan_jitter.h -- on-device randomness: a per-window random rotation and gain of the sanitized window.
 *
 * The definition is host/dysan/jitter.py; this is its bit-identical twin (tests/test_jitter.py compares
 * every output value). The seed is the device's own secret and is never sent; `counter` numbers the
 * windows. Integer only (Q14), no allocation, no state: the same (seed, counter) always gives the same
 * transform.
 *
 * Hook (not wired in yet): in dysan_app.c's emit(), when the bundle says the sanitizers were trained
 * through it (TrainConfig.jitter) and carries the amplitudes: dequantize the sanitized int8 window to
 * int16 counts, apply it with the device's secret seed and the window's sequence number, requantize; see
 * docs/evaluation.md "On-device randomness".
 */
#ifndef DYSAN_JITTER_H
#define DYSAN_JITTER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DYSAN_JITTER_Q 14
#define DYSAN_JITTER_MAX_ANGLE_Q14 8192 /* 0.5 rad: the Taylor sin/cos stay within 1e-4 */
#define DYSAN_JITTER_MAX_GAIN_Q14 8192  /* gain within 1 +- 0.5 keeps every sum inside int32 */

/* The two Q14 matrices of one window: [0] accelerometer, [1] gyroscope (row-major 3x3). */
typedef struct {
    int32_t m[2][3][3];
} dysan_jitter_mat_t;

/* The five random words of window `counter` (jitter.draws). */
void dysan_jitter_draws(uint32_t seed, uint32_t counter, uint32_t out[5]);

/* The matrices of window `counter`. Returns 0, or -1 when an amplitude is out of range or `out` is NULL. */
int dysan_jitter_matrices(uint32_t seed, uint32_t counter, int32_t max_angle_q14, int32_t max_gain_q14,
                          dysan_jitter_mat_t *out);

/* Transform `n_samples` interleaved samples of 6 int16 counts (acc x y z, gyro x y z) in place.
 * Returns 0, or -1 on a NULL window, a bad amplitude, or n_samples == 0. */
int dysan_jitter_apply(int16_t *window, size_t n_samples, uint32_t seed, uint32_t counter, int32_t max_angle_q14,
                       int32_t max_gain_q14);

#ifdef __cplusplus
}
#endif

#endif /* DYSAN_JITTER_H */
