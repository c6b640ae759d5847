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
#if NN_DSP
/* MultiplyByQuantizedMultiplierSmallerThanOneExp(x, mult, -right) for |x| < 2^30 and right >= 1, from
 * x2 = 2 x: SMMLAR(x2, mult, 2^(right-1)) = 2^(right-1) + SaturatingRoundingDoublingHighMul(x, mult), then
 * RoundingDivideByPOT with x's sign for the high product's (see the convolutions' fast path). */
static inline int32_t nn_rq2(int32_t x2, int32_t mult, int32_t round, int32_t right) {
    int32_t h;
    __asm__("smmlar %0, %1, %2, %3" : "=r"(h) : "r"(x2), "r"(mult), "r"(round));
    return (int32_t)((uint32_t)h + (uint32_t)(x2 >> 31)) >> right;
}

/* The same for right == 0 (no division): the high product alone. */
static inline int32_t nn_rq2_any(int32_t x2, int32_t mult, int32_t right) {
    if (right == 0) {
        int32_t h;
        __asm__("smmulr %0, %1, %2" : "=r"(h) : "r"(x2), "r"(mult));
        return h;
    }
    return nn_rq2(x2, mult, (int32_t)(UINT32_C(1) << (right - 1)), right);
}

/* ADD with left_shift <= 21, input shifts in [-30, 0] and the output shift in [-30, -1] (int8 ADD as the
 * converter emits it: 20, and multipliers below one): the rescaled inputs |(offset + v) << left_shift| <=
 * 2^29 double without wrap, each rescaled value is below 2^29 and their sum below 2^30. Tables of both
 * doubled rescaled inputs, interleaved, then per element two loads, an add and one requantization. */
static int nn_add_fast(const nn_op_t *op, uint8_t *arena) {
    const int32_t *p = op->p;
    const int32_t ls = p[DYSAN_NN_ADD_LEFT_SHIFT];
    const int32_t ra = -p[DYSAN_NN_ADD_INPUT1_SHIFT], rb = -p[DYSAN_NN_ADD_INPUT2_SHIFT];
    const int32_t ro = -p[DYSAN_NN_ADD_OUTPUT_SHIFT];
    if (ls > 21 || ra < 0 || ra > 30 || rb < 0 || rb > 30 || ro < 1 || ro > 30) {
        return 0;
    }
    const int8_t *a = (const int8_t *)(arena + op->in[0].off);
    const int8_t *b = (const int8_t *)(arena + op->in[1].off);
    int8_t *out = (int8_t *)(arena + op->out.off);
    int32_t *t = (int32_t *)(void *)(arena + op->scratch_off); /* {2 ra(v), 2 rb(v)} for v = -128..127 */
    const int32_t ma = p[DYSAN_NN_ADD_INPUT1_MULTIPLIER], mb = p[DYSAN_NN_ADD_INPUT2_MULTIPLIER];
    const uint32_t step = UINT32_C(2) << ls;
    uint32_t xa = (uint32_t)(p[DYSAN_NN_ADD_INPUT1_OFFSET] - 128) * step;
    uint32_t xb = (uint32_t)(p[DYSAN_NN_ADD_INPUT2_OFFSET] - 128) * step;
    for (int32_t *e = t + 512; t != e; t += 2, xa += step, xb += step) {
        t[0] = (int32_t)(2u * (uint32_t)nn_rq2_any((int32_t)xa, ma, ra));
        t[1] = (int32_t)(2u * (uint32_t)nn_rq2_any((int32_t)xb, mb, rb));
    }
    t -= 512 - 256; /* t[2 v], t[2 v + 1] for v = -128..127 */
    const int32_t mo = p[DYSAN_NN_ADD_OUTPUT_MULTIPLIER], ko = (int32_t)(UINT32_C(1) << (ro - 1));
    const int32_t zp = p[DYSAN_NN_ADD_OUTPUT_OFFSET], lo = p[DYSAN_NN_ADD_ACT_MIN], hi = p[DYSAN_NN_ADD_ACT_MAX];
    const uint32_t n = op->out.nbytes;
    if (lo == -128 && hi == 127) {
        for (uint32_t i = 0; i < n; i++) {
            const int32_t sum2 = t[2 * a[i]] + t[2 * b[i] + 1];
            out[i] = (int8_t)__ssat(nn_rq2(sum2, mo, ko, ro) + zp, 8);
        }
    } else {
        for (uint32_t i = 0; i < n; i++) {
            const int32_t sum2 = t[2 * a[i]] + t[2 * b[i] + 1];
            out[i] = nn_clamp8(nn_rq2(sum2, mo, ko, ro) + zp, lo, hi);
        }
    }
    return 1;
}
#endif

void nn_add(const nn_op_t *op, uint8_t *arena) {
#if NN_DSP
    if (nn_add_fast(op, arena)) {
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
