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
 *
 * Horizon: a segment's counts cover its windows and those of the R - 1 segments before it in the stream,
 * kept per model as 32-bit hit histories (dysan_select_next_window starts each window). R =
 * dysan_schedule_rounds = max(1, min(ceil(E * M / (k * p)), 32 / p)), E = DYSAN_SELECT_HORIZON_EVALUATIONS,
 * gives every model about E evaluations with a rotating subset (selection.horizon_segments, whose module doc
 * says why); R = 1 when k >= M.
 */
#ifndef DYSAN_SELECT_H
#define DYSAN_SELECT_H

#include <stddef.h>
#include <stdint.h>

#include "dysan_bundle_format.h"
#include "dysan_contract.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DYSAN_SELECT_MAX_MODELS DYSAN_BUNDLE_MAX_MODELS

/* Per-model hit counters of the segment in progress, and the running leader (the model that would win if
 * the segment ended now), which the pipeline uses to decide which sanitized outputs are worth keeping. */
typedef struct {
    uint16_t n_models;
    uint16_t segment;                       /* windows per segment p */
    uint16_t rounds;                        /* segments counted, R (R * p <= DYSAN_SELECT_MAX_HORIZON) */
    uint16_t fill;                          /* windows of the current segment started, 1..p (0: none yet) */
    uint32_t windows;                       /* windows started since the reset (saturates) */
    uint32_t ev_bits[DYSAN_SELECT_MAX_MODELS];   /* bit i: evaluated i windows before the current one */
    uint32_t act_bits[DYSAN_SELECT_MAX_MODELS];  /* bit i: activity hit then */
    uint32_t sens_bits[DYSAN_SELECT_MAX_MODELS]; /* bit i: sensitive hit then */
    uint16_t n[DYSAN_SELECT_MAX_MODELS];    /* windows of the horizon where the model was evaluated */
    uint16_t act[DYSAN_SELECT_MAX_MODELS];  /* activity hits in them */
    uint16_t sens[DYSAN_SELECT_MAX_MODELS]; /* sensitive hits in them */
    int64_t score[DYSAN_SELECT_MAX_MODELS]; /* score_q of the counts so far (-1: not evaluated) */
    uint16_t x_q15, y_q15;
    uint16_t sens_classes;                   /* values of the sensitive attribute, k of the score (2..16) */
    int16_t leader;                          /* argmax of score (ties lowest), -1 while nothing is recorded */
} dysan_select_t;

/* k: candidates per window, min(max(1, candidates), n_models); 0 when n_models is 0. */
uint16_t dysan_schedule_k(uint16_t candidates, uint16_t n_models);

/* The j-th candidate (j < k) of window w: (w*k + j) mod n_models (64-bit, so w never overflows it). */
uint16_t dysan_schedule_candidate(uint32_t window, uint16_t j, uint16_t k, uint16_t n_models);

/* score_q of a model with a activity and s sensitive hits out of n windows; -1 when n == 0. Requires
 * a, s <= n and x, y <= 32768 (then the numerator stays below 2^42). */
int64_t dysan_select_score(uint32_t n, uint32_t a, uint32_t s, uint16_t x_q15, uint16_t y_q15);

/* The same for a sensitive attribute of k values (2..16; others give -1): privacy term 1 - |1/k - s/n|,
 *   score_q = ((k*x*a + y*(k*n - |n - k*s|)) << 16) / (k*n)
 * (selection.segment_scores' twin; k = 2 is dysan_select_score). For k = 2 the score of a stated value v and
 * of 1 - v are equal (s -> n - s), which is why a binary attribute's value need not be stated at all. */
int64_t dysan_select_score_k(uint32_t n, uint32_t a, uint32_t s, uint16_t x_q15, uint16_t y_q15, uint16_t k);

/* Sets the number of values of the sensitive attribute (2..16) the scores use; 2 after a reset. 0 or -1. */
int dysan_select_set_classes(dysan_select_t *sel, uint16_t classes);

/* Segments a segment's score counts, itself included: 1 when k >= n_models, else
 * max(1, min(ceil(E * n_models / (k * segment)), 32 / segment)), E = DYSAN_SELECT_HORIZON_EVALUATIONS,
 * k = dysan_schedule_k(candidates, n_models); 1 when n_models or segment is 0. selection.horizon_segments'
 * twin. */
uint16_t dysan_schedule_rounds(uint16_t segment, uint16_t candidates, uint16_t n_models);

/* Forgets every hit (a new stream), no window started; segments of 32 windows, R = 1 until
 * dysan_select_set_schedule. Returns 0, or -1 when n_models is 0 or above DYSAN_SELECT_MAX_MODELS. */
int dysan_select_reset(dysan_select_t *sel, uint16_t n_models, uint16_t x_q15, uint16_t y_q15);

/* Segment length p (1..32) and rounds R (clamped so that R * p <= 32), right after a reset. Returns 0 or -1. */
int dysan_select_set_schedule(dysan_select_t *sel, uint16_t segment, uint16_t rounds);

/* Starts the next window of the stream (segments are every p windows from the reset): histories move back
 * one window; at a segment's first window those older than R - 1 whole segments before it are forgotten;
 * scores and leader follow. Call before the window's dysan_select_record calls. */
void dysan_select_next_window(dysan_select_t *sel);

/* Records one evaluation of `model` on the current window (hits are 0/1) and updates the leader. Returns 1
 * when `model` is the leader afterwards, 0 when it is not, -1 on a bad argument (no window started, model
 * out of range or already recorded on this window). */
int dysan_select_record(dysan_select_t *sel, uint16_t model, int act_hit, int sens_hit);

/* The model chosen for the segment: the highest score, ties to the lowest index; `default_model` when no
 * model was evaluated. Computed from the counters (not from the running leader), exactly as selection.py. */
uint16_t dysan_select_winner(const dysan_select_t *sel, uint16_t default_model);

#ifdef __cplusplus
}
#endif

#endif /* DYSAN_SELECT_H */
