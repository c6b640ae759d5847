"""`dysan models summary`: measured sizes and costs of both families against the device budgets."""

from __future__ import annotations

import json

from dysan.cli import main


def test_models_summary_budgets(tmp_path):
    out = tmp_path / "s.json"
    assert main(["models", "summary", "--json", str(out)]) == 0
    rep = json.loads(out.read_text())
    dev, paper = rep["families"]["device"], rep["families"]["paper"]
    # device: the budgets of BRIEF §4 / the issue
    assert dev["models"]["S"]["macs_per_window"] <= 1_000_000
    assert dev["full_grid"]["int8_bytes"] <= 700 * 1024
    assert rep["budgets"]["within_budget"] is True
    # int8 bytes are measured from the converted model: about one byte per weight plus int32 biases
    for r in dev["models"].values():
        assert r["parameters"] <= r["int8_bytes"] <= 4 * r["parameters"]
    # paper: the appendix architectures are ~20 M MAC per window for S, far over the device budget (BRIEF §3)
    assert 15e6 < paper["models"]["S"]["macs_per_window"] < 25e6
    assert paper["full_grid"]["int8_bytes"] > 20 * dev["full_grid"]["int8_bytes"]
    assert rep["grid_points"] == 36
