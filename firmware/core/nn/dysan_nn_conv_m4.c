/*
 * dysan_nn_conv_m4.c -- the Cortex-M4 (DSP extension) paths of CONV_2D and DEPTHWISE_CONV_2D; the portable
 * kernels they stand in for, the scratch layout and the op registrations are in dysan_nn_conv.c. Built only
 * with __ARM_FEATURE_DSP (and not DYSAN_NN_NO_DSP); same outputs as the portable kernels, byte for byte.
 *
 * The copy of the input is widened to int16; general blocks widen the weights of two output channels,
 * interleaved and zero-padded to a multiple of 8 taps, once per channel pair; a block of 2 channels x 2
 * pixels then costs, per 4 taps, 4 LDRD and 8 SMLAD (16 MACs), 26 instructions per 32 MACs with the loop.
 *
 * Fast path (CONV_2D; what the device family runs): pixel pairs outside, channel pairs inside, over a
 * per-pixel-pair interleaved window column, 16 MACs per 10 instructions, requantization in registers -- see
 * "Cortex-M4 fast path" below.
 */
#include "dysan_nn_conv.h"

#if NN_DSP

#include <string.h>

/* nn_conv_requant_run's usual case: ACC_BOUNDED, no left shift, right >= 1 -- 7 instructions + the clamp. */
int nn_m4_requant_run(const int32_t *acc, int8_t *out, int32_t out_step, int32_t n, const nn_pass_t *ps,
                      int32_t c) {
    const int32_t mult = dysan_le_get_i32(ps->mult + 4 * c), shift = dysan_le_get_i32(ps->shift + 4 * c);
    if (!ps->acc_bounded || shift > -1) {
        return 0;
    }
    const int32_t right = -shift, zp = ps->out_zp, lo = ps->act_min, hi = ps->act_max;
    const uint32_t round = UINT32_C(1) << (right - 1);
    const int32_t *end = acc + n;
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
    return 1;
}


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

/* int8 -> int16: `cols` columns of 8 x `groups` values, `skip` bytes between source columns; dst word
 * aligned and contiguous, src any alignment. 16 values per turn while it can, then 8. nn_widen8 keeps the
 * order; nn_widen8p writes each group of 4 values in SXTB16 order, {x0, x2}, {x1, x3} (no packing: weights
 * prepared in the same order give the same dot products). */
/* 8 values from r4, r5 into 4 words at r0. */
#define NN_WIDEN8_ASM                                                                                         \
    "    sxtb16 r6, r4\n"                                                                                    \
    "    sxtb16 r7, r4, ror #8\n"                                                                            \
    "    pkhbt  r8, r6, r7, lsl #16\n"                                                                       \
    "    pkhtb  r9, r7, r6, asr #16\n"                                                                       \
    "    sxtb16 r6, r5\n"                                                                                    \
    "    sxtb16 r7, r5, ror #8\n"                                                                            \
    "    pkhbt  r10, r6, r7, lsl #16\n"                                                                      \
    "    pkhtb  r12, r7, r6, asr #16\n"                                                                      \
    "    stm    r0!, {r8, r9, r10, r12}\n"
#define NN_WIDEN8P_ASM                                                                                        \
    "    sxtb16 r6, r4\n"                                                                                    \
    "    sxtb16 r7, r4, ror #8\n"                                                                            \
    "    sxtb16 r8, r5\n"                                                                                    \
    "    sxtb16 r9, r5, ror #8\n"                                                                            \
    "    stm    r0!, {r6-r9}\n"
#define NN_WIDEN_FN_ASM(name, body)                                                                           \
    NN_ASM_SECTION(name) NN_ASM_FUNC(name, "1") name ":\n"                                                    \
    "    push   {r4-r11, lr}\n"                                                                              \
    "    ldr    r11, [sp, #36]\n"                                                                            \
    "1:  subs   lr, r2, #2\n"                                                                                \
    "    blt    3f\n"                                                                                        \
    "2:  ldr    r4, [r1], #4\n"                                                                              \
    "    ldr    r5, [r1], #4\n" body "    ldr    r4, [r1], #4\n"                                             \
    "    ldr    r5, [r1], #4\n" body "    subs   lr, lr, #2\n"                                              \
    "    bge    2b\n"                                                                                        \
    "3:  tst    lr, #1\n"                                                                                    \
    "    beq    4f\n"                                                                                        \
    "    ldr    r4, [r1], #4\n"                                                                              \
    "    ldr    r5, [r1], #4\n" body "4:  add    r1, r1, r11\n"                                            \
    "    subs   r3, r3, #1\n"                                                                                \
    "    bgt    1b\n"                                                                                        \
    "    pop    {r4-r11, pc}\n"                                                                              \
    NN_ASM_SIZE(name) NN_ASM_SECTION_END
