"""The emulated wearable in real time (issue 11): the QEMU Cortex-M4F firmware sanitizing a SisFall subject
that its emulated IMU plays at 50 Hz of virtual time from a hardware timer interrupt, on a 62.5 MHz core
(``-icount shift=4``), with a full grid's worth of models (36, random weights: the instructions are those of
any trained grid).

* With the default schedule (8 rotating candidates per window, scores over 5 segments) the firmware keeps up:
  0 samples missed, no late window, nothing flagged, and every window byte-identical to the Python reference
  (``ReferencePipeline.run(samples, replayed=False)``), at <= 5 % duty for a 64 MHz core.
* A deliberately too-heavy configuration -- every candidate on every window on an 8 MHz core
  (``-icount shift=7``) -- cannot keep up, and the counters say so: samples missed, windows late, windows
  flagged SAMPLES_MISSED / LATE on the wire, each counted.

About 60 s of virtual time each; the long run (>= 10 minutes) is ``dysan bench-firmware`` (docs/firmware.md).
The sample ring itself (order, capacity, losses, gap marks) is unit-tested on the host (firmware/tests/test_sampler.c).
"""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from dysan.device import qemu_available, realtime
from dysan.device import reference as ref_mod
from dysan.protocol.schema import WindowFlag
from test_device_support import (
    FIRMWARE,
    QEMU_APP,
    TEST_IDENTITY,
    assert_same_windows,
    build_firmware,
    cached_random_bundle,
    calibration_forest,
    subject_stream,
)

needs_qemu = pytest.mark.skipif(not qemu_available(), reason="qemu-system-arm is not installed")

SECONDS = 60


@pytest.fixture(scope="module")
def case(sisfall_windows):
    ds, ws = sisfall_windows
    build_firmware("build/qemu-m4/dysan.elf")
    bundle = cached_random_bundle(ws.x[::97], "sisfall36", n_models=36, distinct=2, n_classes=len(ws.classes))
    subject = ws.subjects[int(ws.subject[0])]
    mine = np.flatnonzero(ws.subject == ws.subject[0])
    rf_table = calibration_forest(ws.x[mine], ws.activity[mine], len(ws.classes), seed=3)
    samples = subject_stream(ds, subject, SECONDS * 50)
    assert len(samples) == SECONDS * 50, "the subject has too few samples"
    return {"bundle": bundle, "rf": rf_table, "sensitive": int(ws.sensitive[mine[0]]), "samples": samples,
            "subject": subject}


def test_sample_ring_counts_every_loss_and_marks_the_gap() -> None:
    build_firmware("build/host/tests/test_sampler")
    r = subprocess.run([str(FIRMWARE / "build" / "host" / "tests" / "test_sampler")], capture_output=True, text=True,
                       timeout=60, check=False)
    assert r.returncode == 0 and r.stdout.startswith("ok "), r.stdout + r.stderr


@pytest.mark.qemu
@pytest.mark.sisfall
@needs_qemu
def test_default_schedule_keeps_up_in_real_time_and_matches_the_reference(case) -> None:
    bundle = case["bundle"]
    assert bundle.schedule.candidates < bundle.n_models  # the default schedule rotates candidates
    run = realtime.run(QEMU_APP, bundle, case["rf"], case["sensitive"], case["samples"], identity=TEST_IDENTITY)
    c = run.counters
    print(f"\nreal time, {SECONDS} s of {case['subject']} at 62.5 MHz: {run.summary()}")
    assert c["samples_acquired"] == len(case["samples"])
    assert c["samples_missed"] == c["windows_late"] == c["windows_with_gaps"] == 0
    assert c["rx_overflows"] == 0 and c["windows_dropped"] == 0
    assert 0 < c["backlog_max"] < 62  # the pipeline never fell a hop behind
    want = ref_mod.ReferencePipeline(bundle, case["rf"], case["sensitive"]).run(case["samples"], replayed=False)
    assert_same_windows(run.windows, want, f"real-time QEMU, SisFall subject {case['subject']}")
    assert {w.flags for w in run.windows} == {int(WindowFlag.RF_LABEL_VALID)}
    assert c["stage_windows"] == len(want) and c["candidates_scored"] == len(want) * bundle.schedule.candidates
    assert 0.01 < run.duty_64mhz <= 0.05, run.summary()


@pytest.mark.qemu
@pytest.mark.sisfall
@needs_qemu
def test_a_too_heavy_configuration_is_caught_by_the_counters(case) -> None:
    bundle = case["bundle"]
    h = bundle.header
    every = ref_mod.Schedule(h["segment"], bundle.n_models, h["score_x_q15"], h["score_y_q15"])
    n = len(case["samples"]) // 2
    run = realtime.run(QEMU_APP, bundle, case["rf"], case["sensitive"], case["samples"][:n], schedule=every,
                       shift=7, identity=TEST_IDENTITY)  # 36 candidates per window on a 7.8 MHz core
    c = run.counters
    print(f"\ntoo heavy: {run.summary()}")
    assert c["samples_acquired"] + c["samples_missed"] == n  # every sample is accounted for
    assert c["samples_missed"] > 0 and c["windows_late"] > 0 and c["windows_with_gaps"] > 0
    assert c["backlog_max"] >= 250  # the ring (256 samples) filled up
    gaps = [w for w in run.windows if w.flags & WindowFlag.SAMPLES_MISSED]
    late = [w for w in run.windows if w.flags & WindowFlag.LATE]
    assert len(gaps) == c["windows_with_gaps"] and len(late) == c["windows_late"]
    assert len(run.windows) == c["stage_windows"] < ref_mod.windows_of(case["samples"][:n]).shape[0]
