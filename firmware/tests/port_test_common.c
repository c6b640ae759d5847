/*
 * port_test_common.c -- host unit test of firmware/ports/common (driven by tests/test_firmware_port.py).
 *
 *   port_test_common              runs the self-checks; prints "ok <n> checks" and exits 0, or the failures
 *   port_test_common --page FILE  parses FILE as a provisioning page: "rc=0 dev=<hex> key=<hex>" or "rc=<rc>"
 *                                 (lets the Python layout and the C parser be checked against each other)
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check_common.h"
#include "dysan_contract.h"
#include "dysan_crc32.h"
#include "dysan_le.h"
#include "dysan_provision.h"
#include "imu_defs.h"
#include "port_common.h"

static void test_ranges(void)
{
    CHECK(dysan_range_ok(16, 0, 16));
    CHECK(dysan_range_ok(16, 16, 0));
    CHECK(!dysan_range_ok(16, 17, 0));
    CHECK(!dysan_range_ok(16, 8, 9));
    CHECK(!dysan_range_ok(16, 1, SIZE_MAX)); /* offset + n would wrap */
    CHECK(!dysan_range_ok(16, SIZE_MAX, 2));
}

static void test_ramflash(void)
{
    uint8_t mem[64];
    uint8_t guard_before = 0xA5;
    memset(mem, 0x00, sizeof mem);
    CHECK(dysan_ramflash_erase(mem, sizeof mem) == DYSAN_PORT_OK);
    for (size_t i = 0; i < sizeof mem; i++) {
        CHECK(mem[i] == 0xFF);
    }
    const uint8_t data[4] = {0x12, 0x34, 0x56, 0x78};
    CHECK(dysan_ramflash_write(mem, sizeof mem, 60, data, 4) == DYSAN_PORT_OK);
    CHECK(memcmp(mem + 60, data, 4) == 0);
    CHECK(dysan_ramflash_write(mem, sizeof mem, 61, data, 4) == DYSAN_PORT_ERANGE); /* past the end */
    CHECK(dysan_ramflash_write(mem, sizeof mem, 65, data, 0) == DYSAN_PORT_ERANGE);
    CHECK(dysan_ramflash_write(mem, sizeof mem, 64, data, 0) == DYSAN_PORT_OK);
    CHECK(dysan_ramflash_write(mem, sizeof mem, 0, NULL, 1) == DYSAN_PORT_EINVAL);
    CHECK(dysan_ramflash_write(NULL, 0, 0, data, 0) == DYSAN_PORT_EINVAL);
    /* 0 -> 1 needs an erase: refused, and nothing is written (not even the bytes that would fit). */
    const uint8_t ones[4] = {0x12, 0xFF, 0x00, 0x00};
    CHECK(dysan_ramflash_write(mem, sizeof mem, 59, ones, 4) == DYSAN_PORT_ENOTERASED);
    CHECK(mem[59] == 0xFF && memcmp(mem + 60, data, 4) == 0);
    /* A write must read back as written: 0xFF over a programmed byte would not (flash keeps the 0 bits). */
    const uint8_t pad[5] = {0xAB, 0xFF, 0xFF, 0xFF, 0xFF};
    CHECK(dysan_ramflash_write(mem, sizeof mem, 59, pad, 5) == DYSAN_PORT_ENOTERASED);
    CHECK(dysan_ramflash_write(mem, sizeof mem, 59, pad, 1) == DYSAN_PORT_OK);
    CHECK(mem[59] == 0xAB && memcmp(mem + 60, data, 4) == 0);
    /* Clearing more bits of a programmed byte is what flash can do, and reads back as written. */
    const uint8_t clear[1] = {0x10};
    CHECK(dysan_ramflash_write(mem, sizeof mem, 60, clear, 1) == DYSAN_PORT_OK && mem[60] == 0x10);
    CHECK(guard_before == 0xA5);
}

static void test_crc(void)
{
    const uint8_t v[] = "123456789";
    CHECK(dysan_crc32_update(0, v, 9) == 0xCBF43926u); /* the standard check value of CRC-32/ISO-HDLC */
    CHECK(dysan_crc32_update(dysan_crc32_update(0, v, 4), v + 4, 5) == 0xCBF43926u);
    CHECK(dysan_crc32_update(0, v, 0) == 0u);
}

