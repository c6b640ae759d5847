"""Every model's output on the run's windows: sanitized windows, own-P / own-D predictions, distortion.

For each model (S with its own P and D) and each side (train, test) we keep

- the sanitized windows mapped back to sensor counts and saturated to int16 — what the analytics service
  receives, and what the attackers are trained and tested on (``(n, 125, 6)`` int16, memory-mapped);
- own-P's activity prediction and own-D's sensitive prediction on S's float output (the inputs of the
  selection score, as in training);
- the per-window L1 distortion ``mean |S(x) − x|`` in normalized units (the training loss's L_dist);
- the calibration-RF features of the sanitized windows (the RF attackers' input, computed once here).

A run trained with ``dysan train --jitter`` is evaluated the way the device sends it: every grid model's
sanitized windows go through the on-device jitter (:func:`dysan.jitter.apply`, the run's amplitudes) with a
secret seed per user (:func:`user_seed`; attackers never see it) and the window's number in that user's
stream as the counter (:func:`jitter_counters`). The jitter does not depend on the model, so a strategy that
mixes models per window reads exactly what one device would have sent. Own-P / own-D predictions (the
selection's scores) and the distortion are those of S's output before the jitter, as on the device, whose
scoring runs before ``emit``. Baselines are not trained with it and are not jittered. Unlike the device the
jitter here is applied to the float output's int16 counts (the int8 rounding is not modelled).

Running 36 sanitizers over ~23 k windows takes minutes, so results are cached on disk under
``RUN/eval/cache/<model>-<hash>/``; the hash covers the three model files, :data:`CACHE_VERSION` and the
feature code (:mod:`dysan.features`), so a retrained model or changed features are never served stale.
Cached windows are memory-mapped: a strategy that mixes models reads only the windows it picks.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..classifiers import to_int16
from ..features import window_features
from ..rundir import NETS, ModelDir
from ..tfutil import import_tf
from .runs import ModelRef, RunContext, Side

CACHE_VERSION = 1
JITTER_SCHEME = 1
"""Version of the evaluation's jitter seeds and counters (part of the cache key of jittered outputs)."""
BATCH = 1024


@dataclass
class SideOutputs:
    windows: np.ndarray
    """``(n, 125, 6)`` int16 counts (memory-mapped from the cache)."""
    act_pred: np.ndarray
    sens_pred: np.ndarray
    distortion: np.ndarray
    """Per-window mean |S(x) − x| in normalized units."""
    features: np.ndarray


@dataclass
class ModelOutputs:
    ref: ModelRef
    train: SideOutputs
    test: SideOutputs
    cache_id: str = ""
    """``<model>-<hash>``: identifies these outputs (keys the attackers' prediction cache)."""

    def side(self, name: str) -> SideOutputs:
        return self.train if name == "train" else self.test


def features_digest() -> str:
    """Hash of the feature code: cached features (and the predictions made from them) follow its changes."""
    import inspect

    from .. import features

    return hashlib.sha256(inspect.getsource(features).encode()).hexdigest()[:12]


def model_digest(ref: ModelRef) -> str:
    h = hashlib.sha256(f"v{CACHE_VERSION}-features-{features_digest()}".encode())
    for name in NETS:
        h.update(ModelDir(ref.path).keras(name).read_bytes())
    return h.hexdigest()[:16]


def _load_models(ref: ModelRef):
    import_tf()
    import keras

    return tuple(keras.models.load_model(ModelDir(ref.path).keras(n), compile=False) for n in NETS)


def run_model(S, P, D, x: np.ndarray, batch: int = BATCH) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(sanitized float, P argmax, D argmax, L1 distortion per window)`` of normalized windows ``x``."""
    tf = import_tf()

    @tf.function(reduce_retracing=True, autograph=False)  # plain tensor code: no AutoGraph
    def step(xb):
        s = S(xb, training=False)
        return s, tf.argmax(P(s, training=False), axis=1), tf.argmax(D(s, training=False), axis=1)

    outs, acts, senss = [], [], []
    for lo in range(0, len(x), batch):
        s, a, d = step(tf.constant(x[lo:lo + batch]))
        outs.append(s.numpy())
        acts.append(a.numpy())
        senss.append(d.numpy())
    s = np.concatenate(outs) if outs else np.zeros_like(x)
    dist = np.abs(s - x).mean(axis=(1, 2)).astype(np.float32)
    return s, np.concatenate(acts).astype(np.int64), np.concatenate(senss).astype(np.int64), dist


def jitter_of(ctx: RunContext, ref: ModelRef | None = None):
    """The :class:`dysan.jitter.JitterParams` the run's sanitizers were trained through (None: no jitter, or
    ``ref`` is a baseline)."""
    train = ctx.config.get("train", {})
    if not train.get("jitter") or (ref is not None and ref.baseline):
        return None
    from ..jitter import JitterParams

    return JitterParams(float(train.get("jitter_angle", 10.0)), float(train.get("jitter_gain", 0.1)))


def jitter_info(ctx: RunContext) -> dict | None:
    """What results.json and the report say about the jitter (None: the run was trained without it)."""
    params = jitter_of(ctx)
    if params is None:
        return None
    return {"max_angle_deg": params.max_angle_deg, "max_gain": params.max_gain,
            "max_angle_q14": params.max_angle_q14, "max_gain_q14": params.max_gain_q14,
            "seed": "one secret seed per user", "counter": "window number in the user's stream",
            "applied_to": "every grid model's sanitized windows (not baselines, raw or reference transforms)"}


def user_seed(subject: str) -> int:
    """The evaluation's stand-in for a user's device seed: fixed per subject name, unknown to the attackers
    (they never see seeds, only jittered windows)."""
    return int.from_bytes(hashlib.sha256(f"dysan-evaluate-jitter:{subject}".encode()).digest()[:4], "little")


def jitter_counters(ctx: RunContext) -> dict[str, np.ndarray]:
    """Per side, each window's counter: its number in its user's stream (from 1, as the device's sequence
    numbers), the test side continuing after that user's training windows."""
    seen: dict[int, int] = {}
    out = {}
    for side in (ctx.train, ctx.test):
        counters = np.zeros(len(side), dtype=np.uint64)
        for i, u in enumerate(np.asarray(side.subject)):
            seen[int(u)] = seen.get(int(u), 0) + 1
            counters[i] = seen[int(u)]
        out[side.name] = counters
    return out


