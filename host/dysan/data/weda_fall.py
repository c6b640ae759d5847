"""WEDA-FALL loader (Fitbit Sense on the wrist): the repository's ``.tar.xz`` or its unpacked folder.

Layout (``WEDA-FALL/``, see ``../shared/data/weda-fall/README.md``): ``README.md`` (the authors' activity
and subject tables) and ``dataset/<rate>/<ACT>/U<uu>_R<rr>_<sensor>.csv``. Only the ``50Hz`` folder is
raw; the 40/25/10/5 Hz folders are sample drops derived from it and are skipped (counted). Of the sensors,
``accel`` (``accel_time_list,accel_x_list,...``; m/s² *with* gravity, converted to g) and ``gyro`` (rad/s,
kept) are used; ``orientation`` and ``vertical_accel`` are skipped (counted). Subjects (gender, age,
height in m -> cm, weight, young/elder group) come from Tables 3 and 4 of the original README.

The recordings are messy; every quirk is handled by a stated rule and counted in :attr:`Dataset.quirks`
(``dysan data`` prints them):

1. **Rows out of time order.** Packets are sometimes logged late: a block of rows carries timestamps
   0.7-1.1 s and the next block 0.3-0.7 s, the values continuing smoothly in *time* order. Rows are
   stably sorted by timestamp ("rows reordered by timestamp").
2. **Bursty timestamps.** Rows arrive in packets of about five, 1-3 ms apart, then ~0.1 s of nothing: the
   timestamps are arrival times, not sampling instants. Interpolating on them would squeeze each packet's
   samples into a few milliseconds. Each stream is re-timed on a uniform clock by sample index, at the
   stream's own rate fitted by least squares on its timestamps (ADLs ~49.6 Hz, falls ~39.8 Hz: the clock
   is not assumed to be 50 Hz).
3. **Gaps.** After sorting, a step longer than :data:`GAP_S` means lost packets. The stream is cut there:
   each piece keeps its own time offset, so the gap keeps its real duration, and the contract-rate samples
   inside it are filled by linear interpolation ("gaps bridged", "samples filled").
4. **Unequal stream lengths.** Accelerometer and gyroscope have their own timestamps and lengths (up to
   26 samples apart). Both are put on one grid over the time span they both cover; source samples
   outside it are dropped ("samples trimmed").
5. **Resampling** to the contract's 50 Hz with the project's irregular-source path
   (:func:`dysan.data.resample.irregular_to_contract_rate`: one uniform 200 Hz grid, anti-alias decimation).
6. **0.1 quantisation.** Every value is rounded to 0.1 (0.1 m/s² ≈ 21 acc counts, 0.1 rad/s = 51 gyro
   counts). Nothing can restore the lost resolution; the loader checks that values lie on that grid and
   counts the ones that do not (0 in the published data).
7. **Clipping.** The accelerometer saturates at ±4 g (±39.2 m/s²), mostly in jogging and falls. Clipped
   samples are kept as they are (the true value is unknown) and counted.

Anything malformed (a wrong header, a non-numeric row) is an error naming the file and line.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .. import contract
from ..errors import DataError
from .archive import Layout, find_root, iter_members
from .model import Dataset, Recording, Subject
from .resample import INTERMEDIATE_HZ, irregular_to_contract_rate

LAYOUT = Layout(name="WEDA-FALL", top="WEDA-FALL", archive="weda-fall.tar.xz", markers=("README.md", "dataset/"))
RAW_FOLDER = "50Hz"
"""The raw folder; the others are derived by dropping samples."""
DERIVED_FOLDERS = ("40Hz", "25Hz", "10Hz", "5Hz")
FILE_RE = re.compile(r"^dataset/([^/]+)/([DF]\d{2})/(U\d{2})_(R\d{2})_(accel|gyro|orientation|vertical_accel)\.csv$")
HEADERS = {
    "accel": "accel_time_list,accel_x_list,accel_y_list,accel_z_list",
    "gyro": "gyro_time_list,gyro_x_list,gyro_y_list,gyro_z_list",
}
SUBJECT_ROW_RE = re.compile(
    r"^\|\s*(\d+)\s*\|\s*(\d+(?:\.\d+)?)\s*\|\s*(\d+(?:[.,]\d+)?)\s*\|\s*(\d+(?:\.\d+)?)\s*\|\s*(Male|Female)\s*\|\s*$"
)
GAP_S = 0.25
"""A step between sorted timestamps longer than this is lost data (packets come every ~0.1 s)."""
ACC_CLIP_M_S2 = 39.2
"""±4 g: the accelerometer's range (values reach exactly 39.2 and never beyond)."""
QUANTUM = 0.1
"""Every stored value is a multiple of this (m/s², rad/s)."""
SLOW_RATE_HZ = 45.0
"""Streams measured below this rate are counted (the README: 39.2-50.9 Hz per recording)."""


def subject_prefix(user_id: int) -> str:
    return f"U{user_id:02d}"


