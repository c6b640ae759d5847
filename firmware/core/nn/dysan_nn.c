/*
 * dysan_nn.c -- model image loader (validation) and interpreter loop.
 *
 * Every op is decoded by one function, nn_decode_op(): it finds the op's registration in nn_op_table (kind,
 * input count, params words, allowed flags, and the kernel's own validate and eval, defined next to each
 * kernel), checks the record, tensors and params block, then lets the kernel's validate check its parameters,
 * shapes, blobs and scratch against what the kernel reads and writes. dysan_nn_load() runs it for every op and
 * dysan_nn_invoke() runs it again just before each kernel, so a kernel never sees unchecked values even if
 * the image memory changed after the load. All size arithmetic is done in 64 bits.
 */
#include "dysan_nn.h"

#include <string.h>

#include "dysan_nn_internal.h"

/* Every op kind this interpreter runs: one registration each, defined next to its kernel. */
static const nn_op_reg_t *const nn_op_table[] = {
    &nn_reg_conv_2d, &nn_reg_depthwise_conv_2d, &nn_reg_fully_connected, &nn_reg_average_pool_2d,
    &nn_reg_max_pool_2d, &nn_reg_mean, &nn_reg_add, &nn_reg_leaky_relu, &nn_reg_quantize,
};

static const nn_op_reg_t *nn_find_op(uint32_t kind) {
    for (size_t i = 0; i < sizeof nn_op_table / sizeof nn_op_table[0]; i++) {
        if (nn_op_table[i]->kind == kind) {
            return nn_op_table[i];
        }
    }
    return NULL;
}

typedef struct {
    uint32_t start, len;
} nn_span_t;

static int nn_in_range(uint64_t off, uint64_t len, uint64_t start, uint64_t end) {
    return off >= start && off <= end && len <= end - off;
}

static int nn_overlap(uint64_t a_off, uint64_t a_len, uint64_t b_off, uint64_t b_len) {
    return a_len && b_len && a_off < b_off + b_len && b_off < a_off + a_len;
}

static int nn_decode_tensor(const dysan_nn_model_t *m, uint32_t id, nn_tensor_t *t) {
    if (id >= m->n_tensors) {
        return DYSAN_NN_ERR_OP;
    }
    const uint8_t *r = m->image + m->tensors_off + (size_t)id * DYSAN_NN_TENSOR_SIZE;
    if (r[DYSAN_NN_TENSOR_DTYPE] != DYSAN_NN_DTYPE_INT8 || dysan_le_get_u16(r + DYSAN_NN_TENSOR_FLAGS) != 0 ||
        dysan_le_get_u32(r + DYSAN_NN_TENSOR_RESERVED) != 0) {
        return DYSAN_NN_ERR_TENSOR;
    }
    t->rank = r[DYSAN_NN_TENSOR_RANK];
    if (t->rank < 1 || t->rank > DYSAN_NN_MAX_RANK) {
        return DYSAN_NN_ERR_TENSOR;
    }
    const uint32_t d0 = dysan_le_get_u16(r + DYSAN_NN_TENSOR_DIM0), d1 = dysan_le_get_u16(r + DYSAN_NN_TENSOR_DIM1);
    const uint32_t d2 = dysan_le_get_u16(r + DYSAN_NN_TENSOR_DIM2), d3 = dysan_le_get_u16(r + DYSAN_NN_TENSOR_DIM3);
    const uint32_t used = (uint32_t)(d0 != 0) | (uint32_t)(d1 != 0) << 1 | (uint32_t)(d2 != 0) << 2 |
                          (uint32_t)(d3 != 0) << 3;
    if (used != (UINT32_C(1) << t->rank) - 1u) {
        return DYSAN_NN_ERR_TENSOR; /* used dims are >= 1, unused ones 0 */
    }
    t->dims[0] = d0;
    t->dims[1] = d1;
    t->dims[2] = d2;
    t->dims[3] = d3;
    /* The used dims' product (unused ones count 1): two products of two u16 fit u32, theirs fits u64. */
    const uint64_t n = (uint64_t)((d0 | !d0) * (d1 | !d1)) * ((d2 | !d2) * (d3 | !d3));
    t->off = dysan_le_get_u32(r + DYSAN_NN_TENSOR_ARENA_OFF);
    t->nbytes = dysan_le_get_u32(r + DYSAN_NN_TENSOR_NBYTES);
    t->zp = dysan_le_get_i32(r + DYSAN_NN_TENSOR_ZERO_POINT);
    if (n != t->nbytes || n >= NN_LIMIT_BYTES || !nn_is_zp(t->zp) || (t->off % DYSAN_NN_ALIGN) != 0 ||
        !nn_in_range(t->off, t->nbytes, 0, m->arena_size)) {
        return DYSAN_NN_ERR_TENSOR;
    }
    return DYSAN_NN_OK;
}

