"""int8 model image: the bytes the firmware's ``dysan_nn`` interpreter runs (``firmware/core/nn``).

The image is data, not generated code: the device receives model bundles over the (authenticated) radio
link as well as having one compiled in, so one loader must accept both, check every offset, and run
kernels bit-exact with TFLM's reference kernels. Everything TFLM computes in ``Prepare`` is computed here
once (multipliers and shifts, activation ranges, padding) so the device only runs the ``Eval`` arithmetic.

Layout (little-endian, every section and blob 4-byte aligned, offsets from the start of the image)::

    header   HEADER_FIELDS (64 bytes): magic, version, sizes, section offsets, arena size, I/O tensors
    tensors  n_tensors x TENSOR_FIELDS (32 bytes): int8 activations only; shape, arena offset, quantization
    ops      n_ops x OP_FIELDS (32 bytes): kind, tensor ids, params block, scratch region, MACs
    data     params blocks (int32 words, PARAMS[kind]) and blobs: weights int8 [out_ch][row] (row = taps x
             in_ch, zero-padded to a multiple of 4), biases int32 with input_offset x sum(weights) folded
             in, per-channel multipliers int32 and shifts int32

Reshape-like ops (RESHAPE, EXPAND_DIMS, SQUEEZE) are not ops in the image: their output tensor record
points at the same arena bytes as their input. The arena plan (tensor lifetimes -> offsets, greedy
first-fit by size) is computed here, so the device needs no allocator.

The layout constants below are the single definition: :func:`render_c_header` writes
``firmware/core/nn/dysan_nn_format.h`` from them (registered in :mod:`dysan.codegen`).
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import DysanError
from .tflite_graph import Graph, ModelFormatError, Operator, Tensor, read_tflite

# ----------------------------------------------------------------------------------------------------
# Format constants (the single definition; the C header is rendered from these)

MAGIC = 0x4E4E5944  # the bytes "DYNN" read as a little-endian u32
VERSION = 2  # 2: CONV_2D scratch holds the Cortex-M4 fast path's prepared weights (conv_scratch)
ALIGN = 4
MAX_RANK = 4
NO_TENSOR = 0xFFFF
DTYPE_INT8 = 1

HEADER_FIELDS: tuple[tuple[str, str], ...] = (
    ("magic", "I"),
    ("version", "I"),
    ("header_size", "I"),
    ("image_size", "I"),
    ("flags", "I"),
    ("n_tensors", "I"),
    ("tensors_off", "I"),
    ("n_ops", "I"),
    ("ops_off", "I"),
    ("data_off", "I"),
    ("data_size", "I"),
    ("arena_size", "I"),
    ("input_tensor", "I"),
    ("output_tensor", "I"),
    ("total_macs", "I"),
    ("reserved", "I"),
)
TENSOR_FIELDS: tuple[tuple[str, str], ...] = (
    ("dtype", "B"),
    ("rank", "B"),
    ("flags", "H"),
    ("dim0", "H"),
    ("dim1", "H"),
    ("dim2", "H"),
    ("dim3", "H"),
    ("arena_off", "I"),
    ("nbytes", "I"),
    ("zero_point", "i"),
    ("scale", "f"),
    ("reserved", "I"),
)
OP_FIELDS: tuple[tuple[str, str], ...] = (
    ("kind", "H"),
    ("n_inputs", "H"),
    ("input0", "H"),
    ("input1", "H"),
    ("output", "H"),
    ("flags", "H"),
    ("params_off", "I"),
    ("params_len", "I"),
    ("scratch_off", "I"),
    ("scratch_len", "I"),
    ("macs", "I"),
)

#: Op kind ids (never reuse a number: images in flash outlive firmware versions).
OP_KINDS: dict[str, int] = {
    "CONV_2D": 1,
    "DEPTHWISE_CONV_2D": 2,
    "FULLY_CONNECTED": 3,
    "AVERAGE_POOL_2D": 4,
    "MAX_POOL_2D": 5,
    "MEAN": 6,
    "ADD": 7,
    "LEAKY_RELU": 8,
    "QUANTIZE": 9,
}

#: Op flags. ACC_BOUNDED (CONV layout): for every output channel |bias'| + 128 * sum|weights| < 2^30, so no
#: accumulator reaches 2^30 and the Cortex-M requantization may use SMMULR on 2 * acc and a one-add
#: rounding (exact in that range; the device trusts the flag -- a false one gives wrong numbers, never
#: undefined behaviour, like any other wrong weight).
OP_FLAGS: dict[str, int] = {"ACC_BOUNDED": 1}

#: Params block of each layout: int32 words in this order. CONV serves CONV_2D, DEPTHWISE_CONV_2D and
#: FULLY_CONNECTED (a 1x1 convolution over rows); blob fields are image offsets.
PARAMS: dict[str, tuple[str, ...]] = {
    "CONV": (
        "stride_h",
        "stride_w",
        "dilation_h",
        "dilation_w",
        "pad_top",
        "pad_left",
        "pad_bottom",
        "pad_right",
        "kernel_h",
        "kernel_w",
        "in_channels",
        "out_channels",
        "depth_multiplier",
        "input_zp",
        "output_zp",
        "act_min",
        "act_max",
        "weights_off",
        "weights_row",
        "bias_off",
        "mult_off",
        "shift_off",
    ),
    "POOL": ("filter_h", "filter_w", "stride_h", "stride_w", "pad_top", "pad_left", "act_min", "act_max"),
    "MEAN": ("outer", "reduce", "inner", "input_zp", "output_zp", "multiplier", "shift"),
    "ADD": (
        "input1_offset",
        "input2_offset",
        "output_offset",
        "left_shift",
        "input1_multiplier",
        "input1_shift",
        "input2_multiplier",
        "input2_shift",
        "output_multiplier",
        "output_shift",
        "act_min",
        "act_max",
    ),
    "LEAKY_RELU": (
        "input_zp",
        "output_zp",
        "identity_multiplier",
        "identity_shift",
        "alpha_multiplier",
        "alpha_shift",
    ),
    "QUANTIZE": ("input_zp", "output_zp", "multiplier", "shift"),
}
KIND_LAYOUT: dict[str, str] = {
    "CONV_2D": "CONV",
    "DEPTHWISE_CONV_2D": "CONV",
    "FULLY_CONNECTED": "CONV",
    "AVERAGE_POOL_2D": "POOL",
    "MAX_POOL_2D": "POOL",
    "MEAN": "MEAN",
    "ADD": "ADD",
    "LEAKY_RELU": "LEAKY_RELU",
    "QUANTIZE": "QUANTIZE",
}
ALIAS_OPS = frozenset({"RESHAPE", "EXPAND_DIMS", "SQUEEZE"})

#: int16 values after a convolution's padded input that a zero-padded weight tail may read.
CONV_SLACK = 8
#: Longest window (int16 pairs: kernel_h x ceil(kernel_w x in_channels / 2)) of a CONV_2D that the Cortex-M4
#: fast path runs (its unrolled dot product); longer windows take the general path and need no fast region.
CONV_FAST_MAX_PAIRS = 128
#: ADD's scratch: its two rescaled-input lookup tables (256 int32 each).
ADD_SCRATCH = 2 * 256 * 4


def _fmt(fields: tuple[tuple[str, str], ...]) -> str:
    return "<" + "".join(f for _, f in fields)


HEADER_SIZE = struct.calcsize(_fmt(HEADER_FIELDS))
TENSOR_SIZE = struct.calcsize(_fmt(TENSOR_FIELDS))
OP_SIZE = struct.calcsize(_fmt(OP_FIELDS))


def field_offsets(fields: tuple[tuple[str, str], ...]) -> dict[str, tuple[int, str]]:
    """Field name -> (byte offset in the record, struct format letter)."""
    out, pos = {}, 0
    for name, f in fields:
        out[name] = (pos, f)
        pos += struct.calcsize("<" + f)
    return out


# ----------------------------------------------------------------------------------------------------
# TFLM Prepare arithmetic (quantization_util.cc, kernel_util.cc, padding.h)


def round_half_away(x: float) -> int:
    """``TfLiteRound`` (std::round): halves go away from zero."""
    return math.floor(x + 0.5) if x >= 0 else -math.floor(-x + 0.5)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLM ``QuantizeMultiplier``: ``real ~= m * 2^(shift - 31)`` with m in [2^30, 2^31)."""
    if real < 0 or not math.isfinite(real):
        raise ModelFormatError(f"cannot quantize the multiplier {real!r}")
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = round_half_away(q * (1 << 31))
    if q_fixed == 1 << 31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if shift > 30:
        raise ModelFormatError(f"multiplier {real!r} is too large for int32 requantization")
    return q_fixed, shift


