"""The firmware application as a native host process (firmware/build/host/dysan), driven over TCP by the host
session client (dysan.device.session) -- the same C as the QEMU image, fast enough to test every behaviour:

* replay mode: every sanitized window of a synthetic recording equals the Python reference pipeline
  (dysan.device.reference) byte for byte, with its seq, model id, RF label and flags, on several schedules;
* uploads of the bundle and the RF (signed BEGIN / COMMIT, resume after a broken link), fail-closed without
  them, persistence of everything across a restart, detection of an interrupted upload;
* calibration: raw windows only between a signed CALIB_START and CALIB_STOP (or max_windows), INFO reports it;
* refused commands: unsigned, wrongly signed or replayed mode changes and uploads change nothing -- the
  sanitized output stays byte-identical;
* retransmission: RESEND/ACK, the oldest unacknowledged window dropped and counted when the queue is full,
  nothing lost while the host does not read.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from dysan.device import HostDevice
from dysan.device import reference as ref_mod
from dysan.device.session import DeviceError, Session
from dysan.protocol import PROTOCOL_VERSION, Signer, encode, make
from dysan.protocol.schema import ErrorCode, Mode, XferState
from test_device_support import (  # noqa: F401 (fixtures)
    HOST_APP,
    TEST_IDENTITY,
    assert_same_windows,
    build_firmware,
    subject_stream,
    synthetic,
    synthetic_bundle,
    synthetic_rf,
)

RETX_SLOTS = 16  # DYSAN_RETX_SLOTS
SCHED = ref_mod.Schedule(segment=5, candidates=2, x_q15=6554, y_q15=26214)


@pytest.fixture(scope="module", autouse=True)
def _built() -> None:
    build_firmware("host")


@contextmanager
def device(regions: Path | None = None) -> Iterator[Session]:
    with HostDevice(HOST_APP, provision=TEST_IDENTITY, regions=regions) as dev:
        s = Session(dev.serial, TEST_IDENTITY)
        s.hello()
        yield s


def ready(s: Session, bundle, rf_table: bytes, sensitive: int = 1, sched: ref_mod.Schedule = SCHED) -> None:
    s.upload_bundle(bundle.image, version=7)
    s.upload_rf(rf_table, version=3)
    s.set_sensitive(sensitive)
    s.configure(sched.segment, sched.candidates, sched.x_q15, sched.y_q15)
    s.hello()


@pytest.fixture(scope="module")
def stream(synthetic) -> np.ndarray:  # noqa: F811
    ds, _ = synthetic
    return subject_stream(ds, ds.recordings[0].subject, 125 + 62 * 59 + 40)  # 60 windows


def content(windows) -> list[tuple]:
    """What must not change when a refused command is sent: everything but the sequence number."""
    return [(w.model_id, w.rf_label, w.flags, w.data) for w in windows]


# ---- (c) replay == reference ------------------------------------------------------------------------------------


@pytest.mark.parametrize("sched", [SCHED, ref_mod.Schedule(3, 4, 16384, 16384), ref_mod.Schedule(8, 1, 0, 32768)],
                         ids=["p5-k2", "p3-all", "p8-k1"])
def test_replay_equals_reference(synthetic, synthetic_bundle, synthetic_rf, sched) -> None:  # noqa: F811
    ds, _ = synthetic
    samples = subject_stream(ds, ds.recordings[-1].subject, 125 + 62 * 199 + 17)  # 200 windows
    pipe = ref_mod.ReferencePipeline(synthetic_bundle, synthetic_rf, 0, sched)
    want = pipe.run(samples)
    assert len({w.model_id for w in want}) > 1, "the test needs a stream on which the selection changes model"
    with device() as s:
        ready(s, synthetic_bundle, synthetic_rf, sensitive=0, sched=sched)
        got = s.replay(samples)
        assert_same_windows(got, want, f"host build, schedule {sched}")
        st = s.stats()
    assert st.stage_windows == pipe.stats["windows"] == len(want)
    assert st.candidates_scored == pipe.stats["candidates_scored"]
    # the device keeps fewer scoring outputs than the reference (one per window), so it may run S more often
    assert pipe.stats["sanitizer_runs"] <= st.sanitizer_runs <= len(want)
    assert st.windows_sent == st.windows_acked == len(want) and st.windows_dropped == 0


def test_default_schedule_comes_from_the_bundle(synthetic_bundle, synthetic_rf, stream) -> None:  # noqa: F811
    want = ref_mod.ReferencePipeline(synthetic_bundle, synthetic_rf, 1).run(stream)
    with device() as s:
        s.upload_bundle(synthetic_bundle.image)
        s.upload_rf(synthetic_rf)
        s.set_sensitive(1)
        info = s.hello()
        h = synthetic_bundle.header
        assert (info.segment_len, info.candidates, info.weight_x, info.weight_y) == (
            h["segment"], h["candidates"], h["score_x_q15"], h["score_y_q15"])
        assert_same_windows(s.replay(stream), want, "bundle's default schedule")


# ---- uploads, fail closed, persistence ------------------------------------------------------------------------


def test_fail_closed_without_bundle_rf_or_sensitive(synthetic_bundle, synthetic_rf, stream) -> None:  # noqa: F811
    with device() as s:
        info = s.hello()
        assert (info.bundle_valid, info.rf_loaded, info.sensitive_set) == (0, 0, 0)
        for step in ("bundle", "rf"):  # a two-valued attribute: no sensitive value is needed (or ever sent)
            s.set_mode(Mode.REPLAY)
            s.push_samples(stream[:125 + 62 * 12], expect_output=False)
            s.set_mode(Mode.IDLE)
            s.ping()
            assert not s.windows, f"sanitized windows before the {step} was there"
            assert any(level == 2 and "no sanitized output" in text for level, text in s.logs)
            s.logs.clear()
            if step == "bundle":
                s.upload_bundle(synthetic_bundle.image)
            else:
                s.upload_rf(synthetic_rf)
        assert len(s.replay(stream)) == Session.windows_in(len(stream))
        assert s.hello().sensitive_set == 0
        assert not any("no sanitized output" in text for _, text in s.logs)


def test_upload_resumes_and_checks_the_hash(synthetic_bundle, stream) -> None:  # noqa: F811
    image = synthetic_bundle.image
    sha = hashlib.sha256(image).digest()
    with device() as s:
        seq = s.send(make("BUNDLE_BEGIN", total_size=len(image), sha256=sha, version=9), signed=True)
        st = s.reply(["XFER_STATUS"], seq)
        for off in range(0, 5 * 1024, 1024):  # part of it, then the "link breaks"
            st = s.reply(["XFER_STATUS"], s.send(make("BUNDLE_CHUNK", offset=off, data=image[off:off + 1024])))
        assert st.next_offset == 5 * 1024 and st.state == XferState.RECEIVING
        # a chunk at the wrong offset is ignored and answered with where to continue
        st = s.reply(["XFER_STATUS"], s.send(make("BUNDLE_CHUNK", offset=9 * 1024, data=image[:64])))
        assert st.next_offset == 5 * 1024
        # COMMIT before the end: refused
        with pytest.raises(DeviceError) as e:
            s.reply(["XFER_STATUS"], s.send(make("BUNDLE_COMMIT", sha256=sha), signed=True))
        assert e.value.code == ErrorCode.XFER_STATE
        chunks = []
        st = s.upload_bundle(image, version=9, progress=lambda done, total: chunks.append(done))
        assert st.state == XferState.COMMITTED and chunks[0] == 6 * 1024, "did not resume at 5 KB"
        info = s.hello()
        assert info.bundle_valid and info.bundle_version == 9 and info.bundle_hash == sha[:8]
        assert info.model_count == 4
        # a corrupted chunk: the region does not hash to BEGIN's SHA-256 -> FAILED, fail closed, LOG says why
        bad = bytearray(image)
        seq = s.send(make("BUNDLE_BEGIN", total_size=len(image), sha256=hashlib.sha256(b"x").digest(),
                          version=10), signed=True)
        s.reply(["XFER_STATUS"], seq)
        for off in range(0, len(bad), 1024):
            s.reply(["XFER_STATUS"], s.send(make("BUNDLE_CHUNK", offset=off, data=bytes(bad[off:off + 1024]))))
        st = s.reply(["XFER_STATUS"], s.send(make("BUNDLE_COMMIT", sha256=hashlib.sha256(b"x").digest()),
                                             signed=True))
        assert st.state == XferState.FAILED
        s.poll(0.2)
        assert any("does not hash" in text for _, text in s.logs)
        assert s.hello().bundle_valid == 0


def test_a_refused_bundle_is_not_activated(synthetic_bundle) -> None:  # noqa: F811
    """A bundle that hashes right but is malformed (here: P reads another quantization than S writes) is
    refused at COMMIT with the loader's reason."""
    import struct

    from test_app_bundle import put, tensor_field_offset

    image = synthetic_bundle.image
    off = tensor_field_offset(image, 2, "D", "input", "zero_point")
    bad = put(image, off, "i", struct.unpack_from("<i", image, off)[0] + 1)
    with device() as s:
        with pytest.raises(Exception, match=r"not activated.*quantization mismatch \(model 2 D\)"):
            s.upload_bundle(bad)
        assert s.hello().bundle_valid == 0


