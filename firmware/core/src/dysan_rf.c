/* Calibration random forest evaluation: see dysan_rf.h. */
#include "dysan_rf.h"

#include "dysan_contract.h"
#include "dysan_le.h"

static int section_ok(uint32_t off, uint64_t bytes, uint32_t size)
{
    return off % 4u == 0 && (uint64_t)off + bytes <= size && off >= DYSAN_RF_HDR_SIZE;
}

int dysan_rf_load(const uint8_t *t, size_t len, dysan_rf_t *out)
{
    if (t == NULL || out == NULL) {
        return DYSAN_RF_ERR_ARG;
    }
    if (len < DYSAN_RF_HDR_SIZE) {
        return DYSAN_RF_ERR_TRUNCATED;
    }
    if (dysan_le_get_u32(t + DYSAN_RF_HDR_MAGIC) != DYSAN_RF_MAGIC) {
        return DYSAN_RF_ERR_MAGIC;
    }
    if (dysan_le_get_u16(t + DYSAN_RF_HDR_VERSION) != DYSAN_RF_VERSION ||
        dysan_le_get_u16(t + DYSAN_RF_HDR_HEADER_SIZE) != DYSAN_RF_HDR_SIZE) {
        return DYSAN_RF_ERR_VERSION;
    }
    dysan_rf_t rf;
    rf.table = t;
    rf.size = dysan_le_get_u32(t + DYSAN_RF_HDR_TABLE_SIZE);
    rf.n_features = dysan_le_get_u16(t + DYSAN_RF_HDR_N_FEATURES);
    rf.n_classes = dysan_le_get_u16(t + DYSAN_RF_HDR_N_CLASSES);
    rf.n_trees = dysan_le_get_u16(t + DYSAN_RF_HDR_N_TREES);
    rf.n_nodes = dysan_le_get_u32(t + DYSAN_RF_HDR_N_NODES);
    rf.n_leaves = dysan_le_get_u32(t + DYSAN_RF_HDR_N_LEAVES);
    rf.roots_off = dysan_le_get_u32(t + DYSAN_RF_HDR_ROOTS_OFF);
    rf.nodes_off = dysan_le_get_u32(t + DYSAN_RF_HDR_NODES_OFF);
    rf.leaves_off = dysan_le_get_u32(t + DYSAN_RF_HDR_LEAVES_OFF);
    if (rf.size > len || rf.size < DYSAN_RF_HDR_SIZE) {
        return DYSAN_RF_ERR_TRUNCATED;
    }
    if (rf.n_features != DYSAN_RF_N_FEATURES || rf.n_classes < 2 || rf.n_classes > 255 || rf.n_trees == 0 ||
        rf.n_trees > DYSAN_RF_MAX_TREES || rf.n_nodes == 0 || rf.n_nodes > DYSAN_RF_MAX_NODES ||
        rf.n_leaves == 0 || rf.n_leaves > DYSAN_RF_MAX_NODES + DYSAN_RF_MAX_TREES) {
        return DYSAN_RF_ERR_SHAPE;
    }
    if (!section_ok(rf.roots_off, 2u * rf.n_trees, rf.size) ||
        !section_ok(rf.nodes_off, (uint64_t)DYSAN_RF_NODE_SIZE * rf.n_nodes, rf.size) ||
        rf.leaves_off < DYSAN_RF_HDR_SIZE || (uint64_t)rf.leaves_off + rf.n_leaves > rf.size) {
        return DYSAN_RF_ERR_LAYOUT;
    }
    for (uint32_t i = 0; i < rf.n_trees; i++) {
        if (dysan_le_get_u16(t + rf.roots_off + 2u * i) >= rf.n_nodes) {
            return DYSAN_RF_ERR_NODE;
        }
    }
    for (uint32_t i = 0; i < rf.n_nodes; i++) {
        const uint8_t *n = t + rf.nodes_off + DYSAN_RF_NODE_SIZE * i;
        if (dysan_le_get_u16(n + DYSAN_RF_NODE_FEATURE) >= rf.n_features) {
            return DYSAN_RF_ERR_NODE;
        }
        const int16_t children[2] = {dysan_le_get_i16(n + DYSAN_RF_NODE_LEFT),
                                     dysan_le_get_i16(n + DYSAN_RF_NODE_RIGHT)};
        for (int k = 0; k < 2; k++) {
            int32_t c = children[k];
            if (c >= 0) {
                if ((uint32_t)c <= i || (uint32_t)c >= rf.n_nodes) { /* forward only: no cycles */
                    return DYSAN_RF_ERR_NODE;
                }
            } else if ((uint32_t)(-c - 1) >= rf.n_leaves) {
                return DYSAN_RF_ERR_NODE;
            }
        }
    }
    for (uint32_t i = 0; i < rf.n_leaves; i++) {
        if (t[rf.leaves_off + i] >= rf.n_classes) {
            return DYSAN_RF_ERR_NODE;
        }
    }
    *out = rf;
    return DYSAN_RF_OK;
}

int dysan_rf_predict(const dysan_rf_t *rf, const int16_t *features)
{
    if (rf == NULL || features == NULL || rf->table == NULL) {
        return DYSAN_RF_ERR_ARG;
    }
    uint16_t votes[256] = {0};
    const uint8_t *t = rf->table;
    for (uint32_t k = 0; k < rf->n_trees; k++) {
        int32_t idx = dysan_le_get_u16(t + rf->roots_off + 2u * k);
        while (idx >= 0) {
            const uint8_t *n = t + rf->nodes_off + DYSAN_RF_NODE_SIZE * (uint32_t)idx;
            int16_t value = features[dysan_le_get_u16(n + DYSAN_RF_NODE_FEATURE)];
            idx = value < dysan_le_get_i16(n + DYSAN_RF_NODE_THRESHOLD) ? dysan_le_get_i16(n + DYSAN_RF_NODE_LEFT)
                                                                        : dysan_le_get_i16(n + DYSAN_RF_NODE_RIGHT);
        }
        votes[t[rf->leaves_off + (uint32_t)(-idx - 1)]]++;
    }
    int best = 0;
    for (int c = 1; c < rf->n_classes; c++) {
        if (votes[c] > votes[best]) {
            best = c;
        }
    }
    return best;
}
