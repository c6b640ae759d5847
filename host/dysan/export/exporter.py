"""``dysan export``: a trained device-family run -> the model bundle the wearable runs.

For each grid point: full-int8 TFLite of S, P and D (batch 1, int8 input and output, calibrated on real
training windows), the model images of the C kernels, then one bundle image plus a manifest::

    OUT/manifest.json            format version, contract, normalization, quantization, α/λ, sha256 of files
    OUT/bundle.bin               the DYSB bundle image (``bundle_format``), what the device loads
    OUT/<point>/{S,P,D}.tflite   the int8 models (what TFLM and the reference pipeline run)
    OUT/dysan_bundle.c           the bundle as a C array for the firmware's BUNDLE region (``--c-out`` too)

P and D read their sanitizer's int8 output directly on the device, so their input quantization is forced to
S's output quantization (:func:`dysan.export.quantize.convert`); all sanitizers share one input
quantization (same calibration windows), which the bundle header carries with the normalization as the
device's preprocessing parameters.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .. import contract, jitter, nets, ui
from ..errors import DysanError
from ..preprocess import Normalization
from ..rundir import BundleDir, RunDir
from ..train.grid import GridPoint
from . import bundle_format, model_image, quantize

MANIFEST_VERSION = 1
CALIBRATION_WINDOWS = 400
"""Training windows (seeded draw) from which the converter takes every int8 activation range (min/max).
Measured on the SisFall grid, every evaluation window: 2000 windows improved the three models that were worst
with 400, but over all 36 it was worse (own-P / own-D vs float: mean 0.52 / 0.43 pt against 0.43 / 0.32, three
models over 1 pt against one), so 400 stays."""
INPUT_RANGE_PERCENTILE = 99.99
"""``--input-range-percentile``: the calibration windows are clipped to their [100 − p, p] percentiles (over all
values) before conversion, so the int8 input range (and every activation range after it) ignores the rarest
extremes; the device saturates those samples (``quantize_input`` clips to int8); 100 keeps min/max. Why 99.99 is
the default: most of the int8-vs-float loss of own-P / own-D is the input quantization itself, and min/max over
400 SisFall windows with falls spans ±12 σ (step 0.099 σ). On the full 36-point SisFall grid (every one of its
5,883 evaluation windows, docs/export.md) `dysan export --verify` passes with 99.99 (own-P max 0.66 pt, own-D
max 0.99 pt), where min/max had failed on one D (1.07 pt); on a 4-point new-users grid 99.99 passed (0.59 pt)
and min/max failed (1.27 pt)."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_run(run_dir: Path) -> tuple[dict, dict[str, np.ndarray], list[GridPoint]]:
    rd = RunDir(run_dir)
    if not rd.is_run():
        raise DysanError(f"{run_dir}: not a run directory (no {rd.config.name}; train one with `dysan train`)")
    config = json.loads(rd.config.read_text())
    with np.load(rd.data) as z:
        arrays = {k: z[k] for k in z.files}
    points = [GridPoint(p["alpha"], p["lambda"]) for p in config["grid"]]
    missing = [p.name for p in points if not rd.model(p.name).is_done()]
    if missing:
        raise DysanError(f"{run_dir}: {len(missing)} grid point(s) not trained yet ({', '.join(missing[:4])}...); "
                         "rerun the same `dysan train` command to finish them")
    return config, arrays, points


def builders(config: dict) -> dict[str, Callable]:
    """The run's S, P, D constructors (:func:`dysan.nets.builders`), refused for a host-only family."""
    train = config["train"]
    if train["family"] not in nets.ON_DEVICE:
        raise DysanError(f"the {train['family']} family is host-only (its ops and size do not fit the device); "
                         "export a --family device run")
    return nets.builders(train["family"], len(config["classes"]), width=train["width"])


def _score_default_model(outputs: dict[str, dict], y_act: np.ndarray, y_sens: np.ndarray,
                         schedule: bundle_format.ScheduleDefaults) -> tuple[int, list[dict]]:
    """The model best on average (the paper's *fixed* model) by the selection score on training windows."""
    from ..selection import segment_scores

    names = list(outputs)
    act = np.stack([outputs[n]["p_pred"] == y_act for n in names], axis=1)
    sens = np.stack([outputs[n]["d_pred"] == y_sens for n in names], axis=1)
    scores = segment_scores(act, sens, np.ones_like(act), schedule.score_x_q15, schedule.score_y_q15)
    table = [{"model": n, "own_P_acc": float(act[:, i].mean()), "own_D_acc": float(sens[:, i].mean()),
              "score_q16": int(scores[i])} for i, n in enumerate(names)]
    return int(np.argmax(scores)), table


def clip_to_percentile(calib: np.ndarray, percentile: float | None) -> tuple[np.ndarray, list[float] | None]:
    """``calib`` clipped to its [100 − p, p] percentiles over all values (the range the converter then sees)."""
    if percentile is None or percentile >= 100:
        return calib, None
    if not 50 < percentile <= 100:
        raise DysanError(f"input range percentile {percentile} must be in (50, 100]")
    lo, hi = (float(v) for v in np.percentile(calib, [100 - percentile, percentile]))
    return np.clip(calib, lo, hi), [lo, hi]


