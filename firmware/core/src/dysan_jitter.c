/* Per-window random rotation and gain: see dysan_jitter.h and host/dysan/jitter.py (the definition). */
#include "dysan_jitter.h"

#include "dysan_hmac.h"
#include "dysan_intmath.h"
#include "dysan_le.h"

#include <string.h>

#define ONE ((int32_t)1 << DYSAN_JITTER_Q)
#define HALF ((int32_t)1 << (DYSAN_JITTER_Q - 1))

static int32_t round_q(int32_t v)
{
    return dysan_floor_shift32(v + HALF, DYSAN_JITTER_Q);
}

static uint32_t fmix32(uint32_t h)
{
    h ^= h >> 16;
    h *= 0x85EBCA6Bu;
    h ^= h >> 13;
    h *= 0xC2B2AE35u;
    h ^= h >> 16;
    return h;
}

void dysan_jitter_draws(uint32_t seed, uint32_t counter, uint32_t out[5])
{
    uint32_t base = fmix32(seed ^ counter);
    for (uint32_t k = 0; k < 5; k++) {
        out[k] = fmix32(base + k * 0x9E3779B9u);
    }
}

/* floor(((r >> 16) - 32768) * amplitude / 32768) */
static int32_t centered(uint32_t r, int32_t amplitude)
{
    return dysan_floor_shift32(((int32_t)(r >> 16) - 32768) * amplitude, 15);
}

static void sin_cos(int32_t a, int32_t *s, int32_t *c)
{
    int32_t a2 = round_q(a * a);
    int32_t a3 = round_q(a2 * a);
    int32_t a4 = round_q(a2 * a2);
    int32_t a5 = round_q(a4 * a);
    *s = a - round_q(a3 * 2731) + round_q(a5 * 137);
    *c = ONE - round_q(a2 * 8192) + round_q(a4 * 683);
}

static void matmul(const int32_t a[3][3], const int32_t b[3][3], int32_t out[3][3])
{
    for (int i = 0; i < 3; i++) {
        for (int k = 0; k < 3; k++) {
            int32_t acc = 0;
            for (int j = 0; j < 3; j++) {
                acc += a[i][j] * b[j][k];
            }
            out[i][k] = round_q(acc);
        }
    }
}

int dysan_jitter_matrices(uint32_t seed, uint32_t counter, int32_t max_angle_q14, int32_t max_gain_q14,
                          dysan_jitter_mat_t *out)
{
    if (out == NULL || max_angle_q14 < 0 || max_angle_q14 > DYSAN_JITTER_MAX_ANGLE_Q14 || max_gain_q14 < 0 ||
        max_gain_q14 > DYSAN_JITTER_MAX_GAIN_Q14) {
        return -1;
    }
    uint32_t r[5];
    dysan_jitter_draws(seed, counter, r);
    int32_t s[3], c[3];
    for (int k = 0; k < 3; k++) {
        sin_cos(centered(r[k], max_angle_q14), &s[k], &c[k]);
    }
    const int32_t rx[3][3] = {{ONE, 0, 0}, {0, c[0], -s[0]}, {0, s[0], c[0]}};
    const int32_t ry[3][3] = {{c[1], 0, s[1]}, {0, ONE, 0}, {-s[1], 0, c[1]}};
    const int32_t rz[3][3] = {{c[2], -s[2], 0}, {s[2], c[2], 0}, {0, 0, ONE}};
    int32_t ryx[3][3], rot[3][3];
    matmul(ry, rx, ryx);
    matmul(rz, ryx, rot);
    for (int t = 0; t < 2; t++) {
        int32_t gain = ONE + centered(r[3 + t], max_gain_q14);
        for (int i = 0; i < 3; i++) {
            for (int j = 0; j < 3; j++) {
                out->m[t][i][j] = round_q(gain * rot[i][j]);
            }
        }
    }
    return 0;
}

