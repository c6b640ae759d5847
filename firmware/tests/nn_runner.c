/*
 * nn_runner.c -- runs a model image over a file of inputs, for the bit-exactness tests (tests/test_nn_*.py).
 *
 *   nn_runner [--profile] [--steps] [--arena BYTES] IMAGE INPUTS OUTPUTS
 *                                   INPUTS: N x input_bytes int8, OUTPUTS: N x output_bytes int8
 *   nn_runner --info IMAGE          prints the loaded model's figures
 *
 * --arena passes only BYTES of the arena to dysan_nn_invoke (to test its size check); --steps runs each input
 * through dysan_nn_begin / dysan_nn_step (every op) / dysan_nn_end instead of dysan_nn_invoke.
 *
 * Prints "load_error <code> <message>" and exits 2 when the image is rejected, "invoke_error ..." and exits 3
 * when an inference fails, and "ok <N>" on success. The same source runs natively and on Cortex-M4F under
 * QEMU (NN_RUNNER_QEMU: file I/O by semihosting, clock from SysTick under -icount); --profile prints the
 * clock ticks each op took, summed over all inputs ("op <i> kind <k> macs <m> ticks <t>").
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dysan_nn.h"
#include "nn_file_common.h"

#ifndef NN_RUNNER_MAX_IMAGE
#define NN_RUNNER_MAX_IMAGE (512u * 1024u)
#endif
#ifndef NN_RUNNER_MAX_ARENA
#define NN_RUNNER_MAX_ARENA (256u * 1024u)
#endif
#define NN_RUNNER_MAX_OPS 256u

#ifdef NN_RUNNER_QEMU
#include "qemu/nn_qemu.h"
static uint64_t runner_clock(void) { return nn_qemu_ticks(); }
#else
#include <time.h>
static uint64_t runner_clock(void) {
    struct timespec ts; /* C11's clock; the host numbers are only indicative */
    timespec_get(&ts, TIME_UTC);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
#endif

static uint8_t g_image[NN_RUNNER_MAX_IMAGE] __attribute__((aligned(8)));
static uint8_t g_arena[NN_RUNNER_MAX_ARENA] __attribute__((aligned(8)));
static int8_t g_in[NN_RUNNER_MAX_ARENA];
static int8_t g_out[NN_RUNNER_MAX_ARENA];
static uint64_t g_ticks[NN_RUNNER_MAX_OPS];
static uint64_t g_total[NN_RUNNER_MAX_OPS];

static int info(const dysan_nn_model_t *m) {
    printf("arena_bytes %lu\n", (unsigned long)dysan_nn_arena_bytes(m));
    printf("input_bytes %lu\n", (unsigned long)dysan_nn_input_bytes(m));
    printf("output_bytes %lu\n", (unsigned long)dysan_nn_output_bytes(m));
    printf("input_zero_point %ld\n", (long)dysan_nn_input_zero_point(m));
    printf("output_zero_point %ld\n", (long)dysan_nn_output_zero_point(m));
    printf("input_scale %.9g\n", (double)dysan_nn_input_scale(m));
    printf("output_scale %.9g\n", (double)dysan_nn_output_scale(m));
    printf("dsp %d\n", dysan_nn_uses_dsp());
    for (uint32_t i = 0; i < dysan_nn_op_count(m); i++) {
        printf("op %lu kind %lu macs %lu\n", (unsigned long)i, (unsigned long)dysan_nn_op_kind(m, i),
               (unsigned long)dysan_nn_op_macs(m, i));
    }
    return 0;
}

