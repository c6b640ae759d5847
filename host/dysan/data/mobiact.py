"""MobiAct / MobiFall v2 loader (Samsung Galaxy S3 in a trouser pocket; the same text format).

Files ``<ACT>_<acc|gyro|ori>_<subject>_<trial>.txt``: a ``#`` header with ``Age``, ``Height(cm)``,
``Weight(kg)`` and ``Gender``, then ``@DATA`` and rows ``timestamp_ns, x, y, z``. Acceleration is in m/s^2
*with* gravity (converted to g), the gyroscope in rad/s. The two sensors are sampled independently and
irregularly (about 100-200 Hz): both are interpolated onto one uniform grid over the time they both cover,
then decimated to 50 Hz with an anti-alias filter (:mod:`dysan.data.resample`). ``ori`` files are unused.

Documented skips: files not matching the name pattern, ``ori`` files, an acc file without its gyro (or the
reverse), a truncated last row. A missing header field is an error naming the file and line.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .. import contract
from ..errors import DataError
from .model import Dataset, Recording, Subject
from .resample import irregular_to_contract_rate

FILE_RE = re.compile(r"^([A-Z]{3})_(acc|gyro|ori)_(\d+)_(\d+)\.txt$")
HEADER_FIELDS = {"age": "age", "height(cm)": "height_cm", "weight(kg)": "weight_kg", "gender": "gender"}


def read_sensor_file(path: Path, ds: Dataset) -> tuple[dict[str, str], np.ndarray, np.ndarray]:
    """Header fields and ``(timestamps_s, xyz)`` of one sensor file."""
    header: dict[str, str] = {}
    rows: list[list[float]] = []
    in_data = False
    lines = path.read_text(errors="replace").splitlines()
    for lineno, line in enumerate(lines, start=1):
        s = line.strip()
        if not s:
            continue
        if not in_data:
            if s.startswith("@DATA"):
                in_data = True
            elif s.startswith("#") and ":" in s:
                key, value = s[1:].split(":", 1)
                header[key.strip().lower()] = value.strip()
            continue
        parts = s.split(",")
        try:
            if len(parts) != 4:
                raise ValueError
            rows.append([float(p) for p in parts])
        except ValueError:
            if lineno == len(lines):
                ds.skip("truncated last row dropped")
                continue
            raise DataError("expected 'timestamp_ns, x, y, z'", path, lineno) from None
    if not in_data:
        raise DataError("no @DATA line (expected a # header, @DATA, then rows)", path)
    arr = np.asarray(rows, dtype=np.float64).reshape(-1, 4)
    return header, arr[:, 0] * 1e-9, arr[:, 1:4]


def _subject(sid: str, header: dict[str, str], path: Path) -> Subject:
    values: dict[str, str] = {}
    for key, field in HEADER_FIELDS.items():
        if key not in header:
            raise DataError(f"header lacks '#{key.capitalize()}: ...' (subject attributes are required)", path)
        values[field] = header[key]
    gender = values["gender"].strip().upper()[:1]
    if gender not in ("F", "M"):
        raise DataError(f"gender {values['gender']!r}: expected Male/Female (or M/F)", path)
    try:
        return Subject(
            id=f"MA{int(sid):02d}",
            gender=gender,
            age=float(values["age"]),
            height_cm=float(values["height_cm"]),
            weight_kg=float(values["weight_kg"]),
        )
    except ValueError:
        raise DataError("age, height and weight must be numbers", path) from None


def load(path: str | Path, name: str, progress=None) -> Dataset:
    root = Path(path)
    if not root.is_dir():
        raise DataError("not a folder (expected MobiAct/MobiFall with <ACT>_<acc|gyro>_<subject>_<trial>.txt)", root)
    ds = Dataset(name=name, kind="mobiact", recordings=[], subjects={})
    pairs: dict[tuple[str, str, str], dict[str, Path]] = {}
    for f in sorted(root.rglob("*.txt")):
        m = FILE_RE.match(f.name)
        if not m:
            ds.skip("files not named <ACT>_<sensor>_<subject>_<trial>.txt")
            continue
        act, sensor, sid, trial = m.groups()
        if sensor == "ori":
            ds.skip("orientation files (unused)")
            continue
        pairs.setdefault((act, sid, trial), {})[sensor] = f
    for (act, sid, trial), files in sorted(pairs.items()):
        if set(files) != {"acc", "gyro"}:
            ds.skip("trials with only one of acc/gyro")
            continue
        h_acc, t_acc, acc = read_sensor_file(files["acc"], ds)
        _, t_gyro, gyro = read_sensor_file(files["gyro"], ds)
        subject = _subject(sid, h_acc, files["acc"])
        ds.subjects.setdefault(subject.id, subject)
        signal = irregular_to_contract_rate([(t_acc, acc / contract.GRAVITY_M_S2), (t_gyro, gyro)])
        if len(signal) == 0:
            ds.skip("trials whose acc and gyro do not overlap in time")
            continue
        ds.recordings.append(
            Recording(subject=subject.id, activity=act, trial=trial, signal=signal, source=files["acc"].name)
        )
        if progress is not None:
            progress(len(ds.recordings), files["acc"].name)
    if not ds.recordings:
        raise DataError("no acc/gyro trial pairs found (expected <ACT>_acc_<subject>_<trial>.txt)", root)
    return ds
