"""ORF baseline (the DySan paper's reference [4], Jourdan, Boutet & Frindel, MobiQuitous 2018, extended in
ACM Trans. Comput. Healthcare 2020): random forests pick what the data may keep.

The published mechanism computes features of each window on the phone, ranks them with random forests by how
much they serve the *activity* and how much they reveal the *user*, and sends the server only the features
useful for the activity and unlinked to the user (the frequency-domain ones, which carry identity, are
generalised). The DySan paper sums it up as "a Random Forest approach that extract the relevant features for
both privacy and utility in order to select those that prevent the inference of the sensitive attribute".

Ours, as a sanitizer of *windows* so the evaluation treats it like every other baseline (adaptive attackers
retrained on its output, distortion, DTW...):

1. **Components.** Each channel of a normalized window is split into a level (its mean over the window:
   the time-domain level) and :data:`BANDS` frequency bands of its real DFT. 6 × (1 + 8) = 54 components;
   the window is exactly the sum of its components.
2. **Features and forests.** One feature per component — the level, or the band's log energy — on the raw
   training windows; a random forest for the activity and one for the sensitive attribute
   (:data:`TREES` trees each, the run's seed). Their impurity importances, each normalized to sum 1, say
   how much each component serves utility (``u_k``) and privacy leakage (``p_k``).
3. **Selection.** With the grid point's weights, keep component k iff ``λ·u_k ≥ α·p_k`` (default α = λ =
   0.5: kept when it matters at least as much for the activity as for the attribute); at least the best
   ``λ·u_k − α·p_k`` is kept.
4. **Release.** The window rebuilt from the kept components only; a dropped level becomes the training
   population's mean (0 in normalized units), a dropped band becomes 0 — everyone gets the same value,
   the strongest form of the paper's generalisation. This is one fixed linear map per channel, saved as
   the run's ``S.keras`` (Flatten → Dense(750, block-diagonal weights) → Reshape), so ``dysan evaluate``
   loads it like any sanitizer.

Own P and D (the evaluator's "own" attackers) are the run family's predictor and discriminator trained on
ORF's output of the training windows for ``--epochs`` epochs, like the grid's P and D on their S.

Departures (also in ``docs/evaluation.md``): the release is a window, not a feature vector; the features are
separable components (levels and band energies) instead of the paper's statistical time-domain set and FFT
coefficients, because only separable components can be removed from a window; the private label is the run's
binary attribute, not the user's identity; a dropped feature is removed rather than coarsened; the
λ/α selection rule is ours (the paper chooses by inspecting the importances).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import contract
from .grid import GridPoint
from .loop import TrainConfig, _monitor_subset, build_models, finish_point, load_arrays, start_point

BANDS: tuple[tuple[int, int], ...] = ((1, 2), (2, 3), (3, 5), (5, 8), (8, 13), (13, 21), (21, 33), (33, 63))
"""DFT bin ranges ``[lo, hi)`` of a 125-sample window (bin k is k·0.4 Hz): 0.4, 0.8, 1.2-1.6, 2.0-2.8,
3.2-4.8, 5.2-8.0, 8.4-12.8 and 13.2-24.8 Hz. Gait cadence sits in the low bands, heel-strike detail above."""
TREES = 100
N_BINS = contract.WINDOW // 2 + 1


def component_names() -> list[str]:
    bands = [f"{lo * 0.4:.1f}Hz" if hi - lo == 1 else f"{lo * 0.4:.1f}-{(hi - 1) * 0.4:.1f}Hz" for lo, hi in BANDS]
    return [f"{ch}.{part}" for ch in contract.CHANNELS for part in ("level", *bands)]


def component_features(x: np.ndarray) -> np.ndarray:
    """``(n, 125, 6)`` normalized windows -> ``(n, 54)`` features: per channel its level and band log energies."""
    x = np.asarray(x, dtype=np.float64)
    spec = np.abs(np.fft.rfft(x, axis=1)) ** 2  # (n, bins, 6)
    feats = []
    for c in range(contract.N_CHANNELS):
        feats.append(x[:, :, c].mean(axis=1))
        feats.extend(np.log1p(spec[:, lo:hi, c].sum(axis=1)) for lo, hi in BANDS)
    return np.stack(feats, axis=1).astype(np.float32)


def bin_mask(keep: np.ndarray) -> np.ndarray:
    """``(6, 9)`` kept components -> ``(6, N_BINS)`` kept DFT bins."""
    mask = np.zeros((contract.N_CHANNELS, N_BINS))
    for c in range(contract.N_CHANNELS):
        mask[c, 0] = keep[c, 0]
        for b, (lo, hi) in enumerate(BANDS):
            mask[c, lo:hi] = keep[c, b + 1]
    return mask


def projection(keep: np.ndarray) -> np.ndarray:
    """The release as one ``(750, 750)`` matrix on row-major flattened windows: ``y_flat = x_flat @ W``."""
    n, ch = contract.WINDOW, contract.N_CHANNELS
    mask = bin_mask(keep)
    eye = np.eye(n)
    w = np.zeros((n * ch, n * ch))
    for c in range(ch):
        m = np.fft.irfft(np.fft.rfft(eye, axis=0) * mask[c][:, None], n=n, axis=0)  # column j = image of e_j
        w[c::ch, c::ch] = m.T
    return w


def apply(keep: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The release on ``(n, 125, 6)`` normalized windows (numpy; the Keras model computes the same)."""
    spec = np.fft.rfft(np.asarray(x, dtype=np.float64), axis=1) * bin_mask(keep).T[None]
    return np.fft.irfft(spec, n=contract.WINDOW, axis=1).astype(np.float32)


