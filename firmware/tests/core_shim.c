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

/* ---- selection, bundle loader, pipeline (tests/test_select_c.py, tests/test_app_pipeline.py) ---------- */

#include "dysan_bundle.h"
#include "dysan_pipeline.h"
#include "dysan_select.h"
#include "dysan_window.h"

/* The models evaluated on each of n_windows windows (row-major n_windows x n_models bytes, 0/1). */
void shim_schedule(uint32_t n_windows, uint16_t n_models, uint16_t candidates, uint32_t first_window, uint8_t *mask)
{
    const uint16_t k = dysan_schedule_k(candidates, n_models);
    memset(mask, 0, (size_t)n_windows * n_models);
    for (uint32_t w = 0; w < n_windows; w++) {
        for (uint16_t j = 0; j < k; j++) {
            mask[(size_t)w * n_models + dysan_schedule_candidate(first_window + w, j, k, n_models)] = 1;
        }
    }
}

int64_t shim_select_score(uint32_t n, uint32_t a, uint32_t s, uint16_t x, uint16_t y)
{
    return dysan_select_score(n, a, s, x, y);
}

/* selection.select in C: hit tables and evaluated mask are n_windows x n_models bytes (0/1); a segment's
 * score counts it and the rounds - 1 segments before it. Also checks the running leader against the winner
 * on every segment: returns -2 if they ever disagree. */
int shim_select(const uint8_t *act, const uint8_t *sens, const uint8_t *evaluated, uint32_t n_windows,
                uint16_t n_models, uint16_t segment, uint16_t x, uint16_t y, uint16_t default_model, uint16_t rounds,
                int32_t *chosen)
{
    static dysan_select_t sel;
    if (segment == 0u || dysan_select_reset(&sel, n_models, x, y) != 0 ||
        dysan_select_set_schedule(&sel, segment, rounds) != 0) {
        return -1;
    }
    for (uint32_t start = 0; start < n_windows; start += segment) {
        const uint32_t end = start + segment < n_windows ? start + segment : n_windows;
        for (uint32_t w = start; w < end; w++) {
            dysan_select_next_window(&sel);
            for (uint16_t m = 0; m < n_models; m++) {
                const size_t i = (size_t)w * n_models + m;
                if (evaluated[i] && dysan_select_record(&sel, m, act[i], sens[i]) < 0) {
                    return -1;
                }
            }
        }
        const uint16_t winner = dysan_select_winner(&sel, default_model);
        if (sel.leader >= 0 && (uint16_t)sel.leader != winner) {
            return -2;
        }
        for (uint32_t w = start; w < end; w++) {
            chosen[w] = winner;
        }
    }
    return 0;
}

uint16_t shim_schedule_rounds(uint16_t segment, uint16_t candidates, uint16_t n_models)
{
    return dysan_schedule_rounds(segment, candidates, n_models);
}

/* Loads a bundle image; info[0..5] = n_models, n_classes, max_arena, diag model, diag part, diag nn error. */
int shim_bundle_load(const uint8_t *image, size_t len, size_t arena_cap, int32_t *info)
{
    static dysan_bundle_t b;
    dysan_bundle_diag_t diag;
    const int rc = dysan_bundle_load(image, len, arena_cap, &b, &diag);
    info[0] = b.n_models;
    info[1] = rc == DYSAN_BUNDLE_OK ? b.n_classes : 0;
    info[2] = rc == DYSAN_BUNDLE_OK ? (int32_t)b.max_arena : 0;
    info[3] = diag.model;
    info[4] = diag.part;
    info[5] = diag.nn_err;
    return rc;
}

/* The device pipeline in-process: window assembly over n_samples samples, every window through the
 * pipeline, the partial segment flushed when `flush`. Writes up to max_out windows: model id, RF label and
 * the int8 data (750 bytes each); *n_out receives how many were emitted. stats[0..4] = windows,
 * candidates scored, sanitizer runs, reused outputs, emitted. Returns 0 or a negative error. */
typedef struct {
    uint8_t *model;
    uint8_t *label;
    int8_t *data;
    uint32_t n, max;
} shim_sink_t;

static void shim_emit(void *ctx, uint8_t model_id, uint8_t rf_label, const int8_t *data)
{
    shim_sink_t *s = (shim_sink_t *)ctx;
    if (s->n < s->max) {
        s->model[s->n] = model_id;
        s->label[s->n] = rf_label;
        memcpy(s->data + (size_t)s->n * DYSAN_PIPE_WINDOW_VALUES, data, DYSAN_PIPE_WINDOW_VALUES);
    }
    s->n++;
}

int shim_pipeline(const uint8_t *bundle, size_t bundle_len, const uint8_t *rf_table, size_t rf_len, uint8_t sensitive,
                  uint16_t segment, uint16_t candidates, uint16_t x, uint16_t y, const int16_t *samples,
                  size_t n_samples, int flush, uint8_t *model, uint8_t *label, int8_t *data, uint32_t max_out,
                  uint32_t *n_out, uint32_t *stats)
{
    static dysan_bundle_t b;
    static dysan_rf_t rf;
    static dysan_pipe_t p;
    static dysan_window_t win;
    static int16_t window[DYSAN_WINDOW * DYSAN_N_CHANNELS];
    *n_out = 0;
    if (dysan_bundle_load(bundle, bundle_len, DYSAN_PIPE_ARENA_BYTES, &b, NULL) != DYSAN_BUNDLE_OK) {
        return -10;
    }
    if (dysan_rf_load(rf_table, rf_len, &rf) != DYSAN_RF_OK) {
        return -11;
    }
    dysan_pipe_init(&p, NULL);
    const dysan_pipe_config_t cfg = {&b, &rf, sensitive, segment, candidates, x, y};
    if (dysan_pipe_configure(&p, &cfg) != DYSAN_PIPE_OK) {
        return -12;
    }
    dysan_window_reset(&win);
    shim_sink_t sink = {model, label, data, 0, max_out};
    for (size_t i = 0; i < n_samples; i++) {
        if (dysan_window_push(&win, samples + i * DYSAN_N_CHANNELS)) {
            dysan_window_copy(&win, window);
            const int rc = dysan_pipe_window(&p, window, shim_emit, &sink);
            if (rc != DYSAN_PIPE_OK) {
                return rc;
            }
        }
    }
    if (flush) {
        const int rc = dysan_pipe_flush(&p, shim_emit, &sink);
        if (rc != DYSAN_PIPE_OK) {
            return rc;
        }
    }
    *n_out = sink.n;
    stats[0] = p.stats.windows;
    stats[1] = p.stats.candidates_scored;
    stats[2] = p.stats.sanitizer_runs;
    stats[3] = p.stats.reused;
    stats[4] = p.stats.emitted;
    return 0;
}
