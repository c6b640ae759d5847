"""``dysan models summary``: parameters, MACs per window and int8 bytes of S, P, D for both families.

MACs are counted from the layers' shapes (one multiply-accumulate per weight use; pooling and adds cost
none). int8 bytes are *measured*: each network is converted to full-int8 TFLite (random calibration
windows) and its constant tensors — int8 weights, int32 biases — are summed. The grid total is the full
grid's points (36) x (S + P + D), the full grid's parameter memory on the device.

The networks sit below training and export, so this module imports neither: the caller passes the size of
the full grid (:func:`dysan.train.grid.full_grid`) and the int8 measurement
(:func:`dysan.export.size_report.int8_sizes`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import builders, device


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


def summarize(grid_size: int, families: tuple[str, ...] = ("device", "paper"), n_act: int = 4,
              width: int = device.DEFAULT_WIDTH, int8_sizes: Callable[[object], dict[str, int]] | None = None) -> dict:
    """Every network of ``families``: parameters and MACs, plus ``int8_sizes(model)`` (``int8_bytes``,
    ``tflite_bytes`` of the batch-1 model) when given; totals per grid point and for ``grid_size`` points."""
    out: dict = {"grid_points": grid_size, "n_activity_classes": n_act, "families": {}}
    for family in families:
        rows = {}
        for name, build in builders(family, n_act, width=width).items():
            model = build(batch_size=1)
            row = {"parameters": int(model.count_params()), "macs_per_window": layer_macs(model)}
            if int8_sizes is not None:
                row.update(int8_sizes(model))
            rows[name] = row
        triple = {k: sum(r[k] for r in rows.values()) for k in rows["S"]}
        out["families"][family] = {
            "models": rows,
            "per_grid_point": triple,
            "full_grid": {k: v * grid_size for k, v in triple.items()},
        }
    return out
