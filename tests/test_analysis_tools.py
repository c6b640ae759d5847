"""The analysis scripts under tools/: epoch_times.py (per-epoch seconds of a run's histories, percentiles per run)
and leak_features.py (the RF attacker retrained on subsets of the window statistics)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[1] / "tools"


def _tool(name: str = "epoch_times"):
    spec = importlib.util.spec_from_file_location(name, TOOLS / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _run(tmp: Path, name: str, seconds: dict[str, list[float]], cfg: dict | None) -> Path:
    run = tmp / name
    for point, secs in seconds.items():
        d = run / "models" / point
        d.mkdir(parents=True)
        (d / "history.json").write_text(json.dumps([{"epoch": i, "seconds": s} for i, s in enumerate(secs)]))
    if cfg is not None:
        (run / "config.json").write_text(json.dumps({"train": cfg}))
    return run


def test_percentiles_cover_every_point_and_name_the_options(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    tool = _tool()
    a = _run(tmp_path, "a", {"p1": [1.0, 2.0, 3.0, 4.0, 5.0], "p2": [6.0, 7.0, 8.0, 9.0, 100.0]},
             {"jitter": True, "jitter_angle": 25.0, "epochs": 5, "batch_size": 256, "width": 16})
    empty = _run(tmp_path, "empty", {}, None)
    empty.mkdir()
    assert sorted(tool.epoch_seconds(a)) == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 100.0]
    monkeypatch.setattr(sys, "argv", ["epoch_times.py", str(a), str(empty)])
    tool.main()
    out = capsys.readouterr().out.splitlines()
    # numpy's linear percentiles over the 10 epochs: p10 1.9, median 5.5, p90 18.1
    assert out[0] == (f"{a}: 10 epochs, p10 1.90 s, median 5.50 s, p90 18.10 s "
                      "(jitter=True, jitter_angle=25.0, epochs=5, batch_size=256)")
    assert out[1] == f"{empty}: no recorded epochs"


def test_leak_subsets_pick_the_named_columns_of_the_attackers_features() -> None:
    import numpy as np

    from dysan.features import N_BASIC, window_features

    tool = _tool("leak_features")
    assert sorted(tool.columns(*tool.SUBSETS["all 64"])) == list(range(N_BASIC))
    assert list(tool.columns(("acc_mag",), ("cross",))) == [tool.feature_names().index("acc_mag.cross")]
    # the names follow window_features' layout: a window whose only motion is on gyro_y moves gyro_y's columns
    w = np.zeros((2, 125, 6), dtype=np.int16)
    w[1, ::2, 4] = 300
    f = window_features(w)
    moved = {tool.feature_names()[i] for i in np.flatnonzero(f[0] != f[1])}
    assert moved and all(n.startswith(("gyro_y.", "gyro_mag.")) for n in moved)
    rotation_free = tool.columns(*tool.SUBSETS["magnitudes (rotation-free)"])
    assert {tool.feature_names()[i].split(".")[0] for i in rotation_free} == {"acc_mag", "gyro_mag"}
    assert tool.balanced_accuracy(np.array([0, 0, 0, 1]), np.array([0, 0, 1, 1])) == (2 / 3 + 1) / 2
