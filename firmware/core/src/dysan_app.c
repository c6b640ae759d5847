/* dysan_app.c -- the device application (see dysan_app.h). One static instance: no allocation. */
#include "dysan_app.h"

#include <string.h>

#include "dysan_auth.h"
#include "dysan_bundle.h"
#include "dysan_frame.h"
#include "dysan_jitter.h"
#include "dysan_msg.h"
#include "dysan_pipeline.h"
#include "dysan_port.h"
#include "dysan_proto.h"
#include "dysan_retx.h"
#include "dysan_rf.h"
#include "dysan_sampler.h"
#include "dysan_sha256.h"
#include "dysan_state.h"
#include "dysan_window.h"
#include "dysan_xfer.h"

#define LINK_READ_CHUNK 64u
#define TX_CAP DYSAN_FRAME_ENCODED_BOUND(DYSAN_MSG_MAX_PAYLOAD)

typedef struct {
    /* link */
    dysan_frame_decoder_t dec;
    dysan_msg_t rx;
    dysan_msg_t tx;
    uint8_t scratch[DYSAN_MSG_MAX_PAYLOAD];
    uint8_t out[TX_CAP];
    uint16_t tx_seq;
    uint32_t msg_errors;
    /* identity, auth, persistent state */
    dysan_auth_t auth;
    dysan_state_t state;
    uint8_t device_id[DYSAN_DEVICE_ID_SIZE];
    uint32_t jitter_seed; /* dysan_jitter_seed of the key and this boot's epoch: secret, never sent */
    uint8_t jitter_seed_ok;
    const char *no_seed; /* why there is no jitter seed this boot (NULL: there is, or not provisioned) */
    /* models (the loaded views live in the ML-path objects below) */
    dysan_bundle_t *bundle;
    int bundle_valid;
    uint8_t bundle_hash8[8];
    uint32_t bundle_version;
    dysan_rf_t rf;
    int rf_valid;
    dysan_xfer_t xfer_bundle, xfer_rf;
    /* stream */
    uint8_t mode;
    uint8_t calib_active, calib_from_replay;
    uint16_t calib_left;
    uint32_t raw_seq;
    uint32_t next_seq; /* SANITIZED_WINDOW sequence numbers, from 1, never reused until reboot */
    dysan_window_t *win;
    int16_t *window;
    dysan_retx_t retx;
    uint32_t windows_sent, windows_retransmitted, raw_windows_sent;
    uint64_t work_link;
    dysan_pipe_t *pipe;
    /* sampling (IMU-fed streams): the ring, the port's loss counter, where the latest gap is */
    dysan_sampler_t *ring;
    uint32_t port_lost_seen;  /* dysan_port_imu_lost() already accounted for */
    uint32_t samples_acquired, samples_missed, windows_with_gaps, windows_late, backlog_max;
    uint32_t stream_samples;  /* samples of the current stream taken into window assembly */
    uint32_t gap_at;          /* stream index of the latest sample that follows a loss */
    uint8_t gap_seen;         /* gap_at is valid */
    uint64_t work_idle;
} app_t;

static app_t g_app;

/* The ML path's RAM, as separate objects so the benchmark can read each size from the ELF (nm -S): the
 * pipeline (arena, segment buffers, kept outputs), the loaded bundle view, the sample ring, one window. */
static dysan_pipe_t ml_pipe;
static dysan_bundle_t ml_bundle;
static dysan_window_t ml_ring;
static int16_t ml_window[DYSAN_WINDOW * DYSAN_N_CHANNELS];
/* The on-device jitter of a sent window (bundles with DYSAN_BUNDLE_FLAG_JITTER): counts and the result. */
static int16_t ml_jitter_counts[DYSAN_WINDOW * DYSAN_N_CHANNELS];
static int8_t ml_jitter_out[DYSAN_WINDOW * DYSAN_N_CHANNELS];
/* The sample ring between the IMU and the pipeline (dysan_sampler.h). */
static dysan_sampler_t ml_samples;

/* ---- text for LOG / ERROR lines (no stdio in the firmware) ---------------------------------------------- */

typedef struct {
    char s[DYSAN_TEXT_MAX + 1];
    size_t n;
} text_t;

static void t_str(text_t *t, const char *s)
{
    while (*s != '\0' && t->n < DYSAN_TEXT_MAX) {
        t->s[t->n++] = *s++;
    }
    t->s[t->n] = '\0';
}

