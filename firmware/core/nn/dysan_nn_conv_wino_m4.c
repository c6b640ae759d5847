/*
 * dysan_nn_conv_wino_m4.c -- EXPERIMENTAL, OFF BY DEFAULT: CONV_2D on the Cortex-M4 by an integer Winograd
 * (Toom-Cook) transform along time, for the 1-D k5 convolutions of the device family: kernel 1 x 5, stride
 * 1, dilation 1 or 2, 4 / 8 / 12 / 16 input channels, ACC_BOUNDED, right shifts 1..21. dysan_nn_conv.c calls
 * it only when built with -DDYSAN_NN_WINOGRAD: it is bit-exact (tests/test_nn_winograd.py) but measured
 * slower than the direct fast path on every layer it covers (tools/bench_nn_winograd.py; numbers in
 * core/nn/README.md), so no product build contains it. Built only with __ARM_FEATURE_DSP (and not
 * DYSAN_NN_NO_DSP).
 *
 * Tile: two outputs y0, y1 of one output channel from six inputs x0..x5 of a phase plane (x_j = input
 * column o + j d, dilation d), split as F(2,3) on taps 0..2 and F(2,2) on taps 3..4 (7 multiplies for
 * 10 MACs), every product scaled by 2 (the doubled accumulator the fast path's requantization takes):
 *
 *   P = 2w0 (x0 - x2) + 2w3 (x3 - x4)
 *   Q = (w0 + w1 + w2) (x1 + x2) + 2(w3 + w4) x4          (+ 2 bias')
 *   R = (w0 - w1 + w2) (x2 - x1)
 *   S = 2w2 (x3 - x1) + 2w4 (x5 - x4)
 *   2 y0 = P + Q + R,   2 y1 = Q - R + S
 *
 * since (w0+w1+w2)(x1+x2) + (w0-w1+w2)(x2-x1) = 2 (w1 x1 + (w0+w2) x2) and the difference of the two is
 * 2 ((w0+w2) x1 + w1 x2): 2 y0 = 2 (w0 x0 + w1 x1 + w2 x2 + w3 x3 + w4 x4), 2 y1 = 2 (w0 x1 + w1 x2 + w2 x3
 * + w3 x4 + w4 x5). Summed over input channels each of P, Q, R, S is one dot product. All arithmetic is in
 * integers, so the result is exact:
 * - transformed inputs: |x| <= 128 (raw int8 values; outside the input the input zero point, which the
 *   folded bias' cancels exactly as on the direct path), so every sum or difference is within +-256: int16;
 * - transformed weights: |w| <= 128 (int8), so within +-512: int16;
 * - ACC_BOUNDED gives |acc| < 2^30 for the true accumulator acc = bias' + sum w x, so 2 acc fits int32. P,
 *   Q, R, S themselves may wrap mod 2^32 inside SMLAD (the accumulate wraps); the sums above are taken mod
 *   2^32 too (unsigned), and reduction mod 2^32 is a ring homomorphism, so they equal 2 y0, 2 y1 exactly.
 *
 * Dot products: each (channel pair, P/Q/R/S) is one channel pair of the fast path's unrolled kernel
 * (nn_k22_run: 2 channels x 2 tiles, 16 MACs of SMLAD per 10 instructions) over the column of a tile
 * pair, with its own column segment and window length in the stream header; its epilogue, instead of
 * requantizing, jumps to nn_wino_raw, which stores the four accumulators and loads the next header.
 * Then per channel and tile y0, y1 are formed and requantized in C with the fast path's arithmetic
 * (SMMLAR of 2 acc with K = 2^(r-1) + zp 2^r, the sign term, >> r, SSAT 8: derivation in
 * dysan_nn_conv_m4.c), a narrower activation range clamped afterwards.
 *
 * Inputs are read straight from the int8 input tensor (no padded copy): per group of 4 input channels one
 * word, SXTB16 into {c0, c2} and {c1, c3} (the weights are transformed in the same order); a tile with
 * columns outside the input is built from a copy of its 6 columns with the zero point outside. A tile pair
 * covers 4 consecutive outputs: (o, o+1), (o+2, o+3) for dilation 1, (o, o+2), (o+1, o+3) for dilation 2;
 * a last partial pair goes through staging rows.
 *
 * Scratch: the op's own, sized by model_image.conv_scratch for the direct kernels; this path lays it out
 * differently and runs the output channel pairs in chunks that fit (checked against op->scratch_len): the
 * tile pair column (7 in_ch words); per channel pair of a chunk its raw accumulators (16 words), its
 * requantization constants (6 words), its stream record ((44 + 7 in_ch) words, + an 8-word stream end);
 * staging rows (4 x out_ch bytes); edge columns (6 in_ch bytes).
 */
