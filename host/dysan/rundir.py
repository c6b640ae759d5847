"""The on-disk layout of a run directory (``dysan train --out``) and of an exported bundle folder
(``dysan export --out``): the only module that spells their file names.

Training writes a run; evaluation, export, the ablation, ORF, the demo and the benches read it, some of them
months later. With every module spelling ``models/<point>/done.json`` on its own, a rename in one would
silently orphan the others (or every existing run), so writers and readers all ask this module. It is a
leaf (standard library only): any layer may import it.

The layout is that of the first runs and must stay so (runs under ``runs/`` load as they are)::

    RUN/
      config.json            data spec, split, attribute, activity map, family, grid, training settings,
                             normalization: enough to rebuild the exact split (``dysan.train.runner``)
      data.npz               the normalized train/test arrays the workers read (written via data.tmp.npz)
      shared/                the grid's P/D (+ F, I) warm start: <net>.weights.h5, done.json
      models/<point>/        S.keras P.keras D.keras, history.json, curves.png, progress.json, done.json;
                             ckpt/ (+ ckpt/replay.npz) while training; selection.json (ORF); ablation.json
      summary.json, grid.png per model final metrics and times; the grid's monitor accuracies
      baselines/<name>/      baseline runs (each a RUN) evaluated beside the grid
      folds/<k>/             the other folds' runs (each a RUN) for ``dysan evaluate --folds N``
      eval/, eval-transfer-<name>/   ``dysan evaluate``'s outputs: results.json, its tables, cache/
      ablation_raw.json, ablation_raw_jitter.json   the ablation's scores of the raw windows (cached)

    BUNDLE/
      manifest.json, bundle.bin, dysan_bundle.c, calibration_population.npz, <point>/{S,P,D}.tflite
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

NETS = ("S", "P", "D")
"""The networks of every grid point: sanitizer, its own predictor (activity) and discriminator (attribute)."""
RESULTS = "results.json"
"""The evaluation's summary inside its folder (``RUN/eval/`` or ``dysan evaluate --out``)."""


def eval_name(transfer: str | None = None) -> str:
    """A run's sub-folder of one evaluation: ``eval`` (own split) or ``eval-transfer-<name>`` (another data set),
    so a transfer never overwrites the run's own results."""
    return f"eval-transfer-{transfer}" if transfer else "eval"


@dataclass(frozen=True)
class ModelDir:
    """One trained point, ``RUN/models/<point>/`` (also ``RUN/shared/``, the warm start, which has the same
    ``done.json`` marker and ``<net>.weights.h5`` files)."""

    path: Path

    def keras(self, net: str) -> Path:
        """The saved Keras model of ``net`` (``S``, ``P`` or ``D``)."""
        return self.path / f"{net}.keras"

    def weights(self, net: str) -> Path:
        """Weights only (warm starts, the feature / identity adversaries)."""
        return self.path / f"{net}.weights.h5"

    @property
    def done(self) -> Path:
        """Written last, with the point's final metrics: its presence means finished (resume skips it)."""
        return self.path / "done.json"

    @property
    def progress(self) -> Path:
        """Epoch counter the driver polls for its progress bar (works the same for local and Ray workers)."""
        return self.path / "progress.json"

    @property
    def history(self) -> Path:
        return self.path / "history.json"

    @property
    def curves(self) -> Path:
        return self.path / "curves.png"

    @property
    def checkpoints(self) -> Path:
        """Per-epoch checkpoints of the models and optimizers (a killed point resumes from the last)."""
        return self.path / "ckpt"

    @property
    def replay(self) -> Path:
        """The adversaries' replay buffer, saved with the checkpoints."""
        return self.checkpoints / "replay.npz"

    @property
    def selection(self) -> Path:
        """ORF's kept and dropped components with their importances."""
        return self.path / "selection.json"

    @property
    def ablation(self) -> Path:
        """The ablation's RF scores of this point's sanitized windows (cached)."""
        return self.path / "ablation.json"

    def is_done(self) -> bool:
        return self.done.exists()

    def is_complete(self) -> bool:
        """Finished and every network saved: what evaluation and export need."""
        return self.done.is_file() and all(self.keras(n).is_file() for n in NETS)