def activation_range(activation: str, scale: float, zero_point: int) -> tuple[int, int]:
    """``CalculateActivationRangeQuantized`` for int8 (x / scale in float32, then std::round)."""

    def quant(x: float) -> int:
        return zero_point + round_half_away(float(np.float32(x) / np.float32(scale)))

    lo, hi = -128, 127
    if activation == "NONE":
        return lo, hi
    if activation == "RELU":
        return max(lo, quant(0.0)), hi
    if activation == "RELU6":
        return max(lo, quant(0.0)), min(hi, quant(6.0))
    if activation == "RELU_N1_TO_1":
        return max(lo, quant(-1.0)), min(hi, quant(1.0))
    raise ModelFormatError(f"fused activation {activation} is not supported")


def _trunc_div(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def out_size(padding: str, size: int, filt: int, stride: int, dilation: int = 1) -> int:
    """TFLM ``ComputeOutSize``."""
    eff = (filt - 1) * dilation + 1
    if padding == "SAME":
        return _trunc_div(size + stride - 1, stride)
    if padding == "VALID":
        return _trunc_div(size + stride - eff, stride)
    raise ModelFormatError(f"unknown padding {padding}")


def padding_before_after(stride: int, dilation: int, size: int, filt: int, out: int) -> tuple[int, int]:
    """TFLM ``ComputePaddingWithOffset``: (before, after); the odd pixel goes after."""
    eff = (filt - 1) * dilation + 1
    total = max(0, (out - 1) * stride + eff - size)
    return total // 2, total // 2 + total % 2


# ----------------------------------------------------------------------------------------------------
# Scratch requirements (the C loader computes the same and rejects an op whose scratch is smaller)


def _align(n: int, a: int = ALIGN) -> int:
    return (n + a - 1) // a * a


def conv_scratch(kind: str, p: dict[str, int], in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> int:
    """Bytes of scratch a CONV-layout op needs (``nn_layout`` in dysan_nn_conv.c computes the same).

    Convolutions: the zero-point padded input, split into ``dilation_w`` phase planes so that a dilated
    window row is contiguous, as int16 (the Cortex-M4 SMLAD path; the portable path uses the first half)
    plus ``CONV_SLACK`` spare values; then per output pixel (+ 1) its window offset; then one region used
    by either of two kernels, as large as the larger:

    * the general blocks: the widened weights of a channel pair (int16, interleaved, each window row padded
      to a multiple of 8 taps) and two int32 accumulators per output pixel (+ 1);
    * the Cortex-M4 fast path (CONV_2D with a window of at most ``CONV_FAST_MAX_PAIRS`` int16 pairs, else
      nothing): a weight stream of, per channel pair, an 8-word header (4 accumulator starts, a weight
      pair, the column's address, an entry address), the window's doubled int16 weight pairs and 6
      requantization words, plus an 8-word end; the interleaved window column of a pixel pair (+ 3 pairs
      a 4-pair copy may write past it); two staging rows of ``out_channels + 1`` bytes.

    Depthwise: one padded plane group (+ slack) per channel. Fully connected: the input row widened to
    int16, as long as a weight row.
    """
    if kind == "FULLY_CONNECTED":
        return 2 * p["weights_row"]
    _, h, w, c = in_shape
    hp, wp = h + p["pad_top"] + p["pad_bottom"], w + p["pad_left"] + p["pad_right"]
    dw = p["dilation_w"]
    wq = -(-wp // dw)
    depthwise = kind == "DEPTHWISE_CONV_2D"
    ic = 1 if depthwise else c
    group = dw * hp * wq * ic
    xbytes = _align(2 * c * _align(group + CONV_SLACK, 2)) if depthwise else _align(2 * (group + CONV_SLACK))
    pairs = (p["kernel_w"] * ic + 1) // 2
    npix = out_shape[1] * out_shape[2]
    general = 8 * p["kernel_h"] * _align(pairs, 4) + 8 * (npix + 1)
    fast = 0
    window = p["kernel_h"] * pairs
    if not depthwise and window <= CONV_FAST_MAX_PAIRS:
        cp = (p["out_channels"] + 1) // 2
        fast = 4 * cp * (14 + 2 * window) + 32 + 8 * (window + 3) + 2 * _align(p["out_channels"] + 1)
    return xbytes + 4 * (npix + 1) + max(general, fast)


# ----------------------------------------------------------------------------------------------------
# Lowering: IR operators -> image ops


@dataclass
class ImageOp:
    kind: str
    inputs: tuple[int, ...]  # IR tensor ids (activations)
    output: int
    params: dict[str, int]
    blobs: dict[str, bytes]  # params field (e.g. "weights_off") -> bytes to place in the data section
    scratch: int = 0
    macs: int = 0
    source: int = -1  # index of the TFLite operator
    flags: int = 0


def _q(t: Tensor) -> tuple[float, int]:
    assert t.quant is not None
    return float(t.quant.scale[0]), int(t.quant.zero_point[0])


def _i32(values: Any) -> bytes:
    return np.asarray(values, dtype=np.int64).astype("<i4").tobytes()


def _weights_blob(w: np.ndarray) -> tuple[bytes, int]:
    """[out_ch][k] int8 rows zero-padded to a multiple of 4 bytes (word loads never cross a row)."""
    rows, k = w.shape
    row = _align(max(k, 1))
    buf = np.zeros((rows, row), dtype=np.int8)
    buf[:, :k] = w
    return buf.tobytes(), row


def _per_channel(
    op: Operator, graph: Graph, w: Tensor, n_out: int, in_scale: float, out_scale: float
) -> tuple[list[int], list[int]]:
    assert w.quant is not None
    scales = w.quant.scale
    if scales.size not in (1, n_out):
        raise ModelFormatError(f"op {op.index} ({op.op}): {scales.size} weight scales for {n_out} channels")
    if np.any(w.quant.zero_point != 0):
        raise ModelFormatError(f"op {op.index} ({op.op}): weights must be symmetric (zero point 0)")
    mults, shifts = [], []
    for c in range(n_out):
        s = float(scales[c if scales.size > 1 else 0])
        m, sh = quantize_multiplier(float(in_scale) * s / float(out_scale))
        mults.append(m)
        shifts.append(sh)
    return mults, shifts


def _folded_bias(op: Operator, graph: Graph, w2d: np.ndarray, input_zp: int) -> np.ndarray:
    """bias + input_offset * sum(weights) per channel, wrapped to int32 like the device's accumulator."""
    n_out = w2d.shape[0]
    bias = np.zeros(n_out, dtype=np.int64)
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        b = graph.tensors[op.inputs[2]]
        if b.data is None or b.dtype != "int32" or b.data.size != n_out:
            raise ModelFormatError(f"op {op.index} ({op.op}): bias must be a constant int32 vector of {n_out}")
        bias = b.data.astype(np.int64).reshape(n_out)
    folded = bias + (-input_zp) * w2d.astype(np.int64).sum(axis=1)
    return ((folded + (1 << 31)) % (1 << 32)) - (1 << 31)


def _acc_flags(w2d: np.ndarray, folded_bias: np.ndarray) -> int:
    """OP_FLAGS["ACC_BOUNDED"] when no accumulator can reach 2^30 (int8 inputs are within +-128)."""
    bound = np.abs(folded_bias.astype(np.int64)) + 128 * np.abs(w2d.astype(np.int64)).sum(axis=1)
    return OP_FLAGS["ACC_BOUNDED"] if bool(np.all(bound < (1 << 30))) else 0


def _const_weights(op: Operator, graph: Graph) -> Tensor:
    w = graph.tensors[op.inputs[1]]
    if w.data is None or w.dtype != "int8" or w.quant is None:
        raise ModelFormatError(f"op {op.index} ({op.op}): weights must be constant int8 (dtype {w.dtype})")
    return w


def _lower_conv(op: Operator, graph: Graph) -> ImageOp:
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    w = _const_weights(op, graph)
    depthwise = op.op == "DEPTHWISE_CONV_2D"
    if len(x.shape) != 4 or len(y.shape) != 4 or len(w.shape) != 4:
        raise ModelFormatError(f"op {op.index} ({op.op}): expected 4-D input, output and weights")
    n, h, wd, c = x.shape
    assert w.data is not None
    if depthwise:
        _, kh, kw, oc = w.shape
        dm = int(op.options.get("depth_multiplier", 1)) or 1
        if oc != c * dm:
            dm = oc // c if c and oc % c == 0 else 0
        if dm < 1 or oc != c * dm:
            raise ModelFormatError(f"op {op.index} ({op.op}): {oc} output channels for {c} input channels")
        w2d = np.ascontiguousarray(w.data.reshape(kh * kw, oc).T)  # [oc][kh*kw]
    else:
        oc, kh, kw, wc = w.shape
        dm = 1
        if wc != c:
            raise ModelFormatError(
                f"op {op.index} ({op.op}): weights have {wc} input channels, input {c} "
                "(grouped convolution is not supported)"
            )
        w2d = w.data.reshape(oc, kh * kw * c)
    sh, sw = int(op.options.get("stride_h", 1)), int(op.options.get("stride_w", 1))
    dh, dw = int(op.options.get("dilation_h", 1)), int(op.options.get("dilation_w", 1))
    padding = op.options.get("padding", "VALID")
    oh, ow = out_size(padding, h, kh, sh, dh), out_size(padding, wd, kw, sw, dw)
    if (n, oh, ow, oc) != tuple(y.shape):
        raise ModelFormatError(f"op {op.index} ({op.op}): output shape {list(y.shape)}, expected {[n, oh, ow, oc]}")
    pt, pb = padding_before_after(sh, dh, h, kh, oh)
    pl, pr = padding_before_after(sw, dw, wd, kw, ow)
    in_scale, in_zp = _q(x)
    out_scale, out_zp = _q(y)
    mults, shifts = _per_channel(op, graph, w, oc, in_scale, out_scale)
    lo, hi = activation_range(op.options.get("activation", "NONE"), out_scale, out_zp)
    wblob, row = _weights_blob(w2d)
    p = dict(
        stride_h=sh,
        stride_w=sw,
        dilation_h=dh,
        dilation_w=dw,
        pad_top=pt,
        pad_left=pl,
        pad_bottom=pb,
        pad_right=pr,
        kernel_h=kh,
        kernel_w=kw,
        in_channels=c,
        out_channels=oc,
        depth_multiplier=dm,
        input_zp=in_zp,
        output_zp=out_zp,
        act_min=lo,
        act_max=hi,
        weights_row=row,
    )
    bias = _folded_bias(op, graph, w2d, in_zp)
    blobs = {"weights_off": wblob, "bias_off": _i32(bias), "mult_off": _i32(mults), "shift_off": _i32(shifts)}
    macs = n * oh * ow * oc * kh * kw * (1 if depthwise else c)
    scratch = conv_scratch(op.op, p, x.shape, y.shape)
    return ImageOp(op.op, (x.index,), y.index, p, blobs, scratch, macs, op.index, _acc_flags(w2d, bias))


def _lower_fc(op: Operator, graph: Graph) -> ImageOp:
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    w = _const_weights(op, graph)
    if op.options.get("weights_format", 0) != 0:
        raise ModelFormatError(f"op {op.index} (FULLY_CONNECTED): shuffled weights are not supported")
    if len(w.shape) != 2:
        raise ModelFormatError(f"op {op.index} (FULLY_CONNECTED): weights must be 2-D")
    oc, depth = w.shape
    if x.numel % depth or y.numel != x.numel // depth * oc or y.shape[-1] != oc:
        raise ModelFormatError(
            f"op {op.index} (FULLY_CONNECTED): input {list(x.shape)} / output "
            f"{list(y.shape)} do not match weights {list(w.shape)}"
        )
    assert w.data is not None
    in_scale, in_zp = _q(x)
    out_scale, out_zp = _q(y)
    mults, shifts = _per_channel(op, graph, w, oc, in_scale, out_scale)
    lo, hi = activation_range(op.options.get("activation", "NONE"), out_scale, out_zp)
    w2d = w.data.reshape(oc, depth)
    wblob, row = _weights_blob(w2d)
    p = dict(
        stride_h=1,
        stride_w=1,
        dilation_h=1,
        dilation_w=1,
        pad_top=0,
        pad_left=0,
        pad_bottom=0,
        pad_right=0,
        kernel_h=1,
        kernel_w=1,
        in_channels=depth,
        out_channels=oc,
        depth_multiplier=1,
        input_zp=in_zp,
        output_zp=out_zp,
        act_min=lo,
        act_max=hi,
        weights_row=row,
    )
    bias = _folded_bias(op, graph, w2d, in_zp)
    blobs = {"weights_off": wblob, "bias_off": _i32(bias), "mult_off": _i32(mults), "shift_off": _i32(shifts)}
    macs = x.numel // depth * depth * oc
    scratch = conv_scratch(op.op, p, x.shape, y.shape)
    return ImageOp(op.op, (x.index,), y.index, p, blobs, scratch, macs, op.index, _acc_flags(w2d, bias))


def _lower_pool(op: Operator, graph: Graph) -> ImageOp:
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    if len(x.shape) != 4 or len(y.shape) != 4:
        raise ModelFormatError(f"op {op.index} ({op.op}): expected 4-D input and output")
    if _q(x) != _q(y):
        raise ModelFormatError(f"op {op.index} ({op.op}): input and output quantization differ")
    n, h, wd, c = x.shape
    fh, fw = int(op.options["filter_h"]), int(op.options["filter_w"])
    sh, sw = int(op.options["stride_h"]), int(op.options["stride_w"])
    padding = op.options.get("padding", "VALID")
    oh, ow = out_size(padding, h, fh, sh), out_size(padding, wd, fw, sw)
    if (n, oh, ow, c) != tuple(y.shape):
        raise ModelFormatError(f"op {op.index} ({op.op}): output shape {list(y.shape)}, expected {[n, oh, ow, c]}")
    pt, _ = padding_before_after(sh, 1, h, fh, oh)
    pl, _ = padding_before_after(sw, 1, wd, fw, ow)
    scale, zp = _q(y)
    lo, hi = activation_range(op.options.get("activation", "NONE"), scale, zp)
    p = dict(filter_h=fh, filter_w=fw, stride_h=sh, stride_w=sw, pad_top=pt, pad_left=pl, act_min=lo, act_max=hi)
    return ImageOp(op.op, (x.index,), y.index, p, {}, 0, 0, op.index)


def _lower_mean(op: Operator, graph: Graph) -> ImageOp:
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    axis_t = graph.tensors[op.inputs[1]]
    if axis_t.data is None:
        raise ModelFormatError(f"op {op.index} (MEAN): the axis must be constant")
    rank = len(x.shape)
    axes = sorted({int(a) + rank if int(a) < 0 else int(a) for a in np.asarray(axis_t.data).reshape(-1)})
    if not axes or any(a < 0 or a >= rank for a in axes) or axes != list(range(axes[0], axes[-1] + 1)):
        raise ModelFormatError(f"op {op.index} (MEAN): axes {axes} must be non-empty and contiguous")
    outer = int(np.prod(x.shape[: axes[0]], dtype=np.int64))
    reduce = int(np.prod(x.shape[axes[0] : axes[-1] + 1], dtype=np.int64))
    inner = int(np.prod(x.shape[axes[-1] + 1 :], dtype=np.int64))
    if y.numel != outer * inner or reduce < 1:
        raise ModelFormatError(f"op {op.index} (MEAN): output {list(y.shape)} does not match the reduction")
    (in_scale, in_zp), (out_scale, out_zp) = _q(x), _q(y)
    # reduce_common.cc Prepare, then QuantizedMeanOrSum's fold of 1/n into the multiplier at Eval. The TFLM
    # we verify against takes this path even when input and output quantization are equal (no plain
    # division of the sum), which the tests pin down.
    mult, shift = quantize_multiplier(float(in_scale) / float(out_scale))
    extra = min(reduce.bit_length() - 1, 32, 31 + shift)  # >= 0: QuantizeMultiplier keeps shift >= -31
    mult = (mult << extra) // reduce
    shift -= extra
    p = dict(
        outer=outer,
        reduce=reduce,
        inner=inner,
        input_zp=in_zp,
        output_zp=out_zp,
        multiplier=mult,
        shift=shift,
    )
    return ImageOp(op.op, (x.index,), y.index, p, {}, 0, 0, op.index)


def _lower_add(op: Operator, graph: Graph) -> ImageOp:
    a, b, y = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]], graph.tensors[op.outputs[0]]
    if a.is_const or b.is_const:
        raise ModelFormatError(f"op {op.index} (ADD): constant operands are not supported")
    if a.shape != b.shape or a.shape != y.shape:
        raise ModelFormatError(
            f"op {op.index} (ADD): broadcasting is not supported ({list(a.shape)} + {list(b.shape)})"
        )
    (sa, za), (sb, zb), (sy, zy) = _q(a), _q(b), _q(y)
    left_shift = 20
    twice_max = 2.0 * float(max(np.float32(sa), np.float32(sb)))
    reals = (float(sa) / twice_max, float(sb) / twice_max, twice_max / ((1 << left_shift) * float(sy)))
    if not all(0.0 < r < 1.0 for r in reals):
        raise ModelFormatError(f"op {op.index} (ADD): rescaling factors {reals} are outside (0, 1)")
    (m1, s1), (m2, s2), (mo, so) = (quantize_multiplier(r) for r in reals)
    lo, hi = activation_range(op.options.get("activation", "NONE"), sy, zy)
    p = dict(
        input1_offset=-za,
        input2_offset=-zb,
        output_offset=zy,
        left_shift=left_shift,
        input1_multiplier=m1,
        input1_shift=s1,
        input2_multiplier=m2,
        input2_shift=s2,
        output_multiplier=mo,
        output_shift=so,
        act_min=lo,
        act_max=hi,
    )
    return ImageOp(op.op, (a.index, b.index), y.index, p, {}, ADD_SCRATCH, 0, op.index)


def _lower_leaky_relu(op: Operator, graph: Graph) -> ImageOp:
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    (sx, zx), (sy, zy) = _q(x), _q(y)
    alpha = np.float32(op.options.get("alpha", 0.2))
    if alpha < 0:
        raise ModelFormatError(f"op {op.index} (LEAKY_RELU): negative alpha {float(alpha)}")
    # leaky_relu_common.cc computes both ratios in float32 before widening to double.
    m_alpha, s_alpha = quantize_multiplier(float(np.float32(np.float32(sx) * alpha) / np.float32(sy)))
    m_id, s_id = quantize_multiplier(float(np.float32(sx) / np.float32(sy)))
    p = dict(
        input_zp=zx,
        output_zp=zy,
        identity_multiplier=m_id,
        identity_shift=s_id,
        alpha_multiplier=m_alpha,
        alpha_shift=s_alpha,
    )
    return ImageOp(op.op, (x.index,), y.index, p, {}, 0, 0, op.index)


def _lower_quantize(op: Operator, graph: Graph) -> ImageOp:
    x, y = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    (sx, zx), (sy, zy) = _q(x), _q(y)
    m, s = quantize_multiplier(float(sx) / float(sy))
    p = dict(input_zp=zx, output_zp=zy, multiplier=m, shift=s)
    return ImageOp(op.op, (x.index,), y.index, p, {}, 0, 0, op.index)


_LOWER = {
    "CONV_2D": _lower_conv,
    "DEPTHWISE_CONV_2D": _lower_conv,
    "FULLY_CONNECTED": _lower_fc,
    "AVERAGE_POOL_2D": _lower_pool,
    "MAX_POOL_2D": _lower_pool,
    "MEAN": _lower_mean,
    "ADD": _lower_add,
    "LEAKY_RELU": _lower_leaky_relu,
    "QUANTIZE": _lower_quantize,
}


# ----------------------------------------------------------------------------------------------------
# Arena plan


@dataclass
class Buffer:
    """One arena region: an activation (with its aliases) or one op's scratch."""

    size: int
    start: int  # first op index that needs it (-1: before the first op, i.e. the model input)
    end: int  # last op index that needs it (n_ops: after the last op, i.e. the model output)
    offset: int = -1
    tensors: list[int] = field(default_factory=list)
    scratch_of: int = -1


def plan_arena(buffers: list[Buffer]) -> int:
    """Greedy first-fit by decreasing size: each buffer takes the lowest aligned offset that does not
    overlap a placed buffer live at the same time. Returns the peak (arena bytes)."""
    placed: list[Buffer] = []
    for buf in sorted(buffers, key=lambda b: (-b.size, b.start, b.end)):
        live = sorted((p for p in placed if p.start <= buf.end and buf.start <= p.end), key=lambda p: p.offset)
        offset = 0
        for p in live:
            if offset + buf.size <= p.offset:
                break
            offset = max(offset, _align(p.offset + p.size))
        buf.offset = offset
        placed.append(buf)
    return max((_align(b.offset + b.size) for b in buffers), default=0)


# ----------------------------------------------------------------------------------------------------
# The image


@dataclass
class ModelImage:
    data: bytes
    ops: list[ImageOp]
    tensor_ids: list[int]  # image tensor id -> IR tensor id
    arena_bytes: int
    graph: Graph

    def report(self) -> dict[str, Any]:
        return size_report(self)


def _alias_root(graph: Graph) -> dict[int, int]:
    root: dict[int, int] = {}

    def find(t: int) -> int:
        while root.get(t, t) != t:
            t = root[t]
        return t

    for op in graph.operators:
        if op.op in ALIAS_OPS:
            src, dst = op.inputs[0], op.outputs[0]
            if graph.tensors[src].numel != graph.tensors[dst].numel:
                raise ModelFormatError(f"op {op.index} ({op.op}): element count changes")
            root[find(dst)] = find(src)
    return {t.index: find(t.index) for t in graph.tensors}


def _check_dataflow(graph: Graph, ops: list[ImageOp], root: dict[int, int]) -> None:
    """Every activation an op reads is the model input or an earlier op's output (through reshapes): the
    image has no other way to fill an arena buffer."""
    ready = {root[graph.inputs[0]]}
    for op in graph.operators:
        if op.op in ALIAS_OPS and graph.tensors[op.inputs[0]].is_const:
            raise ModelFormatError(f"op {op.index} ({op.op}): reshaping a constant is not supported")
    for op in ops:
        for tid in op.inputs:
            if root[tid] not in ready:
                raise ModelFormatError(
                    f"op {op.source} ({op.kind}): input {graph.tensors[tid].name!r} is neither the model "
                    "input nor computed by an earlier op"
                )
        ready.add(root[op.output])
    if root[graph.outputs[0]] not in ready:
        raise ModelFormatError("the model output is not computed by any op")


def _check_tensor(t: Tensor) -> None:
    if len(t.shape) > MAX_RANK or any(d < 1 or d > 0xFFFF for d in t.shape):
        raise ModelFormatError(f"tensor {t.name!r}: shape {list(t.shape)} (rank <= {MAX_RANK}, dims 1..65535)")


def build_image(graph: Graph) -> ModelImage:
    """Lower ``graph`` to kernels, plan the arena and pack the image bytes."""
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise ModelFormatError(f"expected one input and one output, got {len(graph.inputs)} and {len(graph.outputs)}")
    model_in, model_out = graph.inputs[0], graph.outputs[0]
    for tid in (model_in, model_out):
        t = graph.tensors[tid]
        if t.dtype != "int8" or t.quant is None:
            raise ModelFormatError(f"model input/output {t.name!r} must be quantized int8 (is {t.dtype})")
    ops = [_LOWER[op.op](op, graph) for op in graph.operators if op.op not in ALIAS_OPS]
    if not ops:
        raise ModelFormatError("the model has no kernel to run (only reshapes)")
    root = _alias_root(graph)
    _check_dataflow(graph, ops, root)

    # Image tensors: every activation an op or the model touches, numbered by first appearance.
    tensor_ids: list[int] = []
    for tid in (model_in, *(t for op in ops for t in (*op.inputs, op.output)), model_out):
        if tid not in tensor_ids:
            tensor_ids.append(tid)
    for tid in tensor_ids:
        _check_tensor(graph.tensors[tid])

    # Lifetimes per alias group, then one buffer per group and per scratch.
    groups: dict[int, Buffer] = {}
    for tid in tensor_ids:
        r = root[tid]
        buf = groups.setdefault(r, Buffer(graph.tensors[tid].numel, len(ops) + 1, -2))
        buf.tensors.append(tid)
    groups[root[model_in]].start = -1
    groups[root[model_out]].end = len(ops)
    for i, op in enumerate(ops):
        for tid in op.inputs:
            b = groups[root[tid]]
            b.end = max(b.end, i)
            b.start = min(b.start, i)
        b = groups[root[op.output]]
        b.start = min(b.start, i)
        b.end = max(b.end, i)
    scratch = [Buffer(op.scratch, i, i, scratch_of=i) for i, op in enumerate(ops) if op.scratch > 0]
    arena = plan_arena([*groups.values(), *scratch])
    offset_of = {tid: groups[root[tid]].offset for tid in tensor_ids}
    scratch_of = {b.scratch_of: b for b in scratch}
    data = _pack(graph, ops, tensor_ids, offset_of, scratch_of, arena)
    return ModelImage(data, ops, tensor_ids, arena, graph)


def _pack(
    graph: Graph,
    ops: list[ImageOp],
    tensor_ids: list[int],
    offset_of: dict[int, int],
    scratch_of: dict[int, Buffer],
    arena: int,
) -> bytes:
    image_id = {tid: i for i, tid in enumerate(tensor_ids)}
    tensors_off = HEADER_SIZE
    ops_off = tensors_off + TENSOR_SIZE * len(tensor_ids)
    data_off = ops_off + OP_SIZE * len(ops)
    data = bytearray()

    def place(blob: bytes) -> int:
        pos = data_off + len(data)
        data.extend(blob)
        data.extend(b"\0" * (_align(len(data)) - len(data)))
        return pos

    op_records = []
    for i, op in enumerate(ops):
        params = dict(op.params)
        for key, blob in op.blobs.items():
            params[key] = place(blob)
        layout = PARAMS[KIND_LAYOUT[op.kind]]
        missing = [k for k in layout if k not in params]
        assert not missing, f"{op.kind}: params {missing} not set"
        words = [params[k] for k in layout]
        for k, v in zip(layout, words, strict=True):
            if not -(1 << 31) <= v < (1 << 32):
                raise ModelFormatError(f"op {op.source} ({op.kind}): {k}={v} does not fit 32 bits")
        block = b"".join(struct.pack("<I" if v >= (1 << 31) else "<i", v) for v in words)
        params_off = place(block)
        sbuf = scratch_of.get(i)
        ins = [image_id[t] for t in op.inputs]
        op_records.append(
            struct.pack(
                _fmt(OP_FIELDS),
                OP_KINDS[op.kind],
                len(ins),
                ins[0],
                ins[1] if len(ins) > 1 else NO_TENSOR,
                image_id[op.output],
                op.flags,
                params_off,
                len(block),
                sbuf.offset if sbuf else 0,
                sbuf.size if sbuf else 0,
                min(op.macs, 0xFFFFFFFF),
            )
        )

    tensor_records = []
    for tid in tensor_ids:
        t = graph.tensors[tid]
        scale, zp = _q(t)
        dims = list(t.shape) + [0] * (MAX_RANK - len(t.shape))
        tensor_records.append(
            struct.pack(_fmt(TENSOR_FIELDS), DTYPE_INT8, len(t.shape), 0, *dims, offset_of[tid], t.numel, zp, scale, 0)
        )
    image_size = data_off + len(data)
    total_macs = min(sum(op.macs for op in ops), 0xFFFFFFFF)
    header = struct.pack(
        _fmt(HEADER_FIELDS),
        MAGIC,
        VERSION,
        HEADER_SIZE,
        image_size,
        0,
        len(tensor_ids),
        tensors_off,
        len(ops),
        ops_off,
        data_off,
        len(data),
        arena,
        image_id[graph.inputs[0]],
        image_id[graph.outputs[0]],
        total_macs,
        0,
    )
    out = header + b"".join(tensor_records) + b"".join(op_records) + bytes(data)
    assert len(out) == image_size and image_size % ALIGN == 0
    return out


def image_from_tflite(tflite: bytes) -> ModelImage:
    """.tflite bytes -> :class:`ModelImage` (raises :class:`ModelFormatError` for unsupported models)."""
    return build_image(read_tflite(tflite))


def size_report(image: ModelImage) -> dict[str, Any]:
    """Flash bytes (the image), arena bytes (peak RAM of activations + scratch), MACs per op and total."""
    ops = [
        {
            "index": i,
            "kind": op.kind,
            "tflite_op": op.source,
            "macs": op.macs,
            "scratch_bytes": op.scratch,
            "output_shape": list(image.graph.tensors[op.output].shape),
        }
        for i, op in enumerate(image.ops)
    ]
    return {
        "flash_bytes": len(image.data),
        "arena_bytes": image.arena_bytes,
        "total_macs": sum(op.macs for op in image.ops),
        "ops": ops,
    }


def c_byte_rows(data: bytes, per_line: int = 16) -> list[str]:
    """The initializer rows of a C ``uint8_t`` array holding ``data`` (each row indented, comma-terminated)."""
    return ["    " + ", ".join(f"0x{b:02x}" for b in data[i : i + per_line]) + ","
            for i in range(0, len(data), per_line)]


def render_c_array(image: bytes, symbol: str) -> str:
    """A C source holding ``image`` as a word-aligned const array (the built-in model of a firmware)."""
    if not symbol.isidentifier():
        raise DysanError(f"{symbol!r} is not a C identifier")
    lines = [
        f"/* dysan_nn model image, {len(image)} bytes (generated by dysan.export.model_image). */",
        "#include <stddef.h>",
        "#include <stdint.h>",
        "",
        f"const uint8_t {symbol}[{len(image)}] __attribute__((aligned(4))) = {{",
    ]
    lines += c_byte_rows(image)
    lines += ["};", f"const size_t {symbol}_len = {len(image)};", ""]
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------
# C header


def render_c_header() -> str:
    """``firmware/core/nn/dysan_nn_format.h``: the layout constants above, for the C loader."""
    out = [
        "/* GENERATED by `dysan codegen` from host/dysan/export/model_image.py -- do not edit. */",
        "#ifndef DYSAN_NN_FORMAT_H",
        "#define DYSAN_NN_FORMAT_H",
        "",
        f'#define DYSAN_NN_MAGIC 0x{MAGIC:08X}u /* "DYNN" */',
        f"#define DYSAN_NN_VERSION {VERSION}u",
        f"#define DYSAN_NN_ALIGN {ALIGN}u",
        f"#define DYSAN_NN_MAX_RANK {MAX_RANK}u",
        f"#define DYSAN_NN_NO_TENSOR 0x{NO_TENSOR:04X}u",
        f"#define DYSAN_NN_DTYPE_INT8 {DTYPE_INT8}u",
        f"#define DYSAN_NN_CONV_SLACK {CONV_SLACK} /* int16 values past a convolution's padded input */",
        f"#define DYSAN_NN_CONV_FAST_MAX_PAIRS {CONV_FAST_MAX_PAIRS} /* longest window of the M4 fast path */",
        f"#define DYSAN_NN_ADD_SCRATCH {ADD_SCRATCH}u /* ADD's two 256-entry int32 tables */",
        "",
    ]
    for prefix, fields, size in (
        ("HDR", HEADER_FIELDS, HEADER_SIZE),
        ("TENSOR", TENSOR_FIELDS, TENSOR_SIZE),
        ("OP", OP_FIELDS, OP_SIZE),
    ):
        out.append(f"/* {prefix.lower()} record: {size} bytes, little-endian; byte offset of each field */")
        out.append(f"#define DYSAN_NN_{prefix}_SIZE {size}u")
        for name, (off, _) in field_offsets(fields).items():
            out.append(f"#define DYSAN_NN_{prefix}_{name.upper()} {off}u")
        out.append("")
    out.append("/* op flags */")
    for name, bit in OP_FLAGS.items():
        out.append(f"#define DYSAN_NN_OPF_{name} {bit}u")
    out.append(f"#define DYSAN_NN_OPF_ALL {sum(OP_FLAGS.values())}u")
    out.append("")
    out.append("/* op kinds */")
    for name, kid in OP_KINDS.items():
        out.append(f"#define DYSAN_NN_KIND_{name} {kid}u")
    out.append(f"#define DYSAN_NN_KIND_MAX {max(OP_KINDS.values())}u")
    out.append("")
    out.append("/* params blocks: int32 word index of each field, and the word count */")
    for layout, fields in PARAMS.items():
        for i, name in enumerate(fields):
            out.append(f"#define DYSAN_NN_{layout}_{name.upper()} {i}")
        out.append(f"#define DYSAN_NN_{layout}_NPARAMS {len(fields)}")
        out.append("")
    out.append(f"#define DYSAN_NN_MAX_PARAMS {max(len(f) for f in PARAMS.values())}")
    out += ["", "#endif /* DYSAN_NN_FORMAT_H */", ""]
    return "\n".join(out)
