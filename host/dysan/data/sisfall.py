"""SisFall loader: the authors' ``.tar.xz`` or its unpacked folder, exactly as published.

Format (the dataset's ``Readme.txt``): files ``<CODE>_<SUBJECT>_<TRIAL>.txt`` with rows of 9 integers
separated by commas and ended by ``;`` at 200 Hz — ADXL345 acceleration x,y,z (13 bit, +-16 g), ITG3200
gyroscope x,y,z (16 bit, +-2000 deg/s), MMA8451Q acceleration x,y,z. We use the ADXL345 and the ITG3200.
The subject comes from the file name, not the folder (five ``D17_SE15`` files sit in ``SA15``). Subject
attributes come from the table at the end of ``Readme.txt``.

Documented skips (counted in the dataset summary, never silent): files whose name is not
``CODE_SUBJECT_TRIAL.txt`` (``.DS_Store``, ``images.rar``), activity codes outside D01-D19/F01-F15,
subjects missing from the Readme table, a truncated *last* row of a file (a recording cut mid-row).
Anything else malformed is an error naming the file and line.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..errors import DataError
from .archive import Layout, iter_members
from .model import Dataset, Recording, Subject
from .resample import to_contract_rate

SOURCE_RATE_HZ = 200
ACC_G_PER_COUNT = 32.0 / 8192.0
GYRO_RAD_S_PER_COUNT = 4000.0 / 65536.0 * np.pi / 180.0
KNOWN_CODES = {f"D{i:02d}" for i in range(1, 20)} | {f"F{i:02d}" for i in range(1, 16)}
FILE_RE = re.compile(r"^([A-Z]\d{2})_(S[AE]\d{2})_(R\d{2})\.txt$")
README_ROW_RE = re.compile(
    r"^\|\s*(S[AE]\d{2})\s*\|\s*(\d+(?:\.\d+)?)\s*\|\s*(\d+(?:\.\d+)?)\s*\|\s*(\d+(?:\.\d+)?)\s*\|\s*([FM])\s*\|"
)
LAYOUT = Layout(name="SisFall", top="SisFall_dataset", archive="SisFall_dataset.tar.xz", markers=("Readme.txt",))
ROW_HELP = "expected 9 comma-separated integers ended by ';' (ADXL345 x,y,z, ITG3200 x,y,z, MMA8451Q x,y,z)"


def parse_subject_table(text: str, where: str) -> dict[str, Subject]:
    """The Age/Height/Weight/Gender table at the end of Readme.txt."""
    subjects: dict[str, Subject] = {}
    for line in text.splitlines():
        m = README_ROW_RE.match(line.strip())
        if m:
            sid, age, height, weight, gender = m.groups()
            subjects[sid] = Subject(
                id=sid,
                gender=gender,
                age=float(age),
                height_cm=float(height),
                weight_kg=float(weight),
                extra={"age_group": "SA" if sid.startswith("SA") else "SE"},
            )
    if not subjects:
        raise DataError("no subject table found (expected rows like '| SA01 | 26 | 165 | 53 | F |')", where)
    return subjects


def parse_rows(data: bytes, where: str) -> tuple[np.ndarray, bool]:
    """Parse a trial file into ``(n, 9)`` int32 counts. Returns ``(rows, truncated_last_row_dropped)``."""
    text = data.decode("ascii", errors="replace")
    body = text.rstrip()
    truncated = False
    if body and not body.endswith(";"):
        cut = body.rfind(";")
        body = body[: cut + 1] if cut >= 0 else ""
        truncated = True
    n_rows = body.count(";")
    tokens = body.replace(";", " ").replace(",", " ").split()
    ok = len(tokens) == 9 * n_rows and body.count(",") == 8 * n_rows
    if ok:
        try:
            arr = np.array(tokens, dtype=np.int32).reshape(n_rows, 9)
        except ValueError:
            ok = False
    if not ok:
        _raise_first_bad_line(text, where)
    return arr, truncated


def _raise_first_bad_line(text: str, where: str) -> None:
    for lineno, line in enumerate(text.splitlines(), start=1):
        s = line.strip()
        if not s:
            continue
        parts = s.rstrip(";").split(",")
        if not s.endswith(";") or len(parts) != 9:
            raise DataError(f"malformed row {s[:60]!r}: {ROW_HELP}", where, lineno)
        for p in parts:
            try:
                int(p)
            except ValueError:
                raise DataError(f"malformed row {s[:60]!r}: {ROW_HELP}", where, lineno) from None
    raise DataError(f"could not parse rows: {ROW_HELP}", where)


def counts_to_signal(rows: np.ndarray) -> np.ndarray:
    """ADXL345 + ITG3200 counts at 200 Hz to the contract's units (g, rad/s), still at 200 Hz."""
    acc = rows[:, 0:3].astype(np.float64) * ACC_G_PER_COUNT
    gyro = rows[:, 3:6].astype(np.float64) * GYRO_RAD_S_PER_COUNT
    return np.concatenate([acc, gyro], axis=1)


def load(path: str | Path, name: str, progress=None) -> Dataset:
    """Load SisFall. ``progress`` is an optional callable ``(done_files, note)`` for a progress bar."""
    path = Path(path)
    if not path.exists():
        raise DataError("no such file or folder (expected SisFall_dataset.tar.xz or its unpacked folder)", path)
    ds = Dataset(name=name, kind="sisfall", recordings=[], subjects={})
    readme: str | None = None
    pending: list[Recording] = []
    for member_name, data in iter_members(path, LAYOUT):
        assert data is not None  # every file is read (no filter)
        base = member_name.rsplit("/", 1)[-1]
        if base == "Readme.txt":
            readme = data.decode("latin-1")
            continue
        m = FILE_RE.match(base)
        if not m:
            ds.skip("non-data files ignored (not CODE_SUBJECT_TRIAL.txt)")
            continue
        code, subject, trial = m.groups()
        where = f"{path}::{member_name}" if path.is_file() else str(path / member_name)
        if code not in KNOWN_CODES:
            ds.skip("files with an unknown activity code (not D01-D19/F01-F15)")
            continue
        rows, truncated = parse_rows(data, where)
        if truncated:
            ds.skip("truncated last row dropped")
        if len(rows) == 0:
            ds.skip("empty trial files")
            continue
        signal = to_contract_rate(counts_to_signal(rows), SOURCE_RATE_HZ)
        pending.append(Recording(subject=subject, activity=code, trial=trial, signal=signal, source=member_name))
        if progress is not None:
            progress(len(pending), base)
    if readme is None:
        raise DataError("Readme.txt not found (it holds the subject table)", path)
    table = parse_subject_table(readme, f"{path}::Readme.txt" if path.is_file() else str(path / "Readme.txt"))
    for rec in pending:
        if rec.subject not in table:
            ds.skip("trials of subjects missing from the Readme.txt table")
            continue
        ds.recordings.append(rec)
    used = {r.subject for r in ds.recordings}
    ds.subjects = {sid: s for sid, s in sorted(table.items()) if sid in used}
    if not ds.recordings:
        raise DataError("no SisFall trial files found (expected SA01/D01_SA01_R01.txt ...)", path)
    return ds
