/*
 * dysan_features.h -- integer window features of the calibration random forest.
 *
 * The same arithmetic as host/dysan/features.py (floor divisions, exact integer square roots, int16
 * saturation), so the forest the host trains sees on the device exactly the features it was trained on.
 */
#ifndef DYSAN_FEATURES_H
#define DYSAN_FEATURES_H

#include <stdint.h>

#include "dysan_contract.h"

#ifdef __cplusplus
extern "C" {
#endif

/* `window`: DYSAN_WINDOW samples x DYSAN_N_CHANNELS int16 counts, sample-major. `out`: DYSAN_N_FEATURES
 * values in the order of features.FEATURE_NAMES: 11 signals x 8 stats (signal-major), then the cadence (peak,
 * lag) of acc_mag and acc_vert. No allocation; about 1.4 KB of stack (two signal buffers + the cadence). */
void dysan_window_features(const int16_t *window, int16_t *out);

/* floor(sqrt(v)), exact. */
uint32_t dysan_isqrt64(uint64_t v);

#ifdef __cplusplus
}
#endif

#endif /* DYSAN_FEATURES_H */
