/* dysan_bundle.c -- bundle validation (see dysan_bundle.h). */
#include "dysan_bundle.h"

#include <string.h>

#include "dysan_contract.h"
#include "dysan_jitter.h"
#include "dysan_le.h"

#define WINDOW_VALUES ((uint32_t)DYSAN_WINDOW * (uint32_t)DYSAN_N_CHANNELS)

/* Scales written by the same converter from the same calibration: equal up to float rounding. */
static int same_scale(float a, float b)
{
    const float d = a > b ? a - b : b - a;
    const float m = a > b ? a : b;
    return m > 0.0f && d <= 1e-5f * m;
}

static int fail(dysan_bundle_t *out, dysan_bundle_diag_t *diag, int err, int model, char part, int nn_err)
{
    out->n_models = 0;
    if (diag != NULL) {
        diag->model = model;
        diag->part = part;
        diag->nn_err = nn_err;
    }
    return err;
}

/* An image [off, off + size) inside [lo, bundle_size), aligned. */
static int image_ok(uint32_t off, uint32_t size, uint32_t lo, uint32_t bundle_size)
{
    return off % DYSAN_BUNDLE_ALIGN == 0u && off >= lo && off <= bundle_size && size <= bundle_size - off &&
           size >= 4u;
}

static int load_model(const uint8_t *b, uint32_t bundle_size, uint32_t table_end, const uint8_t *rec,
                      char part, dysan_nn_model_t *m, int *nn_err)
{
    const uint32_t off_field = part == 'S'   ? DYSAN_BUNDLE_MODEL_S_OFF
                               : part == 'P' ? DYSAN_BUNDLE_MODEL_P_OFF
                                             : DYSAN_BUNDLE_MODEL_D_OFF;
    const uint32_t off = dysan_le_get_u32(rec + off_field);
    const uint32_t size = dysan_le_get_u32(rec + off_field + 4u);
    *nn_err = 0;
    if (!image_ok(off, size, table_end, bundle_size)) {
        return DYSAN_BUNDLE_ERR_LAYOUT;
    }
    const int rc = dysan_nn_load(b + off, size, m);
    if (rc != DYSAN_NN_OK) {
        *nn_err = rc;
        return DYSAN_BUNDLE_ERR_MODEL;
    }
    return DYSAN_BUNDLE_OK;
}

