"""THE device-tools must-show, end to end on the emulated Cortex-M4F and real data:

1. a tiny trained bundle: ``dysan train --data synthetic --grid small --epochs 2`` then ``dysan export``
   (cached under .pytest_cache/dysan-tools, keyed by the sources that shape it: only the first run trains);
2. ``dysan flash --target qemu --bundle ...``: the firmware built with that bundle linked in, a fresh device
   key generated (0600 file), the emulator started detached;
3. ``dysan calibrate`` driven by ONE SisFall subject's replayed samples: a signed calibration session per
   activity, the RF trained on those raw windows, uploaded signed (gender has two values: never stated);
4. ``dysan stream`` replaying more of the subject's data: every sanitized window it writes equals, byte for
   byte (with its model id, RF label and flags), what the Python reference pipeline
   (dysan.device.reference) computes from the bundle, the calibration RF and the same samples;
5. the same device through a link that corrupts windows and drops the connection mid-stream: the stream
   recovers (RESEND, reconnect) and its output is still exactly the reference's.

Skips with the reason when qemu-system-arm or the SisFall archive is absent.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from dysan import jitter
from dysan.cli import main
from dysan.device import qemu_available
from dysan.device import reference as ref_mod
from dysan.testing.faultlink import FaultLink
from dysan.tools import emulator, keystore
from dysan.tools.link import DeviceLink
from dysan.tools.replay import open_replay, samples_for
from dysan.tools.stream import Part, Streamer, StreamOptions, reference_for_parts
from dysan.tools.writers import open_writer, read_windows

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / ".pytest_cache" / "dysan-tools"
SUBJECT = "SA01"
CALIB_SECONDS = 10
STREAM_WINDOWS = 60

pytestmark = [pytest.mark.qemu, pytest.mark.sisfall, pytest.mark.timeout(900),
              pytest.mark.skipif(not qemu_available(), reason="qemu-system-arm is not installed")]


def _key(*paths: str) -> str:
    h = hashlib.sha256()
    for rel in paths:
        p = REPO / rel
        for f in sorted(p.rglob("*.py")) if p.is_dir() else [p]:
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def _dysan(*args: str) -> None:
    cmd = [sys.executable, "-m", "dysan.cli", *args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    assert r.returncode == 0, f"{' '.join(cmd)} failed:\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"


@pytest.fixture(scope="module")
def tiny_bundle() -> Path:
    """`dysan train --data synthetic --grid small --epochs 2` + `dysan export` (cached)."""
    key = _key("host/dysan/train", "host/dysan/nets/device.py", "host/dysan/export", "host/dysan/data/synthetic.py",
               "host/dysan/cli/train.py", "host/dysan/cli/export.py")
    models = CACHE / f"tiny-{key}" / "models"
    if not (models / "manifest.json").is_file():
        work = CACHE / f"tiny-{key}.tmp"
        shutil.rmtree(work, ignore_errors=True)
        _dysan("train", "--data", "synthetic", "--grid", "small", "--epochs", "2", "--out", str(work / "run"))
        _dysan("export", str(work / "run"), "--out", str(work / "models"))
        shutil.rmtree(models.parent, ignore_errors=True)
        work.rename(models.parent)
    return models


@pytest.fixture
def env(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("DYSAN_KEYS", str(tmp_path / "keys"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    yield tmp_path
    emulator.stop()


def test_flash_calibrate_stream_on_qemu_equals_the_reference(env, tiny_bundle, sisfall_spec, capsys) -> None:
    tmp = env
    # -- flash: build with the bundle, provision a new key, boot the emulator ----------------------------------
    fj = tmp / "flash.json"
    assert main(["flash", "--target", "qemu", "--bundle", str(tiny_bundle), "--json", str(fj)]) == 0
    flashed = json.loads(fj.read_text())
    url, key_file = flashed["url"], Path(flashed["key_file"])
    assert flashed["key_created"] and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.parent == tmp / "keys", "the key must live in the key store, outside the repository"
    out = capsys.readouterr()
    assert keystore.load(key_file).key.hex() not in out.out + out.err

    # -- calibrate by replaying one SisFall subject (the key is found in the store by the device id) ----------------
    cj = tmp / "calibrate.json"
    assert main(["calibrate", "--port", url, "--bundle", str(tiny_bundle), "--replay", sisfall_spec,
                 "--subject", SUBJECT, "--seconds-per-activity", str(CALIB_SECONDS), "--yes",
                 "--out", str(tmp / "calibration"), "--json", str(cj)]) == 0
    cal = json.loads(cj.read_text())
    per = 1 + (CALIB_SECONDS * 50 - 125) // 62
    assert cal["windows"] == {a: per for a in json.loads((tiny_bundle / "manifest.json").read_text())["classes"]}
    assert cal["cv_accuracy"] is not None and 0.0 <= cal["cv_accuracy"] <= 1.0
    rf_table = (tmp / "calibration" / "calibration_rf.bin").read_bytes()
    report = json.loads((tmp / "calibration" / "calibration.json").read_text())
    assert report["rf_sha256"] == hashlib.sha256(rf_table).hexdigest()
    # gender has two values: never stated to the device (its score is the same for either value)
    assert report["sensitive_stated"] is False and not any(k.startswith("sensitive_v") for k in report)

    # -- stream: more of the subject's data, int8 windows to Parquet --------------------------------------------------
    sj = tmp / "stream.json"
    target = tmp / "stream.parquet"
    assert main(["stream", "--port", url, "--replay", sisfall_spec, "--subject", SUBJECT, "--windows",
                 str(STREAM_WINDOWS), "--skip-seconds", str(CALIB_SECONDS), "--out", str(target),
                 "--json", str(sj)]) == 0
    st = json.loads(sj.read_text())
    assert st["written"] == STREAM_WINDOWS and st["lost"] == 0

    src = open_replay(sisfall_spec, SUBJECT)
    samples = src.stream_samples(samples_for(STREAM_WINDOWS), chunk_s=10.0, skip_s=CALIB_SECONDS)
    bundle = ref_mod.Bundle(tiny_bundle)
    # dysan train's default objective trains through the on-device jitter: the bundle has the flag, and the
    # reference needs the seed of the boot that streamed (the key and the boot epoch the stream report records)
    assert bundle.jitter is not None
    key = keystore.load(key_file).key
    parts = [Part(**p) for p in st["parts"]]  # the stream report holds what reproduces the bytes
    assert len({p.boot_epoch for p in parts}) == 1 and parts[0].boot_epoch >= 1, st["parts"]
    pipe = ref_mod.ReferencePipeline(bundle, rf_table, src.sensitive("gender"),
                                     jitter_seed=jitter.device_seed(key, parts[0].boot_epoch))
    want = reference_for_parts(pipe, samples, parts, key)
    got = read_windows(target)
    assert len(got) == len(want) == STREAM_WINDOWS
    for g, w in zip(got, want, strict=True):
        assert (g["data"], g["model_id"], g["rf_label"], g["flags"]) == (w.data, w.model_id, w.rf_label, w.flags), \
            f"SisFall {SUBJECT}: window {w.seq} differs from the Python reference"
    assert [g["seq"] for g in got] == list(range(got[0]["seq"], got[0]["seq"] + STREAM_WINDOWS))
    print(f"\nQEMU: {STREAM_WINDOWS} windows of SisFall {SUBJECT} identical to the reference; models used "
          f"{sorted({w.model_id for w in want})}; calibration CV accuracy {cal['cv_accuracy']:.2f}")

    # -- the same device behind a link that corrupts windows and drops the connection -------------------------------
    full = src.stream_samples(samples_for(STREAM_WINDOWS * 2), chunk_s=10.0, skip_s=CALIB_SECONDS)
    later = full[STREAM_WINDOWS * 62:]  # the next STREAM_WINDOWS windows of the same stream
    port = int(url.rsplit(":", 1)[1])
    fired: set[str] = set()
    with FaultLink(port) as fl:
        def chaos(s) -> None:
            if s.written >= 8 and "corrupt" not in fired:
                fired.add("corrupt")
                fl.corrupt(2)
            if s.written >= 20 and "drop" not in fired:
                fired.add("drop")
                fl.drop()

        link = DeviceLink(fl.url, key_file=key_file)
        link.open()
        writer = open_writer(str(tmp / "chaos.csv"))
        try:
            stats = Streamer(link, writer, StreamOptions(samples=later, view_every=0.0), view=chaos).run()
        finally:
            writer.close()
            link.close()
    assert fired == {"corrupt", "drop"} and stats.reconnects >= 1 and stats.resends >= 1
    assert stats.lost == 0 and stats.device_stats["windows_dropped"] == 0
    want2 = reference_for_parts(pipe, later, stats.parts, key)
    got2 = read_windows(tmp / "chaos.csv")
    assert len(got2) == len(want2) == stats.written
    assert [(g["data"], g["model_id"]) for g in got2] == [(w.data, w.model_id) for w in want2]
