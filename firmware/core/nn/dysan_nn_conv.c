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
 * Accumulators of one output channel (or channel pair) are computed for every pixel first and requantized
 * afterwards in a loop of their own, so the requantization constants never compete with the dot products
 * for registers.
 *
 * Cortex-M DSP path: the copy is widened to int16 and the weights of two output channels are widened,
 * interleaved and zero-padded to a multiple of 8 taps once per channel pair. A block of 2 channels x 2 pixels
 * then costs, per 4 taps, 4 LDRD and 8 SMLAD (16 MACs), 26 instructions per 32 MACs with the loop.
 */
#include <string.h>

#include "dysan_nn_internal.h"

/* Scratch layout, shared with model_image.conv_scratch(). */
typedef struct {
    int32_t h, w, c;        /* input image */
    int32_t pt, pl;         /* padding before */
    int32_t hp, wp;         /* padded size */
    int32_t dw, wq;         /* phase planes: dilation_w of them, wq = ceil(wp / dw) columns each */
    int32_t ic;             /* values per pixel in a plane: c, or 1 for depthwise */
    int32_t group;          /* elements of one padded image (all phases) for one channel group */
    int32_t group_stride;   /* elements between channel groups (depthwise: one per channel) */
    int32_t pairs;          /* int16 pairs per window row segment, and the same rounded up to 4 */
    int32_t pairs_pad;
    uint64_t wbuf_off;      /* byte offset of the widened weights of a channel pair */
    uint64_t offs_off;      /* byte offset of the window offsets (int32 per output pixel, + 1) */
    uint64_t accs_off;      /* byte offset of the accumulators of one channel pair (2 x int32 per pixel, + 1) */
} nn_layout_t;

static uint64_t nn_align(uint64_t n, uint64_t a) { return (n + a - 1u) / a * a; }

/* Fills `g` and returns the scratch bytes the op needs (0 if it would reach 2 GiB). */
static uint64_t nn_layout(const nn_op_t *op, nn_layout_t *g) {
    const int32_t *p = op->p;
    const int dwise = op->kind == DYSAN_NN_KIND_DEPTHWISE_CONV_2D;
    const uint64_t h = op->in[0].dims[1], w = op->in[0].dims[2], c = op->in[0].dims[3];
    const uint64_t hp = h + (uint32_t)p[DYSAN_NN_CONV_PAD_TOP] + (uint32_t)p[DYSAN_NN_CONV_PAD_BOTTOM];
    const uint64_t wp = w + (uint32_t)p[DYSAN_NN_CONV_PAD_LEFT] + (uint32_t)p[DYSAN_NN_CONV_PAD_RIGHT];
    const uint64_t dw = (uint32_t)p[DYSAN_NN_CONV_DILATION_W];
    const uint64_t wq = (wp + dw - 1u) / dw;
    const uint64_t ic = dwise ? 1u : c;
    const uint64_t group = dw * hp * wq * ic;
    const uint64_t group_stride = dwise ? nn_align(group + DYSAN_NN_CONV_SLACK, 2) : group;
    const uint64_t xbytes = nn_align(2u * (dwise ? c * group_stride : group + DYSAN_NN_CONV_SLACK), 4);
    const uint64_t pairs = ((uint32_t)p[DYSAN_NN_CONV_KERNEL_W] * ic + 1u) / 2u;
    const uint64_t pairs_pad = nn_align(pairs, 4);
    const uint64_t wbytes = 8u * (uint32_t)p[DYSAN_NN_CONV_KERNEL_H] * pairs_pad;
    const uint64_t npix = (uint64_t)op->out.dims[1] * op->out.dims[2];
    const uint64_t total = xbytes + wbytes + 12u * (npix + 1u); /* + 1: an odd pixel count pairs the last */
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
        g->wbuf_off = xbytes;
        g->offs_off = xbytes + wbytes;
        g->accs_off = g->offs_off + 4u * (npix + 1u);
    }
    return total;
}