static void test_provision(void)
{
    uint8_t page[DYSAN_PROVISION_PAGE_SIZE];
    memset(page, 0xFF, sizeof page);
    uint8_t dev[8];
    uint8_t key[32];
    memset(dev, 0x11, sizeof dev);
    memset(key, 0x22, sizeof key);
    CHECK(dysan_provision_parse(page, sizeof page, dev, key) == DYSAN_PORT_ENOID); /* blank flash */
    CHECK(dev[0] == 0x11 && key[0] == 0x22);                                      /* untouched */

    dysan_le_put_u32(page + DYSAN_PROVISION_OFF_MAGIC, DYSAN_PROVISION_MAGIC);
    page[DYSAN_PROVISION_OFF_VERSION] = DYSAN_PROVISION_VERSION;
    page[DYSAN_PROVISION_OFF_VERSION + 1] = 0;
    page[DYSAN_PROVISION_OFF_FLAGS] = 0;
    page[DYSAN_PROVISION_OFF_FLAGS + 1] = 0;
    for (unsigned i = 0; i < DYSAN_PROVISION_DEVICE_ID_LEN; i++) {
        page[DYSAN_PROVISION_OFF_DEVICE_ID + i] = (uint8_t)(0xD0 + i);
    }
    for (unsigned i = 0; i < DYSAN_PROVISION_KEY_LEN; i++) {
        page[DYSAN_PROVISION_OFF_KEY + i] = (uint8_t)i;
    }
    dysan_le_put_u32(page + DYSAN_PROVISION_OFF_CRC, dysan_crc32_update(0, page, DYSAN_PROVISION_CRC_COVERED));
    CHECK(dysan_provision_parse(page, sizeof page, dev, key) == DYSAN_PORT_OK);
    CHECK(dev[0] == 0xD0 && dev[7] == 0xD7 && key[0] == 0 && key[31] == 31);
    CHECK(dysan_provision_parse(page, DYSAN_PROVISION_HEADER_LEN, dev, key) == DYSAN_PORT_OK);
    CHECK(dysan_provision_parse(page, DYSAN_PROVISION_HEADER_LEN - 1, dev, key) == DYSAN_PORT_EINVAL);
    CHECK(dysan_provision_parse(NULL, sizeof page, dev, key) == DYSAN_PORT_EINVAL);

    page[DYSAN_PROVISION_OFF_KEY + 5] ^= 1u; /* torn key */
    CHECK(dysan_provision_parse(page, sizeof page, dev, key) == DYSAN_PORT_ENOID);
    page[DYSAN_PROVISION_OFF_KEY + 5] ^= 1u;
    page[DYSAN_PROVISION_OFF_VERSION] = 2; /* a layout this firmware does not know */
    dysan_le_put_u32(page + DYSAN_PROVISION_OFF_CRC, dysan_crc32_update(0, page, DYSAN_PROVISION_CRC_COVERED));
    CHECK(dysan_provision_parse(page, sizeof page, dev, key) == DYSAN_PORT_ENOID);
}

static void test_scale(void)
{
    CHECK(dysan_scale_counts(1, 1, 2) == 1);   /* 0.5 rounds away from zero, like contract.to_counts */
    CHECK(dysan_scale_counts(-1, 1, 2) == -1);
    CHECK(dysan_scale_counts(3, 1, 2) == 2);
    CHECK(dysan_scale_counts(-3, 1, 2) == -2);
    CHECK(dysan_scale_counts(2, 1, 3) == 1); /* 0.667 */
    CHECK(dysan_scale_counts(1, 1, 3) == 0); /* 0.333 */
    CHECK(dysan_scale_counts(-2, 1, 3) == -1);
    CHECK(dysan_scale_counts(32767, 2, 1) == INT16_MAX); /* saturates */
    CHECK(dysan_scale_counts(-32768, 2, 1) == INT16_MIN);
    CHECK(dysan_scale_counts(5, 1, 0) == 0);
}

/* Each IMU's factor against its datasheet sensitivity, over the whole int16 range, within 0.5 count of
 * the exact value plus the factor's own rounding (relative 1e-6). */
