"""MotionSense loader (iPhone 6s in the front pocket, 50 Hz, 24 subjects).

Layout: ``A_DeviceMotion_data/<act>_<trial>/sub_<n>.csv`` and ``data_subjects_info.csv``
(``code,weight,height,age,gender`` with gender 0 = female, 1 = male). Each CSV has a header with
``gravity.{x,y,z}``, ``rotationRate.{x,y,z}`` and ``userAcceleration.{x,y,z}``: the acceleration
*without* gravity, in g. The contract wants raw-IMU acceleration, so we add the gravity vector back
(``userAcceleration + gravity``). Rates are already 50 Hz.

Documented skips: folders not named ``<act>_<trial>``, files not named ``sub_<n>.csv``, subjects absent
from the info table, a truncated last row.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np

from ..errors import DataError
from .model import Dataset, Recording, Subject

SOURCE_RATE_HZ = 50
TRIAL_DIR_RE = re.compile(r"^([a-z]{3})_(\d+)$")
FILE_RE = re.compile(r"^sub_(\d+)\.csv$")
COLUMNS = (
    "userAcceleration.x",
    "userAcceleration.y",
    "userAcceleration.z",
    "gravity.x",
    "gravity.y",
    "gravity.z",
    "rotationRate.x",
    "rotationRate.y",
    "rotationRate.z",
)


def _find(root: Path, name: str) -> Path:
    hits = [root / name] if (root / name).exists() else sorted(root.rglob(name))
    if not hits:
        raise DataError(f"{name} not found (expected the MotionSense folder with A_DeviceMotion_data/)", root)
    return hits[0]


def _subjects(info: Path) -> dict[str, Subject]:
    out: dict[str, Subject] = {}
    with info.open(newline="") as f:
        reader = csv.DictReader(f)
        need = {"code", "weight", "height", "age", "gender"}
        if not reader.fieldnames or not need <= {h.strip() for h in reader.fieldnames}:
            raise DataError(f"header must contain {sorted(need)}", info, 1)
        for lineno, row in enumerate(reader, start=2):
            row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
            try:
                code = int(float(row["code"]))
                gender = {"0": "F", "1": "M"}[str(int(float(row["gender"])))]
                out[str(code)] = Subject(
                    id=f"MS{code:02d}",
                    gender=gender,
                    age=float(row["age"]),
                    height_cm=float(row["height"]),
                    weight_kg=float(row["weight"]),
                )
            except (KeyError, ValueError):
                raise DataError(
                    "expected numeric code, weight, height, age and gender 0 (female) / 1 (male)", info, lineno
                ) from None
    return out


def _read_trial(path: Path, ds: Dataset) -> np.ndarray:
    text = path.read_text()
    lines = text.splitlines()
    if not lines:
        raise DataError("empty file (expected a header and rows)", path, 1)
    header = [h.strip() for h in lines[0].split(",")]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise DataError(f"missing columns {missing}", path, 1)
    idx = [header.index(c) for c in COLUMNS]
    rows = []
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        parts = line.split(",")
        try:
            if len(parts) != len(header):
                raise ValueError
            rows.append([float(parts[i]) for i in idx])
        except ValueError:
            if lineno == len(lines):
                ds.skip("truncated last row dropped")
                continue
            raise DataError(f"expected {len(header)} numeric columns", path, lineno) from None
    arr = np.asarray(rows, dtype=np.float64).reshape(-1, 9)
    acc = arr[:, 0:3] + arr[:, 3:6]
    return np.concatenate([acc, arr[:, 6:9]], axis=1).astype(np.float32)


def load(path: str | Path, name: str, progress=None) -> Dataset:
    root = Path(path)
    if not root.is_dir():
        raise DataError("not a folder (expected the MotionSense folder with A_DeviceMotion_data/)", root)
    motion = _find(root, "A_DeviceMotion_data")
    table = _subjects(_find(root, "data_subjects_info.csv"))
    ds = Dataset(name=name, kind="motionsense", recordings=[], subjects={})
    for trial_dir in sorted(p for p in motion.iterdir() if p.is_dir()):
        m = TRIAL_DIR_RE.match(trial_dir.name)
        if not m:
            ds.skip("folders not named <act>_<trial>")
            continue
        act, trial = m.groups()
        for f in sorted(trial_dir.iterdir()):
            fm = FILE_RE.match(f.name)
            if not fm:
                ds.skip("files not named sub_<n>.csv")
                continue
            if fm.group(1) not in table:
                ds.skip("trials of subjects missing from data_subjects_info.csv")
                continue
            subject = table[fm.group(1)]
            signal = _read_trial(f, ds)
            if len(signal) == 0:
                ds.skip("empty trial files")
                continue
            ds.recordings.append(
                Recording(subject=subject.id, activity=act, trial=trial, signal=signal, source=str(f))
            )
            if progress is not None:
                progress(len(ds.recordings), f.name)
    used = {r.subject for r in ds.recordings}
    ds.subjects = {s.id: s for s in table.values() if s.id in used}
    if not ds.recordings:
        raise DataError("no trials found (expected A_DeviceMotion_data/<act>_<trial>/sub_<n>.csv)", motion)
    return ds