uint64_t nn_conv_scratch_bytes(const nn_op_t *op) {
    if (op->kind == DYSAN_NN_KIND_FULLY_CONNECTED) {
        return 2u * (uint64_t)(uint32_t)op->p[DYSAN_NN_CONV_WEIGHTS_ROW];
    }
    return nn_layout(op, NULL);
}

/* One pass: n_ch output channels over every output pixel of one image. */
typedef struct {
    int32_t npix;
    const int32_t *offs;       /* window offset (elements) of each output pixel */
    int32_t n_seg, seg_stride; /* window = kernel_h segments of seg_len values, seg_stride apart */
    int32_t seg_len, pairs, pairs_pad;
    int32_t n_ch;
    const int8_t *w;           /* weight row of the first channel; channels are w_row bytes apart */
    int32_t w_row;
    const uint8_t *bias, *mult, *shift; /* int32 arrays, first channel */
    int8_t *out;               /* first channel of the first pixel */
    int32_t out_pix;           /* elements between output pixels */
    int32_t out_zp, act_min, act_max;
    int acc_bounded;           /* DYSAN_NN_OPF_ACC_BOUNDED */
} nn_pass_t;

/* Writes the window offset of every output pixel (raster order) into offs: output column ox reads padded
 * column col = ox * stride_w, which lives in phase plane col % dw at column col / dw. One more entry
 * repeats the last, so that an odd pixel count can run as pixel pairs (the extra results are dropped). */
static void nn_window_offsets(int32_t *offs, const nn_op_t *op, const nn_layout_t *g) {
    const int32_t oh = (int32_t)op->out.dims[1], ow = (int32_t)op->out.dims[2];
    const int32_t sh = op->p[DYSAN_NN_CONV_STRIDE_H], sw = op->p[DYSAN_NN_CONV_STRIDE_W];
    const int32_t row = g->wq * g->ic, plane = g->hp * row;
    for (int32_t oy = 0; oy < oh; oy++) {
        int32_t r = 0, q = 0;
        for (int32_t ox = 0; ox < ow; ox++) {
            *offs++ = r * plane + oy * sh * row + q * g->ic;
            r += sw % g->dw;
            q += sw / g->dw;
            if (r >= g->dw) {
                r -= g->dw;
                q++;
            }
        }
    }
    *offs = offs[-1];
}

/* Requantizes n consecutive accumulators of channel c into outputs `out_step` apart. Not inlined: on its
 * own the loop keeps every constant in a register (the usual case -- no left shift, no clamp narrower than
 * int8 -- needs one SSAT for the clamp). */
NN_NOINLINE static void nn_requant_run(const int32_t *acc, int8_t *out, int32_t out_step, int32_t n,
                                       const nn_pass_t *ps, int32_t c) {
    const nn_rq_t q = nn_rq_make(nn_rd_i32(ps->mult + 4 * c), nn_rd_i32(ps->shift + 4 * c));
    const int32_t zp = ps->out_zp, lo = ps->act_min, hi = ps->act_max;
    const int32_t *end = acc + n;
#if NN_DSP
    if (ps->acc_bounded && q.left == 0 && q.right >= 1) { /* the usual case: 7 instructions + clamp */
        const int32_t mult = q.mult, right = q.right;
        const uint32_t round = UINT32_C(1) << (right - 1);
        if (lo == -128 && hi == 127) {
            for (; acc != end; acc++, out += out_step) {
                *out = (int8_t)__ssat(nn_rq_apply_bounded(*acc, mult, right, round) + zp, 8);
            }
        } else {
            for (; acc != end; acc++, out += out_step) {
                const int32_t v = nn_rq_apply_bounded(*acc, mult, right, round) + zp;
                *out = (int8_t)(v < lo ? lo : (v > hi ? hi : v));
            }
        }
        return;
    }
#endif
    for (; acc != end; acc++, out += out_step) {
        int32_t v = nn_rq_apply(*acc, &q) + zp;
        v = v < lo ? lo : v;
        *out = (int8_t)(v > hi ? hi : v);
    }
}

#if !NN_DSP