@dataclass
class Selection:
    keep: np.ndarray
    """``(6, 9)`` bool: channel × (level, bands)."""
    utility: np.ndarray
    """``(54,)`` activity-forest importances (sum 1)."""
    privacy: np.ndarray
    """``(54,)`` attribute-forest importances (sum 1)."""

    def to_dict(self) -> dict:
        names = component_names()
        flat = self.keep.reshape(-1)
        return {
            "kept": [n for n, k in zip(names, flat, strict=True) if k],
            "dropped": [n for n, k in zip(names, flat, strict=True) if not k],
            "importance": {n: {"activity": round(float(u), 5), "attribute": round(float(p), 5)}
                           for n, u, p in zip(names, self.utility, self.privacy, strict=True)},
        }


def select(x: np.ndarray, y_act: np.ndarray, y_sens: np.ndarray, point: GridPoint, seed: int = 0,
           trees: int = TREES) -> Selection:
    """Steps 2-3 of the module doc on training windows ``x`` (normalized)."""
    from sklearn.ensemble import RandomForestClassifier

    feats = component_features(x)
    imps = []
    for y in (y_act, y_sens):
        rf = RandomForestClassifier(trees, n_jobs=2, random_state=seed).fit(feats, y)
        imp = rf.feature_importances_
        imps.append(imp / imp.sum() if imp.sum() > 0 else np.full_like(imp, 1.0 / len(imp)))
    u, p = imps
    margin = point.lam * u - point.alpha * p
    keep = margin >= 0
    if not keep.any():
        keep[int(np.argmax(margin))] = True
    return Selection(keep=keep.reshape(contract.N_CHANNELS, 1 + len(BANDS)), utility=u, privacy=p)


def sanitizer_model(keep: np.ndarray):
    """The release as a Keras model of standard layers (loads with ``safe_mode``): S(x) = :func:`apply`."""
    from ..tfutil import import_tf

    import_tf()
    import keras
    from keras import layers

    n = contract.WINDOW * contract.N_CHANNELS
    inp = keras.Input((contract.WINDOW, contract.N_CHANNELS), name="window")
    h = layers.Flatten(name="flat")(inp)
    dense = layers.Dense(n, use_bias=False, name="orf_release")
    h = dense(h)
    out = layers.Reshape((contract.WINDOW, contract.N_CHANNELS), name="window_out")(h)
    model = keras.Model(inp, out, name="S")
    dense.set_weights([projection(keep).astype(np.float32)])
    model.trainable = False
    return model


def train_point(run_dir: str | Path, point: GridPoint, index: int, cfg: TrainConfig,
                log: Callable[[str], None] = print) -> dict:
    """ORF at one grid point: select, write S.keras, train own P and D on the release; ``done.json`` as the
    adversarial points write it (so ``dysan evaluate`` and the summaries read it the same way)."""
    run_dir = Path(run_dir)
    md, finished = start_point(run_dir, point, index, cfg)
    if finished is not None:
        return finished
    import keras

    from .losses import hard_ber

    t0 = time.time()
    arr = load_arrays(run_dir)
    n_act = int(arr["n_act"])
    sel = select(arr["x_train"], arr["ya_train"], arr["ys_train"], point, seed=cfg.seed)
    md.selection.write_text(json.dumps(sel.to_dict(), indent=1))
    S = sanitizer_model(sel.keep)
    _, P, D = build_models(cfg, n_act)
    released = apply(sel.keep, arr["x_train"])
    for model, y in ((P, arr["ya_train"]), (D, arr["ys_train"])):
        model.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(released, y, batch_size=cfg.batch_size, epochs=cfg.epochs, verbose=0, shuffle=True)
    mon = _monitor_subset(len(arr["x_test"]), cfg.monitor_windows, cfg.seed)
    xm = arr["x_test"][mon]
    sm = S.predict(xm, verbose=0)
    p_pred, d_pred = P.predict(sm, verbose=0).argmax(1), D.predict(sm, verbose=0).argmax(1)
    final = {
        "epoch": cfg.epochs,
        "P_monitor_acc": float((p_pred == arr["ya_test"][mon]).mean()),
        "D_monitor_acc": float((d_pred == arr["ys_test"][mon]).mean()),
        "P_monitor_ber": float(hard_ber(p_pred, arr["ya_test"][mon], n_act)),
        "D_monitor_ber": float(hard_ber(d_pred, arr["ys_test"][mon], 2)),
        "distortion_monitor": float(np.abs(sm - xm).mean()),
        "components_kept": int(sel.keep.sum()),
    }
    S.save(md.keras("S"))
    P.save(md.keras("P"))
    D.save(md.keras("D"))
    seconds = time.time() - t0
    md.history.write_text(json.dumps([{**final, "seconds": seconds}], indent=1))
    result = finish_point(md, point, index, cfg, final, seconds)
    log(f"ORF {point.name}: {final['components_kept']}/{sel.keep.size} components kept; own P "
        f"{100 * final['P_monitor_acc']:.1f} %, own D {100 * final['D_monitor_acc']:.1f} % on the monitor windows")
    return result


def run(run_dir: Path, points: list[GridPoint], cfg: TrainConfig, log: Callable[[str], None] = print) -> dict:
    """Every point in turn (each takes seconds to minutes), then the run's summary.json like ``run_grid``."""
    from .runner import write_summary

    t0 = time.time()
    for i, p in enumerate(points):
        train_point(run_dir, p, i, cfg, log=log)
    return write_summary(run_dir, points, time.time() - t0, workers=1, ray_address=None)
