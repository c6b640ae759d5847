"""Shared machinery of the dysan_nn tests (test_nn_kernels.py, test_nn_models.py), plus its own checks.

Builds the C runners (firmware/nn.mk), converts tiny Keras models to int8 TFLite once per session, and runs
the same int8 inputs through TFLM (the reference kernels), TensorFlow's reference interpreter, the native C
runner and the Cortex-M4F runner under QEMU. Kept in a test module so that it ships with the tests; the
other modules import it by name (pytest puts tests/ on sys.path).
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dysan.export import model_image as mi
from dysan.export.tflite_graph import schema

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow's first (lazy) import

REPO = Path(__file__).resolve().parents[1]
FIRMWARE = REPO / "firmware"
N_INPUTS = 200

_TARGETS = {
    "host": ("nn-host", "build/nn-host/nn_runner"),
    "asan": ("nn-asan", "build/nn-asan/nn_runner"),
    "qemu": ("nn-qemu", "build/nn-qemu/nn_runner.elf"),
    "qemu-portable": ("nn-qemu", "build/nn-qemu/nn_runner_portable.elf"),
}


# ---------------------------------------------------------------------------------------------------------
# Building and running the C runners


@functools.cache
def _make(target: str) -> None:
    proc = subprocess.run(
        ["make", "-s", "-C", str(FIRMWARE), "-f", "nn.mk", target],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode != 0:
        raise AssertionError(f"make {target} failed:\n{proc.stdout}\n{proc.stderr}")


def runner(kind: str) -> Path:
    """Path of a built runner: host, asan, qemu (DSP path) or qemu-portable."""
    target, rel = _TARGETS[kind]
    if kind.startswith("qemu"):
        missing = [t for t in ("arm-none-eabi-gcc", "qemu-system-arm") if shutil.which(t) is None]
        if missing:
            pytest.skip(f"needs {', '.join(missing)} (tools/install-sysdeps.sh)")
    _make(target)
    return FIRMWARE / rel


@dataclass
class RunResult:
    rc: int
    stdout: str
    outputs: np.ndarray | None  # (n, output_bytes) int8, None unless rc == 0

    def profile(self, n: int) -> dict[str, Any]:
        """Instructions per inference of each op, from a QEMU --profile run over n inputs."""
        cal = re.search(r"calibration instructions (\d+) ticks (\d+)", self.stdout)
        assert cal, self.stdout
        per_tick = int(cal.group(1)) / int(cal.group(2))
        ops = [
            {
                "index": int(m[0]),
                "kind": int(m[1]),
                "macs": int(m[2]),
                "instructions": int(m[3]) * per_tick / n,
            }
            for m in re.findall(r"op (\d+) kind (\d+) macs (\d+) ticks (\d+)", self.stdout)
        ]
        return {
            "instructions_per_tick": per_tick,
            "ops": ops,
            "total_instructions": sum(o["instructions"] for o in ops),
        }


def run_image(
    image: bytes,
    inputs: np.ndarray,
    kind: str = "host",
    *,
    profile: bool = False,
    steps: bool = False,
    arena: int | None = None,
    info: bool = False,
    timeout: float = 120.0,
) -> RunResult:
    """Runs `inputs` (n x input_bytes int8) through a C runner; returns its exit code, stdout, outputs."""
    exe = runner(kind)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "m.bin").write_bytes(image)
        np.ascontiguousarray(inputs, dtype=np.int8).tofile(d / "in.bin")
        args = (
            ["--info", "m.bin"]
            if info
            else [
                *(["--profile"] if profile else []),
                *(["--steps"] if steps else []),
                *(["--arena", str(arena)] if arena is not None else []),
                "m.bin",
                "in.bin",
                "out.bin",
            ]
        )
        if kind.startswith("qemu"):
            semi = ",".join(["enable=on", "target=native", "arg=nn_runner", *(f"arg={a}" for a in args)])
            cmd = [
                "qemu-system-arm",
                "-M",
                "mps2-an386",
                "-nographic",
                "-monitor",
                "none",
                "-icount",
                "shift=0",
                "-semihosting-config",
                semi,
                "-kernel",
                str(exe),
            ]
        else:
            cmd = [str(exe), *args]
        proc = subprocess.run(cmd, cwd=d, capture_output=True, text=True, timeout=timeout)
        out = None
        if proc.returncode == 0 and not info:
            out = np.fromfile(d / "out.bin", dtype=np.int8).reshape(len(inputs), -1)
        return RunResult(proc.returncode, proc.stdout + proc.stderr, out)


# ---------------------------------------------------------------------------------------------------------
# Keras -> int8 TFLite, cached per session


@dataclass(frozen=True)
class Case:
    """A tiny model: `build(keras)` returns it; `shape` is the input shape without the batch dimension."""

    name: str
    shape: tuple[int, ...]
    build: Callable[[Any], Any]
    per_tensor_dense: bool = False
    seed: int = 0
    expect_ops: tuple[str, ...] = field(default=())


_TFLITE: dict[str, bytes] = {}


def tflite_of(case: Case) -> bytes:
    """int8 .tflite of the case (converted once per session)."""
    if case.name not in _TFLITE:
        import keras
        import tensorflow as tf

        keras.utils.set_random_seed(case.seed)
        inp = keras.Input(case.shape, batch_size=1)
        model = keras.Model(inp, case.build(keras)(inp))
        rng = np.random.default_rng(case.seed)

        def representative() -> Any:
            for _ in range(64):
                yield [rng.normal(size=(1, *case.shape)).astype(np.float32)]

        conv = tf.lite.TFLiteConverter.from_keras_model(model)
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = representative
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
        if case.per_tensor_dense:
            conv._experimental_disable_per_channel_quantization_for_dense_layers = True
        _TFLITE[case.name] = conv.convert()
    return _TFLITE[case.name]


def tflite_ops(tflite: bytes) -> list[str]:
    from dysan.export.tflite_graph import read_tflite

    return [op.op for op in read_tflite(tflite).operators]


def io_quant(tflite: bytes) -> tuple[tuple[int, ...], float, int]:
    """(input shape, input scale, input zero point)."""
    from dysan.export.tflite_graph import read_tflite

    g = read_tflite(tflite)
    t = g.tensors[g.inputs[0]]
    assert t.quant is not None
    return t.shape, float(t.quant.scale[0]), int(t.quant.zero_point[0])


def int8_inputs(tflite: bytes, n: int = N_INPUTS, seed: int = 1) -> np.ndarray:
    """n inputs: half quantized N(0, 1) windows like the representative data, half uniform over all of int8,
    plus the constant extremes (saturated rows reach every clamp)."""
    shape, scale, zp = io_quant(tflite)
    rng = np.random.default_rng(seed)
    half = n // 2
    real = rng.normal(size=(half, *shape)) * rng.uniform(0.3, 2.0, size=(half,) + (1,) * len(shape))
    q = np.clip(np.round(real / scale) + zp, -128, 127)
    u = rng.integers(-128, 128, size=(n - half, *shape))
    x = np.concatenate([q, u]).astype(np.int8)
    if n >= 8:
        x[-1], x[-2], x[-3] = -128, 127, zp
    return x


def tflm_run(tflite: bytes, inputs: np.ndarray) -> np.ndarray:
    """Outputs of TFLM (its reference kernels) for each input."""
    from tflite_micro.python.tflite_micro import runtime

    it = runtime.Interpreter.from_bytes(tflite, arena_size=4 << 20)
    out = []
    for x in inputs:
        it.set_input(x, 0)
        it.invoke()
        out.append(np.array(it.get_output(0), dtype=np.int8).reshape(-1))
    return np.stack(out)


def tf_reference_run(tflite: bytes, inputs: np.ndarray) -> np.ndarray:
    """Outputs of TensorFlow Lite's interpreter with its reference (not optimized) kernels."""
    import tensorflow as tf

    it = tf.lite.Interpreter(
        model_content=tflite, experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_REF
    )
    it.allocate_tensors()
    i_idx, o_idx = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]
    out = []
    for x in inputs:
        it.set_tensor(i_idx, x)
        it.invoke()
        out.append(np.array(it.get_tensor(o_idx), dtype=np.int8).reshape(-1))
    return np.stack(out)