def parse_subject_table(text: str, where: str) -> dict[str, Subject]:
    """Rows ``| 1 | 22 | 1.76 | 56.3 | Male |`` of the README's Tables 3 (young) and 4 (elder)."""
    subjects: dict[str, Subject] = {}
    for line in text.splitlines():
        m = SUBJECT_ROW_RE.match(line.strip())
        if not m:
            continue
        uid, age, height, weight, gender = m.groups()
        sid = subject_prefix(int(uid))
        subjects[sid] = Subject(
            id=sid,
            gender=gender[0],
            age=float(age),
            height_cm=round(float(height.replace(",", ".")) * 100.0, 1),
            weight_kg=float(weight),
            extra={"group": "young" if int(uid) < 20 else "elder"},
        )
    if not subjects:
        raise DataError("no subject table found (expected rows like '| 1 | 22 | 1.76 | 56.3 | Male |')", where)
    return subjects


def parse_sensor_csv(data: bytes, sensor: str, where: str) -> np.ndarray:
    """``(n, 4)`` float64 rows ``time_s, x, y, z`` of one ``accel``/``gyro`` file (header checked)."""
    text = data.decode("ascii", errors="replace")
    lines = text.splitlines()
    if not lines or lines[0].strip().lstrip("\ufeff") != HEADERS[sensor]:
        raise DataError(f"header must be {HEADERS[sensor]!r}", where, 1)
    body = [ln for ln in lines[1:] if ln.strip()]
    tokens = ",".join(body).split(",") if body else []
    if len(tokens) == 4 * len(body):
        try:
            return np.array(tokens, dtype=np.float64).reshape(-1, 4)
        except ValueError:
            pass
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        parts = line.split(",")
        try:
            if len(parts) != 4:
                raise ValueError
            [float(p) for p in parts]
        except ValueError:
            raise DataError(f"malformed row {line[:60]!r}: expected 'time_s,x,y,z'", where, lineno) from None
    raise DataError("could not parse rows: expected 'time_s,x,y,z'", where)