static void t_u32(text_t *t, uint32_t v)
{
    char d[10];
    int n = 0;
    do {
        d[n++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v != 0u && n < 10);
    while (n > 0 && t->n < DYSAN_TEXT_MAX) {
        t->s[t->n++] = d[--n];
    }
    t->s[t->n] = '\0';
}

static void t_int(text_t *t, int v)
{
    if (v < 0) {
        t_str(t, "-");
        t_u32(t, (uint32_t)(-(int64_t)v));
    } else {
        t_u32(t, (uint32_t)v);
    }
}

/* ---- sending ------------------------------------------------------------------------------------------ */

static void send_tx(app_t *a)
{
    size_t written = 0;
    if (dysan_proto_encode(&a->tx, a->tx_seq, a->scratch, sizeof a->scratch, a->out, sizeof a->out, &written) ==
        DYSAN_OK) {
        a->tx_seq++;
        (void)dysan_port_link_write(a->out, written);
    }
}

static void send_log(app_t *a, uint8_t level, const char *text)
{
    memset(&a->tx, 0, sizeof a->tx);
    a->tx.id = DYSAN_MSG_LOG;
    a->tx.body.log.level = level;
    size_t n = strlen(text);
    n = n < DYSAN_MSG_LOG_TEXT_MAX ? n : DYSAN_MSG_LOG_TEXT_MAX;
    memcpy(a->tx.body.log.text, text, n);
    a->tx.body.log.text_len = (uint16_t)n;
    send_tx(a);
}

static void send_error(app_t *a, int code, const dysan_frame_t *f, const char *text)
{
    dysan_proto_error(&a->tx, (uint16_t)code, f->msg_id, f->seq, text);
    send_tx(a);
}

static void send_cmd_ok(app_t *a, const dysan_frame_t *f)
{
    memset(&a->tx, 0, sizeof a->tx);
    a->tx.id = DYSAN_MSG_CMD_OK;
    a->tx.body.cmd_ok.ref_msg = f->msg_id;
    a->tx.body.cmd_ok.ref_seq = f->seq;
    a->tx.body.cmd_ok.auth_counter = a->auth.last_counter;
    send_tx(a);
}

static void send_window(app_t *a, const dysan_msg_sanitized_window_t *w, uint8_t extra_flags)
{
    a->tx.id = DYSAN_MSG_SANITIZED_WINDOW;
    a->tx.body.sanitized_window = *w;
    a->tx.body.sanitized_window.flags = (uint8_t)(w->flags | extra_flags);
    send_tx(a);
}

/* ---- settings, schedule, readiness -------------------------------------------------------------------- */

static const dysan_settings_t *settings(const app_t *a) { return &a->state.settings; }

static int stream_enabled(const app_t *a) { return (settings(a)->flags & DYSAN_STATE_F_STREAM) != 0u; }

/* The schedule in force: CONFIGURE's when one was received, else the bundle's defaults. */
static void schedule(const app_t *a, uint16_t *segment, uint16_t *candidates, uint16_t *x, uint16_t *y)
{
    const dysan_settings_t *s = settings(a);
    if (s->flags & DYSAN_STATE_F_CONFIG) {
        *segment = s->segment_len;
        *candidates = s->candidates;
        *x = s->weight_x;
        *y = s->weight_y;
    } else if (a->bundle_valid) {
        *segment = a->bundle->segment;
        *candidates = a->bundle->candidates;
        *x = a->bundle->score_x_q15;
        *y = a->bundle->score_y_q15;
    } else {
        *segment = *candidates = *x = *y = 0u;
    }
}

/* The value D's hits are counted against: the stated one, or 0 when none was stated (a two-valued attribute,
 * whose score does not depend on it). */
static uint8_t sensitive_value(const app_t *a)
{
    return (settings(a)->flags & DYSAN_STATE_F_SENSITIVE) ? settings(a)->sensitive_value : 0u;
}

/* Why sanitized windows cannot be produced now (NULL: they can), in `t`. */
static const char *not_ready(const app_t *a, text_t *t)
{
    uint16_t seg, cand, x, y;
    schedule(a, &seg, &cand, &x, &y);
    t->n = 0;
    t->s[0] = '\0';
    if (!a->bundle_valid) {
        t_str(t, "no valid model bundle");
    } else if (!a->rf_valid) {
        t_str(t, "no calibration RF loaded");
    } else if (a->rf.n_classes != a->bundle->n_classes) {
        t_str(t, "RF has ");
        t_u32(t, a->rf.n_classes);
        t_str(t, " classes, the bundle ");
        t_u32(t, a->bundle->n_classes);
    } else if (!(settings(a)->flags & DYSAN_STATE_F_SENSITIVE) && a->bundle->sensitive_classes > 2u) {
        /* Two values: the score is the same whatever the value (selection.py), so it is never asked for. */
        t_str(t, "sensitive value not set");
    } else if (a->bundle->jitter && !a->jitter_seed_ok) {
        t_str(t, a->no_seed != NULL ? a->no_seed : "the bundle's jitter needs a provisioned device (its secret seed)");
    } else if (sensitive_value(a) >= a->bundle->sensitive_classes) {
        t_str(t, "sensitive value out of range");
    } else if (seg < 1u || seg > DYSAN_PIPE_MAX_SEGMENT) {
        t_str(t, "segment length out of range");
    } else {
        return NULL;
    }
    return t->s;
}

/* ---- the sanitized stream ----------------------------------------------------------------------------- */

static void emit(void *ctx, uint8_t model_id, uint8_t rf_label, const int8_t *data)
{
    app_t *a = (app_t *)ctx;
    if (!stream_enabled(a)) {
        return;
    }
    const uint64_t t0 = dysan_port_cycles();
    if (a->bundle->jitter) {
        /* The sanitizers were trained through it: the window leaves rotated and scaled at random, by the
         * device's secret seed and the window's sequence number (dysan_jitter.h). */
        const dysan_bundle_model_t *bm = &a->bundle->models[model_id];
        if (!a->jitter_seed_ok ||
            dysan_jitter_int8(data, ml_jitter_out, ml_jitter_counts, DYSAN_WINDOW, &a->bundle->norm,
                              dysan_nn_output_zero_point(&bm->s), bm->s_out_ratio_q16, a->jitter_seed, a->next_seq,
                              a->bundle->jitter_angle_q14, a->bundle->jitter_gain_q14) != 0) {
            send_log(a, DYSAN_LOG_ERROR, "jitter refused a window: not sent");
            return;
        }
        data = ml_jitter_out;
    }
    dysan_msg_sanitized_window_t *w = dysan_retx_push(&a->retx);
    w->seq = a->next_seq++;
    w->model_id = model_id;
    w->rf_label = rf_label;
    w->flags = (uint8_t)(DYSAN_WINDOW_FLAG_RF_LABEL_VALID | (a->mode == DYSAN_MODE_REPLAY ? DYSAN_WINDOW_FLAG_REPLAYED : 0u) |
                         a->pipe->emitting_flags);
    memcpy(w->data, data, sizeof w->data);
    send_window(a, w, 0u);
    a->windows_sent++;
    a->work_link += dysan_port_cycles() - t0;
}

static void pipeline_failed(app_t *a, int rc)
{
    text_t t = {{0}, 0};
    t_str(&t, rc == DYSAN_PIPE_ERR_RF ? "RF returned no valid label" : "inference failed");
    t_str(&t, ": sanitization stopped (re-upload the bundle / RF)");
    if (rc == DYSAN_PIPE_ERR_RF) {
        a->rf_valid = 0;
    } else {
        a->bundle_valid = 0;
    }
    dysan_pipe_disable(a->pipe);
    send_log(a, DYSAN_LOG_ERROR, t.s);
}

static void drain_ring(app_t *a);
static void stream_reset(app_t *a);

/* Ends the stream in progress (the samples already acquired are processed, its partial segment is sent)
 * and starts a new one with what is in force now. `announce`: say why no sanitized windows will come. */
static void restart_stream(app_t *a, int announce)
{
    drain_ring(a);
    stream_reset(a);
    if (a->pipe->ready) {
        const int rc = dysan_pipe_flush(a->pipe, emit, a);
        if (rc != DYSAN_PIPE_OK) {
            pipeline_failed(a, rc);
        }
    }
    dysan_window_reset(a->win);
    text_t t;
    const char *why = not_ready(a, &t);
    if (why == NULL) {
        uint16_t seg, cand, x, y;
        schedule(a, &seg, &cand, &x, &y);
        const dysan_pipe_config_t cfg = {a->bundle, &a->rf, sensitive_value(a), seg, cand, x, y};
        if (dysan_pipe_configure(a->pipe, &cfg) != DYSAN_PIPE_OK) {
            why = "pipeline configuration refused";
        }
    } else {
        dysan_pipe_disable(a->pipe);
    }
    if (why != NULL && announce && (a->mode == DYSAN_MODE_STREAMING || a->mode == DYSAN_MODE_REPLAY)) {
        text_t msg = {{0}, 0};
        t_str(&msg, "no sanitized output: ");
        t_str(&msg, why);
        send_log(a, DYSAN_LOG_WARN, msg.s);
    }
}

/* SAMPLES stand in for the IMU: in REPLAY mode and in a calibration session opened from it. */
static int replaying(const app_t *a)
{
    return a->mode == DYSAN_MODE_REPLAY || (a->calib_active && a->calib_from_replay);
}

/* Samples come from the IMU, through the sample ring: STREAMING, and calibration not opened from REPLAY. */
static int imu_fed(const app_t *a)
{
    return a->mode == DYSAN_MODE_STREAMING || (a->calib_active && !a->calib_from_replay);
}

static void close_calibration(app_t *a)
{
    a->calib_active = 0;
    a->mode = DYSAN_MODE_IDLE;
    dysan_window_reset(a->win);
    stream_reset(a);
}

/* A window is complete in `a->win`. `flags`: SAMPLES_MISSED / LATE, for the window's frame. `sliced`: leave
 * its scoring to dysan_pipe_step (the IMU path); otherwise it is processed at once (replay, drains). */
static void window_ready(app_t *a, uint8_t flags, int sliced)
{
    dysan_window_copy(a->win, a->window);
    if (flags & DYSAN_WINDOW_FLAG_SAMPLES_MISSED) {
        a->windows_with_gaps++;
    }
    if (flags & DYSAN_WINDOW_FLAG_LATE) {
        a->windows_late++;
    }
    if (a->calib_active) {
        a->tx.id = DYSAN_MSG_RAW_WINDOW;
        a->tx.body.raw_window.seq = a->raw_seq++;
        memcpy(a->tx.body.raw_window.samples, a->window, sizeof ml_window);
        send_tx(a);
        a->raw_windows_sent++;
        if (a->calib_left > 0u && --a->calib_left == 0u) {
            close_calibration(a);
            send_log(a, DYSAN_LOG_INFO, "calibration session closed: max_windows reached");
        }
        return;
    }
    if (a->pipe->ready && (a->mode == DYSAN_MODE_STREAMING || a->mode == DYSAN_MODE_REPLAY)) {
        int rc = dysan_pipe_begin(a->pipe, a->window, flags);
        while (rc == DYSAN_PIPE_OK && !sliced && dysan_pipe_busy(a->pipe)) {
            rc = dysan_pipe_step(a->pipe, emit, a);
            rc = rc == DYSAN_PIPE_MORE ? DYSAN_PIPE_OK : rc;
        }
        if (rc != DYSAN_PIPE_OK) {
            pipeline_failed(a, rc);
        }
    }
}

/* A replayed sample (SAMPLES frames): its window is processed at once; the host paces the replay. */
static void push_sample(app_t *a, const int16_t *sample)
{
    if (dysan_window_push(a->win, sample)) {
        window_ready(a, 0u, 0);
    }
}

/* ---- sampling: IMU -> sample ring -> windows (docs/firmware.md, "Sampling and real time") -------------- */

/* Forgets the ring and the gap position, and takes the port's loss counter as the new baseline: what the
 * IMU lost outside a stream (nobody read it) is not a loss of this stream. */
static void stream_reset(app_t *a)
{
    dysan_sampler_reset(a->ring);
    a->port_lost_seen = dysan_port_imu_lost();
    a->stream_samples = 0u;
    a->gap_seen = 0u;
}

/* Moves what the IMU has (its FIFO, or the port's interrupt-fed buffer) into the ring; losses upstream
 * mark a gap before the next sample. At most a ring's worth per call, so a port that never runs dry cannot
 * hold the loop. Returns 1 when it moved something. */
static int acquire(app_t *a)
{
    int16_t sample[DYSAN_N_CHANNELS];
    int moved = 0;
    for (uint32_t n = 0; n < DYSAN_SAMPLER_SLOTS; n++) {
        const uint32_t lost = dysan_port_imu_lost();
        if (lost != a->port_lost_seen) {
            dysan_sampler_lost(a->ring, lost - a->port_lost_seen);
            a->samples_missed += lost - a->port_lost_seen;
            a->port_lost_seen = lost;
        }
        if (!dysan_port_imu_read(sample)) {
            break;
        }
        if (dysan_sampler_push(a->ring, sample)) {
            a->samples_acquired++;
        } else {
            a->samples_missed++;
        }
        moved = 1;
    }
    const uint32_t backlog = dysan_sampler_count(a->ring);
    a->backlog_max = backlog > a->backlog_max ? backlog : a->backlog_max;
    return moved;
}

/* Takes samples from the ring into window assembly until one completes (then its preprocess + RF run, the
 * first slice of its work). Returns 1 when a window completed, 0 when the ring ran dry. */
static int take_samples(app_t *a, int sliced)
{
    int16_t sample[DYSAN_N_CHANNELS];
    uint8_t gap = 0;
    while (imu_fed(a) && dysan_sampler_pop(a->ring, sample, &gap)) {
        const uint32_t idx = a->stream_samples;
        a->stream_samples = idx + 1u < idx ? idx : idx + 1u;
        if (gap) {
            a->gap_at = idx;
            a->gap_seen = 1u;
        }
        if (dysan_window_push(a->win, sample)) {
            /* The window holds samples idx - WINDOW + 1 .. idx: a loss between two of them is inside it. */
            uint8_t flags = 0u;
            if (a->gap_seen && a->gap_at + DYSAN_WINDOW > idx + 1u) {
                flags |= DYSAN_WINDOW_FLAG_SAMPLES_MISSED;
            }
            if (dysan_sampler_count(a->ring) >= DYSAN_HOP) {
                flags |= DYSAN_WINDOW_FLAG_LATE; /* a whole hop already waits behind this window */
            }
            window_ready(a, flags, sliced);
            return 1;
        }
    }
    return 0;
}

/* The stream is ending: what the ring holds was acquired during it, so it is processed (at once). */
static void drain_ring(app_t *a)
{
    if (!imu_fed(a)) {
        return;
    }
    while (a->pipe->ready && dysan_pipe_busy(a->pipe)) { /* the window in flight first */
        const int rc = dysan_pipe_step(a->pipe, emit, a);
        if (rc < 0) {
            pipeline_failed(a, rc);
        }
    }
    (void)acquire(a);
    while (take_samples(a, 0)) {
    }
}

/* ---- models: bundle and RF ---------------------------------------------------------------------------- */

/* Loads the bundle region. `committed`: the settings describe the upload that should be there. */
static void load_bundle(app_t *a, text_t *why)
{
    size_t cap = 0;
    const uint8_t *region = dysan_port_region(DYSAN_REGION_BUNDLE, &cap);
    const dysan_settings_t *s = settings(a);
    dysan_bundle_diag_t diag;
    a->bundle_valid = 0;
    why->n = 0;
    why->s[0] = '\0';
    if (region == NULL) {
        t_str(why, "no BUNDLE region");
        return;
    }
    const int rc = dysan_bundle_load(region, cap, DYSAN_PIPE_ARENA_BYTES, a->bundle, &diag);
    if (rc != DYSAN_BUNDLE_OK) {
        t_str(why, "bundle refused: ");
        t_str(why, dysan_bundle_strerror(rc));
        if (diag.model >= 0) {
            t_str(why, " (model ");
            t_int(why, diag.model);
            const char part[2] = {diag.part, '\0'};
            t_str(why, " ");
            t_str(why, part);
            if (diag.nn_err != 0) {
                t_str(why, ": ");
                t_str(why, dysan_nn_strerror(diag.nn_err));
            }
            t_str(why, ")");
        }
        return;
    }
    uint8_t hash[DYSAN_SHA256_SIZE];
    dysan_sha256(region, a->bundle->size, hash);
    if ((s->flags & DYSAN_STATE_F_BUNDLE) &&
        (s->bundle_size != a->bundle->size || memcmp(s->bundle_hash8, hash, 8) != 0)) {
        a->bundle->n_models = 0;
        t_str(why, "bundle region differs from the committed upload (interrupted upload?)");
        return;
    }
    memcpy(a->bundle_hash8, hash, 8);
    a->bundle_version = (s->flags & DYSAN_STATE_F_BUNDLE) ? s->bundle_version : a->bundle->bundle_id;
    a->bundle_valid = 1;
}

static void load_rf(app_t *a, text_t *why)
{
    size_t cap = 0;
    const uint8_t *region = dysan_port_region(DYSAN_REGION_RF, &cap);
    const dysan_settings_t *s = settings(a);
    a->rf_valid = 0;
    why->n = 0;
    why->s[0] = '\0';
    if (region == NULL) {
        t_str(why, "no RF region");
        return;
    }
    const int rc = dysan_rf_load(region, cap, &a->rf);
    if (rc != DYSAN_RF_OK) {
        t_str(why, "RF refused: error ");
        t_int(why, rc);
        return;
    }
    if (s->flags & DYSAN_STATE_F_RF) {
        uint8_t hash[DYSAN_SHA256_SIZE];
        dysan_sha256(region, a->rf.size, hash);
        if (s->rf_size != a->rf.size || memcmp(s->rf_hash8, hash, 8) != 0) {
            t_str(why, "RF region differs from the committed upload (interrupted upload?)");
            return;
        }
    }
    a->rf_valid = 1;
}

/* ---- commands ----------------------------------------------------------------------------------------- */

static void on_hello(app_t *a, int authenticated, uint32_t nonce)
{
    uint16_t seg, cand, x, y;
    schedule(a, &seg, &cand, &x, &y);
    const dysan_settings_t *s = settings(a);
    memset(&a->tx, 0, sizeof a->tx);
    a->tx.id = DYSAN_MSG_INFO;
    dysan_msg_info_t *i = &a->tx.body.info;
    i->proto_version = DYSAN_PROTO_VERSION;
    i->fw_version = DYSAN_FW_VERSION;
    memcpy(i->device_id, a->device_id, sizeof i->device_id);
    i->mode = a->mode;
    i->calib_active = a->calib_active;
    i->stream_enabled = (uint8_t)stream_enabled(a);
    i->bundle_valid = (uint8_t)a->bundle_valid;
    if (a->bundle_valid) {
        memcpy(i->bundle_hash, a->bundle_hash8, sizeof i->bundle_hash);
        i->bundle_version = a->bundle_version;
        i->model_count = (uint8_t)a->bundle->n_models;
    }
    i->rf_loaded = (uint8_t)a->rf_valid;
    i->sensitive_set = (s->flags & DYSAN_STATE_F_SENSITIVE) ? 1u : 0u;
    /* The attribute the device exists to hide: disclosed only to an authenticated HELLO. */
    i->sensitive_value = authenticated && i->sensitive_set ? s->sensitive_value : 0xFFu; /* 0xFF: undisclosed */
    i->auth_counter = a->auth.last_counter;
    i->segment_len = (uint8_t)(seg > 255u ? 255u : seg);
    i->candidates = (uint8_t)(cand > 255u ? 255u : cand);
    i->weight_x = x;
    i->weight_y = y;
    i->boot_epoch = s->boot_epoch;
    /* The tag binds the host's fresh nonce: a spoofed or recorded INFO cannot move the host's counter. */
    size_t len = 0;
    if (a->auth.provisioned && dysan_msg_pack(&a->tx, a->scratch, sizeof a->scratch, &len) == DYSAN_OK &&
        len == DYSAN_MSG_INFO_SIZE) {
        dysan_auth_tag(a->auth.key, a->auth.device_id, DYSAN_MSG_INFO, nonce, a->scratch, DYSAN_MSG_INFO_OFF_TAG,
                       i->tag);
    }
    send_tx(a);
}

static void on_stats(app_t *a)
{
    memset(&a->tx, 0, sizeof a->tx);
    a->tx.id = DYSAN_MSG_STATS;
    dysan_msg_stats_t *s = &a->tx.body.stats;
    const dysan_pipe_stats_t *p = &a->pipe->stats;
    s->frames_ok = a->dec.stats.frames_ok;
    s->crc_errors = a->dec.stats.crc_errors;
    s->cobs_errors = a->dec.stats.cobs_errors;
    s->length_errors = a->dec.stats.length_errors;
    s->header_errors = a->dec.stats.header_errors;
    s->msg_errors = a->msg_errors;
    s->auth_failures = a->auth.failures;
    s->replays_refused = a->auth.replays;
    s->windows_sent = a->windows_sent;
    s->windows_acked = a->retx.acked;
    s->windows_dropped = a->retx.dropped;
    s->windows_retransmitted = a->windows_retransmitted;
    s->raw_windows_sent = a->raw_windows_sent;
    s->uptime_ms = dysan_port_millis();
    s->stage_windows = p->windows;
    s->candidates_scored = p->candidates_scored;
    s->sanitizer_runs = p->sanitizer_runs;
    s->work_preprocess = p->work[DYSAN_STAGE_PREPROCESS];
    s->work_rf = p->work[DYSAN_STAGE_RF];
    s->work_score = p->work[DYSAN_STAGE_SCORE];
    s->work_sanitize = p->work[DYSAN_STAGE_SANITIZE];
    s->work_link = a->work_link;
    s->work_total = p->work[DYSAN_STAGE_TOTAL];
    s->kernel_conv_macs = p->conv_macs;
    s->kernel_conv_work = p->conv_work;
    s->kernel_fc_macs = p->fc_macs;
    s->kernel_fc_work = p->fc_work;
    s->samples_acquired = a->samples_acquired;
    s->samples_missed = a->samples_missed;
    s->windows_with_gaps = a->windows_with_gaps;
    s->windows_late = a->windows_late;
    s->rx_overflows = dysan_port_link_overflows();
    s->backlog_max = a->backlog_max;
    s->work_idle = a->work_idle;
    s->cycles = dysan_port_cycles();
    send_tx(a);
}

/* Persists `s` or answers ERROR STORAGE; returns 1 when saved. */
static int save_settings(app_t *a, const dysan_frame_t *f, const dysan_settings_t *s)
{
    if (dysan_state_save(&a->state, s) != DYSAN_OK) {
        send_error(a, DYSAN_ERR_STORAGE, f, "settings could not be persisted");
        return 0;
    }
    return 1;
}

static void on_configure(app_t *a, const dysan_frame_t *f, const dysan_msg_configure_t *c)
{
    if (c->segment_len > DYSAN_PIPE_MAX_SEGMENT) {
        a->msg_errors++;
        text_t t = {{0}, 0};
        t_str(&t, "segment_len > ");
        t_u32(&t, DYSAN_PIPE_MAX_SEGMENT);
        t_str(&t, " (windows buffered per segment)");
        send_error(a, DYSAN_ERR_BAD_FIELD, f, t.s);
        return;
    }
    dysan_settings_t s = *settings(a);
    s.flags = (uint8_t)((s.flags | DYSAN_STATE_F_CONFIG) & ~DYSAN_STATE_F_STREAM);
    s.flags = (uint8_t)(s.flags | (c->stream_enable ? DYSAN_STATE_F_STREAM : 0u));
    s.segment_len = c->segment_len;
    s.candidates = c->candidates;
    s.weight_x = c->weight_x;
    s.weight_y = c->weight_y;
    if (save_settings(a, f, &s)) {
        restart_stream(a, 1);
        send_cmd_ok(a, f);
    }
}

static void on_set_sensitive(app_t *a, const dysan_frame_t *f, uint8_t value)
{
    dysan_settings_t s = *settings(a);
    s.flags = (uint8_t)(s.flags | DYSAN_STATE_F_SENSITIVE);
    s.sensitive_value = value;
    if (save_settings(a, f, &s)) {
        restart_stream(a, 1);
        send_cmd_ok(a, f);
    }
}

static void on_set_mode(app_t *a, const dysan_frame_t *f, uint8_t mode)
{
    if (mode == DYSAN_MODE_CALIBRATION) {
        send_error(a, DYSAN_ERR_WRONG_MODE, f, "calibration starts with CALIB_START");
        return;
    }
    if (mode == DYSAN_MODE_REPLAY && !DYSAN_APP_REPLAY) {
        send_error(a, DYSAN_ERR_WRONG_MODE, f, "this build has an IMU: no replay");
        return;
    }
    if (a->calib_active) {
        close_calibration(a);
    }
    /* The old stream's partial segment is flushed in the old mode (its windows keep their flags). */
    restart_stream(a, 0);
    a->mode = mode;
    send_cmd_ok(a, f);
    restart_stream(a, 1);
}

static void on_calib_start(app_t *a, const dysan_frame_t *f, uint16_t max_windows)
{
    const int from_replay = replaying(a);
    restart_stream(a, 0);
    a->mode = DYSAN_MODE_CALIBRATION;
    a->calib_active = 1;
    a->calib_from_replay = (uint8_t)from_replay;
    a->calib_left = max_windows;
    a->raw_seq = 0;
    dysan_window_reset(a->win);
    stream_reset(a);
    send_cmd_ok(a, f);
}

static void on_calib_stop(app_t *a, const dysan_frame_t *f)
{
    if (a->calib_active) {
        close_calibration(a);
    }
    send_cmd_ok(a, f);
}

static void on_samples(app_t *a, const dysan_msg_samples_t *m)
{
    /* Ignored outside replay (docs/protocol.md); checked per sample, since a calibration session that
     * reaches max_windows mid-frame returns the device to IDLE. */
    for (uint8_t i = 0; i < m->count && replaying(a); i++) {
        push_sample(a, &m->samples[(size_t)i * DYSAN_N_CHANNELS]);
    }
}

static void on_resend(app_t *a, uint32_t from_seq)
{
    for (uint32_t i = 0; i < a->retx.count; i++) {
        const dysan_msg_sanitized_window_t *w = dysan_retx_get(&a->retx, i);
        if (w != NULL && w->seq >= from_seq) {
            send_window(a, w, DYSAN_WINDOW_FLAG_RETRANSMIT);
            a->windows_retransmitted++;
        }
    }
}

static void send_xfer_status(app_t *a, const dysan_xfer_t *x)
{
    memset(&a->tx, 0, sizeof a->tx);
    a->tx.id = DYSAN_MSG_XFER_STATUS;
    dysan_xfer_status(x, &a->tx.body.xfer_status);
    send_tx(a);
}

static void xfer_begin(app_t *a, const dysan_frame_t *f, dysan_xfer_t *x, uint32_t total, const uint8_t *sha,
                       uint32_t version)
{
    size_t cap = 0;
    if (dysan_port_region(x->region, &cap) == NULL || total == 0u || total > cap) {
        send_error(a, DYSAN_ERR_XFER_SIZE, f, "image size 0 or larger than the region");
        return;
    }
    const int in_progress = x->state == DYSAN_XFER_STATE_RECEIVING || x->state == DYSAN_XFER_STATE_COMPLETE;
    const int resume = in_progress && x->total == total && memcmp(x->sha, sha, DYSAN_SHA256_SIZE) == 0;
    if (!resume) {
        /* The region is about to be erased: finish the stream on the old models, then stop using them. */
        restart_stream(a, 0);
        if (x->target == DYSAN_XFER_TARGET_BUNDLE) {
            a->bundle_valid = 0;
        } else {
            a->rf_valid = 0;
        }
        dysan_pipe_disable(a->pipe);
    }
    int resumed = 0;
    const int rc = dysan_xfer_begin(x, total, sha, version, &resumed);
    if (rc != DYSAN_OK) {
        send_error(a, rc, f, "region erase failed");
        return;
    }
    send_xfer_status(a, x);
}

static void xfer_chunk(app_t *a, const dysan_frame_t *f, dysan_xfer_t *x, uint32_t offset, const uint8_t *data,
                       size_t n)
{
    const int rc = dysan_xfer_chunk(x, offset, data, n);
    if (rc == DYSAN_ERR_XFER_SIZE) {
        send_error(a, rc, f, "chunk past the announced size");
        return;
    }
    if (rc == DYSAN_ERR_STORAGE) {
        send_error(a, rc, f, "flash write failed");
        return;
    }
    send_xfer_status(a, x); /* also for an ignored chunk or no transfer: it says where to continue */
}

static void xfer_commit(app_t *a, const dysan_frame_t *f, dysan_xfer_t *x, const uint8_t *sha)
{
    int failed = 0;
    const int rc = dysan_xfer_commit(x, sha, &failed);
    if (rc == DYSAN_ERR_XFER_STATE) {
        send_error(a, rc, f, "upload not complete");
        return;
    }
    if (rc == DYSAN_ERR_XFER_HASH && !failed) {
        send_error(a, rc, f, "hash differs from BEGIN's");
        return;
    }
    const int is_bundle = x->target == DYSAN_XFER_TARGET_BUNDLE;
    text_t why = {{0}, 0};
    if (rc == DYSAN_OK) {
        /* Record the committed image first, so the load below checks the region against it. */
        dysan_settings_t s = *settings(a);
        if (is_bundle) {
            s.flags = (uint8_t)(s.flags | DYSAN_STATE_F_BUNDLE);
            s.bundle_size = x->total;
            s.bundle_version = x->version;
            memcpy(s.bundle_hash8, x->sha, 8);
        } else {
            s.flags = (uint8_t)(s.flags | DYSAN_STATE_F_RF);
            s.rf_size = x->total;
            s.rf_version = x->version;
            memcpy(s.rf_hash8, x->sha, 8);
        }
        if (dysan_state_save(&a->state, &s) != DYSAN_OK) {
            x->state = DYSAN_XFER_STATE_FAILED;
            t_str(&why, "commit could not be persisted");
        } else if (is_bundle) {
            load_bundle(a, &why);
            if (!a->bundle_valid) {
                x->state = DYSAN_XFER_STATE_FAILED;
            }
        } else {
            load_rf(a, &why);
            if (!a->rf_valid) {
                x->state = DYSAN_XFER_STATE_FAILED;
            }
        }
    } else {
        t_str(&why, "the region does not hash to BEGIN's SHA-256: upload again");
    }
    send_xfer_status(a, x);
    if (x->state == DYSAN_XFER_STATE_FAILED) {
        send_log(a, DYSAN_LOG_ERROR, why.s);
    } else {
        restart_stream(a, 1);
    }
}

static void handle_frame(app_t *a, const dysan_frame_t *f)
{
    int authenticated = 0;
    const int rc = dysan_proto_accept(f, DYSAN_DIR_H2D, &a->auth, &a->rx, &authenticated);
    if (rc != DYSAN_OK) {
        if (rc == DYSAN_ERR_UNKNOWN_MSG || rc == DYSAN_ERR_WRONG_DIRECTION || rc == DYSAN_ERR_BAD_LENGTH ||
            rc == DYSAN_ERR_BAD_FIELD) {
            a->msg_errors++;
        }
        const char *why = rc == DYSAN_ERR_AUTH_REQUIRED   ? "command must be signed"
                          : rc == DYSAN_ERR_AUTH_FAILED   ? "bad auth tag"
                          : rc == DYSAN_ERR_REPLAY        ? "stale auth counter (replay)"
                          : rc == DYSAN_ERR_NOT_PROVISIONED ? "device not provisioned"
                          : rc == DYSAN_ERR_STORAGE       ? "auth counter could not be persisted"
                                                          : "frame refused";
        send_error(a, rc, f, why);
        return;
    }
    const dysan_msg_body_t *b = &a->rx.body;
    switch (a->rx.id) {
    case DYSAN_MSG_HELLO:
        on_hello(a, authenticated, b->hello.nonce);
        break;
    case DYSAN_MSG_PING:
        memset(&a->tx, 0, sizeof a->tx);
        a->tx.id = DYSAN_MSG_PONG;
        a->tx.body.pong.nonce = b->ping.nonce;
        a->tx.body.pong.millis = dysan_port_millis();
        send_tx(a);
        break;
    case DYSAN_MSG_STATS_REQ:
        on_stats(a);
        break;
    case DYSAN_MSG_CONFIGURE:
        on_configure(a, f, &b->configure);
        break;
    case DYSAN_MSG_SET_MODE:
        on_set_mode(a, f, b->set_mode.mode);
        break;
    case DYSAN_MSG_SET_SENSITIVE:
        on_set_sensitive(a, f, b->set_sensitive.value);
        break;
    case DYSAN_MSG_CALIB_START:
        on_calib_start(a, f, b->calib_start.max_windows);
        break;
    case DYSAN_MSG_CALIB_STOP:
        on_calib_stop(a, f);
        break;
    case DYSAN_MSG_SAMPLES:
        on_samples(a, &b->samples);
        break;
    case DYSAN_MSG_ACK:
        (void)dysan_retx_ack(&a->retx, b->ack.seq);
        break;
    case DYSAN_MSG_RESEND:
        on_resend(a, b->resend.from_seq);
        break;
    case DYSAN_MSG_BUNDLE_BEGIN:
        xfer_begin(a, f, &a->xfer_bundle, b->bundle_begin.total_size, b->bundle_begin.sha256,
                   b->bundle_begin.version);
        break;
    case DYSAN_MSG_BUNDLE_CHUNK:
        xfer_chunk(a, f, &a->xfer_bundle, b->bundle_chunk.offset, b->bundle_chunk.data, b->bundle_chunk.data_len);
        break;
    case DYSAN_MSG_BUNDLE_COMMIT:
        xfer_commit(a, f, &a->xfer_bundle, b->bundle_commit.sha256);
        break;
    case DYSAN_MSG_RF_BEGIN:
        xfer_begin(a, f, &a->xfer_rf, b->rf_begin.total_size, b->rf_begin.sha256, b->rf_begin.version);
        break;
    case DYSAN_MSG_RF_CHUNK:
        xfer_chunk(a, f, &a->xfer_rf, b->rf_chunk.offset, b->rf_chunk.data, b->rf_chunk.data_len);
        break;
    case DYSAN_MSG_RF_COMMIT:
        xfer_commit(a, f, &a->xfer_rf, b->rf_commit.sha256);
        break;
    default:
        a->msg_errors++;
        send_error(a, DYSAN_ERR_WRONG_DIRECTION, f, "not a command");
        break;
    }
}

/* ---- init and main loop ------------------------------------------------------------------------------- */

/* This boot's jitter seed: raise STATE's boot epoch and derive the seed from the key and the new epoch
 * (dysan_jitter_seed). Sequence numbers restart at 1 on every boot; without a new, persisted epoch a boot
 * would replay an earlier boot's transforms, so when the epoch cannot be raised (no STATE, a failed write,
 * all epochs used) there is no seed and a jitter bundle is not streamed. Returns NULL, or why not. */
static const char *new_boot_seed(app_t *a, const uint8_t *key, size_t key_len)
{
    dysan_settings_t s = *settings(a);
    if (s.boot_epoch >= DYSAN_JITTER_EPOCH_MAX) {
        return "boot epochs used up: the bundle's jitter cannot start a new series";
    }
    s.boot_epoch = (uint16_t)(s.boot_epoch + 1u);
    if (dysan_state_save(&a->state, &s) != DYSAN_OK) {
        return "boot epoch not persisted (STATE): the bundle's jitter cannot start a new series";
    }
    a->jitter_seed = dysan_jitter_seed(key, key_len, s.boot_epoch);
    a->jitter_seed_ok = 1;
    return NULL;
}

void dysan_app_init(void)
{
    app_t *a = &g_app;
    memset(a, 0, sizeof *a);
    a->pipe = &ml_pipe;
    a->bundle = &ml_bundle;
    a->win = &ml_ring;
    a->window = ml_window;
    a->ring = &ml_samples;
    dysan_sampler_reset(a->ring);
    dysan_frame_decoder_init(&a->dec);
    dysan_retx_init(&a->retx);
    dysan_window_reset(a->win);
    dysan_pipe_init(a->pipe, dysan_port_cycles);
    dysan_xfer_init(&a->xfer_bundle, DYSAN_REGION_BUNDLE, DYSAN_XFER_TARGET_BUNDLE);
    dysan_xfer_init(&a->xfer_rf, DYSAN_REGION_RF, DYSAN_XFER_TARGET_RF);
    a->mode = DYSAN_MODE_IDLE;
    a->next_seq = 1;

    const int state_ok = dysan_state_open(&a->state) == DYSAN_OK;
    uint8_t key[DYSAN_AUTH_KEY_SIZE];
    const int provisioned = dysan_port_identity(a->device_id, key) == 0;
    if (!provisioned) {
        memset(a->device_id, 0, sizeof a->device_id);
    } else {
        a->no_seed = new_boot_seed(a, key, sizeof key);
    }
    dysan_auth_init(&a->auth, provisioned ? a->device_id : NULL, provisioned ? key : NULL,
                    a->state.counter.value, dysan_state_persist_counter, &a->state);
    dysan_wipe(key, sizeof key);

    text_t why_bundle = {{0}, 0};
    text_t why_rf = {{0}, 0};
    load_bundle(a, &why_bundle);
    load_rf(a, &why_rf);

    text_t t = {{0}, 0};
    t_str(&t, "dysan fw ");
    t_u32(&t, DYSAN_FW_VERSION >> 16);
    t_str(&t, ".");
    t_u32(&t, (DYSAN_FW_VERSION >> 8) & 0xFFu);
    t_str(&t, ": bundle ");
    if (a->bundle_valid) {
        t_u32(&t, a->bundle->n_models);
        t_str(&t, " models, RF ");
    } else {
        t_str(&t, "none, RF ");
    }
    t_str(&t, a->rf_valid ? "loaded" : "none");
    t_str(&t, dysan_nn_uses_dsp() ? ", int8 kernels: DSP (SMLAD)" : ", int8 kernels: portable");
    send_log(a, DYSAN_LOG_INFO, t.s);
    if (!provisioned) {
        send_log(a, DYSAN_LOG_WARN, "not provisioned: every signed command is refused");
    }
    if (!state_ok) {
        send_log(a, DYSAN_LOG_ERROR, "STATE region unusable: signed commands are refused");
    }
    if (a->no_seed != NULL && a->bundle_valid && a->bundle->jitter) {
        send_log(a, DYSAN_LOG_ERROR, a->no_seed);
    }
    if (!a->bundle_valid) {
        send_log(a, DYSAN_LOG_WARN, why_bundle.s);
    }
    if (!a->rf_valid && why_rf.n > 0u && (settings(a)->flags & DYSAN_STATE_F_RF)) {
        send_log(a, DYSAN_LOG_WARN, why_rf.s);
    }
}

void dysan_app_poll(void)
{
    app_t *a = &g_app;
    uint8_t buf[LINK_READ_CHUNK];
    const size_t n = dysan_port_link_read(buf, sizeof buf);
    for (size_t i = 0; i < n; i++) {
        dysan_frame_t f;
        if (dysan_frame_feed(&a->dec, buf[i], &f)) {
            handle_frame(a, &f);
        }
    }
    int busy = n > 0u;
    if (imu_fed(a)) {
        /* Between two calls at most one slice runs (one inference, ~4 ms at 64 MHz), so the IMU's FIFO is
         * drained long before it can overflow; the ring absorbs the pipeline's lag. */
        busy |= acquire(a);
        if (a->pipe->ready && dysan_pipe_busy(a->pipe)) {
            const int rc = dysan_pipe_step(a->pipe, emit, a);
            if (rc < 0) {
                pipeline_failed(a, rc);
            }
            busy = 1;
        } else {
            busy |= take_samples(a, 1);
        }
    }
    if (!busy) {
        const uint64_t t0 = dysan_port_cycles();
        dysan_port_idle();
        a->work_idle += dysan_port_cycles() - t0;
    }
}
