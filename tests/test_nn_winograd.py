"""The experimental Cortex-M4 integer Winograd path of CONV_2D (firmware/core/nn/dysan_nn_conv_wino_m4.c):
1-D k5 convolutions (stride 1, dilation 1 or 2, 4/8/12/16 input channels), bit-exact with TFLM's reference
kernel under QEMU. The path is off in every product build (measured slower than the direct fast path, see
core/nn/README.md); these tests run it in its own runner (`make -f nn.mk nn-qemu-wino`, -DDYSAN_NN_WINOGRAD).

Hand-built single-op graphs with random weights (and rows at the int8 extremes), random biases, input zero
points at both ends of int8, 'same' and 'valid' padding (the edges read the input zero point), output widths
that leave a partial tile pair, odd output channel counts (the zero channel) and clamped activation ranges;
the inputs include the constant rows -128, 127 and the zero point (int8_inputs).
"""

from __future__ import annotations

import numpy as np
import pytest

import test_nn_support
from dysan.export import model_image as mi
from dysan.export.tflite_graph import schema
from test_nn_support import OpSpec, TensorSpec, assert_same, build_tflite, int8_inputs, run_image, tflm_run

test_nn_support._TARGETS.setdefault("qemu-wino", ("nn-qemu-wino", "build/nn-qemu-wino/nn_runner.elf"))


def _conv5_tflite(w: int, ic: int, oc: int, dilation: int, same: bool, in_zp: int, act: int, seed: int) -> bytes:
    """CONV_2D 1 x 5 over a (1, 1, w, ic) input; output scale chosen so that outputs spread over int8."""
    fb = schema()
    rng = np.random.default_rng(seed)
    opts = fb.Conv2DOptionsT()
    opts.padding = fb.Padding.SAME if same else fb.Padding.VALID
    opts.strideW, opts.strideH = 1, 1
    opts.dilationWFactor, opts.dilationHFactor = dilation, 1
    opts.fusedActivationFunction = act
    weights = rng.integers(-127, 128, size=(oc, 1, 5, ic))
    weights[0] = 127  # extreme rows: the transformed weights' bounds
    if oc > 1:
        weights[1] = -127
    weights = weights.astype(np.int8)
    in_scale, w_scale = 0.05, 0.01
    acc_std = 128 * 74 * np.sqrt(5 * ic)
    out_w = w if same else w - 4 * dilation
    tensors = [
        TensorSpec((1, 1, w, ic), scale=in_scale, zero_point=in_zp),
        TensorSpec(weights.shape, scale=w_scale, data=weights),
        TensorSpec((oc,), dtype="int32", scale=in_scale * w_scale, data=rng.integers(-20000, 20000, size=oc)),
        TensorSpec((1, 1, out_w, oc), scale=in_scale * w_scale * acc_std / 60, zero_point=int(rng.integers(-20, 20))),
    ]
    return build_tflite(tensors, [OpSpec("CONV_2D", [0, 1, 2], [3], ("Conv2DOptions", opts))], [0], [3])


#: (input width, in channels, out channels, dilation, same padding, input zero point, fused activation)
GEOMETRIES = {
    "s16_dilated_same": (125, 16, 16, 2, True, -3, 1),
    "s16_to_6_same": (125, 16, 6, 1, True, 127, 0),
    "p12_to_16_valid": (30, 12, 16, 1, False, -128, 1),
    "odd_out_partial_tiles": (37, 8, 7, 2, True, -128, 0),
    "dilated_valid_tail": (22, 4, 3, 2, False, 127, 3),
    "one_tile_relu6": (9, 4, 2, 1, True, 55, 3),
}


@pytest.mark.qemu
@pytest.mark.parametrize("name", list(GEOMETRIES))
def test_winograd_bit_exact_on_cortex_m4(name: str) -> None:
    w, ic, oc, d, same, zp, act = GEOMETRIES[name]
    tfl = _conv5_tflite(w, ic, oc, d, same, zp, act, seed=len(name))
    image = mi.image_from_tflite(tfl)
    x = int8_inputs(tfl, 24)
    res = run_image(image.data, x, "qemu-wino")
    assert res.rc == 0, res.stdout
    assert_same(tflm_run(tfl, x), res.outputs, f"qemu-wino {name}")


@pytest.mark.qemu
def test_winograd_runner_takes_the_path() -> None:
    """The Winograd runner really runs another kernel on a covered layer: same outputs as the fast path,
    a different instruction count (QEMU -icount)."""
    tfl = _conv5_tflite(125, 16, 16, 2, True, -3, 0, seed=1)
    image = mi.image_from_tflite(tfl)
    x = int8_inputs(tfl, 4)
    counts = {}
    for kind in ("qemu", "qemu-wino"):
        res = run_image(image.data, x, kind, profile=True)
        assert res.rc == 0, res.stdout
        assert_same(tflm_run(tfl, x), res.outputs, kind)
        counts[kind] = res.profile(len(x))["ops"][0]["instructions"]
    assert abs(counts["qemu"] - counts["qemu-wino"]) > 1000, counts
