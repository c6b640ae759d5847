"""dysan_nn kernels, op by op: bit-exact with TFLM, and a loader that rejects malformed images.

Each case is a tiny Keras model converted to int8 TFLite; the same 200 int8 inputs go through TFLM (its
reference kernels) and through the native C runner on the exported model image, and every output byte must
match. TFLM itself is checked against TensorFlow Lite's reference interpreter (within 1 LSB: the two do not
share every kernel). Malformed images (truncated, bad offsets, bad op kinds, oversized shapes, random byte
flips) must be rejected with an error code, never crash -- also under AddressSanitizer / UBSan.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from dysan.codegen import REPO, render
from dysan.errors import DysanError
from dysan.export import model_image as mi
from dysan.export.tflite_graph import ModelFormatError, read_tflite, schema
from test_nn_support import (
    Case,
    ImageEditor,
    OpSpec,
    TensorSpec,
    assert_same,
    build_tflite,
    check_bit_exact,
    int8_inputs,
    run_image,
    tf_reference_run,
    tflite_of,
    tflite_ops,
    tflm_run,
)


def _seq(*make: object) -> object:
    """build() for a chain of layers: each argument is keras -> layer (or keras -> [x] -> y)."""

    def build(k: object) -> object:
        def apply(x: object) -> object:
            for f in make:
                x = f(k)(x)  # type: ignore[operator]
            return x

        return apply

    return build


def _residual(k: object) -> object:
    layers = k.layers  # type: ignore[attr-defined]
    return lambda x: layers.Add()([layers.Conv1D(6, 3, padding="same")(x), x])


#: Keras cases whose op under test follows another op: TF's and TFLM's kernels may disagree by 1 LSB on the
#: first op and the next one can amplify that (e.g. LeakyReLU's identity branch with a gain of ~2), so the
#: 1 LSB cross-check with TF runs on single-op graphs (the others and HANDBUILT); these stay bit-exact only.
CHAINED = {"mean_rescale", "mean_keepdims", "add_residual", "add_relu", "leaky_relu_01", "leaky_relu_03"}

CASES = [
    Case(
        "conv1d_same_relu",
        (40, 6),
        lambda k: k.layers.Conv1D(16, 5, padding="same", activation="relu"),
        expect_ops=("CONV_2D",),
    ),
    Case("conv1d_valid_stride2", (41, 6), lambda k: k.layers.Conv1D(8, 5, strides=2), expect_ops=("CONV_2D",)),
    Case(
        "conv1d_dilated_same_relu",
        (40, 16),
        lambda k: k.layers.Conv1D(16, 5, padding="same", dilation_rate=2, activation="relu"),
        expect_ops=("CONV_2D",),
    ),
    Case(
        "conv1d_relu6_odd_channels",
        (33, 3),
        lambda k: k.layers.Conv1D(7, 4, strides=3, padding="same", activation="relu6"),
        expect_ops=("CONV_2D",),
    ),
    Case(
        "conv1d_dilated3_odd_in",
        (30, 3),
        lambda k: k.layers.Conv1D(5, 3, padding="same", dilation_rate=3),
        expect_ops=("CONV_2D",),
    ),
    Case(
        "conv2d_stride_same_relu6",
        (12, 10, 3),
        lambda k: k.layers.Conv2D(6, (3, 3), strides=(2, 1), padding="same", activation="relu6"),
        expect_ops=("CONV_2D",),
    ),
    Case(
        "conv2d_dilated_valid",
        (12, 12, 4),
        lambda k: k.layers.Conv2D(6, (3, 3), dilation_rate=(2, 2)),
        expect_ops=("CONV_2D",),
    ),
    # Cortex-M4 fast path variants: an output channel count that is odd (staged rows) over an odd pixel count
    # (the last pixel pairs with itself) on 4 input channels (SXTB16-ordered planes); a 2-D window (the
    # column built row by row) with an odd number of int16 pairs (the first pair rides in the header);
    # and a window longer than DYSAN_NN_CONV_FAST_MAX_PAIRS (the general blocks on every CPU).
    Case(
        "conv1d_even_in_odd_out",
        (33, 4),
        lambda k: k.layers.Conv1D(7, 3, padding="same"),
        expect_ops=("CONV_2D",),
    ),
    Case(
        "conv2d_odd_window_relu",
        (9, 8, 2),
        lambda k: k.layers.Conv2D(5, (3, 3), padding="same", activation="relu"),
        expect_ops=("CONV_2D",),
    ),
    Case(
        "conv1d_wide_window",
        (12, 64),
        lambda k: k.layers.Conv1D(6, 5, padding="same"),
        expect_ops=("CONV_2D",),
    ),
    Case(
        "depthwise1d_same_relu",
        (40, 6),
        lambda k: k.layers.DepthwiseConv1D(5, padding="same", activation="relu"),
        expect_ops=("DEPTHWISE_CONV_2D",),
    ),
    Case(
        "depthwise2d_dm2_stride",
        (12, 10, 3),
        lambda k: k.layers.DepthwiseConv2D((3, 3), strides=2, depth_multiplier=2, padding="same"),
        expect_ops=("DEPTHWISE_CONV_2D",),
    ),
    Case("dense_per_channel", (24,), lambda k: k.layers.Dense(10), expect_ops=("FULLY_CONNECTED",)),
    Case(
        "dense_per_tensor_relu",
        (24,),
        lambda k: k.layers.Dense(10, activation="relu"),
        per_tensor_dense=True,
        expect_ops=("FULLY_CONNECTED",),
    ),
    Case("dense_keep_num_dims", (20, 6), lambda k: k.layers.Dense(5), expect_ops=("FULLY_CONNECTED",)),
    # the device family's shapes: 16 -> 16 ReLU (output_zp = act_min = -128: no sign term, no clamp), 16 -> 3
    Case("dense_16_relu", (16,), lambda k: k.layers.Dense(16, activation="relu"), expect_ops=("FULLY_CONNECTED",)),
    Case("dense_16_to_3", (16,), lambda k: k.layers.Dense(3), expect_ops=("FULLY_CONNECTED",)),
    Case("avgpool1d", (40, 6), lambda k: k.layers.AveragePooling1D(2), expect_ops=("AVERAGE_POOL_2D",)),
    Case(
        "avgpool2d_2x1",
        (12, 10, 8),
        lambda k: k.layers.AveragePooling2D((2, 1)),
        expect_ops=("AVERAGE_POOL_2D",),
    ),
    Case(
        "avgpool1d_same_partial",
        (41, 6),
        lambda k: k.layers.AveragePooling1D(3, strides=2, padding="same"),
        expect_ops=("AVERAGE_POOL_2D",),
    ),
    Case(
        "maxpool1d_same",
        (41, 6),
        lambda k: k.layers.MaxPooling1D(3, padding="same"),
        expect_ops=("MAX_POOL_2D",),
    ),
    Case(
        "maxpool2d",
        (12, 10, 3),
        lambda k: k.layers.MaxPooling2D((2, 3), strides=(2, 2)),
        expect_ops=("MAX_POOL_2D",),
    ),
    Case(
        "mean_rescale",
        (30, 8),
        _seq(lambda k: k.layers.Conv1D(8, 3, activation="relu"), lambda k: k.layers.GlobalAveragePooling1D()),
        expect_ops=("MEAN",),
    ),
    Case("mean_of_input", (30, 8), lambda k: k.layers.GlobalAveragePooling1D(), expect_ops=("MEAN",)),
    Case(
        "mean_keepdims",
        (30, 8),
        _seq(lambda k: k.layers.Conv1D(8, 3), lambda k: k.layers.GlobalAveragePooling1D(keepdims=True)),
        expect_ops=("MEAN",),
    ),
    Case("mean_2d", (12, 10, 3), lambda k: k.layers.GlobalAveragePooling2D(), expect_ops=("MEAN",)),
    Case("add_residual", (40, 6), _residual, expect_ops=("ADD",)),
    Case("add_relu", (40, 6), _seq(_residual, lambda k: k.layers.ReLU()), expect_ops=("ADD",)),
    Case(
        "leaky_relu_01",
        (24,),
        _seq(lambda k: k.layers.Dense(16), lambda k: k.layers.LeakyReLU(0.1)),
        expect_ops=("LEAKY_RELU",),
    ),
    Case(
        "leaky_relu_03",
        (30, 4),
        _seq(lambda k: k.layers.Conv1D(6, 3), lambda k: k.layers.LeakyReLU(0.3)),
        expect_ops=("LEAKY_RELU",),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_op_bit_exact_with_tflm(case: Case) -> None:
    tfl = tflite_of(case)
    ops = tflite_ops(tfl)
    for op in case.expect_ops:
        assert op in ops, f"the converter no longer emits {op} for {case.name}: {ops}"
    check_bit_exact(tfl)


def _reshape_quantize_tflite() -> bytes:
    """EXPAND_DIMS -> AVERAGE_POOL_2D -> SQUEEZE -> QUANTIZE (int8 -> int8): ops Keras models rarely emit."""
    fb = schema()
    pool = fb.Pool2DOptionsT()
    pool.padding, pool.strideW, pool.strideH, pool.filterWidth, pool.filterHeight = (
        fb.Padding.VALID,
        2,
        1,
        2,
        1,
    )
    squeeze = fb.SqueezeOptionsT()
    squeeze.squeezeDims = [1]
    tensors = [
        TensorSpec((1, 16, 4), scale=0.05, zero_point=-7),
        TensorSpec((), dtype="int32", data=np.array(1, dtype=np.int32)),
        TensorSpec((1, 1, 16, 4), scale=0.05, zero_point=-7),
        TensorSpec((1, 1, 8, 4), scale=0.05, zero_point=-7),
        TensorSpec((1, 8, 4), scale=0.05, zero_point=-7),
        TensorSpec((1, 8, 4), scale=0.0731, zero_point=12),
    ]
    ops = [
        OpSpec("EXPAND_DIMS", [0, 1], [2], ("ExpandDimsOptions", fb.ExpandDimsOptionsT())),
        OpSpec("AVERAGE_POOL_2D", [2], [3], ("Pool2DOptions", pool)),
        OpSpec("SQUEEZE", [3], [4], ("SqueezeOptions", squeeze)),
        OpSpec("QUANTIZE", [4], [5]),
    ]
    return build_tflite(tensors, ops, [0], [5])


def _avgpool_tflite(activation: int) -> bytes:
    """AVERAGE_POOL_2D 1 x 2 / 2 with a fused activation (the converter does not fuse one into pooling)."""
    fb = schema()
    pool = fb.Pool2DOptionsT()
    pool.padding, pool.strideW, pool.strideH, pool.filterWidth, pool.filterHeight = fb.Padding.VALID, 2, 1, 2, 1
    pool.fusedActivationFunction = activation
    tensors = [
        TensorSpec((1, 1, 16, 6), scale=0.02, zero_point=-5),
        TensorSpec((1, 1, 8, 6), scale=0.02, zero_point=-5),
    ]
    return build_tflite(tensors, [OpSpec("AVERAGE_POOL_2D", [0], [1], ("Pool2DOptions", pool))], [0], [1])


def _mean_tflite(shape: tuple[int, ...], axes: list[int], keep: bool, out_q: tuple[float, int]) -> bytes:
    fb = schema()
    opts = fb.ReducerOptionsT()
    opts.keepDims = keep
    resolved = [a % len(shape) for a in axes]
    out_shape = tuple(1 if i in resolved else d for i, d in enumerate(shape) if keep or i not in resolved)
    tensors = [
        TensorSpec(shape, scale=0.04, zero_point=-9),
        TensorSpec((len(axes),), dtype="int32", data=np.array(axes, dtype=np.int32)),
        TensorSpec(out_shape, scale=out_q[0], zero_point=out_q[1]),
    ]
    return build_tflite(tensors, [OpSpec("MEAN", [0, 1], [2], ("ReducerOptions", opts))], [0], [2])


def _add_tflite(activation: int) -> bytes:
    """ADD(x, QUANTIZE(x)): two operands of different scales from the single model input."""
    fb = schema()
    opts = fb.AddOptionsT()
    opts.fusedActivationFunction = activation
    tensors = [
        TensorSpec((1, 30, 4), scale=0.05, zero_point=3),
        TensorSpec((1, 30, 4), scale=0.083, zero_point=-10),
        TensorSpec((1, 30, 4), scale=0.11, zero_point=5),
    ]
    ops = [OpSpec("QUANTIZE", [0], [1]), OpSpec("ADD", [0, 1], [2], ("AddOptions", opts))]
    return build_tflite(tensors, ops, [0], [2])


def _leaky_tflite(alpha: float) -> bytes:
    fb = schema()
    opts = fb.LeakyReluOptionsT()
    opts.alpha = alpha
    tensors = [
        TensorSpec((1, 64), scale=0.05, zero_point=3),
        TensorSpec((1, 64), scale=0.031, zero_point=-20),
    ]
    return build_tflite(tensors, [OpSpec("LEAKY_RELU", [0], [1], ("LeakyReluOptions", opts))], [0], [1])


def _conv_tflite(
    activation: int, out_q: tuple[float, int], in_shape: tuple[int, ...] = (1, 1, 20, 6), oc: int = 8
) -> bytes:
    """CONV_2D (1 x 3 kernel, SAME) with random int8 weights and int32 biases, per-tensor weight scale, and
    a chosen fused activation and output quantization: activation ranges narrower than int8 (the converter
    only emits [zp, 127] for ReLU-style outputs) and multipliers >= 1 (a left shift)."""
    fb = schema()
    rng = np.random.default_rng(activation + 7)
    c = in_shape[-1]
    opts = fb.Conv2DOptionsT()
    opts.padding, opts.strideW, opts.strideH = fb.Padding.SAME, 1, 1
    opts.dilationWFactor, opts.dilationHFactor = 1, 1
    opts.fusedActivationFunction = activation
    weights = rng.integers(-127, 128, size=(oc, 1, 3, c)).astype(np.int8)
    in_scale, w_scale = 0.05, 0.02
    tensors = [
        TensorSpec(in_shape, scale=in_scale, zero_point=3),
        TensorSpec(weights.shape, scale=w_scale, data=weights),
        TensorSpec((oc,), dtype="int32", scale=in_scale * w_scale, data=rng.integers(-3000, 3000, size=oc)),
        TensorSpec((*in_shape[:-1], oc), scale=out_q[0], zero_point=out_q[1]),
    ]
    return build_tflite(tensors, [OpSpec("CONV_2D", [0, 1, 2], [3], ("Conv2DOptions", opts))], [0], [3])


def _fc_tflite(activation: int, out_q: tuple[float, int], n_in: int = 16, n_out: int = 7) -> bytes:
    """FULLY_CONNECTED with random int8 weights and int32 biases (per-tensor weight scale), a chosen fused
    activation and output quantization: the Cortex-M4 blocks' variants (sign term or not, act_min clamp,
    act_max afterwards), 1-3 channel tails, and multipliers small enough (right shift > 16) that the bounded
    blocks hand the row to TFLM's general arithmetic."""
    fb = schema()
    rng = np.random.default_rng(activation + 11 + n_in + n_out)
    opts = fb.FullyConnectedOptionsT()
    opts.fusedActivationFunction = activation
    weights = rng.integers(-127, 128, size=(n_out, n_in)).astype(np.int8)
    in_scale, w_scale = 0.05, 0.02
    tensors = [
        TensorSpec((1, n_in), scale=in_scale, zero_point=-5),
        TensorSpec(weights.shape, scale=w_scale, data=weights),
        TensorSpec((n_out,), dtype="int32", scale=in_scale * w_scale, data=rng.integers(-3000, 3000, size=n_out)),
        TensorSpec((1, n_out), scale=out_q[0], zero_point=out_q[1]),
    ]
    return build_tflite(
        tensors, [OpSpec("FULLY_CONNECTED", [0, 1, 2], [3], ("FullyConnectedOptions", opts))], [0], [3]
    )


