"""Shared machinery of the firmware application tests (test_app_*.py, test_device_*.py, test_firmware_e2e.py),
plus checks of the pieces it provides (random bundles, the reference pipeline's own invariants).

Bundles of random device-family models take ~1 s per converted model, so they are cached on disk under
pytest's cache directory, keyed by everything that shapes them (the generator's and the networks' source,
the parameters, the data); a stale key simply builds a new one. Other modules import the helpers by name
(pytest puts tests/ on sys.path), as they do with test_nn_support.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from dysan.calibration import rf
from dysan.device import random_bundle, reference, stream_replay
from dysan.device.provision import Identity

REPO = Path(__file__).resolve().parents[1]
FIRMWARE = REPO / "firmware"
HOST_APP = FIRMWARE / "build" / "host" / "dysan"
QEMU_APP = FIRMWARE / "build" / "qemu-m4" / "dysan.elf"
CACHE = REPO / ".pytest_cache" / "dysan-device"

# A fixed test identity (never a real key): the HMAC test key of docs/protocol.md.
TEST_IDENTITY = Identity(device_id=bytes.fromhex("d15a0000c0ffee01"), key=bytes(range(0x40, 0x60)))


def build_firmware(*targets: str) -> None:
    r = subprocess.run(["make", "-C", str(FIRMWARE), "-j2", *targets], capture_output=True, text=True,
                       timeout=600, check=False)
    if r.returncode != 0:
        pytest.fail(f"make -C firmware {' '.join(targets)} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")


def _source_key(*parts: object) -> str:
    h = hashlib.sha256()
    for mod in ("host/dysan/device/random_bundle.py", "host/dysan/nets/device.py", "host/dysan/export/quantize.py",
                "host/dysan/export/model_image.py", "host/dysan/export/bundle_format.py"):
        h.update((REPO / mod).read_bytes())
    h.update(json.dumps([str(p) for p in parts]).encode())
    return h.hexdigest()[:16]


def cached_random_bundle(windows: np.ndarray, tag: str, **kw: object) -> reference.Bundle:
    """A random-weights bundle directory (built once, then reused from the cache)."""
    w = np.asarray(windows, dtype=np.int16)
    key = _source_key(tag, sorted(kw.items()), hashlib.sha256(w.tobytes()).hexdigest())
    out = CACHE / f"bundle-{tag}-{key}"
    if not (out / "manifest.json").is_file():
        tmp = out.with_name(out.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        random_bundle.build(tmp, w, **kw)  # type: ignore[arg-type]
        shutil.rmtree(out, ignore_errors=True)
        tmp.rename(out)
    return reference.Bundle(out)


def calibration_forest(windows: np.ndarray, labels: np.ndarray, n_classes: int, seed: int = 0) -> bytes:
    """An RF table small enough for the RF region (16 KB), from a few calibration windows per class."""
    rng = np.random.default_rng(seed)
    pick = np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:40] for c in range(n_classes)])
    with np.errstate(**np.geterr()):  # rf.train imports emlearn, which sets numpy.seterr(all="raise") for good
        forest = rf.train(windows[pick], labels[pick], n_classes, seed=seed, n_trees=10)
    assert len(forest.table) <= 16 * 1024
    return forest.table


def subject_stream(ds, subject: str, max_samples: int | None = None) -> np.ndarray:
    """One subject's recordings back to back, as the int16 counts an IMU would deliver."""
    return stream_replay.subject_samples(ds, subject, max_samples=max_samples)


def assert_same_windows(got: list, want: list[reference.SentWindow], what: str) -> None:
    """Every window equal byte for byte, with its seq, model id, RF label and flags."""
    assert len(got) == len(want), f"{what}: {len(got)} windows, reference {len(want)}"
    for g, w in zip(got, want, strict=True):
        if (g.seq, g.model_id, g.rf_label, g.flags) != (w.seq, w.model_id, w.rf_label, w.flags):
            raise AssertionError(f"{what}: window seq {w.seq}: device (seq {g.seq}, model {g.model_id}, label "
                                 f"{g.rf_label}, flags {g.flags}), reference (model {w.model_id}, label "
                                 f"{w.rf_label}, flags {w.flags})")
        if g.data != w.data:
            diff = int(np.count_nonzero(np.frombuffer(g.data, np.int8) != np.frombuffer(w.data, np.int8)))
            raise AssertionError(f"{what}: window seq {w.seq} (model {w.model_id}): {diff} of "
                                 f"{len(w.data)} bytes differ")


@pytest.fixture(scope="session")
def synthetic():
    from dysan.data import prepare

    return prepare("synthetic")


@pytest.fixture(scope="session")
def synthetic_bundle(synthetic) -> reference.Bundle:
    _, ws = synthetic
    return cached_random_bundle(ws.x[::3], "synthetic4", n_models=4, n_classes=len(ws.classes), seed=1)


@pytest.fixture(scope="session")
def synthetic_rf(synthetic) -> bytes:
    _, ws = synthetic
    return calibration_forest(ws.x, ws.activity, len(ws.classes), seed=1)


# ---- checks of the helpers themselves ------------------------------------------------------------------------


def test_random_bundle_layout_and_verification(synthetic_bundle):
    """The directory reads like an export; each .tflite compiles to its image in bundle.bin (and a swapped
    file is caught, so the reference cannot run other models than the firmware)."""
    b = synthetic_bundle
    assert b.n_models == 4 and b.header["n_classes"] == b.n_classes == 4
    assert b.header["input_zp"] == random_bundle.INPUT_QUANT[1]
    from dysan.export import quantize

    for files in b.tflite:
        s_out = quantize.io_quant(files["S"])["output"]
        for key in "PD":
            p_in = quantize.io_quant(files[key])["input"]
            assert p_in[1] == s_out[1] and np.isclose(p_in[0], s_out[0], rtol=1e-6)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(b.directory, tmp, dirs_exist_ok=True)
        p0, p1 = (Path(tmp) / b.manifest["models"][i]["files"]["P"]["path"] for i in (0, 1))
        assert p0.read_bytes() != p1.read_bytes()
        p0.write_bytes(p1.read_bytes())
        with pytest.raises(Exception, match="is not the P image of model 0"):
            reference.Bundle(tmp)


def test_reference_windows_and_schedule(synthetic, synthetic_bundle, synthetic_rf):
    """Windows start every HOP samples; only scheduled candidates run; seqs are consecutive."""
    ds, _ = synthetic
    samples = subject_stream(ds, ds.recordings[0].subject, 125 + 62 * 12 + 61)
    wins = reference.windows_of(samples)
    assert len(wins) == 13
    np.testing.assert_array_equal(wins[3], samples[186:311])
    sched = reference.Schedule(segment=4, candidates=2, x_q15=6554, y_q15=26214)
    pipe = reference.ReferencePipeline(synthetic_bundle, synthetic_rf, 1, sched)
    sent = pipe.run(samples, first_seq=10)
    assert [w.seq for w in sent] == list(range(10, 23))
    assert pipe.stats["candidates_scored"] == 13 * 2
    assert {w.model_id for w in sent[:4]} == {sent[0].model_id}  # one model per segment
    assert len(pipe.run(samples, flush=False)) == 12