#include "dysan_nn_conv.h"

#if NN_DSP

#include <string.h>

/* The stream's epilogue target: r0-r3 (channel a / b of tile A, channel a / b of tile B) to [r7], then the
 * next header (the 3 words after a channel pair's weights are: unused, the destination, this address). */
void nn_wino_raw(void);
__asm__(NN_ASM_SECTION("nn_wino_raw") NN_ASM_FUNC("nn_wino_raw", "1") "nn_wino_raw:\n"
        "    stm.w  r7, {r0-r3}\n"
        "    ldm    lr!, {r0-r3, r8, r9, r12, pc}\n" NN_ASM_SIZE("nn_wino_raw") NN_ASM_SECTION_END);

#define NN_WINO_HEAD 8 /* nn_k22_run's header: 4 accumulator starts, a weight pair, the column, the entry */
#define NN_WINO_TAIL 3
#define NN_WINO_MAX_IC 64

static inline uint32_t nn_wld(const void *p) {
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* Column order: within P, Q and S the words of input channel group (q, h) -- q a group of 4 channels, h = 0
 * for channels {4q, 4q + 2}, 1 for {4q + 1, 4q + 3} (SXTB16 order) -- are word 2 (2q + h) (the u part) and
 * 2 (2q + h) + 1 (the v part); within R word 2q + h. P, Q, R, S start at words 0, ic, 2 ic, 5 ic / 2. */

/* Transformed weights of channel row `wr` (taps k at k ic) into a channel pair's stream record: slot ch
 * (0: a, 1: b) of each body word (body word 2 j + ch for column word j). */
static void nn_wino_weights(uint32_t *rec, const int8_t *wr, int32_t ic, int ch) {
    uint32_t *bp = rec + NN_WINO_HEAD + ch;
    uint32_t *bq = bp + 2 * ic + NN_WINO_HEAD + NN_WINO_TAIL;
    uint32_t *br = bq + 2 * ic + NN_WINO_HEAD + NN_WINO_TAIL;
    uint32_t *bs = br + ic + NN_WINO_HEAD + NN_WINO_TAIL;
    for (int32_t q = 0; q < ic / 4; q++, wr += 4) {
        const uint32_t w0 = nn_wld(wr), w1 = nn_wld(wr + ic), w2 = nn_wld(wr + 2 * ic);
        const uint32_t w3 = nn_wld(wr + 3 * ic), w4 = nn_wld(wr + 4 * ic);
        for (int h = 0; h < 2; h++, bp += 4, bq += 4, br += 2, bs += 4) {
            const uint32_t e0 = h ? nn_sxtb16_ror8(w0) : (uint32_t)__sxtb16(w0);
            const uint32_t e1 = h ? nn_sxtb16_ror8(w1) : (uint32_t)__sxtb16(w1);
            const uint32_t e2 = h ? nn_sxtb16_ror8(w2) : (uint32_t)__sxtb16(w2);
            const uint32_t e3 = h ? nn_sxtb16_ror8(w3) : (uint32_t)__sxtb16(w3);
            const uint32_t e4 = h ? nn_sxtb16_ror8(w4) : (uint32_t)__sxtb16(w4);
            const uint32_t e34 = __sadd16(e3, e4);
            bp[0] = __sadd16(e0, e0);
            bp[2] = __sadd16(e3, e3);
            bq[0] = __sadd16(__sadd16(e0, e1), e2);
            bq[2] = __sadd16(e34, e34);
            br[0] = __sadd16(__ssub16(e0, e1), e2);
            bs[0] = __sadd16(e2, e2);
            bs[2] = __sadd16(e4, e4);
        }
    }
}

/* One tile's transformed inputs into slot t of the interleaved column (column word j at col[2 j], col
 * passed as col + t); x_j = x + j S. IC and S are constants of each instantiation (immediate offsets). */
static NN_ALWAYS_INLINE void nn_wino_column_t(uint32_t *col, const int8_t *x, const int32_t IC, const int32_t S) {
    for (int32_t q = 0; q < IC / 4; q++, x += 4) {
        const uint32_t v0 = nn_wld(x), v1 = nn_wld(x + S), v2 = nn_wld(x + 2 * S);
        const uint32_t v3 = nn_wld(x + 3 * S), v4 = nn_wld(x + 4 * S), v5 = nn_wld(x + 5 * S);
        for (int h = 0; h < 2; h++) {
            const uint32_t e0 = h ? nn_sxtb16_ror8(v0) : (uint32_t)__sxtb16(v0);
            const uint32_t e1 = h ? nn_sxtb16_ror8(v1) : (uint32_t)__sxtb16(v1);
            const uint32_t e2 = h ? nn_sxtb16_ror8(v2) : (uint32_t)__sxtb16(v2);
            const uint32_t e3 = h ? nn_sxtb16_ror8(v3) : (uint32_t)__sxtb16(v3);
            const uint32_t e4 = h ? nn_sxtb16_ror8(v4) : (uint32_t)__sxtb16(v4);
            const uint32_t e5 = h ? nn_sxtb16_ror8(v5) : (uint32_t)__sxtb16(v5);
            const int32_t g = 2 * q + h;
            col[4 * g] = __ssub16(e0, e2);
            col[4 * g + 2] = __ssub16(e3, e4);
            col[2 * IC + 4 * g] = __sadd16(e1, e2);
            col[2 * IC + 4 * g + 2] = e4;
            col[4 * IC + 2 * g] = __ssub16(e2, e1);
            col[5 * IC + 4 * g] = __ssub16(e3, e1);
            col[5 * IC + 4 * g + 2] = __ssub16(e5, e4);
        }
    }
}

#define NN_WINO_COLS(ic)                                                                                       \
    static void nn_wino_col_##ic##_1(uint32_t *col, const int8_t *x) { nn_wino_column_t(col, x, ic, ic); }     \
    static void nn_wino_col_##ic##_2(uint32_t *col, const int8_t *x) { nn_wino_column_t(col, x, ic, 2 * ic); }
NN_WINO_COLS(4)
NN_WINO_COLS(8)
NN_WINO_COLS(12)
NN_WINO_COLS(16)
typedef void (*nn_wino_col_fn)(uint32_t *col, const int8_t *x);

/* 2 acc -> int8 with the fast path's arithmetic, saturated to int8 (a narrower activation range is
 * clamped afterwards, as on the fast path); `fix`: the sign term (irrelevant when output_zp <= act_min). */
static NN_ALWAYS_INLINE int8_t nn_wino_rq(uint32_t y2, int32_t mult, int32_t k, int32_t right, int fix) {
    int32_t h;
    __asm__("smmlar %0, %1, %2, %3" : "=r"(h) : "r"((int32_t)y2), "r"(mult), "r"(k));
    if (fix) {
        h += (int32_t)y2 >> 31;
    }
    return (int8_t)__ssat(h >> right, 8);
}

/* The eight outputs of a channel pair from its raw accumulators `a` (P, Q, R, S, 4 words each: channel a /
 * b of tile A, then of tile B) and constants rq (mult, K, right of a, then b): channel ch of tile A to
 * o[ch], o[ch + s1], of tile B to o[ch + s2], o[ch + s3]. nb: 1 or 2 channels. Everything is read before
 * the first store (the int8 stores may alias). */
static NN_ALWAYS_INLINE void nn_wino_out_t(const uint32_t *a, const int32_t *rq, int8_t *o, int32_t s1, int32_t s2,
                                           int32_t s3, int nb, int fix) {
    for (int ch = 0; ch < nb; ch++) {
        const int32_t mult = rq[3 * ch], k = rq[3 * ch + 1], right = rq[3 * ch + 2];
        const uint32_t pa = a[ch], qa = a[4 + ch], ra = a[8 + ch], sa = a[12 + ch];
        const uint32_t pb = a[2 + ch], qb = a[6 + ch], rb = a[10 + ch], sb = a[14 + ch];
        const int8_t v0 = nn_wino_rq(pa + qa + ra, mult, k, right, fix);
        const int8_t v1 = nn_wino_rq(qa - ra + sa, mult, k, right, fix);
        const int8_t v2 = nn_wino_rq(pb + qb + rb, mult, k, right, fix);
        const int8_t v3 = nn_wino_rq(qb - rb + sb, mult, k, right, fix);
        o[ch] = v0;
        o[ch + s1] = v1;
        o[ch + s2] = v2;
        o[ch + s3] = v3;
    }
}
static void nn_wino_out_0(const uint32_t *a, const int32_t *rq, int8_t *o, int32_t s1, int32_t s2, int32_t s3, int nb) {
    if (nb == 2) {
        nn_wino_out_t(a, rq, o, s1, s2, s3, 2, 0);
    } else {
        nn_wino_out_t(a, rq, o, s1, s2, s3, 1, 0);
    }
}
static void nn_wino_out_1(const uint32_t *a, const int32_t *rq, int8_t *o, int32_t s1, int32_t s2, int32_t s3, int nb) {
    if (nb == 2) {
        nn_wino_out_t(a, rq, o, s1, s2, s3, 2, 1);
    } else {
        nn_wino_out_t(a, rq, o, s1, s2, s3, 1, 1);
    }
}

int nn_m4_wino_conv(const nn_op_t *op, uint8_t *arena) {
    const int32_t *p = op->p;
    if (!(op->flags & DYSAN_NN_OPF_ACC_BOUNDED) || op->in[0].dims[1] != 1 || op->out.dims[1] != 1 ||
        p[DYSAN_NN_CONV_KERNEL_H] != 1 || p[DYSAN_NN_CONV_KERNEL_W] != 5 || p[DYSAN_NN_CONV_STRIDE_W] != 1 ||
        p[DYSAN_NN_CONV_PAD_TOP] != 0 || p[DYSAN_NN_CONV_PAD_BOTTOM] != 0) {
        return 0;
    }
    const int32_t d = p[DYSAN_NN_CONV_DILATION_W], ic = p[DYSAN_NN_CONV_IN_CHANNELS];
    const int32_t oc = p[DYSAN_NN_CONV_OUT_CHANNELS];
    nn_wino_col_fn col_d, col_1; /* columns d ic apart (inside the input); ic apart (the edge copy) */
    switch (ic) {
    case 4: col_1 = nn_wino_col_4_1, col_d = d == 1 ? nn_wino_col_4_1 : nn_wino_col_4_2; break;
    case 8: col_1 = nn_wino_col_8_1, col_d = d == 1 ? nn_wino_col_8_1 : nn_wino_col_8_2; break;
    case 12: col_1 = nn_wino_col_12_1, col_d = d == 1 ? nn_wino_col_12_1 : nn_wino_col_12_2; break;
    case 16: col_1 = nn_wino_col_16_1, col_d = d == 1 ? nn_wino_col_16_1 : nn_wino_col_16_2; break;
    default: return 0;
    }
    if (d != 1 && d != 2) {
        return 0;
    }
    for (int32_t c = 0; c < oc; c++) {
        const int32_t right = -dysan_le_get_i32(op->shift + 4 * c);
        if (right < 1 || right > 21) {
            return 0;
        }
    }
    /* Scratch (layout above): the fixed part, then per channel pair of a chunk. */
    const uint32_t col_words = 7u * (uint32_t)ic, rec_words = 44u + 7u * (uint32_t)ic;
    const uint32_t stage_bytes = (uint32_t)nn_align(4u * (uint32_t)oc, 4);
    const uint32_t fixed = 4u * (col_words + NN_WINO_HEAD) + 6u * (uint32_t)ic + stage_bytes;
    const uint32_t per_cp = 4u * (16u + 6u + rec_words);
    if (op->scratch_len < fixed + per_cp) {
        return 0;
    }
    const int32_t cp_all = (oc + 1) / 2;
    int32_t chunk = (int32_t)((op->scratch_len - fixed) / per_cp);
    chunk = chunk < cp_all ? chunk : cp_all;
    uint8_t *base = arena + op->scratch_off;
    uint32_t *col = (uint32_t *)(void *)base;
    uint32_t *acc = col + col_words;
    int32_t *rqc = (int32_t *)(acc + 16 * chunk);
    uint32_t *stream = (uint32_t *)(rqc + 6 * chunk);
    int8_t *stage = (int8_t *)(stream + (uint32_t)chunk * rec_words + NN_WINO_HEAD);
    int8_t *edge = stage + stage_bytes;

    const int32_t n = (int32_t)op->in[0].dims[0], w = (int32_t)op->in[0].dims[2], ow = (int32_t)op->out.dims[2];
    const int32_t pl = p[DYSAN_NN_CONV_PAD_LEFT], w_row = p[DYSAN_NN_CONV_WEIGHTS_ROW], in_zp = op->in[0].zp;
    const int32_t out_zp = p[DYSAN_NN_CONV_OUTPUT_ZP], lo = p[DYSAN_NN_CONV_ACT_MIN], hi = p[DYSAN_NN_CONV_ACT_MAX];
    const int clamp = lo != -128 || hi != 127, fix = out_zp > lo;
    void (*const out_fn)(const uint32_t *, const int32_t *, int8_t *, int32_t, int32_t, int32_t, int) =
        fix ? nn_wino_out_1 : nn_wino_out_0;
    const int8_t *wts = (const int8_t *)op->weights;
    const uint32_t copied = nn_m4_k22_entry(-1), raw = (uint32_t)(uintptr_t)&nn_wino_raw;
    const uint32_t e_pqs = nn_m4_k22_entry(ic), e_r = nn_m4_k22_entry(ic / 2);
    const int32_t seg[4] = {0, ic, 2 * ic, 5 * ic / 2}; /* column word of P, Q, R, S */
    const int32_t len[4] = {ic, ic, ic / 2, ic};
    /* A tile pair: outputs o, o + 1, o + 2, o + 3 as tile A (o, o + d) and tile B (o + 2 / d, + d). */
    const int32_t tb = d == 1 ? 2 : 1;
    const int32_t s1 = d * oc, s2 = tb * oc, s3 = 3 * oc;

    for (int32_t cp0 = 0; cp0 < cp_all; cp0 += chunk) {
        const int32_t ncp = cp_all - cp0 < chunk ? cp_all - cp0 : chunk;
        /* The stream of this chunk: per channel pair and P, Q, R, S a header, the weights, the tail. */
        for (int32_t i = 0; i < ncp; i++) {
            uint32_t *rec = stream + (uint32_t)i * rec_words, *h = rec;
            const int32_t ca = 2 * (cp0 + i);
            const int has_b = ca + 1 < oc;
            const uint32_t ba = 2u * dysan_le_get_u32(op->bias + 4 * ca);
            const uint32_t bb = has_b ? 2u * dysan_le_get_u32(op->bias + 4 * (ca + 1)) : 0;
            for (int t = 0; t < 4; t++) {
                h[0] = h[2] = t == 1 ? ba : 0; /* 2 bias' rides in Q, which both outputs add */
                h[1] = h[3] = t == 1 ? bb : 0;
                h[4] = h[5] = 0;
                h[6] = (uint32_t)(uintptr_t)(col + 2 * seg[t]);
                h[7] = t == 2 ? e_r : e_pqs;
                uint32_t *tail = h + NN_WINO_HEAD + 2 * len[t];
                tail[0] = 0;
                tail[1] = (uint32_t)(uintptr_t)(acc + 16 * i + 4 * t);
                tail[2] = raw;
                h = tail + NN_WINO_TAIL;
            }
            nn_wino_weights(rec, wts + (size_t)ca * w_row, ic, 0);
            if (has_b) {
                nn_wino_weights(rec, wts + (size_t)(ca + 1) * w_row, ic, 1);
            } else { /* the zero channel: slot b of every body word */
                uint32_t *hh = rec;
                for (int t = 0; t < 4; t++) {
                    for (int32_t j = 0; j < len[t]; j++) {
                        hh[NN_WINO_HEAD + 2 * j + 1] = 0;
                    }
                    hh += NN_WINO_HEAD + 2 * len[t] + NN_WINO_TAIL;
                }
            }
            for (int k = 0; k < 2; k++) {
                const int32_t c = ca + k < oc ? ca + k : ca;
                const int32_t right = -dysan_le_get_i32(op->shift + 4 * c);
                int32_t *r = rqc + 6 * i + 3 * k;
                r[0] = dysan_le_get_i32(op->mult + 4 * c);
                r[1] = (int32_t)((UINT32_C(1) << (right - 1)) + ((uint32_t)out_zp << right));
                r[2] = right;
            }
        }
        uint32_t *end = stream + (uint32_t)ncp * rec_words;
        memset(end, 0, 4 * NN_WINO_HEAD);
        end[NN_WINO_HEAD - 1] = nn_m4_k22_entry(0);

        for (int32_t b = 0; b < n; b++) {
            const int8_t *in = (const int8_t *)(arena + op->in[0].off) + (size_t)b * w * ic;
            int8_t *out = (int8_t *)(arena + op->out.off) + (size_t)b * ow * oc;
            for (int32_t o = 0; o < ow; o += 4) {
                for (int t = 0; t < 2; t++) {
                    const int32_t c0 = o + t * tb - pl; /* input column of the tile's first tap */
                    if (c0 >= 0 && c0 + 5 * d < w) {
                        col_d(col + t, in + (size_t)c0 * ic);
                        continue;
                    }
                    for (int32_t j = 0; j < 6; j++) { /* an edge: the 6 columns, zero points outside */
                        const int32_t c = c0 + j * d;
                        if (c >= 0 && c < w) {
                            memcpy(edge + j * ic, in + (size_t)c * ic, (size_t)ic);
                        } else {
                            memset(edge + j * ic, (int)(uint8_t)(int8_t)in_zp, (size_t)ic);
                        }
                    }
                    col_1(col + t, edge);
                }
                nn_m4_k22_stream(stream, copied);
                const int full = o + 4 <= ow; /* else through the staging rows */
                int8_t *ob = full ? out + (size_t)o * oc : stage;
                for (int32_t i = 0; i < ncp; i++) {
                    const int32_t ca = 2 * (cp0 + i);
                    out_fn(acc + 16 * i, rqc + 6 * i, ob + ca, s1, s2, s3, ca + 1 < oc ? 2 : 1);
                }
                if (!full) {
                    for (int32_t k = 0; o + k < ow; k++) {
                        memcpy(out + (size_t)(o + k) * oc + 2 * cp0, stage + k * oc + 2 * cp0,
                               (size_t)((2 * (cp0 + ncp) < oc ? 2 * (cp0 + ncp) : oc) - 2 * cp0));
                    }
                }
            }
        }
    }
    if (clamp) { /* the activation range, as on the fast path: clamping the int8-saturated value is exact */
        int8_t *o = (int8_t *)(arena + op->out.off);
        const int32_t total = n * ow * oc;
        const uint32_t lo4 = (uint32_t)(uint8_t)lo * 0x01010101u, hi4 = (uint32_t)(uint8_t)hi * 0x01010101u;
        int32_t i = 0;
        for (; i + 4 <= total; i += 4) { /* 4 bytes per word: SSUB8 sets GE per byte, SEL picks */
            uint32_t v = nn_wld(o + i);
            (void)__ssub8(v, lo4);
            v = __sel(v, lo4);
            (void)__ssub8(hi4, v);
            v = __sel(v, hi4);
            memcpy(o + i, &v, 4);
        }
        for (; i < total; i++) {
            o[i] = nn_clamp8(o[i], lo, hi);
        }
    }
    return 1;
}

#endif /* NN_DSP */
