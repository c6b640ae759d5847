/*
 * dysan_le.h -- little-endian reads and writes of the byte layouts the core parses and builds (model
 * bundles, RF tables, int8 model images, protocol frames and messages, the STATE and counter logs, the
 * provisioning page). The one definition for every C file in firmware/ (tests/test_le.c checks it).
 *
 * Every value is assembled from uint8_t with explicit casts: no pointer casts (any alignment works, no
 * strict-aliasing question), no dependence on the host's byte order, and the signed reads use no
 * implementation-defined unsigned -> signed conversion (two's complement by arithmetic; GCC and Clang fold
 * it to a plain load). C99 and later, and C++.
 */
#ifndef DYSAN_LE_H
#define DYSAN_LE_H

#include <stdint.h>

static inline uint16_t dysan_le_get_u16(const uint8_t *p)
{
    return (uint16_t)((uint16_t)p[0] | (uint16_t)((uint16_t)p[1] << 8));
}

static inline uint32_t dysan_le_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static inline uint64_t dysan_le_get_u64(const uint8_t *p)
{
    return (uint64_t)dysan_le_get_u32(p) | ((uint64_t)dysan_le_get_u32(p + 4) << 32);
}

static inline int8_t dysan_le_get_i8(const uint8_t *p)
{
    return p[0] <= 0x7Fu ? (int8_t)p[0] : (int8_t)((int)p[0] - 256);
}

static inline int16_t dysan_le_get_i16(const uint8_t *p)
{
    const uint16_t u = dysan_le_get_u16(p);
    return u <= 0x7FFFu ? (int16_t)u : (int16_t)((int32_t)u - 65536);
}

static inline int32_t dysan_le_get_i32(const uint8_t *p)
{
    const uint32_t u = dysan_le_get_u32(p);
    /* u - 2^31 fits in int32_t; subtracting 2^31 after the conversion cannot overflow */
    return u <= 0x7FFFFFFFu ? (int32_t)u : (int32_t)(u - 0x80000000u) - INT32_MAX - 1;
}

static inline void dysan_le_put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void dysan_le_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static inline void dysan_le_put_u64(uint8_t *p, uint64_t v)
{
    dysan_le_put_u32(p, (uint32_t)v);
    dysan_le_put_u32(p + 4, (uint32_t)(v >> 32));
}

/* Signed values are written as their two's complement bits (the conversion to unsigned is exact in C). */
static inline void dysan_le_put_i16(uint8_t *p, int16_t v) { dysan_le_put_u16(p, (uint16_t)v); }

static inline void dysan_le_put_i32(uint8_t *p, int32_t v) { dysan_le_put_u32(p, (uint32_t)v); }

#endif /* DYSAN_LE_H */