int dysan_jitter_apply(int16_t *window, size_t n_samples, uint32_t seed, uint32_t counter, int32_t max_angle_q14,
                       int32_t max_gain_q14)
{
    dysan_jitter_mat_t mat;
    if (window == NULL || n_samples == 0 ||
        dysan_jitter_matrices(seed, counter, max_angle_q14, max_gain_q14, &mat) != 0) {
        return -1;
    }
    for (size_t n = 0; n < n_samples; n++) {
        int16_t *x = window + 6 * n;
        for (int t = 0; t < 2; t++) {
            const int32_t(*m)[3] = mat.m[t];
            int32_t x0 = x[3 * t], x1 = x[3 * t + 1], x2 = x[3 * t + 2];
            /* |rows of m|_1 <= sqrt(3) * 1.5 * 2^14 and |x| <= 2^15: every sum fits in int32 */
            for (int i = 0; i < 3; i++) {
                x[3 * t + i] = dysan_sat16(round_q(m[i][0] * x0 + m[i][1] * x1 + m[i][2] * x2));
            }
        }
    }
    return 0;
}

/* ---- the emit path ------------------------------------------------------------------------------------ */

int dysan_jitter_out_mult(const int32_t mult[DYSAN_N_CHANNELS], uint32_t ratio_q16, int32_t out_mult[DYSAN_N_CHANNELS])
{
    if (mult == NULL || out_mult == NULL || ratio_q16 == 0u) {
        return -1;
    }
    for (unsigned c = 0; c < DYSAN_N_CHANNELS; c++) {
        if (mult[c] <= 0) {
            return -1;
        }
        const uint64_t m = (((uint64_t)(uint32_t)mult[c] << DYSAN_JITTER_RATIO_Q) + ratio_q16 / 2u) / ratio_q16;
        if (m < 1u || m > (uint64_t)INT32_MAX) {
            return -1;
        }
        out_mult[c] = (int32_t)m;
    }
    return 0;
}

int dysan_jitter_int8(const int8_t *in, int8_t *out, int16_t *scratch, size_t n_samples, const dysan_norm_t *norm,
                      int32_t out_zp, uint32_t ratio_q16, uint32_t seed, uint32_t counter, int32_t max_angle_q14,
                      int32_t max_gain_q14)
{
    dysan_norm_t q;
    int64_t deq[DYSAN_N_CHANNELS];
    if (in == NULL || out == NULL || scratch == NULL || norm == NULL || n_samples == 0u || out_zp < -128 ||
        out_zp > 127 || max_angle_q14 < 0 || max_angle_q14 > DYSAN_JITTER_MAX_ANGLE_Q14 || max_gain_q14 < 0 ||
        max_gain_q14 > DYSAN_JITTER_MAX_GAIN_Q14 || dysan_jitter_out_mult(norm->mult, ratio_q16, q.mult) != 0) {
        return -1;
    }
    q.zero_point = out_zp;
    for (unsigned c = 0; c < DYSAN_N_CHANNELS; c++) {
        q.center[c] = norm->center[c];
        deq[c] = (int64_t)((((uint64_t)1 << 36) + (uint64_t)q.mult[c] / 2u) / (uint64_t)q.mult[c]);
    }
    for (size_t n = 0; n < n_samples; n++) {
        for (unsigned c = 0; c < DYSAN_N_CHANNELS; c++) {
            const size_t i = n * DYSAN_N_CHANNELS + c;
            const int64_t v = q.center[c] + dysan_floor_shift(((int64_t)in[i] - out_zp) * deq[c] + 32768, 16);
            scratch[i] = dysan_sat16(v);
        }
    }
    if (dysan_jitter_apply(scratch, n_samples, seed, counter, max_angle_q14, max_gain_q14) != 0) {
        return -1;
    }
    dysan_quantize_samples(&q, scratch, n_samples, out);
    return 0;
}

uint32_t dysan_jitter_seed(const uint8_t *key, size_t key_len, uint16_t boot_epoch)
{
    static const char label[] = DYSAN_JITTER_SEED_LABEL;
    uint8_t msg[sizeof label - 1u + 2u];
    memcpy(msg, label, sizeof label - 1u);
    dysan_le_put_u16(msg + sizeof label - 1u, boot_epoch);
    uint8_t mac[DYSAN_SHA256_SIZE];
    dysan_hmac_sha256(key, key_len, msg, sizeof msg, mac);
    const uint32_t seed = dysan_le_get_u32(mac);
    dysan_wipe(mac, sizeof mac);
    return seed;
}