def device_jitter(counts: np.ndarray, side: Side, ctx: RunContext, params) -> np.ndarray:
    """``counts`` (a side's sanitized int16 windows) through the on-device jitter, one seed per user."""
    from .. import jitter

    counters = jitter_counters(ctx)[side.name]
    out = np.empty_like(counts)
    subjects = np.asarray(side.subject)
    for u in np.unique(subjects):
        rows = np.flatnonzero(subjects == u)
        out[rows] = jitter.apply(counts[rows], user_seed(ctx.subjects[int(u)]), counters[rows], params)
    return out


def _compute(ref: ModelRef, ctx: RunContext, target: Path) -> None:
    S, P, D = _load_models(ref)
    params = jitter_of(ctx, ref)
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for side in (ctx.train, ctx.test):
        s, act, sens, dist = run_model(S, P, D, side.x)
        counts = to_int16(ctx.norm.denormalize(s))
        if params is not None:
            counts = device_jitter(counts, side, ctx, params)
        np.save(tmp / f"{side.name}_windows.npy", counts)
        np.savez(tmp / f"{side.name}_outputs.npz", act_pred=act, sens_pred=sens, distortion=dist,
                 features=window_features(counts))
    (tmp / "meta.json").write_text(json.dumps({"model": ref.key, "path": str(ref.path), "version": CACHE_VERSION,
                                               "train": len(ctx.train), "test": len(ctx.test)}))
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)


def _load_side(folder: Path, side: Side) -> SideOutputs:
    windows = np.load(folder / f"{side.name}_windows.npy", mmap_mode="r")
    with np.load(folder / f"{side.name}_outputs.npz") as z:
        out = SideOutputs(windows=windows, act_pred=z["act_pred"], sens_pred=z["sens_pred"],
                          distortion=z["distortion"], features=z["features"])
    if len(windows) != len(side):
        raise ValueError("stale cache")
    return out


def data_digest(ctx: RunContext) -> str:
    """Hash of the windows being sanitized: keys a transfer evaluation's cache (its data may change under it;
    a run's own windows are checked equal to data.npz when the run is reopened)."""
    h = hashlib.sha256()
    for side in (ctx.train, ctx.test):
        h.update(np.ascontiguousarray(side.x).tobytes())
    return h.hexdigest()[:12]


def outputs(ref: ModelRef, ctx: RunContext, cache_root: Path, data: str = "") -> tuple[ModelOutputs, bool]:
    """The model's outputs, from the cache when present. Returns ``(outputs, computed_now)``."""
    params = jitter_of(ctx, ref)
    tag = "" if params is None else "-j" + hashlib.sha256(
        f"{JITTER_SCHEME}-{params.max_angle_q14}-{params.max_gain_q14}".encode()).hexdigest()[:8]
    target = cache_root / f"{ref.key}-{model_digest(ref)}{tag}{'-' + data if data else ''}"
    computed = False
    if not (target / "meta.json").is_file():
        _compute(ref, ctx, target)
        computed = True
    try:
        return ModelOutputs(ref, _load_side(target, ctx.train), _load_side(target, ctx.test), target.name), computed
    except (OSError, ValueError, KeyError):
        shutil.rmtree(target, ignore_errors=True)
        _compute(ref, ctx, target)
        return ModelOutputs(ref, _load_side(target, ctx.train), _load_side(target, ctx.test), target.name), True


def all_outputs(ctx: RunContext, cache_root: Path, step=None) -> list[ModelOutputs]:
    """Outputs of every model of the evaluation (grid first, then baselines), advancing ``step`` per model."""
    result = []
    data = data_digest(ctx) if ctx.transfer else ""
    for ref in ctx.models:
        out, computed = outputs(ref, ctx, cache_root, data)
        result.append(out)
        if step is not None:
            step.advance(1, note=f"{ref.key} ({'sanitized' if computed else 'cached'})")
    return result
