/* Window normalization + int8 quantization: see dysan_preprocess.h. */
#include "dysan_preprocess.h"

#include "dysan_intmath.h"

void dysan_quantize_samples(const dysan_norm_t *norm, const int16_t *counts, size_t n_samples, int8_t *out)
{
    const int64_t half = (int64_t)1 << (DYSAN_NORM_SHIFT - 1);
    for (size_t i = 0; i < n_samples; i++) {
        for (size_t c = 0; c < DYSAN_N_CHANNELS; c++) {
            int64_t x = (int64_t)counts[i * DYSAN_N_CHANNELS + c] - norm->center[c];
            int64_t q = dysan_floor_shift(x * norm->mult[c] + half, DYSAN_NORM_SHIFT) + norm->zero_point;
            out[i * DYSAN_N_CHANNELS + c] = (int8_t)(q < -128 ? -128 : (q > 127 ? 127 : q));
        }
    }
}
