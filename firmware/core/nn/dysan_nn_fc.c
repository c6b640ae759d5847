/*
 * dysan_nn_fc.c -- FULLY_CONNECTED, bit-exact with TFLM's reference_integer_ops FullyConnected and
 * FullyConnectedPerChannel (per-tensor weights are stored as identical per-channel multipliers).
 *
 * input_offset * sum(weights) is folded into the bias by the exporter, so each output is
 * bias' + dot(weights row, input row): one int8 x int8 dot product over contiguous memory. Rows are
 * zero-padded to a multiple of 4 bytes in the image.
 *
 * DSP path: the input row is widened once into int16 pairs in SXTB16 order ({x0,x2},{x1,x3} per 4 values,
 * zero-padded to the weight row), so each weight word needs only its two SXTB16 to feed two SMLAD. With a
 * single input row every weight is used once: at best ~0.75 MAC per instruction (each weight byte must be
 * loaded and sign-extended), which is why the convolutions, not this kernel, carry the MAC budget.
 */
#include <string.h>

#include "dysan_nn_internal.h"

static int8_t nn_fc_out(const nn_op_t *op, int32_t c, int32_t acc, int32_t zp, int32_t lo, int32_t hi) {
    const int32_t mult = nn_rd_i32(op->mult + 4 * c), shift = nn_rd_i32(op->shift + 4 * c);
#if NN_DSP
    if ((op->flags & DYSAN_NN_OPF_ACC_BOUNDED) && shift <= -1) {
        return nn_clamp8(nn_rq_apply_bounded(acc, mult, -shift, UINT32_C(1) << (-shift - 1)) + zp, lo, hi);
    }
#endif
    return nn_clamp8(nn_mbqm(acc, mult, shift) + zp, lo, hi);
}

void nn_fully_connected(const nn_op_t *op, uint8_t *arena) {
    const int32_t *p = op->p;
    const int32_t depth = p[DYSAN_NN_CONV_IN_CHANNELS];
    const int32_t n_out = p[DYSAN_NN_CONV_OUT_CHANNELS];
    const int32_t row = p[DYSAN_NN_CONV_WEIGHTS_ROW];
    const int32_t rows = (int32_t)(op->in[0].nbytes / (uint32_t)depth);
    const int32_t zp = p[DYSAN_NN_CONV_OUTPUT_ZP], lo = p[DYSAN_NN_CONV_ACT_MIN], hi = p[DYSAN_NN_CONV_ACT_MAX];
    const int8_t *in = (const int8_t *)(arena + op->in[0].off);
    int8_t *out = (int8_t *)(arena + op->out.off);
    const int8_t *weights = (const int8_t *)op->weights;
#if NN_DSP
    uint32_t *xs = (uint32_t *)(void *)(arena + op->scratch_off); /* row / 2 words */
    for (int32_t r = 0; r < rows; r++) {
        const int8_t *x = in + (size_t)r * depth;
        for (int32_t i = 0; i < row; i += 4) {
            uint8_t b4[4] = {0, 0, 0, 0};
            const int32_t n = depth - i < 4 ? (depth - i > 0 ? depth - i : 0) : 4;
            memcpy(b4, x + i, (size_t)n);
            uint32_t v;
            memcpy(&v, b4, sizeof v);
            xs[i / 2] = (uint32_t)__sxtb16(v);
            xs[i / 2 + 1] = (uint32_t)nn_sxtb16_ror8(v);
        }
        int8_t *o = out + (size_t)r * n_out;
        int32_t c = 0;
        for (; c + 2 <= n_out; c += 2) {
            const int8_t *wa = weights + (size_t)c * row, *wb = wa + row;
            int32_t a = nn_rd_i32(op->bias + 4 * c), b = nn_rd_i32(op->bias + 4 * (c + 1));
            for (int32_t i = 0; i < row; i += 4) {
                uint32_t ua, ub;
                memcpy(&ua, wa + i, sizeof ua);
                memcpy(&ub, wb + i, sizeof ub);
                const uint32_t xe = xs[i / 2], xo = xs[i / 2 + 1];
                a = __smlad(__sxtb16(ua), xe, a);
                a = __smlad(nn_sxtb16_ror8(ua), xo, a);
                b = __smlad(__sxtb16(ub), xe, b);
                b = __smlad(nn_sxtb16_ror8(ub), xo, b);
            }
            o[c] = nn_fc_out(op, c, a, zp, lo, hi);
            o[c + 1] = nn_fc_out(op, c + 1, b, zp, lo, hi);
        }
        if (c < n_out) {
            const int8_t *wa = weights + (size_t)c * row;
            int32_t a = nn_rd_i32(op->bias + 4 * c);
            for (int32_t i = 0; i < row; i += 4) {
                uint32_t ua;
                memcpy(&ua, wa + i, sizeof ua);
                a = __smlad(__sxtb16(ua), xs[i / 2], a);
                a = __smlad(nn_sxtb16_ror8(ua), xs[i / 2 + 1], a);
            }
            o[c] = nn_fc_out(op, c, a, zp, lo, hi);
        }
    }
#else
    for (int32_t r = 0; r < rows; r++) {
        const int8_t *x = in + (size_t)r * depth;
        int8_t *o = out + (size_t)r * n_out;
        for (int32_t c = 0; c < n_out; c++) {
            const int8_t *w = weights + (size_t)c * row;
            uint32_t acc = nn_rd_u32(op->bias + 4 * c); /* unsigned: wraps like the int32 accumulator */
            for (int32_t i = 0; i < depth; i++) {
                acc += (uint32_t)((int32_t)w[i] * (int32_t)x[i]);
            }
            o[c] = nn_fc_out(op, c, (int32_t)acc, zp, lo, hi);
        }
    }
#endif
}
