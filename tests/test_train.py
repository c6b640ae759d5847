"""Adversarial training: loss surrogate, grid, determinism, resume, Ray, and learning on real SisFall."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from dysan.train import grid
from dysan.train.loop import TrainConfig
from dysan.train.runner import prepare_run, run_grid


def test_soft_ber_is_the_ber_for_confident_classifiers():
    from dysan.tfutil import import_tf
    from dysan.train.losses import hard_ber, soft_ber

    import_tf()
    labels = np.array([0, 0, 0, 1, 2, 2])
    pred = np.array([0, 1, 0, 1, 0, 2])
    logits = 50.0 * np.eye(3)[pred]
    # per-class recall 2/3, 1, 1/2 -> BER = 1 - 13/18
    assert float(soft_ber(logits.astype(np.float32), labels, 3)) == pytest.approx(5 / 18, abs=1e-5)
    assert float(hard_ber(pred, labels, 3)) == pytest.approx(5 / 18, abs=1e-6)
    chance = np.zeros((6, 2), dtype=np.float32)
    assert float(soft_ber(chance, np.array([0, 1, 1, 0, 1, 0]), 2)) == pytest.approx(0.5)


def test_grid_definitions():
    full = grid.parse("full")
    assert len(full) == 36 and all(p.alpha + p.lam <= 0.9 + 1e-9 for p in full)
    assert len({p.name for p in full}) == 36
    eight = grid.parse("8")
    assert len(eight) == 8 and set(eight) <= set(full)
    alphas = {p.alpha for p in eight}
    assert min(alphas) <= 0.2 and max(alphas) >= 0.7  # a prefix spreads over the triangle
    assert grid.parse("0.3/0.5,0.1/0.1") == [grid.GridPoint(0.3, 0.5), grid.GridPoint(0.1, 0.1)]
    from dysan.errors import DysanError

    with pytest.raises(DysanError):
        grid.parse("0.7/0.5")


def _weights(run_dir, point):
    import keras

    model = keras.models.load_model(run_dir / "models" / point.name / "S.keras")
    return [w.copy() for w in model.get_weights()]


def _cli(out, epochs=3, extra=()):
    return [sys.executable, "-m", "dysan.cli", "train", "--data", "synthetic:subjects=8,seed=2", "--grid",
            "0.4/0.4", "--epochs", str(epochs), "--batch", "64", "--pretrain-epochs", "1", "--width", "8",
            "--workers", "1", "--out", str(out), *extra]


def test_killed_run_resumes_to_identical_weights(tmp_path):
    point = grid.GridPoint(0.4, 0.4)
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    subprocess.run(_cli(ref, epochs=4), check=True, capture_output=True, timeout=600)
    proc = subprocess.Popen(_cli(killed, epochs=4), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    progress = killed / "models" / point.name / "progress.json"
    deadline = time.time() + 300
    while time.time() < deadline:
        if progress.exists() and json.loads(progress.read_text())["epoch"] >= 2:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed / "models" / point.name / "done.json").exists(), "killed too late to test resuming"
    done_epochs = json.loads(progress.read_text())["epoch"]
    assert 1 <= done_epochs < 4
    subprocess.run(_cli(killed, epochs=4), check=True, capture_output=True, timeout=600)
    history = json.loads((killed / "models" / point.name / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    for a, b in zip(_weights(ref, point), _weights(killed, point), strict=True):
        np.testing.assert_array_equal(a, b)
    summary = json.loads((ref / "summary.json").read_text())
    assert summary["complete"] and (ref / "grid.png").exists()
    assert (ref / "models" / point.name / "curves.png").exists()


def test_changed_settings_are_refused(tmp_path):
    out = tmp_path / "r"
    subprocess.run(_cli(out, epochs=1), check=True, capture_output=True, timeout=600)
    r = subprocess.run(_cli(out, epochs=2), capture_output=True, text=True, timeout=600)
    assert r.returncode == 2 and "different train" in r.stderr


def test_ray_local_cluster_runs_the_grid(tmp_path):
    """Each grid point as a Ray task on a single-node cluster started here (Ray >= 2.50 has no local_mode)."""
    pytest.importorskip("ray")
    import ray

    points = [grid.GridPoint(0.1, 0.8), grid.GridPoint(0.8, 0.1)]
    cfg = TrainConfig(epochs=1, batch_size=64, pretrain_epochs=0, monitor_windows=128, width=8)
    run_dir = tmp_path / "ray"
    prepare_run(run_dir, "synthetic:subjects=6,seed=3", "default", "gender", "within-subject", 0, None, 0, points, cfg)
    try:
        summary = run_grid(run_dir, points, cfg, workers=2, ray_address="local", log=lambda m: None)
    finally:
        ray.shutdown()
    assert summary["complete"] and summary["ray"] == "local"
    assert {m["point"]["name"] for m in summary["models"]} == {p.name for p in points}


@pytest.mark.sisfall
@pytest.mark.slow
def test_tiny_grid_on_sisfall_learns_the_expected_way(sisfall_spec, tmp_path):
    """α-heavy: its own D is fooled more than a λ-heavy model's; more distortion weight: less distortion."""
    points = [grid.GridPoint(0.8, 0.1), grid.GridPoint(0.1, 0.8), grid.GridPoint(0.1, 0.1)]
    cfg = TrainConfig(epochs=4, pretrain_epochs=2, monitor_windows=2048)
    run_dir = tmp_path / "sisfall"
    prepare_run(run_dir, sisfall_spec, "default", "gender", "within-subject", 0, None, 0, points, cfg)
    summary = run_grid(run_dir, points, cfg, workers=2, log=lambda m: None)
    final = {m["point"]["name"]: m["final"] for m in summary["models"]}
    alpha_heavy, lam_heavy, dist_heavy = (final[p.name] for p in points)
    assert alpha_heavy["D_monitor_acc"] < lam_heavy["D_monitor_acc"] - 0.05
    assert dist_heavy["distortion_monitor"] < lam_heavy["distortion_monitor"]
    assert dist_heavy["distortion_monitor"] < alpha_heavy["distortion_monitor"]
    assert lam_heavy["P_monitor_acc"] > 0.7