def export_run(run_dir: str | Path, out_dir: str | Path, schedule: bundle_format.ScheduleDefaults | None = None,
               c_out: str | Path | None = None, progress=ui.progress,
               input_percentile: float | None = INPUT_RANGE_PERCENTILE) -> dict:
    """Export every grid point of ``run_dir``; returns the manifest (also written to OUT/manifest.json)."""
    import keras

    run_dir, out_dir = Path(run_dir), Path(out_dir)
    rd, bd = RunDir(run_dir), BundleDir(out_dir)
    schedule = schedule or bundle_format.ScheduleDefaults()
    config, arrays, points = load_run(run_dir)
    build = builders(config)
    norm = Normalization.from_dict(config["normalization"])
    rng = np.random.default_rng(config["train"]["seed"])
    x_train = arrays["x_train"]
    calib_idx = np.sort(rng.choice(len(x_train), size=min(CALIBRATION_WINDOWS, len(x_train)), replace=False))
    calib, calib_range = clip_to_percentile(x_train[calib_idx], input_percentile)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    models_meta, bundle_models, outputs = [], [], {}
    s_input_quant = None
    with progress(f"exporting {len(points)} grid points to int8", len(points)) as step:
        for point in points:
            src = rd.model(point.name)
            float_models = {k: keras.models.load_model(src.keras(k), compile=False) for k in "SPD"}
            s_b1 = quantize.rebuild_batch1(float_models["S"], build["S"])
            s_flat = quantize.convert(s_b1, calib)
            q_s = quantize.io_quant(s_flat)
            if s_input_quant is None:
                s_input_quant = q_s["input"]
            elif q_s["input"] != s_input_quant:
                raise DysanError(f"{point.name}: sanitizer input quantization {q_s['input']} differs from the "
                                 f"bundle's {s_input_quant} (all sanitizers must share the device preprocessing)")
            s_out = float_models["S"].predict(calib, batch_size=256, verbose=0)
            flats = {"S": s_flat}
            for k in "PD":
                b1 = quantize.rebuild_batch1(float_models[k], build[k])
                flats[k] = quantize.convert(b1, s_out, input_quant=q_s["output"])
            images = {k: model_image.image_from_tflite(v) for k, v in flats.items()}
            bd.tflite(point.name, "S").parent.mkdir(exist_ok=True)
            files = {}
            for k, flat in flats.items():
                bd.tflite(point.name, k).write_bytes(flat)
                files[k] = {"path": bd.tflite_name(point.name, k), "sha256": _sha256(flat), "bytes": len(flat),
                            "quantization": quantize.io_quant(flat), **_image_report(images[k])}
            models_meta.append({"index": len(models_meta), "name": point.name, "alpha": point.alpha,
                                "lambda": point.lam, "files": files})
            bundle_models.append(bundle_format.BundleModel(point.alpha, point.lam, images["S"].data,
                                                           images["P"].data, images["D"].data,
                                                           jitter.ratio_q16(q_s["output"][0], q_s["input"][0])))
            sample = x_train[: min(2048, len(x_train))]
            s_float = float_models["S"].predict(sample, batch_size=256, verbose=0)
            outputs[point.name] = {
                "p_pred": float_models["P"].predict(s_float, batch_size=256, verbose=0).argmax(1),
                "d_pred": float_models["D"].predict(s_float, batch_size=256, verbose=0).argmax(1),
            }
            step.advance(1, note=point.name)
    n_train_sample = min(2048, len(x_train))
    default_model, fixed_table = _score_default_model(outputs, arrays["ya_train"][:n_train_sample],
                                                      arrays["ys_train"][:n_train_sample], schedule)
    assert s_input_quant is not None
    multipliers = norm.multipliers(s_input_quant[0])
    max_arena = max(f["arena_bytes"] for m in models_meta for f in m["files"].values())
    bundle_id = int.from_bytes(hashlib.sha256(json.dumps(models_meta, sort_keys=True).encode()).digest()[:4],
                               "little")
    train_cfg = config.get("train", {})
    jitter_params = (jitter.JitterParams(train_cfg.get("jitter_angle", 10.0), train_cfg.get("jitter_gain", 0.1))
                     if train_cfg.get("jitter") else None)
    bundle = bundle_format.pack(bundle_models, n_classes=len(config["classes"]), center=norm.center,
                                multipliers=multipliers, input_zp=s_input_quant[1], default_model=default_model,
                                schedule=schedule, max_arena=max_arena, bundle_id=bundle_id, jitter=jitter_params)
    bd.image.write_bytes(bundle)
    population = write_calibration_population(out_dir, x_train, arrays["ya_train"], norm, len(config["classes"]))
    manifest = {
        "format_version": MANIFEST_VERSION,
        "bundle_format_version": bundle_format.VERSION,
        "created_unix": int(time.time()),
        "run": str(run_dir),
        "data": config["data"],
        "synthetic": config.get("synthetic", False),
        "protocol": config["protocol"],
        "family": config["train"]["family"],
        "classes": config["classes"],
        "attribute": config["attribute"],
        "attribute_labels": config["attribute_labels"],
        "contract": contract.as_dict(),
        "normalization": {**norm.to_dict(), "multipliers": list(multipliers), "input_scale": s_input_quant[0],
                          "input_zero_point": s_input_quant[1]},
        "schedule": asdict(schedule),
        "jitter": None if jitter_params is None else {
            "max_angle_deg": jitter_params.max_angle_deg, "max_gain": jitter_params.max_gain,
            "max_angle_q14": jitter_params.max_angle_q14, "max_gain_q14": jitter_params.max_gain_q14},
        "calibration": {"windows": len(calib), "input_range_percentile": input_percentile,
                        "clipped_to": calib_range},
        "default_model": default_model,
        "fixed_model_table": fixed_table,
        "bundle": {"path": bd.IMAGE, "sha256": _sha256(bundle), "bytes": len(bundle), "id": bundle_id,
                   "max_arena_bytes": max_arena},
        "models": models_meta,
        "calibration_population": population,
        "seconds": round(time.time() - t0, 1),
    }
    c_text = render_bundle_c(bundle, manifest)
    bd.c_source.write_text(c_text)
    manifest["files"] = {bd.C_SOURCE: _sha256(c_text.encode())}
    bd.manifest.write_text(json.dumps(manifest, indent=2))
    if c_out is not None:
        c_dir = Path(c_out)
        c_dir.mkdir(parents=True, exist_ok=True)
        (c_dir / bd.C_SOURCE).write_text(c_text)
    return manifest


