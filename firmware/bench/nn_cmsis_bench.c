/*
 * nn_cmsis_bench.c -- our int8 kernels against CMSIS-NN's, op by op, on one Cortex-M4F under QEMU.
 *
 *   nn_cmsis_bench IMAGE INPUTS      IMAGE: a dysan_nn model image, INPUTS: N x input_bytes int8
 *
 * For every input and every op of the model, the op's input tensors (as our earlier ops left them in the
 * arena) are copied aside, our kernel runs (dysan_nn_step), and the CMSIS-NN kernel TFLM would call for the
 * same op (arm_convolve_wrapper_s8, arm_fully_connected_wrapper_s8, arm_avgpool_s8, arm_max_pool_s8,
 * arm_elementwise_add_s8) runs on the copy with parameters rebuilt from the image the way TFLM's cmsis_nn
 * kernels build them from the .tflite (raw bias = our folded bias + input_zp x sum(weights); weights
 * unpadded; FC kernel sums computed once, as TFLM's Prepare does). The two outputs must be equal byte for
 * byte. Clocks: SysTick under -icount shift=0 (one instruction per virtual ns), around the kernel calls only
 * (our instructions from dysan_nn_invoke_profiled, which times eval without the op decode, like the
 * firmware's counters; CMSIS-NN's around its call, with the buffers and parameters prepared before).
 *
 * Prints "calibration instructions I ticks T", then per op
 *   "op <i> kind <k> macs <m> ours <ticks> cmsis <ticks> match <1|0> fn <name>"   (ticks summed over inputs;
 * cmsis -1, match -1, fn none: no CMSIS-NN kernel -- TFLM runs its reference kernel for MEAN, LEAKY_RELU,
 * QUANTIZE), "out <n> crc <c>" per input (FNV-1a of dysan_nn_invoke's output, as tflm_bench prints TFLM's),
 * "invoke ticks <t> arena <bytes> image <bytes>" (whole dysan_nn_invoke calls, decode and copies
 * included, summed over inputs), then "ok <N>" (or "error ..." and exit 2). Built by firmware/bench.mk (vendor sources
 * unpacked under firmware/build/vendor, never in the repository).
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "arm_nnfunctions.h"
#include "dysan_le.h"
#include "dysan_nn.h"
#include "dysan_nn_format.h"
#include "nn_file_common.h"
#include "qemu/nn_qemu.h"

#define MAX_IMAGE (256u * 1024u)
#define MAX_ARENA (128u * 1024u)
#define MAX_OPS 64u
#define MAX_CH 1024u
#define MAX_BUF (64u * 1024u)

static uint8_t g_image[MAX_IMAGE] __attribute__((aligned(8)));
static uint8_t g_arena[MAX_ARENA] __attribute__((aligned(8)));
static int8_t g_in[MAX_ARENA], g_out[MAX_ARENA];
static int8_t g_x0[MAX_BUF] __attribute__((aligned(8))), g_x1[MAX_BUF] __attribute__((aligned(8)));
static int8_t g_ref[MAX_BUF] __attribute__((aligned(8)));
static int8_t g_w[MAX_BUF] __attribute__((aligned(8)));
static int16_t g_scratch[MAX_BUF] __attribute__((aligned(8)));
static int32_t g_bias[MAX_CH], g_mult[MAX_CH], g_shift[MAX_CH], g_sums[MAX_CH];
static uint64_t g_ticks[MAX_OPS], g_ours[MAX_OPS], g_cmsis[MAX_OPS];
static int g_match[MAX_OPS], g_fn[MAX_OPS];
static uint64_t g_invoke;

static const char *const FN_NAMES[] = {"none", "arm_convolve_wrapper_s8", "arm_fully_connected_wrapper_s8",
                                       "arm_avgpool_s8", "arm_max_pool_s8", "arm_elementwise_add_s8"};

typedef struct {
    uint32_t off, nbytes, rank, dims[4];
    int32_t zp;
} tensor_t;

static tensor_t tensor(uint32_t id) {
    const uint8_t *r = g_image + dysan_le_get_u32(g_image + DYSAN_NN_HDR_TENSORS_OFF) + id * DYSAN_NN_TENSOR_SIZE;
    tensor_t t;
    t.rank = r[DYSAN_NN_TENSOR_RANK];
    for (int i = 0; i < 4; i++) {
        t.dims[i] = dysan_le_get_u16(r + DYSAN_NN_TENSOR_DIM0 + 2 * i);
    }
    t.off = dysan_le_get_u32(r + DYSAN_NN_TENSOR_ARENA_OFF);
    t.nbytes = dysan_le_get_u32(r + DYSAN_NN_TENSOR_NBYTES);
    t.zp = dysan_le_get_i32(r + DYSAN_NN_TENSOR_ZERO_POINT);
    return t;
}

typedef struct {
    uint32_t kind;
    tensor_t in0, in1, out;
    int32_t p[DYSAN_NN_MAX_PARAMS];
} op_t;

static op_t op_at(uint32_t i) {
    const uint8_t *r = g_image + dysan_le_get_u32(g_image + DYSAN_NN_HDR_OPS_OFF) + i * DYSAN_NN_OP_SIZE;
    op_t op;
    memset(&op, 0, sizeof op);
    op.kind = dysan_le_get_u16(r + DYSAN_NN_OP_KIND);
    op.in0 = tensor(dysan_le_get_u16(r + DYSAN_NN_OP_INPUT0));
    if (dysan_le_get_u16(r + DYSAN_NN_OP_N_INPUTS) > 1) {
        op.in1 = tensor(dysan_le_get_u16(r + DYSAN_NN_OP_INPUT1));
    }
    op.out = tensor(dysan_le_get_u16(r + DYSAN_NN_OP_OUTPUT));
    const uint32_t n = dysan_le_get_u32(r + DYSAN_NN_OP_PARAMS_LEN) / 4u;
    const uint32_t off = dysan_le_get_u32(r + DYSAN_NN_OP_PARAMS_OFF);
    for (uint32_t k = 0; k < n && k < DYSAN_NN_MAX_PARAMS; k++) {
        op.p[k] = dysan_le_get_i32(g_image + off + 4 * k);
    }
    return op;
}

/* Weights unpadded into g_w, raw biases, multipliers and shifts; returns the accumulation depth, 0 if too big. */
static int32_t conv_blobs(const op_t *op, int32_t depth) {
    const int32_t *p = op->p;
    const int32_t oc = p[DYSAN_NN_CONV_OUT_CHANNELS], row = p[DYSAN_NN_CONV_WEIGHTS_ROW];
    if (oc > (int32_t)MAX_CH || (int64_t)oc * depth > (int64_t)MAX_BUF) {
        return 0;
    }
    const int8_t *w = (const int8_t *)(g_image + p[DYSAN_NN_CONV_WEIGHTS_OFF]);
    for (int32_t c = 0; c < oc; c++) {
        int64_t sum = 0;
        for (int32_t k = 0; k < depth; k++) {
            g_w[c * depth + k] = w[c * row + k];
            sum += w[c * row + k];
        }
        const uint32_t folded = dysan_le_get_u32(g_image + p[DYSAN_NN_CONV_BIAS_OFF] + 4 * c);
        g_bias[c] = (int32_t)(folded + (uint32_t)((int64_t)p[DYSAN_NN_CONV_INPUT_ZP] * sum));
        g_mult[c] = dysan_le_get_i32(g_image + p[DYSAN_NN_CONV_MULT_OFF] + 4 * c);
        g_shift[c] = dysan_le_get_i32(g_image + p[DYSAN_NN_CONV_SHIFT_OFF] + 4 * c);
    }
    return depth;
}

