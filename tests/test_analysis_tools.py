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

    from dysan import contract
    from dysan.features import FEATURE_NAMES, N_BASIC, window_features

    tool = _tool("leak_features")
    _, signals, stats = tool.SUBSETS["all"]
    assert sorted(tool.columns(signals, stats)) == list(range(N_BASIC))
    assert list(tool.columns(("acc_mag",), ("cross",))) == [FEATURE_NAMES.index("acc_mag.cross")]
    # the columns are window_features' own: a window moving only on one gyroscope axis moves that axis' columns
    # and the gyroscope magnitude's, nothing else
    w = np.zeros((2, contract.WINDOW, contract.N_CHANNELS), dtype=np.int16)
    w[1, ::2, 4] = 300
    f = window_features(w)
    moved = {FEATURE_NAMES[i] for i in np.flatnonzero(f[0] != f[1])}
    assert moved and moved <= {FEATURE_NAMES[i] for i in tool.columns(("gyro_y", "gyro_mag"), stats)}
    _, mags, _ = tool.SUBSETS["magnitudes"]
    assert set(mags) == {"acc_mag", "gyro_mag"}


def test_time_warp_keeps_rate_one_and_resamples_about_the_centre() -> None:
    import numpy as np

    tool = _tool("leak_features")
    ramp = np.tile(np.arange(125, dtype=np.int16)[None, :, None] * 10, (3, 1, 6))
    assert np.array_equal(tool.time_warp(ramp, 0.0, seed=1), ramp)  # rate 1: unchanged
    warped = tool.time_warp(ramp, 0.2, seed=1)
    assert np.array_equal(warped[:, 62], ramp[:, 62])  # the centre stays
    slopes = (warped[:, 70, 0] - warped[:, 54, 0]) / 160.0  # a ramp's slope is the drawn rate
    assert np.all((slopes >= 0.8 - 1e-3) & (slopes <= 1.2 + 1e-3)) and np.ptp(slopes) > 0
