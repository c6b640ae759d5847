/*
 * dysan_nn_pool.c -- AVERAGE_POOL_2D, MAX_POOL_2D (reference_integer_ops AveragePool / MaxPool) and MEAN
 * (TFLM reduce: reference_ops::QuantizedMeanOrSum, with the 1/n factor already folded into the multiplier
 * by the exporter, as TFLM does at Eval).
 *
 * Pooling windows are clipped to the input (padding is not counted), exactly as in the reference; the
 * loader guarantees every window overlaps the input, so the average never divides by zero. The Cortex-M4 DSP
 * paths (2-tap averages, 4-channel MEAN sums) are in dysan_nn_pool_m4.c.
 */
#include "dysan_nn_pool.h"

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


static void nn_average_pool(const nn_op_t *op, uint8_t *arena) {
#if NN_DSP
    if (nn_m4_average_pool2(op, arena)) {
        return;
    }
#endif
    nn_pool(op, arena, 0);
}

static void nn_max_pool(const nn_op_t *op, uint8_t *arena) { nn_pool(op, arena, 1); }

static void nn_mean(const nn_op_t *op, uint8_t *arena) {
#if NN_DSP
    if (nn_m4_mean(op, arena)) {
        return;
    }
#endif
    const nn_mean_t g = nn_mean_geom(op, arena);
    for (int32_t o = 0; o < g.outer; o++) {
        for (int32_t c = 0; c < g.inner; c++) {
            g.out[(size_t)o * g.inner + c] = nn_mean_out(&g, nn_mean_sum(&g, o, c));
        }
    }
}

static int nn_validate_pool(const dysan_nn_model_t *m, nn_op_t *op) {
    (void)m;
    const int32_t *p = op->p;
    const nn_tensor_t *x = &op->in[0], *y = &op->out;
    for (int i = DYSAN_NN_POOL_FILTER_H; i <= DYSAN_NN_POOL_STRIDE_W; i++) {
        if (p[i] < 1 || p[i] > (int32_t)NN_MAX_DIM) {
            return DYSAN_NN_ERR_PARAM;
        }
    }
    if (!nn_check_act(p[DYSAN_NN_POOL_ACT_MIN], p[DYSAN_NN_POOL_ACT_MAX])) {
        return DYSAN_NN_ERR_PARAM;
    }
    if (x->rank != 4 || y->rank != 4 || x->dims[0] != y->dims[0] || x->dims[3] != y->dims[3]) {
        return DYSAN_NN_ERR_SHAPE;
    }
    /* Every window must overlap the input (TFLM fails on an empty one): the first starts at -pad, the
     * last at (out - 1) * stride - pad. */
    const int32_t pt = p[DYSAN_NN_POOL_PAD_TOP], pl = p[DYSAN_NN_POOL_PAD_LEFT];
    if (pt < 0 || pl < 0 || pt >= p[DYSAN_NN_POOL_FILTER_H] || pl >= p[DYSAN_NN_POOL_FILTER_W] ||
        (int64_t)(y->dims[1] - 1) * p[DYSAN_NN_POOL_STRIDE_H] - pt >= (int64_t)x->dims[1] ||
        (int64_t)(y->dims[2] - 1) * p[DYSAN_NN_POOL_STRIDE_W] - pl >= (int64_t)x->dims[2]) {
        return DYSAN_NN_ERR_SHAPE;
    }
    return DYSAN_NN_OK;
}

static int nn_validate_mean(const dysan_nn_model_t *m, nn_op_t *op) {
    (void)m;
    const int32_t *p = op->p;
    const int32_t outer = p[DYSAN_NN_MEAN_OUTER], reduce = p[DYSAN_NN_MEAN_REDUCE], inner = p[DYSAN_NN_MEAN_INNER];
    if (outer < 1 || reduce < 1 || inner < 1 || reduce >= (1 << 23) || !nn_is_zp(p[DYSAN_NN_MEAN_INPUT_ZP]) ||
        !nn_is_zp(p[DYSAN_NN_MEAN_OUTPUT_ZP])) {
        return DYSAN_NN_ERR_PARAM;
    }
    if (!nn_check_mult(p[DYSAN_NN_MEAN_MULTIPLIER], p[DYSAN_NN_MEAN_SHIFT], -31, 30)) {
        return DYSAN_NN_ERR_PARAM;
    }
    if ((uint64_t)outer * (uint64_t)reduce * (uint64_t)inner != op->in[0].nbytes ||
        (uint64_t)outer * (uint64_t)inner != op->out.nbytes) {
        return DYSAN_NN_ERR_SHAPE;
    }
    return DYSAN_NN_OK;
}

const nn_op_reg_t nn_reg_average_pool_2d = {DYSAN_NN_KIND_AVERAGE_POOL_2D, 1, DYSAN_NN_POOL_NPARAMS, 0,
                                            nn_validate_pool, nn_average_pool};
const nn_op_reg_t nn_reg_max_pool_2d = {DYSAN_NN_KIND_MAX_POOL_2D, 1, DYSAN_NN_POOL_NPARAMS, 0, nn_validate_pool,
                                        nn_max_pool};
const nn_op_reg_t nn_reg_mean = {DYSAN_NN_KIND_MEAN, 1, DYSAN_NN_MEAN_NPARAMS, 0, nn_validate_mean, nn_mean};
