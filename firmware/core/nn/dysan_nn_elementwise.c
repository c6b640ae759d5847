/*
 * dysan_nn_elementwise.c -- ADD (reference_integer_ops AddElementwise: both inputs shifted left by 20 and
 * rescaled to twice the larger input scale, summed, then rescaled to the output), LEAKY_RELU
 * (reference_ops QuantizeLeakyRelu: one multiplier for x >= 0, one for x < 0) and QUANTIZE int8 -> int8
 * (reference_ops Requantize). All multipliers come precomputed in the image.
 */
#include "dysan_nn_internal.h"

/* Parameters are copied to locals: the int8 stores could alias them as far as the compiler knows. */
/* The rescaled inputs depend on one int8 each: both are tabulated (256 int32 each, in scratch) before the
 * elementwise loop, which then only rescales their sum. Same integers as computing them per element. */
void nn_add(const nn_op_t *op, uint8_t *arena) {
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

void nn_leaky_relu(const nn_op_t *op, uint8_t *arena) {
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

void nn_quantize(const nn_op_t *op, uint8_t *arena) {
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
