/* dysan_select.c -- round-robin schedule, score horizon and integer segment scores (see dysan_select.h). */
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
    return dysan_select_score_k(n, a, s, x_q15, y_q15, 2u);
}

int64_t dysan_select_score_k(uint32_t n, uint32_t a, uint32_t s, uint16_t x_q15, uint16_t y_q15, uint16_t k)
{
    if (n == 0u || k < 2u || k > 16u) {
        return -1;
    }
    const int64_t nn = (int64_t)n;
    const int64_t kk = (int64_t)k;
    const int64_t d = nn - kk * (int64_t)s;
    const int64_t absd = d < 0 ? -d : d;
    /* a, s <= n, x, y <= 32768, k <= 16: num <= 2^20 * n, so num << 16 fits 64 bits for n < 2^28 (the device
     * counts at most 32 windows). num >= 0 since |n - k*s| <= k*n: the division is a floor, as Python's //. */
    const int64_t num = kk * (int64_t)x_q15 * (int64_t)a + (int64_t)y_q15 * (kk * nn - absd);
    return (int64_t)(((uint64_t)num << 16) / (uint64_t)(kk * nn));
}

int dysan_select_set_classes(dysan_select_t *sel, uint16_t classes)
{
    if (sel == NULL || classes < 2u || classes > 16u) {
        return -1;
    }
    sel->sens_classes = classes;
    return 0;
}

uint16_t dysan_schedule_rounds(uint16_t segment, uint16_t candidates, uint16_t n_models)
{
    if (n_models == 0u || segment == 0u) {
        return 1u;
    }
    const uint16_t k = dysan_schedule_k(candidates, n_models);
    if (k >= n_models) {
        return 1u; /* every model on every window: the paper's per-segment score */
    }
    const uint32_t per_round = (uint32_t)k * segment; /* evaluations per segment, over all models */
    const uint32_t rounds = (DYSAN_SELECT_HORIZON_EVALUATIONS * (uint32_t)n_models + per_round - 1u) / per_round;
    const uint32_t cap = DYSAN_SELECT_MAX_HORIZON / segment;
    const uint32_t r = rounds < cap ? rounds : cap;
    return (uint16_t)(r > 1u ? r : 1u);
}

int dysan_select_reset(dysan_select_t *sel, uint16_t n_models, uint16_t x_q15, uint16_t y_q15)
{
    if (sel == NULL || n_models == 0u || n_models > DYSAN_SELECT_MAX_MODELS) {
        return -1;
    }
    sel->n_models = n_models;
    sel->segment = DYSAN_SELECT_MAX_HORIZON;
    sel->rounds = 1u;
    sel->fill = 0u;
    sel->windows = 0u;
    sel->x_q15 = x_q15;
    sel->y_q15 = y_q15;
    sel->sens_classes = 2u;
    sel->leader = -1;
    for (uint16_t m = 0; m < DYSAN_SELECT_MAX_MODELS; m++) {
        sel->ev_bits[m] = 0u;
        sel->act_bits[m] = 0u;
        sel->sens_bits[m] = 0u;
        sel->n[m] = 0u;
        sel->act[m] = 0u;
        sel->sens[m] = 0u;
        sel->score[m] = -1;
    }
    return 0;
}

int dysan_select_set_schedule(dysan_select_t *sel, uint16_t segment, uint16_t rounds)
{
    if (sel == NULL || segment < 1u || segment > DYSAN_SELECT_MAX_HORIZON) {
        return -1;
    }
    const uint16_t cap = (uint16_t)(DYSAN_SELECT_MAX_HORIZON / segment);
    sel->segment = segment;
    sel->rounds = rounds < 1u ? 1u : rounds > cap ? cap : rounds;
    return 0;
}

static uint16_t popcount32(uint32_t v) { return (uint16_t)__builtin_popcount(v); }

/* Index of the highest score, ties lowest; -1 when every score is -1 (unlike dysan_pipeline.c's argmax_i8,
 * which always answers an index). */
static int16_t leader_of(const dysan_select_t *sel)
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

void dysan_select_next_window(dysan_select_t *sel)
{
    if (sel == NULL || sel->n_models == 0u) {
        return;
    }
    /* After the shift bit 0 is the new window. Kept: the windows of the current segment (this one included)
     * and of the R - 1 whole segments before it -- (R - 1) * p + fill windows, at most 32. */
    sel->fill = sel->fill >= sel->segment ? 1u : (uint16_t)(sel->fill + 1u);
    const uint32_t span = (uint32_t)(sel->rounds - 1u) * sel->segment + sel->fill;
    const uint32_t keep = span >= 32u ? 0xFFFFFFFFu : ((1u << span) - 1u);
    for (uint16_t m = 0; m < sel->n_models; m++) {
        sel->ev_bits[m] = (sel->ev_bits[m] << 1) & keep;
        sel->act_bits[m] = (sel->act_bits[m] << 1) & keep;
        sel->sens_bits[m] = (sel->sens_bits[m] << 1) & keep;
        sel->n[m] = popcount32(sel->ev_bits[m]);
        sel->act[m] = popcount32(sel->act_bits[m]);
        sel->sens[m] = popcount32(sel->sens_bits[m]);
        sel->score[m] = dysan_select_score_k(sel->n[m], sel->act[m], sel->sens[m], sel->x_q15, sel->y_q15,
                                             sel->sens_classes);
    }
    sel->leader = leader_of(sel);
    if (sel->windows < UINT32_MAX) {
        sel->windows++;
    }
}

int dysan_select_record(dysan_select_t *sel, uint16_t model, int act_hit, int sens_hit)
{
    if (sel == NULL || sel->windows == 0u || model >= sel->n_models || (sel->ev_bits[model] & 1u)) {
        return -1;
    }
    sel->ev_bits[model] |= 1u;
    sel->act_bits[model] |= act_hit ? 1u : 0u;
    sel->sens_bits[model] |= sens_hit ? 1u : 0u;
    sel->n[model]++;
    sel->act[model] = (uint16_t)(sel->act[model] + (act_hit ? 1u : 0u));
    sel->sens[model] = (uint16_t)(sel->sens[model] + (sens_hit ? 1u : 0u));
    const int64_t old = sel->score[model];
    const int64_t now = dysan_select_score_k(sel->n[model], sel->act[model], sel->sens[model], sel->x_q15, sel->y_q15,
                                             sel->sens_classes);
    sel->score[model] = now;
    if (sel->leader < 0) {
        sel->leader = (int16_t)model;
    } else if ((int16_t)model == sel->leader) {
        if (now < old) {
            sel->leader = leader_of(sel); /* the leader lost ground: someone else may lead now */
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
        const int64_t s = dysan_select_score_k(sel->n[m], sel->act[m], sel->sens[m], sel->x_q15, sel->y_q15,
                                               sel->sens_classes);
        if (s > best_score) {
            best_score = s;
            best = (int16_t)m;
        }
    }
    return best < 0 ? default_model : (uint16_t)best;
}
