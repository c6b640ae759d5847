/*
 * dysan_select.h -- the selection schedule and the integer segment score (host/dysan/selection.py is the
 * definition; tests/test_select_c.py holds the two together on random hit tables).
 *
 * Round robin: on window w (counted from the start of the stream) the k = min(max(1, candidates), M)
 * candidates are the models (w*k + j) mod M, j < k. Each evaluated candidate m gets two hits: its own P says
 * the RF label (activity hit), its own D says the stated sensitive value (sensitive hit). At the end of a
 * segment, with a activity hits and s sensitive hits over the n windows where m was evaluated,
 *
 *     score_q = ((2*x*a + y*(2n - |n - 2s|)) << 16) / (2n)        (x, y in Q15; -1 when n == 0)
 *
 * and the highest score wins, ties to the lowest model index; the default model when nothing was evaluated.
 * Everything is integer, so the device and the host choose the same model on every segment.
 */
#ifndef DYSAN_SELECT_H
#define DYSAN_SELECT_H

#include <stddef.h>
#include <stdint.h>

#include "dysan_bundle_format.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DYSAN_SELECT_MAX_MODELS DYSAN_BUNDLE_MAX_MODELS

/* Per-model hit counters of the segment in progress, and the running leader (the model that would win if
 * the segment ended now), which the pipeline uses to decide which sanitized outputs are worth keeping. */
typedef struct {
    uint16_t n_models;
    uint16_t n[DYSAN_SELECT_MAX_MODELS];    /* windows where the model was evaluated */
    uint16_t act[DYSAN_SELECT_MAX_MODELS];  /* activity hits */
    uint16_t sens[DYSAN_SELECT_MAX_MODELS]; /* sensitive hits */
    int64_t score[DYSAN_SELECT_MAX_MODELS]; /* score_q of the counts so far (-1: not evaluated) */
    uint16_t x_q15, y_q15;
    int16_t leader;                          /* argmax of score (ties lowest), -1 while nothing is recorded */
} dysan_select_t;

/* k: candidates per window, min(max(1, candidates), n_models); 0 when n_models is 0. */
uint16_t dysan_schedule_k(uint16_t candidates, uint16_t n_models);

/* The j-th candidate (j < k) of window w: (w*k + j) mod n_models (64-bit, so w never overflows it). */
uint16_t dysan_schedule_candidate(uint32_t window, uint16_t j, uint16_t k, uint16_t n_models);

/* score_q of a model with a activity and s sensitive hits out of n windows; -1 when n == 0. Requires
 * a, s <= n and x, y <= 32768 (then the numerator stays below 2^42). */
int64_t dysan_select_score(uint32_t n, uint32_t a, uint32_t s, uint16_t x_q15, uint16_t y_q15);

/* Starts a segment. Returns 0, or -1 when n_models is 0 or above DYSAN_SELECT_MAX_MODELS. */
int dysan_select_reset(dysan_select_t *sel, uint16_t n_models, uint16_t x_q15, uint16_t y_q15);

/* Records one evaluation of `model` (hits are 0/1) and updates the leader. Returns 1 when `model` is the
 * leader afterwards, 0 when it is not, -1 on a bad argument. */
int dysan_select_record(dysan_select_t *sel, uint16_t model, int act_hit, int sens_hit);

/* The model chosen for the segment: the highest score, ties to the lowest index; `default_model` when no
 * model was evaluated. Computed from the counters (not from the running leader), exactly as selection.py. */
uint16_t dysan_select_winner(const dysan_select_t *sel, uint16_t default_model);

#ifdef __cplusplus
}
#endif

#endif /* DYSAN_SELECT_H */