/* A blob of `len` bytes at image offset `off`, inside the data section. */
const uint8_t *nn_blob(const dysan_nn_model_t *m, int32_t off, uint64_t len) {
    if (off < 0 || ((uint32_t)off % DYSAN_NN_ALIGN) != 0 ||
        !nn_in_range((uint32_t)off, len, m->data_off, (uint64_t)m->data_off + m->data_size)) {
        return NULL;
    }
    return m->image + (uint32_t)off;
}

static int nn_check_shifts(const uint8_t *mult, const uint8_t *shift, uint32_t n, int32_t lo, int32_t hi) {
    for (uint32_t i = 0; i < n; i++) {
        const int32_t s = dysan_le_get_i32(shift + 4 * i);
        if (dysan_le_get_i32(mult + 4 * i) < 0 || s < lo || s > hi) {
            return 0;
        }
    }
    return 1;
}

int nn_validate_conv_params(const nn_op_t *op) {
    const int32_t *p = op->p;
    for (int i = DYSAN_NN_CONV_STRIDE_H; i <= DYSAN_NN_CONV_DEPTH_MULTIPLIER; i++) {
        const int is_pad = i >= DYSAN_NN_CONV_PAD_TOP && i <= DYSAN_NN_CONV_PAD_RIGHT;
        if (p[i] < (is_pad ? 0 : 1) || p[i] > (int32_t)NN_MAX_DIM) {
            return DYSAN_NN_ERR_PARAM;
        }
    }
    if (!nn_is_zp(p[DYSAN_NN_CONV_INPUT_ZP]) || !nn_is_zp(p[DYSAN_NN_CONV_OUTPUT_ZP]) ||
        !nn_check_act(p[DYSAN_NN_CONV_ACT_MIN], p[DYSAN_NN_CONV_ACT_MAX]) ||
        p[DYSAN_NN_CONV_INPUT_ZP] != op->in[0].zp || p[DYSAN_NN_CONV_OUTPUT_ZP] != op->out.zp) {
        return DYSAN_NN_ERR_PARAM;
    }
    return DYSAN_NN_OK;
}

int nn_validate_conv_blobs(const dysan_nn_model_t *m, nn_op_t *op, uint64_t row_min) {
    const int32_t *p = op->p;
    const uint64_t oc = (uint32_t)p[DYSAN_NN_CONV_OUT_CHANNELS];
    const uint64_t row = (uint32_t)p[DYSAN_NN_CONV_WEIGHTS_ROW];
    if (p[DYSAN_NN_CONV_WEIGHTS_ROW] < 0 || row < row_min || row % 4 != 0 || row * oc >= NN_LIMIT_BYTES) {
        return DYSAN_NN_ERR_PARAM;
    }
    op->weights = nn_blob(m, p[DYSAN_NN_CONV_WEIGHTS_OFF], row * oc);
    op->bias = nn_blob(m, p[DYSAN_NN_CONV_BIAS_OFF], 4 * oc);
    op->mult = nn_blob(m, p[DYSAN_NN_CONV_MULT_OFF], 4 * oc);
    op->shift = nn_blob(m, p[DYSAN_NN_CONV_SHIFT_OFF], 4 * oc);
    if (!op->weights || !op->bias || !op->mult || !op->shift) {
        return DYSAN_NN_ERR_LAYOUT;
    }
    if (!nn_check_shifts(op->mult, op->shift, (uint32_t)oc, -31, 30)) {
        return DYSAN_NN_ERR_PARAM;
    }
    const uint64_t need = nn_conv_scratch_bytes(op);
    if (need == 0 || op->scratch_len < need) {
        return DYSAN_NN_ERR_ARENA;
    }
    return DYSAN_NN_OK;
}

