/* Integer window features: see dysan_features.h and host/dysan/features.py (the definition). */
#include "dysan_features.h"

#include <stddef.h>

#include "dysan_intmath.h"

#define N DYSAN_WINDOW
#define BLOCK (DYSAN_WINDOW / DYSAN_FEATURE_BLOCKS)

#if DYSAN_WINDOW % DYSAN_FEATURE_BLOCKS != 0
#error "the window must split into whole feature blocks"
#endif
#define PAIRS (DYSAN_WINDOW / 2)
/* Signal slots, features.SIGNALS order: 6 channels, acc_mag, gyro_mag, acc_vert, acc_horiz, gyro_vert. */
#define MAG_ACC 6
#define MAG_GYRO 7
#define VERT_ACC 8
#define HORIZ_ACC 9
#define VERT_GYRO 10
#define CADENCE_OFF (DYSAN_FEATURE_SIGNALS * DYSAN_FEATURE_STATS)

#if DYSAN_FEATURE_STATS != 8 || DYSAN_FEATURE_SIGNALS != 11 || DYSAN_FEATURE_CADENCE_SIGNALS != 2 || \
    DYSAN_N_FEATURES != CADENCE_OFF + DYSAN_FEATURE_CADENCE_SIGNALS * DYSAN_FEATURE_CADENCE_STATS
#error "dysan_features.c computes 8 stats of 11 signals and the cadence of acc_mag and acc_vert"
#endif
#if DYSAN_FEATURE_LAG_MIN < 1 || DYSAN_FEATURE_LAG_MAX >= PAIRS
#error "autocorrelation lags outside the window"
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

/* floor(sqrt(v)) for v < 2^32: Newton's iteration from a power of two above the root (integer, exact; about
 * five hardware divisions instead of the 16 rounds of the bitwise method -- it runs for every sample). */
static uint32_t isqrt32(uint32_t v)
{
    if (v < 2u) {
        return v;
    }
    const unsigned bits = 32u - (unsigned)__builtin_clz(v);
    uint32_t r = (uint32_t)1 << ((bits + 1u) / 2u); /* r * r >= 2^bits > v */
    for (;;) {
        const uint32_t y = (r + v / r) >> 1;
        if (y >= r) {
            return r;
        }
        r = y;
    }
}

static uint32_t isqrt_u64(uint64_t v)
{
    return v >> 32 ? dysan_isqrt64(v) : isqrt32((uint32_t)v);
}

static int32_t floor_div32(int32_t a, int32_t b) /* b > 0 */
{
    int32_t q = a / b;
    if ((a % b != 0) && (a < 0)) {
        q -= 1;
    }
    return q;
}

static int32_t floor_div(int64_t a, int64_t b) /* b > 0 */
{
    int64_t q = a / b;
    if ((a % b != 0) && (a < 0)) {
        q -= 1;
    }
    return (int32_t)q;
}

/* The 8 STATS of one signal. Bounds (features.py's signals, |value| < 2^17): the sum and the summed absolute
 * differences fit 32 bits, the sum of squares needs 64. One pass over the blocks, one for the mean crossings. */
static void signal_stats(const int32_t *v, int16_t *out)
{
    int32_t sum = 0;
    int64_t sumsq = 0;
    int32_t lo = v[0];
    int32_t hi = v[0];
    uint32_t jerk = 0;
    uint32_t bmin = UINT32_MAX;
    uint32_t bmax = 0;
    for (size_t b = 0; b < DYSAN_FEATURE_BLOCKS; b++) {
        const int32_t *p = v + b * BLOCK;
        int32_t prev = p[0];
        if (b > 0) { /* the difference across the block edge counts for jerk, not for the blocks */
            const int32_t d = prev - p[-1];
            jerk += (uint32_t)(d < 0 ? -d : d);
        }
        sum += prev;
        sumsq += (int64_t)prev * prev;
        lo = prev < lo ? prev : lo;
        hi = prev > hi ? prev : hi;
        uint32_t s = 0;
        for (size_t t = 1; t < BLOCK; t++) {
            const int32_t x = p[t];
            sum += x;
            sumsq += (int64_t)x * x;
            lo = x < lo ? x : lo;
            hi = x > hi ? x : hi;
            const int32_t d = x - prev;
            s += (uint32_t)(d < 0 ? -d : d);
            prev = x;
        }
        jerk += s;
        s /= (BLOCK - 1);
        bmin = s < bmin ? s : bmin;
        bmax = s > bmax ? s : bmax;
    }
    /* n * x >= sum  <=>  x >= ceil(sum / n) for an integer x */
    const int32_t thr = -floor_div32(-sum, N);
    uint32_t cross = 0;
    int positive = v[0] >= thr;
    for (size_t t = 1; t < N; t++) {
        const int p = v[t] >= thr;
        cross += (uint32_t)(p != positive);
        positive = p;
    }
    const int64_t num = (int64_t)N * sumsq - (int64_t)sum * sum; /* >= 0 */
    out[0] = dysan_sat16(floor_div32(sum, N));
    out[1] = dysan_sat16(isqrt_u64((uint64_t)(num < 0 ? 0 : num) / ((uint64_t)N * N)));
    out[2] = dysan_sat16(lo);
    out[3] = dysan_sat16(hi);
    out[4] = dysan_sat16(jerk / (N - 1));
    out[5] = dysan_sat16(cross);
    out[6] = dysan_sat16(bmin);
    out[7] = dysan_sat16(bmax);
}

/* floor(a / 2^UNIT_SHIFT). The result fits int32: |a| < 2^31 * 2^UNIT_SHIFT for any window (see features.py). */
static int32_t unit_floor(int64_t a)
{
    return (int32_t)dysan_floor_shift(a, DYSAN_FEATURE_UNIT_SHIFT);
}