static void check_imu(const dysan_imu_desc_t *imu, double acc_g_per_lsb, double gyr_dps_per_lsb)
{
    const double pi = 3.14159265358979323846;
    int worst_ok = 1;
    for (int32_t raw = -32768; raw <= 32767; raw += 7) {
        uint8_t le[6];
        uint8_t be[6];
        for (int a = 0; a < 3; a++) {
            le[2 * a] = (uint8_t)(raw & 0xFF);
            le[2 * a + 1] = (uint8_t)((raw >> 8) & 0xFF);
            be[2 * a] = le[2 * a + 1];
            be[2 * a + 1] = le[2 * a];
        }
        const uint8_t *bytes = imu->big_endian ? be : le;
        int16_t s[6];
        dysan_imu_to_counts(imu, bytes, bytes, s);
        double acc = raw * acc_g_per_lsb * DYSAN_ACC_COUNTS_PER_G;
        double gyr = raw * gyr_dps_per_lsb * pi / 180.0 * DYSAN_GYRO_COUNTS_PER_RAD_S;
        double tol_a = 0.5 + fabs(acc) * 1e-6 + 1e-9;
        double tol_g = 0.5 + fabs(gyr) * 1e-6 + 1e-9;
        for (int a = 0; a < 3; a++) {
            if (fabs(s[a] - acc) > tol_a || fabs(s[3 + a] - gyr) > tol_g) {
                if (worst_ok) {
                    printf("FAIL %s raw=%d acc=%d (%.3f) gyr=%d (%.3f)\n", imu->name, (int)raw, s[a], acc,
                           s[3 + a], gyr);
                }
                worst_ok = 0;
            }
        }
    }
    CHECK(worst_ok);
}

static void test_imus(void)
{
    check_imu(&dysan_imu_lsm9ds1, 0.244e-3, 0.070);
    check_imu(&dysan_imu_lsm6ds3trc, 0.244e-3, 0.070);
    check_imu(&dysan_imu_bmi270, 1.0 / 4096.0, 1.0 / 16.384);
    check_imu(&dysan_imu_mpu6050, 1.0 / 4096.0, 1.0 / 16.4);
    /* +8 g on an ST part: 32767 * 0.244 mg = 7.995 g -> 16374 counts, inside int16. */
    uint8_t full[6] = {0xFF, 0x7F, 0xFF, 0x7F, 0xFF, 0x7F};
    int16_t s[6];
    dysan_imu_to_counts(&dysan_imu_lsm9ds1, full, full, s);
    CHECK(s[0] == 16374 && s[3] == 20497);
}

static void test_sched(void)
{
    dysan_sched_t s;
    dysan_sched_init(&s, 20000);
    CHECK(dysan_sched_due(&s, 1000) == 1); /* the first call samples at once */
    CHECK(dysan_sched_due(&s, 1001) == 0);
    CHECK(dysan_sched_due(&s, 20999) == 0);
    CHECK(dysan_sched_due(&s, 21000) == 1);
    CHECK(dysan_sched_due(&s, 21000) == 0);
    CHECK(dysan_sched_due(&s, 45000) == 1); /* late by 4 ms: one sample, grid kept (next due 61000) */
    CHECK(dysan_sched_due(&s, 60999) == 0);
    CHECK(dysan_sched_due(&s, 61000) == 1);
    CHECK(s.missed == 0);
    CHECK(dysan_sched_due(&s, 141500) == 1); /* late by 3.5 periods: 3 ticks skipped, not bunched */
    CHECK(s.missed == 3);
    CHECK(dysan_sched_due(&s, 141501) == 0);
    CHECK(dysan_sched_due(&s, 161000) == 1);
    /* Across the 32-bit microsecond wrap. */
    dysan_sched_t w;
    dysan_sched_init(&w, 20000);
    CHECK(dysan_sched_due(&w, 0xFFFFFFF0u) == 1);
    CHECK(dysan_sched_due(&w, 0x00000010u) == 0);
    CHECK(dysan_sched_due(&w, 0xFFFFFFF0u + 20000u) == 1);
    CHECK(w.missed == 0);
}

/* A fake NOR flash with nRF52 rules: word-aligned programming that ANDs, at most 2 programs per word
 * between erases, 4 KB page erases. */