def retime(t: np.ndarray, quirks: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """Sampling times for a stream's rows: ``(order, times)``, rows to take in ``order``.

    Rows are stably sorted by timestamp and cut at steps longer than :data:`GAP_S`. Within each piece the
    sample instants are taken uniform in the sample index, ``time = offset_piece + period * index``, with
    one period for the whole stream fitted by least squares on the timestamps (pooled within pieces) and
    each piece's own offset. A least-squares line through bursty arrival times is not biased by the burst
    pattern the way first-to-last spacing is (which would lose up to a packet, ~0.1 s, per piece).
    See the module doc, quirks 1-3.
    """
    n = len(t)
    order = np.argsort(t, kind="stable")
    _count(quirks, "rows reordered by timestamp (packets logged late)", int((order != np.arange(n)).sum()))
    ts = t[order].astype(np.float64)
    steps = np.diff(ts)
    _count(quirks, "duplicate timestamps", int((steps == 0).sum()))
    cuts = np.flatnonzero(steps > GAP_S)
    bounds = list(zip(np.r_[0, cuts + 1], np.r_[cuts + 1, n], strict=True))
    k = np.arange(n, dtype=np.float64)
    sxy = sxx = 0.0
    for s, e in bounds:
        dk, dt = k[s:e] - k[s:e].mean(), ts[s:e] - ts[s:e].mean()
        sxy += float(dk @ dt)
        sxx += float(dk @ dk)
    if sxx <= 0 or sxy <= 0:
        raise ValueError("a stream needs at least two increasing timestamps within 0.25 s of each other")
    period = sxy / sxx
    times = np.empty(n, dtype=np.float64)
    for s, e in bounds:
        times[s:e] = ts[s:e].mean() + (k[s:e] - k[s:e].mean()) * period
    _count(quirks, "samples re-timed from bursty packet timestamps onto a uniform clock", n)
    if len(cuts):
        _count(quirks, f"gaps > {GAP_S} s bridged by interpolation", len(cuts))
        filled = sum(max(0, round((times[c + 1] - times[c] - period) * contract.RATE_HZ)) for c in cuts)
        _count(quirks, "50 Hz samples filled in gaps", filled)
    if 1.0 / period < SLOW_RATE_HZ:
        _count(quirks, f"streams measured below {SLOW_RATE_HZ:g} Hz (re-timed at their own rate)", 1)
    return order, times


def _count(quirks: dict[str, int], reason: str, n: int) -> None:
    if n:
        quirks[reason] = quirks.get(reason, 0) + n


def to_signal(acc_rows: np.ndarray, gyro_rows: np.ndarray, quirks: dict[str, int]) -> np.ndarray:
    """One recording's accel and gyro rows to a ``(n, 6)`` contract signal (g, rad/s at 50 Hz)."""
    for name, rows in (("acc", acc_rows), ("gyro", gyro_rows)):
        scaled = rows[:, 1:] / QUANTUM
        _count(quirks, f"{name} values off the {QUANTUM:g} grid", int((np.abs(scaled - np.round(scaled)) > 1e-6).sum()))
    _count(quirks, f"acc samples clipped at ±{ACC_CLIP_M_S2:g} m/s² (4 g), kept",
           int((np.abs(acc_rows[:, 1:]) >= ACC_CLIP_M_S2 - 1e-9).any(axis=1).sum()))
    o_acc, t_acc = retime(acc_rows[:, 0], quirks)
    o_gyro, t_gyro = retime(gyro_rows[:, 0], quirks)
    if len(acc_rows) != len(gyro_rows):
        _count(quirks, "recordings with unequal acc/gyro lengths", 1)
    t0, t1 = max(t_acc[0], t_gyro[0]), min(t_acc[-1], t_gyro[-1])
    trimmed = int(((t_acc < t0) | (t_acc > t1)).sum() + ((t_gyro < t0) | (t_gyro > t1)).sum())
    _count(quirks, "source samples trimmed outside the acc/gyro common span", trimmed)
    acc = acc_rows[o_acc, 1:] / contract.GRAVITY_M_S2
    gyro = gyro_rows[o_gyro, 1:]
    return irregular_to_contract_rate([(t_acc, acc), (t_gyro, gyro)])


def _wanted(name: str) -> bool:
    """The files the loader reads (the others are only counted): the README and the raw accel / gyro CSVs."""
    return name == "README.md" or (name.startswith(f"dataset/{RAW_FOLDER}/") and
                                   name.endswith(("_accel.csv", "_gyro.csv")))


def load(path: str | Path, name: str, progress=None) -> Dataset:
    """Load WEDA-FALL. ``progress`` is an optional callable ``(done_recordings, note)``."""
    path = Path(path)
    if not path.exists():
        raise DataError("no such file or folder (expected weda-fall.tar.xz or its unpacked folder)", path)
    ds = Dataset(name=name, kind="weda-fall", recordings=[], subjects={})
    readme: str | None = None
    files: dict[tuple[str, str, str], dict[str, tuple[bytes, str]]] = {}
    for member, data in iter_members(path, LAYOUT, _wanted):
        if member == "README.md":
            readme = (data or b"").decode("utf-8", errors="replace")
            continue
        m = FILE_RE.match(member)
        if not m:
            ds.skip("non-data files ignored (README images, fall_timestamps.csv, ...)")
            continue
        folder, code, subject, trial, sensor = m.groups()
        if folder in DERIVED_FOLDERS:
            ds.skip("files of the derived 40/25/10/5 Hz folders (unused: sample drops of 50Hz)")
            continue
        if folder != RAW_FOLDER:
            ds.skip("files in an unknown rate folder")
            continue
        if sensor in ("orientation", "vertical_accel"):
            ds.skip(f"{sensor} files (unused)")
            continue
        where = f"{path}::WEDA-FALL/{member}" if path.is_file() else str(find_root(path, LAYOUT) / member)
        files.setdefault((code, subject, trial), {})[sensor] = (data or b"", where)
    if readme is None:
        raise DataError("README.md not found (it holds the subject tables)", path)
    table = parse_subject_table(readme, f"{path}::WEDA-FALL/README.md" if path.is_file() else str(path))
    for (code, subject, trial), pair in sorted(files.items()):
        if set(pair) != {"accel", "gyro"}:
            ds.skip("trials with only one of accel/gyro")
            continue
        if subject not in table:
            ds.skip("trials of subjects missing from the README tables")
            continue
        acc_rows = parse_sensor_csv(pair["accel"][0], "accel", pair["accel"][1])
        gyro_rows = parse_sensor_csv(pair["gyro"][0], "gyro", pair["gyro"][1])
        if min(len(acc_rows), len(gyro_rows)) < 2:
            ds.skip("trials with fewer than 2 samples in a stream")
            continue
        try:
            signal = to_signal(acc_rows, gyro_rows, ds.quirks)
        except ValueError as exc:
            raise DataError(str(exc), pair["accel"][1]) from None
        if len(signal) == 0:
            ds.skip("trials whose acc and gyro do not overlap in time")
            continue
        source = pair["accel"][1].rsplit("WEDA-FALL/", 1)[-1]
        ds.recordings.append(Recording(subject=subject, activity=code, trial=trial, signal=signal, source=source))
        if progress is not None:
            progress(len(ds.recordings), f"{code}/{subject}_{trial}")
    used = {r.subject for r in ds.recordings}
    ds.subjects = {sid: s for sid, s in sorted(table.items()) if sid in used}
    if not ds.recordings:
        raise DataError("no WEDA-FALL accel/gyro pairs found (expected dataset/50Hz/D01/U01_R01_accel.csv ...)", path)
    ds.notes.append(f"resampled via a uniform {INTERMEDIATE_HZ} Hz grid; values quantised to {QUANTUM:g} "
                    f"(m/s², rad/s) at the source; acc clips at ±4 g")
    return ds