def test_state_persists_across_restart(tmp_path, synthetic_bundle, synthetic_rf, stream) -> None:  # noqa: F811
    regions = tmp_path / "regions.bin"
    with device(regions) as s:
        ready(s, synthetic_bundle, synthetic_rf, sensitive=1)
        first = s.replay(stream)
        before = s.hello()
        # a signed command recorded now must be refused after the restart (the counter is in flash)
        recorded = s.signer.sign(0x11, encode(make("SET_MODE", mode=int(Mode.IDLE))), 77)
    with device(regions) as s:
        info = s.hello()
        for f in ("bundle_valid", "bundle_hash", "bundle_version", "model_count", "rf_loaded", "sensitive_set",
                  "auth_counter", "segment_len", "candidates", "weight_x", "weight_y"):
            assert getattr(info, f) == getattr(before, f), f
        assert info.sensitive_value == 0xFF, "the sensitive value is disclosed only to a signed HELLO"
        assert s.hello(signed=True).sensitive_value == 1
        s.send_frame(recorded)
        with pytest.raises(DeviceError) as e:
            s.reply(["CMD_OK"], recorded.seq)
        assert e.value.code == ErrorCode.REPLAY
        assert content(s.replay(stream)) == content(first)


def test_interrupted_upload_is_detected_after_restart(tmp_path, synthetic_bundle, synthetic_rf) -> None:  # noqa: F811
    regions = tmp_path / "regions.bin"
    image = synthetic_bundle.image
    with device(regions) as s:
        ready(s, synthetic_bundle, synthetic_rf)
        other = bytearray(image)
        other[-1] ^= 0xFF  # another image (its last model's padding differs)
        seq = s.send(make("BUNDLE_BEGIN", total_size=len(other), sha256=hashlib.sha256(other).digest(),
                          version=2), signed=True)
        s.reply(["XFER_STATUS"], seq)
        for off in range(0, len(other) - 1024, 1024):  # all but the last chunk
            s.reply(["XFER_STATUS"], s.send(make("BUNDLE_CHUNK", offset=off, data=bytes(other[off:off + 1024]))))
    with device(regions) as s:
        assert s.hello().bundle_valid == 0
        assert any(level >= 2 and "bundle" in text for level, text in s.logs), list(s.logs)
        s.upload_bundle(image, version=7)
        assert s.hello().bundle_valid == 1


