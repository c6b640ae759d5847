/*
 * dysan_nn_conv.h -- what the portable convolution kernels (dysan_nn_conv.c) share with their Cortex-M4 DSP
 * paths (dysan_nn_conv_m4.c): the scratch layout, one pass of output channels over an image, and the M4
 * entry points. Private to core/nn.
 */
#ifndef DYSAN_NN_CONV_H
#define DYSAN_NN_CONV_H

#include "dysan_nn_internal.h"

/* Scratch layout, shared with model_image.conv_scratch(): the padded input planes (xbytes), the window
 * offsets (int32 per output pixel, + 1), then one region that either the general blocks (widened weights of
 * a channel pair, accumulators of a channel pair) or the Cortex-M4 fast path (prepared weights of every
 * channel pair, requantization constants, a pixel pair's window column, staging rows) use. */
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
    int32_t fast;           /* the fast region exists (CONV_2D, window <= DYSAN_NN_CONV_FAST_MAX_PAIRS pairs) */
    uint64_t offs_off;      /* byte offset of the window offsets (int32 per output pixel, + 1) */
    uint64_t wbuf_off;      /* general: widened weights of a channel pair */
    uint64_t accs_off;      /* general: accumulators of one channel pair (2 x int32 per pixel, + 1) */
    uint64_t fw_off;        /* fast: weight stream, (14 + 2 x window pairs) words per channel pair, + 8 */
    uint64_t fcol_off;      /* fast: window column of a pixel pair, 2 words per pair (+ 3 pairs) */
    uint64_t fstage_off;    /* fast: two staging rows of align4(out_channels + 1) bytes */
} nn_layout_t;

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

/* Element of the padded input copy: int16 on the DSP path (SMLAD pairs), int8 elsewhere. */
#if NN_DSP
typedef int16_t nn_elem_t;
#else
typedef int8_t nn_elem_t;
#endif

static inline uint64_t nn_align(uint64_t n, uint64_t a) { return (n + a - 1u) / a * a; }

/* Requantizes n consecutive accumulators of channel c into outputs `out_step` apart (dysan_nn_conv.c). */
void nn_conv_requant_run(const int32_t *acc, int8_t *out, int32_t out_step, int32_t n, const nn_pass_t *ps,
                         int32_t c);

#if NN_DSP
/* ---- dysan_nn_conv_m4.c --------------------------------------------------------------------------------- */

/* The bounded requantization (ACC_BOUNDED, no left shift): returns 0 (nothing written) when it does not apply. */
int nn_m4_requant_run(const int32_t *acc, int8_t *out, int32_t out_step, int32_t n, const nn_pass_t *ps,
                      int32_t c);
/* n int8 values widened to int16 (perm: a multiple of 4, in SXTB16 order per group of 4). */
void nn_m4_widen_row(int16_t *dst, const int8_t *src, int32_t n, int perm);
/* `cols` columns of 8 x `groups` values, `skip` bytes between source columns; dst word aligned. */
void nn_widen8(int16_t *dst, const int8_t *src, int32_t groups, int32_t cols, int32_t skip);
void nn_widen8p(int16_t *dst, const int8_t *src, int32_t groups, int32_t cols, int32_t skip);
/* The general 2 channels x 2 pixels blocks (CONV_2D, any geometry). */
void nn_m4_conv_pass(const nn_pass_t *ps, const int16_t *x, int16_t *wbuf, int32_t *accs);
/* The fast path: 1 (weight stream written, labels filled) when the op qualifies, else 0; then one image. */
#define NN_K22_LABELS 8 /* addresses in the fast path's asm kernel */
int nn_m4_conv_fast_prepare(const nn_pass_t *ps, const nn_layout_t *g, uint8_t *base,
                            uint32_t labels[NN_K22_LABELS]);
void nn_m4_conv_fast_pass(const nn_pass_t *ps, const nn_layout_t *g, const int16_t *x, uint8_t *base,
                          const uint32_t labels[NN_K22_LABELS]);
/* DEPTHWISE_CONV_2D: the depth_multiplier channels of one input channel plane. */
void nn_m4_dw_pass(const nn_pass_t *ps, const int16_t *x, int16_t *wbuf, int32_t *accs);
#endif

#endif /* DYSAN_NN_CONV_H */
