"""The device pipeline in Python: exactly the SANITIZED_WINDOW frames the firmware sends for a sample stream.

Given an exported bundle directory (``bundle.bin``, ``manifest.json``, ``<point>/{S,P,D}.tflite``), the
calibration RF table, the stated sensitive value, the schedule and a stream of int16 samples, it computes
what ``firmware/core/src/dysan_pipeline.c`` computes, from the host's own definitions:

* windows start at samples 0, HOP, 2*HOP, ... of the stream (``dysan_window.c``);
* preprocessing: :func:`dysan.preprocess.quantize_input` with the bundle header's center, multipliers and
  zero point;
* the RF label: :func:`dysan.features.calibration_features` + :func:`dysan.calibration.rf.predict_table`;
* every S, P, D run: the int8 ``.tflite`` in TFLM's Python interpreter (the reference kernels the C kernels
  are bit-exact with); P's and D's decision is the first index of the largest int8 logit;
* the round-robin candidates, the score horizon and the segment winner: :mod:`dysan.selection` (THE
  definition);
* the output: the winner's S output on each window of its segment, in order, with consecutive ``seq``;
  when the bundle's header has the jitter flag (its sanitizers were trained with ``dysan train --jitter``),
  each output goes through :func:`dysan.jitter.apply_int8` with the device's seed
  (:func:`dysan.jitter.device_seed` of its key) and the window's ``seq``, as ``dysan_app.c``'s ``emit``
  does.

A segment that the stream leaves incomplete is sent when the stream ends (``flush``): the device does that
when it leaves the streaming mode. Only evaluated candidates run, one TFLM interpreter per model is reused,
and a winner's output already computed while scoring is reused, as on the device.

The ``.tflite`` files are checked against the bundle: each must compile (:mod:`dysan.export.model_image`) to
the very image the bundle holds for that model, so the reference cannot silently run other models than the
firmware.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import contract, jitter, selection
from ..calibration import rf as rf_mod
from ..errors import DysanError
from ..export import bundle_format, model_image
from ..features import calibration_features
from ..preprocess import quantize_input
from ..rundir import BundleDir

FLAG_RETRANSMIT = 1
FLAG_RF_LABEL_VALID = 2
FLAG_REPLAYED = 4
WINDOW_VALUES = contract.WINDOW * contract.N_CHANNELS


@dataclass(frozen=True)
class Schedule:
    """How the device selects: windows per segment, candidates per window, score weights (Q15)."""

    segment: int
    candidates: int
    x_q15: int
    y_q15: int

    @classmethod
    def from_header(cls, header: dict) -> Schedule:
        return cls(header["segment"], header["candidates"], header["score_x_q15"], header["score_y_q15"])


@dataclass(frozen=True)
class SentWindow:
    """One SANITIZED_WINDOW as the device sends it (flags without RETRANSMIT)."""

    seq: int
    model_id: int
    rf_label: int
    flags: int
    data: bytes


class Bundle:
    """An exported bundle: the image the device loads and the TFLite models it was built from."""

    def __init__(self, directory: str | Path, verify: bool = True) -> None:
        self.directory = Path(directory)
        path = BundleDir(self.directory).image
        if not path.is_file():
            raise DysanError(f"{self.directory}: no {path.name} (export one with `dysan export`)")
        self.image = path.read_bytes()
        self.header, self.table = bundle_format.unpack(self.image)
        self.image = self.image[: self.header["bundle_size"]]
        self.manifest = self._manifest()
        self.tflite: list[dict[str, bytes]] = []
        for i, entry in enumerate(self._model_entries()):
            files = {}
            for key in "SPD":
                f = self.directory / entry[key]
                if not f.is_file():
                    raise DysanError(f"{f}: missing (model {i} of the bundle)")
                files[key] = f.read_bytes()
                if verify and model_image.image_from_tflite(files[key]).data != self.table[i][key]:
                    raise DysanError(f"{f} is not the {key} image of model {i} in bundle.bin (stale export?)")
            self.tflite.append(files)

    def _manifest(self) -> dict:
        path = BundleDir(self.directory).manifest
        if not path.is_file():
            raise DysanError(f"{self.directory}: no {path.name}")
        return json.loads(path.read_text())

    def _model_entries(self) -> Iterator[dict[str, str]]:
        models = self.manifest.get("models", [])
        if len(models) != self.header["n_models"]:
            raise DysanError(f"{self.directory}: manifest lists {len(models)} models, bundle.bin "
                             f"{self.header['n_models']}")
        for i, m in enumerate(sorted(models, key=lambda m: m.get("index", 0))):
            if m.get("index", i) != i:
                raise DysanError(f"{self.directory}: manifest model indices are not 0..n-1")
            files = m.get("files", {})
            yield {k: files[k]["path"] if k in files else f"{m['name']}/{k}.tflite" for k in "SPD"}

    @property
    def n_models(self) -> int:
        return int(self.header["n_models"])

    @property
    def n_classes(self) -> int:
        return int(self.header["n_classes"])

    @property
    def jitter(self) -> jitter.JitterParams | None:
        """The on-device jitter the bundle asks for (its header's flag and amplitudes), or None."""
        return bundle_format.jitter_params(self.header)

    def s_output_zero_point(self, model: int) -> int:
        """Zero point of model ``model``'s S output (its int8 quantization, from the manifest)."""
        models = sorted(self.manifest["models"], key=lambda m: m.get("index", 0))
        return int(models[model]["files"]["S"]["quantization"]["output"][1])

    @property
    def schedule(self) -> Schedule:
        """The schedule defaults the bundle header carries (what the device uses before any CONFIGURE)."""
        return Schedule.from_header(self.header)

    def quantize(self, counts: np.ndarray) -> np.ndarray:
        """The device's int8 model input of int16 samples ``(..., 6)``."""
        h = self.header
        center = tuple(h[f"center{i}"] for i in range(contract.N_CHANNELS))
        mult = tuple(h[f"mult{i}"] for i in range(contract.N_CHANNELS))
        return quantize_input(counts, center, mult, h["input_zp"])


class _Models:
    """One TFLM interpreter per (model, part), created on first use and reused."""

    def __init__(self, bundle: Bundle) -> None:
        from tflite_micro.python.tflite_micro import runtime

        self._runtime = runtime
        self.bundle = bundle
        self._its: dict[tuple[int, str], object] = {}

    def run(self, model: int, part: str, x: np.ndarray) -> np.ndarray:
        key = (model, part)
        it = self._its.get(key)
        if it is None:
            it = self._runtime.Interpreter.from_bytes(self.bundle.tflite[model][part])
            self._its[key] = it
        it.set_input(np.asarray(x, dtype=np.int8).reshape(1, contract.WINDOW, contract.N_CHANNELS), 0)
        it.invoke()
        return np.asarray(it.get_output(0), dtype=np.int8).reshape(-1)


def windows_of(samples: np.ndarray) -> np.ndarray:
    """The windows the device assembles from a sample stream ``(n, 6)``: ``(w, WINDOW, 6)`` int16."""
    s = np.asarray(samples, dtype=np.int16).reshape(-1, contract.N_CHANNELS)
    if len(s) < contract.WINDOW:
        return np.zeros((0, contract.WINDOW, contract.N_CHANNELS), dtype=np.int16)
    starts = np.arange(0, len(s) - contract.WINDOW + 1, contract.HOP)
    return np.stack([s[i : i + contract.WINDOW] for i in starts])


class ReferencePipeline:
    """What the device sends for a stream, computed on the host (see the module doc).

    ``rf_table``: the RF image the device holds (``calibration.rf`` table bytes); ``sensitive``: the stated
    value; ``schedule``: what CONFIGURE set, or None for the bundle's defaults; ``jitter_seed``: the device's
    jitter seed (:func:`dysan.jitter.device_seed` of its key), needed when the bundle has the jitter flag.
    """

    def __init__(self, bundle: Bundle, rf_table: bytes, sensitive: int, schedule: Schedule | None = None,
                 jitter_seed: int | None = None) -> None:
        self.bundle = bundle
        if bundle.jitter is not None and jitter_seed is None:
            raise DysanError("the bundle applies the on-device jitter: the reference needs the device's seed "
                             "(dysan.jitter.device_seed of its key)")
        self.jitter_seed = jitter_seed
        self.rf_table = bytes(rf_table)
        self.sensitive = int(sensitive)
        self.schedule = schedule or bundle.schedule
        if self.schedule.segment < 1:
            raise DysanError("segment must be >= 1")
        self._models = _Models(bundle)
        #: counters of the last :meth:`run`, comparable with the device's STATS
        self.stats: dict[str, int] = {}

    def labels(self, windows: np.ndarray) -> np.ndarray:
        return rf_mod.predict_table(self.rf_table, calibration_features(windows))

    def run(self, samples: np.ndarray, *, first_seq: int = 1, flush: bool = True,
            replayed: bool = True) -> list[SentWindow]:
        """The SANITIZED_WINDOW frames of one stream (from its first sample to its end), in order."""
        wins = windows_of(samples)
        n_models, seg = self.bundle.n_models, self.schedule.segment
        n = len(wins)  # every window is scored as it completes; without flush a partial segment waits
        n_sent = n if flush else n // seg * seg
        if n == 0:
            self.stats = {"windows": 0, "candidates_scored": 0, "sanitizer_runs": 0, "reused": 0}
            return []
        q = self.bundle.quantize(wins).reshape(n, WINDOW_VALUES)
        labels = self.labels(wins)
        evaluated = selection.schedule_mask(n, n_models, self.schedule.candidates)
        act = np.zeros((n, n_models), dtype=bool)
        sens = np.zeros((n, n_models), dtype=bool)
        outputs: dict[tuple[int, int], np.ndarray] = {}
        for w in range(n):
            for m in np.flatnonzero(evaluated[w]):
                s_out = self._models.run(int(m), "S", q[w])
                outputs[(w, int(m))] = s_out
                act[w, m] = int(np.argmax(self._models.run(int(m), "P", s_out))) == int(labels[w])
                sens[w, m] = int(np.argmax(self._models.run(int(m), "D", s_out))) == self.sensitive
        chosen = selection.select(act, sens, seg, self.schedule.x_q15, self.schedule.y_q15, evaluated=evaluated,
                                  default_model=int(self.bundle.header["default_model"]),
                                  rounds=selection.horizon_segments(seg, self.schedule.candidates, n_models),
                                  classes=int(self.bundle.header["sensitive_classes"]))
        flags = FLAG_RF_LABEL_VALID | (FLAG_REPLAYED if replayed else 0)
        sent, runs = [], 0
        for w in range(n_sent):
            m = int(chosen[w])
            out = outputs.get((w, m))
            if out is None:
                out = self._models.run(m, "S", q[w])
                runs += 1
            sent.append(SentWindow(first_seq + w, m, int(labels[w]), flags, self._emit(out, m, first_seq + w)))
        self.stats = {"windows": n, "candidates_scored": int(evaluated.sum()), "sanitizer_runs": runs,
                      "reused": n_sent - runs}
        return sent

    def _emit(self, out: np.ndarray, model: int, seq: int) -> bytes:
        """The bytes of a sent window: S's int8 output, through the on-device jitter when the bundle has it."""
        params = self.bundle.jitter
        if params is None:
            return out.astype(np.int8).tobytes()
        h = self.bundle.header
        center = tuple(h[f"center{i}"] for i in range(contract.N_CHANNELS))
        mult = tuple(h[f"mult{i}"] for i in range(contract.N_CHANNELS))
        q = out.astype(np.int8).reshape(1, contract.WINDOW, contract.N_CHANNELS)
        assert self.jitter_seed is not None
        return jitter.apply_int8(q, center, mult, self.bundle.s_output_zero_point(model),
                                 int(self.bundle.table[model]["s_out_ratio_q16"]), self.jitter_seed,
                                 np.array([seq], dtype=np.uint64), params).tobytes()