#: Graphs built directly: cases the converter does not produce from Keras (MEAN with equal input and output
#: quantization -- TFLM still rescales there, it does not divide the raw sum --, 4-D MEAN, QUANTIZE
#: int8 -> int8, EXPAND_DIMS / SQUEEZE) and single-op versions of the chained cases.
HANDBUILT = {
    "reshapes_pool_quantize": _reshape_quantize_tflite,
    "mean_equal_quant_3d": lambda: _mean_tflite((1, 8, 4), [1], False, (0.04, -9)),
    "mean_equal_quant_4d_keepdims": lambda: _mean_tflite((1, 4, 5, 3), [1, 2], True, (0.04, -9)),
    "mean_rescale_4d": lambda: _mean_tflite((1, 4, 5, 3), [1, 2], False, (0.013, 21)),
    "mean_rescale_negative_axis": lambda: _mean_tflite((1, 9, 6), [-2], True, (0.021, -100)),
    "add_quantized_operand": lambda: _add_tflite(0),
    "add_quantized_operand_relu": lambda: _add_tflite(1),
    "leaky_relu_0.1": lambda: _leaky_tflite(0.1),
    "leaky_relu_0.3": lambda: _leaky_tflite(0.3),
    "avgpool_relu_n1_to_1": lambda: _avgpool_tflite(2),  # [-55, 45]
    "conv_relu6_narrow": lambda: _conv_tflite(3, (0.1, -128)),  # act_max -68
    "conv_relu_n1_to_1": lambda: _conv_tflite(2, (0.01, 0)),  # [-100, 100]
    "conv_left_shift": lambda: _conv_tflite(0, (2e-5, 0)),  # multiplier 50: a positive shift
    "conv_right_shift_16": lambda: _conv_tflite(0, (100.0, 0)),  # the M4 fast path's requantization block 16
    "conv_right_shift_22": lambda: _conv_tflite(0, (8000.0, 0)),  # past its last block (21): general blocks
    "dense_relu6_narrow_tail3": lambda: _fc_tflite(3, (0.1, -128)),  # 16 -> 7, act_max -68
    "dense_relu_n1_to_1_tail2": lambda: _fc_tflite(2, (0.01, 0), 13, 6),  # [-100, 100], 13 inputs
    "dense_right_shift_20": lambda: _fc_tflite(0, (1000.0, 0), 16, 5),  # multiplier ~1e-6
    "dense_left_shift": lambda: _fc_tflite(0, (2e-5, 0), 16, 5),  # multiplier 50: the general path
    "dense_tail1": lambda: _fc_tflite(0, (0.5, 7), 8, 9),
    "dense_relu_zp_n20": lambda: _fc_tflite(1, (0.05, -20), 16, 8),  # act_min = output_zp = -20: clamp, no sign term
    "dense_2out_direct": lambda: _fc_tflite(0, (0.05, 9), 16, 2),  # 2 outputs: the M4 path skips the widened row
    "dense_2out_direct_relu": lambda: _fc_tflite(1, (0.05, -128), 12, 2),
    "dense_2out_direct_right_shift_20": lambda: _fc_tflite(0, (1000.0, 0), 16, 2),  # then widens for TFLM's arithmetic
    "dense_2out_odd_depth": lambda: _fc_tflite(0, (0.05, 9), 13, 2),  # padded row: widened as before
}