static int nn_decode_op(const dysan_nn_model_t *m, uint32_t index, nn_op_t *op) {
    memset(op, 0, sizeof(*op));
    const uint8_t *r = m->image + m->ops_off + (size_t)index * DYSAN_NN_OP_SIZE;
    op->kind = dysan_le_get_u16(r + DYSAN_NN_OP_KIND);
    op->flags = dysan_le_get_u16(r + DYSAN_NN_OP_FLAGS);
    op->n_inputs = dysan_le_get_u16(r + DYSAN_NN_OP_N_INPUTS);
    op->reg = nn_find_op(op->kind);
    if (!op->reg || (op->flags & ~op->reg->flags) != 0) {
        return DYSAN_NN_ERR_OP;
    }
    const uint32_t nparams = op->reg->n_params, want_inputs = op->reg->n_inputs;
    const uint32_t in1 = dysan_le_get_u16(r + DYSAN_NN_OP_INPUT1);
    if (op->n_inputs != want_inputs || (want_inputs == 1 && in1 != DYSAN_NN_NO_TENSOR)) {
        return DYSAN_NN_ERR_OP;
    }
    int err = nn_decode_tensor(m, dysan_le_get_u16(r + DYSAN_NN_OP_INPUT0), &op->in[0]);
    if (!err && want_inputs == 2) {
        err = nn_decode_tensor(m, in1, &op->in[1]);
    }
    if (!err) {
        err = nn_decode_tensor(m, dysan_le_get_u16(r + DYSAN_NN_OP_OUTPUT), &op->out);
    }
    if (err) {
        return err;
    }
    const uint32_t params_off = dysan_le_get_u32(r + DYSAN_NN_OP_PARAMS_OFF);
    const uint32_t params_len = dysan_le_get_u32(r + DYSAN_NN_OP_PARAMS_LEN);
    if (params_len != 4u * nparams || params_off % DYSAN_NN_ALIGN != 0 ||
        !nn_in_range(params_off, params_len, m->data_off, (uint64_t)m->data_off + m->data_size)) {
        return DYSAN_NN_ERR_LAYOUT;
    }
    for (uint32_t i = 0; i < nparams; i++) {
        op->p[i] = dysan_le_get_i32(m->image + params_off + 4 * i);
    }
    op->scratch_off = dysan_le_get_u32(r + DYSAN_NN_OP_SCRATCH_OFF);
    op->scratch_len = dysan_le_get_u32(r + DYSAN_NN_OP_SCRATCH_LEN);
    op->macs = dysan_le_get_u32(r + DYSAN_NN_OP_MACS);
    if (op->scratch_off % DYSAN_NN_ALIGN != 0 || !nn_in_range(op->scratch_off, op->scratch_len, 0, m->arena_size)) {
        return DYSAN_NN_ERR_ARENA;
    }
    err = op->reg->validate(m, op);
    if (err) {
        return err;
    }
    /* Kernels read inputs and scratch while writing the output: no two of those regions may share bytes. */
    const nn_span_t regions[4] = {{op->out.off, op->out.nbytes},
                                  {op->scratch_off, op->scratch_len},
                                  {op->in[0].off, op->in[0].nbytes},
                                  {op->in[1].off, op->n_inputs > 1 ? op->in[1].nbytes : 0}};
    for (int a = 0; a < 2; a++) {
        for (int b = a + 1; b < 4; b++) {
            if (nn_overlap(regions[a].start, regions[a].len, regions[b].start, regions[b].len)) {
                return DYSAN_NN_ERR_ARENA;
            }
        }
    }
    return DYSAN_NN_OK;
}

