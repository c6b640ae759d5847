/*
 * dysan_nn_elementwise_m4.c -- the Cortex-M4 (DSP extension) path of ADD; the portable kernels, validation
 * and registrations are in dysan_nn_elementwise.c. Same outputs byte for byte.
 */
#include "dysan_nn_internal.h"

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
int nn_m4_add(const nn_op_t *op, uint8_t *arena) {
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
#endif /* NN_DSP */
