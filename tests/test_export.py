"""Export: int8 TFLite + model images + bundle + manifest, bit-exact C kernels on every exported model."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from dysan.cli import main
from dysan.export import bundle_format, model_image
from dysan.export.size_report import size_report
from dysan.export.verify import verify_export
from dysan.preprocess import Normalization, quantize_input
from test_nn_support import run_image, tflm_run


def _manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def _device_inputs(run_dir: Path, manifest: dict, n: int) -> np.ndarray:
    """Evaluation windows as the device quantizes them (counts -> int8)."""
    cfg = json.loads((run_dir / "config.json").read_text())
    with np.load(run_dir / "data.npz") as z:
        x = z["x_test"][:n]
    counts = np.rint(Normalization.from_dict(cfg["normalization"]).denormalize(x)).astype(np.int16)
    nm = manifest["normalization"]
    return quantize_input(counts, tuple(nm["center"]), tuple(nm["multipliers"]), nm["input_zero_point"])


def test_manifest_bundle_and_files_agree(tiny_run, tiny_export):
    m = _manifest(tiny_export)
    assert m["format_version"] == 1 and m["synthetic"] is True and len(m["models"]) == 4
    assert m["contract"]["window"] == 125 and m["contract"]["channels"][0] == "acc_x"
    bundle = (tiny_export / "bundle.bin").read_bytes()
    assert hashlib.sha256(bundle).hexdigest() == m["bundle"]["sha256"]
    header, models = bundle_format.unpack(bundle)
    assert header["n_models"] == 4 and header["n_classes"] == len(m["classes"])
    assert [header[f"center{i}"] for i in range(6)] == m["normalization"]["center"]
    assert [header[f"mult{i}"] for i in range(6)] == m["normalization"]["multipliers"]
    assert header["input_zp"] == m["normalization"]["input_zero_point"]
    assert header["default_model"] == m["default_model"]
    s_in = {tuple(e["files"]["S"]["quantization"]["input"]) for e in m["models"]}
    assert len(s_in) == 1  # one device preprocessing for every sanitizer
    for entry, meta in zip(models, m["models"], strict=True):
        assert entry["alpha_milli"] == round(1000 * meta["alpha"])
        assert entry["lambda_milli"] == round(1000 * meta["lambda"])
        s_out = meta["files"]["S"]["quantization"]["output"]
        for net in "SPD":
            f = meta["files"][net]
            flat = (tiny_export / f["path"]).read_bytes()
            assert hashlib.sha256(flat).hexdigest() == f["sha256"]
            assert entry[net] == model_image.image_from_tflite(flat).data
            if net != "S":  # P and D read S's int8 output as is: same quantization (float32 rounding aside)
                assert f["quantization"]["input"][1] == s_out[1]
                assert f["quantization"]["input"][0] == pytest.approx(s_out[0], rel=1e-6)


def test_every_exported_model_is_bit_exact_in_c(tiny_run, tiny_export):
    """Every S, P and D of the exported grid on 200 windows: C kernels (host build) == TFLM, byte for byte."""
    m = _manifest(tiny_export)
    x = _device_inputs(tiny_run, m, 200)
    assert len(x) == 200
    kinds = set()
    for meta in m["models"]:
        flats = {k: (tiny_export / meta["files"][k]["path"]).read_bytes() for k in "SPD"}
        s_out = tflm_run(flats["S"], x[:, None])  # (n, 750) int8
        windows = s_out.reshape(len(x), 1, *x.shape[1:])
        for net, inputs, want in (("S", x[:, None], s_out), ("P", windows, None), ("D", windows, None)):
            image = model_image.image_from_tflite(flats[net])
            kinds.update(op.kind for op in image.ops)
            expected = want if want is not None else tflm_run(flats[net], inputs)
            got = run_image(image.data, inputs.reshape(len(inputs), -1))
            assert got.rc == 0, got.stdout
            np.testing.assert_array_equal(got.outputs, expected, err_msg=f"{meta['name']} {net}")
    # every op the device family uses was exercised
    assert kinds >= {"CONV_2D", "ADD", "AVERAGE_POOL_2D", "MEAN", "FULLY_CONNECTED"}


@pytest.fixture(scope="module")
def verify_report(tiny_run, tiny_export):
    return verify_export(tiny_run, tiny_export, n_windows=300)


def test_verify_passes_every_check(verify_report, tiny_export):
    """`dysan export --verify` on the tiny grid: every check passes (not only plausible ranges), and the per-op
    TFLM vs TF Lite comparison covers every op of S, P and D."""
    rep = verify_report
    failed = {k: c for k, c in rep["checks"].items() if not (c is True or c["passed"])}
    assert not failed, failed
    assert rep["passed"] is True
    # the P/D limit is 1 pt, widened only to 6 windows' worth on a split this small (verify.MIN_RESOLVED_WINDOWS)
    assert rep["checks"]["p_d_int8_vs_float_points"]["limit"] == pytest.approx(max(1.0, 600 / rep["windows"]))
    lsb = rep["checks"]["tflm_vs_tflite_max_lsb"]
    assert lsb["value"] <= 1 and lsb["op_evaluations_compared"] >= 0.9 * lsb["op_evaluations"] > 0
    assert len(rep["models"]) == 4
    n_classes = len(_manifest(tiny_export)["classes"])
    for m in rep["models"]:  # every output of S, P, D compared on every window
        assert m["outputs_compared"]["P"] == 300 * n_classes
        ops = {net: [o["op"] for o in stats] for net, stats in m["tflm_vs_tflite_per_op"].items()}
        assert {"CONV_2D", "ADD"} <= set(ops["S"]) and {"MEAN", "FULLY_CONNECTED"} <= set(ops["D"]), ops
        for a in m["analysts"].values():
            assert {"float", "int8", "int8_seen_by_float_analyst", "float_other_seed"} <= set(a)
    assert set(rep["not_checked"]) == {"tflm_vs_tflite_end_to_end_max_lsb", "tflm_vs_tflite_outputs_over_limit",
                                       "analyst_seed_noise_max_points", "float_analyst_on_int8_max_points"}


@pytest.mark.parametrize("limit", ["tflm_vs_tflite_lsb", "p_d_points", "sanitizer_points"])
def test_verify_fails_when_a_check_fails(verify_report, monkeypatch, limit):
    """The `passed` flags are real: the same measurements against a limit nothing meets fail that check and the
    report (so `dysan export --verify` exits 1)."""
    from dysan.export import verify

    monkeypatch.setitem(verify.LIMITS, limit, -1)
    monkeypatch.setattr(verify, "MIN_RESOLVED_WINDOWS", 0)
    rep = verify.summarize(verify_report["models"], verify_report["windows"], verify_report["training_windows"])
    check = {"tflm_vs_tflite_lsb": "tflm_vs_tflite_max_lsb", "p_d_points": "p_d_int8_vs_float_points",
             "sanitizer_points": "sanitizer_int8_vs_float_points"}[limit]
    assert rep["checks"][check]["passed"] is False and rep["passed"] is False
    assert verify_report["checks"][check]["passed"] is True  # the same measurements pass the real limit


def test_size_report_and_c_source(tiny_export, tmp_path):
    rep = size_report(tiny_export, rf_table_bytes=1000)
    t = rep["totals"]
    assert len(rep["per_model"]) == 12
    assert t["bundle_bytes"] >= t["model_images_bytes"] and t["max_arena_bytes"] > 0
    assert t["sanitize_macs_per_window"] <= 1_000_000
    c = tiny_export / "dysan_bundle.c"
    obj = tmp_path / "b.o"
    subprocess.run(["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-c", str(c), "-o", str(obj)], check=True)
    assert obj.stat().st_size > _manifest(tiny_export)["bundle"]["bytes"]


def test_export_refuses_what_it_cannot_run(tiny_run, tmp_path, capsys):
    cfg = json.loads((tiny_run / "config.json").read_text())
    paper = tmp_path / "paper-run"
    paper.mkdir()
    (paper / "config.json").write_text(json.dumps({**cfg, "train": {**cfg["train"], "family": "paper"}}))
    (paper / "data.npz").write_bytes((tiny_run / "data.npz").read_bytes())
    for p in cfg["grid"]:
        d = paper / "models" / p["name"]
        d.mkdir(parents=True)
        (d / "done.json").write_text("{}")
    assert main(["export", str(paper), "--out", str(tmp_path / "o")]) == 2
    assert "host-only" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")]) == 2
    assert "not a run directory" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["truncate", "magic"])
def test_bundle_reader_rejects_corruption(tiny_export, bad):
    data = bytearray((tiny_export / "bundle.bin").read_bytes())
    if bad == "truncate":
        data = data[:1000]
    else:
        data[0] ^= 0xFF
    from dysan.errors import DysanError

    with pytest.raises(DysanError):
        bundle_format.unpack(bytes(data))


def test_scorer_output_range_comes_from_real_windows_not_the_range_forcing_ones():
    """P and D are converted with two synthetic windows that force their input quantization (S's output's);
    their logits' int8 range is then set from the real calibration windows alone, so it is not widened by
    what those two windows make the network output (which coarsened the logits into argmax ties)."""
    import keras

    from dysan.export import quantize
    from dysan.nets import device

    keras.utils.set_random_seed(4)
    d = device.discriminator(batch_size=1)
    rep = np.random.default_rng(1).normal(size=(64, 125, 6)).astype(np.float32)
    input_quant = (20.0 / 255, -1)  # about [-10.1, 9.9]: far wider than the real windows
    flat = quantize.convert(d, rep, input_quant=input_quant)
    q = quantize.io_quant(flat)
    assert q["input"][1] == input_quant[1] and q["input"][0] == pytest.approx(input_quant[0], rel=1e-6)
    real = np.concatenate([d(w[None], training=False).numpy() for w in rep])
    assert q["output"] == quantize.int8_range_quant(float(real.min()), float(real.max()))
    lo, hi = input_quant[0] * (-128 - input_quant[1]), input_quant[0] * (127 - input_quant[1])
    forcing = d(np.stack([np.full((125, 6), lo), np.full((125, 6), hi)]).astype(np.float32), training=False).numpy()
    scale, zp = q["output"]
    assert forcing.min() < scale * (-128 - zp) or forcing.max() > scale * (127 - zp)  # they would have widened it
    # so the real windows' int8 logits (TFLM) use nearly the whole int8 range: full resolution at the boundary
    x = np.clip(np.round(rep / input_quant[0]) + input_quant[1], -128, 127).astype(np.int8)
    got = tflm_run(flat, x[:, None]).astype(int)
    assert got.max() - got.min() >= 200, (got.min(), got.max())