def test_state_logs_compact_without_losing_anything(tmp_path) -> None:
    """300 signed commands: the counter log (256 records) and the settings log (42) both wrap and compact."""
    regions = tmp_path / "regions.bin"
    with device(regions) as s:
        for i in range(300):
            s.set_sensitive(i % 2)
        last = s.hello().auth_counter
        assert last == 300
    with device(regions) as s:
        info = s.hello(signed=True)
        assert info.auth_counter == 301 and info.sensitive_set == 1 and info.sensitive_value == 1


# ---- (e) calibration --------------------------------------------------------------------------------------------


def test_raw_windows_only_inside_a_calibration_session(stream) -> None:
    wins = ref_mod.windows_of(stream)
    with device() as s:
        s.set_mode(Mode.REPLAY)
        s.push_samples(stream[:125 + 62 * 6], expect_output=False)
        s.ping()
        assert not s.raw_windows, "raw windows outside a calibration session"
        # unsigned CALIB_START: refused, still no raw window
        with pytest.raises(DeviceError) as e:
            s.command(make("CALIB_START", max_windows=100), signed=False)
        assert e.value.code == ErrorCode.AUTH_REQUIRED
        s.push_samples(stream[:125 + 62 * 3], expect_output=False)
        s.ping()
        assert not s.raw_windows
        # a session of at most 5 windows, opened in REPLAY mode (samples come from SAMPLES)
        s.calib_start(5)
        info = s.hello()
        assert info.mode == Mode.CALIBRATION and info.calib_active == 1
        s.push_samples(stream[:125 + 62 * 9])
        s.wait_windows(5)
        s.ping()
        assert [int(w.seq) for w in s.raw_windows] == list(range(5))
        for w, want in zip(s.raw_windows, wins, strict=False):
            np.testing.assert_array_equal(np.asarray(w.samples, np.int16).reshape(125, 6), want)
        info = s.hello()
        assert info.calib_active == 0 and info.mode == Mode.IDLE
        assert any("max_windows" in text for _, text in s.logs)
        # closed: more samples give nothing
        s.push_samples(stream[:125 + 62 * 4], expect_output=False)
        s.ping()
        assert len(s.raw_windows) == 5
        # CALIB_STOP closes a session early
        s.set_mode(Mode.REPLAY)
        s.calib_start(1000)
        s.push_samples(stream[:125 + 62 * 2])
        s.wait_windows(3)
        s.calib_stop()
        assert s.hello().calib_active == 0
        s.push_samples(stream[:125 + 62 * 5], expect_output=False)
        s.ping()
        assert len(s.raw_windows) == 8
        st = s.stats()
        assert st.raw_windows_sent == 8 and st.windows_sent == 0
        with pytest.raises(DeviceError) as e:
            s.set_mode(Mode.CALIBRATION)
        assert e.value.code == ErrorCode.WRONG_MODE


