/*
 * dysan_nn_fc_m4.c -- the Cortex-M4 (DSP extension) path of FULLY_CONNECTED (the portable kernel, its
 * validation and registration are in dysan_nn_fc.c). Same outputs byte for byte.
 *
 * The input row is widened once into int16 pairs in SXTB16 order ({x0,x2},{x1,x3} per 4 values, zero-padded
 * to the weight row), so each weight word needs only its two SXTB16 to feed two SMLAD. ACC_BOUNDED ops run 4
 * output channels per asm block (nn_fc4_*: dot products and requantization in registers); others, and rows
 * whose shifts the blocks' arithmetic does not cover, take the same dot products with TFLM's general
 * requantization in C.
 */
#include "dysan_nn_internal.h"

#if NN_DSP

#include <string.h>

static inline int32_t nn_fc_ld32(const uint8_t *p) { /* one LDR (blobs are 4-byte aligned) */
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
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

/* ---- the bounded path: 4 channels per call, dot product and requantization in one asm block ---------------
 *
 * For ACC_BOUNDED ops (|acc| < 2^30) each output is, with K = (1 + 2 zp) << (right - 1):
 *   SSAT8(((SMMLAR(2 acc, mult, K) + (acc < 0 ? -1 : 0)) >> (right - 1)) >> 1), then max(., act_min)
 * (the conv fast path's arithmetic, derived in dysan_nn_conv_m4.c; `>> right` split so that the last bit
 * rides in SSAT's shift and no RSB is needed). The form holds for right in [1, 23]; the block ORs every
 * right - 1 into `check` and the caller redoes the row with TFLM's general arithmetic when that OR exceeds
 * 15 (right > 16 somewhere, or a left shift), so the per-output cost of the range check is one ORR.
 * Variants: with or without FIX (the sign term; not needed when output_zp <= act_min: a negative accumulator
 * then gives at most output_zp either way, and the clamp makes both act_min -- the ReLU layers of the device
 * family, quantized with output_zp = act_min = -128), with or without CLAMP (act_min > -128). act_max < 127
 * is applied by the caller afterwards. */
typedef struct {
    const int8_t *w;      /* 0: weight row of slot 0 (slot 1: w + row) */
    const int8_t *w2;     /* 4: weight row of slot 2 (slot 3: w2 + row) */
    int32_t row;          /* 8: bytes between slots 0 and 1, 2 and 3 */
    const uint32_t *x;    /* 12: the widened input row */
    int32_t n4;           /* 16: groups of 4 inputs (>= 1) */
    const int32_t *bias;  /* 20: 4 int32, slots 0..3 */
    const int32_t *mult;  /* 24: 4 int32 */
    const int32_t *shift; /* 28: 4 int32 */
    int8_t *out;          /* 32: 4 outputs, slots 0..3 */
    int32_t zp1;          /* 36: 1 + 2 output_zp */
    int32_t lo;           /* 40: act_min */
    uint32_t check;       /* 44: OR of every right - 1 */
} nn_fc4_t;

void nn_fc4_fix(nn_fc4_t *a);
void nn_fc4_fix_clamp(nn_fc4_t *a);
void nn_fc4_clamp(nn_fc4_t *a);
void nn_fc4_plain(nn_fc4_t *a);

/* clang-format off */
#define NN_FC4_DOT_ASM(acc, wreg, addr)                                                                       \
    "    ldr    r11, " addr "\n"                                                                              \
    "    sxtb16 r12, r11\n"                                                                                   \
    "    smlad  " acc ", r12, r9, " acc "\n"                                                                  \
    "    sxtb16 r12, r11, ror #8\n"                                                                           \
    "    smlad  " acc ", r12, r10, " acc "\n"
#define NN_FC4_OUT_ASM(acc, fix, clamp)                                                                       \
    "    ldr    r9, [r5], #4\n"                                                                               \
    "    ldr    r10, [r4], #4\n"                                                                              \
    "    mvn    r9, r9\n"                                                                                     \
    "    orr    r12, r12, r9\n"                                                                               \
    "    lsl    r11, r7, r9\n"                                                                                \
    "    add    " acc ", " acc ", " acc "\n"                                                                  \
    "    smmlar r11, " acc ", r10, r11\n"                                                                     \
    fix(acc)                                                                                                  \
    "    asr    r11, r11, r9\n"                                                                               \
    "    ssat   r11, #8, r11, asr #1\n"                                                                       \
    clamp                                                                                                     \
    "    strb   r11, [r6], #1\n"
#define NN_FC4_FIX(acc) "    add    r11, r11, " acc ", asr #31\n"
#define NN_FC4_NOFIX(acc) ""
#define NN_FC4_CLAMP "    cmp    r11, r8\n    it     lt\n    movlt  r11, r8\n"
#define NN_FC4_ASM(name, fix, clamp)                                                                          \
    NN_ASM_SECTION(name) NN_ASM_FUNC(name, "2") name ":\n"                                                    \
    "    push   {r4-r11, lr}\n"                                                                               \
    "    mov    lr, r0\n"                                                                                     \
    "    ldr    r4, [lr, #20]\n"                                                                              \
    "    ldm    r4, {r0-r3}\n"                                                                                \
    "    ldm    lr, {r4-r8}\n"                                                                                \
    "1:  ldrd   r9, r10, [r7], #8\n"                                                                          \
    NN_FC4_DOT_ASM("r1", "r4", "[r4, r6]")                                                                    \
    NN_FC4_DOT_ASM("r3", "r5", "[r5, r6]")                                                                    \
    NN_FC4_DOT_ASM("r2", "r5", "[r5], #4")                                                                    \
    NN_FC4_DOT_ASM("r0", "r4", "[r4], #4")                                                                    \
    "    subs   r8, r8, #1\n"                                                                                 \
    "    bne    1b\n"                                                                                         \
    "    add    r4, lr, #24\n"                                                                                \
    "    ldm    r4, {r4-r8, r12}\n"                                                                           \
    NN_FC4_OUT_ASM("r0", fix, clamp)                                                                          \
    NN_FC4_OUT_ASM("r1", fix, clamp)                                                                          \
    NN_FC4_OUT_ASM("r2", fix, clamp)                                                                          \
    NN_FC4_OUT_ASM("r3", fix, clamp)                                                                          \
    "    str    r12, [lr, #44]\n"                                                                             \
    "    pop    {r4-r11, pc}\n"                                                                               \
    NN_ASM_SIZE(name) NN_ASM_SECTION_END
__asm__(NN_FC4_ASM("nn_fc4_fix", NN_FC4_FIX, ""));
__asm__(NN_FC4_ASM("nn_fc4_fix_clamp", NN_FC4_FIX, NN_FC4_CLAMP));
__asm__(NN_FC4_ASM("nn_fc4_clamp", NN_FC4_NOFIX, NN_FC4_CLAMP));
__asm__(NN_FC4_ASM("nn_fc4_plain", NN_FC4_NOFIX, ""));
/* clang-format on */

/* One input row through the bounded blocks; returns 0 when a right shift is out of their range (the caller
 * then redoes the row in general arithmetic). Tails of 1-3 channels run as a block with rows repeated.
 * `x8`: the int8 input row when the caller skipped widening it (n_out == 2, depth a multiple of 4: with no
 * 4-channel block to share it, the widened copy costs more than widening each word where the 2-row loop reads
 * it), else NULL. */
static int nn_fc_row_bounded(const nn_op_t *op, void (*block)(nn_fc4_t *), const uint32_t *xs, const int8_t *x8,
                             int32_t row, int32_t n_out, int8_t *o, int32_t zp, int32_t lo) {
    const int8_t *weights = (const int8_t *)op->weights;
    const int32_t *bias = (const int32_t *)(const void *)op->bias; /* blobs are 4-byte aligned */
    const int32_t *mult = (const int32_t *)(const void *)op->mult;
    const int32_t *shift = (const int32_t *)(const void *)op->shift;
    nn_fc4_t a;
    a.row = row;
    a.x = xs;
    a.n4 = row / 4;
    a.zp1 = 2 * zp + 1;
    a.lo = lo;
    a.check = 0;
    int32_t c = 0;
    for (; c + 4 <= n_out; c += 4) {
        a.w = weights + (size_t)c * row;
        a.w2 = a.w + 2 * row;
        a.bias = bias + c;
        a.mult = mult + c;
        a.shift = shift + c;
        a.out = o + c;
        block(&a);
    }
    if (n_out - c == 2) { /* two channels left: a 2-row loop (cheaper than a 4-slot block with rows repeated) */
        const int8_t *wa = weights + (size_t)c * row, *wb = wa + row;
        int32_t acc[2] = {bias[c], bias[c + 1]};
        for (int32_t i = 0; i < row; i += 4) {
            const uint32_t ua = nn_fc_ld(wa + i), ub = nn_fc_ld(wb + i);
            uint32_t xe, xo;
            if (x8) {
                const uint32_t v = nn_fc_ld(x8 + i);
                xe = (uint32_t)__sxtb16(v);
                xo = nn_sxtb16_ror8(v);
            } else {
                xe = xs[i / 2];
                xo = xs[i / 2 + 1];
            }
            acc[0] = __smlad(__sxtb16(ua), xe, acc[0]);
            acc[0] = __smlad(nn_sxtb16_ror8(ua), xo, acc[0]);
            acc[1] = __smlad(__sxtb16(ub), xe, acc[1]);
            acc[1] = __smlad(nn_sxtb16_ror8(ub), xo, acc[1]);
        }
        for (int32_t k = 0; k < 2; k++) {
            const int32_t s = shift[c + k];
            const uint32_t rm1 = ~(uint32_t)s; /* right - 1 */
            int32_t h;
            __asm__("smmlar %0, %1, %2, %3"
                    : "=r"(h)
                    : "r"((uint32_t)acc[k] << 1), "r"(mult[c + k]), "r"((uint32_t)a.zp1 << (rm1 & 31u)));
            const int32_t t = (int32_t)((uint32_t)h - (acc[k] < 0 ? 1u : 0u)) >> (rm1 & 31u); /* as the block */
            const int32_t v = __ssat(t >> 1, 8);
            o[c + k] = (int8_t)(v < lo ? lo : v);
            a.check |= rm1;
        }
        c += 2;
    }
    if (c < n_out) {
        static const int8_t slot_ch[3][4] = {{0, 0, 0, 0}, {0, 1, 0, 1}, {0, 1, 1, 2}}; /* channel of each slot */
        static const int8_t pick[3][3] = {{0, 0, 0}, {0, 1, 1}, {0, 1, 3}};             /* slot of each channel */
        const int32_t left = n_out - c;
        const int8_t *sc = slot_ch[left - 1];
        int32_t b4[4], m4[4], s4[4];
        int8_t o4[4];
        for (int32_t k = 0; k < 4; k++) {
            b4[k] = bias[c + sc[k]];
            m4[k] = mult[c + sc[k]];
            s4[k] = shift[c + sc[k]];
        }
        a.w = weights + (size_t)c * row;
        a.w2 = a.w + (size_t)sc[2] * row;
        a.row = (sc[1] - sc[0]) * row; /* slot 1 - slot 0 == slot 3 - slot 2 */
        a.bias = b4;
        a.mult = m4;
        a.shift = s4;
        a.out = o4;
        block(&a);
        for (int32_t k = 0; k < left; k++) {
            o[c + k] = o4[pick[left - 1][k]];
        }
    }
    return a.check <= 15u;
}

/* Requantizes k accumulators of channels c.. into o[c..] (general arithmetic). */
static void nn_fc_outs(const nn_op_t *op, int32_t c, const int32_t *acc, const int8_t *pick, int32_t k, int8_t *o,
                       int32_t zp, int32_t lo, int32_t hi) {
    const int32_t *mult = (const int32_t *)(const void *)(op->mult + 4 * c);
    const int32_t *shift = (const int32_t *)(const void *)(op->shift + 4 * c);
    for (int32_t i = 0; i < k; i++) {
        o[c + i] = nn_clamp8(nn_mbqm(acc[pick ? pick[i] : i], mult[i], shift[i]) + zp, lo, hi);
    }
}

/* The general path (unbounded ops, or shifts out of the bounded form's range): the same 4-row dot products,
 * TFLM's arithmetic. */
NN_NOINLINE static void nn_fc_row(const nn_op_t *op, const uint32_t *xs, int32_t row, int32_t n_out, int8_t *o, int32_t zp,
                      int32_t lo, int32_t hi) {
    const int8_t *weights = (const int8_t *)op->weights;
    int32_t c = 0;
    for (; c + 4 <= n_out; c += 4) {
        const int8_t *w = weights + (size_t)c * row;
        int32_t acc[4];
        memcpy(acc, op->bias + 4 * c, sizeof acc);
        nn_fc_dot4(w, w + 2 * row, row, xs, row / 4, acc);
        nn_fc_outs(op, c, acc, NULL, 4, o, zp, lo, hi);
    }
    if (c < n_out) { /* 1 to 3 channels left: the same 4-row block with rows repeated (results dropped) */
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
        nn_fc_outs(op, c, acc, pick[left - 1], left, o, zp, lo, hi);
    }
}

/* The input row into int16 pairs in SXTB16 order ({x0, x2}, {x1, x3} per 4 values), zero-padded to `row`. */
NN_NOINLINE static void nn_fc_widen(uint32_t *xs, const int8_t *x, int32_t depth, int32_t row) {
    const int32_t whole = depth & ~3;
    for (int32_t i = 0; i < whole; i += 4, xs += 2) {
        const uint32_t v = nn_fc_ld(x + i);
        xs[0] = (uint32_t)__sxtb16(v);
        xs[1] = nn_sxtb16_ror8(v);
    }
    for (int32_t i = whole; i < row; i += 4, xs += 2) { /* the tail */
        uint8_t b4[4] = {0, 0, 0, 0};
        memcpy(b4, x + i, (size_t)(depth > i ? depth - i : 0));
        uint32_t v;
        memcpy(&v, b4, sizeof v);
        xs[0] = (uint32_t)__sxtb16(v);
        xs[1] = nn_sxtb16_ror8(v);
    }
}

void nn_m4_fully_connected(const nn_op_t *op, uint8_t *arena) {
    const nn_fc_shape_t f = nn_fc_shape(op, arena);
    const int32_t depth = f.depth, n_out = f.n_out, row = f.row, rows = f.rows, zp = f.zp, lo = f.lo, hi = f.hi;
    const int8_t *in = f.in;
    int8_t *out = f.out;
    uint32_t *xs = (uint32_t *)(void *)(arena + op->scratch_off); /* row / 2 words */
    void (*block)(nn_fc4_t *) = NULL;
    if (op->flags & DYSAN_NN_OPF_ACC_BOUNDED) {
        static void (*const variant[2][2])(nn_fc4_t *) = {{nn_fc4_fix, nn_fc4_fix_clamp}, {nn_fc4_plain, nn_fc4_clamp}};
        block = variant[zp <= lo][lo > -128];
    }
    const int direct = block && n_out == 2 && depth == row; /* see nn_fc_row_bounded's x8 */
    for (int32_t r = 0; r < rows; r++) {
        const int8_t *x = in + (size_t)r * depth;
        int8_t *o = out + (size_t)r * n_out;
        if (!direct) {
            nn_fc_widen(xs, x, depth, row);
        }
        if (!block || !nn_fc_row_bounded(op, block, xs, direct ? x : NULL, row, n_out, o, zp, lo)) {
            if (direct) {
                nn_fc_widen(xs, x, depth, row);
            }
            nn_fc_row(op, xs, row, n_out, o, zp, lo, hi);
        } else if (hi < 127) {
            for (int32_t c = 0; c < n_out; c++) {
                o[c] = o[c] > hi ? (int8_t)hi : o[c];
            }
        }
    }
}

#endif /* NN_DSP */
