/*
 * dysan_nn_internal.h -- what the loader shares with the kernels: decoded ops, byte readers, and TFLM's
 * fixed-point requantization (tensorflow/lite/kernels/internal/common.h: the default, double-rounding
 * MultiplyByQuantizedMultiplier), written so that no accepted image can reach undefined behaviour.
 */
#ifndef DYSAN_NN_INTERNAL_H
#define DYSAN_NN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "dysan_le.h"
#include "dysan_nn.h"
#include "dysan_nn_format.h"

#if defined(__ARM_FEATURE_DSP) && !defined(DYSAN_NN_NO_DSP)
#define NN_DSP 1
#else
#define NN_DSP 0
#endif

/* Inlining hints (GCC / Clang, the compilers of every port); plain C elsewhere. */
#if defined(__GNUC__)
#define NN_NOINLINE __attribute__((noinline))
#define NN_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define NN_NOINLINE
#define NN_ALWAYS_INLINE inline
#endif

#if NN_DSP
#include <arm_acle.h>

/* SXTB16 of x rotated right by 8 (bytes 1 and 3 sign-extended to two int16). One instruction; GCC's
 * arm_acle.h has no __ror and does not fold a C rotate into SXTB16's rotation, hence the asm there. */
static inline uint32_t nn_sxtb16_ror8(uint32_t x) {
#if defined(__clang__)
    return (uint32_t)__sxtb16(__ror(x, 8));
#else
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
#endif
}

/* acc + SXTB16(x ror 8) (halfword adds): bytes 1 and 3 added to the two int16 halves of acc. */
static inline uint32_t nn_sxtab16_ror8(uint32_t acc, uint32_t x) {
    uint32_t r;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(acc), "r"(x));
    return r;
}
#endif

/* An activation tensor of the op being run. */
typedef struct {
    uint32_t off, nbytes;
    uint32_t rank;
    uint32_t dims[DYSAN_NN_MAX_RANK];
    int32_t zp;
} nn_tensor_t;

struct nn_op_reg;

/* One op, decoded and validated from its record and params block. */
typedef struct {
    const struct nn_op_reg *reg; /* its kernel's registration */
    uint32_t kind;
    uint32_t flags; /* DYSAN_NN_OPF_* */
    uint32_t n_inputs;
    nn_tensor_t in[2];
    nn_tensor_t out;
    int32_t p[DYSAN_NN_MAX_PARAMS];
    const uint8_t *weights, *bias, *mult, *shift; /* CONV layout blobs (image bytes) */
    uint32_t scratch_off, scratch_len;
    uint32_t macs;
} nn_op_t;

/* ---- TFLM fixed-point arithmetic ---------------------------------------------------------------------- */

/* MultiplyByQuantizedMultiplier(x, mult, shift) split into per-channel constants, so kernels hoist them out
 * of their pixel loops. The loader only accepts mult >= 0 and shift in [-31, 30]. */
typedef struct {
    int32_t mult, left, right, mask, threshold;
} nn_rq_t;

static inline nn_rq_t nn_rq_make(int32_t mult, int32_t shift) {
    nn_rq_t q;
    q.mult = mult;
    q.left = shift > 0 ? shift : 0;
    q.right = shift > 0 ? 0 : -shift;
    q.mask = (int32_t)((UINT32_C(1) << q.right) - 1u);
    q.threshold = q.mask >> 1;
    return q;
}

/* RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x << left, mult), right).
 * - The left shift wraps like the two's-complement hardware the reference runs on (not undefined).
 * - SaturatingRoundingDoublingHighMul adds 2^30 (or 1 - 2^30 when a*b < 0) and divides by 2^31 truncating
 *   toward zero; both cases equal floor((a*b + 2^30) / 2^31), i.e. an arithmetic shift. Its saturating case
 *   (a == mult == INT32_MIN) cannot occur with mult >= 0.
 * - RoundingDivideByPOT rounds halves away from zero: remainder against mask/2 (+1 for negatives). */