enum { FAKE_PAGES = 2, FAKE_SIZE = FAKE_PAGES * 4096 };
typedef struct {
    uint8_t mem[FAKE_SIZE];
    uint8_t writes[FAKE_SIZE / 4];
    int violations;
    int programs;
    int flushes;
    uintptr_t base;
} fake_flash_t;

static int fake_program(void *ctx, uintptr_t addr, const uint8_t *data, size_t len)
{
    fake_flash_t *f = (fake_flash_t *)ctx;
    if (addr % 4 != 0 || len % 4 != 0 || addr < f->base || addr - f->base + len > FAKE_SIZE) {
        f->violations++;
        return -1;
    }
    size_t off = addr - f->base;
    for (size_t i = 0; i < len; i++) {
        f->mem[off + i] &= data[i];
    }
    for (size_t w = off / 4; w < (off + len) / 4; w++) {
        if (++f->writes[w] > 2) {
            f->violations++;
        }
    }
    f->programs++;
    return 0;
}

static int fake_erase(void *ctx, uintptr_t addr, size_t len)
{
    fake_flash_t *f = (fake_flash_t *)ctx;
    if (addr % 4096 != 0 || len % 4096 != 0 || addr < f->base || addr - f->base + len > FAKE_SIZE) {
        f->violations++;
        return -1;
    }
    memset(f->mem + (addr - f->base), 0xFF, len);
    memset(f->writes + (addr - f->base) / 4, 0, len / 4);
    return 0;
}

static int fake_flush(void *ctx)
{
    ((fake_flash_t *)ctx)->flushes++;
    return 0;
}

static void test_flash_region(void)
{
    static fake_flash_t f;
    memset(&f, 0, sizeof f);
    f.base = 0x40000;
    dysan_flash_hal_t hal = {fake_program, fake_erase, fake_flush, &f, 4, 4096};
    dysan_flash_region_t r = {0x41000, 4096, f.mem + 4096}; /* the second page */
    memset(f.mem, 0xA5, sizeof f.mem);
    CHECK(dysan_flash_region_erase(&hal, &r) == DYSAN_PORT_OK);
    CHECK(f.mem[4095] == 0xA5 && f.mem[4096] == 0xFF && f.mem[8191] == 0xFF); /* only its own page */

    /* Sequential 5-byte chunks from an odd offset: unaligned head and tail words, each shared word
     * programmed twice at most, and everything reads back. */
    uint8_t data[200];
    for (size_t i = 0; i < sizeof data; i++) {
        data[i] = (uint8_t)(i * 7 + 1);
    }
    for (size_t pos = 0; pos < sizeof data; pos += 5) {
        CHECK(dysan_flash_region_write(&hal, &r, 3 + pos, data + pos, 5) == DYSAN_PORT_OK);
    }
    CHECK(memcmp(f.mem + 4096 + 3, data, sizeof data) == 0);
    CHECK(f.mem[4096 + 2] == 0xFF && f.mem[4096 + 3 + sizeof data] == 0xFF);
    CHECK(f.violations == 0);

    /* One large unaligned write from an unaligned source pointer. */
    CHECK(dysan_flash_region_erase(&hal, &r) == DYSAN_PORT_OK);
    f.programs = 0;
    f.flushes = 0;
    CHECK(dysan_flash_region_write(&hal, &r, 1, data + 1, 150) == DYSAN_PORT_OK);
    CHECK(memcmp(f.mem + 4096 + 1, data + 1, 150) == 0 && f.violations == 0);
    CHECK(f.programs == 3); /* bytes [0, 152) = 38 words in runs of 16 + 16 + 6 (the 64-byte stage) */
    CHECK(f.flushes == 1); /* once per write call */

    /* A run is split around an all-0xFF word (nothing to program there). */
    uint8_t holes[12];
    memset(holes, 0x11, sizeof holes);
    memset(holes + 4, 0xFF, 4);
    f.programs = 0;
    CHECK(dysan_flash_region_write(&hal, &r, 2000, holes, sizeof holes) == DYSAN_PORT_OK);
    CHECK(f.programs == 2 && memcmp(f.mem + 4096 + 2000, holes, sizeof holes) == 0);

    /* Bounds, NOR rule and no partial writes, as on the RAM-backed ports. */
    CHECK(dysan_flash_region_write(&hal, &r, 4090, data, 7) == DYSAN_PORT_ERANGE);
    CHECK(dysan_flash_region_write(&hal, &r, 4092, data, 4) == DYSAN_PORT_OK);
    const uint8_t up[2] = {0x00, 0xFF};
    uint8_t before = f.mem[4096 + 1];
    CHECK(dysan_flash_region_write(&hal, &r, 0, up, 2) == DYSAN_PORT_ENOTERASED);
    CHECK(f.mem[4096] == 0xFF && f.mem[4096 + 1] == before);
    CHECK(dysan_flash_region_write(&hal, &r, 0, NULL, 3) == DYSAN_PORT_EINVAL);
    CHECK(dysan_flash_region_write(&hal, &r, 300, data, 0) == DYSAN_PORT_OK);

    /* A driver failure, and a driver that "succeeds" without writing, are both I/O errors. */
    dysan_flash_hal_t broken = hal;
    broken.ctx = &f;
    broken.program = NULL;
    CHECK(dysan_flash_region_write(&broken, &r, 1000, data, 4) == DYSAN_PORT_EINVAL);
    f.base = 0; /* every program now fails the fake's bounds check */
    CHECK(dysan_flash_region_write(&hal, &r, 1000, data, 4) == DYSAN_PORT_EIO);
    f.base = 0x40000;
    f.violations = 0;
}

