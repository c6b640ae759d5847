/*
 * dysan_nn_conv.c -- CONV_2D and DEPTHWISE_CONV_2D, bit-exact with TFLM's reference_integer_ops
 * ConvPerChannel / DepthwiseConvPerChannel.
 *
 * The reference skips taps that fall in the padding and adds input_offset to every input value. Here the
 * input is first copied into scratch with the padding filled with the input zero point, and the exporter
 * folded input_offset * sum(weights) into the bias: a padded tap then adds w * zp - w * zp = 0, and every
 * output is bias' + sum(w * x) over one fixed window -- the integer the reference accumulates (mod 2^32,
 * all an int32 accumulator keeps in either case).
 *
 * The copy is split into `dilation_w` phase planes (plane r holds the padded columns r, r + d, r + 2d, ...),
 * so the kernel_w taps of a dilated window are adjacent in one plane: every window row is one contiguous
 * run of kernel_w x in_channels values, matching one weight row segment. Depthwise uses the same layout on
 * channel-major planes (one input channel per plane group) with a per-pixel loop of its own.
 *
 * General blocks: accumulators of one output channel (or channel pair) are computed for every pixel first and
 * requantized afterwards in a loop of their own, so the requantization constants never compete with the dot
 * products for registers.
 *
 * This file holds the portable kernels (ESP32, the host, any CPU) and everything both paths share (scratch
 * layout, window offsets, padding, requantization, validation, the op registrations); the Cortex-M4 DSP paths
 * (SMLAD blocks, the fast path) are in dysan_nn_conv_m4.c and replace the portable dot products where
 * __ARM_FEATURE_DSP is available.
 */
#include <string.h>

#include "dysan_nn_conv.h"

/* Fills `g` and returns the scratch bytes the op needs (0 if it would reach 2 GiB). */
static uint64_t nn_layout(const nn_op_t *op, nn_layout_t *g) {
    const int32_t *p = op->p;
    const int dwise = op->kind == DYSAN_NN_KIND_DEPTHWISE_CONV_2D;
    const uint64_t h = op->in[0].dims[1], w = op->in[0].dims[2], c = op->in[0].dims[3];
    const uint64_t hp = h + (uint32_t)p[DYSAN_NN_CONV_PAD_TOP] + (uint32_t)p[DYSAN_NN_CONV_PAD_BOTTOM];
    const uint64_t wp = w + (uint32_t)p[DYSAN_NN_CONV_PAD_LEFT] + (uint32_t)p[DYSAN_NN_CONV_PAD_RIGHT];
    const uint64_t dw = (uint32_t)p[DYSAN_NN_CONV_DILATION_W];
    const uint64_t wq = (uint32_t)(wp + dw - 1u) / (uint32_t)dw; /* < 2^18 / >= 1: a 32-bit division */
    const uint64_t ic = dwise ? 1u : c;
    const uint64_t group = dw * hp * wq * ic;
    const uint64_t group_stride = dwise ? nn_align(group + DYSAN_NN_CONV_SLACK, 2) : group;
    const uint64_t xbytes = nn_align(2u * (dwise ? c * group_stride : group + DYSAN_NN_CONV_SLACK), 4);
    const uint64_t pairs = ((uint32_t)p[DYSAN_NN_CONV_KERNEL_W] * ic + 1u) / 2u;
    const uint64_t pairs_pad = nn_align(pairs, 4);
    const uint64_t wbytes = 8u * (uint32_t)p[DYSAN_NN_CONV_KERNEL_H] * pairs_pad;
    const uint64_t npix = (uint64_t)op->out.dims[1] * op->out.dims[2];
    const uint64_t general = wbytes + 8u * (npix + 1u); /* + 1: an odd pixel count pairs the last */
    const uint64_t window = (uint32_t)p[DYSAN_NN_CONV_KERNEL_H] * pairs;
    const uint64_t cp = ((uint32_t)p[DYSAN_NN_CONV_OUT_CHANNELS] + 1u) / 2u;
    const int fast = !dwise && window <= DYSAN_NN_CONV_FAST_MAX_PAIRS;
    const uint64_t fw = 4u * cp * (14u + 2u * window) + 32u, fcol = 8u * (window + 3u);
    const uint64_t fstage = nn_align((uint32_t)p[DYSAN_NN_CONV_OUT_CHANNELS] + 1u, 4);
    const uint64_t fbytes = fast ? fw + fcol + 2u * fstage : 0;
    const uint64_t region = xbytes + 4u * (npix + 1u);
    const uint64_t total = region + (general > fbytes ? general : fbytes);
    if (total >= (UINT64_C(1) << 31)) {
        return 0;
    }
    if (g) {
        g->h = (int32_t)h;
        g->w = (int32_t)w;
        g->c = (int32_t)c;
        g->pt = p[DYSAN_NN_CONV_PAD_TOP];
        g->pl = p[DYSAN_NN_CONV_PAD_LEFT];
        g->hp = (int32_t)hp;
        g->wp = (int32_t)wp;
        g->dw = (int32_t)dw;
        g->wq = (int32_t)wq;
        g->ic = (int32_t)ic;
        g->group = (int32_t)group;
        g->group_stride = (int32_t)group_stride;
        g->pairs = (int32_t)pairs;
        g->pairs_pad = (int32_t)pairs_pad;
        g->fast = fast;
        g->offs_off = xbytes;
        g->wbuf_off = region;
        g->accs_off = region + wbytes;
        g->fw_off = region;
        g->fcol_off = region + fw;
        g->fstage_off = region + fw + fcol;
    }
    return total;
}