int dysan_nn_load(const uint8_t *image, size_t len, dysan_nn_model_t *out) {
    if (!image || !out) {
        return DYSAN_NN_ERR_ARG;
    }
    memset(out, 0, sizeof(*out));
    if (len < DYSAN_NN_HDR_SIZE) {
        return DYSAN_NN_ERR_TRUNCATED;
    }
    if (dysan_le_get_u32(image + DYSAN_NN_HDR_MAGIC) != DYSAN_NN_MAGIC) {
        return DYSAN_NN_ERR_MAGIC;
    }
    if (dysan_le_get_u32(image + DYSAN_NN_HDR_VERSION) != DYSAN_NN_VERSION) {
        return DYSAN_NN_ERR_VERSION;
    }
    dysan_nn_model_t m;
    memset(&m, 0, sizeof(m));
    m.image = image;
    m.image_size = dysan_le_get_u32(image + DYSAN_NN_HDR_IMAGE_SIZE);
    if (m.image_size > len) {
        return DYSAN_NN_ERR_TRUNCATED;
    }
    m.n_tensors = dysan_le_get_u32(image + DYSAN_NN_HDR_N_TENSORS);
    m.tensors_off = dysan_le_get_u32(image + DYSAN_NN_HDR_TENSORS_OFF);
    m.n_ops = dysan_le_get_u32(image + DYSAN_NN_HDR_N_OPS);
    m.ops_off = dysan_le_get_u32(image + DYSAN_NN_HDR_OPS_OFF);
    m.data_off = dysan_le_get_u32(image + DYSAN_NN_HDR_DATA_OFF);
    m.data_size = dysan_le_get_u32(image + DYSAN_NN_HDR_DATA_SIZE);
    m.arena_size = dysan_le_get_u32(image + DYSAN_NN_HDR_ARENA_SIZE);
    m.input_tensor = dysan_le_get_u32(image + DYSAN_NN_HDR_INPUT_TENSOR);
    m.output_tensor = dysan_le_get_u32(image + DYSAN_NN_HDR_OUTPUT_TENSOR);
    m.total_macs = dysan_le_get_u32(image + DYSAN_NN_HDR_TOTAL_MACS);
    if (dysan_le_get_u32(image + DYSAN_NN_HDR_HEADER_SIZE) != DYSAN_NN_HDR_SIZE || dysan_le_get_u32(image + DYSAN_NN_HDR_FLAGS) ||
        dysan_le_get_u32(image + DYSAN_NN_HDR_RESERVED) || m.image_size % DYSAN_NN_ALIGN != 0) {
        return DYSAN_NN_ERR_LAYOUT;
    }
    /* Sections in order, aligned, inside the image: header | tensors | ops | data. */
    const uint64_t tensors_len = (uint64_t)m.n_tensors * DYSAN_NN_TENSOR_SIZE;
    const uint64_t ops_len = (uint64_t)m.n_ops * DYSAN_NN_OP_SIZE;
    if (m.n_tensors == 0 || m.n_tensors >= DYSAN_NN_NO_TENSOR || m.n_ops == 0 || m.tensors_off % 4 ||
        m.ops_off % 4 || m.data_off % 4 || m.tensors_off < DYSAN_NN_HDR_SIZE ||
        !nn_in_range(m.tensors_off, tensors_len, DYSAN_NN_HDR_SIZE, m.image_size) ||
        !nn_in_range(m.ops_off, ops_len, m.tensors_off + tensors_len, m.image_size) ||
        !nn_in_range(m.data_off, m.data_size, m.ops_off + ops_len, m.image_size)) {
        return DYSAN_NN_ERR_LAYOUT;
    }
    if (m.arena_size >= NN_LIMIT_BYTES) {
        return DYSAN_NN_ERR_ARENA;
    }
    nn_tensor_t t;
    for (uint32_t i = 0; i < m.n_tensors; i++) {
        const int err = nn_decode_tensor(&m, i, &t);
        if (err) {
            return err;
        }
    }
    if (m.input_tensor >= m.n_tensors || m.output_tensor >= m.n_tensors) {
        return DYSAN_NN_ERR_TENSOR;
    }
    (void)nn_decode_tensor(&m, m.input_tensor, &t);
    m.input_bytes = t.nbytes;
    (void)nn_decode_tensor(&m, m.output_tensor, &t);
    m.output_bytes = t.nbytes;
    nn_op_t op;
    for (uint32_t i = 0; i < m.n_ops; i++) {
        const int err = nn_decode_op(&m, i, &op);
        if (err) {
            return err;
        }
    }
    *out = m;
    return DYSAN_NN_OK;
}