static cmsis_nn_dims dims4(const tensor_t *t) {
    cmsis_nn_dims d = {(int32_t)t->dims[0], (int32_t)t->dims[1], (int32_t)t->dims[2], (int32_t)t->dims[3]};
    return d;
}

/* Runs the CMSIS-NN kernel of op i on g_x0 (/ g_x1) into g_ref; returns its FN_NAMES index (0: none, -1:
 * it failed) and adds its ticks to *ticks. */
static int run_cmsis(const op_t *op, uint64_t *ticks) {
    const int32_t *p = op->p;
    cmsis_nn_context ctx = {g_scratch, (int32_t)sizeof g_scratch};
    uint64_t t0, t1;
    arm_cmsis_nn_status st;
    switch (op->kind) {
    case DYSAN_NN_KIND_CONV_2D: {
        const int32_t kh = p[DYSAN_NN_CONV_KERNEL_H], kw = p[DYSAN_NN_CONV_KERNEL_W];
        const int32_t ic = p[DYSAN_NN_CONV_IN_CHANNELS], oc = p[DYSAN_NN_CONV_OUT_CHANNELS];
        if (!conv_blobs(op, kh * kw * ic)) {
            return -1;
        }
        cmsis_nn_conv_params cp;
        cp.input_offset = -p[DYSAN_NN_CONV_INPUT_ZP];
        cp.output_offset = p[DYSAN_NN_CONV_OUTPUT_ZP];
        cp.stride.h = p[DYSAN_NN_CONV_STRIDE_H];
        cp.stride.w = p[DYSAN_NN_CONV_STRIDE_W];
        cp.padding.h = p[DYSAN_NN_CONV_PAD_TOP];
        cp.padding.w = p[DYSAN_NN_CONV_PAD_LEFT];
        cp.dilation.h = p[DYSAN_NN_CONV_DILATION_H];
        cp.dilation.w = p[DYSAN_NN_CONV_DILATION_W];
        cp.activation.min = p[DYSAN_NN_CONV_ACT_MIN];
        cp.activation.max = p[DYSAN_NN_CONV_ACT_MAX];
        cmsis_nn_per_channel_quant_params qp = {g_mult, g_shift};
        cmsis_nn_dims in = dims4(&op->in0), out = dims4(&op->out);
        cmsis_nn_dims filt = {oc, kh, kw, ic}, bias = {1, 1, 1, oc};
        const int32_t need = arm_convolve_wrapper_s8_get_buffer_size(&cp, &in, &filt, &out);
        if (need > (int32_t)sizeof g_scratch) {
            return -1;
        }
        ctx.size = need;
        t0 = nn_qemu_ticks();
        st = arm_convolve_wrapper_s8(&ctx, &cp, &qp, &in, g_x0, &filt, g_w, &bias, g_bias, &out, g_ref);
        t1 = nn_qemu_ticks();
        *ticks += t1 - t0;
        return st == ARM_CMSIS_NN_SUCCESS ? 1 : -1;
    }
    case DYSAN_NN_KIND_FULLY_CONNECTED: {
        const int32_t ic = p[DYSAN_NN_CONV_IN_CHANNELS], oc = p[DYSAN_NN_CONV_OUT_CHANNELS];
        if (!conv_blobs(op, ic)) {
            return -1;
        }
        int per_channel = 0;
        for (int32_t c = 1; c < oc; c++) {
            per_channel |= g_mult[c] != g_mult[0] || g_shift[c] != g_shift[0];
        }
        cmsis_nn_fc_params fp;
        fp.input_offset = -p[DYSAN_NN_CONV_INPUT_ZP];
        fp.filter_offset = 0;
        fp.output_offset = p[DYSAN_NN_CONV_OUTPUT_ZP];
        fp.activation.min = p[DYSAN_NN_CONV_ACT_MIN];
        fp.activation.max = p[DYSAN_NN_CONV_ACT_MAX];
        cmsis_nn_quant_params qp = {g_mult, g_shift, per_channel};
        const int32_t rows = (int32_t)(op->in0.nbytes / (uint32_t)ic);
        cmsis_nn_dims in = {rows, 1, 1, ic}, filt = {ic, 1, 1, oc}, bias = {1, 1, 1, oc}, out = {rows, 1, 1, oc};
        /* TFLM's Prepare (KERNELS_OPTIMIZED_FOR_SPEED): kernel sums once, in a persistent buffer. */
        if (arm_fully_connected_s8_get_buffer_size(&filt) > 0) {
            arm_vector_sum_s8(g_sums, ic, oc, g_w, fp.input_offset, fp.filter_offset, g_bias);
            ctx.buf = g_sums;
            ctx.size = (int32_t)sizeof g_sums;
        }
        t0 = nn_qemu_ticks();
        st = arm_fully_connected_wrapper_s8(&ctx, &fp, &qp, &in, g_x0, &filt, g_w, &bias, g_bias, &out, g_ref);
        t1 = nn_qemu_ticks();
        *ticks += t1 - t0;
        return st == ARM_CMSIS_NN_SUCCESS ? 2 : -1;
    }
    case DYSAN_NN_KIND_AVERAGE_POOL_2D:
    case DYSAN_NN_KIND_MAX_POOL_2D: {
        cmsis_nn_pool_params pp;
        pp.stride.h = p[DYSAN_NN_POOL_STRIDE_H];
        pp.stride.w = p[DYSAN_NN_POOL_STRIDE_W];
        pp.padding.h = p[DYSAN_NN_POOL_PAD_TOP];
        pp.padding.w = p[DYSAN_NN_POOL_PAD_LEFT];
        pp.activation.min = p[DYSAN_NN_POOL_ACT_MIN];
        pp.activation.max = p[DYSAN_NN_POOL_ACT_MAX];
        cmsis_nn_dims in = dims4(&op->in0), out = dims4(&op->out);
        cmsis_nn_dims filt = {1, p[DYSAN_NN_POOL_FILTER_H], p[DYSAN_NN_POOL_FILTER_W], 1};
        const int avg = op->kind == DYSAN_NN_KIND_AVERAGE_POOL_2D;
        if (avg) {
            ctx.size = arm_avgpool_s8_get_buffer_size(out.w, in.c);
        }
        t0 = nn_qemu_ticks();
        st = avg ? arm_avgpool_s8(&ctx, &pp, &in, g_x0, &filt, &out, g_ref)
                 : arm_max_pool_s8(&ctx, &pp, &in, g_x0, &filt, &out, g_ref);
        t1 = nn_qemu_ticks();
        *ticks += t1 - t0;
        return st == ARM_CMSIS_NN_SUCCESS ? (avg ? 3 : 4) : -1;
    }
    case DYSAN_NN_KIND_ADD:
        t0 = nn_qemu_ticks();
        st = arm_elementwise_add_s8(g_x0, g_x1, p[DYSAN_NN_ADD_INPUT1_OFFSET], p[DYSAN_NN_ADD_INPUT1_MULTIPLIER],
                                    p[DYSAN_NN_ADD_INPUT1_SHIFT], p[DYSAN_NN_ADD_INPUT2_OFFSET],
                                    p[DYSAN_NN_ADD_INPUT2_MULTIPLIER], p[DYSAN_NN_ADD_INPUT2_SHIFT],
                                    p[DYSAN_NN_ADD_LEFT_SHIFT], g_ref, p[DYSAN_NN_ADD_OUTPUT_OFFSET],
                                    p[DYSAN_NN_ADD_OUTPUT_MULTIPLIER], p[DYSAN_NN_ADD_OUTPUT_SHIFT],
                                    p[DYSAN_NN_ADD_ACT_MIN], p[DYSAN_NN_ADD_ACT_MAX], (int32_t)op->out.nbytes);
        t1 = nn_qemu_ticks();
        *ticks += t1 - t0;
        return st == ARM_CMSIS_NN_SUCCESS ? 5 : -1;
    default:
        return 0;
    }
}

