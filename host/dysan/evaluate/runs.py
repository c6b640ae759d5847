"""Reopen a run directory for evaluation, on the run's *own* split.

``data.npz`` holds the normalized windows and labels but not who recorded them nor when, and the evaluation
needs both (per-user accuracies, each user's stream in time order, calibration windows). So the windows are
rebuilt from the source named in config.json with the recorded activity map, attribute, protocol, fold,
number of folds and split seed, and the result is checked against the run: same split sizes, same subjects,
same normalization, and arrays equal to data.npz element for element. Any difference is an error, never a
silent re-split.

A run is evaluated under the protocol and attribute it was trained for, and no other. Its discriminators
predict the run's attribute, so the selection score (which uses each model's own D) means nothing for
another attribute; and a model trained within-subject has seen every test user, so scoring it "on new users"
(or the reverse, whose training windows include the other protocol's test windows) would measure leakage of
the split, not the sanitizer. A different ``--protocol`` / ``--attribute`` is refused with that reason.

Baseline runs (GEN, Olympus, MSDA, trained with ``dysan train --loss ...``) are separate run directories;
they are accepted only when their data.npz equals the main run's, so every strategy is scored on the same
windows. Training settings or networks that differ from the grid's (another epoch count, or a run trained
before a change of the network code) are reported with the results, since they make the comparison unfair.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data import make_split, parse_spec, prepare
from ..errors import DysanError
from ..preprocess import Normalization
from ..rundir import NETS, ModelDir, RunDir, eval_name
from ..train import variants
from ..train.grid import GridPoint

SPLIT_KEYS = ("activities", "attribute", "protocol", "fold", "folds", "split_seed")
TRAIN_KEYS = ("family", "epochs", "batch_size", "learning_rate", "k_pred", "k_disc", "seed", "width", "pretrain_epochs")
"""Training settings a baseline should share with the grid (differences are reported, not refused)."""


@dataclass
class Side:
    """The train or test windows of a run, in data.npz order, with where and when each was recorded."""

    name: str
    x: np.ndarray
    """Normalized float32 windows, exactly data.npz's (the models' input)."""
    counts: np.ndarray
    """The same windows as int16 counts (what the device holds; the classifiers' input)."""
    activity: np.ndarray
    sensitive: np.ndarray
    subject: np.ndarray
    recording: np.ndarray
    start: np.ndarray
    code: np.ndarray
    """The source's activity code of each window (``D01``…): what the user was asked to do."""

    def __len__(self) -> int:
        return len(self.x)


@dataclass(frozen=True)
class ModelRef:
    """One sanitizer (with its own P and D) of the grid or of a baseline run."""

    key: str
    """Unique name in the evaluation: the grid point's name, or ``<loss>-<point>`` for a baseline."""
    label: str
    alpha: float
    lam: float
    loss: str
    path: Path
    baseline: bool

    @property
    def point(self) -> GridPoint:
        return GridPoint(self.alpha, self.lam)


@dataclass
class RunContext:
    path: Path
    config: dict
    data_spec: str
    norm: Normalization
    train: Side
    test: Side
    subjects: tuple[str, ...]
    classes: tuple[str, ...]
    attribute: str
    attribute_labels: tuple[str, ...]
    synthetic: bool
    grid: list[ModelRef]
    baselines: list[ModelRef] = field(default_factory=list)
    baseline_runs: list[dict] = field(default_factory=list)
    transfer: dict | None = None
    """None for the run's own split; for a transfer evaluation (:mod:`.transfer`) what judged the sanitizers:
    ``data``, ``protocol``, ``fold``, ``folds``, ``seed``, ``name``, the activity map used."""

    @property
    def models(self) -> list[ModelRef]:
        return [*self.grid, *self.baselines]

    @property
    def protocol(self) -> str:
        """The protocol of the split being scored (the run's own, or the transfer data's)."""
        return self.transfer["protocol"] if self.transfer else self.config["protocol"]

    @property
    def split_info(self) -> dict:
        """``fold``, ``folds``, ``seed`` of the split being scored."""
        if self.transfer:
            return {k: self.transfer[k] for k in ("fold", "folds", "seed")}
        return {"fold": self.config["fold"], "folds": self.config["split"]["folds"], "seed": self.config["split_seed"]}

    @property
    def transfer_name(self) -> str | None:
        """The transfer data's name (None on the run's own split): what names the evaluation's folder."""
        return self.transfer["name"] if self.transfer else None

    @property
    def eval_name(self) -> str:
        """The run's sub-folder for this evaluation's outputs and caches: ``eval`` or ``eval-transfer-<name>``."""
        return eval_name(self.transfer_name)

    @property
    def n_act(self) -> int:
        return len(self.classes)


def read_config(run_dir: Path) -> dict:
    path = RunDir(run_dir).config
    if not path.is_file():
        raise DysanError(f"{run_dir} is not a run directory (no {path.name}); train one with dysan train --out")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DysanError(f"{path}: not valid JSON ({exc})") from None


def model_refs(run_dir: Path, config: dict, baseline: bool) -> list[ModelRef]:
    """The finished models of a run; an unfinished one is an error (rerun ``dysan train`` to finish it)."""
    loss = config.get("train", {}).get("loss", variants.DEFAULT)
    variant = variants.get(loss)
    refs, missing = [], []
    for p in config["grid"]:
        point = GridPoint(float(p["alpha"]), float(p["lambda"]))
        md = RunDir(run_dir).model(point.name)
        if not md.is_complete():
            missing.append(point.name)
            continue
        if baseline:
            several = len(config["grid"]) > 1
            label = variant.label + (f" {point.alpha:g}/{point.lam:g}" if several else "")
            key = f"{loss}-{point.name}"
        else:
            label, key = point.name, point.name
        refs.append(ModelRef(key=key, label=label, alpha=point.alpha, lam=point.lam, loss=loss, path=md.path,
                             baseline=baseline))
    if missing:
        raise DysanError(f"{run_dir}: {len(missing)} model(s) not finished ({', '.join(missing[:4])}"
                         f"{', ...' if len(missing) > 4 else ''}); rerun its dysan train command to finish them")
    return refs


def _check_same(what: str, wanted, given) -> None:
    if given is not None and given != wanted:
        reasons = {
            "protocol": "a run is evaluated under the protocol it was trained for: across protocols the test "
                        "windows are not held out from the models' training",
            "attribute": "its discriminators predict the run's attribute, so the selection score has no meaning "
                         "for another one",
        }
        raise DysanError(f"the run was trained with --{what} {wanted}, not {given}: {reasons[what]} "
                         f"(train a run for {given})")


def _data_spec(config: dict, data: str | None) -> str:
    spec = data or config["data"]
    parsed = parse_spec(spec)
    if parsed.path is not None and not parsed.path.exists():
        raise DysanError(f"the run's data {spec!r} is not found from here; pass --data with its current location")
    return spec


def open_run(run_dir: str | Path, data: str | None = None, protocol: str | None = None,
             attribute: str | None = None) -> RunContext:
    """Rebuild the run's split and check it against the run (see the module doc)."""
    run_dir = Path(run_dir)
    config = read_config(run_dir)
    _check_same("protocol", config["protocol"], protocol)
    _check_same("attribute", config["attribute"], attribute)
    grid = model_refs(run_dir, config, baseline=False)
    spec = _data_spec(config, data)
    ds, ws = prepare(spec, activities=config["activities"], attribute=config["attribute"])
    split = make_split(ws, config["protocol"], fold=config["fold"], n_folds=config["folds"],
                       seed=config["split_seed"])
    recorded = config["split"]
    for key in ("train_windows", "test_windows"):
        if split.info[key] != recorded[key]:
            raise DysanError(f"{spec}: the rebuilt split has {split.info[key]} {key.replace('_', ' ')}, the run "
                             f"{recorded[key]}: not the data the run was trained on")
    if list(ws.subjects) != list(config["subjects"]):
        raise DysanError(f"{spec}: subjects differ from the run's")
    norm = Normalization.from_dict(config["normalization"])
    if norm != Normalization.fit(ws.x[split.train]):
        raise DysanError(f"{spec}: the training windows' normalization differs from the run's")
    with np.load(RunDir(run_dir).data) as z:
        arrays = {k: z[k] for k in ("x_train", "ya_train", "ys_train", "x_test", "ya_test", "ys_test")}
    sides = {}
    for name, idx in (("train", split.train), ("test", split.test)):
        counts = ws.x[idx]
        x = norm.normalize(counts)
        same = (np.array_equal(x, arrays[f"x_{name}"]) and np.array_equal(ws.activity[idx], arrays[f"ya_{name}"])
                and np.array_equal(ws.sensitive[idx], arrays[f"ys_{name}"]))
        if not same:
            raise DysanError(f"{spec}: the rebuilt {name} windows differ from the run's data.npz")
        codes = np.array([ws.recordings[r].code for r in ws.recording[idx]])
        sides[name] = Side(name=name, x=arrays[f"x_{name}"], counts=counts, activity=ws.activity[idx],
                           sensitive=ws.sensitive[idx], subject=ws.subject[idx], recording=ws.recording[idx],
                           start=ws.start[idx], code=codes)
    return RunContext(path=run_dir, config=config, data_spec=spec, norm=norm, train=sides["train"],
                      test=sides["test"], subjects=tuple(ws.subjects), classes=tuple(ws.classes),
                      attribute=config["attribute"], attribute_labels=tuple(ws.attribute.labels),
                      synthetic=bool(ds.synthetic), grid=grid)


def discover_baselines(run_dir: Path) -> list[Path]:
    """Baseline runs kept inside the run, ``RUN/baselines/<name>/`` (the documented place for them)."""
    return RunDir(run_dir).baseline_runs()


def add_baseline(ctx: RunContext, run_dir: str | Path) -> list[ModelRef]:
    """Attach a baseline run's models, after checking it was trained on exactly the same windows."""
    run_dir = Path(run_dir)
    config = read_config(run_dir)
    diff = [k for k in SPLIT_KEYS if config.get(k) != ctx.config.get(k)]
    if diff:
        raise DysanError(f"baseline {run_dir}: different {', '.join(diff)} from {ctx.path}")
    keys = [f"{a}_{s}" for s in ("train", "test") for a in ("x", "ya", "ys")]
    with np.load(RunDir(run_dir).data) as z, np.load(RunDir(ctx.path).data) as main:  # the main run's: checked
        same = all(np.array_equal(z[k], main[k]) for k in keys)                    # equal to its split on open
    if not same:
        raise DysanError(f"baseline {run_dir}: its data.npz differs from {ctx.path}'s (another data source?)")
    refs = model_refs(run_dir, config, baseline=True)
    differences = [f"{k}: {ctx.config['train'].get(k)} vs {config['train'].get(k)}" for k in TRAIN_KEYS
                   if ctx.config["train"].get(k) != config["train"].get(k)]
    if refs and ctx.grid and network_signature(refs[0].path) != network_signature(ctx.grid[0].path):
        differences.append("networks: the S/P/D layers differ from the grid's")
    taken = {m.key for m in ctx.models}
    clash = [r.key for r in refs if r.key in taken]
    if clash:
        raise DysanError(f"baseline {run_dir}: model {clash[0]} is already in the evaluation")
    ctx.baselines.extend(refs)
    ctx.baseline_runs.append({"path": str(run_dir), "loss": config.get("train", {}).get("loss", variants.DEFAULT),
                              "models": [r.key for r in refs], "differences": differences, "config": config})
    return refs


def network_signature(model_dir: Path) -> list:
    """The layers of S, P and D (type, activation, widths) as saved: two runs of one code base match."""
    out = []
    for name in NETS:
        with zipfile.ZipFile(ModelDir(model_dir).keras(name)) as z:  # the .keras file's config, not the run's
            layers = json.loads(z.read("config.json"))["config"]["layers"]
        out.append([(la["class_name"], la["config"].get("activation"), la["config"].get("filters"),
                     la["config"].get("units"), la["config"].get("kernel_size")) for la in layers])
    return out
