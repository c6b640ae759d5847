"""Read an int8 ``.tflite`` flatbuffer into a small IR that :mod:`dysan.export.model_image` lowers.

The IR keeps only what the device kernels need: tensor shapes, dtypes, per-tensor or per-channel
quantization, constant data, and for each operator its builtin name, inputs, outputs and the options that
change the arithmetic (padding, strides, dilation, fused activation, keep_num_dims, alpha...). Anything the
firmware cannot run is rejected here, with the op (or dtype) named, so a model that exports always runs.

The schema is TensorFlow's bundled ``schema_py_generated`` module. It only needs ``flatbuffers``, so it is
loaded from its file instead of through ``import tensorflow`` (seconds of start-up the CLI does not need).
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from ..errors import DysanError

#: Builtin ops the C kernels implement (reshape-like ones become aliases, not kernels).
SUPPORTED_OPS = frozenset(
    {
        "CONV_2D",
        "DEPTHWISE_CONV_2D",
        "FULLY_CONNECTED",
        "AVERAGE_POOL_2D",
        "MAX_POOL_2D",
        "MEAN",
        "ADD",
        "LEAKY_RELU",
        "QUANTIZE",
        "RESHAPE",
        "EXPAND_DIMS",
        "SQUEEZE",
    }
)

_DTYPES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 7: "int16", 9: "int8", 17: "int4"}
_NUMPY = {
    "float32": np.float32,
    "int32": np.int32,
    "uint8": np.uint8,
    "int64": np.int64,
    "int16": np.int16,
    "int8": np.int8,
    "float16": np.float16,
}
_PADDING = {0: "SAME", 1: "VALID"}
_ACTIVATION = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}


class ModelFormatError(DysanError):
    """The .tflite file is malformed or uses something the device kernels do not implement."""


@dataclass(frozen=True)
class Quant:
    """Affine quantization: ``real = scale * (q - zero_point)``; one entry per channel along ``axis``."""

    scale: np.ndarray  # float32
    zero_point: np.ndarray  # int64
    axis: int

    @property
    def per_channel(self) -> bool:
        return self.scale.size > 1


@dataclass
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    quant: Quant | None
    data: np.ndarray | None  # constant contents (already reshaped), None for activations

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def numel(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


@dataclass
class Operator:
    index: int
    op: str
    inputs: tuple[int, ...]  # -1 marks an absent optional input (e.g. no bias)
    outputs: tuple[int, ...]
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Graph:
    tensors: list[Tensor]
    operators: list[Operator]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


@cache
def schema() -> ModuleType:
    """TensorFlow's generated schema module, loaded without importing TensorFlow itself."""
    spec = importlib.util.find_spec("tensorflow")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for loc in locations:
        path = Path(loc) / "lite" / "python" / "schema_py_generated.py"
        if path.is_file():
            name = "_dysan_tflite_schema"
            mod_spec = importlib.util.spec_from_file_location(name, path)
            assert mod_spec is not None and mod_spec.loader is not None
            module = importlib.util.module_from_spec(mod_spec)
            sys.modules[name] = module
            mod_spec.loader.exec_module(module)
            return module
    from tensorflow.lite.python import schema_py_generated  # slow path: a layout without the file

    return schema_py_generated


@cache
def _op_names() -> dict[int, str]:
    ops = schema().BuiltinOperator
    return {v: k for k, v in vars(ops).items() if not k.startswith("_") and isinstance(v, int)}


def _options(op_name: str, opts: Any) -> dict[str, Any]:
    """The builtin options that matter to the integer kernels, in snake_case."""
    if opts is None:
        return {}
    out: dict[str, Any] = {}
    if hasattr(opts, "padding"):
        out["padding"] = _PADDING.get(opts.padding, str(opts.padding))
    for src, dst in (
        ("strideH", "stride_h"),
        ("strideW", "stride_w"),
        ("dilationHFactor", "dilation_h"),
        ("dilationWFactor", "dilation_w"),
        ("filterHeight", "filter_h"),
        ("filterWidth", "filter_w"),
        ("depthMultiplier", "depth_multiplier"),
        ("keepNumDims", "keep_num_dims"),
        ("keepDims", "keep_dims"),
        ("weightsFormat", "weights_format"),
        ("asymmetricQuantizeInputs", "asymmetric_quantize_inputs"),
    ):
        if hasattr(opts, src):
            out[dst] = getattr(opts, src)
    if hasattr(opts, "fusedActivationFunction"):
        out["activation"] = _ACTIVATION.get(opts.fusedActivationFunction, str(opts.fusedActivationFunction))
    if op_name == "LEAKY_RELU":
        out["alpha"] = float(np.float32(opts.alpha))
    if op_name == "SQUEEZE" and getattr(opts, "squeezeDims", None) is not None:
        out["squeeze_dims"] = [int(v) for v in opts.squeezeDims]
    return out


