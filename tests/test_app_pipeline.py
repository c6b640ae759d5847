"""The firmware's per-window pipeline (firmware/core/src/dysan_pipeline.c + dysan_window.c), run in-process
through the ctypes shim, against the Python reference pipeline (dysan.device.reference): same windows, same
RF labels, same chosen models, the same int8 bytes -- on several schedules, stream lengths that end
mid-window and mid-segment, and with or without the final flush.

Also the claim of dysan_pipeline.h about the outputs it keeps while scoring: on the last window of a segment
the winner's output, when it was a candidate there, is always reused (never recomputed).
"""

from __future__ import annotations

import numpy as np
import pytest

from dysan import selection
from dysan.device import reference as ref_mod
from dysan.testing.core_shim import CoreShim, build
from test_device_support import subject_stream, synthetic, synthetic_bundle, synthetic_rf  # noqa: F401

SCHEDULES = [ref_mod.Schedule(5, 2, 6554, 26214), ref_mod.Schedule(1, 1, 6554, 26214),
             ref_mod.Schedule(4, 4, 32768, 0), ref_mod.Schedule(8, 3, 0, 32768), ref_mod.Schedule(3, 9, 16384, 16384)]


@pytest.fixture(scope="module")
def core() -> CoreShim:
    return CoreShim(build())


@pytest.mark.parametrize("sched", SCHEDULES, ids=lambda s: f"p{s.segment}-k{s.candidates}-x{s.x_q15}")
def test_c_pipeline_equals_reference(core, synthetic, synthetic_bundle, synthetic_rf, sched) -> None:  # noqa: F811
    ds, _ = synthetic
    b = synthetic_bundle
    for subject, n in ((ds.recordings[0].subject, 125 + 62 * 41 + 30), (ds.recordings[-1].subject, 124),
                       (ds.recordings[-1].subject, 125 + 62 * 17)):
        samples = subject_stream(ds, subject, n)
        for sensitive in (0, 1):
            pipe = ref_mod.ReferencePipeline(b, synthetic_rf, sensitive, sched)
            for flush in (True, False):
                want = pipe.run(samples, flush=flush)
                got, stats = core.pipeline(b.image, synthetic_rf, sensitive, sched.segment, sched.candidates,
                                           sched.x_q15, sched.y_q15, samples, flush=flush)
                assert len(got) == len(want), (subject, n, flush)
                for (model, label, data), w in zip(got, want, strict=True):
                    assert (model, label) == (w.model_id, w.rf_label), f"window {w.seq}"
                    assert data == w.data, f"window {w.seq} (model {model}): bytes differ"
                assert stats["candidates_scored"] == pipe.stats["candidates_scored"]
                assert stats["emitted"] == len(want)


def test_last_window_outputs_are_always_reused(core, synthetic, synthetic_bundle, synthetic_rf) -> None:  # noqa: F811
    ds, _ = synthetic
    b = synthetic_bundle
    sched = ref_mod.Schedule(5, 2, 6554, 26214)
    samples = subject_stream(ds, ds.recordings[3].subject, 125 + 62 * 99)  # 100 windows, 20 segments
    pipe = ref_mod.ReferencePipeline(b, synthetic_rf, 1, sched)
    want = pipe.run(samples)
    n = len(want)
    evaluated = selection.schedule_mask(n, b.n_models, sched.candidates)
    chosen = np.array([w.model_id for w in want])
    last = np.arange(sched.segment - 1, n, sched.segment)
    must_reuse = int(evaluated[last, chosen[last]].sum())
    assert must_reuse > 0
    _, stats = core.pipeline(b.image, synthetic_rf, 1, sched.segment, sched.candidates, sched.x_q15, sched.y_q15,
                             samples)
    assert must_reuse <= stats["reused"] <= pipe.stats["reused"]
    assert stats["sanitizer_runs"] + stats["reused"] == n
