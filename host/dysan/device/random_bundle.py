"""Model bundles of *untrained* device-family networks, for firmware tests and benchmarks.

The firmware's correctness checks (every sanitized window equal to the Python reference, byte for byte) and
its cost measurements (instructions per stage) do not depend on what the weights learned: the int8 kernels
run the same instructions whatever the values. So tests and ``dysan bench-firmware`` can run without a
trained grid, on networks of the exact device-family shapes (:mod:`dysan.nets.device`) with random weights,
converted the way :mod:`dysan.export.exporter` converts trained ones:

* every S on one shared input quantization (the bundle's preprocessing);
* P and D with their input quantization forced to their S's output quantization
  (:func:`dysan.export.quantize.convert`'s ``input_quant``), so the device chains them without requantizing.

The directory written has the exporter's layout (``bundle.bin``, ``manifest.json`` with the same ``models``
entries, ``<point>/{S,P,D}.tflite``), so :mod:`dysan.device.reference` reads both the same way. Weights are
drawn with a spread that makes the classifiers' decisions vary from window to window and from model to
model, so the selection has real choices to make.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from .. import contract
from ..errors import DysanError
from ..export import bundle_format, model_image, quantize
from ..preprocess import Normalization
from ..rundir import BundleDir

INPUT_QUANT = (9.0 / 255.0, 0)
"""int8 input quantization of every sanitizer: about +-4.5 standard deviations around the center."""
MANIFEST_FORMAT = 1


def _randomize(model, rng: np.random.Generator, last_kernel_gain: float = 1.0) -> None:
    weights = model.get_weights()
    out = []
    for i, w in enumerate(weights):
        if w.ndim >= 2:
            fan_in = int(np.prod(w.shape[:-1]))
            gain = last_kernel_gain if i == len(weights) - 2 else 1.0
            out.append(rng.normal(scale=gain * 1.4 / np.sqrt(fan_in), size=w.shape).astype(np.float32))
        else:
            out.append(rng.normal(scale=0.2, size=w.shape).astype(np.float32))
    model.set_weights(out)


def _triple(rng: np.random.Generator, calib: np.ndarray, n_classes: int, width: int,
            sensitive_classes: int = 2) -> dict[str, bytes]:
    """One random (S, P, D), converted to int8 TFLite."""
    from ..nets import device

    s_any = device.sanitizer(width)
    _randomize(s_any, rng, last_kernel_gain=0.4)
    s_b1 = device.sanitizer(width, batch_size=1)
    s_b1.set_weights(s_any.get_weights())
    s_flat = quantize.convert(s_b1, calib, input_quant=INPUT_QUANT)
    s_out_q = quantize.io_quant(s_flat)["output"]
    s_out = s_any.predict(calib, batch_size=256, verbose=0)
    flats = {"S": s_flat}
    for key, classes in (("P", n_classes), ("D", sensitive_classes)):
        any_b = device.classifier(classes)
        _randomize(any_b, rng)
        b1 = device.classifier(classes, batch_size=1)
        b1.set_weights(any_b.get_weights())
        flats[key] = quantize.convert(b1, s_out, input_quant=s_out_q)
    return flats


def build(out_dir: str | Path, windows: np.ndarray, *, n_models: int = 4, distinct: int | None = None,
          n_classes: int = 4, width: int = 16, seed: int = 0,
          schedule: bundle_format.ScheduleDefaults | None = None, calibration: int = 200,
          sensitive_classes: int = 2) -> Path:
    """Writes a bundle directory of ``n_models`` random (S, P, D) triples; returns ``out_dir``.

    ``windows``: int16 count windows ``(n, WINDOW, 6)`` for the normalization and the int8 calibration.
    ``distinct``: how many different triples to convert (default all); the rest repeat them, which keeps a
    36-model benchmark bundle quick to make while its size and costs stay those of 36 models.
    """
    import keras

    if n_models < 1 or n_models > bundle_format.MAX_MODELS:
        raise DysanError(f"n_models must be 1..{bundle_format.MAX_MODELS}")
    distinct = n_models if distinct is None else max(1, min(distinct, n_models))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    w = np.asarray(windows, dtype=np.int16).reshape(-1, contract.WINDOW, contract.N_CHANNELS)
    norm = Normalization.fit(w)
    rng = np.random.default_rng(seed)
    calib = norm.normalize(w[rng.permutation(len(w))[:calibration]])
    keras.utils.set_random_seed(seed)
    triples = [_triple(rng, calib, n_classes, width, sensitive_classes) for _ in range(distinct)]

    models_meta, bundle_models, max_arena = [], [], 0
    for i in range(n_models):
        flats = triples[i % distinct]
        alpha, lam = round(0.1 + 0.1 * (i % 8), 3), round(0.1 + 0.1 * ((i // 8) % 8), 3)
        name = f"m{i:02d}_a{int(alpha * 100):02d}_l{int(lam * 100):02d}"
        (out / name).mkdir(exist_ok=True)
        images, files = {}, {}
        for key, flat in flats.items():
            (out / name / f"{key}.tflite").write_bytes(flat)
            images[key] = model_image.image_from_tflite(flat)
            rep = images[key].report()
            max_arena = max(max_arena, rep["arena_bytes"])
            files[key] = {"path": f"{name}/{key}.tflite", "sha256": hashlib.sha256(flat).hexdigest(),
                          "bytes": len(flat), "quantization": quantize.io_quant(flat),
                          "image_bytes": rep["flash_bytes"], "arena_bytes": rep["arena_bytes"],
                          "macs": rep["total_macs"]}
        models_meta.append({"index": i, "name": name, "alpha": alpha, "lambda": lam, "files": files})
        bundle_models.append(bundle_format.BundleModel(alpha, lam, images["S"].data, images["P"].data,
                                                       images["D"].data))
    schedule = schedule or bundle_format.ScheduleDefaults()
    multipliers = norm.multipliers(INPUT_QUANT[0])
    bundle_id = int.from_bytes(hashlib.sha256(json.dumps(models_meta).encode()).digest()[:4], "little")
    image = bundle_format.pack(bundle_models, n_classes=n_classes, center=norm.center, multipliers=multipliers,
                               input_zp=INPUT_QUANT[1], default_model=0, schedule=schedule, max_arena=max_arena,
                               bundle_id=bundle_id, sensitive_classes=sensitive_classes)
    BundleDir(out).image.write_bytes(image)
    manifest = {
        "format_version": MANIFEST_FORMAT,
        "bundle_format_version": bundle_format.VERSION,
        "random_weights": True,
        "family": "device",
        "width": width,
        "distinct_triples": distinct,
        "classes": [f"class{i}" for i in range(n_classes)],
        "contract": contract.as_dict(),
        "normalization": {**norm.to_dict(), "multipliers": list(multipliers), "input_scale": INPUT_QUANT[0],
                          "input_zero_point": INPUT_QUANT[1]},
        "schedule": {"segment": schedule.segment, "candidates": schedule.candidates,
                     "score_x_q15": schedule.score_x_q15, "score_y_q15": schedule.score_y_q15},
        "default_model": 0,
        "bundle": {"path": BundleDir.IMAGE, "sha256": hashlib.sha256(image).hexdigest(), "bytes": len(image),
                   "id": bundle_id, "max_arena_bytes": max_arena},
        "models": models_meta,
    }
    BundleDir(out).manifest.write_text(json.dumps(manifest, indent=2))
    return out
