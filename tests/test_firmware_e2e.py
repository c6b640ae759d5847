"""THE end-to-end check: the Cortex-M4F firmware in QEMU sanitizes a held-out SisFall subject's samples, sent
over its serial socket in replay mode, and every sanitized window it returns equals, byte for byte (with its
sequence number, model id, RF label and flags), what the Python reference pipeline computes from the host's
own definitions: the same preprocessing, the int8 models run by TFLM, the same selection schedule.

The bundle is a small grid trained on SisFall (``dysan train --grid small --epochs 2 --protocol new-users``)
and exported by ``dysan.export.exporter``; where the exporter is missing, random-weight models of the same
shapes stand in (the check is about the firmware computing what the host computes, whatever the weights).
Both are cached under .pytest_cache/dysan-device, keyed by the sources that shape them, so only the first run
pays for the training (~1-2 min). The subject is one of the new-users fold-0 test subjects (never seen in
training); their own windows calibrate the RF, as a user's calibration session would, and their gender is
the stated sensitive value. The schedule is the bundle's default (no CONFIGURE). ``dysan train``'s default
objective trains through the on-device jitter, so the trained bundle has the jitter flag and the reference
applies it with this boot's seed (the test key and INFO's boot epoch).

The same QEMU session then checks that refused commands change nothing and that calibration sends raw
windows only inside a session (the host-build tests cover these in depth).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dysan import jitter
from dysan.data import make_split
from dysan.device import QemuDevice, qemu_available
from dysan.device import reference as ref_mod
from dysan.device.session import DeviceError, Session
from dysan.protocol import Signer, encode, make
from dysan.protocol.schema import ErrorCode, Mode
from test_device_support import (
    CACHE,
    QEMU_APP,
    REPO,
    TEST_IDENTITY,
    assert_same_windows,
    build_firmware,
    cached_random_bundle,
    calibration_forest,
    subject_stream,
)

pytestmark = [pytest.mark.qemu, pytest.mark.sisfall,
              pytest.mark.skipif(not qemu_available(), reason="qemu-system-arm is not installed")]

N_WINDOWS = 300


def _key(paths: list[str], *extra: object) -> str:
    h = hashlib.sha256()
    for rel in paths:
        p = REPO / rel
        for f in sorted(p.rglob("*.py")) if p.is_dir() else [p]:
            h.update(f.read_bytes())
    h.update(json.dumps([str(e) for e in extra]).encode())
    return h.hexdigest()[:16]


def trained_export(spec: str) -> Path | None:
    """A small SisFall grid, trained and exported (cached); None when the exporter does not exist."""
    if importlib.util.find_spec("dysan.export.exporter") is None:
        return None
    from dysan.export.exporter import export_run

    train_src = ["host/dysan/train", "host/dysan/nets/device.py", "host/dysan/data/splits.py"]
    run_dir = CACHE / f"sisfall-run-{_key(train_src, spec)}"
    if not (run_dir / "summary.json").is_file():
        shutil.rmtree(run_dir, ignore_errors=True)
        cmd = [sys.executable, "-m", "dysan.cli", "train", "--data", spec, "--grid", "small", "--epochs", "2",
               "--protocol", "new-users", "--workers", "1", "--out", str(run_dir)]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
        assert r.returncode == 0, f"{' '.join(cmd)} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    export_src = ["host/dysan/export", *train_src]
    out = CACHE / f"sisfall-export-{_key(export_src, run_dir.name)}"
    if not (out / "manifest.json").is_file():
        tmp = out.with_name(out.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        export_run(run_dir, tmp)
        shutil.rmtree(out, ignore_errors=True)
        tmp.rename(out)
    return out


@pytest.fixture(scope="module")
def case(sisfall_spec, sisfall_windows):
    ds, ws = sisfall_windows
    split = make_split(ws, "new-users", fold=0, n_folds=5, seed=0)
    held_out = sorted({ws.subjects[i] for i in np.unique(ws.subject[split.test])})
    subject = held_out[0]
    sid = ws.subjects.index(subject)
    mine = np.flatnonzero(ws.subject == sid)
    exported = trained_export(sisfall_spec)
    if exported is not None:
        bundle = ref_mod.Bundle(exported)
        source = "trained"
    else:
        bundle = cached_random_bundle(ws.x[split.train][::20], "sisfall4", n_models=4, n_classes=len(ws.classes))
        source = "random"
    rf_table = calibration_forest(ws.x[mine], ws.activity[mine], len(ws.classes), seed=3)
    sensitive = int(ws.sensitive[mine[0]])
    samples = subject_stream(ds, subject, 125 + 62 * (N_WINDOWS - 1) + 31)
    assert Session.windows_in(len(samples)) == N_WINDOWS, "the held-out subject has too few samples"
    return {"bundle": bundle, "rf": rf_table, "sensitive": sensitive, "samples": samples, "subject": subject,
            "source": source, "train_subjects": {ws.subjects[i] for i in np.unique(ws.subject[split.train])}}


@pytest.fixture(scope="module")
def qemu():
    build_firmware("qemu")
    with QemuDevice(QEMU_APP, provision=TEST_IDENTITY) as dev:
        s = Session(dev.serial, TEST_IDENTITY, timeout=30.0)
        s.hello()
        banner = [text for _, text in s.logs if text.startswith("dysan fw")]
        assert banner and "int8 kernels: DSP (SMLAD)" in banner[0], list(s.logs)  # -mcpu=cortex-m4: DSP path
        yield s


def test_qemu_sanitizes_a_held_out_sisfall_subject_like_the_reference(case, qemu: Session) -> None:
    s = qemu
    assert case["subject"] not in case["train_subjects"]
    bundle = case["bundle"]
    s.upload_bundle(bundle.image, version=1)
    s.upload_rf(case["rf"], version=1)
    s.set_sensitive(case["sensitive"])
    info = s.hello()
    assert info.bundle_valid and info.rf_loaded and info.model_count == bundle.n_models
    assert info.bundle_hash == hashlib.sha256(bundle.image).digest()[:8]
    # the bundle's default schedule; dysan train's default objective makes a jitter bundle: the reference
    # needs this boot's seed (the test key and INFO's boot epoch)
    seed = jitter.device_seed(TEST_IDENTITY.key, int(info.boot_epoch)) if bundle.jitter is not None else None
    pipe = ref_mod.ReferencePipeline(bundle, case["rf"], case["sensitive"], jitter_seed=seed)
    want = pipe.run(case["samples"])
    got = s.replay(case["samples"], timeout=600)
    assert_same_windows(got, want, f"QEMU Cortex-M4F, SisFall subject {case['subject']} ({case['source']} bundle)")
    assert len(got) == N_WINDOWS
    st = s.stats()
    assert st.stage_windows == N_WINDOWS and st.candidates_scored == pipe.stats["candidates_scored"]
    assert st.windows_dropped == 0 and st.crc_errors == st.cobs_errors == st.length_errors == 0
    # under -icount shift=0 the work counters are instructions: each stage did run, and sanitizing a window
    # (S of the device family) stays within the 1 M instruction budget
    assert min(st.work_preprocess, st.work_rf, st.work_score, st.work_sanitize) > 0
    assert st.sanitizer_runs > 0 and st.work_sanitize / st.sanitizer_runs < 1_000_000
    print(f"\nQEMU: {len(got)} windows of {case['subject']} equal to the reference ({case['source']} bundle, "
          f"models used {sorted({w.model_id for w in got})})")


def test_qemu_refuses_unsigned_forged_and_replayed_commands(case, qemu: Session) -> None:
    s = qemu
    before = s.hello()
    recorded = s.signer.sign(0x11, encode(make("SET_MODE", mode=int(Mode.REPLAY))), 901)
    s.send_frame(recorded)
    s.reply(["CMD_OK"], 901)
    s.set_mode(Mode.IDLE)
    forger = Signer(bytes(32), TEST_IDENTITY.device_id, counter=50_000)
    begin = make("BUNDLE_BEGIN", total_size=1024, sha256=bytes(32), version=5)
    for seq, code in ((s.send(make("SET_MODE", mode=int(Mode.STREAMING))), ErrorCode.AUTH_REQUIRED),
                      (s.send(begin), ErrorCode.AUTH_REQUIRED),
                      (s.send_frame(forger.sign(begin.ID, encode(begin), 902)), ErrorCode.AUTH_FAILED),
                      (s.send_frame(recorded), ErrorCode.REPLAY)):
        with pytest.raises(DeviceError) as e:
            s.reply(["CMD_OK", "XFER_STATUS"], seq)
        assert e.value.code == code
    after = s.hello()
    assert (after.mode, after.bundle_valid, after.bundle_hash, after.rf_loaded) == (
        Mode.IDLE, before.bundle_valid, before.bundle_hash, before.rf_loaded)


def test_qemu_calibration_sends_raw_windows_only_in_a_session(case, qemu: Session) -> None:
    s = qemu
    samples = case["samples"][: 125 + 62 * 5]
    s.set_mode(Mode.REPLAY)
    s.calib_start(4)
    assert s.hello().calib_active == 1
    s.push_samples(samples)
    s.wait_windows(4)
    s.ping()
    raw = [np.asarray(w.samples, np.int16).reshape(125, 6) for w in s.raw_windows]
    assert len(raw) == 4
    for got, want in zip(raw, ref_mod.windows_of(samples), strict=False):
        np.testing.assert_array_equal(got, want)
    info = s.hello()
    assert info.calib_active == 0 and info.mode == Mode.IDLE
    s.set_mode(Mode.IDLE)
    assert s.stats().raw_windows_sent == 4
