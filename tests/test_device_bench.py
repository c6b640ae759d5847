"""``dysan bench-firmware`` end to end on a small bundle: it boots the QEMU image under -icount shift=0,
replays windows, and its per-stage instruction counts, duty cycle, flash / RAM figures and kernel MACs per
instruction are consistent with each other and with the counts the firmware reports."""

from __future__ import annotations

import json

import pytest

from dysan.cli import main
from dysan.device import qemu_available
from test_device_support import synthetic, synthetic_bundle  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.qemu, pytest.mark.skipif(not qemu_available(), reason="qemu-system-arm is not installed")]


def test_bench_firmware_reports_consistent_costs(tmp_path, synthetic_bundle) -> None:  # noqa: F811
    out = tmp_path / "bench"
    rc = main(["bench-firmware", "--bundle", str(synthetic_bundle.directory), "--windows", "10",
               "--candidates", "1,2,4", "--out", str(out), "--json", str(tmp_path / "b.json"), "--no-cmsis",
               "--realtime-minutes", "0.5", "--realtime-data", "synthetic", "--heavy-minutes", "0"])
    assert rc == 0
    r = json.loads((tmp_path / "b.json").read_text())
    assert r == json.loads((out / "bench-firmware.json").read_text())
    runs = {x["candidates"]: x for x in r["runs"]}
    assert set(runs) == {1, 2, 4}
    for k, x in runs.items():
        c = x["counters"]
        assert c["stage_windows"] == 10 and c["candidates_scored"] == 10 * k
        stages = sum(x[f"{s}_per_window"] for s in ("preprocess", "rf", "score", "sanitize"))
        assert stages < x["total_per_window"] < stages * 1.05 + x["link_per_window"]  # the stages are the work
        assert x["duty_cycle"] == pytest.approx(x["total_per_window"] / 79.36e6)
    # scoring grows with the candidates, each candidate (S + P + D) costs the same whatever k
    assert runs[4]["score_per_window"] > 1.9 * runs[2]["score_per_window"] > 3.6 * runs[1]["score_per_window"]
    assert runs[4]["per_candidate"] == pytest.approx(runs[1]["per_candidate"], rel=0.02)
    # an S run costs less than a candidate (S + P + D), and fits the 1 M instruction budget
    assert 0 < runs[1]["per_sanitizer_run"] < runs[1]["per_candidate"]
    assert r["budgets"]["sanitize_window_instructions"]["ok"]
    assert r["recommended_candidates"] == 4  # a 4-model bundle: at most 4 are evaluated, far below 25 %
    k = r["kernels"]
    assert 0.3 < k["conv"]["macs_per_instruction"] < 2.0 and k["conv"]["macs"] > 0 and k["fc"]["macs"] > 0
    mem = r["memory"]
    assert mem["flash"]["total"] == mem["flash"]["firmware_code"] + len(synthetic_bundle.image) + r["rf_bytes"]
    assert set(mem["ram"]["ml_static_objects"]) == {"ml_pipe", "ml_bundle", "ml_ring", "ml_window", "ml_samples",
                                                    "ml_jitter_counts", "ml_jitter_out"}
    assert mem["ram"]["ml_static_objects"]["ml_pipe"] > 32 * 1024  # the arena alone is 32 KB
    assert "one instruction per cycle" in r["assumption"]
    # the default schedule's row against the 5 % goal, and half a minute on the emulated wearable in real time
    d = r["default_schedule"]
    assert d["candidates"] == 4 and d["duty_cycle"] == round(runs[4]["duty_cycle"], 4) and d["ok"]
    rt = r["realtime"]["default"]
    assert rt["samples"] == rt["samples_acquired"] == 1500 and rt["samples_missed"] == rt["windows_late"] == 0
    assert rt["identical_to_reference"] and rt["windows"] == rt["reference_windows"] == 23
    assert 0 < rt["duty_64mhz"] < 0.05