static inline int32_t nn_rq_apply(int32_t acc, const nn_rq_t *q) {
    const int32_t x = (int32_t)((uint32_t)acc << q->left);
    const int32_t hi = (int32_t)(((int64_t)x * q->mult + (INT64_C(1) << 30)) >> 31);
    const int32_t rem = hi & q->mask;
    return (hi >> q->right) + (rem > q->threshold + (hi < 0 ? 1 : 0) ? 1 : 0);
}

#if NN_DSP
/* nn_rq_apply for |acc| < 2^30 (ops flagged DYSAN_NN_OPF_ACC_BOUNDED), left == 0 and right >= 1:
 * - floor((acc * m + 2^30) / 2^31) == floor((2 acc * m + 2^31) / 2^32), which is SMMULR of 2 * acc;
 * - rounding half away from zero is (h + 2^(right-1) - (h < 0)) >> right, and |h| < 2^30 cannot overflow.
 * Outside that range the result is wrong, never undefined (unsigned adds, SMMULR wraps). */
static inline int32_t nn_rq_apply_bounded(int32_t acc, int32_t mult, int32_t right, uint32_t round) {
    int32_t h;
    __asm__("smmulr %0, %1, %2" : "=r"(h) : "r"((int32_t)((uint32_t)acc << 1)), "r"(mult));
    return (int32_t)((uint32_t)h + round - ((uint32_t)h >> 31)) >> right;
}

/* Assembler framing of the hand-written Thumb-2 functions (dysan_nn_conv_m4.c, dysan_nn_fc_m4.c), written
 * once: each function in its own section (so --gc-sections drops an unused one), hidden, typed as a Thumb
 * function so that its address has bit 0 set. NN_ASM_FUNC can follow another function in the same section. */
#define NN_ASM_SECTION(name)                                                                                  \
    "    .pushsection .text." name ",\"ax\",%progbits\n"                                                     \
    "    .syntax unified\n"                                                                                  \
    "    .thumb\n"
#define NN_ASM_FUNC(name, align)                                                                              \
    "    .p2align " align "\n"                                                                               \
    "    .global " name "\n"                                                                                 \
    "    .hidden " name "\n"                                                                                 \
    "    .type  " name ", %function\n"                                                                       \
    "    .thumb_func\n"
#define NN_ASM_SIZE(name) "    .size  " name ", . - " name "\n"
#define NN_ASM_SECTION_END "    .popsection\n"
#endif

static inline int32_t nn_mbqm(int32_t x, int32_t mult, int32_t shift) {
    const nn_rq_t q = nn_rq_make(mult, shift);
    return nn_rq_apply(x, &q);
}

static inline int8_t nn_clamp8(int32_t v, int32_t lo, int32_t hi) {
    return (int8_t)(v < lo ? lo : (v > hi ? hi : v));
}

/* ---- the op table ------------------------------------------------------------------------------------- */

/* One op kind, registered next to its kernel (as TFLM registers ops): what the generic decoder checks
 * (input count, params words, allowed flags), then `validate` (the kind's parameters, shapes, blobs and
 * scratch; op->p, tensors and scratch range already decoded) and `eval` (runs a validated op; the arena is
 * 4-byte aligned). dysan_nn.c lists every registration once (nn_op_table). */
typedef struct nn_op_reg {
    uint16_t kind;     /* DYSAN_NN_KIND_* */
    uint8_t n_inputs;  /* 1, or 2 */
    uint8_t n_params;  /* int32 words of the params block */
    uint32_t flags;    /* the DYSAN_NN_OPF_* this kind may carry */
    int (*validate)(const dysan_nn_model_t *m, nn_op_t *op);
    void (*eval)(const nn_op_t *op, uint8_t *arena);
} nn_op_reg_t;

