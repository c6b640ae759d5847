"""WEDA-FALL loader: every quirk rule on hand-made files in the original layout, then the real archive.

The real-archive test reads ``../shared/data/weda-fall/weda-fall.tar.xz`` (skipped where absent) through the
prepared-data cache: ~7 s the first time, well under a second afterwards.
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import numpy as np
import pytest

from dysan import contract
from dysan.cli import main
from dysan.data import load, prepare
from dysan.data import weda_fall as wf
from dysan.errors import DataError

SHARED = Path(os.environ.get("DYSAN_SHARED", Path(__file__).resolve().parents[2] / "shared"))
WEDA_ARCHIVE = SHARED / "data" / "weda-fall" / "weda-fall.tar.xz"

README = """# WEDA-FALL
| User_id   |Age    | Height (m)    |Weight (Kg)    |Gender     |
| :-----:   | :---: | :---:         | :---:         |:---:      |
| 1         | 22    | 1.76          | 56.3          | Male      |
| 4         | 21    | 1.70          | 57.1          | Female    |

| User_id   |Age    | Height (m)    |Weight (Kg)    |Gender     |
| :-----:   | :---: | :---:         | :---:         |:---:      |
| 22        | 85    | 1.53          | 62.0          | Female    |

| Number of Males | Number of Females | Min - Max Age | Average Age |
| 1 | 2 | 21 - 85 |  42.6 |
"""


def bursty_times(n: int, rate: float = 50.0, packet: int = 5) -> np.ndarray:
    """Arrival times like the Fitbit's: packets of ``packet`` rows 2 ms apart, one packet per packet/rate s."""
    k = np.arange(n)
    return np.round((k // packet) * packet / rate + (k % packet) * 0.002, 3)


def sensor_csv(sensor: str, t: np.ndarray, xyz: np.ndarray) -> str:
    rows = [wf.HEADERS[sensor]] + [f"{ti:.3f},{x:.1f},{y:.1f},{z:.1f}" for ti, (x, y, z) in zip(t, xyz, strict=True)]
    return "\n".join(rows) + "\n"


def make_weda(root: Path, acc_rows: int = 600, gyro_rows: int = 590) -> Path:
    """A tiny WEDA-FALL tree: U01 walks (clean), U04 walks with every quirk, U22 sits; derived + extra files."""
    base = root / "WEDA-FALL"
    d01, d04 = base / "dataset" / "50Hz" / "D01", base / "dataset" / "50Hz" / "D04"
    d01.mkdir(parents=True)
    d04.mkdir(parents=True)
    (base / "dataset" / "10Hz" / "D01").mkdir(parents=True)
    (base / "README.md").write_text(README)
    (base / "dataset" / "fall_timestamps.csv").write_text("\ufefffilename,start_time,end_time\n")
    g = contract.GRAVITY_M_S2
    still = np.tile([0.0, 0.0, round(g, 1)], (acc_rows, 1))
    (d01 / "U01_R01_accel.csv").write_text(sensor_csv("accel", bursty_times(acc_rows), still))
    turning = np.tile([0.1, 0, -0.1], (acc_rows, 1))
    (d01 / "U01_R01_gyro.csv").write_text(sensor_csv("gyro", bursty_times(acc_rows), turning))
    (d01 / "U01_R01_orientation.csv").write_text("orientation_time_list,s,i,j,k\n0.0,1,0,0,0\n")
    derived = base / "dataset" / "10Hz" / "D01" / "U01_R01_accel.csv"
    derived.write_text(sensor_csv("accel", np.arange(3) / 10, still[:3]))
    # U04: a 2 Hz x-sine, two packets logged late (rows 50-59 after 60-69), a lost-packet gap, clipped z
    # samples, and a gyro stream 10 rows shorter.
    t = bursty_times(acc_rows)
    t[300:] += 0.4  # lost packets: a 0.4 s hole
    x = np.round(np.sin(2 * np.pi * 2 * (np.arange(acc_rows) / 50.0)) * 5, 1)
    acc = np.stack([x, np.zeros(acc_rows), np.full(acc_rows, 9.8)], axis=1)
    acc[100:103, 2] = 39.2
    perm = np.arange(acc_rows)
    perm[50:70] = np.r_[60:70, 50:60]
    (d01 / "U04_R01_accel.csv").write_text(sensor_csv("accel", t[perm], acc[perm]))
    tg = bursty_times(gyro_rows)
    tg[300:] += 0.4
    (d01 / "U04_R01_gyro.csv").write_text(sensor_csv("gyro", tg, np.tile([0.0, 0.2, 0.0], (gyro_rows, 1))))
    (d04 / "U22_R01_accel.csv").write_text(sensor_csv("accel", bursty_times(400, rate=40), still[:400]))
    (d04 / "U22_R01_gyro.csv").write_text(sensor_csv("gyro", bursty_times(400, rate=40), np.zeros((400, 3))))
    return base


def test_units_rate_subjects_and_skips(tmp_path, monkeypatch):
    monkeypatch.setenv("DYSAN_CACHE", str(tmp_path / "cache"))
    base = make_weda(tmp_path / "src")
    ds = load(f"weda-fall:{base}")
    assert set(ds.subjects) == {"U01", "U04", "U22"}
    u04, u22 = ds.subjects["U04"], ds.subjects["U22"]
    assert (u04.gender, u04.age, u04.height_cm, u04.weight_kg) == ("F", 21.0, 170.0, 57.1)
    assert u22.extra["group"] == "elder" and ds.subjects["U01"].gender == "M"
    assert ds.skipped == {
        "files of the derived 40/25/10/5 Hz folders (unused: sample drops of 50Hz)": 1,
        "orientation files (unused)": 1,
        "non-data files ignored (README images, fall_timestamps.csv, ...)": 1,
    }
    clean = next(r for r in ds.recordings if r.subject == "U01")
    assert clean.activity == "D01" and clean.trial == "R01" and clean.source == "dataset/50Hz/D01/U01_R01_accel.csv"
    # 600 samples at 50 Hz: 12 s; m/s² -> g (9.8 / 9.80665), rad/s kept
    assert abs(len(clean.signal) - 600) <= 2
    np.testing.assert_allclose(clean.signal[5:-5].mean(axis=0), [0, 0, 9.8 / contract.GRAVITY_M_S2, 0.1, 0, -0.1],
                               atol=1e-4)
    # a 40 Hz stream is re-timed at its own rate: 400 rows = 10 s -> ~500 samples at 50 Hz
    slow = next(r for r in ds.recordings if r.subject == "U22")
    assert abs(len(slow.signal) - 500) <= 3


def test_every_quirk_is_repaired_and_counted(tmp_path, monkeypatch):
    monkeypatch.setenv("DYSAN_CACHE", str(tmp_path / "cache"))
    base = make_weda(tmp_path / "src")
    ds = load(f"weda-fall:{base}")
    q = ds.quirks
    assert q["rows reordered by timestamp (packets logged late)"] == 20
    assert q["gaps > 0.25 s bridged by interpolation"] == 2  # acc and gyro of U04
    assert 2 * 15 <= q["50 Hz samples filled in gaps"] <= 2 * 22  # ~0.4 s of hole per stream at 50 Hz
    assert q["acc samples clipped at ±39.2 m/s² (4 g), kept"] == 3
    assert q["recordings with unequal acc/gyro lengths"] == 1
    assert 10 <= q["source samples trimmed outside the acc/gyro common span"] <= 13  # gyro 10 rows short
    assert q["samples re-timed from bursty packet timestamps onto a uniform clock"] == 2 * 600 + 600 + 590 + 2 * 400
    assert q["streams measured below 45 Hz (re-timed at their own rate)"] == 2
    assert not any("off the" in k for k in q)
    # the re-timed, re-ordered U04 x channel is the original sine (2 Hz, 5 m/s² peak), not burst-squeezed
    rec = next(r for r in ds.recordings if r.subject == "U04")
    x = rec.signal[:290, 0] * contract.GRAVITY_M_S2
    t = np.arange(len(x)) / contract.RATE_HZ
    ref = 5 * np.sin(2 * np.pi * 2 * t)
    assert np.abs(x[5:-5] - ref[5:-5]).max() < 0.35
    # the bridged gap keeps its duration: 0.4 s more than the rows account for (and the shorter gyro wins)
    assert abs(len(rec.signal) - (590 + 20)) <= 3


def test_folder_archive_and_cache_agree(tmp_path, monkeypatch):
    monkeypatch.setenv("DYSAN_CACHE", str(tmp_path / "cache"))
    base = make_weda(tmp_path / "src")
    archive = tmp_path / "weda-fall.tar.xz"
    with tarfile.open(archive, "w:xz") as tar:
        tar.add(base, arcname="WEDA-FALL")
    a, b = load(f"weda-fall:{base}"), load(f"weda-fall:{archive}")
    c = load(f"weda-fall:{archive}")  # from the cache
    assert [r.source for r in a.recordings] == [r.source for r in b.recordings] == [r.source for r in c.recordings]
    for ra, rb, rc in zip(a.recordings, b.recordings, c.recordings, strict=True):
        np.testing.assert_array_equal(ra.signal, rb.signal)
        np.testing.assert_array_equal(rb.signal, rc.signal)
    assert a.quirks == b.quirks == c.quirks and b.skipped == c.skipped
    _, ws = prepare(f"weda-fall:{archive}")
    assert ws.classes == ("walk", "jog", "stairs", "sit/stand")
    _, ws = prepare(f"weda-fall:{archive}", activities="with-falls")
    assert ws.classes[-1] == "fall"


def test_bad_input_names_file_and_line(tmp_path, monkeypatch):
    monkeypatch.setenv("DYSAN_CACHE", str(tmp_path / "cache"))
    base = make_weda(tmp_path / "src")
    f = base / "dataset" / "50Hz" / "D01" / "U01_R01_gyro.csv"
    lines = f.read_text().splitlines()
    lines[7] = "0.1,0.2,oops,0.0"
    f.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"U01_R01_gyro.csv:8: malformed row"):
        load(f"weda-fall:{base}")
    f.write_text("time,x,y,z\n0,0,0,0\n")
    with pytest.raises(DataError, match=r"U01_R01_gyro.csv:1: header must be 'gyro_time_list"):
        load(f"weda-fall:{base}")
    (base / "README.md").write_text("no tables here\n")
    with pytest.raises(DataError, match="no subject table"):
        load(f"weda-fall:{base}")
    with pytest.raises(DataError, match=r"no README\.md and dataset/"):
        load(f"weda-fall:{tmp_path}")


def test_real_archive(tmp_path, capsys):
    """The published archive: sizes from its README, the four classes, and every repair counted."""
    if not WEDA_ARCHIVE.is_file():
        pytest.skip(f"real data not found at {WEDA_ARCHIVE} (CI has ../shared beside the clone)")
    spec = f"weda-fall:{WEDA_ARCHIVE}"
    ds, ws = prepare(spec)
    s = ds.summary()
    assert (s["subjects"], s["female"], s["male"], s["recordings"]) == (25, 12, 13, 969)
    # README: ~12,250 s from first-to-last timestamps; the fitted clock adds ~a packet (0.07 s) per recording
    assert 0 <= s["samples_50hz"] / contract.RATE_HZ - 12250 < 120
    assert ws.counts()["per_class"] == {"walk": 921, "jog": 552, "stairs": 1127, "sit/stand": 545}
    q = ds.quirks
    assert q["recordings with unequal acc/gyro lengths"] == 264  # README quirk 3
    assert q["rows reordered by timestamp (packets logged late)"] > 0
    assert q["acc samples clipped at ±39.2 m/s² (4 g), kept"] > 0
    assert not any("off the" in k for k in q)  # README: every value on the 0.1 grid
    sig = np.concatenate([r.signal for r in ds.recordings[:200]])
    assert abs(np.median(np.linalg.norm(sig[:, :3], axis=1)) - 1.0) < 0.02  # gravity in g
    json_out = tmp_path / "data.json"
    assert main(["data", "--data", spec, "--json", str(json_out)]) == 0
    import json

    printed = json.loads(json_out.read_text())["data"]
    assert printed["quirks"] == q and printed["recordings"] == 969
