"""The run-directory layout (dysan.rundir): the names existing runs use, and discovery of baselines / folds."""

from __future__ import annotations

import json
from pathlib import Path

from dysan.rundir import NETS, RESULTS, BundleDir, ModelDir, RunDir, eval_name


def test_run_layout_names_are_those_of_existing_runs(tmp_path):
    # These names are on disk in every run trained so far: changing one orphans them (the module doc).
    rd = RunDir(str(tmp_path))
    assert isinstance(rd.path, Path)
    assert rd.config == tmp_path / "config.json"
    assert rd.data == tmp_path / "data.npz"
    assert rd.data_tmp == tmp_path / "data.tmp.npz"
    assert rd.summary == tmp_path / "summary.json"
    assert rd.grid_plot == tmp_path / "grid.png"
    assert rd.ablation_raw == tmp_path / "ablation_raw.json"
    assert rd.ablation_raw_jitter == tmp_path / "ablation_raw_jitter.json"
    md = rd.model("a0.10_l0.80")
    assert md.path == tmp_path / "models" / "a0.10_l0.80"
    assert [md.keras(n).name for n in NETS] == ["S.keras", "P.keras", "D.keras"]
    assert (md.done.name, md.progress.name, md.history.name, md.curves.name) == (
        "done.json", "progress.json", "history.json", "curves.png")
    assert md.checkpoints == md.path / "ckpt" and md.replay == md.path / "ckpt" / "replay.npz"
    assert md.selection.name == "selection.json" and md.ablation.name == "ablation.json"
    assert rd.shared.path == tmp_path / "shared" and rd.shared.weights("P") == tmp_path / "shared" / "P.weights.h5"
    assert rd.baseline("gen").path == tmp_path / "baselines" / "gen"
    assert rd.fold(2).path == tmp_path / "folds" / "2"
    assert rd.eval_dir() == tmp_path / "eval" and eval_name() == "eval"
    assert rd.eval_dir("mobiact-new-users") == tmp_path / "eval-transfer-mobiact-new-users"
    assert rd.eval_cache() == tmp_path / "eval" / "cache"
    assert RESULTS == "results.json"


def test_model_completion_needs_done_and_every_network(tmp_path):
    md = ModelDir(tmp_path / "m")
    md.path.mkdir()
    assert not md.is_done() and not md.is_complete()
    md.done.write_text(json.dumps({"final": {}}))
    assert md.is_done() and not md.is_complete()  # done.json without the saved networks: not usable
    for n in NETS:
        md.keras(n).write_bytes(b"")
    assert md.is_complete()


def test_baseline_and_fold_runs_are_discovered_by_their_config(tmp_path):
    rd = RunDir(tmp_path / "run")
    assert not rd.is_run() and rd.baseline_runs() == [] and rd.fold_runs() == []
    rd.path.mkdir()
    rd.config.write_text("{}")
    assert rd.is_run()
    for b in ("olympus", "gen"):
        rd.baseline(b).path.mkdir(parents=True)
        rd.baseline(b).config.write_text("{}")
    (rd.baselines / "notes").mkdir()  # no config.json: not a run
    (rd.baselines / "stray.txt").write_text("")
    rd.fold(1).path.mkdir(parents=True)
    rd.fold(1).config.write_text("{}")
    rd.fold(3).path.mkdir(parents=True)  # an empty fold folder (training never started)
    assert rd.baseline_runs() == [rd.baseline("gen").path, rd.baseline("olympus").path]
    assert rd.fold_runs() == [rd.fold(1).path]


def test_bundle_layout_matches_the_manifest_paths(tmp_path):
    bd = BundleDir(tmp_path)
    assert (bd.manifest.name, bd.image.name, bd.c_source.name, bd.population.name) == (
        "manifest.json", "bundle.bin", "dysan_bundle.c", "calibration_population.npz")
    assert bd.tflite_name("a0.10_l0.80", "S") == "a0.10_l0.80/S.tflite"
    assert bd.tflite("a0.10_l0.80", "D") == tmp_path / "a0.10_l0.80" / "D.tflite"
