/*
 * dysan_jitter.h -- on-device randomness: a per-window random rotation and gain of the sanitized window.
 *
 * The definition is host/dysan/jitter.py; this is its bit-identical twin (tests/test_jitter.py compares
 * every output value). The seed is the device's own secret and is never sent; `counter` numbers the
 * windows. Integer only (Q14), no allocation, no state: the same (seed, counter) always gives the same
 * transform.
 *
 * Where it runs: dysan_app.c's emit(), on every sanitized window it sends, when the bundle's header says
 * its sanitizers were trained through the transform (DYSAN_BUNDLE_FLAG_JITTER, with the two amplitudes):
 * dysan_jitter_int8 dequantizes the winner's int8 output to int16 counts, applies the transform with the
 * device's secret seed (dysan_jitter_seed: derived from the provisioned key, never sent) and the window's
 * sequence number, and requantizes. host/dysan/device/reference.py does the same (docs/firmware.md).
 */
#ifndef DYSAN_JITTER_H
#define DYSAN_JITTER_H

#include <stddef.h>
#include <stdint.h>

#include "dysan_contract.h"
#include "dysan_preprocess.h"

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

/* ---- the emit path: the sanitized int8 window (jitter.apply_int8) --------------------------------------- */

#define DYSAN_JITTER_RATIO_Q 16 /* the bundle's S output / input scale ratio, Q16 */

/* The requantization multipliers of an S whose output scale is ratio_q16 / 2^16 times the input scale:
 * out_mult_c = round(mult_c * 2^16 / ratio_q16). Returns 0, or -1 when ratio_q16 is 0 or a multiplier falls
 * outside 1 .. 2^31 - 1 (the bundle loader refuses such a bundle). */
int dysan_jitter_out_mult(const int32_t mult[DYSAN_N_CHANNELS], uint32_t ratio_q16, int32_t out_mult[DYSAN_N_CHANNELS]);

/* One sanitized window on its way out: `in` (n_samples x 6 int8 in S's output quantization: zero point
 * `out_zp`, scale ratio_q16 / 2^16 times the input scale of `norm`) -> int16 counts in `scratch`
 * (counts = sat16(center_c + floor(((q - out_zp) * D_c + 2^15) / 2^16)), D_c = round(2^36 / out_mult_c)),
 * dysan_jitter_apply, then requantized with dysan_quantize_samples (center_c, out_mult_c, out_zp) into
 * `out` (may be `in`). Returns 0, or -1 on a bad argument (nothing written then). */
int dysan_jitter_int8(const int8_t *in, int8_t *out, int16_t *scratch, size_t n_samples, const dysan_norm_t *norm,
                      int32_t out_zp, uint32_t ratio_q16, uint32_t seed, uint32_t counter, int32_t max_angle_q14,
                      int32_t max_gain_q14);

/* The jitter seed of one boot: the first 4 bytes (little-endian) of
 * HMAC-SHA256(key, DYSAN_JITTER_SEED_LABEL || boot_epoch as u16 LE). One-way: the seed reveals nothing of the
 * key, and the key stays the only provisioned secret. The epoch (STATE's boot counter, raised once per boot
 * and reported in INFO) makes each boot's series of transforms new although sequence numbers restart at 1. */
uint32_t dysan_jitter_seed(const uint8_t *key, size_t key_len, uint16_t boot_epoch);

#ifdef __cplusplus
}
#endif

#endif /* DYSAN_JITTER_H */