/* ---- portable path: int8 x int8 dot products -------------------------------------------------------- */

typedef int8_t nn_elem_t;

static void nn_widen_row(int8_t *dst, const int8_t *src, int32_t n) { memcpy(dst, src, (size_t)n); }

/* Blocks of 2 channels x 2 pixels, like the DSP path: each loaded weight and input serves two products.
 * Accumulation is unsigned: it wraps like the int32 accumulator without being undefined. */
static void nn_pass(const nn_pass_t *ps, const int8_t *x, int16_t *wbuf, int32_t *accs) {
    (void)wbuf;
    int32_t *accs_b = accs + ps->npix + 1;
    for (int32_t c = 0; c < ps->n_ch; c += 2) {
        const int nc = c + 1 < ps->n_ch ? 2 : 1;
        const int8_t *wa = ps->w + c * ps->w_row, *wb = nc == 2 ? wa + ps->w_row : wa;
        const uint32_t bias_a = nn_rd_u32(ps->bias + 4 * c), bias_b = nn_rd_u32(ps->bias + 4 * (c + nc - 1));
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
        nn_requant_run(accs, ps->out + c, ps->out_pix, ps->npix, ps, c);
        if (nc == 2) {
            nn_requant_run(accs_b, ps->out + c + 1, ps->out_pix, ps->npix, ps, c + 1);
        }
    }
}

#else

/* ---- Cortex-M DSP path: int16 pairs, SMLAD --------------------------------------------------------- */

typedef int16_t nn_elem_t;

static inline uint32_t nn_ld32(const void *p) { /* any alignment: LDR tolerates it on ARMv7-M */
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* int8 x4 in a word -> {x0, x1} and {x2, x3} as int16 pairs: SXTB16 twice, then PKHBT / PKHTB (asm: GCC
 * builds each pack from two or three instructions). */
static inline void nn_widen4(uint32_t v, uint32_t *lo, uint32_t *hi) {
    const uint32_t even = (uint32_t)__sxtb16(v), odd = nn_sxtb16_ror8(v);
    uint32_t l, h;
    __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(l) : "r"(even), "r"(odd));
    __asm__("pkhtb %0, %1, %2, asr #16" : "=r"(h) : "r"(odd), "r"(even));
    *lo = l;
    *hi = h;
}

static void nn_widen_row(int16_t *dst, const int8_t *src, int32_t n) {
    int32_t i = 0;
    for (; i + 4 <= n; i += 4) {
        uint32_t lo, hi;
        nn_widen4(nn_ld32(src + i), &lo, &hi);
        memcpy(dst + i, &lo, 4);
        memcpy(dst + i + 2, &hi, 4);
    }
    for (; i < n; i++) {
        dst[i] = src[i];
    }
}

/* Widens n_seg segments of len int8 weights of channels a (and b) into int16 pairs, interleaved per pair:
 * {a[2j], a[2j+1], b[2j], b[2j+1]} (or {a[2j], a[2j+1]} for one channel), zero-padded to pairs_pad pairs
 * per segment (the padding multiplies whatever follows the window by 0). */
static void nn_widen_weights(int16_t *dst, const int8_t *a, const int8_t *b, int32_t n_seg, int32_t len,
                             int32_t pairs_pad) {
    const int32_t per_pair = b ? 4 : 2;
    for (int32_t s = 0; s < n_seg; s++, a += len, b = b ? b + len : NULL) {
        int16_t *d = dst + s * pairs_pad * per_pair;
        memset(d, 0, (size_t)pairs_pad * per_pair * sizeof(int16_t));
        int32_t j = 0;
        if (b) {
            for (; j + 4 <= len; j += 4, d += 8) { /* 4 taps of both channels: {a01, b01, a23, b23} */
                uint32_t a01, a23, b01, b23;
                nn_widen4(nn_ld32(a + j), &a01, &a23);
                nn_widen4(nn_ld32(b + j), &b01, &b23);
                memcpy(d, &a01, 4);
                memcpy(d + 2, &b01, 4);
                memcpy(d + 4, &a23, 4);
                memcpy(d + 6, &b23, 4);
            }
        }
        for (; j < len; j += 2, d += per_pair) {
            d[0] = a[j];
            d[1] = j + 1 < len ? a[j + 1] : 0;
            if (b) {
                d[2] = b[j];
                d[3] = j + 1 < len ? b[j + 1] : 0;
            }
        }
    }
}