@pytest.mark.parametrize("name", list(HANDBUILT))
def test_handbuilt_bit_exact_with_tflm(name: str) -> None:
    check_bit_exact(HANDBUILT[name]())


@pytest.mark.qemu
@pytest.mark.parametrize("name", [c.name for c in CASES] + list(HANDBUILT))
def test_bit_exact_on_cortex_m4_dsp_path(name: str) -> None:
    """The same through the Cortex-M4F runner (SMLAD kernels: the fast path's unrolled 2 x 2 blocks and
    their variants, the general aligned 2 x 2 blocks, unaligned odd-channel blocks, multi-row windows,
    depthwise, fully-connected rows) under QEMU."""
    tfl = HANDBUILT[name]() if name in HANDBUILT else tflite_of(next(c for c in CASES if c.name == name))
    check_bit_exact(tfl, "qemu")


#: Shapes that show what the Cortex-M4 kernels cost away from the device family's small layers: the longest
#: window the conv fast path takes (4 taps x 64 channels = 128 int16 pairs: the unrolled steps and column copy
#: entered at their first instruction) and fully-connected layers with a long row or many outputs. MAC per
#: instruction floors (measured: see core/nn/README.md, "Why conv stays below 1.6 and FC below 1.0").
CEILINGS = {
    "conv1d_window128_relu": (
        Case("conv1d_window128_relu", (62, 64), lambda k: k.layers.Conv1D(16, 4, padding="same", activation="relu")),
        1.40,
    ),
    "dense_256_to_16": (Case("dense_256_to_16", (256,), lambda k: k.layers.Dense(16)), 0.58),
    "dense_16_to_64_relu": (Case("dense_16_to_64_relu", (16,), lambda k: k.layers.Dense(64, activation="relu")), 0.36),
}


