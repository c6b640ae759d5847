"""Reference transforms, re-identification, --strategies, transfer evaluation and --folds of `dysan evaluate`.

Constructed cases with known answers, on the hand-built run of ``test_evaluate`` (an identity sanitizer and a
constant one on SYNTHETIC data): the identity sanitizer re-identifies exactly like raw; the magnitudes-only
transform does not change under a rotation; a transfer onto the run's own data reproduces the run's own
evaluation; the fold table's mean is the mean of the folds' values.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from dysan.errors import DysanError
from dysan.evaluate import transforms
from test_evaluate import CONSTANT, IDENTITY, known_run  # noqa: F401  (the module-scoped fixture)

OTHER = "synthetic:subjects=8,seed=5"


def _windows(n: int = 20, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.integers(-3000, 3000, size=(n, 125, 6))
    x[..., 1] -= 2048  # gravity on y: a real per-axis mean to remove
    return x.astype(np.int16)


def test_mean_removal_leaves_each_axis_centred():
    x = _windows()
    y = transforms.mean_removal(x)
    assert y.dtype == np.int16 and y.shape == x.shape
    assert np.abs(y.astype(np.float64).mean(axis=1)).max() <= 0.5  # the rounded mean is gone
    np.testing.assert_array_equal(np.diff(y.astype(np.int64), axis=1), np.diff(x.astype(np.int64), axis=1))


def test_magnitudes_only_is_rotation_invariant():
    x = _windows()
    mags = transforms.magnitudes(x)
    assert (mags[..., [1, 2, 4, 5]] == 0).all()
    # exact integer rotations (axis permutation with sign changes): magnitudes equal bit for bit
    perm = np.array([[0, -1, 0], [0, 0, 1], [-1, 0, 0]], dtype=np.float64)
    turned = transforms.rotate(x, np.repeat(perm[None], len(x), axis=0))
    np.testing.assert_array_equal(transforms.magnitudes(turned), mags)
    # arbitrary rotations: equal up to the rounding of the rotated counts
    rng = np.random.default_rng(3)
    turned = transforms.random_rotation(x, rng)
    diff = np.abs(transforms.magnitudes(turned).astype(np.int64) - mags.astype(np.int64))
    assert diff.max() <= 2
    # the RF attackers' magnitude features (isqrt of the same integers) are those of the raw window
    from dysan.features import FEATURE_NAMES, window_features

    f_mags, f_raw = window_features(mags), window_features(x)
    cols = [i for i, n in enumerate(FEATURE_NAMES[: f_raw.shape[1]]) if n.startswith(("acc_mag.", "gyro_mag."))]
    assert len(cols) == 16
    np.testing.assert_array_equal(f_mags[:, cols], f_raw[:, cols])


def test_random_rotation_is_seeded_per_side_and_keeps_norms():
    x = _windows(6)
    a = transforms.random_rotation(x, np.random.default_rng([0, 1]))
    b = transforms.random_rotation(x, np.random.default_rng([0, 1]))
    c = transforms.random_rotation(x, np.random.default_rng([0, 0]))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    m = transforms.rotation_matrices(50, np.random.default_rng(0))
    np.testing.assert_allclose(np.einsum("nij,nkj->nik", m, m), np.repeat(np.eye(3)[None], 50, 0), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(m), 1.0)
    norm = np.linalg.norm(x[..., 0:3].astype(np.float64), axis=-1)
    np.testing.assert_allclose(np.linalg.norm(a[..., 0:3].astype(np.float64), axis=-1), norm, atol=1.5)


@pytest.fixture(scope="module")
def own_eval(known_run):  # noqa: F811
    from dysan.evaluate import pipeline, runs

    ctx = runs.open_run(known_run)
    cfg = pipeline.EvalConfig(attack=pipeline.attackers.AttackConfig(families=("rf",), rf_trees=30))
    return pipeline.Evaluation(ctx, cfg, known_run / "eval" / "cache")


def test_identity_sanitizer_reidentifies_like_raw(own_eval):
    ev = own_eval
    assert ev.reid  # within-subject: re-identification on by default
    k = next(i for i, m in enumerate(ev.ctx.grid) if m.point == IDENTITY)
    ident = ev.grid_strategies(ev.cfg.weights, subset=[k], which=("fixed",))[0]
    raw = ev.attack(ev.raw_strategy(), ("rf",), reid=True)
    same = ev.attack(ident, ("rf",), reid=True)
    assert same["rf-adaptive"]["identity"] == raw["rf-adaptive"]["identity"]
    assert raw["rf-adaptive"]["identity"]["accuracy"] > 0.5  # 8 subjects: far above chance (12.5 %)
    c = next(i for i, m in enumerate(ev.ctx.grid) if m.point == CONSTANT)
    const = ev.attack(ev.grid_strategies(ev.cfg.weights, subset=[c], which=("fixed",))[0], ("rf",), reid=True)
    assert const["rf-adaptive"]["identity"]["balanced_accuracy"] == pytest.approx(1 / len(ev.ctx.subjects))


def test_transform_strategies_are_scored_without_own_models(own_eval):
    ev = own_eval
    strats = ev.transform_strategies()
    assert [s.name for s in strats] == list(transforms.TRANSFORMS)
    res = ev.attack(strats[2], ("rf",))  # magnitudes
    assert "own" not in res and 0 < res["rf-adaptive"]["activity"]["accuracy"] <= 1
    assert ev.distortion(strats[0])["l1_normalized"] > 0


def test_reidentification_needs_within_subject():
    from dysan.evaluate.pipeline import reidentification

    assert reidentification("within-subject", "auto") and not reidentification("new-users", "auto")
    assert not reidentification("within-subject", "off")
    with pytest.raises(DysanError, match="within-subject"):
        reidentification("new-users", "on")


def _rf_only(*extra):
    return ["--attackers", "rf", "--rf-trees", "20", "--skip", "tradeoff,candidates,dtw", *extra]


def test_strategies_option_and_transfer_on_the_same_data_equals_the_own_evaluation(known_run, tmp_path):  # noqa: F811
    from dysan.cli import main

    own, same = tmp_path / "own.json", tmp_path / "same.json"
    pick = "raw,dysan-o,dysan-o-device,magnitudes"
    assert main(["evaluate", str(known_run), *_rf_only("--strategies", pick, "--out", str(tmp_path / "o")),
                 "--json", str(own)]) == 0
    a = json.loads(own.read_text())
    assert list(a["strategies"]) == ["raw", "magnitudes", "dysan-o", "dysan-o-device"]
    assert a["transfer"] is None and "identity" in a["strategies"]["raw"]["attackers"]["rf-adaptive"]
    assert main(["evaluate", str(known_run), *_rf_only("--strategies", pick, "--test-data", a["data"]),
                 "--json", str(same)]) == 0
    b = json.loads(same.read_text())
    assert b["transfer"]["same_data_as_run"] and b["transfer"]["name"] == "synthetic-subjects8-seed4-within-subject"
    assert (known_run / "eval-transfer-synthetic-subjects8-seed4-within-subject" / "results.json").is_file()
    assert b["strategies"] == a["strategies"] and b["calibration"] == a["calibration"]
    assert main(["evaluate", str(known_run), *_rf_only("--strategies", "raw,nope")]) == 2


def test_transfer_to_other_data_and_its_report(known_run, tmp_path, capsys):  # noqa: F811
    from dysan.cli import main

    out = tmp_path / "t.json"
    assert main(["evaluate", str(known_run), *_rf_only("--strategies", "raw,dysan-o,rotation", "--test-data", OTHER,
                                                       "--test-protocol", "new-users", "--test-folds", "4")]) == 0
    folder = known_run / "eval-transfer-synthetic-subjects8-seed5-new-users"
    r = json.loads((folder / "results.json").read_text())
    assert r["transfer"]["data"] == OTHER and r["transfer"]["trained_on"] == "synthetic:subjects=8,seed=4"
    assert r["protocol"] == "new-users" and r["reidentification"] is False  # unseen users cannot be re-identified
    assert r["calibration"]["test"]["users"] == r["windows"]["test"]["users"] > 0
    assert main(["report", str(known_run), "--test-data", OTHER, "--test-protocol", "new-users"]) == 0
    page = (folder / "report.html").read_text()
    assert "sanitizers trained on" in page and OTHER in page and "judged on" in page
    # the run's own data under another protocol would score windows the sanitizers were trained on
    assert main(["evaluate", str(known_run), "--test-data", "synthetic:subjects=8,seed=4", "--test-protocol",
                 "new-users", "--json", str(out)]) == 2
    assert "trained with --protocol within-subject" in capsys.readouterr().err


def test_transfer_mapping_errors(known_run, tmp_path):  # noqa: F811
    from dysan.evaluate.transfer import map_activities, open_transfer

    config = json.loads((known_run / "config.json").read_text())
    bad = tmp_path / "map.json"
    bad.write_text(json.dumps({"walk": ["walk"], "stairs": ["stairs"], "sit/stand": ["sitstand"]}))
    with pytest.raises(DysanError, match="'jog' of the run cannot be mapped"):
        map_activities(config, "synthetic", {"walk", "jog"}, str(bad))
    extra = tmp_path / "extra.json"
    extra.write_text(json.dumps({"jog": ["jog"], "walk": ["walk"], "stairs": ["stairs"], "sit/stand": ["sitstand"],
                                 "run": ["x"]}))
    amap, left = map_activities(config, "synthetic", set(), str(extra))
    assert amap.classes == tuple(config["classes"]) and left == ["run"]  # laid out in the run's order
    copy = tmp_path / "run"
    shutil.copytree(known_run / "models", copy / "models")
    config["attribute"] = "shoe:40"
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(DysanError, match="cannot be mapped: subject SY01 has no value for 'shoe'"):
        open_transfer(copy, OTHER)


def test_folds_mean_and_spread_over_fold_runs(known_run, tmp_path):  # noqa: F811
    from dysan.cli import main
    from dysan.train.loop import TrainConfig
    from dysan.train.runner import prepare_run

    config = json.loads((known_run / "config.json").read_text())
    fold1 = known_run / "folds" / "1"
    if not (fold1 / "config.json").is_file():
        points = [_point(p) for p in config["grid"]]
        prepare_run(fold1, config["data"], config["activities"], config["attribute"], config["protocol"], 1, None,
                    config["split_seed"], points, TrainConfig(epochs=1, pretrain_epochs=0))
        shutil.copytree(known_run / "models", fold1 / "models")
    from dysan.evaluate.folds import fold_runs

    lonely = tmp_path / "lonely"
    lonely.mkdir()
    (lonely / "config.json").write_text(json.dumps(config))
    with pytest.raises(DysanError, match=r"1 fold run\(s\) found .* --fold K --out .*folds/K \(K = 1\)"):
        fold_runs(lonely, "2")
    out = tmp_path / "eval"
    assert main(["evaluate", str(known_run), *_rf_only("--strategies", "raw,mean-removal", "--folds", "2",
                                                       "--reidentification", "off", "--out", str(out))]) == 0
    table = json.loads((out / "folds.json").read_text())
    assert table["n"] == 2 and table["folds"] == [0, 1] and (out / "folds.png").stat().st_size > 1000
    per_fold = [json.loads((out / "results.json").read_text()),
                json.loads((fold1 / "eval" / "results.json").read_text())]
    row = next(r for r in table["rows"] if r["name"] == "mean-removal")
    values = [p["strategies"]["mean-removal"]["attackers"]["rf-adaptive"]["sensitive"]["accuracy"] for p in per_fold]
    got = row["accuracy"]["rf-adaptive"]["sensitive"]
    assert got["per_fold"] == values and got["mean"] == pytest.approx(np.mean(values))
    assert got["std"] == pytest.approx(np.std(values, ddof=1))
    assert per_fold[0]["folds_summary"]["n"] == 2
    assert main(["report", str(known_run), "--eval", str(out)]) == 0
    assert "Mean ± spread over folds" in (out / "report.html").read_text()


def _point(p: dict):
    from dysan.train.grid import GridPoint

    return GridPoint(float(p["alpha"]), float(p["lambda"]))
