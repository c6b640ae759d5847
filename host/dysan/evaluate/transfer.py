"""Transfer evaluation: a run's sanitizers judged on *another* data set (the paper's MotionSense → MobiAct).

``dysan evaluate RUN --test-data KIND:PATH [--test-protocol P]`` keeps everything the run learned — its
sanitizers with their own P and D, and its normalization (the device applies the bundle's) — and replaces
the data: the other data set's windows are mapped to the run's activity classes and sensitive attribute,
split under the test protocol, and then evaluated exactly like the run's own split (:mod:`.pipeline`):
DySan(o) calibrates a forest per user of that data set (:mod:`.calib`, as on the device); the attackers
and analysts are retrained on that data set's sanitized *training* part and tested on its *test* part; raw
is that data set's raw windows.

Mapping, or a clear error:

- **activities** — the test data's activity map is the run's ``--activities`` name resolved for the test
  data's kind (``default`` → the kind's built-in map), or ``--test-activities FILE.json``. Every class of
  the run must appear in it under the same name (classes are matched by name, laid out in the run's order);
  a run class the map lacks, or that has no window in the test data, stops the evaluation. Test classes the
  run does not know are left out (listed in the results).
- **attribute** — the run's attribute (``gender``, ``age-group``, ``COLUMN:T``) read from the test data's
  subject table; a subject without it, or a data set where only one value occurs, stops the evaluation.
- **split** — ``--test-protocol`` (default: the run's); the split seed is the run's; ``--test-fold`` and
  ``--test-folds`` default to the run's when the protocol is the run's, else to fold 0 of the protocol's
  default number of folds (4 within-subject, 5 new users).

The same data under the run's own protocol is allowed and reproduces the run's own evaluation (a test
checks it); the same data under *another* protocol is refused, for the reason :mod:`.runs` gives (its test
windows would not be held out from the sanitizers' training).

Outputs and caches go to ``RUN/eval-transfer-<name>/`` (``<name>``: the test data's kind and parameters and
the protocol) so a transfer never overwrites the run's own ``RUN/eval/``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..data import make_split, parse_spec
from ..data.activities import ActivityMap, resolve
from ..data.attributes import parse as parse_attribute
from ..data.sources import load
from ..data.windows import make_windows
from ..errors import DysanError
from ..preprocess import Normalization
from .runs import RunContext, Side, _check_same, model_refs, read_config


def transfer_name(test_data: str, protocol: str) -> str:
    """Folder-safe name of a transfer: ``<kind>[-<params>]-<protocol>`` (``weda-fall-within-subject``)."""
    spec = parse_spec(test_data)
    params = "-".join(f"{k}{v}" for k, v in spec.params.items())
    name = f"{spec.kind}{'-' + params if params else ''}-{protocol}"
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _same_source(a: str, b: str) -> bool:
    pa, pb = parse_spec(a), parse_spec(b)
    if pa.kind != pb.kind or pa.params != pb.params:
        return False
    if pa.path is None or pb.path is None:
        return pa.path == pb.path
    try:
        return pa.path.resolve() == pb.path.resolve()
    except OSError:
        return pa.path == pb.path


def map_activities(config: dict, kind: str, codes_present: set[str], test_activities: str | None) -> tuple[
        ActivityMap, list[str]]:
    """The test data's activity map laid out on the run's classes; and the test classes left out."""
    run_classes = list(config["classes"])
    spec = test_activities or config["activities"]
    try:
        test_map = resolve(spec, kind, codes_present)
    except DysanError as exc:
        raise DysanError(f"the run's activity map {spec!r} has no counterpart for {kind} data ({exc}); pass "
                         "--test-activities FILE.json mapping the run's classes to its codes") from None
    missing = [c for c in run_classes if c not in test_map.classes]
    if missing:
        raise DysanError(f"class(es) {', '.join(repr(c) for c in missing)} of the run cannot be mapped: the {kind} "
                         f"activity map {test_map.name!r} has {', '.join(test_map.classes)} (pass --test-activities "
                         "FILE.json {class: [codes]})")
    mapping = {c: list(test_map.codes[test_map.classes.index(c)]) for c in run_classes}
    left_out = [c for c in test_map.classes if c not in run_classes]
    return ActivityMap.from_mapping(f"{test_map.name} (on the run's classes)", mapping), left_out


def open_transfer(run_dir: str | Path, test_data: str, test_protocol: str | None = None,
                  test_activities: str | None = None, attribute: str | None = None, test_fold: int | None = None,
                  test_folds: int | None = None) -> RunContext:
    """The run's models on ``test_data``'s split (see the module doc)."""
    run_dir = Path(run_dir)
    config = read_config(run_dir)
    _check_same("attribute", config["attribute"], attribute)
    grid = model_refs(run_dir, config, baseline=False)
    protocol = test_protocol or config["protocol"]
    same_data = _same_source(config["data"], test_data)
    if same_data and protocol != config["protocol"]:
        _check_same("protocol", config["protocol"], protocol)
    ds = load(test_data)
    amap, left_out = map_activities(config, ds.kind, {r.activity for r in ds.recordings}, test_activities)
    attr = parse_attribute(config["attribute"])
    try:
        ws = make_windows(ds, amap, attr)
    except DysanError as exc:
        raise DysanError(f"{test_data}: the run's attribute / classes cannot be mapped: {exc}") from None
    empty = [c for i, c in enumerate(ws.classes) if not (ws.activity == i).any()]
    if empty:
        raise DysanError(f"{test_data}: class(es) {', '.join(empty)} of the run have no window in this data "
                         f"(activity map {amap.to_dict()['classes']})")
    values = np.unique(ws.sensitive)
    if len(values) < 2:
        raise DysanError(f"{test_data}: every subject has the same {attr.name} "
                         f"({attr.labels[int(values[0])]}); the attribute cannot be judged on this data")
    own = protocol == config["protocol"]
    fold = test_fold if test_fold is not None else (config["fold"] if own else 0)
    folds = test_folds if test_folds is not None else (config["split"]["folds"] if own else None)
    split = make_split(ws, protocol, fold=fold, n_folds=folds, seed=config["split_seed"])
    norm = Normalization.from_dict(config["normalization"])
    sides = {}
    for name, idx in (("train", split.train), ("test", split.test)):
        counts = ws.x[idx]
        codes = np.array([ws.recordings[r].code for r in ws.recording[idx]])
        sides[name] = Side(name=name, x=norm.normalize(counts), counts=counts, activity=ws.activity[idx],
                           sensitive=ws.sensitive[idx], subject=ws.subject[idx], recording=ws.recording[idx],
                           start=ws.start[idx], code=codes)
    transfer = {
        "name": transfer_name(test_data, protocol), "data": test_data, "kind": ds.kind,
        "synthetic": bool(ds.synthetic), "protocol": protocol, "fold": split.info["fold"],
        "folds": split.info["folds"], "seed": split.info["seed"], "same_data_as_run": same_data,
        "trained_on": config["data"], "trained_protocol": config["protocol"],
        "activity_map": amap.to_dict(), "test_classes_left_out": left_out,
        "subjects": len(ws.subjects), "windows": {"train": len(split.train), "test": len(split.test)},
        "normalization": "the run's (fitted on the run's training windows, as the device bundle applies it)",
    }
    return RunContext(path=run_dir, config=config, data_spec=test_data, norm=norm, train=sides["train"],
                      test=sides["test"], subjects=tuple(ws.subjects), classes=tuple(config["classes"]),
                      attribute=config["attribute"], attribute_labels=tuple(attr.labels),
                      synthetic=bool(ds.synthetic or config.get("synthetic")), grid=grid, transfer=transfer)
