"""Keras float model -> full-int8 TensorFlow Lite, as TFLM runs it.

- Batch size 1: the model is rebuilt with ``Input(batch_size=1)`` and the trained weights copied over (a
  ``None`` batch pulls in shape ops TFLM lacks).
- Full integer: int8 weights (per-channel for conv/dense), int8 activations, int8 input and output, from a
  representative dataset of real (training) windows.
- ``input_range``: force the input quantization to a given ``(scale, zero_point)``. P and D read the
  sanitizer's int8 output directly on the device; making their input quantization *equal* to S's output
  quantization means no requantization step (and no rounding) sits between them. The converter
  derives the input scale from the min/max it sees, so we add two calibration windows holding exactly the
  float extremes of that quantization; :func:`convert` checks the result and fails loudly if the converter
  chose anything else.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..errors import DysanError
from ..tfutil import import_tf, quiet


def rebuild_batch1(model, builder: Callable[..., object]):
    """A batch-size-1 copy of ``model`` built by ``builder(batch_size=1)`` with the same weights."""
    m1 = builder(batch_size=1)
    m1.set_weights(model.get_weights())
    return m1


def convert(
    model_b1, representative: np.ndarray, input_quant: tuple[float, int] | None = None
) -> bytes:
    """Convert a batch-1 Keras model to int8 TFLite bytes, calibrated on every window of ``representative``."""
    tf = import_tf()
    rep = np.asarray(representative, dtype=np.float32)
    if input_quant is not None:
        scale, zp = input_quant
        lo, hi = scale * (-128 - zp), scale * (127 - zp)
        extremes = np.full((2, *rep.shape[1:]), lo, dtype=np.float32)
        extremes[1] = hi
        rep = np.concatenate([extremes, np.clip(rep, lo, hi)])

    def gen():
        for i in range(len(rep)):
            yield [rep[i : i + 1]]

    conv = tf.lite.TFLiteConverter.from_keras_model(model_b1)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = gen
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    with quiet():
        flat = conv.convert()
    if input_quant is not None:
        got = io_quant(flat)["input"]
        if got[1] != input_quant[1] or not np.isclose(got[0], input_quant[0], rtol=1e-6, atol=0):
            raise DysanError(f"converter chose input quantization {got}, wanted {input_quant}")
    return flat


def io_quant(flat: bytes) -> dict[str, tuple[float, int]]:
    """``{"input": (scale, zero_point), "output": (...)}`` of a converted model."""
    tf = import_tf()
    with quiet():
        it = tf.lite.Interpreter(model_content=flat)
    i, o = it.get_input_details()[0], it.get_output_details()[0]
    return {
        "input": (float(i["quantization"][0]), int(i["quantization"][1])),
        "output": (float(o["quantization"][0]), int(o["quantization"][1])),
    }


def constant_bytes(flat: bytes) -> int:
    """Bytes of constant tensors (weights, biases) in a converted model: its int8 parameter memory.

    Read straight from the flatbuffer's buffers, so it works for models the device kernels do not run
    (the paper family's transpose convolutions).
    """
    from .tflite_graph import schema

    model = schema().ModelT.InitFromPackedBuf(bytearray(flat), 0)
    total = 0
    for t in model.subgraphs[0].tensors or []:
        buf = model.buffers[t.buffer] if 0 < t.buffer < len(model.buffers) else None
        if buf is not None and buf.data is not None:
            total += len(buf.data)
        elif buf is not None and int(getattr(buf, "size", 0) or 0) > 0:
            total += int(buf.size)
    return total
