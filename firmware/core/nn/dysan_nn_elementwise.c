/*
 * dysan_nn_elementwise.c -- ADD (reference_integer_ops AddElementwise: both inputs shifted left by 20 and
 * rescaled to twice the larger input scale, summed, then rescaled to the output), LEAKY_RELU
 * (reference_ops QuantizeLeakyRelu: one multiplier for x >= 0, one for x < 0) and QUANTIZE int8 -> int8
 * (reference_ops Requantize). All multipliers come precomputed in the image.
 */
#include "dysan_nn_internal.h"

/* Parameters are copied to locals: the int8 stores could alias them as far as the compiler knows.
 * The rescaled inputs depend on one int8 each: both are tabulated (256 int32 each, in scratch) before the
 * elementwise loop, which then only rescales their sum. Same integers as computing them per element. The
 * Cortex-M4 DSP path of ADD is in dysan_nn_elementwise_m4.c. */

static void nn_add(const nn_op_t *op, uint8_t *arena) {
#if NN_DSP
    if (nn_m4_add(op, arena)) {
        return;
    }
#endif
    const int32_t *p = op->p;
    const int8_t *a = (const int8_t *)(arena + op->in[0].off);
    const int8_t *b = (const int8_t *)(arena + op->in[1].off);
    int8_t *out = (int8_t *)(arena + op->out.off);
    int32_t *ta = (int32_t *)(void *)(arena + op->scratch_off), *tb = ta + 256;
    const int32_t ls = p[DYSAN_NN_ADD_LEFT_SHIFT];
    /* MultiplyByQuantizedMultiplierSmallerThanOneExp is nn_rq_apply with a shift <= 0 (validated). */
    const nn_rq_t qa = nn_rq_make(p[DYSAN_NN_ADD_INPUT1_MULTIPLIER], p[DYSAN_NN_ADD_INPUT1_SHIFT]);
    const nn_rq_t qb = nn_rq_make(p[DYSAN_NN_ADD_INPUT2_MULTIPLIER], p[DYSAN_NN_ADD_INPUT2_SHIFT]);
    for (int32_t v = -128; v < 128; v++) {
        ta[v + 128] = nn_rq_apply((p[DYSAN_NN_ADD_INPUT1_OFFSET] + v) * (1 << ls), &qa);
        tb[v + 128] = nn_rq_apply((p[DYSAN_NN_ADD_INPUT2_OFFSET] + v) * (1 << ls), &qb);
    }
    const nn_rq_t qo = nn_rq_make(p[DYSAN_NN_ADD_OUTPUT_MULTIPLIER], p[DYSAN_NN_ADD_OUTPUT_SHIFT]);
    const int32_t off_out = p[DYSAN_NN_ADD_OUTPUT_OFFSET], lo = p[DYSAN_NN_ADD_ACT_MIN], hi = p[DYSAN_NN_ADD_ACT_MAX];
    const uint32_t n = op->out.nbytes;
    for (uint32_t i = 0; i < n; i++) {
        out[i] = nn_clamp8(nn_rq_apply(ta[a[i] + 128] + tb[b[i] + 128], &qo) + off_out, lo, hi);
    }
}

static void nn_leaky_relu(const nn_op_t *op, uint8_t *arena) {
    const int32_t *p = op->p;
    const int8_t *in = (const int8_t *)(arena + op->in[0].off);
    int8_t *out = (int8_t *)(arena + op->out.off);
    const uint32_t n = op->out.nbytes;
    const int32_t zp_in = p[DYSAN_NN_LEAKY_RELU_INPUT_ZP], zp_out = p[DYSAN_NN_LEAKY_RELU_OUTPUT_ZP];
    const nn_rq_t q_id = nn_rq_make(p[DYSAN_NN_LEAKY_RELU_IDENTITY_MULTIPLIER], p[DYSAN_NN_LEAKY_RELU_IDENTITY_SHIFT]);
    const nn_rq_t q_alpha = nn_rq_make(p[DYSAN_NN_LEAKY_RELU_ALPHA_MULTIPLIER], p[DYSAN_NN_LEAKY_RELU_ALPHA_SHIFT]);
    for (uint32_t i = 0; i < n; i++) {
        const int32_t v = in[i] - zp_in;
        out[i] = nn_clamp8(zp_out + nn_rq_apply(v, v >= 0 ? &q_id : &q_alpha), -128, 127);
    }
}