def assert_same(expected: np.ndarray, got: np.ndarray | None, what: str) -> None:
    assert got is not None, f"{what}: the runner failed"
    assert got.shape == expected.shape, f"{what}: shape {got.shape} != {expected.shape}"
    diff = np.flatnonzero(got.reshape(-1) != expected.reshape(-1))
    assert diff.size == 0, (
        f"{what}: {diff.size} of {got.size} bytes differ, first at {int(diff[0])}: "
        f"{int(got.reshape(-1)[diff[0]])} != {int(expected.reshape(-1)[diff[0]])}"
    )


def check_bit_exact(tflite: bytes, kind: str = "host", n: int = N_INPUTS) -> tuple[mi.ModelImage, np.ndarray]:
    """TFLM vs the C runner on n inputs, byte for byte; returns the image and the inputs."""
    image = mi.image_from_tflite(tflite)
    x = int8_inputs(tflite, n)
    expected = tflm_run(tflite, x)
    res = run_image(image.data, x, kind)
    assert res.rc == 0, res.stdout
    assert_same(expected, res.outputs, kind)
    return image, x


# ---------------------------------------------------------------------------------------------------------
# Hand-built .tflite (ops the converter does not emit from Keras on its own)


@dataclass
class TensorSpec:
    shape: tuple[int, ...]
    dtype: str = "int8"
    scale: float | None = None
    zero_point: int = 0
    data: np.ndarray | None = None


