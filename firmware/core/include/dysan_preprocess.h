/*
 * dysan_preprocess.h -- int16 counts to the sanitizers' int8 input (host/dysan/preprocess.py).
 *
 *   q = clamp(zp + floor(((x - center_c) * M_c + 2^(S-1)) / 2^S), -128, 127),  S = DYSAN_NORM_SHIFT
 *
 * center_c, M_c and zp travel in the model bundle. Integer only: the host computes the same bytes.
 */
#ifndef DYSAN_PREPROCESS_H
#define DYSAN_PREPROCESS_H

#include <stddef.h>
#include <stdint.h>

#include "dysan_contract.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int32_t center[DYSAN_N_CHANNELS];
    int32_t mult[DYSAN_N_CHANNELS];
    int32_t zero_point;
} dysan_norm_t;

/* `n_samples` samples of DYSAN_N_CHANNELS counts -> as many int8 values, same layout. */
void dysan_quantize_samples(const dysan_norm_t *norm, const int16_t *counts, size_t n_samples, int8_t *out);

#ifdef __cplusplus
}
#endif

#endif /* DYSAN_PREPROCESS_H */
