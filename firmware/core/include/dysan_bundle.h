/*
 * dysan_bundle.h -- the model bundle loader (host/dysan/export/bundle_format.py is the layout).
 *
 * A bundle arrives as data -- linked into the BUNDLE region or uploaded over the radio link -- so the
 * loader trusts nothing: the header against the region size and the data contract, the model table
 * against the bundle size, every S, P and D image through dysan_nn_load (which checks each image
 * entirely), and then what the pipeline relies on when it chains them:
 *
 *   - S maps a window to a window (DYSAN_WINDOW x DYSAN_N_CHANNELS int8 in and out);
 *   - every S shares the bundle's input quantization (the preprocessing's zero point, one scale), since
 *     one int8 input window feeds every candidate;
 *   - P and D read S's int8 output directly: their input quantization must equal S's output
 *     quantization (the exporter forces it), P has n_classes outputs, D sensitive_classes;
 *   - every arena fits the caller's static arena;
 *   - with DYSAN_BUNDLE_FLAG_JITTER (the sanitizers were trained through dysan_jitter.h's transform, which the
 *     app then applies to every sent window): no unknown flag, amplitudes in range, and each model's S
 *     output / input scale ratio (Q16) equal to its S's quantization and usable (dysan_jitter_out_mult).
 *
 * The bundle stays in place (no copy); the loaded view holds pointers into it. No allocation.
 */
#ifndef DYSAN_BUNDLE_H
#define DYSAN_BUNDLE_H

#include <stddef.h>
#include <stdint.h>

#include "dysan_bundle_format.h"
#include "dysan_nn.h"
#include "dysan_preprocess.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
    DYSAN_BUNDLE_OK = 0,
    DYSAN_BUNDLE_ERR_ARG = -1,
    DYSAN_BUNDLE_ERR_TRUNCATED = -2, /* region shorter than the header or the size the header declares */
    DYSAN_BUNDLE_ERR_MAGIC = -3,
    DYSAN_BUNDLE_ERR_VERSION = -4,
    DYSAN_BUNDLE_ERR_CONTRACT = -5,  /* rate, window, hop, channels or normalization shift differ */
    DYSAN_BUNDLE_ERR_LAYOUT = -6,    /* header size, model table or an image outside the bundle / misaligned */
    DYSAN_BUNDLE_ERR_SHAPE = -7,     /* model / class counts, default model or schedule defaults out of range */
    DYSAN_BUNDLE_ERR_MODEL = -8,     /* an S, P or D image refused by dysan_nn_load (see diag.nn_err) */
    DYSAN_BUNDLE_ERR_IO = -9,        /* input / output sizes that do not chain (window in, window out, classes) */
    DYSAN_BUNDLE_ERR_QUANT = -10,    /* input quantization not shared, or P/D input != S output */
    DYSAN_BUNDLE_ERR_ARENA = -11,    /* a model needs more arena than the firmware has */
};

typedef struct {
    dysan_nn_model_t s, p, d;
    uint16_t alpha_milli, lambda_milli;
    uint32_t s_out_ratio_q16; /* S's output / input scale, Q16 (checked against S's quantization with jitter) */
} dysan_bundle_model_t;

/* Where a load failed, for the LOG line that tells the host why (model -1: the header or table). */
typedef struct {
    int model;
    char part; /* 'S', 'P', 'D', or 0 */
    int nn_err;
} dysan_bundle_diag_t;

typedef struct {
    const uint8_t *image;
    uint32_t size;
    uint32_t bundle_id;
    uint16_t n_models, n_classes, sensitive_classes, default_model;
    uint16_t segment, candidates, score_x_q15, score_y_q15; /* schedule defaults */
    uint32_t max_arena;                                      /* largest arena of any model, measured */
    dysan_norm_t norm;
    uint8_t jitter;                           /* DYSAN_BUNDLE_FLAG_JITTER: jitter every sent window */
    int32_t jitter_angle_q14, jitter_gain_q14; /* its amplitudes (0 without the flag) */
    dysan_bundle_model_t models[DYSAN_BUNDLE_MAX_MODELS];
} dysan_bundle_t;

/* Validates the bundle at the start of `region` (`region_len` readable bytes) and fills *out. `arena_cap`:
 * bytes of the caller's arena. `diag` may be NULL. Returns DYSAN_BUNDLE_OK or a DYSAN_BUNDLE_ERR_*; on error
 * *out is left with n_models = 0. */
int dysan_bundle_load(const uint8_t *region, size_t region_len, size_t arena_cap, dysan_bundle_t *out,
                      dysan_bundle_diag_t *diag);

const char *dysan_bundle_strerror(int err);

#ifdef __cplusplus
}
#endif

#endif /* DYSAN_BUNDLE_H */