# ---- (f) refused commands change nothing ------------------------------------------------------------------------


def test_unsigned_wrongly_signed_and_replayed_commands_change_nothing(synthetic_bundle, synthetic_rf,  # noqa: F811
                                                                      stream) -> None:
    other_image = bytearray(synthetic_bundle.image)
    other_image[200] ^= 0x01
    other_image = bytes(other_image)
    forger = Signer(bytes(32), TEST_IDENTITY.device_id, counter=10_000)  # the wrong key
    with device() as s:
        ready(s, synthetic_bundle, synthetic_rf)
        baseline = content(s.replay(stream))
        info0 = s.hello()
        recorded_begin = s.signer.sign(0x30, encode(make("BUNDLE_BEGIN", total_size=len(other_image),
                                                         sha256=hashlib.sha256(other_image).digest(),
                                                         version=1)), 500)
        recorded_mode = s.signer.sign(0x11, encode(make("SET_MODE", mode=int(Mode.IDLE))), 501)
        s.send_frame(recorded_mode)
        s.reply(["CMD_OK"], 501)  # accepted once...
        attacks = []
        sha = hashlib.sha256(other_image).digest()
        for name, fields in (("SET_MODE", {"mode": int(Mode.STREAMING)}), ("SET_SENSITIVE", {"value": 0}),
                             ("CONFIGURE", {"segment_len": 1, "candidates": 1, "weight_x": 0, "weight_y": 0,
                                            "stream_enable": 0}),
                             ("BUNDLE_BEGIN", {"total_size": len(other_image), "sha256": sha, "version": 1}),
                             ("BUNDLE_COMMIT", {"sha256": sha}),
                             ("RF_BEGIN", {"total_size": 64, "sha256": sha, "version": 1}),
                             ("CALIB_START", {"max_windows": 3})):
            msg = make(name, **fields)
            attacks.append((f"unsigned {name}", s.send(msg), ErrorCode.AUTH_REQUIRED))
            frame = forger.sign(msg.ID, encode(msg), 600 + len(attacks))
            attacks.append((f"wrongly signed {name}", s.send_frame(frame), ErrorCode.AUTH_FAILED))
        attacks.append(("replayed SET_MODE", s.send_frame(recorded_mode), ErrorCode.REPLAY))
        # a BEGIN recorded before a later command: its counter is now stale
        attacks.append(("replayed BUNDLE_BEGIN", s.send_frame(recorded_begin), ErrorCode.REPLAY))
        for what, seq, code in attacks:
            with pytest.raises(DeviceError) as e:
                s.reply(["CMD_OK", "XFER_STATUS"], seq)
            assert e.value.code == code, what
        # an unauthenticated chunk with no transfer in progress: nothing is written (the last upload stands)
        st = s.reply(["XFER_STATUS"], s.send(make("BUNDLE_CHUNK", offset=0, data=other_image[:1024])))
        assert st.state == XferState.COMMITTED and st.next_offset == st.total_size == len(synthetic_bundle.image)
        info1 = s.hello()
        for f in ("mode", "bundle_valid", "bundle_hash", "bundle_version", "rf_loaded", "sensitive_set",
                  "segment_len", "candidates", "weight_x", "weight_y", "stream_enabled", "calib_active"):
            assert getattr(info1, f) == getattr(info0, f), f
        assert content(s.replay(stream)) == baseline, "the sanitized output changed"
        st = s.stats()
        assert st.auth_failures == 14 and st.replays_refused == 2


