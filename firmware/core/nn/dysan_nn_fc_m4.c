/*
 * dysan_nn_fc_m4.c -- the Cortex-M4 (DSP extension) path of FULLY_CONNECTED (the portable kernel, its
 * validation and registration are in dysan_nn_fc.c). Same outputs byte for byte.
 *
 * The input row is widened once into int16 pairs in SXTB16 order ({x0,x2},{x1,x3} per 4 values, zero-padded
 * to the weight row), so each weight word needs only its two SXTB16 to feed two SMLAD.
 */
#include "dysan_nn_internal.h"

#if NN_DSP

#include <string.h>

static inline int32_t nn_fc_ld32(const uint8_t *p) { /* one LDR (blobs are 4-byte aligned) */
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* Output c from its accumulator: the bounded SMMULR form (ACC_BOUNDED ops whose shifts are all right shifts,
 * checked once per invocation: `bounded`), else TFLM's general arithmetic. */
static inline int8_t nn_fc_out(const nn_op_t *op, int bounded, int32_t c, int32_t acc, int32_t zp, int32_t lo,
                               int32_t hi) {
    const int32_t mult = nn_fc_ld32(op->mult + 4 * c), shift = nn_fc_ld32(op->shift + 4 * c);
    int32_t v;
    if (bounded) {
        const int32_t right = -shift;
        v = nn_rq_apply_bounded(acc, mult, right, UINT32_C(1) << (right - 1)) + zp;
    } else {
        v = nn_mbqm(acc, mult, shift) + zp;
    }
    return (int8_t)(v < lo ? lo : (v > hi ? hi : v));
}

static inline uint32_t nn_fc_ld(const int8_t *p) { /* rows and blobs are 4-byte aligned, LDR takes any */
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* acc_k += dot(weights row k, x) for the 4 rows at w, w + row, w2, w2 + row, over n4 groups of 4
 * inputs (x widened in SXTB16 order, 2 words per group): per group one LDRD of x, 4 LDR of weights, 8 SXTB16,
 * 8 SMLAD. In asm because GCC spills this block (it needs 13 registers). */
NN_NOINLINE static void nn_fc_dot4(const int8_t *w, const int8_t *w2, int32_t row, const uint32_t *x, int32_t n4,
                                   int32_t *acc) {
    int32_t r0 = acc[0], r1 = acc[1], r2 = acc[2], r3 = acc[3]; /* rows w, w + row, w2, w2 + row */
    uint32_t xe, xo, u, t;
    __asm__ volatile("1:\n\t"
                     "ldrd   %[xe], %[xo], [%[x]], #8\n\t"
                     "ldr    %[u], [%[w], %[row]]\n\t"
                     "sxtb16 %[t], %[u]\n\t"
                     "smlad  %[r1], %[t], %[xe], %[r1]\n\t"
                     "sxtb16 %[t], %[u], ror #8\n\t"
                     "smlad  %[r1], %[t], %[xo], %[r1]\n\t"
                     "ldr    %[u], [%[w2], %[row]]\n\t"
                     "sxtb16 %[t], %[u]\n\t"
                     "smlad  %[r3], %[t], %[xe], %[r3]\n\t"
                     "sxtb16 %[t], %[u], ror #8\n\t"
                     "smlad  %[r3], %[t], %[xo], %[r3]\n\t"
                     "ldr    %[u], [%[w2]], #4\n\t"
                     "sxtb16 %[t], %[u]\n\t"
                     "smlad  %[r2], %[t], %[xe], %[r2]\n\t"
                     "sxtb16 %[t], %[u], ror #8\n\t"
                     "smlad  %[r2], %[t], %[xo], %[r2]\n\t"
                     "ldr    %[u], [%[w]], #4\n\t"
                     "sxtb16 %[t], %[u]\n\t"
                     "smlad  %[r0], %[t], %[xe], %[r0]\n\t"
                     "sxtb16 %[t], %[u], ror #8\n\t"
                     "smlad  %[r0], %[t], %[xo], %[r0]\n\t"
                     "subs   %[n], %[n], #1\n\t"
                     "bne    1b\n\t"
                     : [r0] "+r"(r0), [r1] "+r"(r1), [r2] "+r"(r2), [r3] "+r"(r3), [w] "+r"(w), [w2] "+r"(w2),
                       [x] "+r"(x), [n] "+r"(n4), [xe] "=&r"(xe), [xo] "=&r"(xo), [u] "=&r"(u), [t] "=&r"(t)
                     : [row] "r"(row)
                     : "cc", "memory");
    acc[0] = r0;
    acc[1] = r1;
    acc[2] = r2;
    acc[3] = r3;
}

/* Four output channels over one widened input row: per 4 inputs one LDRD of the row, four weight words,
 * eight SXTB16 and eight SMLAD (16 MACs); the row is read once per four channels instead of once per two. */
static void nn_fc_row(const nn_op_t *op, int bounded, const uint32_t *xs, int32_t row, int32_t n_out, int8_t *o,
                      int32_t zp, int32_t lo, int32_t hi) {
    const int8_t *weights = (const int8_t *)op->weights;
    int32_t c = 0;
    for (; c + 4 <= n_out; c += 4) {
        const int8_t *w = weights + (size_t)c * row;
        int32_t acc[4];
        memcpy(acc, op->bias + 4 * c, sizeof acc);
        nn_fc_dot4(w, w + 2 * row, row, xs, row / 4, acc);
        for (int32_t k = 0; k < 4; k++) {
            o[c + k] = nn_fc_out(op, bounded, c + k, acc[k], zp, lo, hi);
        }
    }
    if (n_out - c == 2) { /* two channels left: a 2-row loop (cheaper than a 4-row block with 2 rows repeated) */
        const int8_t *wa = weights + (size_t)c * row, *wb = wa + row;
        int32_t a = nn_fc_ld32(op->bias + 4 * c), b = nn_fc_ld32(op->bias + 4 * c + 4);
        for (int32_t i = 0; i < row; i += 4) {
            const uint32_t ua = nn_fc_ld(wa + i), ub = nn_fc_ld(wb + i), xe = xs[i / 2], xo = xs[i / 2 + 1];
            a = __smlad(__sxtb16(ua), xe, a);
            a = __smlad(nn_sxtb16_ror8(ua), xo, a);
            b = __smlad(__sxtb16(ub), xe, b);
            b = __smlad(nn_sxtb16_ror8(ub), xo, b);
        }
        o[c] = nn_fc_out(op, bounded, c, a, zp, lo, hi);
        o[c + 1] = nn_fc_out(op, bounded, c + 1, b, zp, lo, hi);
        c += 2;
    }
    if (c < n_out) { /* 1 or 3 channels left: the same 4-row block with rows repeated (results dropped) */
        const int32_t left = n_out - c;
        const int8_t *w = weights + (size_t)c * row;
        static const int8_t pick[3][3] = {{0, 0, 0}, {0, 1, 1}, {0, 1, 3}}; /* block slot of each channel */
        static const int8_t step[3] = {0, 1, 1};                             /* second row: w + step x row */
        const int8_t *w2 = left == 3 ? w + row : w;
        const int32_t stride = step[left - 1] * row;
        int32_t acc[4];
        acc[0] = nn_fc_ld32(op->bias + 4 * c);
        acc[1] = nn_fc_ld32(op->bias + 4 * (c + (left > 1)));
        acc[2] = nn_fc_ld32(op->bias + 4 * (c + (left > 2)));
        acc[3] = nn_fc_ld32(op->bias + 4 * (c + left - 1));
        nn_fc_dot4(w, w2, stride, xs, row / 4, acc);
        for (int32_t k = 0; k < left; k++) {
            o[c + k] = nn_fc_out(op, bounded, c + k, acc[pick[left - 1][k]], zp, lo, hi);
        }
    }
}

void nn_m4_fully_connected(const nn_op_t *op, uint8_t *arena) {
    const int32_t *p = op->p;
    const int32_t depth = p[DYSAN_NN_CONV_IN_CHANNELS];
    const int32_t n_out = p[DYSAN_NN_CONV_OUT_CHANNELS];
    const int32_t row = p[DYSAN_NN_CONV_WEIGHTS_ROW];
    const int32_t rows = (int32_t)(op->in[0].nbytes / (uint32_t)depth);
    const int32_t zp = p[DYSAN_NN_CONV_OUTPUT_ZP], lo = p[DYSAN_NN_CONV_ACT_MIN], hi = p[DYSAN_NN_CONV_ACT_MAX];
    const int8_t *in = (const int8_t *)(arena + op->in[0].off);
    int8_t *out = (int8_t *)(arena + op->out.off);
    uint32_t *xs = (uint32_t *)(void *)(arena + op->scratch_off); /* row / 2 words */
    int bounded = (op->flags & DYSAN_NN_OPF_ACC_BOUNDED) != 0;
    for (int32_t c = 0; bounded && c < n_out; c++) {
        bounded = nn_fc_ld32(op->shift + 4 * c) <= -1;
    }
    for (int32_t r = 0; r < rows; r++) {
        const int8_t *x = in + (size_t)r * depth;
        const int32_t whole = depth & ~3;
        for (int32_t i = 0; i < whole; i += 4) { /* SXTB16 order: {x0, x2}, {x1, x3} */
            const uint32_t v = nn_fc_ld(x + i);
            xs[i / 2] = (uint32_t)__sxtb16(v);
            xs[i / 2 + 1] = nn_sxtb16_ror8(v);
        }
        for (int32_t i = whole; i < row; i += 4) { /* the tail, zero-padded to the weight row */
            uint8_t b4[4] = {0, 0, 0, 0};
            memcpy(b4, x + i, (size_t)(depth > i ? depth - i : 0));
            uint32_t v;
            memcpy(&v, b4, sizeof v);
            xs[i / 2] = (uint32_t)__sxtb16(v);
            xs[i / 2 + 1] = nn_sxtb16_ror8(v);
        }
        nn_fc_row(op, bounded, xs, row, n_out, out + (size_t)r * n_out, zp, lo, hi);
    }
}

#endif /* NN_DSP */
