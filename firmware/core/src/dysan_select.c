/* dysan_select.c -- round-robin schedule and integer segment scores (see dysan_select.h). */
#include "dysan_select.h"

uint16_t dysan_schedule_k(uint16_t candidates, uint16_t n_models)
{
    uint16_t k = candidates < 1u ? 1u : candidates;
    return k < n_models ? k : n_models;
}

uint16_t dysan_schedule_candidate(uint32_t window, uint16_t j, uint16_t k, uint16_t n_models)
{
    if (n_models == 0u) {
        return 0u;
    }
    return (uint16_t)((((uint64_t)window * k) + j) % n_models);
}

int64_t dysan_select_score(uint32_t n, uint32_t a, uint32_t s, uint16_t x_q15, uint16_t y_q15)
{
    if (n == 0u) {
        return -1;
    }
    const int64_t nn = (int64_t)n;
    const int64_t d = nn - 2 * (int64_t)s;
    const int64_t absd = d < 0 ? -d : d;
    const int64_t num = 2 * (int64_t)x_q15 * (int64_t)a + (int64_t)y_q15 * (2 * nn - absd);
    /* num >= 0 (a >= 0, |n - 2s| <= n), so the division is a floor, as Python's //. */
    return (int64_t)(((uint64_t)num << 16) / (uint64_t)(2 * nn));
}

int dysan_select_reset(dysan_select_t *sel, uint16_t n_models, uint16_t x_q15, uint16_t y_q15)
{
    if (sel == NULL || n_models == 0u || n_models > DYSAN_SELECT_MAX_MODELS) {
        return -1;
    }
    sel->n_models = n_models;
    sel->x_q15 = x_q15;
    sel->y_q15 = y_q15;
    sel->leader = -1;
    for (uint16_t m = 0; m < DYSAN_SELECT_MAX_MODELS; m++) {
        sel->n[m] = 0u;
        sel->act[m] = 0u;
        sel->sens[m] = 0u;
        sel->score[m] = -1;
    }
    return 0;
}

/* Index of the highest score, ties lowest; -1 when every score is -1. */
static int16_t argmax(const dysan_select_t *sel)
{
    int16_t best = -1;
    int64_t best_score = -1;
    for (uint16_t m = 0; m < sel->n_models; m++) {
        if (sel->score[m] > best_score) {
            best_score = sel->score[m];
            best = (int16_t)m;
        }
    }
    return best;
}

int dysan_select_record(dysan_select_t *sel, uint16_t model, int act_hit, int sens_hit)
{
    if (sel == NULL || model >= sel->n_models || sel->n[model] == UINT16_MAX) {
        return -1;
    }
    sel->n[model]++;
    sel->act[model] = (uint16_t)(sel->act[model] + (act_hit ? 1u : 0u));
    sel->sens[model] = (uint16_t)(sel->sens[model] + (sens_hit ? 1u : 0u));
    const int64_t old = sel->score[model];
    const int64_t now = dysan_select_score(sel->n[model], sel->act[model], sel->sens[model], sel->x_q15, sel->y_q15);
    sel->score[model] = now;
    if (sel->leader < 0) {
        sel->leader = (int16_t)model;
    } else if ((int16_t)model == sel->leader) {
        if (now < old) {
            sel->leader = argmax(sel); /* the leader lost ground: someone else may lead now */
        }
    } else {
        const int64_t lead = sel->score[sel->leader];
        if (now > lead || (now == lead && (int16_t)model < sel->leader)) {
            sel->leader = (int16_t)model;
        }
    }
    return sel->leader == (int16_t)model ? 1 : 0;
}

uint16_t dysan_select_winner(const dysan_select_t *sel, uint16_t default_model)
{
    if (sel == NULL) {
        return default_model;
    }
    int16_t best = -1;
    int64_t best_score = -1;
    for (uint16_t m = 0; m < sel->n_models; m++) {
        const int64_t s = dysan_select_score(sel->n[m], sel->act[m], sel->sens[m], sel->x_q15, sel->y_q15);
        if (s > best_score) {
            best_score = s;
            best = (int16_t)m;
        }
    }
    return best < 0 ? default_model : (uint16_t)best;
}