static int nn_check_run(const dysan_nn_model_t *m, const uint8_t *arena, size_t arena_len) {
    if (!m || !m->image || !arena || ((uintptr_t)arena % DYSAN_NN_ALIGN) != 0) {
        return DYSAN_NN_ERR_ARG;
    }
    return arena_len < m->arena_size ? DYSAN_NN_ERR_ARENA : DYSAN_NN_OK;
}

int dysan_nn_begin(const dysan_nn_model_t *m, const int8_t *input, uint8_t *arena, size_t arena_len) {
    int err = nn_check_run(m, arena, arena_len);
    if (err || !input) {
        return err ? err : DYSAN_NN_ERR_ARG;
    }
    nn_tensor_t io;
    err = nn_decode_tensor(m, m->input_tensor, &io);
    if (err || io.nbytes != m->input_bytes) {
        return err ? err : DYSAN_NN_ERR_TENSOR;
    }
    memcpy(arena + io.off, input, io.nbytes);
    return DYSAN_NN_OK;
}

int dysan_nn_step(const dysan_nn_model_t *m, uint32_t i, uint8_t *arena, size_t arena_len) {
    int err = nn_check_run(m, arena, arena_len);
    if (err || i >= m->n_ops) {
        return err ? err : DYSAN_NN_ERR_ARG;
    }
    nn_op_t op;
    err = nn_decode_op(m, i, &op);
    if (!err) {
        op.reg->eval(&op, arena);
    }
    return err;
}

int dysan_nn_end(const dysan_nn_model_t *m, const uint8_t *arena, size_t arena_len, int8_t *output) {
    int err = nn_check_run(m, arena, arena_len);
    if (err || !output) {
        return err ? err : DYSAN_NN_ERR_ARG;
    }
    nn_tensor_t io;
    err = nn_decode_tensor(m, m->output_tensor, &io);
    if (err || io.nbytes != m->output_bytes) {
        return err ? err : DYSAN_NN_ERR_TENSOR;
    }
    memcpy(output, arena + io.off, io.nbytes);
    return DYSAN_NN_OK;
}

int dysan_nn_invoke_profiled(const dysan_nn_model_t *m, const int8_t *input, int8_t *output, uint8_t *arena,
                             size_t arena_len, dysan_nn_clock_fn clock, uint64_t *op_ticks, size_t n_op_ticks) {
    if (!output) {
        return DYSAN_NN_ERR_ARG;
    }
    int err = dysan_nn_begin(m, input, arena, arena_len);
    nn_op_t op;
    for (uint32_t i = 0; !err && i < m->n_ops; i++) {
        err = nn_decode_op(m, i, &op);
        if (err) {
            break;
        }
        const uint64_t t0 = clock ? clock() : 0;
        op.reg->eval(&op, arena);
        if (clock && op_ticks && i < n_op_ticks) {
            op_ticks[i] = clock() - t0;
        }
    }
    return err ? err : dysan_nn_end(m, arena, arena_len, output);
}

