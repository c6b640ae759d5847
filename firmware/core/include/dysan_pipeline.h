/*
 * dysan_pipeline.h -- what the device does with one window (docs/firmware.md; host/dysan/device/reference.py
 * is its Python twin, byte for byte):
 *
 *   1. preprocess: int16 counts -> the sanitizers' int8 input (dysan_quantize_samples), kept for the segment;
 *   2. RF: integer features + the calibration forest -> the activity label of the raw window;
 *   3. score: the round-robin candidates of this window (dysan_select.h), each S_m -> P_m, D_m on S_m's
 *      output: activity hit (P_m says the RF label), sensitive hit (D_m says the stated value);
 *   4. at the end of a segment: the winner (integer score over the segment and the R - 1 before it, ties
 *      lowest index) sanitizes the segment's windows -- reusing S outputs kept while scoring when the winner
 *      was evaluated on that window -- and each sanitized window is handed to `emit` (the app frames, queues
 *      and sends it).
 *
 * Sliced. The work of a window is a resumable state machine, so that the caller can read its link and its
 * IMU between slices: dysan_pipe_begin does steps 1-2 (one slice, ~0.1 M instructions) and each
 * dysan_pipe_step call does one inference -- one candidate's S, or its P, or its D (at most one S: ~0.25 M
 * instructions, 4 ms at 64 MHz) -- or sanitizes and emits one window of the segment. dysan_pipe_window runs
 * a whole window at once (replay, tests); the bytes out are the same either way.
 *
 * Which scoring outputs are kept: one per window, that of the model leading the segment's running score
 * when it was computed (dysan_select_record). On the last window of a segment this is exact -- the winner,
 * if it was a candidate there, was the leader when it ran and nobody overtook it afterwards -- so it saves
 * one S run per segment at least, more when the leader is stable, for one window buffer per segment slot.
 *
 * Work counters (dysan_port_cycles units) per stage, and per-op profiling of every inference for the
 * MACs/instruction of the conv and fully-connected kernels.
 */
#ifndef DYSAN_PIPELINE_H
#define DYSAN_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include "dysan_bundle.h"
#include "dysan_contract.h"
#include "dysan_nn.h"
#include "dysan_rf.h"
#include "dysan_select.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifndef DYSAN_PIPE_MAX_SEGMENT
#define DYSAN_PIPE_MAX_SEGMENT 8u /* windows buffered per segment (the paper's p is 5) */
#endif
#ifndef DYSAN_PIPE_ARENA_BYTES
#define DYSAN_PIPE_ARENA_BYTES (32u * 1024u) /* one arena, reused by every S, P and D run */
#endif
#define DYSAN_PIPE_MAX_PROFILED_OPS 32u
#define DYSAN_PIPE_WINDOW_VALUES (DYSAN_WINDOW * DYSAN_N_CHANNELS)

enum {
    DYSAN_PIPE_MORE = 1, /* dysan_pipe_step: slices of the current window / segment are left */
    DYSAN_PIPE_OK = 0,
    DYSAN_PIPE_ERR_CONFIG = -1, /* no bundle / RF, classes disagree, segment or sensitive value out of range */
    DYSAN_PIPE_ERR_RF = -2,     /* the forest returned no valid label */
    DYSAN_PIPE_ERR_NN = -3,     /* an inference failed (its image changed under us) */
    DYSAN_PIPE_ERR_BUSY = -4,   /* dysan_pipe_begin while the previous window's slices are not done */
};

enum {
    DYSAN_PIPE_PHASE_IDLE = 0, /* ready for the next window */
    DYSAN_PIPE_PHASE_SCORE,    /* scoring the current window's candidates, one inference per slice */
    DYSAN_PIPE_PHASE_EMIT,     /* sanitizing and emitting the segment, one window per slice */
};

enum {
    DYSAN_STAGE_PREPROCESS = 0,
    DYSAN_STAGE_RF,
    DYSAN_STAGE_SCORE,
    DYSAN_STAGE_SANITIZE,
    DYSAN_STAGE_LINK,  /* counted by the caller (emit) */
    DYSAN_STAGE_TOTAL, /* the whole window, emits included */
    DYSAN_STAGE_COUNT
};

typedef struct {
    uint64_t work[DYSAN_STAGE_COUNT];
    uint32_t windows;           /* windows through preprocess / RF / score */
    uint32_t candidates_scored; /* S + P + D evaluations */
    uint32_t sanitizer_runs;    /* S runs in the sanitize stage */
    uint32_t reused;            /* sanitized windows taken from a scoring output */
    uint32_t emitted;
    uint64_t conv_macs, conv_work, fc_macs, fc_work;
} dysan_pipe_stats_t;

typedef struct {
    const dysan_bundle_t *bundle;
    const dysan_rf_t *rf;
    uint8_t sensitive;   /* the user's stated sensitive value */
    uint16_t segment;    /* windows per segment, 1..DYSAN_PIPE_MAX_SEGMENT */
    uint16_t candidates; /* per window (clamped to the model count) */
    uint16_t x_q15, y_q15;
} dysan_pipe_config_t;

