/*
 * dysan_nn_pool_m4.c -- Cortex-M4 (DSP extension) paths of AVERAGE_POOL_2D (2-tap windows, 4 channels per
 * SHADD8) and MEAN (4 channels per SXTAB16 pair); the portable kernels, validation and registrations are in
 * dysan_nn_pool.c. Same outputs byte for byte.
 */
#include "dysan_nn_pool.h"

#if NN_DSP

#include <string.h>

/* Average of 2 (a 1 x 2 or 2 x 1 window inside the input), 4 channels per word: SHADD8 gives
 * floor((a + b) / 2); the reference's (acc + 1) / 2 for acc > 0 and (acc - 1) / 2 (truncating) otherwise is
 * that plus 1 when a + b is odd and positive, i.e. odd with a non-negative floor. QADD8 saturates the one
 * case past int8 (127.5 -> 128, which the activation clamp makes 127 anyway). */
static inline uint32_t nn_avg2x4(uint32_t a, uint32_t b) {
    const uint32_t h = (uint32_t)__shadd8((int8x4_t)a, (int8x4_t)b);
    const uint32_t up = (a ^ b) & ~(h >> 7) & UINT32_C(0x01010101);
    return (uint32_t)__qadd8((int8x4_t)h, (int8x4_t)up);
}

/* Windows of 2 taps, none clipped: returns 0 (nothing written) for any other geometry. */
int nn_m4_average_pool2(const nn_op_t *op, uint8_t *arena) {
    const nn_pool_t g = nn_pool_geom(op);
    if (g.fh * g.fw != 2 || g.pt != 0 || g.pl != 0 || (g.oh - 1) * g.sh + g.fh > g.h ||
        (g.ow - 1) * g.sw + g.fw > g.w) {
        return 0;
    }
    const int8_t *in = (const int8_t *)(arena + op->in[0].off);
    int8_t *o = (int8_t *)(arena + op->out.off);
    const int32_t row = g.w * g.c, tap = g.fw == 2 ? g.c : row; /* the second tap, after the first */
    for (int32_t b = 0; b < g.n; b++) {
        for (int32_t oy = 0; oy < g.oh; oy++) {
            const int8_t *py = in + ((size_t)b * g.h + (size_t)oy * g.sh) * row;
            for (int32_t ox = 0; ox < g.ow; ox++, o += g.c) {
                const int8_t *px = py + (size_t)ox * g.sw * g.c;
                int32_t ch = 0;
                for (; ch + 4 <= g.c; ch += 4) {
                    uint32_t a, t;
                    memcpy(&a, px + ch, 4);
                    memcpy(&t, px + ch + tap, 4);
                    const uint32_t v = nn_avg2x4(a, t);
                    memcpy(o + ch, &v, 4);
                }
                for (; ch < g.c; ch++) {
                    const uint32_t v = nn_avg2x4((uint8_t)px[ch], (uint8_t)px[ch + tap]);
                    o[ch] = (int8_t)v;
                }
                if (g.lo != -128 || g.hi != 127) {
                    for (ch = 0; ch < g.c; ch++) {
                        o[ch] = nn_clamp8(o[ch], g.lo, g.hi);
                    }
                }
            }
        }
    }
    return 1;
}

/* 4 channels per word: SXTAB16 sums even and odd bytes in int16 halves (|sum| <= 128 x reduce fits while
 * reduce < 256), then each sum goes through the same requantization as the portable kernel. */
int nn_m4_mean(const nn_op_t *op, uint8_t *arena) {
    const nn_mean_t g = nn_mean_geom(op, arena);
    if (g.reduce >= 256) {
        return 0;
    }
    for (int32_t o = 0; o < g.outer; o++) {
        const int8_t *base = g.in + (size_t)o * g.reduce * g.inner;
        int8_t *out = g.out + (size_t)o * g.inner;
        int32_t c = 0;
        for (; c + 4 <= g.inner; c += 4) {
            uint32_t even = 0, odd = 0;
            const int8_t *px = base + c;
            for (int32_t r = 0; r < g.reduce; r++, px += g.inner) {
                uint32_t v;
                memcpy(&v, px, 4);
                even = (uint32_t)__sxtab16((int16x2_t)even, (int8x4_t)v);
                odd = nn_sxtab16_ror8(odd, v);
            }
            out[c] = nn_mean_out(&g, (int16_t)even);
            out[c + 1] = nn_mean_out(&g, (int16_t)odd);
            out[c + 2] = nn_mean_out(&g, (int16_t)(even >> 16));
            out[c + 3] = nn_mean_out(&g, (int16_t)(odd >> 16));
        }
        for (; c < g.inner; c++) {
            out[c] = nn_mean_out(&g, nn_mean_sum(&g, o, c));
        }
    }
    return 1;
}

#endif /* NN_DSP */
