/*
 * jitter_bench.c -- instructions of dysan_jitter_apply and of the emit path dysan_jitter_int8 on a Cortex-M4F
 * (qemu-system-arm -M mps2-an386 -icount shift=0 -semihosting), built and run by tests/test_jitter.py
 * (test_jitter_cost_on_cortex_m4).
 *
 * Transforms WINDOWS deterministic windows with counters 0..WINDOWS-1 and device seed SEED, and prints
 *   calibration instructions <n> ticks <t>     (a known instruction count, to convert ticks)
 *   jitter windows <w> ticks <t>               (ticks spent in dysan_jitter_apply, all windows)
 *   checksum <fnv1a-32 of every output byte>  (the host recomputes it with dysan.jitter: bit-exact on the M4)
 *   emit windows <w> ticks <t>                 (ticks in dysan_jitter_int8: dequantize, jitter, requantize,
 *                                               on the low bytes of the same windows as int8 S outputs)
 *   emit checksum <fnv1a-32 of every output byte> (jitter.apply_int8 on the host)
 */
#include <stdint.h>
#include <stdio.h>

#include "dysan_jitter.h"
#include "qemu/nn_qemu.h"

#define WINDOWS 20
#define SAMPLES 125
#define SEED 0x5EEDu
#define ANGLE_Q14 2860 /* round(radians(10) * 2^14): JitterParams() */
#define GAIN_Q14 1638  /* round(0.1 * 2^14) */
/* The emit path's quantization (tests/test_jitter.py EMIT_*): a bundle's center and multipliers, S's output
 * zero point and output / input scale ratio. */
static const dysan_norm_t EMIT_NORM = {{12, -2048, 300, 0, -5, 7}, {30000, 31000, 29000, 120000, 118000, 121000}, 0};
#define EMIT_ZP (-3)
#define EMIT_RATIO 70000u

static int8_t g_q[SAMPLES * 6];
static int8_t g_q_out[SAMPLES * 6];

static int16_t g_window[SAMPLES * 6];

static void fill(uint32_t w)
{
    uint32_t s = 0x12345678u ^ (w * 2654435761u);
    for (int i = 0; i < SAMPLES * 6; i++) {
        s = s * 1664525u + 1013904223u;
        g_window[i] = (int16_t)(s >> 16);
    }
}

int main(void)
{
    const uint32_t iterations = 1000000u;
    printf("calibration instructions %lu ticks %llu\n", 2ul * iterations,
           (unsigned long long)nn_qemu_calibrate(iterations));
    uint64_t ticks = 0;
    uint32_t h = 2166136261u;
    for (uint32_t w = 0; w < WINDOWS; w++) {
        fill(w);
        const uint64_t t0 = nn_qemu_ticks();
        if (dysan_jitter_apply(g_window, SAMPLES, SEED, w, ANGLE_Q14, GAIN_Q14) != 0) {
            printf("error\n");
            return 1;
        }
        ticks += nn_qemu_ticks() - t0;
        const uint8_t *b = (const uint8_t *)g_window;
        for (unsigned i = 0; i < sizeof g_window; i++) {
            h = (h ^ b[i]) * 16777619u;
        }
    }
    printf("jitter windows %u ticks %llu\n", (unsigned)WINDOWS, (unsigned long long)ticks);
    printf("checksum %lu\n", (unsigned long)h);

    ticks = 0;
    h = 2166136261u;
    for (uint32_t w = 0; w < WINDOWS; w++) {
        fill(w);
        for (int i = 0; i < SAMPLES * 6; i++) {
            g_q[i] = (int8_t)(uint8_t)(g_window[i] & 0xFF);
        }
        const uint64_t t0 = nn_qemu_ticks();
        if (dysan_jitter_int8(g_q, g_q_out, g_window, SAMPLES, &EMIT_NORM, EMIT_ZP, EMIT_RATIO, SEED, w, ANGLE_Q14,
                              GAIN_Q14) != 0) {
            printf("error\n");
            return 1;
        }
        ticks += nn_qemu_ticks() - t0;
        for (unsigned i = 0; i < sizeof g_q_out; i++) {
            h = (h ^ (uint8_t)g_q_out[i]) * 16777619u;
        }
    }
    printf("emit windows %u ticks %llu\n", (unsigned)WINDOWS, (unsigned long long)ticks);
    printf("emit checksum %lu\n", (unsigned long)h);
    return 0;
}