/* One sanitized window: the model that made it, the RF label of the raw window, the int8 data. The flags the
 * caller gave that window (dysan_pipe_begin) are in the pipeline's `emitting_flags` during the call. */
typedef void (*dysan_pipe_emit_fn)(void *ctx, uint8_t model_id, uint8_t rf_label, const int8_t *data);

typedef struct {
    dysan_pipe_config_t cfg;
    uint16_t k;
    uint16_t rounds; /* segments a segment's score counts (dysan_schedule_rounds) */
    int ready;
    uint32_t window_index; /* windows since the stream started (the schedule's w) */
    uint16_t fill;         /* windows of the segment in progress (scored ones) */
    /* the state machine of the current window / segment */
    uint8_t phase;       /* DYSAN_PIPE_PHASE_* */
    uint8_t part;        /* next inference of the current candidate: 0 S, 1 P, 2 D */
    uint8_t act_hit;     /* P's verdict on the current candidate, kept for its D slice */
    uint8_t emitting_flags;
    uint16_t cand;       /* current candidate j (< k) */
    uint16_t emit_i;     /* next window of the segment to emit */
    uint16_t winner;     /* the segment's model, while emitting */
    uint8_t flags[DYSAN_PIPE_MAX_SEGMENT]; /* the caller's flags of each window */
    dysan_select_t sel;
    int8_t input[DYSAN_PIPE_MAX_SEGMENT][DYSAN_PIPE_WINDOW_VALUES];
    int8_t kept[DYSAN_PIPE_MAX_SEGMENT][DYSAN_PIPE_WINDOW_VALUES];
    int16_t kept_model[DYSAN_PIPE_MAX_SEGMENT]; /* -1: nothing kept for that window */
    uint8_t label[DYSAN_PIPE_MAX_SEGMENT];
    int16_t features[DYSAN_N_FEATURES];
    int8_t s_out[DYSAN_PIPE_WINDOW_VALUES];
    int8_t logits[DYSAN_BUNDLE_MAX_CLASSES];
    uint64_t op_ticks[DYSAN_PIPE_MAX_PROFILED_OPS];
    dysan_nn_clock_fn clock; /* NULL: no work counters, no profiling */
    dysan_pipe_stats_t stats;
    _Alignas(8) uint8_t arena[DYSAN_PIPE_ARENA_BYTES];
} dysan_pipe_t;

/* Zeroes everything (stats included); not ready until configured. */
void dysan_pipe_init(dysan_pipe_t *p, dysan_nn_clock_fn clock);

/* Checks and takes a configuration, and starts a new stream (window 0, empty segment). DYSAN_PIPE_OK or
 * DYSAN_PIPE_ERR_CONFIG (then the pipeline is not ready). */
int dysan_pipe_configure(dysan_pipe_t *p, const dysan_pipe_config_t *cfg);

/* Not ready any more (e.g. the bundle is being replaced); a partial segment is dropped. */
void dysan_pipe_disable(dysan_pipe_t *p);

/* Starts a new stream with the same configuration: window 0, partial segment dropped. */
void dysan_pipe_restart(dysan_pipe_t *p);

/* Takes one window (DYSAN_WINDOW x DYSAN_N_CHANNELS int16 counts, read only during this call): preprocess
 * and RF, then the window's scoring is pending (dysan_pipe_step). `flags` travel with the window to its
 * emit (emitting_flags). DYSAN_PIPE_OK, DYSAN_PIPE_ERR_BUSY (the previous window is not done: nothing
 * taken), or an error (then the pipeline is idle). */
int dysan_pipe_begin(dysan_pipe_t *p, const int16_t *window, uint8_t flags);

/* One slice: one inference of the scoring, or one window of the segment sanitized and emitted. Returns
 * DYSAN_PIPE_MORE while work is left, DYSAN_PIPE_OK once the pipeline is idle (ready for the next window),
 * or an error (then it is idle, the segment in progress dropped). */
int dysan_pipe_step(dysan_pipe_t *p, dysan_pipe_emit_fn emit, void *ctx);

/* 1 while slices are pending (dysan_pipe_begin would answer DYSAN_PIPE_ERR_BUSY). */
int dysan_pipe_busy(const dysan_pipe_t *p);

/* Processes one window at once (begin + every slice); emits the segment when it is full. */
int dysan_pipe_window(dysan_pipe_t *p, const int16_t *window, dysan_pipe_emit_fn emit, void *ctx);

/* Ends the segment in progress early: finishes the pending slices, then selects on the windows so far and
 * emits them (none: no-op). */
int dysan_pipe_flush(dysan_pipe_t *p, dysan_pipe_emit_fn emit, void *ctx);

#ifdef __cplusplus
}
#endif

#endif /* DYSAN_PIPELINE_H */
