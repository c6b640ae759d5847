/* dysan_pipeline.c -- the per-window pipeline (see dysan_pipeline.h). */
#include "dysan_pipeline.h"

#include <string.h>

#include "dysan_features.h"
#include "dysan_nn_format.h"
#include "dysan_preprocess.h"

static uint64_t now(const dysan_pipe_t *p) { return p->clock != NULL ? p->clock() : 0u; }

void dysan_pipe_init(dysan_pipe_t *p, dysan_nn_clock_fn clock)
{
    memset(p, 0, sizeof *p);
    p->clock = clock;
}

static void new_segment(dysan_pipe_t *p)
{
    p->fill = 0;
    p->phase = DYSAN_PIPE_PHASE_IDLE;
}

/* A new stream: window 0, no hit history, nothing pending. */
static void new_stream(dysan_pipe_t *p)
{
    p->window_index = 0;
    new_segment(p);
    (void)dysan_select_reset(&p->sel, p->cfg.bundle->n_models, p->cfg.x_q15, p->cfg.y_q15);
    (void)dysan_select_set_schedule(&p->sel, p->cfg.segment, p->rounds);
    (void)dysan_select_set_classes(&p->sel, p->cfg.bundle->sensitive_classes);
}

int dysan_pipe_configure(dysan_pipe_t *p, const dysan_pipe_config_t *cfg)
{
    p->ready = 0;
    p->fill = 0;
    p->window_index = 0;
    p->phase = DYSAN_PIPE_PHASE_IDLE;
    if (cfg == NULL || cfg->bundle == NULL || cfg->rf == NULL || cfg->bundle->n_models == 0u ||
        cfg->bundle->n_models > DYSAN_SELECT_MAX_MODELS || cfg->rf->n_classes != cfg->bundle->n_classes ||
        cfg->segment < 1u || cfg->segment > DYSAN_PIPE_MAX_SEGMENT ||
        cfg->sensitive >= cfg->bundle->sensitive_classes || cfg->x_q15 > 32768u || cfg->y_q15 > 32768u ||
        cfg->bundle->max_arena > sizeof p->arena) {
        return DYSAN_PIPE_ERR_CONFIG;
    }
    p->cfg = *cfg;
    p->k = dysan_schedule_k(cfg->candidates, cfg->bundle->n_models);
    p->rounds = dysan_schedule_rounds(cfg->segment, cfg->candidates, cfg->bundle->n_models);
    new_stream(p);
    p->ready = 1;
    return DYSAN_PIPE_OK;
}

void dysan_pipe_disable(dysan_pipe_t *p)
{
    p->ready = 0;
    p->fill = 0;
    p->window_index = 0;
    p->phase = DYSAN_PIPE_PHASE_IDLE;
}

void dysan_pipe_restart(dysan_pipe_t *p)
{
    p->window_index = 0;
    p->phase = DYSAN_PIPE_PHASE_IDLE;
    if (p->ready) {
        new_stream(p);
    }
}

/* One inference, profiled: per-op work of the conv and fully-connected kernels with their MACs. */
static int run(dysan_pipe_t *p, const dysan_nn_model_t *m, const int8_t *in, int8_t *out)
{
    const int rc = dysan_nn_invoke_profiled(m, in, out, p->arena, sizeof p->arena, p->clock, p->op_ticks,
                                            DYSAN_PIPE_MAX_PROFILED_OPS);
    if (rc != DYSAN_NN_OK) {
        return rc;
    }
    if (p->clock != NULL) {
        uint32_t n = dysan_nn_op_count(m);
        n = n < DYSAN_PIPE_MAX_PROFILED_OPS ? n : DYSAN_PIPE_MAX_PROFILED_OPS;
        for (uint32_t i = 0; i < n; i++) {
            const uint32_t kind = dysan_nn_op_kind(m, i);
            if (kind == DYSAN_NN_KIND_CONV_2D || kind == DYSAN_NN_KIND_DEPTHWISE_CONV_2D) {
                p->stats.conv_macs += dysan_nn_op_macs(m, i);
                p->stats.conv_work += p->op_ticks[i];
            } else if (kind == DYSAN_NN_KIND_FULLY_CONNECTED) {
                p->stats.fc_macs += dysan_nn_op_macs(m, i);
                p->stats.fc_work += p->op_ticks[i];
            }
        }
    }
    return DYSAN_NN_OK;
}

