"""dysan_nn on models shaped like the device family, natively and on Cortex-M4F under QEMU.

Sanitizer S (three Conv1D, the middle one dilated, and a residual ADD with the input), predictor /
discriminator P and D (strided Conv1D, average pooling, Conv1D, global average pooling, Dense, LeakyReLU,
Dense logits), a Flatten + Dense variant, a depthwise variant, and the device family exactly as shipped
(dysan.nets.device, ReLU6). Each runs 200 windows through TFLM and through the C kernels -- the native
runner, the Cortex-M4F runner with the DSP (SMLAD) path and the same with the portable kernels -- and every
output byte must match. The M4 runs also measure instructions per op (QEMU -icount shift=0: one instruction
per virtual nanosecond, SysTick calibrated against a known loop).
"""

from __future__ import annotations

import json
import os

import pytest

from dysan.export import model_image as mi
from test_nn_support import (
    Case,
    ImageEditor,
    assert_same,
    check_bit_exact,
    int8_inputs,
    run_image,
    tflite_of,
    tflm_run,
)


def _sanitizer(width: int) -> object:
    def build(k: object) -> object:
        layers = k.layers  # type: ignore[attr-defined]

        def apply(x: object) -> object:
            h = layers.Conv1D(width, 5, padding="same", activation="relu")(x)
            h = layers.Conv1D(width, 5, padding="same", dilation_rate=2, activation="relu")(h)
            h = layers.Conv1D(6, 5, padding="same")(h)
            return layers.Add()([h, x])

        return apply

    return build


def _classifier(first: int, n_classes: int, head: str = "gap", depthwise: bool = False) -> object:
    def build(k: object) -> object:
        layers = k.layers  # type: ignore[attr-defined]

        def apply(x: object) -> object:
            h = x
            if depthwise:
                h = layers.DepthwiseConv1D(5, padding="same", activation="relu")(h)
                h = layers.Conv1D(first, 1, activation="relu")(h)
                h = layers.AveragePooling1D(2)(h)
                h = layers.Conv1D(16, 5, strides=2, activation="relu")(h)
            else:
                h = layers.Conv1D(first, 5, strides=2, activation="relu")(h)
                h = layers.AveragePooling1D(2)(h)
                h = layers.Conv1D(16, 5, activation="relu")(h)
            h = layers.GlobalAveragePooling1D()(h) if head == "gap" else layers.Flatten()(h)
            h = layers.Dense(16)(h)
            h = layers.LeakyReLU(0.1)(h)
            return layers.Dense(n_classes)(h)

        return apply

    return build


def _shipped(kind: str) -> object:
    """The device family exactly as shipped (dysan.nets.device: ReLU6, width 16), as one nested model."""

    def build(k: object) -> object:
        from dysan.nets import device

        net = device.sanitizer(16, batch_size=1) if kind == "S" else device.classifier(4, batch_size=1)
        return lambda x: net(x)

    return build


WINDOW = (125, 6)
SHIPPED = [Case("S16_device", WINDOW, _shipped("S"), seed=21), Case("P_device", WINDOW, _shipped("P"), seed=22)]
FAMILY = [
    Case("S16", WINDOW, _sanitizer(16), seed=11),
    Case("S32", WINDOW, _sanitizer(32), seed=12),
    Case("P8", WINDOW, _classifier(8, 4), seed=13),
    Case("D16", WINDOW, _classifier(16, 2), seed=14),
    Case("P_flatten", WINDOW, _classifier(8, 4, head="flatten"), seed=15),
    Case("D_depthwise", WINDOW, _classifier(12, 2, depthwise=True), seed=16),
]
_BY_NAME = {c.name: c for c in FAMILY + SHIPPED}


@pytest.mark.parametrize("case", FAMILY, ids=lambda c: c.name)
def test_family_bit_exact_native(case: Case) -> None:
    check_bit_exact(tflite_of(case), "host")


@pytest.mark.qemu
@pytest.mark.parametrize("kind", ["qemu", "qemu-portable"])
@pytest.mark.parametrize("name", ["S32", "P8", "P_flatten", "D_depthwise"])
def test_family_bit_exact_cortex_m4(name: str, kind: str) -> None:
    check_bit_exact(tflite_of(_BY_NAME[name]), kind)


@pytest.mark.qemu
def test_unflagged_requantization_on_cortex_m4() -> None:
    """Without DYSAN_NN_OPF_ACC_BOUNDED the DSP build requantizes with the general TFLM arithmetic: also exact."""
    tfl = tflite_of(_BY_NAME["S16"])
    image = mi.image_from_tflite(tfl)
    ed = ImageEditor(image.data)
    flagged = [i for i in range(ed.header("n_ops")) if ed.op(i, "flags")]
    assert flagged, "expected the sanitizer's convolutions to be flagged"
    for i in flagged:
        ed.set_op(i, "flags", 0)
    x = int8_inputs(tfl)
    res = run_image(ed.bytes(), x, "qemu")
    assert res.rc == 0, res.stdout
    assert_same(tflm_run(tfl, x), res.outputs, "qemu, unflagged")