/* One quad (4 taps) of the 2 channels x 2 pixels block: 4 LDRD + 8 SMLAD (16 MACs); a loop turn runs two. */
#define NN_QUAD                                                                                               \
    "ldrd  %[t0], %[t1], [%[pa]], #8\n\t"                                                                     \
    "ldrd  %[t2], %[t3], [%[pb]], #8\n\t"                                                                     \
    "ldrd  %[t4], %[t5], [%[pw]], #16\n\t"                                                                    \
    "smlad %[a0], %[t4], %[t0], %[a0]\n\t"                                                                    \
    "smlad %[b0], %[t5], %[t0], %[b0]\n\t"                                                                    \
    "smlad %[a1], %[t4], %[t2], %[a1]\n\t"                                                                    \
    "smlad %[b1], %[t5], %[t2], %[b1]\n\t"                                                                    \
    "ldrd  %[t4], %[t5], [%[pw], #-8]\n\t"                                                                    \
    "smlad %[a0], %[t4], %[t1], %[a0]\n\t"                                                                    \
    "smlad %[b0], %[t5], %[t1], %[b0]\n\t"                                                                    \
    "smlad %[a1], %[t4], %[t3], %[a1]\n\t"                                                                    \
    "smlad %[b1], %[t5], %[t3], %[b1]\n\t"
#define NN_TURN_LOOP                                                                                          \
    "1:\n\t" NN_QUAD NN_QUAD "subs  %[n], %[n], #1\n\t"                                                       \
    "bne   1b\n\t"

/* One window row segment: `turns` x 8 taps (pairs_pad / 4), word-aligned pointers. In asm because the block
 * needs all 14 allocatable registers (4 accumulators, 3 pointers, a counter, 6 operands). */
static inline void nn_k22(const int16_t *w, const int16_t *xa, const int16_t *xb, int32_t turns, int32_t *acc) {
    int32_t a0 = acc[0], b0 = acc[1], a1 = acc[2], b1 = acc[3];
    uint32_t t0, t1, t2, t3, t4, t5;
    __asm__ volatile(NN_TURN_LOOP
                     : [a0] "+r"(a0), [b0] "+r"(b0), [a1] "+r"(a1), [b1] "+r"(b1), [pa] "+r"(xa), [pb] "+r"(xb),
                       [pw] "+r"(w), [n] "+r"(turns), [t0] "=&r"(t0), [t1] "=&r"(t1), [t2] "=&r"(t2),
                       [t3] "=&r"(t3), [t4] "=&r"(t4), [t5] "=&r"(t5)
                     :
                     : "cc", "memory");
    acc[0] = a0;
    acc[1] = b0;
    acc[2] = a1;
    acc[3] = b1;
}

/* Channels c, c + 1 over pixel pairs, one window row (1-D convolutions): the whole pixel loop in asm, its
 * state kept in stack slots while the 14 registers run the dot products. */