int dysan_nn_invoke(const dysan_nn_model_t *m, const int8_t *input, int8_t *output, uint8_t *arena,
                    size_t arena_len) {
    return dysan_nn_invoke_profiled(m, input, output, arena, arena_len, NULL, NULL, 0);
}

size_t dysan_nn_arena_bytes(const dysan_nn_model_t *m) { return m ? m->arena_size : 0; }
size_t dysan_nn_input_bytes(const dysan_nn_model_t *m) { return m ? m->input_bytes : 0; }
size_t dysan_nn_output_bytes(const dysan_nn_model_t *m) { return m ? m->output_bytes : 0; }

static const uint8_t *nn_tensor_record(const dysan_nn_model_t *m, uint32_t id) {
    return m->image + m->tensors_off + (size_t)id * DYSAN_NN_TENSOR_SIZE;
}

static float nn_scale(const dysan_nn_model_t *m, uint32_t id) {
    const uint32_t bits = dysan_le_get_u32(nn_tensor_record(m, id) + DYSAN_NN_TENSOR_SCALE);
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

float dysan_nn_input_scale(const dysan_nn_model_t *m) { return m && m->image ? nn_scale(m, m->input_tensor) : 0.0f; }
float dysan_nn_output_scale(const dysan_nn_model_t *m) {
    return m && m->image ? nn_scale(m, m->output_tensor) : 0.0f;
}
int32_t dysan_nn_input_zero_point(const dysan_nn_model_t *m) {
    return m && m->image ? dysan_le_get_i32(nn_tensor_record(m, m->input_tensor) + DYSAN_NN_TENSOR_ZERO_POINT) : 0;
}
int32_t dysan_nn_output_zero_point(const dysan_nn_model_t *m) {
    return m && m->image ? dysan_le_get_i32(nn_tensor_record(m, m->output_tensor) + DYSAN_NN_TENSOR_ZERO_POINT) : 0;
}

uint32_t dysan_nn_op_count(const dysan_nn_model_t *m) { return m ? m->n_ops : 0; }

uint32_t dysan_nn_op_kind(const dysan_nn_model_t *m, uint32_t i) {
    return m && m->image && i < m->n_ops ? dysan_le_get_u16(m->image + m->ops_off + (size_t)i * DYSAN_NN_OP_SIZE) : 0;
}

uint32_t dysan_nn_op_macs(const dysan_nn_model_t *m, uint32_t i) {
    return m && m->image && i < m->n_ops
               ? dysan_le_get_u32(m->image + m->ops_off + (size_t)i * DYSAN_NN_OP_SIZE + DYSAN_NN_OP_MACS)
               : 0;
}

int dysan_nn_uses_dsp(void) { return NN_DSP; }

const char *dysan_nn_strerror(int err) {
    switch (err) {
    case DYSAN_NN_OK:
        return "ok";
    case DYSAN_NN_ERR_ARG:
        return "bad argument";
    case DYSAN_NN_ERR_TRUNCATED:
        return "image truncated";
    case DYSAN_NN_ERR_MAGIC:
        return "not a model image";
    case DYSAN_NN_ERR_VERSION:
        return "unsupported image version";
    case DYSAN_NN_ERR_LAYOUT:
        return "bad image layout";
    case DYSAN_NN_ERR_TENSOR:
        return "bad tensor record";
    case DYSAN_NN_ERR_OP:
        return "bad op record";
    case DYSAN_NN_ERR_SHAPE:
        return "shapes do not match the op";
    case DYSAN_NN_ERR_PARAM:
        return "op parameter out of range";
    case DYSAN_NN_ERR_ARENA:
        return "arena too small or overlapping";
    default:
        return "unknown error";
    }
}
