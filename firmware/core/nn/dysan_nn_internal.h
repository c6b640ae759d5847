/*
 * dysan_nn_internal.h -- what the loader shares with the kernels: decoded ops, byte readers, and TFLM's
 * fixed-point requantization (tensorflow/lite/kernels/internal/common.h: the default, double-rounding
 * MultiplyByQuantizedMultiplier), written so that no accepted image can reach undefined behaviour.
 */
#ifndef DYSAN_NN_INTERNAL_H
#define DYSAN_NN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

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

/* Little-endian readers that work for any alignment (compilers turn them into single loads). */
static inline uint32_t nn_rd_u32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint16_t nn_rd_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline int32_t nn_rd_i32(const uint8_t *p) { return (int32_t)nn_rd_u32(p); }

/* An activation tensor of the op being run. */
typedef struct {
    uint32_t off, nbytes;
    uint32_t rank;
    uint32_t dims[DYSAN_NN_MAX_RANK];
    int32_t zp;
} nn_tensor_t;

/* One op, decoded and validated from its record and params block. */
typedef struct {
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
#endif

static inline int32_t nn_mbqm(int32_t x, int32_t mult, int32_t shift) {
    const nn_rq_t q = nn_rq_make(mult, shift);
    return nn_rq_apply(x, &q);
}

static inline int8_t nn_clamp8(int32_t v, int32_t lo, int32_t hi) {
    return (int8_t)(v < lo ? lo : (v > hi ? hi : v));
}

/* ---- kernels (arena is 4-byte aligned; ops are validated) --------------------------------------------- */

/* Scratch bytes a CONV-layout op needs (same formula as model_image.conv_scratch). 0 on overflow. */
uint64_t nn_conv_scratch_bytes(const nn_op_t *op);

void nn_conv2d(const nn_op_t *op, uint8_t *arena);
void nn_depthwise_conv2d(const nn_op_t *op, uint8_t *arena);
void nn_fully_connected(const nn_op_t *op, uint8_t *arena);
void nn_average_pool(const nn_op_t *op, uint8_t *arena);
void nn_max_pool(const nn_op_t *op, uint8_t *arena);
void nn_mean(const nn_op_t *op, uint8_t *arena);
void nn_add(const nn_op_t *op, uint8_t *arena);
void nn_leaky_relu(const nn_op_t *op, uint8_t *arena);
void nn_quantize(const nn_op_t *op, uint8_t *arena);

#endif /* DYSAN_NN_INTERNAL_H */