__asm__(NN_WIDEN_FN_ASM("nn_widen8", NN_WIDEN8_ASM));
__asm__(NN_WIDEN_FN_ASM("nn_widen8p", NN_WIDEN8P_ASM));

/* n values (perm: a multiple of 4, in SXTB16 order per group of 4). */
void nn_m4_widen_row(int16_t *dst, const int8_t *src, int32_t n, int perm) {
    int32_t i = 0;
    if (n >= 8 && ((uintptr_t)dst & 3u) == 0) {
        (perm ? nn_widen8p : nn_widen8)(dst, src, n / 8, 1, 0);
        i = n & ~7;
    }
    for (; i + 4 <= n; i += 4) {
        uint32_t lo, hi;
        const uint32_t v = nn_ld32(src + i);
        if (perm) {
            lo = (uint32_t)__sxtb16(v);
            hi = nn_sxtb16_ror8(v);
        } else {
            nn_widen4(v, &lo, &hi);
        }
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
    const int32_t bias_a = dysan_le_get_i32(ps->bias + 4 * c), bias_b = nc == 2 ? dysan_le_get_i32(ps->bias + 4 * (c + 1)) : 0;
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

void nn_m4_conv_pass(const nn_pass_t *ps, const int16_t *x, int16_t *wbuf, int32_t *accs) {
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
        nn_conv_requant_run(accs, ps->out + c, ps->out_pix, ps->npix, ps, c);
        if (nc == 2) {
            nn_conv_requant_run(accs_b, ps->out + c + 1, ps->out_pix, ps->npix, ps, c + 1);
        }
    }
}

/* ---- Cortex-M4 fast path (CONV_2D) ------------------------------------------------------------------
 *
 * For ops whose accumulators are bounded (ACC_BOUNDED), whose right shifts are all in [1, 21] and whose
 * input has an even channel count (every window starts at a word), each pixel pair's window is copied once
 * into a column of interleaved int16 pairs {xa[j], xb[j]} (two LDM and one STM per 4 pairs) and every
 * output channel runs over it, two at a time: per 2 pairs of taps, one LDM of the column (4 words), one LDM
 * of the prepared weights ({wa[j], wb[j], wa[j+1], wb[j+1]}) and 8 SMLAD -- 16 MACs in 10 instructions.
 * The dot product is fully unrolled and entered at a computed address (no loop counter: all 14 registers
 * hold data); each channel pair ends with its four outputs requantized in registers and stored. The pixel
 * pair loop, the column copy (unrolled too) and the channel pair loop are all in `nn_k22_run`.
 *
 * The prepared weights are one stream read straight through. Per channel pair: an 8-word header -- the 4
 * accumulator start values (doubled biases), the weights of the window's first pair when the window has an
 * odd number of pairs (else 0, 0), the column's address, and the Thumb address where its dot product
 * starts -- loaded by one LDM that also jumps there; the remaining weight pairs; the channel pair's
 * requantization words: per channel its multiplier, K and the address of its requantization block. After
 * the last channel pair, a header whose address is the kernel's "pixel pair
 * done" ends the channel loop.
 *
 * Requantization: the weights and biases are prepared doubled, so the accumulator holds 2 acc (|acc| < 2^30
 * by ACC_BOUNDED, so no wrap), and with K = 2^(right-1) + output_zp * 2^right
 *   SMMLAR(2 acc, mult, K) = K + floor((acc * mult + 2^30) / 2^31)      (SaturatingRoundingDoublingHighMul)
 *   (that + (acc < 0 ? -1 : 0)) >> right                                (RoundingDivideByPOT, + output_zp)
 *   SSAT #8                                                             (clamp to int8)
 * The shift and the clamp are one instruction, `ssat r, #8, r, asr #right`, whose shift is an immediate: the
 * kernel has one block per right shift 1..21 (and per channel of the pair, with or without the sign term),
 * each 2 x (SMMLAR, SSAT, STRB) and an LDM of the next constants and block address into pc.
 * RoundingDivideByPOT subtracts 1 for a negative high product h; acc < 0 gives h <= 0, acc >= 0 gives h >= 0,
 * and h == 0 rounds the same either way, so the accumulator's sign stands in for h's. |h| < 2^30 and
 * |K| < 2^29 keep the sum in range. When output_zp <= act_min (ReLU-style ranges) a negative accumulator
 * gives at most output_zp with or without the -1, and the clamp makes both act_min: the blocks without that
 * instruction are used. An activation range narrower than int8 is
 * applied afterwards (clamping the int8-saturated value to [act_min, act_max] equals clamping the exact one).
 */

/* The kernel's argument block, copied onto its stack as its frame; the asm addresses it by offset. */
typedef struct {
    int8_t *out_a;       /* 0: next output of pixel a (each channel pair advances it by 2) */
    int8_t *out_b;       /* 4: next output of pixel b */
    uint32_t *col;       /* 8: the pixel pair's window column */
    uint32_t entry2;     /* 12: odd window: where its 2-pair steps start */
    const uint32_t *w;   /* 16: the prepared weight stream */
    const int16_t *x;    /* 20: the padded input planes */
    const int32_t *offs; /* 24: window offsets (elements) of the next pixel pair */
    int32_t pairs_left;  /* 28: pixel pairs to run */
    int32_t oc;          /* 32: output bytes per pixel */
    uint32_t copy;       /* 36: Thumb address in the unrolled column copy (its end: the caller built it) */
} nn_k22_t;

/* Runs every channel pair over `pairs_left` pixel pairs. */
void nn_k22_run(nn_k22_t *k);
/* Thumb addresses of the kernel's labels, NN_K22_L_* (NN_K22_LABELS of them). */
void nn_k22_labels(uint32_t labels[NN_K22_LABELS]);
enum {
    NN_K22_L_DONE,     /* the stream's end: the pixel pair is done */
    NN_K22_L_SINGLE,   /* an odd window's first pair */
    NN_K22_L_END,      /* the end of the unrolled 2-pair steps */
    NN_K22_L_COPIED,   /* the end of the unrolled column copy */
    NN_K22_L_EPA,      /* requantization of channel a, right shift 1 (then + NN_K22_EPA_BYTES per shift) */
    NN_K22_L_EPA_FIX,  /* the same with the sign term */
    NN_K22_L_EPB,      /* channel b, then the next channel pair's header */
    NN_K22_L_EPB_FIX
};

#define NN_K22_MAX_RIGHT 21 /* right shifts 1..21: one requantization block each */
#define NN_K22_EPA_BYTES 28   /* 2 x (SMMLAR, SSAT, STRB) + LDM (every one a 32-bit encoding) */
#define NN_K22_EPA_FIX_BYTES 36
#define NN_K22_EPB_BYTES 32   /* + STRD */
#define NN_K22_EPB_FIX_BYTES 40
#define NN_K22_STEPS 64 /* unrolled 2-pair steps: windows up to 128 pairs (DYSAN_NN_CONV_FAST_MAX_PAIRS) */
#define NN_K22_STEP_BYTES 40
#define NN_K22_COPIES 32 /* unrolled 4-pair column copies */
#define NN_K22_COPY_BYTES 12
#define NN_K22_HEADER 8 /* words before a channel pair's weights: 4 accumulator starts, 1 pair, column, entry */
#define NN_K22_TAIL 6   /* words after them: mult, K, requantization block of channels a and b */
#if 2 * NN_K22_STEPS < DYSAN_NN_CONV_FAST_MAX_PAIRS || 4 * NN_K22_COPIES < DYSAN_NN_CONV_FAST_MAX_PAIRS
#error "the unrolled kernel is shorter than the longest fast-path window"
#endif

#define NN_STR_(x) #x
#define NN_STR(x) NN_STR_(x)

/* clang-format off */
/* 2 pairs of taps: r0 / r1 accumulate channels a / b of pixel a, r2 / r3 of pixel b. */
#define NN_K22_STEP_ASM                                                                                       \
    "    ldm.w  r12!, {r4-r7}\n"                                                                              \
    "    ldm.w  lr!, {r8-r11}\n"                                                                              \
    "    smlad  r0, r8, r4, r0\n"                                                                             \
    "    smlad  r1, r9, r4, r1\n"                                                                             \
    "    smlad  r2, r8, r5, r2\n"                                                                             \
    "    smlad  r3, r9, r5, r3\n"                                                                             \
    "    smlad  r0, r10, r6, r0\n"                                                                            \
    "    smlad  r1, r11, r6, r1\n"                                                                            \
    "    smlad  r2, r10, r7, r2\n"                                                                            \
    "    smlad  r3, r11, r7, r3\n"
/* The next channel pair: accumulator starts, an odd window's first weight pair, the column, and a jump to
 * its entry. */
#define NN_K22_HEAD_ASM "    ldm    lr!, {r0-r3, r8, r9, r12, pc}\n"
/* The steps' end: the output pointers, then channel a's multiplier, K and requantization block (its right
 * shift is the block's SSAT shift: one block per shift, entered at the address the stream holds). */
#define NN_K22_EPILOGUE_ASM                                                                                   \
    "    ldrd   r5, r6, [sp]\n"                                                                               \
    "    ldm.w  lr!, {r4, r7, pc}\n"
/* Assembler macros of the requantization blocks: \acc of pixel a to r5, of pixel b to r6, right shift \r;
 * \fix adds the sign term; channel a's block ends by loading channel b's constants and block, channel b's
 * by storing the output pointers and starting the next channel pair. Every instruction is a 32-bit
 * encoding, so that the blocks are NN_K22_EP*_BYTES apart. */
#define NN_K22_EP_MACROS_ASM                                                                                  \
    "    .macro k22out acc, out, r, fix\n"                                                                    \
    "    smmlar r11, \\acc, r4, r7\n"                                                                        \
    "    .if \\fix\n"                                                                                       \
    "    add.w  r11, r11, \\acc, asr #31\n"                                                                 \
    "    .endif\n"                                                                                           \
    "    ssat   r11, #8, r11, asr #\\r\n"                                                                   \
    "    strb.w r11, [\\out], #1\n"                                                                         \
    "    .endm\n"                                                                                            \
    "    .macro k22epa r, fix\n"                                                                             \
    "    k22out r0, r5, \\r, \\fix\n"                                                                       \
    "    k22out r2, r6, \\r, \\fix\n"                                                                       \
    "    ldm.w  lr!, {r4, r7, pc}\n"                                                                         \
    "    .endm\n"                                                                                            \
    "    .macro k22epb r, fix\n"                                                                             \
    "    k22out r1, r5, \\r, \\fix\n"                                                                       \
    "    k22out r3, r6, \\r, \\fix\n"                                                                       \
    "    strd   r5, r6, [sp]\n"                                                                              \
    NN_K22_HEAD_ASM                                                                                           \
    "    .endm\n"
/* The assembler checks that a table's blocks are `bytes` apart (the prepared stream holds computed
 * addresses). */
#define NN_K22_EP_CHECK_ASM(from, to, bytes)                                                                  \
    "    .if (" to " - " from ") - " NN_STR(NN_K22_MAX_RIGHT) " * " NN_STR(bytes) "\n"                         \
    "    .error \"nn_k22_run: a requantization block is not " NN_STR(bytes) " bytes\"\n"                      \
    "    .endif\n"
/* The blocks of one kind for right shifts 1..NN_K22_MAX_RIGHT. */
#define NN_K22_EP_TABLE_ASM(label, macro, fix)                                                                \
    label ":\n"                                                                                              \
    "    .set   k22r, 1\n"                                                                                   \
    "    .rept  " NN_STR(NN_K22_MAX_RIGHT) "\n"                                                              \
    "    " macro " k22r, " fix "\n"                                                                          \
    "    .set   k22r, k22r + 1\n"                                                                            \
    "    .endr\n"

__asm__(
    NN_ASM_SECTION("nn_k22_run")
    NN_ASM_FUNC("nn_k22_run", "2")
    NN_K22_EP_MACROS_ASM
    "nn_k22_run:\n"
    "    push   {r4-r11, lr}\n"
    "    ldm    r0, {r1-r10}\n"
    "    push   {r1-r10}\n"                /* frame: nn_k22_t */
    "    b      .Lk22_pixels\n"
    ".Lk22_done:\n"                        /* the stream's end: the pixel pair is done */
    "    ldrd   r0, r3, [sp, #28]\n"       /* pairs left, oc */
    "    subs   r0, r0, #1\n"
    "    beq    .Lk22_return\n"
    "    str    r0, [sp, #28]\n"
    "    ldr    r1, [sp, #4]\n"            /* out_b, past pixel b: pixel a of the next pair */
    "    add    r2, r1, r3\n"
    "    strd   r1, r2, [sp]\n"
    ".Lk22_pixels:\n"
    "    ldrd   r0, r3, [sp, #20]\n"       /* x, offs */
    "    ldm    r3!, {r1, r2}\n"           /* the two windows */
    "    str    r3, [sp, #24]\n"
    "    add    r1, r0, r1, lsl #1\n"
    "    add    r2, r0, r2, lsl #1\n"
    "    ldr    r12, [sp, #8]\n"
    "    ldr    pc, [sp, #36]\n"           /* into the column copy: 4 pairs per step */
    "    .rept  " NN_STR(NN_K22_COPIES) "\n"
    "    ldm.w  r1!, {r4, r6, r8, r10}\n"
    "    ldm.w  r2!, {r5, r7, r9, r11}\n"
    "    stm.w  r12!, {r4-r11}\n"
    "    .endr\n"
    ".Lk22_copied:\n"
    "    ldr    lr, [sp, #16]\n"
    NN_K22_HEAD_ASM
    ".Lk22_return:\n"
    "    add    sp, sp, #40\n"
    "    pop    {r4-r11, pc}\n"
    ".Lk22_single:\n"                      /* odd window: its first pair (weights in r8, r9 from the header) */
    "    ldm    r12!, {r4, r5}\n"
    "    smlad  r0, r8, r4, r0\n"
    "    smlad  r1, r9, r4, r1\n"
    "    smlad  r2, r8, r5, r2\n"
    "    smlad  r3, r9, r5, r3\n"
    "    ldr    pc, [sp, #12]\n"
    "    .rept  " NN_STR(NN_K22_STEPS) "\n"
    NN_K22_STEP_ASM
    "    .endr\n"
    ".Lk22_end:\n"
    NN_K22_EPILOGUE_ASM
    NN_K22_EP_TABLE_ASM(".Lk22_epa", "k22epa", "0")
    NN_K22_EP_TABLE_ASM(".Lk22_epa_fix", "k22epa", "1")
    NN_K22_EP_TABLE_ASM(".Lk22_epb", "k22epb", "0")
    NN_K22_EP_TABLE_ASM(".Lk22_epb_fix", "k22epb", "1")
    ".Lk22_ep_end:\n"
    NN_K22_EP_CHECK_ASM(".Lk22_epa", ".Lk22_epa_fix", NN_K22_EPA_BYTES)
    NN_K22_EP_CHECK_ASM(".Lk22_epa_fix", ".Lk22_epb", NN_K22_EPA_FIX_BYTES)
    NN_K22_EP_CHECK_ASM(".Lk22_epb", ".Lk22_epb_fix", NN_K22_EPB_BYTES)
    NN_K22_EP_CHECK_ASM(".Lk22_epb_fix", ".Lk22_ep_end", NN_K22_EPB_FIX_BYTES)
    "    .purgem k22out\n"
    "    .purgem k22epa\n"
    "    .purgem k22epb\n"
    NN_ASM_SIZE("nn_k22_run")
    NN_ASM_FUNC("nn_k22_labels", "1")
    "nn_k22_labels:\n"
    "    ldr    r1, =.Lk22_done + 1\n"
    "    ldr    r2, =.Lk22_single + 1\n"
    "    ldr    r3, =.Lk22_end + 1\n"
    "    stm    r0!, {r1, r2, r3}\n"
    "    ldr    r1, =.Lk22_copied + 1\n"
    "    ldr    r2, =.Lk22_epa + 1\n"
    "    ldr    r3, =.Lk22_epa_fix + 1\n"
    "    stm    r0!, {r1, r2, r3}\n"
    "    ldr    r1, =.Lk22_epb + 1\n"
    "    ldr    r2, =.Lk22_epb_fix + 1\n"
    "    stm    r0!, {r1, r2}\n"
    "    bx     lr\n"
    "    .ltorg\n"
    NN_ASM_SIZE("nn_k22_labels") NN_ASM_SECTION_END);

/* Doubled int16 pairs of 4 int8 taps of channel pairs: for each of n_cp pairs (channel a at `a`, channel b
 * b_off bytes after it), n4 x {a01, b01, a23, b23}; then dst advances dst_skip bytes and a src_skip bytes
 * (to the next pair's header, and its channel a). Any source alignment. nn_k22_weights4p: the same in
 * SXTB16 order for in_channels % 4 == 0 (with nn_widen8p), n4 x {a02, b02, a13, b13}. */
void nn_k22_weights4(uint32_t *dst, const int8_t *a, int32_t b_off, int32_t n4, int32_t n_cp, int32_t dst_skip,
                     int32_t src_skip);
void nn_k22_weights4p(uint32_t *dst, const int8_t *a, int32_t b_off, int32_t n4, int32_t n_cp, int32_t dst_skip,
                      int32_t src_skip);
#define NN_K22_WEIGHTS_ASM(name, group)                                                                       \
    NN_ASM_SECTION(name) NN_ASM_FUNC(name, "1") name ":\n"                                                    \
    "    push   {r4-r11, lr}\n"                                                                              \
    "    ldr    lr, [sp, #36]\n"                                                                             \
    "3:  mov    r12, r3\n"                                                                                   \
    "1:  ldr    r5, [r1, r2]\n"                                                                              \
    "    ldr    r4, [r1], #4\n" group "    subs   r12, r12, #1\n"                                          \
    "    bgt    1b\n"                                                                                        \
    "    ldr    r4, [sp, #40]\n"                                                                             \
    "    add    r0, r0, r4\n"                                                                                \
    "    ldr    r4, [sp, #44]\n"                                                                             \
    "    add    r1, r1, r4\n"                                                                                \
    "    subs   lr, lr, #1\n"                                                                                \
    "    bgt    3b\n"                                                                                        \
    "    pop    {r4-r11, pc}\n"                                                                              \
    NN_ASM_SIZE(name) NN_ASM_SECTION_END
/* clang-format off */
__asm__(NN_K22_WEIGHTS_ASM("nn_k22_weights4",
    "    sxtb16 r6, r4\n"
    "    sxtb16 r7, r4, ror #8\n"
    "    sadd16 r6, r6, r6\n"
    "    sadd16 r7, r7, r7\n"
    "    pkhbt  r8, r6, r7, lsl #16\n"
    "    pkhtb  r10, r7, r6, asr #16\n"
    "    sxtb16 r6, r5\n"
    "    sxtb16 r7, r5, ror #8\n"
    "    sadd16 r6, r6, r6\n"
    "    sadd16 r7, r7, r7\n"
    "    pkhbt  r9, r6, r7, lsl #16\n"
    "    pkhtb  r11, r7, r6, asr #16\n"
    "    stm    r0!, {r8-r11}\n"));
__asm__(NN_K22_WEIGHTS_ASM("nn_k22_weights4p",
    "    sxtb16 r6, r4\n"
    "    sxtb16 r7, r5\n"
    "    sxtb16 r8, r4, ror #8\n"
    "    sxtb16 r9, r5, ror #8\n"
    "    sadd16 r6, r6, r6\n"
    "    sadd16 r7, r7, r7\n"
    "    sadd16 r8, r8, r8\n"
    "    sadd16 r9, r9, r9\n"
    "    stm    r0!, {r6-r9}\n"));
/* clang-format on */

static inline uint32_t nn_pair2x(int32_t lo, int32_t hi) {
    return ((uint32_t)(2 * lo) & 0xFFFFu) | ((uint32_t)(2 * hi) << 16);
}

/* Decides whether the op takes the fast path; if so, writes the weight stream into scratch (once per
 * invocation: it does not depend on the batch image) and returns 1. */
int nn_m4_conv_fast_prepare(const nn_pass_t *ps, const nn_layout_t *g, uint8_t *base,
                            uint32_t labels[NN_K22_LABELS]) {
    if (!g->fast || !ps->acc_bounded || (g->ic & 1)) {
        return 0;
    }
    const int32_t oc = ps->n_ch, window = ps->n_seg * ps->pairs, odd = window & 1;
    const int32_t body = 2 * (window - odd), block = NN_K22_HEADER + body + NN_K22_TAIL;
    uint32_t *const stream = (uint32_t *)(void *)(base + g->fw_off);
    nn_k22_labels(labels);
    const int fix = ps->out_zp > ps->act_min; /* else the sign term is irrelevant (see above) */
    const uint32_t epa = fix ? labels[NN_K22_L_EPA_FIX] : labels[NN_K22_L_EPA];
    const uint32_t epb = fix ? labels[NN_K22_L_EPB_FIX] : labels[NN_K22_L_EPB];
    const uint32_t epa_bytes = fix ? NN_K22_EPA_FIX_BYTES : NN_K22_EPA_BYTES;
    const uint32_t epb_bytes = fix ? NN_K22_EPB_FIX_BYTES : NN_K22_EPB_BYTES;
    const uint32_t steps = labels[NN_K22_L_END] - NN_K22_STEP_BYTES * (uint32_t)(window / 2);
    labels[NN_K22_L_END] = steps; /* what nn_m4_conv_fast_pass needs: the 2-pair steps' entry */
    const uint32_t col = (uint32_t)(uintptr_t)(base + g->fcol_off), entry = odd ? labels[NN_K22_L_SINGLE] : steps;
    /* Headers and requantization words, checking the shifts (what is written before a refusal is scratch). An
     * odd channel count ends with a zero channel, whose outputs go to a staging row. */
    uint32_t *d = stream;
    for (int32_t c = 0; c < oc; c += 2, d += block) {
        uint32_t *q = d + NN_K22_HEADER + body;
        for (int32_t i = 0; i < 2; i++, q += 3) {
            const int real = c + i < oc;
            const int32_t right = real ? -dysan_le_get_i32(ps->shift + 4 * (c + i)) : 1;
            if (right < 1 || right > NN_K22_MAX_RIGHT) {
                return 0;
            }
            q[0] = real ? dysan_le_get_u32(ps->mult + 4 * (c + i)) : 0;
            q[1] = real ? (UINT32_C(1) << (right - 1)) + ((uint32_t)ps->out_zp << right) : 0;
            q[2] = (i ? epb : epa) + (uint32_t)(right - 1) * (i ? epb_bytes : epa_bytes); /* its block */
            d[i] = d[2 + i] = real ? 2u * dysan_le_get_u32(ps->bias + 4 * (c + i)) : 0;
        }
        d[4] = d[5] = 0;
        d[6] = col;
        d[7] = entry;
    }
    for (int32_t i = 0; i < NN_K22_HEADER - 1; i++) {
        d[i] = 0;
    }
    d[NN_K22_HEADER - 1] = labels[NN_K22_L_DONE]; /* the stream's end */
    /* Weights, window row (segment) by row: an odd window's first pair goes with the header, 4-tap groups by
     * nn_k22_weights4[p] over all channel pairs at once, a last pair of taps in C. */
    void (*const groups)(uint32_t *, const int8_t *, int32_t, int32_t, int32_t, int32_t, int32_t) =
        g->ic % 4 == 0 ? nn_k22_weights4p : nn_k22_weights4;
    const int32_t full = oc / 2, w_row = ps->w_row, seg_len = ps->seg_len;
    int32_t at = NN_K22_HEADER; /* word of the current segment's first pair (after the header's) */
    for (int32_t s = 0; s < ps->n_seg; s++) {
        const int32_t j0 = s == 0 && odd ? 2 : 0, n4 = seg_len > j0 ? (seg_len - j0) / 4 : 0;
        const int8_t *w = ps->w + s * seg_len;
        if (n4 > 0) {
            if (full > 0) {
                groups(stream + at, w + j0, w_row, n4, full, 4 * (block - 4 * n4), 2 * w_row - 4 * n4);
            }
            if (oc & 1) { /* the zero channel: channel a twice, then b's words cleared */
                uint32_t *z = stream + full * block + at;
                groups(z, w + full * 2 * w_row + j0, 0, n4, 1, 0, 0);
                for (int32_t i = 1; i < 4 * n4; i += 2) {
                    z[i] = 0;
                }
            }
        }
        for (int32_t c = 0; c < oc; c += 2) {
            const int8_t *sa = w + c * w_row, *sb = c + 1 < oc ? sa + w_row : NULL;
            uint32_t *head = stream + (c / 2) * block, *t = head + at + 4 * n4;
            if (j0) {
                const int more = seg_len > 1;
                head[4] = nn_pair2x(sa[0], more ? sa[1] : 0);
                head[5] = sb ? nn_pair2x(sb[0], more ? sb[1] : 0) : 0;
            }
            for (int32_t j = j0 + 4 * n4; j < seg_len; j += 2, t += 2) {
                const int more = j + 1 < seg_len;
                t[0] = nn_pair2x(sa[j], more ? sa[j + 1] : 0);
                t[1] = sb ? nn_pair2x(sb[j], more ? sb[j + 1] : 0) : 0;
            }
        }
        at += 2 * ((seg_len - j0 + 1) / 2); /* the segment's pairs after the header's */
    }
    return 1;
}

/* One image through the fast path (nn_m4_conv_fast_prepare returned 1 and filled `labels`). */
void nn_m4_conv_fast_pass(const nn_pass_t *ps, const nn_layout_t *g, const int16_t *x, uint8_t *base,
                          const uint32_t labels[NN_K22_LABELS]) {
    const int32_t oc = ps->n_ch, npix = ps->npix;
    nn_k22_t k;
    k.col = (uint32_t *)(void *)(base + g->fcol_off);
    k.entry2 = labels[NN_K22_L_END];
    k.w = (const uint32_t *)(const void *)(base + g->fw_off);
    k.x = x;
    k.oc = oc;
    k.copy = ps->n_seg == 1 ? labels[NN_K22_L_COPIED] - NN_K22_COPY_BYTES * (uint32_t)((ps->pairs + 3) / 4)
                            : labels[NN_K22_L_COPIED];
    int8_t *stage_a = (int8_t *)(base + g->fstage_off), *stage_b = stage_a + nn_align((uint32_t)oc + 1u, 4);
    /* Even channel counts: every full pixel pair in one call. Else one call per pair, through staging rows
     * (the zero channel's outputs would land on the next pixel's), like a last unpaired pixel's. */
    int32_t pix = 0;
    if (!(oc & 1) && ps->n_seg == 1 && npix >= 2) {
        k.out_a = ps->out;
        k.out_b = ps->out + oc;
        k.offs = ps->offs;
        k.pairs_left = npix / 2;
        nn_k22_run(&k);
        pix = npix & ~1;
    }
    for (; pix < npix; pix += 2) {
        const int has_b = pix + 1 < npix; /* else offs[npix] repeats the last window; results dropped */
        const int staged = oc & 1;
        int8_t *oa = ps->out + (size_t)pix * oc, *ob = oa + oc;
        k.out_a = staged ? stage_a : oa;
        k.out_b = staged || !has_b ? stage_b : ob;
        k.offs = ps->offs + pix;
        k.pairs_left = 1;
        if (ps->n_seg > 1) { /* rows of a 2-D window: the column is built here */
            const int16_t *xa = x + ps->offs[pix], *xb = x + ps->offs[pix + 1];
            uint32_t *col = k.col;
            for (int32_t s = 0; s < ps->n_seg; s++) {
                const int16_t *sa = xa + s * ps->seg_stride, *sb = xb + s * ps->seg_stride;
                for (int32_t j = 0; j < ps->pairs; j++, col += 2) {
                    col[0] = nn_ld32(sa + 2 * j);
                    col[1] = nn_ld32(sb + 2 * j);
                }
            }
        }
        nn_k22_run(&k);
        if (staged) {
            memcpy(oa, stage_a, (size_t)oc);
            if (has_b) {
                memcpy(ob, stage_b, (size_t)oc);
            }
        }
    }
    if (ps->act_min != -128 || ps->act_max != 127) {
        int8_t *o = ps->out;
        for (int32_t i = 0; i < npix * oc; i++) {
            o[i] = nn_clamp8(o[i], ps->act_min, ps->act_max);
        }
    }
}

/* ---- DEPTHWISE_CONV_2D ----------------------------------------------------------------------------------- */

/* The depth_multiplier output channels of one input channel plane, pixel by pixel: SMLAD over int16 pairs of
 * taps (widened weights, any-alignment word loads of the plane). */
void nn_m4_dw_pass(const nn_pass_t *ps, const int16_t *x, int16_t *wbuf, int32_t *accs) {
    for (int32_t m = 0; m < ps->n_ch; m++) {
        const int32_t bias = dysan_le_get_i32(ps->bias + 4 * m);
        const int8_t *w = ps->w + m * ps->w_row;
        nn_widen_weights(wbuf, w, NULL, ps->n_seg, ps->seg_len, ps->pairs_pad);
        for (int32_t pix = 0; pix < ps->npix; pix++) {
            const int16_t *win = x + ps->offs[pix];
            int32_t acc = bias;
            for (int32_t s = 0; s < ps->n_seg; s++) {
                const int16_t *xs = win + s * ps->seg_stride, *ws = wbuf + 2 * s * ps->pairs_pad;
                for (int32_t j = 0; j < ps->pairs; j++) {
                    acc = __smlad(nn_ld32(ws + 2 * j), nn_ld32(xs + 2 * j), acc);
                }
            }
            accs[pix] = acc;
        }
        nn_conv_requant_run(accs, ps->out + m, ps->out_pix, ps->npix, ps, m);
    }
}

#endif /* NN_DSP */
