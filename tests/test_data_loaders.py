"""Loaders on small hand-made files in each format, and every bad-input rule (clear error or counted skip)."""

from __future__ import annotations

import tarfile

import numpy as np
import pytest

from dysan import contract
from dysan.cli import main
from dysan.data import load, prepare
from dysan.data.sisfall import ACC_G_PER_COUNT
from dysan.errors import DataError, DysanError

README = """Subjects:
+---------+-----+--------+--------+--------+
| Subject | Age | Height | Weight | Gender |
+---------+-----+--------+--------+--------+
| SA01    | 26  | 165    | 53     | F      |
| SE02    | 75  | 150    | 57.5   | M      |
+---------+-----+--------+--------+--------+
"""


def _sisfall_rows(n: int, acc_y: int = -256) -> str:
    rng = np.random.default_rng(n)
    lines = []
    for _ in range(n):
        v = rng.integers(-20, 20, 9)
        v[1] += acc_y
        lines.append(",".join(f"{x:4d}" for x in v) + ";")
    return "\r\n".join(lines) + "\r\n"


def make_sisfall(root, extra: dict[str, str] | None = None):
    base = root / "SisFall_dataset"
    (base / "SA01").mkdir(parents=True)
    (base / "SE02").mkdir()
    (base / "Readme.txt").write_text(README)
    (base / "SA01" / "D01_SA01_R01.txt").write_text(_sisfall_rows(1000))
    (base / "SA01" / "D07_SA01_R01.txt").write_text(_sisfall_rows(600))
    (base / "SE02" / "D01_SE02_R01.txt").write_text(_sisfall_rows(800))
    (base / "SA01" / ".DS_Store").write_text("junk")
    for rel, text in (extra or {}).items():
        (base / rel).write_text(text)
    return base


def test_sisfall_folder_and_archive_agree(tmp_path, monkeypatch):
    monkeypatch.setenv("DYSAN_CACHE", str(tmp_path / "cache"))
    base = make_sisfall(tmp_path / "src")
    ds = load(f"sisfall:{base}")
    assert set(ds.subjects) == {"SA01", "SE02"}
    assert ds.subjects["SE02"].gender == "M" and ds.subjects["SE02"].weight_kg == 57.5
    assert ds.skipped == {"non-data files ignored (not CODE_SUBJECT_TRIAL.txt)": 1}
    rec = next(r for r in ds.recordings if r.activity == "D01" and r.subject == "SA01")
    assert len(rec.signal) == 250  # 1000 rows at 200 Hz -> 50 Hz
    assert abs(rec.signal[:, 1].mean() - (-256 * ACC_G_PER_COUNT)) < 0.02  # -1 g on y, in g
    archive = tmp_path / "SisFall_dataset.tar.xz"
    with tarfile.open(archive, "w:xz") as tar:
        tar.add(base, arcname="SisFall_dataset")
    ds2 = load(f"sisfall:{archive}")
    assert [r.source for r in ds2.recordings] == [r.source for r in ds.recordings]
    for a, b in zip(ds.recordings, ds2.recordings, strict=True):
        np.testing.assert_array_equal(a.signal, b.signal)
    # cached second load returns the same data
    ds3 = load(f"sisfall:{archive}")
    np.testing.assert_array_equal(ds3.recordings[0].signal, ds2.recordings[0].signal)


def test_sisfall_malformed_row_names_file_and_line(tmp_path, monkeypatch):
    monkeypatch.setenv("DYSAN_CACHE", str(tmp_path / "cache"))
    bad = _sisfall_rows(10).split("\r\n")
    bad[4] = "  1,  2,  3;"
    base = make_sisfall(tmp_path / "src", {"SA01/D02_SA01_R01.txt": "\r\n".join(bad)})
    with pytest.raises(DataError) as e:
        load(f"sisfall:{base}")
    assert "D02_SA01_R01.txt:5" in str(e.value) and "9 comma-separated integers" in str(e.value)