/* First index of the largest logit (numpy's argmax). Not dysan_select.c's leader_of: that one ranks int64
 * scores of a struct and answers -1 when no score beats -1. */
static uint8_t argmax_i8(const int8_t *v, size_t n)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++) {
        if (v[i] > v[best]) {
            best = i;
        }
    }
    return (uint8_t)best;
}

int dysan_pipe_busy(const dysan_pipe_t *p) { return p->phase != DYSAN_PIPE_PHASE_IDLE; }

int dysan_pipe_begin(dysan_pipe_t *p, const int16_t *window, uint8_t flags)
{
    if (!p->ready || window == NULL) {
        return DYSAN_PIPE_ERR_CONFIG;
    }
    if (p->phase != DYSAN_PIPE_PHASE_IDLE) {
        return DYSAN_PIPE_ERR_BUSY;
    }
    const dysan_bundle_t *b = p->cfg.bundle;
    const uint16_t slot = p->fill;
    const uint64_t t0 = now(p);

    dysan_quantize_samples(&b->norm, window, DYSAN_WINDOW, p->input[slot]);
    const uint64_t t1 = now(p);

    dysan_window_features(window, p->features);
    const int label = dysan_rf_predict(p->cfg.rf, p->features);
    const uint64_t t2 = now(p);
    if (label < 0 || label >= (int)b->n_classes) {
        return DYSAN_PIPE_ERR_RF;
    }
    p->label[slot] = (uint8_t)label;
    p->kept_model[slot] = -1;
    p->flags[slot] = flags;
    dysan_select_next_window(&p->sel);
    p->phase = DYSAN_PIPE_PHASE_SCORE;
    p->cand = 0;
    p->part = 0;

    p->stats.work[DYSAN_STAGE_PREPROCESS] += t1 - t0;
    p->stats.work[DYSAN_STAGE_RF] += t2 - t1;
    p->stats.work[DYSAN_STAGE_TOTAL] += now(p) - t0;
    return DYSAN_PIPE_OK;
}

/* The current window's candidates are all scored: it joins the segment; a full segment starts emitting. */
static void window_scored(dysan_pipe_t *p)
{
    p->stats.windows++;
    p->window_index++;
    p->fill++;
    if (p->fill >= p->cfg.segment) {
        p->winner = dysan_select_winner(&p->sel, p->cfg.bundle->default_model);
        p->emit_i = 0;
        p->phase = DYSAN_PIPE_PHASE_EMIT;
    } else {
        p->phase = DYSAN_PIPE_PHASE_IDLE;
    }
}

/* One inference of the scoring: the current candidate's S, P or D. */
static int score_slice(dysan_pipe_t *p)
{
    const dysan_bundle_t *b = p->cfg.bundle;
    const uint16_t slot = p->fill;
    const uint16_t m = dysan_schedule_candidate(p->window_index, p->cand, p->k, b->n_models);
    const dysan_bundle_model_t *bm = &b->models[m];
    if (p->part == 0u) {
        if (run(p, &bm->s, p->input[slot], p->s_out) != DYSAN_NN_OK) {
            return DYSAN_PIPE_ERR_NN;
        }
        p->part = 1;
        return DYSAN_PIPE_MORE;
    }
    if (p->part == 1u) {
        if (run(p, &bm->p, p->s_out, p->logits) != DYSAN_NN_OK) {
            return DYSAN_PIPE_ERR_NN;
        }
        p->act_hit = argmax_i8(p->logits, b->n_classes) == p->label[slot];
        p->part = 2;
        return DYSAN_PIPE_MORE;
    }
    if (run(p, &bm->d, p->s_out, p->logits) != DYSAN_NN_OK) {
        return DYSAN_PIPE_ERR_NN;
    }
    const int sens_hit = argmax_i8(p->logits, b->sensitive_classes) == p->cfg.sensitive;
    if (dysan_select_record(&p->sel, m, p->act_hit, sens_hit) == 1) {
        memcpy(p->kept[slot], p->s_out, sizeof p->s_out);
        p->kept_model[slot] = (int16_t)m;
    }
    p->stats.candidates_scored++;
    p->part = 0;
    if (++p->cand >= p->k) {
        window_scored(p);
    }
    return DYSAN_PIPE_MORE;
}