# ---- (g) retransmission -------------------------------------------------------------------------------------


def test_resend_ack_and_drop_oldest_unacknowledged(synthetic_bundle, synthetic_rf, stream) -> None:  # noqa: F811
    n = 30
    samples = stream[:125 + 62 * (n - 1)]
    with device() as s:
        ready(s, synthetic_bundle, synthetic_rf)
        s.auto_ack = False
        s.auto_resend = False
        got = s.replay(samples)
        assert [w.seq for w in got] == list(range(1, n + 1))
        st = s.stats()
        assert st.windows_dropped == n - RETX_SLOTS and st.windows_acked == 0
        s.windows.clear()
        s.resend(1)
        s.ping()
        again = s.received()
        assert [w.seq for w in again] == list(range(n - RETX_SLOTS + 1, n + 1))
        assert content(again) == content(got[n - RETX_SLOTS:])
        assert s.retransmitted == RETX_SLOTS
        s.ack(20)
        s.windows.clear()
        s.resend(0)
        s.ping()
        assert [w.seq for w in s.received()] == list(range(21, n + 1))
        st = s.stats()
        assert st.windows_acked == 20 - (n - RETX_SLOTS) and st.windows_retransmitted == RETX_SLOTS + 10
        # acknowledged windows are never what gets dropped: acknowledge everything, then overflow again
        s.ack(n)
        s.auto_ack = True
        s.replay(samples[:125 + 62 * 9])
        assert s.stats().windows_dropped == n - RETX_SLOTS


def test_nothing_is_lost_while_the_host_does_not_read(synthetic_bundle, synthetic_rf, stream) -> None:  # noqa: F811
    want = content(ref_mod.ReferencePipeline(synthetic_bundle, synthetic_rf, 1, SCHED).run(stream))
    with device() as s:
        ready(s, synthetic_bundle, synthetic_rf)
        s.set_mode(Mode.REPLAY)
        for start in range(0, len(stream), 62):  # push everything without reading a byte
            s.send(make("SAMPLES", samples=tuple(int(v) for v in stream[start:start + 62].reshape(-1))))
        s.send(make("SET_MODE", mode=int(Mode.IDLE)), signed=True)
        time.sleep(1.0)
        s.wait_windows(len(want))
        got = s.received()
        assert content(got) == want
        assert not s.lost
        # Meanwhile the device's retransmission queue overflowed (nobody acknowledged): the oldest windows
        # left it -- they had been sent and the host has them -- and every window was either acknowledged
        # from the queue or dropped from it, never both, never neither.
        st = s.stats()
        assert st.windows_dropped + st.windows_acked == st.windows_sent == len(want)
        assert st.windows_dropped > 0 and st.windows_retransmitted == 0


def test_gap_triggers_resend(synthetic_bundle, synthetic_rf, stream) -> None:  # noqa: F811
    """A window missing on the host side (dropped here by hand) is asked for again and recovered."""
    with device() as s:
        ready(s, synthetic_bundle, synthetic_rf)
        s.auto_ack = False
        got = s.replay(stream[:125 + 62 * 11])
        assert len(got) == 12
        del s.windows[4]
        s._next_seq = 4  # as if window 4 never arrived
        s.auto_ack = True
        deadline = time.monotonic() + 5
        while 4 not in s.windows and time.monotonic() < deadline:
            s.poll(0.1)
        assert 4 in s.windows and s.windows[4].data == got[3].data and not s.lost
        assert s.stats().windows_acked == 12


# ---- robustness: garbage on the link, the application under ASan + UBSan ---------------------------------------