NN_NOINLINE static void nn_acc22_row(const int16_t *x, const int32_t *offs, const int16_t *wbuf, int32_t n_pix_pairs,
                                     int32_t turns, int32_t bias_a, int32_t bias_b, int32_t *accs_a,
                                     int32_t *accs_b) {
    int32_t a0, b0, a1, b1, n;
    const int16_t *pa, *pb, *pw;
    uint32_t t0, t1, t2, t3, t4, t5;
    __asm__ volatile("2:\n\t"
                     "ldr   %[t0], %[offs]\n\t"
                     "ldrd  %[t1], %[t2], [%[t0]], #8\n\t"
                     "str   %[t0], %[offs]\n\t"
                     "ldr   %[t0], %[x]\n\t"
                     "add   %[pa], %[t0], %[t1], lsl #1\n\t"
                     "add   %[pb], %[t0], %[t2], lsl #1\n\t"
                     "ldr   %[pw], %[wbuf]\n\t"
                     "ldr   %[a0], %[bias_a]\n\t"
                     "ldr   %[b0], %[bias_b]\n\t"
                     "mov   %[a1], %[a0]\n\t"
                     "mov   %[b1], %[b0]\n\t"
                     "ldr   %[n], %[turns]\n\t" NN_TURN_LOOP "ldr   %[t0], %[accs_a]\n\t"
                     "strd  %[a0], %[a1], [%[t0]], #8\n\t"
                     "str   %[t0], %[accs_a]\n\t"
                     "ldr   %[t0], %[accs_b]\n\t"
                     "strd  %[b0], %[b1], [%[t0]], #8\n\t"
                     "str   %[t0], %[accs_b]\n\t"
                     "ldr   %[t0], %[left]\n\t"
                     "subs  %[t0], %[t0], #1\n\t"
                     "str   %[t0], %[left]\n\t"
                     "bne   2b\n\t"
                     : [a0] "=&r"(a0), [b0] "=&r"(b0), [a1] "=&r"(a1), [b1] "=&r"(b1), [pa] "=&r"(pa),
                       [pb] "=&r"(pb), [pw] "=&r"(pw), [n] "=&r"(n), [t0] "=&r"(t0), [t1] "=&r"(t1),
                       [t2] "=&r"(t2), [t3] "=&r"(t3), [t4] "=&r"(t4), [t5] "=&r"(t5), [offs] "+m"(offs),
                       [accs_a] "+m"(accs_a), [accs_b] "+m"(accs_b), [left] "+m"(n_pix_pairs)
                     : [x] "m"(x), [wbuf] "m"(wbuf), [bias_a] "m"(bias_a), [bias_b] "m"(bias_b),
                       [turns] "m"(turns)
                     : "cc", "memory");
}

/* General block: nc channels (1 or 2) x np pixels (1 or 2) over `pairs` pairs, any 2-byte alignment. */
static void nn_kgen(const int16_t *w, const int16_t *xa, const int16_t *xb, int32_t pairs, int nc, int np,
                    int32_t *acc) {
    int32_t a0 = acc[0], b0 = acc[1], a1 = acc[2], b1 = acc[3];
    for (int32_t j = 0; j < pairs; j++, xa += 2, xb += 2, w += 2 * nc) {
        const uint32_t wa = nn_ld32(w), x0 = nn_ld32(xa), y0 = nn_ld32(np == 2 ? xb : xa);
        a0 = __smlad(wa, x0, a0);
        a1 = __smlad(wa, y0, a1);
        if (nc == 2) {
            const uint32_t wb = nn_ld32(w + 2);
            b0 = __smlad(wb, x0, b0);
            b1 = __smlad(wb, y0, b1);
        }
    }
    acc[0] = a0;
    acc[1] = b0;
    acc[2] = a1;
    acc[3] = b1;
}

/* Accumulators of channel c for every pixel into accs[pix], of channel c + 1 (when nc == 2) into
 * accs_b[pix]; an odd pixel count writes one extra pair (accs hold npix + 1 entries per channel). */