def _buffer_bytes(model: Any, raw: bytes, index: int) -> bytes | None:
    if index <= 0 or index >= len(model.buffers):
        return None
    buf = model.buffers[index]
    if buf.data is not None and len(buf.data) > 0:
        return np.asarray(buf.data, dtype=np.uint8).tobytes()
    offset, size = int(getattr(buf, "offset", 0) or 0), int(getattr(buf, "size", 0) or 0)
    if offset > 1 and size > 0:  # large models keep buffers after the flatbuffer
        if offset + size > len(raw):
            raise ModelFormatError(f"buffer {index} lies outside the file")
        return raw[offset : offset + size]
    return None


def _tensor(model: Any, raw: bytes, index: int, t: Any) -> Tensor:
    name = t.name.decode() if isinstance(t.name, bytes) else str(t.name)
    dtype = _DTYPES.get(t.type, f"type{t.type}")
    shape = tuple(int(d) for d in (t.shape if t.shape is not None else ()))
    quant = None
    q = t.quantization
    if q is not None and q.scale is not None and len(q.scale) > 0:
        zp = np.asarray(q.zeroPoint if q.zeroPoint is not None else [0] * len(q.scale), dtype=np.int64)
        quant = Quant(np.asarray(q.scale, dtype=np.float32), zp, int(q.quantizedDimension))
    data = None
    blob = _buffer_bytes(model, raw, t.buffer)
    if blob is not None:
        if dtype not in _NUMPY:
            raise ModelFormatError(f"constant tensor {name!r} has unsupported dtype {dtype}")
        arr = np.frombuffer(blob, dtype=_NUMPY[dtype])
        expected = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if arr.size != expected:
            raise ModelFormatError(f"constant tensor {name!r}: {arr.size} values for shape {list(shape)}")
        data = arr.reshape(shape) if shape else arr.reshape(())
    return Tensor(index, name, shape, dtype, quant, data)


def read_tflite(raw: bytes) -> Graph:
    """Parse a .tflite flatbuffer; raise :class:`ModelFormatError` on anything unsupported."""
    fb = schema()
    if len(raw) < 8 or raw[4:8] != b"TFL3":
        raise ModelFormatError("not a .tflite flatbuffer (missing the TFL3 identifier)")
    try:
        model = fb.ModelT.InitFromPackedBuf(bytearray(raw), 0)
    except Exception as exc:  # a truncated or corrupt flatbuffer raises from deep inside flatbuffers
        raise ModelFormatError(f"cannot parse the .tflite flatbuffer: {exc}") from exc
    if not model.subgraphs or len(model.subgraphs) != 1:
        raise ModelFormatError(f"expected exactly one subgraph, found {len(model.subgraphs or [])}")
    g = model.subgraphs[0]
    tensors = [_tensor(model, raw, i, t) for i, t in enumerate(g.tensors or [])]
    names = _op_names()
    operators = []
    for i, op in enumerate(g.operators or []):
        code = model.operatorCodes[op.opcodeIndex]
        builtin = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
        name = names.get(builtin, f"BUILTIN_{builtin}")
        if name == "CUSTOM":
            custom = code.customCode.decode() if code.customCode else "?"
            raise ModelFormatError(f"op {i}: custom op {custom!r} is not supported by the device kernels")
        if name not in SUPPORTED_OPS:
            raise ModelFormatError(
                f"op {i}: {name} is not supported by the device kernels (supported: {', '.join(sorted(SUPPORTED_OPS))})"
            )
        operators.append(
            Operator(
                i,
                name,
                tuple(int(v) for v in op.inputs),
                tuple(int(v) for v in op.outputs),
                _options(name, op.builtinOptions),
            )
        )
    graph = Graph(tensors, operators, tuple(int(v) for v in g.inputs), tuple(int(v) for v in g.outputs))
    _check_dtypes(graph)
    return graph


def _check_dtypes(graph: Graph) -> None:
    """Activations must be int8 with one scale; the kernels have no float or int16 path."""
    for op in graph.operators:
        for role, ids in (("input", op.inputs), ("output", op.outputs)):
            for tid in ids:
                if tid < 0:
                    continue
                t = graph.tensors[tid]
                if t.is_const:
                    continue
                if t.dtype != "int8":
                    raise ModelFormatError(
                        f"op {op.index} ({op.op}): {role} tensor {t.name!r} is {t.dtype}; "
                        "only int8 activations are supported"
                    )
                if t.quant is None or t.quant.per_channel:
                    raise ModelFormatError(
                        f"op {op.index} ({op.op}): {role} tensor {t.name!r} needs one scale and zero point"
                    )