uint64_t nn_conv_scratch_bytes(const nn_op_t *op) {
    if (op->kind == DYSAN_NN_KIND_FULLY_CONNECTED) {
        return 2u * (uint64_t)(uint32_t)op->p[DYSAN_NN_CONV_WEIGHTS_ROW];
    }
    return nn_layout(op, NULL);
}

/* Writes the window offset of every output pixel (raster order) into offs: output column ox reads padded
 * column col = ox * stride_w, which lives in phase plane col % dw at column col / dw. One more entry
 * repeats the last, so that an odd pixel count can run as pixel pairs (the extra results are dropped). */
static void nn_window_offsets(int32_t *offs, const nn_op_t *op, const nn_layout_t *g) {
    const int32_t oh = (int32_t)op->out.dims[1], ow = (int32_t)op->out.dims[2];
    const int32_t sh = op->p[DYSAN_NN_CONV_STRIDE_H], sw = op->p[DYSAN_NN_CONV_STRIDE_W];
    const int32_t row = g->wq * g->ic, plane = g->hp * row;
    const int32_t dr = sw % g->dw, dq = sw / g->dw;
    const int32_t step = dr * plane + dq * g->ic, wrap = g->ic - g->dw * plane; /* r += dr; past dw: q + 1 */
    for (int32_t oy = 0; oy < oh; oy++) {
        int32_t r = 0, off = oy * sh * row;
        if (g->dw == 1) { /* one plane: equally spaced windows */
            int32_t *end = offs + (ow & ~1);
            for (; offs != end; offs += 2, off += 2 * step) {
                offs[0] = off;
                offs[1] = off + step;
            }
            if (ow & 1) {
                *offs++ = off;
            }
            continue;
        }
        for (int32_t ox = 0; ox < ow; ox++) {
            *offs++ = off;
            off += step;
            r += dr;
            if (r >= g->dw) {
                r -= g->dw;
                off += wrap;
            }
        }
    }
    *offs = offs[-1];
}

/* Requantizes n consecutive accumulators of channel c into outputs `out_step` apart. Not inlined: on its
 * own the loop keeps every constant in a register (the usual case -- no left shift, no clamp narrower than
 * int8 -- needs one SSAT for the clamp). */
NN_NOINLINE void nn_conv_requant_run(const int32_t *acc, int8_t *out, int32_t out_step, int32_t n, const nn_pass_t *ps,
                                     int32_t c) {
#if NN_DSP
    if (nn_m4_requant_run(acc, out, out_step, n, ps, c)) {
        return;
    }
#endif
    const nn_rq_t q = nn_rq_make(dysan_le_get_i32(ps->mult + 4 * c), dysan_le_get_i32(ps->shift + 4 * c));
    const int32_t zp = ps->out_zp, lo = ps->act_min, hi = ps->act_max;
    const int32_t *end = acc + n;
    for (; acc != end; acc++, out += out_step) {
        int32_t v = nn_rq_apply(*acc, &q) + zp;
        v = v < lo ? lo : v;
        *out = (int8_t)(v > hi ? hi : v);
    }
}