static int64_t dot_u(const int16_t *v, const int32_t *u)
{
    return (int64_t)v[0] * u[0] + (int64_t)v[1] * u[1] + (int64_t)v[2] * u[2];
}

/* Autocorrelation cadence of one signal: out[0] = ac_peak (permille of r(0)), out[1] = ac_lag. */
static void cadence(const int32_t *v, int16_t *out)
{
    int32_t c[PAIRS];
    int64_t sum = 0;
    for (size_t k = 0; k < PAIRS; k++) {
        c[k] = v[2 * k] + v[2 * k + 1];
        sum += c[k];
    }
    const int32_t mean = floor_div(sum, PAIRS);
    int64_t r0 = 0;
    for (size_t k = 0; k < PAIRS; k++) {
        c[k] -= mean;
        r0 += (int64_t)c[k] * c[k];
    }
    int64_t best = 0;
    uint32_t best_lag = 0;
    for (uint32_t lag = DYSAN_FEATURE_LAG_MIN; lag <= DYSAN_FEATURE_LAG_MAX; lag++) {
        const int32_t *a = c;
        const int32_t *b = c + lag;
        const size_t n = PAIRS - lag;
        int64_t r = 0;
        size_t k = 0;
        for (; k + 4 <= n; k += 4) { /* unrolled: the innermost loop of the features */
            r += (int64_t)a[k] * b[k];
            r += (int64_t)a[k + 1] * b[k + 1];
            r += (int64_t)a[k + 2] * b[k + 2];
            r += (int64_t)a[k + 3] * b[k + 3];
        }
        for (; k < n; k++) {
            r += (int64_t)a[k] * b[k];
        }
        if (best_lag == 0 || r > best) { /* strict: the first maximum */
            best = r;
            best_lag = lag;
        }
    }
    if (r0 > 0) {
        int64_t q = (1000 * best) / r0; /* |best| <= r0: |q| <= 1000 */
        if ((1000 * best) % r0 != 0 && best < 0) {
            q -= 1;
        }
        out[0] = dysan_sat16(q);
        out[1] = dysan_sat16(best_lag);
    } else {
        out[0] = 0;
        out[1] = 0;
    }
}

void dysan_window_features(const int16_t *window, int16_t *out)
{
    int32_t sig[N];
    int32_t sig2[N];
    for (size_t c = 0; c < DYSAN_N_CHANNELS; c++) {
        for (size_t t = 0; t < N; t++) {
            sig[t] = window[t * DYSAN_N_CHANNELS + c];
        }
        signal_stats(sig, out + c * DYSAN_FEATURE_STATS);
    }
    /* Gravity direction of the window, Q14 (features.py: u = floor(S * 2^14 / isqrt(|S|^2))). */
    int32_t s[3] = {0, 0, 0};
    for (size_t t = 0; t < N; t++) {
        for (size_t k = 0; k < 3; k++) {
            s[k] += window[t * DYSAN_N_CHANNELS + k];
        }
    }
    const uint64_t s2 = (uint64_t)((int64_t)s[0] * s[0]) + (uint64_t)((int64_t)s[1] * s[1]) +
                        (uint64_t)((int64_t)s[2] * s[2]);
    const uint32_t g = dysan_isqrt64(s2);
    int32_t u[3] = {0, 0, 0};
    if (g > 0) {
        for (size_t k = 0; k < 3; k++) {
            u[k] = floor_div((int64_t)s[k] * (1 << DYSAN_FEATURE_UNIT_SHIFT), g);
        }
    }
    /* acc_mag (sig) and acc_vert (sig2), then acc_horiz in sig (acc_mag's stats and cadence done first). */
    for (size_t t = 0; t < N; t++) {
        const int16_t *a = window + t * DYSAN_N_CHANNELS;
        const uint32_t sq = (uint32_t)((int32_t)a[0] * a[0]) + (uint32_t)((int32_t)a[1] * a[1]) +
                            (uint32_t)((int32_t)a[2] * a[2]);
        sig[t] = (int32_t)isqrt32(sq);
        sig2[t] = unit_floor(dot_u(a, u));
    }
    signal_stats(sig, out + MAG_ACC * DYSAN_FEATURE_STATS);
    cadence(sig, out + CADENCE_OFF);
    signal_stats(sig2, out + VERT_ACC * DYSAN_FEATURE_STATS);
    cadence(sig2, out + CADENCE_OFF + DYSAN_FEATURE_CADENCE_STATS);
    for (size_t t = 0; t < N; t++) {
        const int16_t *a = window + t * DYSAN_N_CHANNELS;
        const uint32_t sq = (uint32_t)((int32_t)a[0] * a[0]) + (uint32_t)((int32_t)a[1] * a[1]) +
                            (uint32_t)((int32_t)a[2] * a[2]);
        const uint64_t v2 = (uint64_t)((int64_t)sig2[t] * sig2[t]);
        sig[t] = (int32_t)isqrt32(sq > v2 ? (uint32_t)(sq - v2) : 0u);
    }
    signal_stats(sig, out + HORIZ_ACC * DYSAN_FEATURE_STATS);
    for (size_t t = 0; t < N; t++) {
        const int16_t *w = window + t * DYSAN_N_CHANNELS + 3;
        sig[t] = (int32_t)isqrt32((uint32_t)((int32_t)w[0] * w[0]) + (uint32_t)((int32_t)w[1] * w[1]) +
                                  (uint32_t)((int32_t)w[2] * w[2]));
        sig2[t] = unit_floor(dot_u(w, u));
    }
    signal_stats(sig, out + MAG_GYRO * DYSAN_FEATURE_STATS);
    signal_stats(sig2, out + VERT_GYRO * DYSAN_FEATURE_STATS);
}
