"""Reliability of the device link with the native build of the firmware (the same C as the QEMU image):

* garbage, truncated frames, CRC errors, unknown ids, overlong runs and floods in both directions, corrupted
  sanitized windows and a dropped connection, all during one `dysan stream`: both ends resynchronize at the
  next frame, count what they refused (host decoder counters, device STATS), and the output is every window
  of the stream, in order, byte-identical to the Python reference -- nothing lost, nothing duplicated;
* the device process restarting mid-stream (the supervised host build `dysan flash --target host` runs): the
  stream reconnects, every window written before the restart is kept, and the rest of the recording is
  streamed after it;
* `dysan calibrate` over a dropped link reconnects and finishes; interrupted for good, a rerun continues from
  the session file and records only what is missing.

The QEMU image is checked the same way in test_tools_e2e.py (a link drop during the SisFall stream).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from dysan.device import HostDevice
from dysan.device import reference as ref_mod
from dysan.testing.faultlink import FaultLink, garbage_frames
from dysan.tools import emulator, keystore
from dysan.tools.calibrate import Calibration, CalibrationPlan, Hooks
from dysan.tools.link import DeviceLink
from dysan.tools.replay import open_replay, samples_for, windows_in
from dysan.tools.stream import Streamer, StreamOptions, reference_for_parts
from dysan.tools.writers import open_writer, read_windows
from dysan.transport import ReconnectPolicy
from test_device_support import (  # noqa: F401 (fixtures)
    HOST_APP,
    TEST_IDENTITY,
    build_firmware,
    synthetic,
    synthetic_bundle,
    synthetic_rf,
)

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module", autouse=True)
def _built() -> None:
    build_firmware("host")


@pytest.fixture
def key_file(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    return keystore.save(TEST_IDENTITY, tmp_path / "test.key")


@pytest.fixture(scope="module")
def samples() -> np.ndarray:
    return open_replay("synthetic", "SY03").stream_samples(samples_for(150), chunk_s=8.0)


def _ready(link: DeviceLink, bundle, rf: bytes) -> None:
    s = link.session
    s.upload_bundle(bundle.image)
    s.upload_rf(rf)
    s.set_sensitive(1)
    s.hello()


def _stream(url: str, key_file: Path, bundle, rf: bytes, samples: np.ndarray, out: Path, view):
    """Ready the device, stream every sample into ``out`` with ``view`` called on each update; the stats."""
    link = DeviceLink(url, key_file=key_file)
    link.open()
    _ready(link, bundle, rf)
    writer = open_writer(str(out))
    try:
        return Streamer(link, writer, StreamOptions(samples=samples, view_every=0.0), view=view).run()
    finally:
        writer.close()
        link.close()


def _check_output(out: Path, stats, bundle, rf: bytes, samples: np.ndarray) -> None:
    got = read_windows(out)
    want = reference_for_parts(ref_mod.ReferencePipeline(bundle, rf, 1), samples, stats.parts)
    assert stats.lost == 0 and len(got) == len(want) == stats.written
    for g, w in zip(got, want, strict=True):
        assert (g["data"], g["model_id"], g["rf_label"], g["flags"]) == (w.data, w.model_id, w.rf_label, w.flags), \
            f"window boot {g['boot']} seq {g['seq']} differs from the reference"
    by_boot: dict[int, list[int]] = {}
    for g in got:
        by_boot.setdefault(g["boot"], []).append(g["seq"])
    for seqs in by_boot.values():  # in order, no duplicates, no gaps
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))


def test_stream_survives_garbage_corruption_and_a_dropped_link(tmp_path, key_file, synthetic_bundle,  # noqa: F811
                                                               synthetic_rf, samples) -> None:  # noqa: F811
    garbage = garbage_frames(seed=3)
    done: set[str] = set()

    with HostDevice(HOST_APP, provision=TEST_IDENTITY, connect=False) as dev, FaultLink(dev.port) as fl:
        def chaos(st) -> None:  # acts at window counts, from the streamer's own thread
            def once(name: str, at: int, action) -> None:
                if st.written >= at and name not in done:
                    done.add(name)
                    action()

            once("garbage", 10, lambda: [(fl.inject(g), fl.inject_to_host(g)) for _, g in garbage])
            once("corrupt", 25, lambda: fl.corrupt(3))
            once("drop", 45, fl.drop)
            once("more", 80, lambda: (fl.corrupt(2), [fl.inject(g) for _, g in garbage[:3]]))

        out = tmp_path / "stream.csv"
        stats = _stream(fl.url, key_file, synthetic_bundle, synthetic_rf, samples, out, chaos)
        assert done == {"garbage", "corrupt", "drop", "more"}
        assert fl.corrupted >= 4 and fl.drops == 1

    _check_output(out, stats, synthetic_bundle, synthetic_rf, samples)
    assert stats.written == windows_in(len(samples))
    # the host refused the corrupted windows and the garbage on its CRC / COBS / length checks ...
    assert stats.link_errors["crc_errors"] >= 1
    assert sum(stats.link_errors.values()) >= len(garbage) - 1  # 'idle delimiters' is no error
    # ... got them back with RESEND, and the device counted what it refused
    assert stats.resends >= 1 and stats.retransmitted >= 1
    d = stats.device_stats
    assert d["cobs_errors"] + d["crc_errors"] + d["length_errors"] >= 4 and d["msg_errors"] >= 2
    assert d["windows_dropped"] == 0
    # the drop closed the first part (flushed by the still-running device); the next part started after it
    assert stats.reconnects >= 1 and len(stats.parts) >= 2 and stats.parts[0].end == "flushed"
    assert stats.parts[-1].end == "complete"


def test_stream_reconnects_after_the_device_process_restarts(tmp_path, key_file, synthetic_bundle,  # noqa: F811
                                                             synthetic_rf, samples) -> None:  # noqa: F811
    emu = emulator.start("host", HOST_APP, TEST_IDENTITY)
    killed: list[int] = []
    try:
        def kill_at_40(st) -> None:
            if st.written >= 40 and not killed:
                kids = Path(f"/proc/{emu.pid}/task/{emu.pid}/children").read_text().split()
                assert kids, "the supervisor has no device process"
                killed.append(st.written)
                os.kill(int(kids[0]), signal.SIGKILL)  # the device process we started, by its id

        out = tmp_path / "stream.parquet"
        stats = _stream(emu.url, key_file, synthetic_bundle, synthetic_rf, samples, out, kill_at_40)
    finally:
        emulator.stop(TEST_IDENTITY.device_id_hex)
    assert killed and stats.reboots == 1 and stats.reconnects >= 1
    first, last = stats.parts[0], stats.parts[-1]
    assert first.end == "cut" and first.written >= killed[0], "windows written before the restart were lost"
    assert last.boot == first.boot + 1 and last.end == "complete" and last.first_seq == 1
    assert last.offset == first.offset + first.windows * 62, "the stream did not resume after the last window kept"
    _check_output(out, stats, synthetic_bundle, synthetic_rf, samples)
    assert stats.written == windows_in(len(samples))


class _Interrupt(Exception):
    pass


class _Trigger(Hooks):
    """Calls ``action`` once, when activity ``activity`` has ``at`` windows."""

    def __init__(self, activity: str, at: int, action) -> None:
        self.activity, self.at, self.action, self.fired = activity, at, action, False

    def progress(self, label: str, total: int):
        import contextlib

        @contextlib.contextmanager
        def bar():
            def advance(done: int) -> None:
                if label.startswith(self.activity) and done >= self.at and not self.fired:
                    self.fired = True
                    self.action()

            yield advance

        return bar()


def test_calibration_reconnects_and_a_rerun_continues(tmp_path, key_file, synthetic_bundle) -> None:  # noqa: F811
    src = open_replay("synthetic", "SY04")
    plan = CalibrationPlan(src.activities, 12.0, src.sensitive(), countdown=0)
    per = plan.windows_per_activity
    assert per == 8
    state = tmp_path / "calib.npz"
    with HostDevice(HOST_APP, provision=TEST_IDENTITY, connect=False) as dev, FaultLink(dev.port) as fl:
        link = DeviceLink(fl.url, key_file=key_file)
        link.open()
        link.session.upload_bundle(synthetic_bundle.image)
        # 1. the link drops during 'jog': the session reconnects and finishes that activity
        hooks = _Trigger("jog", 3, fl.drop)

        def interrupt() -> None:
            raise _Interrupt

        class Both(_Trigger):  # then the run is interrupted for good during 'stairs'
            def progress(self, label, total):
                return (hooks if label.startswith("jog") else stop).progress(label, total)

        stop = _Trigger("stairs", 4, interrupt)
        with pytest.raises(_Interrupt):
            Calibration(link, plan, replay=src, state_path=state, out_dir=tmp_path, hooks=Both("", 0, None)).run()
        assert hooks.fired and stop.fired and fl.drops == 1
        kept = np.load(state)
        assert kept["w0"].shape[0] == kept["w1"].shape[0] == per and 4 <= kept["w2"].shape[0] < per
        assert "w3" not in kept.files
        missing = per - kept["w2"].shape[0] + per
        link.close()
        # 2. a rerun continues from the session file: only the missing windows are recorded
        link = DeviceLink(fl.url, key_file=key_file)
        s = link.open()
        sent_before = s.stats().raw_windows_sent
        res = Calibration(link, plan, replay=src, state_path=state, out_dir=tmp_path).run()
        sent = link.session.stats().raw_windows_sent - sent_before
        info = link.session.hello(signed=True)
        link.close()
    assert res.resumed and res.windows == dict.fromkeys(src.activities, per)
    assert sent == missing, f"the rerun recorded {sent} windows, {missing} were missing"
    assert info.rf_loaded and info.sensitive_set and info.sensitive_value == plan.sensitive
    assert (tmp_path / "calibration_rf.bin").read_bytes() == res.rf_table
    assert res.state_path.name == "calib.done.npz" and not state.exists()


def test_stream_gives_up_in_one_line_when_the_device_is_gone(tmp_path, key_file, synthetic_bundle,  # noqa: F811
                                                             synthetic_rf, samples) -> None:  # noqa: F811
    from dysan.errors import DysanError

    with HostDevice(HOST_APP, provision=TEST_IDENTITY, connect=False) as dev:
        # the transport's own reconnect attempts, then the streamer's, are bounded
        link = DeviceLink(dev.url, key_file=key_file, policy=ReconnectPolicy(max_attempts=3, initial_delay=0.1))
        link.open()
        _ready(link, synthetic_bundle, synthetic_rf)
        writer = open_writer(str(tmp_path / "o.csv"))

        def kill(st) -> None:
            if st.written >= 10 and dev.alive():
                dev.proc.kill()

        t0 = time.monotonic()
        with pytest.raises(DysanError, match="not back within 2 s"):
            Streamer(link, writer, StreamOptions(samples=samples, view_every=0.0, reconnect_timeout=2.0),
                     view=kill).run()
        writer.close()
        link.close()
    assert time.monotonic() - t0 < 15
    assert len(read_windows(tmp_path / "o.csv")) >= 10, "windows written before the loss must stay in the output"