int dysan_bundle_load(const uint8_t *region, size_t region_len, size_t arena_cap, dysan_bundle_t *out,
                      dysan_bundle_diag_t *diag)
{
    if (diag != NULL) {
        diag->model = -1;
        diag->part = 0;
        diag->nn_err = 0;
    }
    if (out == NULL) {
        return DYSAN_BUNDLE_ERR_ARG;
    }
    out->n_models = 0;
    if (region == NULL) {
        return fail(out, diag, DYSAN_BUNDLE_ERR_ARG, -1, 0, 0);
    }
    const uint8_t *h = region;
    if (region_len < DYSAN_BUNDLE_HDR_SIZE) {
        return fail(out, diag, DYSAN_BUNDLE_ERR_TRUNCATED, -1, 0, 0);
    }
    if (dysan_le_get_u32(h + DYSAN_BUNDLE_HDR_MAGIC) != DYSAN_BUNDLE_MAGIC) {
        return fail(out, diag, DYSAN_BUNDLE_ERR_MAGIC, -1, 0, 0);
    }
    if (dysan_le_get_u32(h + DYSAN_BUNDLE_HDR_VERSION) != DYSAN_BUNDLE_VERSION) {
        return fail(out, diag, DYSAN_BUNDLE_ERR_VERSION, -1, 0, 0);
    }
    const uint32_t bundle_size = dysan_le_get_u32(h + DYSAN_BUNDLE_HDR_BUNDLE_SIZE);
    if (bundle_size > region_len || bundle_size < DYSAN_BUNDLE_HDR_SIZE) {
        return fail(out, diag, DYSAN_BUNDLE_ERR_TRUNCATED, -1, 0, 0);
    }
    if (dysan_le_get_u32(h + DYSAN_BUNDLE_HDR_HEADER_SIZE) != DYSAN_BUNDLE_HDR_SIZE) {
        return fail(out, diag, DYSAN_BUNDLE_ERR_LAYOUT, -1, 0, 0);
    }
    if (dysan_le_get_u16(h + DYSAN_BUNDLE_HDR_RATE_HZ) != DYSAN_RATE_HZ ||
        dysan_le_get_u16(h + DYSAN_BUNDLE_HDR_WINDOW) != DYSAN_WINDOW ||
        dysan_le_get_u16(h + DYSAN_BUNDLE_HDR_HOP) != DYSAN_HOP ||
        dysan_le_get_u16(h + DYSAN_BUNDLE_HDR_N_CHANNELS) != DYSAN_N_CHANNELS ||
        dysan_le_get_u32(h + DYSAN_BUNDLE_HDR_NORM_SHIFT) != DYSAN_NORM_SHIFT) {
        return fail(out, diag, DYSAN_BUNDLE_ERR_CONTRACT, -1, 0, 0);
    }
    const uint16_t n_models = dysan_le_get_u16(h + DYSAN_BUNDLE_HDR_N_MODELS);
    const uint16_t n_classes = dysan_le_get_u16(h + DYSAN_BUNDLE_HDR_N_CLASSES);
    const uint16_t sens_classes = dysan_le_get_u16(h + DYSAN_BUNDLE_HDR_SENSITIVE_CLASSES);
    const uint16_t default_model = dysan_le_get_u16(h + DYSAN_BUNDLE_HDR_DEFAULT_MODEL);
    const uint16_t segment = dysan_le_get_u16(h + DYSAN_BUNDLE_HDR_SEGMENT);
    const uint16_t candidates = dysan_le_get_u16(h + DYSAN_BUNDLE_HDR_CANDIDATES);
    const uint16_t sx = dysan_le_get_u16(h + DYSAN_BUNDLE_HDR_SCORE_X_Q15);
    const uint16_t sy = dysan_le_get_u16(h + DYSAN_BUNDLE_HDR_SCORE_Y_Q15);
    if (n_models < 1u || n_models > DYSAN_BUNDLE_MAX_MODELS || n_classes < 2u ||
        n_classes > DYSAN_BUNDLE_MAX_CLASSES || sens_classes < 2u || sens_classes > DYSAN_BUNDLE_MAX_CLASSES ||
        default_model >= n_models || segment < 1u || candidates < 1u || sx > 32768u || sy > 32768u) {
        return fail(out, diag, DYSAN_BUNDLE_ERR_SHAPE, -1, 0, 0);
    }
    const uint32_t models_off = dysan_le_get_u32(h + DYSAN_BUNDLE_HDR_MODELS_OFF);
    if (models_off < DYSAN_BUNDLE_HDR_SIZE || models_off % DYSAN_BUNDLE_ALIGN != 0u || models_off > bundle_size ||
        (uint32_t)n_models * DYSAN_BUNDLE_MODEL_SIZE > bundle_size - models_off) {
        return fail(out, diag, DYSAN_BUNDLE_ERR_LAYOUT, -1, 0, 0);
    }
    const uint32_t table_end = models_off + (uint32_t)n_models * DYSAN_BUNDLE_MODEL_SIZE;

    out->image = region;
    out->size = bundle_size;
    out->bundle_id = dysan_le_get_u32(h + DYSAN_BUNDLE_HDR_BUNDLE_ID);
    out->n_classes = n_classes;
    out->sensitive_classes = sens_classes;
    out->default_model = default_model;
    out->segment = segment;
    out->candidates = candidates;
    out->score_x_q15 = sx;
    out->score_y_q15 = sy;
    for (unsigned c = 0; c < DYSAN_N_CHANNELS; c++) {
        out->norm.center[c] = dysan_le_get_i32(h + DYSAN_BUNDLE_HDR_CENTER0 + 4u * c);
        out->norm.mult[c] = dysan_le_get_i32(h + DYSAN_BUNDLE_HDR_MULT0 + 4u * c);
    }
    out->norm.zero_point = dysan_le_get_i32(h + DYSAN_BUNDLE_HDR_INPUT_ZP);
    if (out->norm.zero_point < -128 || out->norm.zero_point > 127) {
        return fail(out, diag, DYSAN_BUNDLE_ERR_QUANT, -1, 0, 0);
    }
    /* The on-device jitter (dysan_jitter.h): flags this loader knows, amplitudes the transform accepts. */
    const uint32_t flags = dysan_le_get_u32(h + DYSAN_BUNDLE_HDR_FLAGS);
    const uint32_t angle = dysan_le_get_u32(h + DYSAN_BUNDLE_HDR_JITTER_ANGLE_Q14);
    const uint32_t gain = dysan_le_get_u32(h + DYSAN_BUNDLE_HDR_JITTER_GAIN_Q14);
    out->jitter = (flags & DYSAN_BUNDLE_FLAG_JITTER) != 0u;
    if ((flags & ~DYSAN_BUNDLE_KNOWN_FLAGS) != 0u ||
        (out->jitter && (angle > DYSAN_JITTER_MAX_ANGLE_Q14 || gain > DYSAN_JITTER_MAX_GAIN_Q14))) {
        return fail(out, diag, DYSAN_BUNDLE_ERR_SHAPE, -1, 0, 0);
    }
    out->jitter_angle_q14 = out->jitter ? (int32_t)angle : 0;
    out->jitter_gain_q14 = out->jitter ? (int32_t)gain : 0;

    uint32_t max_arena = 0;
    float in_scale = 0.0f;
    for (uint16_t i = 0; i < n_models; i++) {
        const uint8_t *rec = region + models_off + (uint32_t)i * DYSAN_BUNDLE_MODEL_SIZE;
        dysan_bundle_model_t *m = &out->models[i];
        m->alpha_milli = dysan_le_get_u16(rec + DYSAN_BUNDLE_MODEL_ALPHA_MILLI);
        m->lambda_milli = dysan_le_get_u16(rec + DYSAN_BUNDLE_MODEL_LAMBDA_MILLI);
        const char parts[3] = {'S', 'P', 'D'};
        dysan_nn_model_t *nm[3] = {&m->s, &m->p, &m->d};
        for (unsigned k = 0; k < 3u; k++) {
            int nn_err = 0;
            const int rc = load_model(region, bundle_size, table_end, rec, parts[k], nm[k], &nn_err);
            if (rc != DYSAN_BUNDLE_OK) {
                return fail(out, diag, rc, i, parts[k], nn_err);
            }
            const size_t arena = dysan_nn_arena_bytes(nm[k]);
            if (arena > arena_cap) {
                return fail(out, diag, DYSAN_BUNDLE_ERR_ARENA, i, parts[k], 0);
            }
            if (arena > max_arena) {
                max_arena = (uint32_t)arena;
            }
        }
        /* S: window -> window, on the shared input quantization. */
        if (dysan_nn_input_bytes(&m->s) != WINDOW_VALUES || dysan_nn_output_bytes(&m->s) != WINDOW_VALUES) {
            return fail(out, diag, DYSAN_BUNDLE_ERR_IO, i, 'S', 0);
        }
        if (dysan_nn_input_zero_point(&m->s) != out->norm.zero_point) {
            return fail(out, diag, DYSAN_BUNDLE_ERR_QUANT, i, 'S', 0);
        }
        if (i == 0u) {
            in_scale = dysan_nn_input_scale(&m->s);
        } else if (!same_scale(dysan_nn_input_scale(&m->s), in_scale)) {
            return fail(out, diag, DYSAN_BUNDLE_ERR_QUANT, i, 'S', 0);
        }
        /* P and D read S's output as it is. */
        const float s_scale = dysan_nn_output_scale(&m->s);
        const int32_t s_zp = dysan_nn_output_zero_point(&m->s);
        /* The jitter's requantization: S's output / input scale ratio (Q16) as S's quantization says. */
        m->s_out_ratio_q16 = dysan_le_get_u32(rec + DYSAN_BUNDLE_MODEL_S_OUT_RATIO_Q16);
        if (out->jitter) {
            const float want = s_scale / dysan_nn_input_scale(&m->s) * 65536.0f;
            const float got = (float)m->s_out_ratio_q16;
            const float d = got > want ? got - want : want - got;
            int32_t out_mult[DYSAN_N_CHANNELS];
            if (!(d <= 1.0f + 1e-5f * want) || s_zp < -128 || s_zp > 127 ||
                dysan_jitter_out_mult(out->norm.mult, m->s_out_ratio_q16, out_mult) != 0) {
                return fail(out, diag, DYSAN_BUNDLE_ERR_QUANT, i, 'S', 0);
            }
        }
        const dysan_nn_model_t *reader[2] = {&m->p, &m->d};
        const size_t classes[2] = {n_classes, sens_classes};
        for (unsigned k = 0; k < 2u; k++) {
            const char part = k == 0u ? 'P' : 'D';
            if (dysan_nn_input_bytes(reader[k]) != WINDOW_VALUES || dysan_nn_output_bytes(reader[k]) != classes[k]) {
                return fail(out, diag, DYSAN_BUNDLE_ERR_IO, i, part, 0);
            }
            if (dysan_nn_input_zero_point(reader[k]) != s_zp || !same_scale(dysan_nn_input_scale(reader[k]), s_scale)) {
                return fail(out, diag, DYSAN_BUNDLE_ERR_QUANT, i, part, 0);
            }
        }
    }
    out->max_arena = max_arena;
    out->n_models = n_models;
    return DYSAN_BUNDLE_OK;
}

const char *dysan_bundle_strerror(int err)
{
    switch (err) {
    case DYSAN_BUNDLE_OK:
        return "ok";
    case DYSAN_BUNDLE_ERR_ARG:
        return "bad argument";
    case DYSAN_BUNDLE_ERR_TRUNCATED:
        return "truncated";
    case DYSAN_BUNDLE_ERR_MAGIC:
        return "not a bundle (magic)";
    case DYSAN_BUNDLE_ERR_VERSION:
        return "unsupported bundle version";
    case DYSAN_BUNDLE_ERR_CONTRACT:
        return "data contract differs";
    case DYSAN_BUNDLE_ERR_LAYOUT:
        return "bad layout";
    case DYSAN_BUNDLE_ERR_SHAPE:
        return "counts out of range";
    case DYSAN_BUNDLE_ERR_MODEL:
        return "bad model image";
    case DYSAN_BUNDLE_ERR_IO:
        return "model sizes do not chain";
    case DYSAN_BUNDLE_ERR_QUANT:
        return "quantization mismatch";
    case DYSAN_BUNDLE_ERR_ARENA:
        return "arena too small";
    default:
        return "unknown error";
    }
}