/* One window of the segment: the winner's output (kept from scoring, or S run now), emitted. */
static int emit_slice(dysan_pipe_t *p, dysan_pipe_emit_fn emit, void *ctx, uint64_t t0)
{
    const dysan_bundle_t *b = p->cfg.bundle;
    const uint16_t i = p->emit_i;
    const int8_t *out = p->kept[i];
    if (p->kept_model[i] == (int16_t)p->winner) {
        p->stats.reused++;
    } else {
        if (run(p, &b->models[p->winner].s, p->input[i], p->s_out) != DYSAN_NN_OK) {
            return DYSAN_PIPE_ERR_NN;
        }
        p->stats.sanitizer_runs++;
        out = p->s_out;
    }
    p->stats.work[DYSAN_STAGE_SANITIZE] += now(p) - t0;
    p->stats.emitted++;
    p->emitting_flags = p->flags[i];
    if (emit != NULL) {
        emit(ctx, (uint8_t)p->winner, p->label[i], out);
    }
    if (++p->emit_i >= p->fill) {
        new_segment(p);
    }
    return DYSAN_PIPE_MORE;
}

int dysan_pipe_step(dysan_pipe_t *p, dysan_pipe_emit_fn emit, void *ctx)
{
    if (!p->ready) {
        return DYSAN_PIPE_ERR_CONFIG;
    }
    const uint64_t t0 = now(p);
    int rc = DYSAN_PIPE_OK;
    if (p->phase == DYSAN_PIPE_PHASE_SCORE) {
        rc = score_slice(p);
        p->stats.work[DYSAN_STAGE_SCORE] += now(p) - t0;
    } else if (p->phase == DYSAN_PIPE_PHASE_EMIT) {
        rc = emit_slice(p, emit, ctx, t0);
    }
    p->stats.work[DYSAN_STAGE_TOTAL] += now(p) - t0;
    if (rc < 0) {
        /* The window / segment in progress is lost; the caller invalidates what failed. */
        new_segment(p);
        return rc;
    }
    return p->phase == DYSAN_PIPE_PHASE_IDLE ? DYSAN_PIPE_OK : DYSAN_PIPE_MORE;
}

static int finish(dysan_pipe_t *p, dysan_pipe_emit_fn emit, void *ctx)
{
    int rc;
    do {
        rc = dysan_pipe_step(p, emit, ctx);
    } while (rc == DYSAN_PIPE_MORE);
    return rc;
}

int dysan_pipe_window(dysan_pipe_t *p, const int16_t *window, dysan_pipe_emit_fn emit, void *ctx)
{
    int rc = DYSAN_PIPE_OK;
    if (p->ready && p->phase != DYSAN_PIPE_PHASE_IDLE) {
        rc = finish(p, emit, ctx); /* a caller mixing sliced and whole windows: finish the previous one */
        if (rc != DYSAN_PIPE_OK) {
            return rc;
        }
    }
    rc = dysan_pipe_begin(p, window, 0u);
    return rc == DYSAN_PIPE_OK ? finish(p, emit, ctx) : rc;
}

int dysan_pipe_flush(dysan_pipe_t *p, dysan_pipe_emit_fn emit, void *ctx)
{
    if (!p->ready) {
        return DYSAN_PIPE_OK;
    }
    int rc = finish(p, emit, ctx);
    if (rc != DYSAN_PIPE_OK || p->fill == 0u) {
        return rc;
    }
    p->winner = dysan_select_winner(&p->sel, p->cfg.bundle->default_model);
    p->emit_i = 0;
    p->phase = DYSAN_PIPE_PHASE_EMIT;
    return finish(p, emit, ctx);
}