static void nn_quantize(const nn_op_t *op, uint8_t *arena) {
    const int32_t *p = op->p;
    const int8_t *in = (const int8_t *)(arena + op->in[0].off);
    int8_t *out = (int8_t *)(arena + op->out.off);
    const uint32_t n = op->out.nbytes;
    const int32_t zp_in = p[DYSAN_NN_QUANTIZE_INPUT_ZP], zp_out = p[DYSAN_NN_QUANTIZE_OUTPUT_ZP];
    const nn_rq_t q = nn_rq_make(p[DYSAN_NN_QUANTIZE_MULTIPLIER], p[DYSAN_NN_QUANTIZE_SHIFT]);
    for (uint32_t i = 0; i < n; i++) {
        out[i] = nn_clamp8(nn_rq_apply(in[i] - zp_in, &q) + zp_out, -128, 127);
    }
}

static int nn_validate_add(const dysan_nn_model_t *m, nn_op_t *op) {
    (void)m;
    const int32_t *p = op->p;
    if (op->in[0].nbytes != op->out.nbytes || op->in[1].nbytes != op->out.nbytes) {
        return DYSAN_NN_ERR_SHAPE;
    }
    if (op->scratch_len < DYSAN_NN_ADD_SCRATCH) {
        return DYSAN_NN_ERR_ARENA;
    }
    if (p[DYSAN_NN_ADD_INPUT1_OFFSET] < -127 || p[DYSAN_NN_ADD_INPUT1_OFFSET] > 128 ||
        p[DYSAN_NN_ADD_INPUT2_OFFSET] < -127 || p[DYSAN_NN_ADD_INPUT2_OFFSET] > 128 ||
        !nn_is_zp(p[DYSAN_NN_ADD_OUTPUT_OFFSET]) || p[DYSAN_NN_ADD_LEFT_SHIFT] < 0 ||
        p[DYSAN_NN_ADD_LEFT_SHIFT] > 22 ||
        !nn_check_mult(p[DYSAN_NN_ADD_INPUT1_MULTIPLIER], p[DYSAN_NN_ADD_INPUT1_SHIFT], -31, 0) ||
        !nn_check_mult(p[DYSAN_NN_ADD_INPUT2_MULTIPLIER], p[DYSAN_NN_ADD_INPUT2_SHIFT], -31, 0) ||
        !nn_check_mult(p[DYSAN_NN_ADD_OUTPUT_MULTIPLIER], p[DYSAN_NN_ADD_OUTPUT_SHIFT], -31, 0) ||
        !nn_check_act(p[DYSAN_NN_ADD_ACT_MIN], p[DYSAN_NN_ADD_ACT_MAX])) {
        return DYSAN_NN_ERR_PARAM;
    }
    return DYSAN_NN_OK;
}

static int nn_validate_unary(const dysan_nn_model_t *m, nn_op_t *op) {
    (void)m;
    const int32_t *p = op->p;
    if (op->in[0].nbytes != op->out.nbytes) {
        return DYSAN_NN_ERR_SHAPE;
    }
    if (op->kind == DYSAN_NN_KIND_LEAKY_RELU) {
        if (!nn_is_zp(p[DYSAN_NN_LEAKY_RELU_INPUT_ZP]) || !nn_is_zp(p[DYSAN_NN_LEAKY_RELU_OUTPUT_ZP]) ||
            !nn_check_mult(p[DYSAN_NN_LEAKY_RELU_IDENTITY_MULTIPLIER], p[DYSAN_NN_LEAKY_RELU_IDENTITY_SHIFT], -31,
                           30) ||
            !nn_check_mult(p[DYSAN_NN_LEAKY_RELU_ALPHA_MULTIPLIER], p[DYSAN_NN_LEAKY_RELU_ALPHA_SHIFT], -31, 30)) {
            return DYSAN_NN_ERR_PARAM;
        }
    } else if (!nn_is_zp(p[DYSAN_NN_QUANTIZE_INPUT_ZP]) || !nn_is_zp(p[DYSAN_NN_QUANTIZE_OUTPUT_ZP]) ||
               !nn_check_mult(p[DYSAN_NN_QUANTIZE_MULTIPLIER], p[DYSAN_NN_QUANTIZE_SHIFT], -31, 30)) {
        return DYSAN_NN_ERR_PARAM;
    }
    return DYSAN_NN_OK;
}

const nn_op_reg_t nn_reg_add = {DYSAN_NN_KIND_ADD, 2, DYSAN_NN_ADD_NPARAMS, 0, nn_validate_add, nn_add};
const nn_op_reg_t nn_reg_leaky_relu = {DYSAN_NN_KIND_LEAKY_RELU, 1, DYSAN_NN_LEAKY_RELU_NPARAMS, 0, nn_validate_unary,
                                       nn_leaky_relu};
const nn_op_reg_t nn_reg_quantize = {DYSAN_NN_KIND_QUANTIZE, 1, DYSAN_NN_QUANTIZE_NPARAMS, 0, nn_validate_unary,
                                     nn_quantize};
