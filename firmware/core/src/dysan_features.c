/* Integer window features: see dysan_features.h and host/dysan/features.py (the definition). */
#include "dysan_features.h"

#include <stddef.h>

#define N DYSAN_WINDOW
#define BLOCK (DYSAN_WINDOW / DYSAN_FEATURE_BLOCKS)

#if DYSAN_WINDOW % DYSAN_FEATURE_BLOCKS != 0
#error "the window must split into whole feature blocks"
#endif
#if DYSAN_N_FEATURES != DYSAN_FEATURE_SIGNALS * DYSAN_FEATURE_STATS || DYSAN_FEATURE_STATS != 8
#error "dysan_features.c computes 8 stats per signal"
#endif

uint32_t dysan_isqrt64(uint64_t v)
{
    uint64_t r = 0;
    uint64_t bit = (uint64_t)1 << 62;
    while (bit > v) {
        bit >>= 2;
    }
    while (bit != 0) {
        if (v >= r + bit) {
            v -= r + bit;
            r = (r >> 1) + bit;
        } else {
            r >>= 1;
        }
        bit >>= 2;
    }
    return (uint32_t)r;
}

/* 32-bit version for per-sample magnitudes (v < 2^32): half the iterations. */
static uint32_t isqrt32(uint32_t v)
{
    uint32_t r = 0;
    uint32_t bit = (uint32_t)1 << 30;
    while (bit > v) {
        bit >>= 2;
    }
    while (bit != 0) {
        if (v >= r + bit) {
            v -= r + bit;
            r = (r >> 1) + bit;
        } else {
            r >>= 1;
        }
        bit >>= 2;
    }
    return r;
}

static int32_t floor_div(int64_t a, int64_t b) /* b > 0 */
{
    int64_t q = a / b;
    if ((a % b != 0) && (a < 0)) {
        q -= 1;
    }
    return (int32_t)q;
}

static int16_t sat16(int64_t v)
{
    if (v > INT16_MAX) {
        return INT16_MAX;
    }
    if (v < INT16_MIN) {
        return INT16_MIN;
    }
    return (int16_t)v;
}

static void signal_stats(const int32_t *v, int16_t *out)
{
    int64_t sum = 0;
    int64_t sumsq = 0;
    int32_t lo = v[0];
    int32_t hi = v[0];
    int64_t jerk = 0;
    for (size_t t = 0; t < N; t++) {
        sum += v[t];
        sumsq += (int64_t)v[t] * v[t];
        if (v[t] < lo) {
            lo = v[t];
        }
        if (v[t] > hi) {
            hi = v[t];
        }
        if (t > 0) {
            int32_t d = v[t] - v[t - 1];
            jerk += d < 0 ? -d : d;
        }
    }
    uint32_t cross = 0;
    int positive = ((int64_t)N * v[0] - sum) >= 0;
    for (size_t t = 1; t < N; t++) {
        int p = ((int64_t)N * v[t] - sum) >= 0;
        cross += (uint32_t)(p != positive);
        positive = p;
    }
    int64_t bmin = INT64_MAX;
    int64_t bmax = INT64_MIN;
    for (size_t b = 0; b < DYSAN_FEATURE_BLOCKS; b++) {
        int64_t s = 0;
        for (size_t t = b * BLOCK + 1; t < (b + 1) * BLOCK; t++) {
            int32_t d = v[t] - v[t - 1];
            s += d < 0 ? -d : d;
        }
        s /= (BLOCK - 1); /* non-negative: truncation is the floor */
        if (s < bmin) {
            bmin = s;
        }
        if (s > bmax) {
            bmax = s;
        }
    }
    int64_t var = ((int64_t)N * sumsq - sum * sum) / ((int64_t)N * N); /* numerator >= 0 */
    out[0] = sat16(floor_div(sum, N));
    out[1] = sat16(dysan_isqrt64((uint64_t)(var < 0 ? 0 : var)));
    out[2] = sat16(lo);
    out[3] = sat16(hi);
    out[4] = sat16(jerk / (N - 1));
    out[5] = sat16(cross);
    out[6] = sat16(bmin);
    out[7] = sat16(bmax);
}

void dysan_window_features(const int16_t *window, int16_t *out)
{
    int32_t sig[N];
    for (size_t c = 0; c < DYSAN_N_CHANNELS; c++) {
        for (size_t t = 0; t < N; t++) {
            sig[t] = window[t * DYSAN_N_CHANNELS + c];
        }
        signal_stats(sig, out + c * DYSAN_FEATURE_STATS);
    }
    for (size_t m = 0; m < 2; m++) { /* acceleration then angular-rate magnitude */
        for (size_t t = 0; t < N; t++) {
            const int16_t *s = window + t * DYSAN_N_CHANNELS + 3 * m;
            uint32_t sq = (uint32_t)((int32_t)s[0] * s[0]) + (uint32_t)((int32_t)s[1] * s[1]) +
                          (uint32_t)((int32_t)s[2] * s[2]);
            sig[t] = (int32_t)isqrt32(sq);
        }
        signal_stats(sig, out + (DYSAN_N_CHANNELS + m) * DYSAN_FEATURE_STATS);
    }
}
