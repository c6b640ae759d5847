"""``dysan models summary``: parameters, MACs per window and int8 bytes of S, P, D for both families.

MACs are counted from the layers' shapes (one multiply-accumulate per weight use; pooling and adds cost
none). int8 bytes are *measured*: each network is converted to full-int8 TFLite (random calibration
windows) and its constant tensors — int8 weights, int32 biases — are summed. The grid total is 36 x
(S + P + D), the full grid's parameter memory on the device.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from .. import contract
from ..train.grid import full_grid
from . import device, paper


def layer_macs(model) -> int:
    """Multiply-accumulates of one forward pass on one window."""
    from keras import layers

    total = 0
    for layer in model.layers:
        out_shape = layer.output.shape
        if isinstance(layer, layers.Conv1DTranspose):
            in_len, in_ch = layer.input.shape[1], layer.input.shape[2]
            total += in_len * layer.kernel_size[0] * in_ch * layer.filters
        elif isinstance(layer, layers.Conv1D):
            in_ch = layer.input.shape[-1]
            total += out_shape[1] * layer.kernel_size[0] * in_ch * layer.filters // layer.groups
        elif isinstance(layer, layers.Dense):
            in_features = layer.input.shape[-1]
            positions = int(np.prod(out_shape[1:-1])) if len(out_shape) > 2 else 1
            total += positions * in_features * layer.units
    return int(total)


def builders(family: str, n_act: int, width: int = device.DEFAULT_WIDTH) -> dict[str, partial]:
    if family == "device":
        return {"S": partial(device.sanitizer, width), "P": partial(device.predictor, n_act),
                "D": partial(device.discriminator, 2)}
    return {"S": partial(paper.sanitizer), "P": partial(paper.predictor, n_act), "D": partial(paper.discriminator, 2)}


def summarize(families: tuple[str, ...] = ("device", "paper"), n_act: int = 4, width: int = device.DEFAULT_WIDTH,
              measure_int8: bool = True) -> dict:
    from ..export import quantize

    grid_size = len(full_grid())
    rng = np.random.default_rng(0)
    calib = rng.standard_normal((64, contract.WINDOW, contract.N_CHANNELS)).astype(np.float32)
    out: dict = {"grid_points": grid_size, "n_activity_classes": n_act, "families": {}}
    for family in families:
        rows = {}
        for name, build in builders(family, n_act, width).items():
            model = build(batch_size=1)
            row = {"parameters": int(model.count_params()), "macs_per_window": layer_macs(model)}
            if measure_int8:
                flat = quantize.convert(model, calib)
                row["int8_bytes"] = quantize.constant_bytes(flat)
                row["tflite_bytes"] = len(flat)
            rows[name] = row
        triple = {k: sum(r[k] for r in rows.values()) for k in rows["S"]}
        out["families"][family] = {
            "models": rows,
            "per_grid_point": triple,
            "full_grid": {k: v * grid_size for k, v in triple.items()},
        }
    return out
