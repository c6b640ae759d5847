"""`dysan train` -> `dysan evaluate` -> `dysan report` end to end on a tiny SYNTHETIC run (with a baseline)."""

from __future__ import annotations

import json
import subprocess
import sys

from dysan.cli import main
from dysan.evaluate.pipeline import ARTIFACTS

TRANSFORMS = {"mean-removal", "rotation", "magnitudes"}
STRATEGIES = {"raw", "fixed", "personalized", "dynamic", "dysan-o", "dysan-o-device", "msda-a0.40_l0.40", *TRANSFORMS}
ATTACKERS = {"rf-adaptive", "rf-raw", "cnn-adaptive", "cnn-raw"}


def _train(out, *extra):
    cmd = [sys.executable, "-m", "dysan.cli", "train", "--data", "synthetic:subjects=8,seed=1", "--epochs", "2",
           "--pretrain-epochs", "1", "--batch", "64", "--width", "8", "--workers", "2", "--out", str(out), *extra]
    subprocess.run(cmd, check=True, capture_output=True, timeout=600)


def test_evaluate_and_report_on_a_tiny_synthetic_run(tmp_path):
    run = tmp_path / "run"
    _train(run, "--grid", "small")
    _train(run / "baselines" / "msda", "--loss", "msda")
    assert json.loads((run / "baselines" / "msda" / "config.json").read_text())["train"]["loss"] == "msda"
    out_json = tmp_path / "eval.json"
    assert main(["evaluate", str(run), "--attackers", "rf,cnn", "--cnn-epochs", "1", "--rf-trees", "40",
                 "--calibration-seconds", "5", "--json", str(out_json)]) == 0
    results = json.loads(out_json.read_text())
    assert results["synthetic"] is True and set(results["strategies"]) == STRATEGIES
    for name, r in results["strategies"].items():
        expected = ATTACKERS | ({"own"} if name not in {"raw", *TRANSFORMS} else set())
        assert set(r["attackers"]) == expected, name
        for att in r["attackers"].values():
            for task in ("activity", "sensitive"):
                assert 0 <= att[task]["accuracy"] <= 1 and len(att[task]["per_user"]) == 8
    assert results["windows"]["test"]["scored"] > 0
    assert results["strategies"]["fixed"]["info"]["model"] in results["models"]
    assert set(results["artifacts"]) == set(ARTIFACTS)

    report_dir = tmp_path / "report"
    assert main(["report", str(run), "--out", str(report_dir)]) == 0
    page = (report_dir / "report.html").read_text()
    assert "SYNTHETIC DATA" in page and "dysan train --data synthetic:subjects=8,seed=1" in page
    assert "--loss msda" in page and f"dysan evaluate {run}" in page and f"dysan report {run}" in page
    for json_name, png_name, _ in ARTIFACTS.values():
        assert f"src='{png_name}'" in page and (report_dir / png_name).stat().st_size > 1000
        assert (report_dir / json_name).is_file()
    assert "MSDA" in page and "DySan(o)-device" in page
    assert page.index("headline_tradeoff.png") < page.index("<h2>Commands")  # the report opens with the plane
    _check_in_browser(report_dir, tmp_path)


def _check_in_browser(report_dir, tmp_path):
    """Every figure of the report loads and decodes in a real headless Chromium, with no console error."""
    import pytest

    from chromium import executable, render

    if executable() is None:
        pytest.skip("chromium not installed (make setup installs it)")
    shot = tmp_path / "report.png"
    r = render(report_dir / "report.html", shot)
    assert len(r.images) == len(ARTIFACTS) + 1, r.images
    assert r.broken_images == [] and r.errors == [], (r.broken_images, r.errors)
    assert shot.stat().st_size > 50_000
