/*
 * dysan_rf.h -- the calibration random forest as data (host/dysan/calibration/rf.py is the definition).
 *
 * The table arrives over the radio link after calibration, so dysan_rf_load() checks everything: offsets
 * inside the table, feature indices, class ids, and that every child index is greater than its parent's
 * (so a traversal always terminates). Prediction is a hard majority vote, ties to the lowest class.
 */
#ifndef DYSAN_RF_H
#define DYSAN_RF_H

#include <stddef.h>
#include <stdint.h>

#include "dysan_rf_format.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
    DYSAN_RF_OK = 0,
    DYSAN_RF_ERR_ARG = -1,
    DYSAN_RF_ERR_TRUNCATED = -2,
    DYSAN_RF_ERR_MAGIC = -3,
    DYSAN_RF_ERR_VERSION = -4,
    DYSAN_RF_ERR_LAYOUT = -5, /* a section outside the table or misaligned */
    DYSAN_RF_ERR_SHAPE = -6,  /* feature / class / tree / node counts out of range */
    DYSAN_RF_ERR_NODE = -7,   /* a node refers to a bad feature, child or leaf */
};

typedef struct {
    const uint8_t *table;
    uint32_t size;
    uint16_t n_features, n_classes, n_trees;
    uint32_t n_nodes, n_leaves;
    uint32_t roots_off, nodes_off, leaves_off;
} dysan_rf_t;

/* Validates the table (`len` readable bytes; it may be longer than the table, e.g. a flash region). */
int dysan_rf_load(const uint8_t *table, size_t len, dysan_rf_t *out);

/* The class of one window's features (DYSAN_RF_N_FEATURES int16 values); negative on a bad argument. */
int dysan_rf_predict(const dysan_rf_t *rf, const int16_t *features);

#ifdef __cplusplus
}
#endif

#endif /* DYSAN_RF_H */
