/*
 * dysan_nn_pool.h -- the pooling geometry the portable pooling kernels (dysan_nn_pool.c) share with their
 * Cortex-M4 paths (dysan_nn_pool_m4.c). Private to core/nn.
 */
#ifndef DYSAN_NN_POOL_H
#define DYSAN_NN_POOL_H

#include "dysan_nn_internal.h"

typedef struct {
    int32_t n, h, w, c, oh, ow;
    int32_t fh, fw, sh, sw, pt, pl, lo, hi;
} nn_pool_t;

static inline nn_pool_t nn_pool_geom(const nn_op_t *op) {
    const int32_t *p = op->p;
    nn_pool_t g;
    g.n = (int32_t)op->in[0].dims[0];
    g.h = (int32_t)op->in[0].dims[1];
    g.w = (int32_t)op->in[0].dims[2];
    g.c = (int32_t)op->in[0].dims[3];
    g.oh = (int32_t)op->out.dims[1];
    g.ow = (int32_t)op->out.dims[2];
    g.fh = p[DYSAN_NN_POOL_FILTER_H];
    g.fw = p[DYSAN_NN_POOL_FILTER_W];
    g.sh = p[DYSAN_NN_POOL_STRIDE_H];
    g.sw = p[DYSAN_NN_POOL_STRIDE_W];
    g.pt = p[DYSAN_NN_POOL_PAD_TOP];
    g.pl = p[DYSAN_NN_POOL_PAD_LEFT];
    g.lo = p[DYSAN_NN_POOL_ACT_MIN];
    g.hi = p[DYSAN_NN_POOL_ACT_MAX];
    return g;
}

/* MEAN's geometry and requantization, read once for the portable kernel and its M4 path alike. */
typedef struct {
    int32_t outer, reduce, inner, zp_in, zp_out;
    nn_rq_t q;
    const int8_t *in;
    int8_t *out;
} nn_mean_t;

static inline nn_mean_t nn_mean_geom(const nn_op_t *op, uint8_t *arena) {
    const int32_t *p = op->p;
    nn_mean_t g;
    g.outer = p[DYSAN_NN_MEAN_OUTER];
    g.reduce = p[DYSAN_NN_MEAN_REDUCE];
    g.inner = p[DYSAN_NN_MEAN_INNER];
    g.zp_in = p[DYSAN_NN_MEAN_INPUT_ZP];
    g.zp_out = p[DYSAN_NN_MEAN_OUTPUT_ZP];
    g.q = nn_rq_make(p[DYSAN_NN_MEAN_MULTIPLIER], p[DYSAN_NN_MEAN_SHIFT]);
    g.in = (const int8_t *)(arena + op->in[0].off);
    g.out = (int8_t *)(arena + op->out.off);
    return g;
}

/* One output of MEAN from the raw sum of its `reduce` inputs: sum - zp * n in 64 bits, narrowed to int32 as
 * the reference's accumulator type does, then requantized and clamped. */
static inline int8_t nn_mean_out(const nn_mean_t *g, int32_t sum) {
    const int32_t shifted = (int32_t)((int64_t)sum - (int64_t)g->zp_in * g->reduce);
    return nn_clamp8(nn_rq_apply(shifted, &g->q) + g->zp_out, -128, 127);
}

/* The portable sum of channel c of outer row o (the M4 path's tail too). */
static inline int32_t nn_mean_sum(const nn_mean_t *g, int32_t o, int32_t c) {
    const int8_t *base = g->in + (size_t)o * g->reduce * g->inner;
    int32_t sum = 0;
    for (int32_t r = 0; r < g->reduce; r++) {
        sum += base[(size_t)r * g->inner + c];
    }
    return sum;
}

#endif /* DYSAN_NN_POOL_H */