extern const nn_op_reg_t nn_reg_conv_2d, nn_reg_depthwise_conv_2d;           /* dysan_nn_conv.c */
extern const nn_op_reg_t nn_reg_fully_connected;                             /* dysan_nn_fc.c */
extern const nn_op_reg_t nn_reg_average_pool_2d, nn_reg_max_pool_2d, nn_reg_mean; /* dysan_nn_pool.c */
extern const nn_op_reg_t nn_reg_add, nn_reg_leaky_relu, nn_reg_quantize;     /* dysan_nn_elementwise.c */

/* ---- validation helpers shared by the kernels' validate functions (dysan_nn.c) ---------------------- */

#define NN_LIMIT_BYTES (UINT64_C(1) << 31) /* no tensor, blob or arena may reach 2 GiB */
#define NN_MAX_DIM 0xFFFFu

static inline int nn_is_zp(int32_t v) { return v >= -128 && v <= 127; }
static inline int nn_check_act(int32_t lo, int32_t hi) { return lo >= -128 && hi <= 127 && lo <= hi; }
static inline int nn_check_mult(int32_t mult, int32_t shift, int32_t lo, int32_t hi) {
    return mult >= 0 && shift >= lo && shift <= hi;
}
/* A blob of `len` bytes at image offset `off`, inside the data section; NULL if not. */
const uint8_t *nn_blob(const dysan_nn_model_t *m, int32_t off, uint64_t len);
/* The CONV layout params block (CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED): strides, dilations, padding,
 * kernel, channels and depth multiplier in range, zero points matching the tensors, an activation range. */
int nn_validate_conv_params(const nn_op_t *op);
/* Its weights (rows of at least row_min bytes), bias, multipliers and shifts inside the data section, the
 * shifts in range, and at least nn_conv_scratch_bytes() of scratch. */
int nn_validate_conv_blobs(const dysan_nn_model_t *m, nn_op_t *op, uint64_t row_min);

/* ---- kernels --------------------------------------------------------------------------------------------- */

/* Scratch bytes a CONV-layout op needs (same formula as model_image.conv_scratch). 0 on overflow. */
uint64_t nn_conv_scratch_bytes(const nn_op_t *op);

/* A FULLY_CONNECTED op's geometry and output range, read once from its parameter words (both paths). */
typedef struct {
    int32_t depth, n_out, row, rows; /* inputs per row, outputs per row, padded weight row, input rows */
    int32_t zp, lo, hi;              /* output zero point and activation clamp */
    const int8_t *in;
    int8_t *out;
} nn_fc_shape_t;

static inline nn_fc_shape_t nn_fc_shape(const nn_op_t *op, uint8_t *arena) {
    const int32_t *p = op->p;
    nn_fc_shape_t f;
    f.depth = p[DYSAN_NN_CONV_IN_CHANNELS];
    f.n_out = p[DYSAN_NN_CONV_OUT_CHANNELS];
    f.row = p[DYSAN_NN_CONV_WEIGHTS_ROW];
    f.rows = (int32_t)(op->in[0].nbytes / (uint32_t)f.depth);
    f.zp = p[DYSAN_NN_CONV_OUTPUT_ZP];
    f.lo = p[DYSAN_NN_CONV_ACT_MIN];
    f.hi = p[DYSAN_NN_CONV_ACT_MAX];
    f.in = (const int8_t *)(arena + op->in[0].off);
    f.out = (int8_t *)(arena + op->out.off);
    return f;
}

#if NN_DSP
/* Cortex-M4 DSP paths of the small kernels (dysan_nn_fc_m4.c, dysan_nn_pool_m4.c,
 * dysan_nn_elementwise_m4.c): each returns 0 (nothing written) when the op does not fit its fast case. */
void nn_m4_fully_connected(const nn_op_t *op, uint8_t *arena);
int nn_m4_average_pool2(const nn_op_t *op, uint8_t *arena);
int nn_m4_mean(const nn_op_t *op, uint8_t *arena);
int nn_m4_add(const nn_op_t *op, uint8_t *arena);
#endif

#endif /* DYSAN_NN_INTERNAL_H */