@pytest.mark.qemu
@pytest.mark.parametrize("name", list(CEILINGS))
def test_m4_kernel_ceilings(name: str) -> None:
    """Bit-exact on the Cortex-M4 DSP path, and at least the given MAC per executed instruction (QEMU -icount);
    with $DYSAN_NN_CEILING_JSON set, the measured figure is appended there (the README's bound table)."""
    import json
    import os

    case, floor = CEILINGS[name]
    tfl = tflite_of(case)
    image = mi.image_from_tflite(tfl)
    x = int8_inputs(tfl, 10)
    res = run_image(image.data, x, "qemu", profile=True)
    assert res.rc == 0, res.stdout
    assert_same(tflm_run(tfl, x), res.outputs, "qemu")
    op = max(res.profile(len(x))["ops"], key=lambda o: o["macs"])
    mpi = op["macs"] / op["instructions"]
    out = os.environ.get("DYSAN_NN_CEILING_JSON")
    if out:
        with open(out, "a") as f:
            f.write(json.dumps({"case": name, "macs": op["macs"], "instructions": round(op["instructions"]),
                                "macs_per_instruction": round(mpi, 3)}) + "\n")
    assert mpi >= floor, (name, op)


_SANITIZED = [
    "conv1d_dilated_same_relu",
    "conv2d_odd_window_relu",
    "conv2d_stride_same_relu6",
    "depthwise2d_dm2_stride",
    "avgpool1d_same_partial",
    "mean_rescale",
    "add_residual",
    "dense_keep_num_dims",
    "leaky_relu_01",
]