#if NN_DSP
#define nn_widen_row nn_m4_widen_row /* int8 -> int16 (dysan_nn_conv_m4.c) */
#else

/* ---- portable path: int8 x int8 dot products -------------------------------------------------------- */

static void nn_widen_row(nn_elem_t *dst, const int8_t *src, int32_t n, int perm) {
    (void)perm;
    memcpy(dst, src, (size_t)n);
}

/* Blocks of 2 channels x 2 pixels, like the DSP path: each loaded weight and input serves two products.
 * Accumulation is unsigned: it wraps like the int32 accumulator without being undefined. */
static void nn_pass(const nn_pass_t *ps, const int8_t *x, int32_t *accs) {
    int32_t *accs_b = accs + ps->npix + 1;
    for (int32_t c = 0; c < ps->n_ch; c += 2) {
        const int nc = c + 1 < ps->n_ch ? 2 : 1;
        const int8_t *wa = ps->w + c * ps->w_row, *wb = nc == 2 ? wa + ps->w_row : wa;
        const uint32_t bias_a = dysan_le_get_u32(ps->bias + 4 * c), bias_b = dysan_le_get_u32(ps->bias + 4 * (c + nc - 1));
        for (int32_t pix = 0; pix < ps->npix; pix += 2) { /* offs[npix] repeats the last pixel */
            uint32_t a0 = bias_a, b0 = bias_b, a1 = bias_a, b1 = bias_b;
            for (int32_t s = 0; s < ps->n_seg; s++) {
                const int8_t *xa = x + ps->offs[pix] + s * ps->seg_stride;
                const int8_t *xb = x + ps->offs[pix + 1] + s * ps->seg_stride;
                const int8_t *sa = wa + s * ps->seg_len, *sb = wb + s * ps->seg_len;
                for (int32_t i = 0; i < ps->seg_len; i++) {
                    const int32_t x0 = xa[i], x1 = xb[i], w0 = sa[i], w1 = sb[i];
                    a0 += (uint32_t)(w0 * x0);
                    b0 += (uint32_t)(w1 * x0);
                    a1 += (uint32_t)(w0 * x1);
                    b1 += (uint32_t)(w1 * x1);
                }
            }
            accs[pix] = (int32_t)a0;
            accs[pix + 1] = (int32_t)a1;
            accs_b[pix] = (int32_t)b0;
            accs_b[pix + 1] = (int32_t)b1;
        }
        nn_conv_requant_run(accs, ps->out + c, ps->out_pix, ps->npix, ps, c);
        if (nc == 2) {
            nn_conv_requant_run(accs_b, ps->out + c + 1, ps->out_pix, ps->npix, ps, c + 1);
        }
    }
}

/* Depthwise: the depth_multiplier output channels of one input channel plane, pixel by pixel (one input
 * channel gives too few multiply-accumulates per output for the 2 x 2 blocks to pay off). */
static void nn_dw_pass(const nn_pass_t *ps, const int8_t *x, int32_t *accs) {
    for (int32_t m = 0; m < ps->n_ch; m++) {
        const int32_t bias = dysan_le_get_i32(ps->bias + 4 * m);
        const int8_t *w = ps->w + m * ps->w_row;
        for (int32_t pix = 0; pix < ps->npix; pix++) {
            const int8_t *win = x + ps->offs[pix];
            uint32_t acc = (uint32_t)bias; /* unsigned: wraps like the int32 accumulator without being undefined */
            for (int32_t s = 0; s < ps->n_seg; s++) {
                const int8_t *xs = win + s * ps->seg_stride, *ws = w + s * ps->seg_len;
                for (int32_t k = 0; k < ps->seg_len; k++) {
                    acc += (uint32_t)((int32_t)ws[k] * (int32_t)xs[k]);
                }
            }
            accs[pix] = (int32_t)acc;
        }
        nn_conv_requant_run(accs, ps->out + m, ps->out_pix, ps->npix, ps, m);
    }
}