def test_size_report() -> None:
    image = mi.image_from_tflite(tflite_of(_BY_NAME["S32"]))
    rep = image.report()
    assert rep["flash_bytes"] == len(image.data)
    assert [op["kind"] for op in rep["ops"]] == ["CONV_2D", "CONV_2D", "CONV_2D", "ADD"]
    # S32: 125 positions x (32 x 5 x 6 + 32 x 5 x 32 + 6 x 5 x 32) multiply-accumulates
    assert [op["macs"] for op in rep["ops"]] == [120_000, 640_000, 120_000, 0]
    assert rep["total_macs"] == 880_000
    # activations: the input stays live for the residual; peak is the dilated conv with its scratch
    assert 3 * 125 * 32 < rep["arena_bytes"] < 32 * 1024
    weights = 32 * 5 * 6 + 32 * 5 * 32 + 6 * 5 * 32
    assert weights < rep["flash_bytes"] < weights + 2048


def test_c_array_rendering() -> None:
    image = mi.image_from_tflite(tflite_of(_BY_NAME["P8"])).data
    src = mi.render_c_array(image, "dysan_model_p8")
    assert f"const uint8_t dysan_model_p8[{len(image)}]" in src and "aligned(4)" in src
    assert src.count("0x") == len(image)


def _profile(name: str, kind: str) -> dict:
    tfl = tflite_of(_BY_NAME[name])
    image = mi.image_from_tflite(tfl)
    x = int8_inputs(tfl, 20)
    res = run_image(image.data, x, kind, profile=True)
    assert res.rc == 0, res.stdout
    assert_same(tflm_run(tfl, x), res.outputs, kind)
    return res.profile(len(x))


@pytest.mark.qemu
def test_m4_instruction_counts() -> None:
    """Instructions per inference under QEMU (deterministic), DSP vs portable; the DSP path must be faster,
    the sanitizer's large dilated convolution must run at >= 0.95 MAC per instruction, and S16 (the small
    end of the family) must sanitize a window in <= 1 M instructions (docs: BRIEF.md section 4)."""
    table = {}
    for name in ("S16", "S32", "P8", "D_depthwise"):
        for kind in ("qemu", "qemu-portable"):
            table[f"{name}/{'dsp' if kind == 'qemu' else 'portable'}"] = _profile(name, kind)
    report = {}
    for key, prof in table.items():
        report[key] = {
            "total_instructions": round(prof["total_instructions"]),
            "ops": [
                {
                    "kind": op["kind"],
                    "macs": op["macs"],
                    "instructions": round(op["instructions"]),
                    "macs_per_instruction": round(op["macs"] / op["instructions"], 3) if op["macs"] else None,
                }
                for op in prof["ops"]
            ],
        }
    out = os.environ.get("DYSAN_NN_BENCH_JSON")
    if out:
        with open(out, "w") as f:
            json.dump(report, f, indent=2)
    for name in ("S16", "S32", "P8", "D_depthwise"):
        assert table[f"{name}/dsp"]["total_instructions"] < table[f"{name}/portable"]["total_instructions"]
    s32 = table["S32/dsp"]["ops"][1]
    assert s32["macs"] == 640_000 and s32["macs"] / s32["instructions"] >= 0.95, s32
    assert table["S16/dsp"]["total_instructions"] <= 1_000_000


@pytest.mark.qemu
def test_m4_shipped_sanitizer_convolutions_reach_one_mac_per_instruction() -> None:
    """The shipped sanitizer (device.sanitizer(16): Conv1D 6->16, dilated 16->16, 16->6 and the residual
    ADD) on the Cortex-M4 DSP path: bit-exact with TFLM, and every convolution at >= 1.0 MAC per executed
    instruction (QEMU -icount: deterministic), scratch preparation, padding and requantization included. The
    shipped scorer's convolutions (device.classifier: a stride-2 30-MAC window first) are held to >= 0.95."""
    s16 = _profile("S16_device", "qemu")
    convs = [op for op in s16["ops"] if op["kind"] == mi.OP_KINDS["CONV_2D"]]
    assert [op["macs"] for op in convs] == [60_000, 160_000, 60_000]
    for op in convs:
        assert op["macs"] / op["instructions"] >= 1.0, (op, s16)
    p = _profile("P_device", "qemu")
    convs = [op for op in p["ops"] if op["kind"] == mi.OP_KINDS["CONV_2D"]]
    assert [op["macs"] for op in convs] == [21_960, 24_960]
    for op in convs:
        assert op["macs"] / op["instructions"] >= 0.95, (op, p)


@pytest.mark.parametrize("kind", ["host", pytest.param("qemu", marks=pytest.mark.qemu)])
def test_step_api_matches_invoke(kind: str) -> None:
    """dysan_nn_begin / dysan_nn_step (each op in turn) / dysan_nn_end give dysan_nn_invoke's outputs byte for
    byte (the runner's --steps), and both equal TFLM's (the CMSIS-NN bench and sliced inference rely on it)."""
    tfl = tflite_of(_BY_NAME["P8"])
    image = mi.image_from_tflite(tfl).data
    x = int8_inputs(tfl, 20)
    whole, stepped = run_image(image, x, kind), run_image(image, x, kind, steps=True)
    assert whole.rc == 0 and stepped.rc == 0, (whole.stdout, stepped.stdout)
    assert_same(whole.outputs, stepped.outputs, f"{kind}, steps")
    assert_same(tflm_run(tfl, x), stepped.outputs, f"{kind}, steps vs TFLM")