static void nn_accumulate(const nn_pass_t *ps, const int16_t *x, const int16_t *wbuf, int32_t c, int nc,
                          int aligned, int32_t *accs, int32_t *accs_b) {
    const int32_t wseg = 2 * nc * ps->pairs_pad;
    const int32_t bias_a = nn_rd_i32(ps->bias + 4 * c), bias_b = nc == 2 ? nn_rd_i32(ps->bias + 4 * (c + 1)) : 0;
    if (aligned && nc == 2) { /* pixel pairs; with an odd count the last pixel pairs with itself */
        const int32_t turns = ps->pairs_pad / 4, n_pix_pairs = (ps->npix + 1) / 2;
        if (ps->n_seg == 1) {
            nn_acc22_row(x, ps->offs, wbuf, n_pix_pairs, turns, bias_a, bias_b, accs, accs_b);
            return;
        }
        for (int32_t pix = 0; pix < ps->npix; pix += 2) {
            int32_t acc[4] = {bias_a, bias_b, bias_a, bias_b};
            for (int32_t s = 0; s < ps->n_seg; s++) {
                const int32_t off = s * ps->seg_stride;
                nn_k22(wbuf + s * wseg, x + ps->offs[pix] + off, x + ps->offs[pix + 1] + off, turns, acc);
            }
            accs[pix] = acc[0];
            accs_b[pix] = acc[1];
            accs[pix + 1] = acc[2];
            accs_b[pix + 1] = acc[3];
        }
        return;
    }
    for (int32_t pix = 0; pix < ps->npix; pix += 2) {
        const int np = pix + 1 < ps->npix ? 2 : 1;
        int32_t acc[4] = {bias_a, bias_b, bias_a, bias_b};
        for (int32_t s = 0; s < ps->n_seg; s++) {
            const int32_t off = s * ps->seg_stride;
            nn_kgen(wbuf + s * wseg, x + ps->offs[pix] + off, x + ps->offs[pix + np - 1] + off, ps->pairs, nc, np,
                    acc);
        }
        accs[pix] = acc[0];
        accs_b[pix] = acc[1];
        accs[pix + 1] = acc[2]; /* pix + 1 <= npix: within the npix + 1 entries */
        accs_b[pix + 1] = acc[3];
    }
}

static void nn_pass(const nn_pass_t *ps, const int16_t *x, int16_t *wbuf, int32_t *accs) {
    /* Word loads need every window and segment to start at an even element (x itself is word-aligned). */
    int32_t odd = ps->seg_stride | ps->seg_len;
    for (int32_t i = 0; i <= ps->npix; i++) {
        odd |= ps->offs[i];
    }
    const int aligned = (odd & 1) == 0;
    for (int32_t c = 0; c < ps->n_ch; c += 2) {
        const int nc = c + 1 < ps->n_ch ? 2 : 1;
        const int8_t *wa = ps->w + c * ps->w_row;
        nn_widen_weights(wbuf, wa, nc == 2 ? wa + ps->w_row : NULL, ps->n_seg, ps->seg_len, ps->pairs_pad);
        int32_t *accs_b = accs + ps->npix + 1;
        nn_accumulate(ps, x, wbuf, c, nc, aligned, accs, accs_b);
        nn_requant_run(accs, ps->out + c, ps->out_pix, ps->npix, ps, c);
        if (nc == 2) {
            nn_requant_run(accs_b, ps->out + c + 1, ps->out_pix, ps->npix, ps, c + 1);
        }
    }
}

#endif /* NN_DSP */

/* Depthwise: the depth_multiplier output channels of one input channel plane, pixel by pixel (one input
 * channel gives too few multiply-accumulates per output for the 2 x 2 blocks to pay off). The DSP path
 * feeds SMLAD with int16 pairs of taps: widened weights and any-alignment word loads of the plane. */
