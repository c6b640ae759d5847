/*
 * dysan_nn_pool.c -- AVERAGE_POOL_2D, MAX_POOL_2D (reference_integer_ops AveragePool / MaxPool) and MEAN
 * (TFLM reduce: reference_ops::QuantizedMeanOrSum, with the 1/n factor already folded into the multiplier
 * by the exporter, as TFLM does at Eval).
 *
 * Pooling windows are clipped to the input (padding is not counted), exactly as in the reference; the
 * loader guarantees every window overlaps the input, so the average never divides by zero.
 */
#include <string.h>

#include "dysan_nn_internal.h"

typedef struct {
    int32_t n, h, w, c, oh, ow;
    int32_t fh, fw, sh, sw, pt, pl, lo, hi;
} nn_pool_t;

static nn_pool_t nn_pool_geom(const nn_op_t *op) {
    const int32_t *p = op->p;
    nn_pool_t g;
    g.n = (int32_t)op->in[0].dims[0];
    g.h = (int32_t)op->in[0].dims[1];
    g.w = (int32_t)op->in[0].dims[2];
    g.c = (int32_t)op->in[0].dims[3];
    g.oh = (int32_t)op->out.dims[1];
    g.ow = (int32_t)op->out.dims[2];
    g.fh = p[DYSAN_NN_POOL_FILTER_H];
    g.fw = p[DYSAN_NN_POOL_FILTER_W];
    g.sh = p[DYSAN_NN_POOL_STRIDE_H];
    g.sw = p[DYSAN_NN_POOL_STRIDE_W];
    g.pt = p[DYSAN_NN_POOL_PAD_TOP];
    g.pl = p[DYSAN_NN_POOL_PAD_LEFT];
    g.lo = p[DYSAN_NN_POOL_ACT_MIN];
    g.hi = p[DYSAN_NN_POOL_ACT_MAX];
    return g;
}

static int32_t nn_max32(int32_t a, int32_t b) { return a > b ? a : b; }
static int32_t nn_min32(int32_t a, int32_t b) { return a < b ? a : b; }

/* Output pixel by output pixel: the window is clipped to the input once, then each channel sums (or takes
 * the max of) its taps, c int8s apart. */
static NN_ALWAYS_INLINE void nn_pool(const nn_op_t *op, uint8_t *arena, const int is_max) {
    const nn_pool_t g = nn_pool_geom(op);
    const int8_t *in = (const int8_t *)(arena + op->in[0].off);
    int8_t *o = (int8_t *)(arena + op->out.off);
    const int32_t row = g.w * g.c;
    for (int32_t b = 0; b < g.n; b++) {
        for (int32_t oy = 0; oy < g.oh; oy++) {
            const int32_t y0 = oy * g.sh - g.pt;
            const int32_t fy0 = nn_max32(0, -y0), ny = nn_min32(g.fh, g.h - y0) - fy0;
            for (int32_t ox = 0; ox < g.ow; ox++, o += g.c) {
                const int32_t x0 = ox * g.sw - g.pl;
                const int32_t fx0 = nn_max32(0, -x0), nx = nn_min32(g.fw, g.w - x0) - fx0;
                const int32_t count = ny * nx;
                const int8_t *first = in + ((size_t)b * g.h + (size_t)(y0 + fy0)) * row + (size_t)(x0 + fx0) * g.c;
                for (int32_t ch = 0; ch < g.c; ch++) {
                    int32_t acc = is_max ? -128 : 0;
                    const int8_t *py = first + ch;
                    for (int32_t fy = 0; fy < ny; fy++, py += row) {
                        const int8_t *px = py;
                        for (int32_t fx = 0; fx < nx; fx++, px += g.c) {
                            acc = is_max ? nn_max32(acc, *px) : acc + *px;
                        }
                    }
                    if (!is_max) { /* round to nearest, halves away from zero */
                        acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                    }
                    o[ch] = nn_clamp8(acc, g.lo, g.hi);
                }
            }
        }
    }
}

#if NN_DSP
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
static int nn_avg2(const nn_op_t *op, uint8_t *arena) {
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
#endif

void nn_average_pool(const nn_op_t *op, uint8_t *arena) {
#if NN_DSP
    if (nn_avg2(op, arena)) {
        return;
    }
#endif
    nn_pool(op, arena, 0);
}

void nn_max_pool(const nn_op_t *op, uint8_t *arena) { nn_pool(op, arena, 1); }

void nn_mean(const nn_op_t *op, uint8_t *arena) {
    const int32_t *p = op->p;
    const int32_t outer = p[DYSAN_NN_MEAN_OUTER], reduce = p[DYSAN_NN_MEAN_REDUCE], inner = p[DYSAN_NN_MEAN_INNER];
    const int32_t zp_in = p[DYSAN_NN_MEAN_INPUT_ZP], zp_out = p[DYSAN_NN_MEAN_OUTPUT_ZP];
    const nn_rq_t q = nn_rq_make(p[DYSAN_NN_MEAN_MULTIPLIER], p[DYSAN_NN_MEAN_SHIFT]);
    const int8_t *in = (const int8_t *)(arena + op->in[0].off);
    int8_t *out = (int8_t *)(arena + op->out.off);
    for (int32_t o = 0; o < outer; o++) {
        const int8_t *base = in + (size_t)o * reduce * inner;
        int32_t c = 0;
#if NN_DSP
        /* 4 channels per word: SXTAB16 sums even and odd bytes in int16 halves (|sum| <= 128 x reduce fits
         * while reduce < 256), then each sum goes through the same requantization. */
        for (; reduce < 256 && c + 4 <= inner; c += 4) {
            uint32_t even = 0, odd = 0;
            const int8_t *px = base + c;
            for (int32_t r = 0; r < reduce; r++, px += inner) {
                uint32_t v;
                memcpy(&v, px, 4);
                even = (uint32_t)__sxtab16((int16x2_t)even, (int8x4_t)v);
                odd = nn_sxtab16_ror8(odd, v);
            }
            const int32_t sums[4] = {(int16_t)even, (int16_t)odd, (int16_t)(even >> 16), (int16_t)(odd >> 16)};
            for (int32_t k = 0; k < 4; k++) {
                const int32_t shifted = (int32_t)((int64_t)sums[k] - (int64_t)zp_in * reduce);
                out[(size_t)o * inner + c + k] = nn_clamp8(nn_rq_apply(shifted, &q) + zp_out, -128, 127);
            }
        }
#endif
        for (; c < inner; c++) {
            int32_t sum = 0;
            for (int32_t r = 0; r < reduce; r++) {
                sum += base[(size_t)r * inner + c];
            }
            /* sum - zp * n in 64 bits, narrowed to int32 as the reference's accumulator type does */
            const int32_t shifted = (int32_t)((int64_t)sum - (int64_t)zp_in * reduce);
            out[(size_t)o * inner + c] = nn_clamp8(nn_rq_apply(shifted, &q) + zp_out, -128, 127);
        }
    }
}
