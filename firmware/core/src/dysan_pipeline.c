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
    (void)dysan_select_reset(&p->sel, p->cfg.bundle->n_models, p->cfg.x_q15, p->cfg.y_q15);
}

int dysan_pipe_configure(dysan_pipe_t *p, const dysan_pipe_config_t *cfg)
{
    p->ready = 0;
    p->fill = 0;
    p->window_index = 0;
    if (cfg == NULL || cfg->bundle == NULL || cfg->rf == NULL || cfg->bundle->n_models == 0u ||
        cfg->bundle->n_models > DYSAN_SELECT_MAX_MODELS || cfg->rf->n_classes != cfg->bundle->n_classes ||
        cfg->segment < 1u || cfg->segment > DYSAN_PIPE_MAX_SEGMENT ||
        cfg->sensitive >= cfg->bundle->sensitive_classes || cfg->x_q15 > 32768u || cfg->y_q15 > 32768u ||
        cfg->bundle->max_arena > sizeof p->arena) {
        return DYSAN_PIPE_ERR_CONFIG;
    }
    p->cfg = *cfg;
    p->k = dysan_schedule_k(cfg->candidates, cfg->bundle->n_models);
    new_segment(p);
    p->ready = 1;
    return DYSAN_PIPE_OK;
}

void dysan_pipe_disable(dysan_pipe_t *p)
{
    p->ready = 0;
    p->fill = 0;
    p->window_index = 0;
}

void dysan_pipe_restart(dysan_pipe_t *p)
{
    p->window_index = 0;
    if (p->ready) {
        new_segment(p);
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

/* First index of the largest logit (numpy's argmax). */
static uint8_t argmax(const int8_t *v, size_t n)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++) {
        if (v[i] > v[best]) {
            best = i;
        }
    }
    return (uint8_t)best;
}

static int emit_segment(dysan_pipe_t *p, dysan_pipe_emit_fn emit, void *ctx)
{
    const dysan_bundle_t *b = p->cfg.bundle;
    const uint16_t winner = dysan_select_winner(&p->sel, b->default_model);
    for (uint16_t i = 0; i < p->fill; i++) {
        const uint64_t t0 = now(p);
        const int8_t *out = p->kept[i];
        if (p->kept_model[i] == (int16_t)winner) {
            p->stats.reused++;
        } else {
            if (run(p, &b->models[winner].s, p->input[i], p->s_out) != DYSAN_NN_OK) {
                new_segment(p);
                return DYSAN_PIPE_ERR_NN;
            }
            p->stats.sanitizer_runs++;
            out = p->s_out;
        }
        p->stats.work[DYSAN_STAGE_SANITIZE] += now(p) - t0;
        p->stats.emitted++;
        if (emit != NULL) {
            emit(ctx, (uint8_t)winner, p->label[i], out);
        }
    }
    new_segment(p);
    return DYSAN_PIPE_OK;
}

int dysan_pipe_window(dysan_pipe_t *p, const int16_t *window, dysan_pipe_emit_fn emit, void *ctx)
{
    if (!p->ready || window == NULL) {
        return DYSAN_PIPE_ERR_CONFIG;
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

    for (uint16_t j = 0; j < p->k; j++) {
        const uint16_t m = dysan_schedule_candidate(p->window_index, j, p->k, b->n_models);
        const dysan_bundle_model_t *bm = &b->models[m];
        if (run(p, &bm->s, p->input[slot], p->s_out) != DYSAN_NN_OK ||
            run(p, &bm->p, p->s_out, p->logits) != DYSAN_NN_OK) {
            return DYSAN_PIPE_ERR_NN;
        }
        const int act_hit = argmax(p->logits, b->n_classes) == (uint8_t)label;
        if (run(p, &bm->d, p->s_out, p->logits) != DYSAN_NN_OK) {
            return DYSAN_PIPE_ERR_NN;
        }
        const int sens_hit = argmax(p->logits, b->sensitive_classes) == p->cfg.sensitive;
        if (dysan_select_record(&p->sel, m, act_hit, sens_hit) == 1) {
            memcpy(p->kept[slot], p->s_out, sizeof p->s_out);
            p->kept_model[slot] = (int16_t)m;
        }
        p->stats.candidates_scored++;
    }
    const uint64_t t3 = now(p);

    p->stats.work[DYSAN_STAGE_PREPROCESS] += t1 - t0;
    p->stats.work[DYSAN_STAGE_RF] += t2 - t1;
    p->stats.work[DYSAN_STAGE_SCORE] += t3 - t2;
    p->stats.windows++;
    p->window_index++;
    p->fill++;
    int rc = DYSAN_PIPE_OK;
    if (p->fill >= p->cfg.segment) {
        rc = emit_segment(p, emit, ctx);
    }
    p->stats.work[DYSAN_STAGE_TOTAL] += now(p) - t0;
    return rc;
}

int dysan_pipe_flush(dysan_pipe_t *p, dysan_pipe_emit_fn emit, void *ctx)
{
    if (!p->ready || p->fill == 0u) {
        return DYSAN_PIPE_OK;
    }
    const uint64_t t0 = now(p);
    const int rc = emit_segment(p, emit, ctx);
    p->stats.work[DYSAN_STAGE_TOTAL] += now(p) - t0;
    return rc;
}
