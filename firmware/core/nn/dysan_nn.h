/*
 * dysan_nn.h -- int8 neural-network interpreter for model images (host/dysan/export/model_image.py).
 *
 * A model image is data: the built-in model is a const array, an uploaded one comes over the radio link into
 * flash. So dysan_nn_load() trusts nothing: every offset, size, tensor id, shape and parameter is checked
 * against the image length and against what the op's kernel will touch, and dysan_nn_invoke() checks them
 * again as it decodes each op (the image may be flash that changed since the load). The kernels are
 * bit-exact with TFLM's reference kernels; on Cortex-M cores with the DSP extension the convolution and
 * fully-connected dot products use SMLAD (same results, fewer instructions).
 *
 * No allocation: the caller provides the arena (dysan_nn_arena_bytes(), 4-byte aligned). The image must
 * stay readable and unchanged while the model is in use.
 */
#ifndef DYSAN_NN_H
#define DYSAN_NN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
    DYSAN_NN_OK = 0,
    DYSAN_NN_ERR_ARG = -1,       /* NULL pointer, or an arena that is not 4-byte aligned */
    DYSAN_NN_ERR_TRUNCATED = -2, /* shorter than the header or than the size it declares */
    DYSAN_NN_ERR_MAGIC = -3,     /* not a model image */
    DYSAN_NN_ERR_VERSION = -4,   /* a format version this firmware does not read */
    DYSAN_NN_ERR_LAYOUT = -5,    /* a table, params block or blob outside the image, misaligned or overlapping */
    DYSAN_NN_ERR_TENSOR = -6,    /* a bad tensor record (dtype, rank, dims, size, arena range) */
    DYSAN_NN_ERR_OP = -7,        /* an unknown op kind, a wrong input count, a tensor id out of range */
    DYSAN_NN_ERR_SHAPE = -8,     /* tensor shapes that do not match the op's parameters */
    DYSAN_NN_ERR_PARAM = -9,     /* a parameter outside its valid range */
    DYSAN_NN_ERR_ARENA = -10,    /* arena too small, or regions of one op overlapping */
};

/* A loaded model: a validated view of the image (no copy). */
typedef struct {
    const uint8_t *image;
    uint32_t image_size;
    uint32_t n_tensors, tensors_off;
    uint32_t n_ops, ops_off;
    uint32_t data_off, data_size;
    uint32_t arena_size;
    uint32_t input_tensor, output_tensor;
    uint32_t input_bytes, output_bytes;
    uint32_t total_macs;
} dysan_nn_model_t;

/* Validates `image` (at least `len` readable bytes; the image may be shorter than `len`, e.g. a flash
 * region) and fills `out`. Returns DYSAN_NN_OK or a negative DYSAN_NN_ERR_*. */
int dysan_nn_load(const uint8_t *image, size_t len, dysan_nn_model_t *out);

/* Runs one inference: copies dysan_nn_input_bytes() from `input` into the arena, runs every op, copies
 * dysan_nn_output_bytes() to `output`. `arena` must be 4-byte aligned and at least dysan_nn_arena_bytes(). */
int dysan_nn_invoke(const dysan_nn_model_t *m, const int8_t *input, int8_t *output, uint8_t *arena,
                    size_t arena_len);

/* The same, recording clock() before and after each op into op_ticks[i] (differences; n_op_ticks entries
 * at most). clock is e.g. dysan_port_cycles. */
typedef uint64_t (*dysan_nn_clock_fn)(void);
int dysan_nn_invoke_profiled(const dysan_nn_model_t *m, const int8_t *input, int8_t *output, uint8_t *arena,
                             size_t arena_len, dysan_nn_clock_fn clock, uint64_t *op_ticks, size_t n_op_ticks);

/* The same inference one op at a time (e.g. to run a model in slices between other work, or to time or check
 * each op): dysan_nn_begin copies the input into the arena, dysan_nn_step runs op i (0 .. op_count - 1, in
 * order: each op reads what the earlier ones wrote), dysan_nn_end copies the output out. Each call checks its
 * arguments and decodes (so checks) the op again, like dysan_nn_invoke. */
int dysan_nn_begin(const dysan_nn_model_t *m, const int8_t *input, uint8_t *arena, size_t arena_len);
int dysan_nn_step(const dysan_nn_model_t *m, uint32_t i, uint8_t *arena, size_t arena_len);
int dysan_nn_end(const dysan_nn_model_t *m, const uint8_t *arena, size_t arena_len, int8_t *output);

size_t dysan_nn_arena_bytes(const dysan_nn_model_t *m);
size_t dysan_nn_input_bytes(const dysan_nn_model_t *m);
size_t dysan_nn_output_bytes(const dysan_nn_model_t *m);
/* Quantization of the model input and output: real = scale * (q - zero_point). */
float dysan_nn_input_scale(const dysan_nn_model_t *m);
int32_t dysan_nn_input_zero_point(const dysan_nn_model_t *m);
float dysan_nn_output_scale(const dysan_nn_model_t *m);
int32_t dysan_nn_output_zero_point(const dysan_nn_model_t *m);

uint32_t dysan_nn_op_count(const dysan_nn_model_t *m);
/* Kind (DYSAN_NN_KIND_* in dysan_nn_format.h) and multiply-accumulates of op i; 0 when i is out of range. */
uint32_t dysan_nn_op_kind(const dysan_nn_model_t *m, uint32_t i);
uint32_t dysan_nn_op_macs(const dysan_nn_model_t *m, uint32_t i);
/* Nonzero when this build runs the convolution / fully-connected dot products with the DSP extension. */
int dysan_nn_uses_dsp(void);

const char *dysan_nn_strerror(int err);

#ifdef __cplusplus
}
#endif

#endif /* DYSAN_NN_H */
