"""`dysan stream --port ble:...` end to end without Bluetooth hardware.

The emulated wearable (QEMU, flashed by `dysan flash --target qemu`) is put behind Bumble's virtual NUS
peripheral (dysan.testing.ble_bridge: the firmware's UART bytes become TX notifications, RX writes go to the
UART; the host tools reach it as `--port virtual-ble:NAME`, a scheme tests/conftest.py registers), and every
host step runs over the real BLE transport through a Bumble central on the in-process link: ATT MTU
exchange (capped at 64, so a 770-byte window takes 13 notifications and a 760-byte SAMPLES frame 13 writes),
chunking, reassembly. Over that link: the bundle upload, `dysan calibrate` (replayed synthetic subject) and
`dysan stream`, whose windows must equal the Python reference byte for byte.
"""

from __future__ import annotations

import json

import pytest

from dysan.cli import main
from dysan.device import qemu_available
from dysan.device import reference as ref_mod
from dysan.testing.ble_bridge import UartBleBridge
from dysan.tools import emulator, keystore
from dysan.tools.link import DeviceLink
from dysan.tools.replay import open_replay, samples_for
from dysan.tools.writers import read_windows
from test_device_support import synthetic, synthetic_bundle  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.qemu, pytest.mark.timeout(600),
              pytest.mark.skipif(not qemu_available(), reason="qemu-system-arm is not installed")]

SUBJECT = "SY05"
WINDOWS = 40


def test_stream_over_ble_through_a_virtual_nus_bridge(tmp_path, monkeypatch, synthetic_bundle) -> None:  # noqa: F811
    monkeypatch.setenv("DYSAN_KEYS", str(tmp_path / "keys"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    key = tmp_path / "dev.key"
    fj = tmp_path / "flash.json"
    assert main(["flash", "--target", "qemu", "--key-file", str(key), "--json", str(fj)]) == 0
    url = json.loads(fj.read_text())["url"]
    try:
        with UartBleBridge(url, "DySan-QEMU", max_mtu=64) as bridge:
            spec = bridge.spec + "?mtu=64"
            with DeviceLink(spec, key_file=key, require_key=True, timeout=20.0) as link:
                assert link.transport.mtu == 64
                link.session.upload_bundle(synthetic_bundle.image)
            assert main(["calibrate", "--port", spec, "--key-file", str(key), "--replay", "synthetic",
                         "--subject", SUBJECT, "--seconds-per-activity", "8", "--yes",
                         "--out", str(tmp_path / "cal"), "--session-file", str(tmp_path / "cal.npz")]) == 0
            sj = tmp_path / "stream.json"
            assert main(["stream", "--port", spec, "--key-file", str(key), "--replay", "synthetic",
                         "--subject", SUBJECT, "--windows", str(WINDOWS), "--skip-seconds", "8",
                         "--out", str(tmp_path / "ble.csv"), "--json", str(sj)]) == 0
            writes = list(bridge.peripheral.writes)
            notified = bridge.peripheral.notified_bytes
    finally:
        emulator.stop(keystore.load(key).device_id_hex)
    assert json.loads(sj.read_text())["written"] == WINDOWS
    assert max(writes) == 61 and len(writes) > 1000, "frames were not chunked to the negotiated MTU"
    assert notified > WINDOWS * 770
    src = open_replay("synthetic", SUBJECT)
    samples = src.stream_samples(samples_for(WINDOWS), chunk_s=10.0, skip_s=8.0)
    rf = (tmp_path / "cal" / "calibration_rf.bin").read_bytes()
    want = ref_mod.ReferencePipeline(synthetic_bundle, rf, src.sensitive()).run(samples)
    got = read_windows(tmp_path / "ble.csv")
    assert len(got) == len(want) == WINDOWS
    assert [(g["data"], g["model_id"], g["rf_label"], g["flags"]) for g in got] == [
        (w.data, w.model_id, w.rf_label, w.flags) for w in want]