def write_calibration_population(out_dir: Path, x_train: np.ndarray, y_train: np.ndarray, norm: Normalization,
                                 n_classes: int) -> dict:
    """The calibration forest's population (:class:`dysan.calibration.rf.Population`): the integer features and
    activities of every training window, which ``dysan calibrate --bundle`` fits with the user's windows."""
    from ..calibration import rf

    counts = np.rint(norm.denormalize(x_train))
    counts = np.clip(counts, contract.INT16_MIN, contract.INT16_MAX).astype(np.int16)
    pop = rf.Population.from_windows(counts, y_train, n_classes)
    path = BundleDir(out_dir).population
    pop.save(path)
    return {"path": path.name, "sha256": _sha256(path.read_bytes()), "windows": len(pop),
            "features": int(pop.features.shape[1]), "rf_version": rf.VERSION}


def _image_report(image: model_image.ModelImage) -> dict:
    rep = image.report()
    return {"image_bytes": rep["flash_bytes"], "arena_bytes": rep["arena_bytes"], "macs": rep["total_macs"]}


def render_bundle_c(bundle: bytes, manifest: dict) -> str:
    """The bundle as a const array in section ``dysan_bundle`` (linked at the start of the BUNDLE region),
    preceded by a readable summary: every model's α/λ, sizes and quantization parameters."""
    norm = manifest["normalization"]
    lines = [
        "/* GENERATED by `dysan export` -- the default model bundle of this firmware image. Do not edit.",
        f" * source run: {manifest['run']}  data: {manifest['data']}" + ("  (SYNTHETIC)" if manifest["synthetic"]
                                                                         else ""),
        f" * {len(manifest['models'])} models x (S, P, D), {len(bundle)} bytes, sha256 {manifest['bundle']['sha256']}",
        f" * preprocessing: center {norm['center']}, multipliers {norm['multipliers']} (>> {contract.NORM_SHIFT}), "
        f"input zero point {norm['input_zero_point']} (scale {norm['input_scale']:.6g})",
        f" * default (fixed) model: {manifest['default_model']}; schedule {manifest['schedule']}",
        " *",
        " *  id  alpha  lambda   S bytes  P bytes  D bytes   S MACs   arena   S out quant (scale, zp)",
    ]
    for m in manifest["models"]:
        f = m["files"]
        q = f["S"]["quantization"]["output"]
        lines.append(f" * {m['index']:3d}  {m['alpha']:.2f}   {m['lambda']:.2f}   {f['S']['image_bytes']:7d}  "
                     f"{f['P']['image_bytes']:7d}  {f['D']['image_bytes']:7d}  {f['S']['macs']:7d}  "
                     f"{max(f[k]['arena_bytes'] for k in 'SPD'):6d}   ({q[0]:.6g}, {q[1]})")
    lines += [
        " */",
        "#include <stddef.h>",
        "#include <stdint.h>",
        "",
        '__attribute__((section("dysan_bundle"), used, aligned(8)))',
        f"const uint8_t dysan_default_bundle[{len(bundle)}] = {{",
    ]
    lines += model_image.c_byte_rows(bundle)
    lines += ["};", f"const size_t dysan_default_bundle_len = {len(bundle)};", ""]
    return "\n".join(lines)