def _garbage_frames(rng: np.random.Generator, n: int) -> list[bytes]:
    """Random bytes, and well-framed (valid CRC) frames of every message id with random payloads."""
    from dysan.protocol import Frame
    from dysan.protocol.schema import BY_ID

    out = [bytes(rng.integers(0, 256, size=int(rng.integers(1, 3000)), dtype=np.uint8)) for _ in range(n // 4)]
    ids = sorted(BY_ID)
    for _ in range(n):
        msg_id = int(rng.choice(ids)) if rng.random() < 0.9 else int(rng.integers(0, 256))
        payload = bytes(rng.integers(0, 256, size=int(rng.integers(0, 1504)), dtype=np.uint8))
        if rng.random() < 0.5 and msg_id in BY_ID:
            payload = payload[: BY_ID[msg_id].fixed_size + int(rng.integers(0, 3))]
        out.append(Frame(msg_id, payload, int(rng.integers(0, 65536))).encode())
    return out


def _survives_garbage(s: Session, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for chunk in _garbage_frames(rng, 200):
        s.write(chunk)
        s.poll(0.0)
    s.ping()
    info = s.hello()
    assert info.proto_version == PROTOCOL_VERSION


def test_garbage_on_the_link_is_survived(synthetic_bundle, synthetic_rf, stream) -> None:  # noqa: F811
    with device() as s:
        ready(s, synthetic_bundle, synthetic_rf)
        before = content(s.replay(stream))
        _survives_garbage(s, 11)
        st = s.stats()
        assert st.crc_errors + st.cobs_errors + st.length_errors + st.msg_errors > 50
        s.windows.clear()
        assert content(s.replay(stream)) == before


def test_application_under_asan(tmp_path, synthetic_bundle, synthetic_rf, stream) -> None:  # noqa: F811
    """The whole application built with -fsanitize=address,undefined: uploads (a good and a malformed
    bundle), a replay equal to the reference, calibration, garbage frames -- no sanitizer report."""
    build_firmware("SAN=1", "host")
    san = HOST_APP.parents[1] / "host-san" / "dysan"
    want = ref_mod.ReferencePipeline(synthetic_bundle, synthetic_rf, 1, SCHED).run(stream)
    with HostDevice(san, provision=TEST_IDENTITY, regions=tmp_path / "regions.bin") as dev:
        s = Session(dev.serial, TEST_IDENTITY, timeout=20.0)
        s.hello()
        bad = bytearray(synthetic_bundle.image)
        bad[140:148] = b"\xff" * 8  # model 0's P offset and size: outside the bundle
        with pytest.raises(Exception, match="not activated"):
            s.upload_bundle(bytes(bad))
        ready(s, synthetic_bundle, synthetic_rf)
        assert_same_windows(s.replay(stream), want, "host build under ASan")
        s.set_mode(Mode.REPLAY)
        s.calib_start(3)
        s.push_samples(stream[:125 + 62 * 3])
        s.wait_windows(3)
        _survives_garbage(s, 12)
        err = dev.stderr_text()
    assert "ERROR: AddressSanitizer" not in err and "runtime error" not in err, err[-3000:]


class _LossyLink:
    """A pyserial-like link that loses the n-th written frame (a CHUNK swallowed by a noisy radio)."""

    def __init__(self, inner, lose: int) -> None:
        self.inner, self.lose, self.writes = inner, lose, 0

    def write(self, data: bytes) -> None:
        self.writes += 1
        if self.writes != self.lose:
            self.inner.write(data)

    def read(self, n: int) -> bytes:
        self.inner.timeout = self.timeout
        return self.inner.read(n)


@pytest.mark.parametrize("lose", [3, 10, 41], ids=["first", "8th", "last"])
def test_upload_survives_a_lost_chunk(synthetic_bundle, lose: int) -> None:  # noqa: F811
    assert (len(synthetic_bundle.image) + 1023) // 1024 == 39  # writes: HELLO, BEGIN, 39 chunks, COMMIT
    with HostDevice(HOST_APP, provision=TEST_IDENTITY) as dev:
        link = _LossyLink(dev.serial, lose=lose)
        s = Session(link, TEST_IDENTITY, timeout=1.0)
        s.hello()
        s.upload_bundle(synthetic_bundle.image, version=4)
        info = s.hello()
        assert info.bundle_valid and info.bundle_hash == hashlib.sha256(synthetic_bundle.image).digest()[:8]