@dataclass
class OpSpec:
    op: str
    inputs: Sequence[int]
    outputs: Sequence[int]
    options: tuple[str, Any] | None = None  # (BuiltinOptions member name, options object)


def build_tflite(
    tensors: Sequence[TensorSpec], ops: Sequence[OpSpec], inputs: Sequence[int], outputs: Sequence[int]
) -> bytes:
    """A one-subgraph .tflite from tensor and op specs, through the schema's object API."""
    import flatbuffers

    fb = schema()
    types = {"int8": fb.TensorType.INT8, "int32": fb.TensorType.INT32, "float32": fb.TensorType.FLOAT32}
    model = fb.ModelT()
    model.version = 3
    model.buffers = [fb.BufferT()]
    sub = fb.SubGraphT()
    sub.tensors = []
    for i, spec in enumerate(tensors):
        t = fb.TensorT()
        t.name = f"t{i}".encode()
        t.shape = list(spec.shape)
        t.type = types[spec.dtype]
        t.buffer = 0
        if spec.scale is not None:
            q = fb.QuantizationParametersT()
            q.scale = [float(spec.scale)]
            q.zeroPoint = [int(spec.zero_point)]
            t.quantization = q
        if spec.data is not None:
            buf = fb.BufferT()
            buf.data = list(np.asarray(spec.data).astype(f"<{np.dtype(spec.dtype).str[1:]}").tobytes())
            model.buffers.append(buf)
            t.buffer = len(model.buffers) - 1
        sub.tensors.append(t)
    codes: list[int] = []
    sub.operators = []
    for spec in ops:
        code = getattr(fb.BuiltinOperator, spec.op)
        if code not in codes:
            codes.append(code)
        o = fb.OperatorT()
        o.opcodeIndex = codes.index(code)
        o.inputs, o.outputs = list(spec.inputs), list(spec.outputs)
        if spec.options is not None:
            o.builtinOptionsType = getattr(fb.BuiltinOptions, spec.options[0])
            o.builtinOptions = spec.options[1]
        sub.operators.append(o)
    sub.inputs, sub.outputs = list(inputs), list(outputs)
    model.subgraphs = [sub]
    model.operatorCodes = []
    for code in codes:
        oc = fb.OperatorCodeT()
        oc.builtinCode = code
        oc.deprecatedBuiltinCode = min(code, 127)
        oc.version = 1
        model.operatorCodes.append(oc)
    b = flatbuffers.Builder(1024)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