static void nn_dw_pass(const nn_pass_t *ps, const nn_elem_t *x, int16_t *wbuf, int32_t *accs) {
    for (int32_t m = 0; m < ps->n_ch; m++) {
        const int32_t bias = nn_rd_i32(ps->bias + 4 * m);
        const int8_t *w = ps->w + m * ps->w_row;
#if NN_DSP
        nn_widen_weights(wbuf, w, NULL, ps->n_seg, ps->seg_len, ps->pairs_pad);
#else
        (void)wbuf;
#endif
#if NN_DSP
        if (ps->n_seg == 1) { /* one window row (1-D) */
            const int32_t pairs = ps->pairs;
            for (int32_t pix = 0; pix < ps->npix; pix++) {
                const int16_t *xs = x + ps->offs[pix];
                int32_t acc = bias;
                for (int32_t j = 0; j < pairs; j++) {
                    acc = __smlad(nn_ld32(wbuf + 2 * j), nn_ld32(xs + 2 * j), acc);
                }
                accs[pix] = acc;
            }
            nn_requant_run(accs, ps->out + m, ps->out_pix, ps->npix, ps, m);
            continue;
        }
#endif
        for (int32_t pix = 0; pix < ps->npix; pix++) {
            const nn_elem_t *win = x + ps->offs[pix];
            int32_t acc = bias;
            for (int32_t s = 0; s < ps->n_seg; s++) {
                const nn_elem_t *xs = win + s * ps->seg_stride;
#if NN_DSP
                const int16_t *ws = wbuf + 2 * s * ps->pairs_pad;
                for (int32_t j = 0; j < ps->pairs; j++) {
                    acc = __smlad(nn_ld32(ws + 2 * j), nn_ld32(xs + 2 * j), acc);
                }
#else
                const int8_t *ws = w + s * ps->seg_len;
                uint32_t sum = 0; /* unsigned: wraps like the int32 accumulator without being undefined */
                for (int32_t k = 0; k < ps->seg_len; k++) {
                    sum += (uint32_t)((int32_t)ws[k] * (int32_t)xs[k]);
                }
                acc = (int32_t)((uint32_t)acc + sum);
#endif
            }
            accs[pix] = acc;
        }
        nn_requant_run(accs, ps->out + m, ps->out_pix, ps->npix, ps, m);
    }
}

/* Copies image `img` (all channels, or channel `ch` only) into zero-point padded phase planes at dst,
 * writing every element of the planes once. */
static void nn_pad_image(nn_elem_t *dst, const int8_t *img, const nn_layout_t *g, int32_t ch, int32_t zp) {
    const int32_t ic = ch < 0 ? g->c : 1;
    const int32_t row = g->wq * ic, plane = g->hp * row, cols = g->dw * g->wq;
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
                nn_widen_row(drow + g->pl * ic, src, g->w * ic);
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
        int32_t r = 0, q = 0;
        for (int32_t col = 0; col < cols; col++) {
            nn_elem_t *d = drow + r * plane + q * ic;
            const int32_t ix = col - g->pl;
            if (ix >= 0 && ix < g->w) {
                const int8_t *sx = src + (size_t)ix * g->c;
                if (ch < 0) {
                    nn_widen_row(d, sx, ic);
                } else {
                    d[0] = sx[ch];
                }
            } else {
                for (int32_t k = 0; k < ic; k++) {
                    d[k] = (nn_elem_t)zp;
                }
            }
            if (++r == g->dw) {
                r = 0;
                q++;
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

static nn_scratch_t nn_scratch(const nn_op_t *op, uint8_t *arena) {
    nn_scratch_t s;
    (void)nn_layout(op, &s.g);
    uint8_t *base = arena + op->scratch_off;
    s.x = (nn_elem_t *)(void *)base;
    s.wbuf = (int16_t *)(void *)(base + s.g.wbuf_off);
    s.offs = (int32_t *)(void *)(base + s.g.offs_off);
    s.accs = (int32_t *)(void *)(base + s.g.accs_off);
    nn_window_offsets(s.offs, op, &s.g);
    return s;
}

void nn_conv2d(const nn_op_t *op, uint8_t *arena) {
    nn_scratch_t sc = nn_scratch(op, arena);
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
    for (int32_t b = 0; b < n; b++) {
        nn_pad_image(sc.x, in + (size_t)b * g->h * g->w * g->c, g, -1, op->in[0].zp);
        ps.out = out + (size_t)b * ps.npix * oc;
        nn_pass(&ps, sc.x, sc.wbuf, sc.accs);
    }
}

void nn_depthwise_conv2d(const nn_op_t *op, uint8_t *arena) {
    nn_scratch_t sc = nn_scratch(op, arena);
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
            nn_pad_image(plane, img, g, c, op->in[0].zp);
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
            nn_dw_pass(&ps, sc.x + c * g->group_stride, sc.wbuf, sc.accs);
        }
    }
}
