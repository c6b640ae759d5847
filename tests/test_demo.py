"""``dysan demo``'s wiring (the full chain runs in ``make demo``, not here: it takes minutes)."""

from __future__ import annotations

import ast
from pathlib import Path

from dysan import demo


def test_demo_calls_library_functions_not_the_cli():
    """Issue 13: the demo drives the library, so a CLI change cannot silently change what it runs."""
    tree = ast.parse(Path(demo.__file__).read_text())
    modules = {(n.module or "") for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    assert not any(m == "cli" or m.startswith("cli.") or ".cli" in m for m in modules), modules
    assert "cli" not in names


def test_demo_settings_are_valid_library_settings():
    from dysan.train import grid
    from dysan.train.loop import TrainConfig

    cfg = demo.train_config()
    assert isinstance(cfg, TrainConfig) and cfg.epochs == demo.DEMO_TRAIN["epochs"]
    assert len(grid.parse(demo.DEMO_GRID)) >= 2
    ecfg = demo.evaluation_config()
    assert ecfg.attack.families == ("rf", "cnn") and ecfg.dtw_windows == demo.DEMO_DTW_WINDOWS
    assert demo.evaluate_command(Path("out/demo/run")).startswith("dysan evaluate out/demo/run --attackers rf,cnn")


def test_demo_labels_synthetic_data_only(tmp_path):
    assert demo.DemoContext(tmp_path).tag == " (SYNTHETIC data)"
    assert demo.DemoContext(tmp_path, data="sisfall:../shared/data/sisfall/SisFall_dataset.tar.xz").tag == ""