@dataclass(frozen=True)
class RunDir:
    """A run directory (see the module doc). ``RunDir("runs/x")`` accepts a string or a path."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @property
    def config(self) -> Path:
        return self.path / "config.json"

    @property
    def data(self) -> Path:
        return self.path / "data.npz"

    @property
    def data_tmp(self) -> Path:
        """Where data.npz is written first, then renamed: a killed run never leaves half an array file."""
        return self.path / "data.tmp.npz"

    @property
    def summary(self) -> Path:
        return self.path / "summary.json"

    @property
    def grid_plot(self) -> Path:
        return self.path / "grid.png"

    @property
    def shared(self) -> ModelDir:
        """The warm start shared by every point of the grid."""
        return ModelDir(self.path / "shared")

    @property
    def models(self) -> Path:
        return self.path / "models"

    def model(self, point: str) -> ModelDir:
        """The folder of grid point ``point`` (its name, e.g. ``a0.10_l0.80``)."""
        return ModelDir(self.models / point)

    @property
    def baselines(self) -> Path:
        return self.path / "baselines"

    def baseline(self, name: str) -> RunDir:
        """``RUN/baselines/<name>/``: where a baseline is trained so ``dysan evaluate RUN`` finds it."""
        return RunDir(self.baselines / name)

    @property
    def folds(self) -> Path:
        return self.path / "folds"

    def fold(self, k: int | str) -> RunDir:
        """``RUN/folds/<k>/``: where ``dysan train --fold k`` goes so ``dysan evaluate --folds N`` finds it."""
        return RunDir(self.folds / str(k))

    def eval_dir(self, transfer: str | None = None) -> Path:
        """Default folder of ``dysan evaluate``'s outputs (see :func:`eval_name`)."""
        return self.path / eval_name(transfer)

    def eval_cache(self, transfer: str | None = None) -> Path:
        """The evaluation's cache of sanitized windows and features (keyed by model digests). Always inside the
        run, also when the results go elsewhere (``--out``): a rerun reuses it."""
        return self.eval_dir(transfer) / "cache"

    @property
    def ablation_raw(self) -> Path:
        return self.path / "ablation_raw.json"

    @property
    def ablation_raw_jitter(self) -> Path:
        return self.path / "ablation_raw_jitter.json"

    def is_run(self) -> bool:
        """True when a config.json is here (an unfinished run still is a run)."""
        return self.config.is_file()

    def baseline_runs(self) -> list[Path]:
        """The runs under ``baselines/``, sorted by name."""
        return _runs_in(self.baselines)

    def fold_runs(self) -> list[Path]:
        """The runs under ``folds/``, sorted by name."""
        return _runs_in(self.folds)


def _runs_in(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if RunDir(p).is_run())


@dataclass(frozen=True)
class BundleDir:
    """An exported bundle folder (``dysan export --out``), read by flash, calibrate, stream and the reference.
    The class constants are the file names as the manifest records them (relative to the folder)."""

    MANIFEST = "manifest.json"
    IMAGE = "bundle.bin"
    C_SOURCE = "dysan_bundle.c"
    POPULATION = "calibration_population.npz"

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @property
    def manifest(self) -> Path:
        return self.path / self.MANIFEST

    @property
    def image(self) -> Path:
        """The DYSB bundle image the device loads."""
        return self.path / self.IMAGE

    @property
    def c_source(self) -> Path:
        """The bundle as a C array (the firmware's default bundle)."""
        return self.path / self.C_SOURCE

    @property
    def population(self) -> Path:
        """The calibration forest's population (``dysan.calibration.rf``)."""
        return self.path / self.POPULATION

    @staticmethod
    def tflite_name(point: str, net: str) -> str:
        """``<point>/<net>.tflite``, relative: the form the manifest records."""
        return f"{point}/{net}.tflite"

    def tflite(self, point: str, net: str) -> Path:
        return self.path / self.tflite_name(point, net)