@pytest.mark.parametrize("name", _SANITIZED)
def test_kernels_clean_under_sanitizers(name: str) -> None:
    """Valid images through the ASan/UBSan runner: no out-of-bounds access or undefined arithmetic, and
    still bit-exact."""
    check_bit_exact(tflite_of(next(c for c in CASES if c.name == name)), "asan", n=40)


_TF_REF = [c.name for c in CASES if c.name not in CHAINED] + list(HANDBUILT)


@pytest.mark.parametrize("name", _TF_REF)
def test_tflm_within_one_lsb_of_tf_reference(name: str) -> None:
    tfl = HANDBUILT[name]() if name in HANDBUILT else tflite_of(next(c for c in CASES if c.name == name))
    x = int8_inputs(tfl)
    diff = np.abs(tflm_run(tfl, x).astype(np.int32) - tf_reference_run(tfl, x).astype(np.int32))
    assert diff.max() <= 1, f"{name}: TFLM and TF reference differ by {diff.max()} LSB"


def test_reshapes_alias_their_input() -> None:
    image = mi.image_from_tflite(_reshape_quantize_tflite())
    assert [op.kind for op in image.ops] == ["AVERAGE_POOL_2D", "QUANTIZE"]  # no copies for the reshapes
    ed = ImageEditor(image.data)
    off = {t: ed.tensor(i, "arena_off") for i, t in enumerate(image.tensor_ids)}
    assert off[0] == off[2] and off[3] == off[4] and off[4] != off[5]


def test_unsupported_op_is_named() -> None:
    case = Case("softmax", (8,), _seq(lambda k: k.layers.Dense(4), lambda k: k.layers.Softmax()))
    with pytest.raises(ModelFormatError, match="SOFTMAX"):
        read_tflite(tflite_of(case))