int main(int argc, char **argv) {
    int profile = 0, want_info = 0, steps = 0, a = 1;
    size_t arena_len = sizeof g_arena;
    for (; a < argc && argv[a][0] == '-' && argv[a][1] == '-'; a++) {
        if (strcmp(argv[a], "--profile") == 0) {
            profile = 1;
        } else if (strcmp(argv[a], "--steps") == 0) {
            steps = 1;
        } else if (strcmp(argv[a], "--info") == 0) {
            want_info = 1;
        } else if (strcmp(argv[a], "--arena") == 0 && a + 1 < argc) {
            const unsigned long n = strtoul(argv[++a], NULL, 10);
            arena_len = n < arena_len ? (size_t)n : arena_len;
        } else {
            fprintf(stderr, "unknown option %s\n", argv[a]);
            return 1;
        }
    }
    if (argc - a != (want_info ? 1 : 3)) {
        fprintf(stderr, "usage: nn_runner [--profile] [--steps] [--arena BYTES] IMAGE INPUTS OUTPUTS | nn_runner --info IMAGE\n");
        return 1;
    }
    const long image_len = nn_read_file(argv[a], g_image, sizeof g_image);
    if (image_len < 0) {
        fprintf(stderr, "cannot read %s\n", argv[a]);
        return 1;
    }
    dysan_nn_model_t m;
    int rc = dysan_nn_load(g_image, (size_t)image_len, &m);
    if (rc != DYSAN_NN_OK) {
        printf("load_error %d %s\n", rc, dysan_nn_strerror(rc));
        return 2;
    }
    if (want_info) {
        return info(&m);
    }
    const size_t n_in = dysan_nn_input_bytes(&m), n_out = dysan_nn_output_bytes(&m);
    if (dysan_nn_arena_bytes(&m) > sizeof g_arena || n_in > sizeof g_in || n_out > sizeof g_out ||
        dysan_nn_op_count(&m) > NN_RUNNER_MAX_OPS) {
        printf("load_error 0 model too large for this runner\n");
        return 2;
    }
    FILE *fin = fopen(argv[a + 1], "rb");
    FILE *fout = fopen(argv[a + 2], "wb");
    if (!fin || !fout) {
        fprintf(stderr, "cannot open %s or %s\n", argv[a + 1], argv[a + 2]);
        return 1;
    }
#ifdef NN_RUNNER_QEMU
    if (profile) {
        const uint32_t iterations = 2000000u;
        printf("calibration instructions %lu ticks %llu\n", 2ul * iterations,
               (unsigned long long)nn_qemu_calibrate(iterations));
    }
#endif
    unsigned long count = 0;
    while (fread(g_in, 1, n_in, fin) == n_in) {
        if (steps) {
            rc = dysan_nn_begin(&m, g_in, g_arena, arena_len);
            for (uint32_t i = 0; !rc && i < dysan_nn_op_count(&m); i++) {
                rc = dysan_nn_step(&m, i, g_arena, arena_len);
            }
            rc = rc ? rc : dysan_nn_end(&m, g_arena, arena_len, g_out);
        } else {
            rc = dysan_nn_invoke_profiled(&m, g_in, g_out, g_arena, arena_len, profile ? runner_clock : NULL, g_ticks,
                                          NN_RUNNER_MAX_OPS);
        }
        if (rc != DYSAN_NN_OK) {
            printf("invoke_error %d %s\n", rc, dysan_nn_strerror(rc));
            return 3;
        }
        if (fwrite(g_out, 1, n_out, fout) != n_out) {
            fprintf(stderr, "write failed\n");
            return 1;
        }
        for (uint32_t i = 0; profile && i < dysan_nn_op_count(&m); i++) {
            g_total[i] += g_ticks[i];
        }
        count++;
    }
    fclose(fin);
    fclose(fout);
    if (profile) {
        printf("dsp %d\n", dysan_nn_uses_dsp());
        for (uint32_t i = 0; i < dysan_nn_op_count(&m); i++) {
            printf("op %lu kind %lu macs %lu ticks %llu\n", (unsigned long)i, (unsigned long)dysan_nn_op_kind(&m, i),
                   (unsigned long)dysan_nn_op_macs(&m, i), (unsigned long long)g_total[i]);
        }
    }
    printf("ok %lu\n", count);
    return 0;
}