#endif

/* Copies image `img` (all channels, or channel `ch` only) into zero-point padded phase planes at dst,
 * writing every element of the planes once. perm (DSP fast path, in_channels % 4 == 0): values in SXTB16
 * order per group of 4 (nn_widen8p). */
static void nn_pad_image(nn_elem_t *dst, const int8_t *img, const nn_layout_t *g, int32_t ch, int32_t zp,
                         int perm) {
    const int32_t ic = ch < 0 ? g->c : 1;
    const int32_t row = g->wq * ic, plane = g->hp * row;
    for (int32_t y = 0; y < g->hp; y++) {
        const int32_t iy = y - g->pt;
        nn_elem_t *drow = dst + y * row;
        if (iy < 0 || iy >= g->h) {
            for (int32_t r = 0; r < g->dw; r++) {
                for (int32_t i = 0; i < row; i++) {
                    drow[r * plane + i] = (nn_elem_t)zp;
                }
            }
            continue;
        }
        const int8_t *src = img + (size_t)iy * g->w * g->c;
        if (g->dw == 1) { /* one plane: pad, copy the row (all channels, or gather one), pad */
            for (int32_t i = 0; i < g->pl * ic; i++) {
                drow[i] = (nn_elem_t)zp;
            }
            if (ch < 0) {
                nn_widen_row(drow + g->pl * ic, src, g->w * ic, perm);
            } else {
                nn_elem_t *d = drow + g->pl;
                const int8_t *sx = src + ch;
                for (int32_t i = 0; i < g->w; i++, sx += g->c) {
                    d[i] = *sx;
                }
            }
            for (int32_t i = (g->pl + g->w) * ic; i < row; i++) {
                drow[i] = (nn_elem_t)zp;
            }
            continue;
        }
        for (int32_t r = 0; r < g->dw; r++) { /* plane r: padded columns r, r + dw, ...; ix = column - pl */
            nn_elem_t *d = drow + r * plane;
            int32_t q0 = 0, q1;
            while (q0 < g->wq && r + q0 * g->dw < g->pl) {
                q0++;
            }
            for (q1 = q0; q1 < g->wq && r + q1 * g->dw < g->pl + g->w; q1++) {
            }
            for (int32_t i = 0; i < q0 * ic; i++) {
                d[i] = (nn_elem_t)zp;
            }
            const int8_t *sx = q1 > q0 ? src + (size_t)(r + q0 * g->dw - g->pl) * g->c : src;
            if (ch >= 0) {
                for (int32_t q = q0; q < q1; q++, sx += g->dw * g->c) {
                    d[q] = sx[ch];
                }
            } else {
#if NN_DSP
                if (ic % 8 == 0 && q1 > q0 && ((uintptr_t)(d + q0 * ic) & 3u) == 0) {
                    (perm ? nn_widen8p : nn_widen8)(d + q0 * ic, sx, ic / 8, q1 - q0, (g->dw - 1) * g->c);
                } else
#endif
                {
                    for (int32_t q = q0; q < q1; q++, sx += g->dw * g->c) {
                        nn_widen_row(d + q * ic, sx, ic, perm);
                    }
                }
            }
            for (int32_t i = q1 * ic; i < row; i++) {
                d[i] = (nn_elem_t)zp;
            }
        }
    }
}

static void nn_pass_common(nn_pass_t *ps, const nn_op_t *op, const nn_layout_t *g, const int32_t *offs) {
    const int32_t *p = op->p;
    ps->npix = (int32_t)(op->out.dims[1] * op->out.dims[2]);
    ps->offs = offs;
    ps->n_seg = p[DYSAN_NN_CONV_KERNEL_H];
    ps->seg_stride = p[DYSAN_NN_CONV_DILATION_H] * g->wq * g->ic;
    ps->seg_len = p[DYSAN_NN_CONV_KERNEL_W] * g->ic;
    ps->pairs = g->pairs;
    ps->pairs_pad = g->pairs_pad;
    ps->w_row = p[DYSAN_NN_CONV_WEIGHTS_ROW];
    ps->out_zp = p[DYSAN_NN_CONV_OUTPUT_ZP];
    ps->act_min = p[DYSAN_NN_CONV_ACT_MIN];
    ps->act_max = p[DYSAN_NN_CONV_ACT_MAX];
    ps->acc_bounded = (op->flags & DYSAN_NN_OPF_ACC_BOUNDED) != 0;
}