def test_corrupt_tflite_is_a_clean_error() -> None:
    tfl = tflite_of(CASES[0])
    for bad in (b"", b"junk" * 10, tfl[: len(tfl) // 2], tfl[:8] + bytes(len(tfl) - 8)):
        with pytest.raises(ModelFormatError):
            mi.image_from_tflite(bad)


def test_float_and_unquantized_activations_are_rejected() -> None:
    floats = [TensorSpec((1, 4), dtype="float32"), TensorSpec((1, 4), scale=0.1)]
    with pytest.raises(ModelFormatError, match="float32"):
        read_tflite(build_tflite(floats, [OpSpec("QUANTIZE", [0], [1])], [0], [1]))
    unquantized = [TensorSpec((1, 4)), TensorSpec((1, 4), scale=0.1)]
    with pytest.raises(ModelFormatError, match="scale"):
        read_tflite(build_tflite(unquantized, [OpSpec("QUANTIZE", [0], [1])], [0], [1]))


# ---------------------------------------------------------------------------------------------------------
# Prepare arithmetic and the arena plan


def test_quantize_multiplier_matches_tflm_rules() -> None:
    assert mi.quantize_multiplier(0.5) == (1 << 30, 0)
    assert mi.quantize_multiplier(1.0) == (1 << 30, 1)
    assert mi.quantize_multiplier(0.0) == (0, 0)
    assert mi.quantize_multiplier(2.0**-40) == (0, 0)  # shift < -31 flushes to zero
    assert mi.quantize_multiplier(1.0 - 2.0**-40) == (1 << 30, 1)  # rounds up to 2^31: halved, shift + 1
    m, s = mi.quantize_multiplier(0.1)
    assert s == -3 and abs(m / 2**31 * 2.0**s - 0.1) < 1e-9
    with pytest.raises(ModelFormatError):
        mi.quantize_multiplier(-0.5)


def test_padding_matches_tflm() -> None:
    assert mi.out_size("SAME", 125, 5, 1, 2) == 125 and mi.padding_before_after(1, 2, 125, 5, 125) == (4, 4)
    assert mi.out_size("SAME", 41, 3, 2) == 21 and mi.padding_before_after(2, 1, 41, 3, 21) == (1, 1)
    assert mi.out_size("SAME", 40, 4, 3) == 14 and mi.padding_before_after(3, 1, 40, 4, 14) == (1, 2)
    assert mi.out_size("VALID", 125, 5, 2) == 61 and mi.padding_before_after(2, 1, 125, 5, 61) == (0, 0)


def test_arena_plan_never_overlaps_live_buffers() -> None:
    rng = np.random.default_rng(7)
    for _ in range(200):
        bufs = []
        for _ in range(int(rng.integers(1, 12))):
            a, b = sorted(rng.integers(-1, 10, size=2))
            bufs.append(mi.Buffer(int(rng.integers(1, 5000)), int(a), int(b)))
        peak = mi.plan_arena(bufs)
        for i, p in enumerate(bufs):
            assert p.offset % mi.ALIGN == 0 and p.offset + p.size <= peak
            for q in bufs[i + 1 :]:
                if p.start <= q.end and q.start <= p.end:
                    assert p.offset + p.size <= q.offset or q.offset + q.size <= p.offset
        assert peak >= max(b.size for b in bufs)


def test_generated_format_header_is_fresh() -> None:
    rel = "firmware/core/nn/dysan_nn_format.h"
    assert (REPO / rel).read_text() == render(rel), "run `dysan codegen`"


# ---------------------------------------------------------------------------------------------------------
# The loader never trusts an image


def _image_of(name: str) -> bytes:
    return mi.image_from_tflite(tflite_of(next(c for c in CASES if c.name == name))).data


def _load_code(image: bytes, kind: str = "host") -> int:
    res = run_image(image, np.zeros((1, 1), np.int8), kind, info=True)
    if res.rc == 0:
        return 0
    assert res.rc == 2, f"runner crashed or failed (rc {res.rc}):\n{res.stdout}"
    return int(res.stdout.split()[1])


def _corruptions(image: bytes) -> list[tuple[str, bytes, int]]:
    """(what, corrupted image, expected DYSAN_NN_ERR_*) for an image whose op 0 is a convolution."""
    e = lambda: ImageEditor(image)  # noqa: E731
    conv = lambda ed, name, v: ed.set_param(0, "CONV", name, v).bytes()  # noqa: E731
    n_t = e().header("n_tensors")
    return [
        ("empty", b"", -2),
        ("header only", image[: mi.HEADER_SIZE - 1], -2),
        ("truncated body", image[:-4], -2),
        ("bad magic", e().set_header("magic", 0x12345678).bytes(), -3),
        ("bad version", e().set_header("version", 99).bytes(), -4),
        ("header flags", e().set_header("flags", 1).bytes(), -5),
        ("tensor table outside", e().set_header("tensors_off", len(image)).bytes(), -5),
        ("op table overlaps tensors", e().set_header("ops_off", e().header("tensors_off")).bytes(), -5),
        ("data section past the end", e().set_header("data_size", len(image)).bytes(), -5),
        ("too many tensors", e().set_header("n_tensors", 0xFFFF).bytes(), -5),
        ("input id", e().set_header("input_tensor", n_t).bytes(), -6),
        ("tensor dim 0", e().set_tensor(0, "dim1", 0).bytes(), -6),
        ("tensor rank 5", e().set_tensor(0, "rank", 5).bytes(), -6),
        ("tensor outside arena", e().set_tensor(0, "arena_off", 0x7FFFFFF0).bytes(), -6),
        ("oversized shape", e().set_tensor(0, "dim2", 0xFFFF).set_tensor(0, "dim3", 0xFFFF).bytes(), -6),
        ("op kind", e().set_op(0, "kind", 99).bytes(), -7),
        ("op kind 0", e().set_op(0, "kind", 0).bytes(), -7),
        ("unknown op flag", e().set_op(0, "flags", 2).bytes(), -7),
        ("op tensor id", e().set_op(0, "output", n_t + 3).bytes(), -7),
        ("op input count", e().set_op(0, "n_inputs", 2).bytes(), -7),
        ("params outside", e().set_op(0, "params_off", len(image) - 8).bytes(), -5),
        ("params length", e().set_op(0, "params_len", 8).bytes(), -5),
        ("params misaligned", e().set_op(0, "params_off", e().op(0, "params_off") + 2).bytes(), -5),
        ("weights outside", conv(e(), "weights_off", len(image)), -5),
        ("bias before data", conv(e(), "bias_off", 0), -5),
        ("weights row short", conv(e(), "weights_row", 0), -9),
        ("stride 0", conv(e(), "stride_w", 0), -9),
        ("negative padding", conv(e(), "pad_left", -1), -9),
        ("negative multipliers", conv(e(), "mult_off", e().param(0, "CONV", "shift_off")), -9),
        ("activation bound outside int8", conv(e(), "act_min", 200), -9),
        ("kernel wider than padded input", conv(e(), "kernel_w", 400), -8),
        ("channels disagree", conv(e(), "in_channels", e().param(0, "CONV", "in_channels") + 1), -8),
        ("scratch too small", e().set_op(0, "scratch_len", e().op(0, "scratch_len") - 4).bytes(), -10),
        ("scratch outside arena", e().set_op(0, "scratch_off", e().header("arena_size")).bytes(), -10),
        (
            "output overlaps input",
            e().set_tensor(e().op(0, "output"), "arena_off", 0).set_tensor(e().op(0, "input0"), "arena_off", 0).bytes(),
            -10,
        ),
    ]


@pytest.mark.parametrize("kind", ["host", "asan"])
def test_malformed_images_are_rejected(kind: str) -> None:
    image = _image_of("conv1d_same_relu")
    assert _load_code(image, kind) == 0
    for what, bad, code in _corruptions(image):
        assert _load_code(bad, kind) == code, what


def test_flags_only_on_convolution_layouts() -> None:
    image = _image_of("add_residual")
    ed = ImageEditor(image)
    assert ed.op(0, "flags") == mi.OP_FLAGS["ACC_BOUNDED"]  # a small conv: accumulators stay below 2^30
    add = next(i for i in range(ed.header("n_ops")) if ed.op(i, "kind") == mi.OP_KINDS["ADD"])
    assert _load_code(ImageEditor(image).set_op(add, "flags", mi.OP_FLAGS["ACC_BOUNDED"]).bytes()) == -7


def test_random_corruption_never_crashes_under_sanitizers() -> None:
    """Byte flips and truncations of a whole-family image: every run ends in a clean accept or reject (ASan
    and UBSan abort the runner on any out-of-bounds access or undefined arithmetic); accepted images run."""
    tfl = tflite_of(next(c for c in CASES if c.name == "add_residual"))
    image = mi.image_from_tflite(tfl).data
    x = int8_inputs(tfl, 2).reshape(2, -1)
    rng = np.random.default_rng(3)
    outcomes = {0: 0, 2: 0, 3: 0}
    for i in range(120):
        bad = bytearray(image)
        if i % 10 == 0:
            bad = bad[: int(rng.integers(0, len(bad)))]
        else:
            for _ in range(int(rng.integers(1, 4))):
                pos = int(rng.integers(0, mi.HEADER_SIZE + 4 * mi.OP_SIZE if i % 2 else len(bad)))
                bad[pos % len(bad)] ^= 1 << int(rng.integers(0, 8))
        res = run_image(bytes(bad), x, "asan")
        assert res.rc in outcomes, f"mutation {i}: rc {res.rc}\n{res.stdout}"
        assert "runtime error" not in res.stdout and "Sanitizer" not in res.stdout, res.stdout
        outcomes[res.rc] += 1
    assert outcomes[2] > 0 and outcomes[0] > 0  # both paths were exercised


def test_arena_too_small_is_an_error() -> None:
    tfl = tflite_of(next(c for c in CASES if c.name == "conv1d_same_relu"))
    image = mi.image_from_tflite(tfl)
    x = int8_inputs(tfl, 2)
    res = run_image(image.data, x, "host", arena=image.arena_bytes - 4)
    assert res.rc == 3 and "invoke_error -10" in res.stdout
    res = run_image(image.data, x, "host", arena=image.arena_bytes)
    assert res.rc == 0
    assert_same(tflm_run(tfl, x), res.outputs, "exact arena")


def test_scratch_sizes_match_the_c_loader() -> None:
    """Python's scratch formula equals the C loader's requirement: the exporter's size loads, 4 bytes less
    (sizes are multiples of 4) does not."""
    for name in (
        "conv1d_same_relu",
        "conv1d_dilated_same_relu",
        "conv1d_dilated3_odd_in",
        "conv1d_even_in_odd_out",
        "conv2d_odd_window_relu",
        "conv1d_wide_window",
        "depthwise2d_dm2_stride",
        "dense_keep_num_dims",
        "add_residual",
    ):
        image = _image_of(name)
        ed = ImageEditor(image)
        assert _load_code(image) == 0
        for i in range(ed.header("n_ops")):
            if ed.op(i, "scratch_len"):
                assert ed.op(i, "scratch_len") % 4 == 0
                short = ImageEditor(image).set_op(i, "scratch_len", ed.op(i, "scratch_len") - 4).bytes()
                assert _load_code(short) == -10, f"{name} op {i}"


def test_image_layout_is_aligned_and_self_describing() -> None:
    image = mi.image_from_tflite(_reshape_quantize_tflite())
    ed = ImageEditor(image.data)
    assert ed.header("image_size") == len(image.data) and len(image.data) % 4 == 0
    assert ed.header("header_size") == mi.HEADER_SIZE
    for i in range(ed.header("n_ops")):
        assert ed.op(i, "params_off") % 4 == 0 and ed.op(i, "params_off") >= ed.header("data_off")
    assert struct.unpack_from("<I", image.data, 0)[0] == mi.MAGIC and image.data[:4] == b"DYNN"


# ---------------------------------------------------------------------------------------------------------
# The CMSIS-NN comparison of `dysan bench-firmware` (dysan.bench.kernels): its parsing and arithmetic. The
# benchmark itself needs ../shared/vendor and QEMU and runs in `make bench-firmware`, not here.

_BENCH_OUT = """calibration instructions 4000000 ticks 100000
op 0 kind 1 macs 60000 ours 150000 cmsis 600000 match 1 fn arm_convolve_wrapper_s8
op 1 kind 6 macs 0 ours 400 cmsis -1 match -1 fn none
op 2 kind 3 macs 256 ours 1200 cmsis 1000 match 1 fn arm_fully_connected_wrapper_s8
ok 5
"""


def test_kernel_bench_parsing_and_ratios() -> None:
    from dysan.bench import kernels

    ops = kernels.parse_output(_BENCH_OUT)
    # 40 instructions per tick, summed over 5 inputs -> per inference
    assert [op["ours"] for op in ops] == [1_200_000, 3_200, 9_600]
    assert ops[1]["cmsis"] is None and ops[1]["match"] is None and ops[0]["match"] is True
    rep = kernels.summarize({"S": ops})
    conv, fc = rep["conv"], rep["fc"]
    assert conv["ours_instructions"] == 1_200_000 and conv["cmsis_instructions"] == 4_800_000
    assert conv["ratio"] == 0.25 and conv["ours_macs_per_instruction"] == 0.05
    assert fc["ratio"] == 1.2 and fc["ours_macs_per_instruction"] == round(256 / 9_600, 3)
    # the total compares only the ops CMSIS-NN implements; MEAN is counted apart
    assert rep["total"]["ours_instructions"] == 1_209_600 and rep["ours_only_instructions"] == 3_200
    assert rep["total"]["ratio"] == round(1_209_600 / 4_808_000, 3)
    assert rep["targets"]["total_ratio_vs_cmsis"]["ok"] and not rep["targets"]["conv_macs_per_instruction"]["ok"]
    assert rep["all_match"]
    with pytest.raises(DysanError):
        kernels.parse_output("op 0 kind 1 macs 1 ours 1 cmsis 1 match 1 fn x\n")  # no calibration / ok line


def test_kernel_bench_skips_without_vendor(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from dysan.bench import kernels

    monkeypatch.setenv("DYSAN_VENDOR_TFLM", str(tmp_path / "absent.tar.xz"))
    rep = kernels.compare({})
    assert "skipped" in rep and "../shared/vendor is absent" in rep["skipped"]


def test_kernel_bench_reads_input_size() -> None:
    from dysan.bench import kernels

    image = _image_of("conv1d_valid_stride2")
    res = run_image(image, np.zeros((1, 1), np.int8), "host", info=True)
    assert f"input_bytes {kernels.input_bytes(image)}" in res.stdout and kernels.input_bytes(image) == 41 * 6
    with pytest.raises(DysanError):
        kernels.input_bytes(image[:16])


def test_tflm_library_selection() -> None:
    """The TFLM library of the side-by-side benchmark keeps the interpreter core, the kernels of the device
    family's ops and CMSIS-NN's integer sources; it drops tests, unrelated kernels, float CMSIS-NN and signal."""
    from dysan.bench import tflm

    def cmd(src: str) -> str:
        return f"g++ -O2 -c /x/tflite-micro/{src} -o /gen/{src}.o"

    srcs = {
        "tensorflow/lite/micro/micro_interpreter.cc": True,
        "tensorflow/lite/micro/test_helpers.cc": False,
        "tensorflow/lite/micro/kernels/conv.cc": True,
        "tensorflow/lite/micro/kernels/cmsis_nn/fully_connected.cc": True,
        "tensorflow/lite/micro/kernels/svdf.cc": False,
        "tensorflow/lite/micro/tools/make/downloads/cmsis_nn/Source/ConvolutionFunctions/arm_convolve_s8.c": True,
        "tensorflow/lite/micro/tools/make/downloads/cmsis_nn/Source/ConvolutionFunctions/arm_convolve_f32.c": False,
        "tensorflow/lite/micro/tools/make/downloads/cmsis_nn/Source/SVDFunctions/arm_svdf_s8.c": False,
        "signal/src/window.cc": False,
    }
    kept = {src.split("tflite-micro/")[-1] for _, src, _ in tflm.select_commands([cmd(s) for s in srcs] + ["echo"])}
    assert kept == {s for s, keep in srcs.items() if keep}


def test_tflm_bench_parsing() -> None:
    from dysan.bench import tflm

    out = ("calibration instructions 4000000 ticks 100000\narena_used 9000\n"
           "invoke 0 ticks 1000 crc 0000abcd\ninvoke 1 ticks 1100 crc 0000abcd\nok 2\n")
    r = tflm.parse_output(out)
    assert r == {"instructions_per_invoke": 42_000, "arena_used_bytes": 9000, "output_crcs": ["0000abcd"] * 2}
    with pytest.raises(DysanError):
        tflm.parse_output("arena_used 1\nok 0\n")
