/*
 * test_le.c -- host unit test of core/include/dysan_le.h, the little-endian reads and writes every byte
 * layout of the core goes through (driven by tests/test_le_c.py, which builds it as C99, C11 and C++ under
 * ASan + UBSan): byte order against fixed byte strings, the sign boundaries (0x80, 0x8000, 0x80000000,
 * all ones), round trips of pseudo-random values at every alignment, and writes that touch exactly their
 * bytes. Prints "ok <n> checks" and exits 0, or the failures.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check_common.h"
#include "dysan_le.h"

static uint32_t s_rng = 0x2545F491u;

static uint32_t next_u32(void)
{
    s_rng ^= s_rng << 13;
    s_rng ^= s_rng >> 17;
    s_rng ^= s_rng << 5;
    return s_rng;
}

static int bytes_are(const uint8_t *p, const uint8_t *want, size_t n) { return memcmp(p, want, n) == 0; }

static void test_byte_order(void)
{
    const uint8_t b[8] = {0xEF, 0xCD, 0xAB, 0x89, 0x67, 0x45, 0x23, 0x01};
    CHECK(dysan_le_get_u16(b) == 0xCDEFu);
    CHECK(dysan_le_get_u32(b) == 0x89ABCDEFu);
    CHECK(dysan_le_get_u64(b) == 0x0123456789ABCDEFull);
    CHECK(dysan_le_get_u32(b + 4) == 0x01234567u);

    uint8_t out[8];
    memset(out, 0, sizeof out);
    dysan_le_put_u16(out, 0x1234u);
    CHECK(out[0] == 0x34u && out[1] == 0x12u);
    const uint8_t le32[4] = {0x78, 0x56, 0x34, 0x12};
    dysan_le_put_u32(out, 0x12345678u);
    CHECK(bytes_are(out, le32, 4));
    dysan_le_put_u64(out, 0x0123456789ABCDEFull);
    CHECK(bytes_are(out, b, 8));
}

static void test_sign_boundaries(void)
{
    static const uint8_t top_bit[4] = {0x00, 0x00, 0x00, 0x80}, minus_two[4] = {0xFE, 0xFF, 0xFF, 0xFF};
    uint8_t p[4];
    /* 0x80000000: the top bit alone -- INT32_MIN, and back to the same bytes */
    dysan_le_put_u32(p, 0x80000000u);
    CHECK(bytes_are(p, top_bit, 4));
    CHECK(dysan_le_get_u32(p) == 0x80000000u);
    CHECK(dysan_le_get_i32(p) == INT32_MIN);
    dysan_le_put_i32(p, INT32_MIN);
    CHECK(dysan_le_get_u32(p) == 0x80000000u);
    /* the neighbours of the boundary and all ones */
    dysan_le_put_u32(p, 0x7FFFFFFFu);
    CHECK(dysan_le_get_i32(p) == INT32_MAX);
    dysan_le_put_u32(p, 0x80000001u);
    CHECK(dysan_le_get_i32(p) == INT32_MIN + 1);
    dysan_le_put_u32(p, 0xFFFFFFFFu);
    CHECK(dysan_le_get_i32(p) == -1 && dysan_le_get_u32(p) == UINT32_MAX);
    dysan_le_put_i32(p, -2);
    CHECK(bytes_are(p, minus_two, 4));
    dysan_le_put_i32(p, -123456789);
    CHECK(dysan_le_get_i32(p) == -123456789 && dysan_le_get_u32(p) == (uint32_t)0 - 123456789u);
    dysan_le_put_u32(p, 0);
    CHECK(dysan_le_get_i32(p) == 0);

    /* int16: 0x8000, 0xFFFF, 0x7FFF, a negative written and read back */
    dysan_le_put_u16(p, 0x8000u);
    CHECK(p[0] == 0x00u && p[1] == 0x80u && dysan_le_get_i16(p) == INT16_MIN);
    dysan_le_put_u16(p, 0xFFFFu);
    CHECK(dysan_le_get_i16(p) == -1);
    dysan_le_put_u16(p, 0x7FFFu);
    CHECK(dysan_le_get_i16(p) == INT16_MAX);
    dysan_le_put_i16(p, -300);
    CHECK(p[0] == 0xD4u && p[1] == 0xFEu && dysan_le_get_i16(p) == -300 && dysan_le_get_u16(p) == 0xFED4u);

    /* int8 */
    const uint8_t b[4] = {0x80, 0xFF, 0x7F, 0x00};
    CHECK(dysan_le_get_i8(b) == INT8_MIN && dysan_le_get_i8(b + 1) == -1 && dysan_le_get_i8(b + 2) == INT8_MAX &&
          dysan_le_get_i8(b + 3) == 0);
}

/* Pseudo-random values written at every offset of a guarded buffer: read back equal, neighbours untouched. */
static void test_round_trips(void)
{
    uint8_t buf[24];
    int bad = 0;
    for (int i = 0; i < 2000; i++) {
        const uint32_t a = next_u32(), b = next_u32();
        const uint64_t v64 = ((uint64_t)a << 32) | b;
        for (size_t off = 1; off < 9; off++) {
            memset(buf, 0xA5, sizeof buf);
            uint8_t *p = buf + off;
            dysan_le_put_u16(p, (uint16_t)a);
            bad += dysan_le_get_u16(p) != (uint16_t)a || p[2] != 0xA5u;
            const int16_t v16 = (int16_t)((int32_t)(a & 0xFFFFu) - ((a & 0x8000u) ? 65536 : 0));
            dysan_le_put_i16(p, v16);
            bad += dysan_le_get_i16(p) != v16 || dysan_le_get_u16(p) != (uint16_t)a || p[2] != 0xA5u;
            dysan_le_put_u32(p, a);
            bad += dysan_le_get_u32(p) != a || p[4] != 0xA5u || p[-1] != 0xA5u;
            /* the signed read equals the value the unsigned bits stand for in two's complement */
            const int64_t want = a >= 0x80000000u ? (int64_t)a - 4294967296ll : (int64_t)a;
            bad += (int64_t)dysan_le_get_i32(p) != want;
            const int32_t s = dysan_le_get_i32(p);
            dysan_le_put_i32(p, s);
            bad += dysan_le_get_u32(p) != a;
            const int32_t want16 = (int32_t)(a & 0xFFFFu) - ((a & 0x8000u) ? 65536 : 0);
            bad += dysan_le_get_i16(p) != want16;
            dysan_le_put_u64(p, v64);
            bad += dysan_le_get_u64(p) != v64 || p[8] != 0xA5u || p[-1] != 0xA5u;
            for (size_t k = 0; k < 8; k++) {
                bad += p[k] != (uint8_t)(v64 >> (8u * k));
            }
        }
    }
    CHECK_MSG(bad == 0, "%d round-trip mismatches", bad);
}

int main(void)
{
    test_byte_order();
    test_sign_boundaries();
    test_round_trips();
    return check_summary("test_le");
}
