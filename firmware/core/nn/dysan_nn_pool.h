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

#endif /* DYSAN_NN_POOL_H */
