/* Flat entry points over the portable core for tests/test_core_c.py (ctypes): integers and byte buffers
 * only, so no C struct needs mirroring in Python. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "dysan_features.h"
#include "dysan_preprocess.h"
#include "dysan_rf.h"

void shim_features(const int16_t *windows, size_t n, int16_t *out)
{
    for (size_t i = 0; i < n; i++) {
        dysan_window_features(windows + i * DYSAN_WINDOW * DYSAN_N_CHANNELS, out + i * DYSAN_N_FEATURES);
    }
}

/* Loads the table, then predicts n feature rows into out. Returns the load status. */
int shim_rf_predict(const uint8_t *table, size_t len, const int16_t *features, size_t n, int32_t *out)
{
    dysan_rf_t rf;
    int rc = dysan_rf_load(table, len, &rf);
    if (rc != DYSAN_RF_OK) {
        return rc;
    }
    for (size_t i = 0; i < n; i++) {
        out[i] = dysan_rf_predict(&rf, features + i * DYSAN_N_FEATURES);
    }
    return 0;
}

void shim_quantize(const int16_t *counts, size_t n_samples, const int32_t *center, const int32_t *mult,
                   int32_t zp, int8_t *out)
{
    dysan_norm_t norm;
    memcpy(norm.center, center, sizeof norm.center);
    memcpy(norm.mult, mult, sizeof norm.mult);
    norm.zero_point = zp;
    dysan_quantize_samples(&norm, counts, n_samples, out);
}
