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
 * values, signal-major (8 signals x 8 stats, the order of features.FEATURE_NAMES). */
void dysan_window_features(const int16_t *window, int16_t *out);

/* floor(sqrt(v)), exact. */
uint32_t dysan_isqrt64(uint64_t v);

#ifdef __cplusplus
}
#endif

#endif /* DYSAN_FEATURES_H */
