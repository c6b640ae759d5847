"""The generic format, so users can bring their own recordings.

A folder with two index files and one CSV per recording::

    subjects.csv     subject,gender,age,height_cm,weight_kg[,any other numeric or text column]
    recordings.csv   file,subject,activity,trial,rate_hz
    <file>           acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z   (header, then one row per sample)

``gender`` is ``F`` or ``M``; numeric attributes may be empty when unknown. Recording files hold the
contract's units — acceleration in g *including gravity*, angular rate in rad/s — at ``rate_hz`` (any
rate: it is resampled to 50 Hz with an anti-alias polyphase filter). ``file`` is relative to the folder.
Extra subject columns become selectable sensitive attributes (``--attribute COLUMN:THRESHOLD``).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from .. import contract
from ..errors import DataError
from .model import Dataset, Recording, Subject
from .resample import to_contract_rate

SUBJECT_COLUMNS = ("subject", "gender", "age", "height_cm", "weight_kg")
RECORDING_COLUMNS = ("file", "subject", "activity", "trial", "rate_hz")


def _rows(path: Path, required: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    if not path.is_file():
        raise DataError(f"missing (the generic format needs it, with columns {', '.join(required)})", path)
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        header = [h.strip() for h in (reader.fieldnames or [])]
        missing = [c for c in required if c not in header]
        if missing:
            raise DataError(f"header lacks {missing} (expected {', '.join(required)})", path, 1)
        return [
            (lineno, {k.strip(): (v or "").strip() for k, v in row.items() if k})
            for lineno, row in enumerate(reader, start=2)
        ]


def _num(value: str, path: Path, lineno: int, column: str) -> float | None:
    if value == "":
        return None
    try:
        return float(value)
    except ValueError:
        raise DataError(f"column {column}: {value!r} is not a number", path, lineno) from None


def _subjects(path: Path) -> dict[str, Subject]:
    out: dict[str, Subject] = {}
    for lineno, row in _rows(path, SUBJECT_COLUMNS):
        gender = row["gender"].upper() or None
        if gender not in (None, "F", "M"):
            raise DataError(f"gender {row['gender']!r}: expected F, M or empty", path, lineno)
        extra: dict[str, float | str] = {}
        for k, v in row.items():
            if k in SUBJECT_COLUMNS or v == "":
                continue
            try:
                extra[k] = float(v)
            except ValueError:
                extra[k] = v
        out[row["subject"]] = Subject(
            id=row["subject"],
            gender=gender,
            age=_num(row["age"], path, lineno, "age"),
            height_cm=_num(row["height_cm"], path, lineno, "height_cm"),
            weight_kg=_num(row["weight_kg"], path, lineno, "weight_kg"),
            extra=extra,
        )
    return out


def _signal(path: Path, ds: Dataset) -> np.ndarray:
    if not path.is_file():
        raise DataError("recording file missing", path)
    lines = path.read_text().splitlines()
    header = [h.strip() for h in lines[0].split(",")] if lines else []
    if header != list(contract.CHANNELS):
        raise DataError(f"header must be {','.join(contract.CHANNELS)}", path, 1)
    rows = []
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        parts = line.split(",")
        try:
            if len(parts) != contract.N_CHANNELS:
                raise ValueError
            rows.append([float(p) for p in parts])
        except ValueError:
            if lineno == len(lines):
                ds.skip("truncated last row dropped")
                continue
            expected = f"expected {contract.N_CHANNELS} numbers ({','.join(contract.CHANNELS)})"
            raise DataError(expected, path, lineno) from None
    return np.asarray(rows, dtype=np.float64).reshape(-1, contract.N_CHANNELS)


def load(path: str | Path, name: str, progress=None) -> Dataset:
    root = Path(path)
    if not root.is_dir():
        raise DataError("not a folder (expected subjects.csv, recordings.csv and the recording CSVs)", root)
    subjects = _subjects(root / "subjects.csv")
    ds = Dataset(name=name, kind="generic", recordings=[], subjects={})
    index = root / "recordings.csv"
    for lineno, row in _rows(index, RECORDING_COLUMNS):
        if row["subject"] not in subjects:
            raise DataError(f"subject {row['subject']!r} is not in subjects.csv", index, lineno)
        rate = _num(row["rate_hz"], index, lineno, "rate_hz")
        if rate is None or rate <= 0:
            raise DataError("rate_hz must be a positive number", index, lineno)
        if not row["activity"]:
            raise DataError("activity is empty", index, lineno)
        signal = to_contract_rate(_signal(root / row["file"], ds), rate)
        if len(signal) == 0:
            ds.skip("empty recording files")
            continue
        ds.recordings.append(
            Recording(
                subject=row["subject"],
                activity=row["activity"],
                trial=row["trial"] or str(lineno),
                signal=signal,
                source=row["file"],
            )
        )
        if progress is not None:
            progress(len(ds.recordings), row["file"])
    used = {r.subject for r in ds.recordings}
    ds.subjects = {k: v for k, v in subjects.items() if k in used}
    if not ds.recordings:
        raise DataError("recordings.csv lists no recordings", index)
    return ds
