/*
 * dysan_nn_fc.c -- FULLY_CONNECTED, bit-exact with TFLM's reference_integer_ops FullyConnected and
 * FullyConnectedPerChannel (per-tensor weights are stored as identical per-channel multipliers).
 *
 * input_offset * sum(weights) is folded into the bias by the exporter, so each output is
 * bias' + dot(weights row, input row): one int8 x int8 dot product over contiguous memory. Rows are
 * zero-padded to a multiple of 4 bytes in the image.
 *
 * The Cortex-M4 DSP path is in dysan_nn_fc_m4.c.
 */
#include "dysan_nn_internal.h"

#if !NN_DSP
static int8_t nn_fc_out(const nn_op_t *op, int32_t c, int32_t acc, int32_t zp, int32_t lo, int32_t hi) {
    return nn_clamp8(nn_mbqm(acc, dysan_le_get_i32(op->mult + 4 * c), dysan_le_get_i32(op->shift + 4 * c)) + zp, lo, hi);
}
#endif

static void nn_fully_connected(const nn_op_t *op, uint8_t *arena) {
#if NN_DSP
    nn_m4_fully_connected(op, arena);
#else
    const nn_fc_shape_t f = nn_fc_shape(op, arena);
    const int32_t depth = f.depth, n_out = f.n_out, row = f.row, rows = f.rows, zp = f.zp, lo = f.lo, hi = f.hi;
    const int8_t *in = f.in;
    int8_t *out = f.out;
    const int8_t *weights = (const int8_t *)op->weights;
    for (int32_t r = 0; r < rows; r++) {
        const int8_t *x = in + (size_t)r * depth;
        int8_t *o = out + (size_t)r * n_out;
        for (int32_t c = 0; c < n_out; c++) {
            const int8_t *w = weights + (size_t)c * row;
            uint32_t acc = dysan_le_get_u32(op->bias + 4 * c); /* unsigned: wraps like the int32 accumulator */
            for (int32_t i = 0; i < depth; i++) {
                acc += (uint32_t)((int32_t)w[i] * (int32_t)x[i]);
            }
            o[c] = nn_fc_out(op, c, (int32_t)acc, zp, lo, hi);
        }
    }
#endif
}

/* 2-D [rows, in] x [out, in] (keep_num_dims: any leading dims), every CONV param but the channels neutral. */
static int nn_validate_fc(const dysan_nn_model_t *m, nn_op_t *op) {
    int err = nn_validate_conv_params(op);
    if (err) {
        return err;
    }
    const int32_t *p = op->p;
    for (int i = DYSAN_NN_CONV_STRIDE_H; i <= DYSAN_NN_CONV_DEPTH_MULTIPLIER; i++) {
        const int is_pad = i >= DYSAN_NN_CONV_PAD_TOP && i <= DYSAN_NN_CONV_PAD_RIGHT;
        const int is_ch = i == DYSAN_NN_CONV_IN_CHANNELS || i == DYSAN_NN_CONV_OUT_CHANNELS;
        if (!is_ch && p[i] != (is_pad ? 0 : 1)) {
            return DYSAN_NN_ERR_PARAM;
        }
    }
    const uint64_t ic = (uint32_t)p[DYSAN_NN_CONV_IN_CHANNELS], oc = (uint32_t)p[DYSAN_NN_CONV_OUT_CHANNELS];
    const nn_tensor_t *x = &op->in[0], *y = &op->out;
    if (x->nbytes % ic != 0 || (uint64_t)(x->nbytes / ic) * oc != y->nbytes || y->dims[y->rank - 1] != oc) {
        return DYSAN_NN_ERR_SHAPE;
    }
    return nn_validate_conv_blobs(m, op, ic);
}

const nn_op_reg_t nn_reg_fully_connected = {DYSAN_NN_KIND_FULLY_CONNECTED, 1, DYSAN_NN_CONV_NPARAMS,
                                            DYSAN_NN_OPF_ACC_BOUNDED, nn_validate_fc, nn_fully_connected};
