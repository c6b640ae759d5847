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

  Those two windows are not real inputs, and the one range they would otherwise set — P's and D's output
  logits (every hidden tensor is a ReLU6 on the converter's fixed [0, 6]) — came out 2–3× wider than real
  windows reach (SisFall D: [−10.3, 12.1] against [−2.3, 5.4]). Near the decision boundary both logits then
  rounded to the same int8 value on 5 % of the evaluation windows (a tie the device's argmax resolves to
  class 0). So for P and D the output quantization is set afterwards from the real windows alone
  (:func:`set_output_range`, the converter's own min/max rule); the device only takes argmax of these logits.
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
        real = rep[2:]  # without the two range-forcing windows
        outputs = np.concatenate([np.asarray(model_b1(real[i : i + 1], training=False)) for i in range(len(real))])
        flat = set_output_range(flat, float(outputs.min()), float(outputs.max()))
    return flat


def int8_range_quant(lo: float, hi: float) -> tuple[float, int]:
    """``(scale, zero_point)`` of an int8 tensor holding ``[lo, hi]``, as the converter derives them from a
    calibration min/max: the range widened to contain 0, 255 steps, the zero point rounded into int8."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi - lo <= 0:
        raise DysanError(f"empty output range [{lo}, {hi}]")
    scale = (hi - lo) / 255.0
    zp = int(np.clip(round(-128 - lo / scale), -128, 127))
    return float(np.float32(scale)), zp


def set_output_range(flat: bytes, lo: float, hi: float) -> bytes:
    """``flat`` with its (single) output tensor quantized for ``[lo, hi]`` (:func:`int8_range_quant`).

    Only the output tensor's scale and zero point change: the op producing it (FULLY_CONNECTED here) derives
    its requantization multiplier from the tensor scales when the interpreter prepares it (TFLM, TF Lite and
    :mod:`.model_image` alike), and its int32 bias is in input × weight scale, which is unchanged."""
    import flatbuffers

    from .tflite_graph import schema

    model = schema().ModelT.InitFromPackedBuf(bytearray(flat), 0)
    sg = model.subgraphs[0]
    if len(sg.outputs) != 1:
        raise DysanError(f"expected one output tensor, got {len(sg.outputs)}")
    out = sg.tensors[int(sg.outputs[0])]
    consumers = [op for op in sg.operators if int(sg.outputs[0]) in [int(i) for i in op.inputs]]
    if consumers or out.quantization is None or len(out.quantization.scale) != 1:
        raise DysanError("the output tensor must be per-tensor quantized and read by no op")
    scale, zp = int8_range_quant(lo, hi)
    out.quantization.scale, out.quantization.zeroPoint = [scale], [zp]
    builder = flatbuffers.Builder(len(flat) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


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