static void test_ring(void)
{
    uint8_t mem[8];
    dysan_ring_t r;
    CHECK(dysan_ring_init(&r, mem, 6) == DYSAN_PORT_EINVAL);
    CHECK(dysan_ring_init(&r, mem, sizeof mem) == DYSAN_PORT_OK);
    const uint8_t in[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    uint8_t out[10];
    CHECK(dysan_ring_push(&r, in, 5) == 5 && dysan_ring_count(&r) == 5 && dysan_ring_space(&r) == 3);
    CHECK(dysan_ring_pop(&r, out, 3) == 3 && out[0] == 1 && out[2] == 3);
    CHECK(dysan_ring_push(&r, in + 5, 5) == 5); /* wraps around the end of the buffer */
    CHECK(dysan_ring_push(&r, in, 2) == 1 && r.dropped == 1);
    CHECK(dysan_ring_pop(&r, out, sizeof out) == 8);
    CHECK(out[0] == 4 && out[6] == 10 && out[7] == 1);
    CHECK(dysan_ring_pop(&r, out, sizeof out) == 0);
    /* Indices keep counting past 2^32 without losing the count. */
    r.head = r.tail = 0xFFFFFFFEu;
    CHECK(dysan_ring_push(&r, in, 4) == 4 && dysan_ring_count(&r) == 4);
    CHECK(dysan_ring_pop(&r, out, 4) == 4 && out[3] == 4);
}

static void test_ble_chunk(void)
{
    CHECK(dysan_ble_chunk(23, 244) == 20);
    CHECK(dysan_ble_chunk(0, 244) == 20); /* unknown MTU: the default */
    CHECK(dysan_ble_chunk(247, 244) == 244);
    CHECK(dysan_ble_chunk(185, 244) == 182);
    CHECK(dysan_ble_chunk(517, 244) == 244);
}

static int parse_page_file(const char *path)
{
    uint8_t page[DYSAN_PROVISION_PAGE_SIZE];
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        printf("cannot open %s\n", path);
        return 2;
    }
    size_t n = fread(page, 1, sizeof page, f);
    fclose(f);
    uint8_t dev[8];
    uint8_t key[32];
    int rc = dysan_provision_parse(page, n, dev, key);
    printf("rc=%d", rc);
    if (rc == 0) {
        printf(" dev=");
        for (int i = 0; i < 8; i++) {
            printf("%02x", dev[i]);
        }
        printf(" key=");
        for (int i = 0; i < 32; i++) {
            printf("%02x", key[i]);
        }
    }
    printf("\n");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--page") == 0) {
        return parse_page_file(argv[2]);
    }
    test_ranges();
    test_ramflash();
    test_crc();
    test_provision();
    test_scale();
    test_imus();
    test_sched();
    test_flash_region();
    test_ring();
    test_ble_chunk();
    return check_summary("port_test_common");
}