int main(int argc, char **argv) {
    if (argc != 3) {
        printf("error usage: nn_cmsis_bench IMAGE INPUTS\n");
        return 2;
    }
    const long image_len = nn_read_file(argv[1], g_image, sizeof g_image);
    if (image_len < 0) {
        printf("error cannot read %s (%s)\n", argv[1], image_len == -1 ? "cannot open" : "larger than MAX_IMAGE");
        return 2;
    }
    dysan_nn_model_t m;
    int rc = dysan_nn_load(g_image, (size_t)image_len, &m);
    if (rc != DYSAN_NN_OK) {
        printf("error load %d %s\n", rc, dysan_nn_strerror(rc));
        return 2;
    }
    const uint32_t n_ops = dysan_nn_op_count(&m);
    const size_t n_in = dysan_nn_input_bytes(&m);
    if (dysan_nn_arena_bytes(&m) > sizeof g_arena || n_ops > MAX_OPS || n_in > sizeof g_in) {
        printf("error model too large for this bench\n");
        return 2;
    }
    FILE *fin = fopen(argv[2], "rb");
    if (!fin) {
        printf("error cannot open %s\n", argv[2]);
        return 2;
    }
    printf("calibration instructions %lu ticks %llu\n", 2ul * 2000000ul,
           (unsigned long long)nn_qemu_calibrate(2000000u));
    unsigned long count = 0;
    for (uint32_t i = 0; i < n_ops; i++) {
        g_match[i] = 1;
    }
    while (fread(g_in, 1, n_in, fin) == n_in) {
        const uint64_t t0 = nn_qemu_ticks();
        rc = dysan_nn_invoke(&m, g_in, g_out, g_arena, sizeof g_arena);
        g_invoke += nn_qemu_ticks() - t0;
        uint32_t crc = 2166136261u; /* FNV-1a of the output, as tflm_bench.cc prints it */
        for (size_t k = 0; !rc && k < dysan_nn_output_bytes(&m); k++) {
            crc = (crc ^ (uint8_t)g_out[k]) * 16777619u;
        }
        printf("out %lu crc %08lx\n", count, (unsigned long)crc);
        rc = rc ? rc : dysan_nn_invoke_profiled(&m, g_in, g_out, g_arena, sizeof g_arena, nn_qemu_ticks, g_ticks, MAX_OPS);
        rc = rc ? rc : dysan_nn_begin(&m, g_in, g_arena, sizeof g_arena);
        for (uint32_t i = 0; !rc && i < n_ops; i++) {
            const op_t op = op_at(i);
            g_ours[i] += g_ticks[i];
            if (op.in0.nbytes > sizeof g_x0 || op.in1.nbytes > sizeof g_x1 || op.out.nbytes > sizeof g_ref) {
                printf("error op %lu too large for this bench\n", (unsigned long)i);
                return 2;
            }
            memcpy(g_x0, g_arena + op.in0.off, op.in0.nbytes);
            memcpy(g_x1, g_arena + op.in1.off, op.in1.nbytes);
            rc = dysan_nn_step(&m, i, g_arena, sizeof g_arena);
            const int fn = run_cmsis(&op, &g_cmsis[i]);
            if (fn < 0) {
                printf("error op %lu: CMSIS-NN refused it\n", (unsigned long)i);
                return 2;
            }
            g_fn[i] = fn;
            if (fn > 0 && memcmp(g_ref, g_arena + op.out.off, op.out.nbytes) != 0) {
                g_match[i] = 0;
            }
        }
        if (rc) {
            printf("error invoke %d %s\n", rc, dysan_nn_strerror(rc));
            return 2;
        }
        count++;
    }
    fclose(fin);
    for (uint32_t i = 0; i < n_ops; i++) {
        const int has = g_fn[i] > 0;
        printf("op %lu kind %lu macs %lu ours %llu cmsis %lld match %d fn %s\n", (unsigned long)i,
               (unsigned long)dysan_nn_op_kind(&m, i), (unsigned long)dysan_nn_op_macs(&m, i),
               (unsigned long long)g_ours[i], has ? (long long)g_cmsis[i] : -1LL, has ? g_match[i] : -1,
               FN_NAMES[g_fn[i]]);
    }
    printf("invoke ticks %llu arena %lu image %ld\n", (unsigned long long)g_invoke,
           (unsigned long)dysan_nn_arena_bytes(&m), image_len);
    printf("ok %lu\n", count);
    return 0;
}