def test_sisfall_documented_skips(tmp_path, monkeypatch):
    monkeypatch.setenv("DYSAN_CACHE", str(tmp_path / "cache"))
    truncated = _sisfall_rows(600) + "  12, -3"
    base = make_sisfall(
        tmp_path / "src",
        {
            "SA01/D03_SA01_R01.txt": truncated,
            "SA01/X99_SA01_R01.txt": _sisfall_rows(600),
            "SA01/D01_SA09_R01.txt": _sisfall_rows(600),  # subject not in the Readme table
        },
    )
    ds = load(f"sisfall:{base}")
    assert ds.skipped["truncated last row dropped"] == 1
    assert ds.skipped["files with an unknown activity code (not D01-D19/F01-F15)"] == 1
    assert ds.skipped["trials of subjects missing from the Readme.txt table"] == 1
    assert "SA09" not in {r.subject for r in ds.recordings}


def test_sisfall_missing_readme_and_missing_path(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"Readme\.txt"):
        load(f"sisfall:{tmp_path / 'empty'}")
    with pytest.raises(DataError, match="no such file"):
        load(f"sisfall:{tmp_path / 'nope'}")


def make_motionsense(root):
    motion = root / "A_DeviceMotion_data" / "wlk_7"
    motion.mkdir(parents=True)
    (root / "A_DeviceMotion_data" / "sit_5").mkdir()
    (root / "data_subjects_info.csv").write_text("code,weight,height,age,gender\n1,102,188,46,1\n2,72,180,28,0\n")
    header = ",attitude.roll,attitude.pitch,attitude.yaw," + ",".join(
        f"{name}.{axis}" for name in ("gravity", "rotationRate", "userAcceleration") for axis in "xyz")
    rows = [header] + [f"{i},0,0,0,0.0,-1.0,0.0,0.1,0.2,0.3,0.01,0.02,0.03" for i in range(300)]
    (motion / "sub_1.csv").write_text("\n".join(rows) + "\n")
    (root / "A_DeviceMotion_data" / "sit_5" / "sub_2.csv").write_text("\n".join(rows) + "\n")
    return root


def test_motionsense_adds_gravity_back(tmp_path):
    root = make_motionsense(tmp_path)
    ds = load(f"motionsense:{root}")
    assert {s.gender for s in ds.subjects.values()} == {"M", "F"}
    rec = ds.recordings[0]
    np.testing.assert_allclose(rec.signal[0], [0.01, -0.98, 0.03, 0.1, 0.2, 0.3], atol=1e-6)
    _, ws = prepare(f"motionsense:{root}")
    assert ws.classes == ("walk", "jog", "stairs", "sit/stand")


def test_motionsense_bad_row(tmp_path):
    root = make_motionsense(tmp_path)
    f = root / "A_DeviceMotion_data" / "wlk_7" / "sub_1.csv"
    lines = f.read_text().splitlines()
    lines[10] = "9,0,0,oops"
    f.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"sub_1.csv:11"):
        load(f"motionsense:{root}")


def _mobiact_file(path, sensor: str, t0: float, rate: float, n: int, gender="Female", age="Age: 25"):
    rng = np.random.default_rng(len(str(path)))
    t = t0 + np.cumsum(rng.uniform(0.7, 1.3, n) / rate)
    header = ["#Activity: WAL", "#Subject ID: 3", f"#{age}", "#Height(cm): 170", "#Weight(kg): 60",
              f"#Gender: {gender}", "#Timestamp(ns),x,y,z", "#", "@DATA"]
    vals = [0.0, 9.80665, 0.0] if sensor == "acc" else [0.1, 0.0, -0.1]
    rows = [f"{int(ti * 1e9)},{vals[0]},{vals[1]},{vals[2]}" for ti in t]
    path.write_text("\n".join(header + rows) + "\n")