typedef struct {
    nn_layout_t g;
    nn_elem_t *x;
    int16_t *wbuf;
    int32_t *offs, *accs;
} nn_scratch_t;

static void nn_scratch(nn_scratch_t *s, const nn_op_t *op, uint8_t *arena) {
    (void)nn_layout(op, &s->g);
    uint8_t *base = arena + op->scratch_off;
    s->x = (nn_elem_t *)(void *)base;
    s->wbuf = (int16_t *)(void *)(base + s->g.wbuf_off);
    s->offs = (int32_t *)(void *)(base + s->g.offs_off);
    s->accs = (int32_t *)(void *)(base + s->g.accs_off);
    nn_window_offsets(s->offs, op, &s->g);
}

static void nn_conv2d(const nn_op_t *op, uint8_t *arena) {
    nn_scratch_t sc;
    nn_scratch(&sc, op, arena);
    const nn_layout_t *g = &sc.g;
    const int32_t oc = op->p[DYSAN_NN_CONV_OUT_CHANNELS];
    const int32_t n = (int32_t)op->in[0].dims[0];
    nn_pass_t ps;
    nn_pass_common(&ps, op, g, sc.offs);
    ps.n_ch = oc;
    ps.w = (const int8_t *)op->weights;
    ps.bias = op->bias;
    ps.mult = op->mult;
    ps.shift = op->shift;
    ps.out_pix = oc;
    const int8_t *in = (const int8_t *)(arena + op->in[0].off);
    int8_t *out = (int8_t *)(arena + op->out.off);
    for (int32_t i = 0; i < DYSAN_NN_CONV_SLACK; i++) {
        sc.x[g->group + i] = 0; /* what a zero-padded weight tail reads past the last window */
    }
#if NN_DSP
    uint32_t labels[NN_K22_LABELS];
    const int fast = nn_m4_conv_fast_prepare(&ps, g, arena + op->scratch_off, labels);
    const int perm = fast && g->ic % 4 == 0;
#else
    const int perm = 0;
#endif
    for (int32_t b = 0; b < n; b++) {
        nn_pad_image(sc.x, in + (size_t)b * g->h * g->w * g->c, g, -1, op->in[0].zp, perm);
        ps.out = out + (size_t)b * ps.npix * oc;
#if NN_DSP
        if (fast) {
            nn_m4_conv_fast_pass(&ps, g, sc.x, arena + op->scratch_off, labels);
            continue;
        }
        nn_m4_conv_pass(&ps, sc.x, sc.wbuf, sc.accs);
#else
        nn_pass(&ps, sc.x, sc.accs);
#endif
    }
}

static void nn_depthwise_conv2d(const nn_op_t *op, uint8_t *arena) {
    nn_scratch_t sc;
    nn_scratch(&sc, op, arena);
    const nn_layout_t *g = &sc.g;
    const int32_t dm = op->p[DYSAN_NN_CONV_DEPTH_MULTIPLIER];
    const int32_t oc = op->p[DYSAN_NN_CONV_OUT_CHANNELS];
    const int32_t n = (int32_t)op->in[0].dims[0];
    nn_pass_t ps;
    nn_pass_common(&ps, op, g, sc.offs);
    ps.n_ch = dm;
    ps.out_pix = oc;
    const int8_t *in = (const int8_t *)(arena + op->in[0].off);
    int8_t *out = (int8_t *)(arena + op->out.off);
    for (int32_t b = 0; b < n; b++) {
        const int8_t *img = in + (size_t)b * g->h * g->w * g->c;
        for (int32_t c = 0; c < g->c; c++) {
            nn_elem_t *plane = sc.x + c * g->group_stride;
            nn_pad_image(plane, img, g, c, op->in[0].zp, 0);
            for (int32_t i = g->group; i < g->group_stride; i++) {
                plane[i] = 0;
            }
        }
        for (int32_t c = 0; c < g->c; c++) {
            ps.w = (const int8_t *)op->weights + (size_t)c * dm * ps.w_row;
            ps.bias = op->bias + 4 * c * dm;
            ps.mult = op->mult + 4 * c * dm;
            ps.shift = op->shift + 4 * c * dm;
            ps.out = out + (size_t)b * ps.npix * oc + c * dm;
#if NN_DSP
            nn_m4_dw_pass(&ps, sc.x + c * g->group_stride, sc.wbuf, sc.accs);
#else
            nn_dw_pass(&ps, sc.x + c * g->group_stride, sc.accs);
#endif
        }
    }
}

