/*
 * rf_runner.c -- the calibration forest's per-window work (features + forest), for the bench and the tests.
 *
 *   rf_runner TABLE WINDOWS LABELS   WINDOWS: N x DYSAN_WINDOW x DYSAN_N_CHANNELS int16 (little-endian),
 *                                    LABELS: N int8, the class dysan_rf_predict gives each window
 *
 * Prints "load_error <code>" and exits 2 when the table is rejected, else "ok <N>". Built natively and for the
 * Cortex-M4F under QEMU (RF_RUNNER_QEMU, the bare-metal harness of tests/qemu: files by semihosting, clock
 * from SysTick under -icount shift=0), where it also prints "calibration instructions <i> ticks <t>" and
 * "features ticks <t> forest ticks <t> max_window ticks <t>" (sums over the N windows, and the largest
 * features + forest of one window): host/dysan/calibration/cost.py turns them into instructions per window.
 * The same dysan_window_features() and dysan_rf_predict() the pipeline's RF stage runs, no allocation.
 */
#include <stdint.h>
#include <stdio.h>

#include "dysan_features.h"
#include "dysan_rf.h"

#define RF_RUNNER_MAX_TABLE (64u * 1024u)

#ifdef RF_RUNNER_QEMU
#include "qemu/nn_qemu.h"
static uint64_t clock_now(void) { return nn_qemu_ticks(); }
#else
static uint64_t clock_now(void) { return 0; } /* native: labels only */
#endif

static uint8_t g_table[RF_RUNNER_MAX_TABLE] __attribute__((aligned(4)));
static int16_t g_window[DYSAN_WINDOW * DYSAN_N_CHANNELS];
static int16_t g_features[DYSAN_N_FEATURES];

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: rf_runner TABLE WINDOWS LABELS\n");
        return 1;
    }
    FILE *ft = fopen(argv[1], "rb");
    if (!ft) {
        fprintf(stderr, "cannot read %s\n", argv[1]);
        return 1;
    }
    const size_t len = fread(g_table, 1, sizeof g_table, ft);
    fclose(ft);
    dysan_rf_t rf;
    const int rc = dysan_rf_load(g_table, len, &rf);
    if (rc != DYSAN_RF_OK) {
        printf("load_error %d\n", rc);
        return 2;
    }
    FILE *fin = fopen(argv[2], "rb");
    FILE *fout = fopen(argv[3], "wb");
    if (!fin || !fout) {
        fprintf(stderr, "cannot open %s or %s\n", argv[2], argv[3]);
        return 1;
    }
#ifdef RF_RUNNER_QEMU
    const uint32_t iterations = 2000000u;
    printf("calibration instructions %lu ticks %llu\n", 2ul * iterations,
           (unsigned long long)nn_qemu_calibrate(iterations));
#endif
    uint64_t t_feat = 0, t_forest = 0, t_max = 0;
    unsigned long count = 0;
    while (fread(g_window, sizeof g_window[0], DYSAN_WINDOW * DYSAN_N_CHANNELS, fin) ==
           DYSAN_WINDOW * DYSAN_N_CHANNELS) {
        const uint64_t t0 = clock_now();
        dysan_window_features(g_window, g_features);
        const uint64_t t1 = clock_now();
        const int label = dysan_rf_predict(&rf, g_features);
        const uint64_t t2 = clock_now();
        t_feat += t1 - t0;
        t_forest += t2 - t1;
        if (t2 - t0 > t_max) {
            t_max = t2 - t0;
        }
        const int8_t out = (int8_t)label;
        fwrite(&out, 1, 1, fout);
        count++;
    }
    fclose(fin);
    fclose(fout);
#ifdef RF_RUNNER_QEMU
    printf("features ticks %llu forest ticks %llu max_window ticks %llu\n", (unsigned long long)t_feat,
           (unsigned long long)t_forest, (unsigned long long)t_max);
#endif
    printf("ok %lu\n", count);
    return 0;
}