def test_mobiact_merges_irregular_sensors(tmp_path):
    d = tmp_path / "WAL"
    d.mkdir()
    _mobiact_file(d / "WAL_acc_3_1.txt", "acc", 100.0, 200, 2000)
    _mobiact_file(d / "WAL_gyro_3_1.txt", "gyro", 100.05, 100, 1000)
    _mobiact_file(d / "WAL_ori_3_1.txt", "gyro", 100.0, 100, 10)
    ds = load(f"mobiact:{tmp_path}")
    assert ds.skipped == {"orientation files (unused)": 1}
    rec = ds.recordings[0]
    assert rec.subject == "MA03" and ds.subjects["MA03"].gender == "F"
    assert 450 < len(rec.signal) < 505  # ~10 s common span at 50 Hz
    np.testing.assert_allclose(rec.signal[20:-20].mean(axis=0), [0, 1, 0, 0.1, 0, -0.1], atol=1e-3)


def test_mobiact_missing_attribute_names_file(tmp_path):
    d = tmp_path / "WAL"
    d.mkdir()
    _mobiact_file(d / "WAL_acc_3_1.txt", "acc", 0, 200, 400, age="Weight(kg)x: 1")
    _mobiact_file(d / "WAL_gyro_3_1.txt", "gyro", 0, 100, 200)
    with pytest.raises(DataError, match=r"WAL_acc_3_1.txt: header lacks '#Age"):
        load(f"mobiact:{tmp_path}")


def make_generic(root, rate=100):
    root.mkdir(exist_ok=True)
    (root / "subjects.csv").write_text(
        "subject,gender,age,height_cm,weight_kg,bmi\nu1,F,30,160,55,21.5\nu2,M,64,180,80,24.7\n")
    lines = ["file,subject,activity,trial,rate_hz"]
    for s in ("u1", "u2"):
        for act in ("walk", "rest"):
            name = f"{s}_{act}.csv"
            lines.append(f"{name},{s},{act},1,{rate}")
            t = np.arange(rate * 6) / rate
            sig = np.stack([np.sin(2 * np.pi * 2 * t), -1 + 0 * t, 0 * t, 0 * t, 0.5 + 0 * t, 0 * t], axis=1)
            body = "\n".join(",".join(f"{v:.5f}" for v in row) for row in sig)
            (root / name).write_text(",".join(contract.CHANNELS) + "\n" + body + "\n")
    (root / "recordings.csv").write_text("\n".join(lines) + "\n")
    return root


def test_generic_format_and_custom_attribute(tmp_path):
    root = make_generic(tmp_path / "g")
    ds, ws = prepare(f"generic:{root}", attribute="bmi:23")
    assert ws.classes == ("rest", "walk")
    assert len(ds.recordings[0].signal) == 300  # 6 s at 100 Hz -> 50 Hz
    sens = dict(zip([ws.subjects[i] for i in ws.subject], ws.sensitive, strict=True))
    assert sens == {"u1": 0, "u2": 1}


def test_generic_unknown_subject_names_line(tmp_path):
    root = make_generic(tmp_path / "g")
    idx = root / "recordings.csv"
    idx.write_text(idx.read_text() + "u1_walk.csv,u9,walk,2,100\n")
    with pytest.raises(DataError, match=r"recordings.csv:6: subject 'u9'"):
        load(f"generic:{root}")


def test_subject_without_attribute_is_an_error(tmp_path):
    root = make_generic(tmp_path / "g")
    (root / "subjects.csv").write_text("subject,gender,age,height_cm,weight_kg\nu1,F,30,160,55\nu2,,64,180,80\n")
    with pytest.raises(DysanError, match="subject u2 has no gender"):
        prepare(f"generic:{root}")


def test_unknown_kind_and_activity_map():
    from dysan.data import parse_spec

    with pytest.raises(DysanError, match="unknown data kind 'foo'"):
        parse_spec("foo:/x")
    with pytest.raises(DysanError, match="unknown activity map 'nope'"):
        prepare("synthetic", activities="nope")


def test_cli_reports_bad_input_in_one_line(tmp_path, capsys):
    rc = main(["data", "--data", f"sisfall:{tmp_path / 'missing.tar.xz'}"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "no such file or folder" in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if line.startswith("error:")]) == 1
    rc = main(["data", "--data", "mobifall:/x"])
    assert rc == 2 and "unknown data kind" in capsys.readouterr().err
