/*
 * dysan_intmath.h -- the small integer helpers that several core files share (internal: included by
 * the core/src sources only). Exact integer arithmetic with no implementation-defined behaviour, so the C core
 * matches its Python definitions bit for bit on any compiler (host/dysan/features.py, jitter.py, the
 * quantization of preprocess).
 */
#ifndef DYSAN_INTMATH_H
#define DYSAN_INTMATH_H

#include <stdint.h>

/* floor(v / 2^s) for any sign (0 <= s < 63), without the implementation-defined right shift of a negative
 * value: for v < 0, -v - 1 >= 0 is shifted instead (floor(v / 2^s) = -(floor((-v - 1) / 2^s)) - 1). */
static inline int64_t dysan_floor_shift(int64_t v, unsigned s)
{
    return v >= 0 ? (v >> s) : -((-(v + 1)) >> s) - 1;
}

/* The same floor for int32 values: one 32-bit shift on a 32-bit MCU where the int64 version needs three
 * instructions (dysan_jitter_apply's inner loop: 10 % more instructions per window with the int64 one). */
static inline int32_t dysan_floor_shift32(int32_t v, unsigned s)
{
    return v >= 0 ? (v >> s) : -(int32_t)((uint32_t)(-(v + 1)) >> s) - 1;
}

/* v saturated to the int16 range (int32 arguments cost nothing extra: the compiler narrows the compares). */
static inline int16_t dysan_sat16(int64_t v)
{
    return (int16_t)(v > INT16_MAX ? INT16_MAX : (v < INT16_MIN ? INT16_MIN : v));
}

#endif /* DYSAN_INTMATH_H */