# ---------------------------------------------------------------------------------------------------------
# Editing images (malformed-image tests)


class ImageEditor:
    """Reads and patches header, tensor and op record fields of an image by name."""

    def __init__(self, data: bytes) -> None:
        self.data = bytearray(data)
        self.hdr = mi.field_offsets(mi.HEADER_FIELDS)
        self.ten = mi.field_offsets(mi.TENSOR_FIELDS)
        self.opf = mi.field_offsets(mi.OP_FIELDS)

    def _get(self, base: int, fields: dict[str, tuple[int, str]], name: str) -> int:
        off, f = fields[name]
        return struct.unpack_from("<" + f, self.data, base + off)[0]

    def _set(self, base: int, fields: dict[str, tuple[int, str]], name: str, value: int) -> ImageEditor:
        off, f = fields[name]
        struct.pack_into("<" + f, self.data, base + off, value)
        return self

    def header(self, name: str) -> int:
        return self._get(0, self.hdr, name)

    def set_header(self, name: str, value: int) -> ImageEditor:
        return self._set(0, self.hdr, name, value)

    def _tensor_base(self, i: int) -> int:
        return self.header("tensors_off") + i * mi.TENSOR_SIZE

    def _op_base(self, i: int) -> int:
        return self.header("ops_off") + i * mi.OP_SIZE

    def tensor(self, i: int, name: str) -> int:
        return self._get(self._tensor_base(i), self.ten, name)

    def set_tensor(self, i: int, name: str, value: int) -> ImageEditor:
        return self._set(self._tensor_base(i), self.ten, name, value)

    def op(self, i: int, name: str) -> int:
        return self._get(self._op_base(i), self.opf, name)

    def set_op(self, i: int, name: str, value: int) -> ImageEditor:
        return self._set(self._op_base(i), self.opf, name, value)

    def set_param(self, i: int, layout: str, name: str, value: int) -> ImageEditor:
        struct.pack_into("<i", self.data, self.op(i, "params_off") + 4 * mi.PARAMS[layout].index(name), value)
        return self

    def param(self, i: int, layout: str, name: str) -> int:
        return struct.unpack_from("<i", self.data, self.op(i, "params_off") + 4 * mi.PARAMS[layout].index(name))[0]

    def bytes(self) -> bytes:
        return bytes(self.data)


# ---------------------------------------------------------------------------------------------------------
# Checks of the machinery itself


def test_int8_inputs_cover_the_range() -> None:
    """The input generator reaches both int8 ends (clamps and saturating paths get exercised)."""
    tensors = [
        TensorSpec((1, 4, 3), scale=0.05, zero_point=-3),
        TensorSpec((1, 4, 3), scale=0.05, zero_point=-3),
    ]
    fb = schema()
    opts = fb.ReshapeOptionsT()
    opts.newShape = [1, 4, 3]
    tfl = build_tflite(tensors, [OpSpec("RESHAPE", [0], [1], ("ReshapeOptions", opts))], [0], [1])
    x = int8_inputs(tfl, 40)
    assert x.shape == (40, 1, 4, 3) and x.dtype == np.int8
    assert x.min() == -128 and x.max() == 127


def test_image_editor_roundtrip() -> None:
    tensors = [
        TensorSpec((1, 4, 3), scale=0.05, zero_point=-3),
        TensorSpec((1, 4, 3), scale=0.1, zero_point=2),
    ]
    tfl = build_tflite(tensors, [OpSpec("QUANTIZE", [0], [1])], [0], [1])
    image = mi.image_from_tflite(tfl)
    ed = ImageEditor(image.data)
    assert ed.header("magic") == mi.MAGIC and ed.header("image_size") == len(image.data)
    assert ed.op(0, "kind") == mi.OP_KINDS["QUANTIZE"]
    assert ed.param(0, "QUANTIZE", "output_zp") == 2
    assert ed.set_param(0, "QUANTIZE", "output_zp", 5).param(0, "QUANTIZE", "output_zp") == 5