/* ---- registration ------------------------------------------------------------------------------------ */

/* CONV_2D and DEPTHWISE_CONV_2D: NHWC tensors, every window inside the padded input. */
static int nn_validate_conv(const dysan_nn_model_t *m, nn_op_t *op) {
    int err = nn_validate_conv_params(op);
    if (err) {
        return err;
    }
    const int32_t *p = op->p;
    const int dwise = op->kind == DYSAN_NN_KIND_DEPTHWISE_CONV_2D;
    const uint64_t ic = (uint32_t)p[DYSAN_NN_CONV_IN_CHANNELS], oc = (uint32_t)p[DYSAN_NN_CONV_OUT_CHANNELS];
    const uint64_t kh = (uint32_t)p[DYSAN_NN_CONV_KERNEL_H], kw = (uint32_t)p[DYSAN_NN_CONV_KERNEL_W];
    const nn_tensor_t *x = &op->in[0], *y = &op->out;
    if (x->rank != 4 || y->rank != 4 || x->dims[0] != y->dims[0] || x->dims[3] != ic || y->dims[3] != oc) {
        return DYSAN_NN_ERR_SHAPE;
    }
    const uint64_t dm = (uint32_t)p[DYSAN_NN_CONV_DEPTH_MULTIPLIER];
    if (dwise ? oc != ic * dm : dm != 1) {
        return DYSAN_NN_ERR_SHAPE;
    }
    const uint64_t hp = (uint64_t)x->dims[1] + (uint32_t)p[DYSAN_NN_CONV_PAD_TOP] + (uint32_t)p[DYSAN_NN_CONV_PAD_BOTTOM];
    const uint64_t wp = (uint64_t)x->dims[2] + (uint32_t)p[DYSAN_NN_CONV_PAD_LEFT] + (uint32_t)p[DYSAN_NN_CONV_PAD_RIGHT];
    const uint64_t need_h = (uint64_t)(y->dims[1] - 1) * (uint32_t)p[DYSAN_NN_CONV_STRIDE_H] +
                            (kh - 1) * (uint32_t)p[DYSAN_NN_CONV_DILATION_H] + 1;
    const uint64_t need_w = (uint64_t)(y->dims[2] - 1) * (uint32_t)p[DYSAN_NN_CONV_STRIDE_W] +
                            (kw - 1) * (uint32_t)p[DYSAN_NN_CONV_DILATION_W] + 1;
    if (need_h > hp || need_w > wp) {
        return DYSAN_NN_ERR_SHAPE; /* a window would read outside the padded input */
    }
    return nn_validate_conv_blobs(m, op, kh * kw * (dwise ? 1 : ic));
}

const nn_op_reg_t nn_reg_conv_2d = {DYSAN_NN_KIND_CONV_2D, 1, DYSAN_NN_CONV_NPARAMS, DYSAN_NN_OPF_ACC_BOUNDED,
                                    nn_validate_conv, nn_conv2d};
const nn_op_reg_t nn_reg_depthwise_conv_2d = {DYSAN_NN_KIND_DEPTHWISE_CONV_2D, 1, DYSAN_NN_CONV_NPARAMS,
                                              DYSAN_NN_OPF_ACC_BOUNDED, nn_validate_conv, nn_depthwise_conv2d};
