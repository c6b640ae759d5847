"""A protocol session with one wearable (or its emulator) over any byte link.

:class:`Session` is the host side of docs/protocol.md, for the CLI verbs (calibrate, stream, monitor,
flash) and the tests. One thread drives it: every call sends what it must and then reads the link until
its reply arrives, handling whatever else comes in meanwhile (sanitized and raw windows, LOG lines, errors).

What it takes care of:

* **Identity and counters.** Signed commands are signed with the owner's key for the device id INFO
  reports, with counters above the device's last accepted one (:meth:`Session.hello` syncs the signer; a
  REPLAY refusal re-syncs and retries once, e.g. after another host used the device). The device's counter
  is believed only from an INFO whose tag verifies over the HELLO's fresh nonce: anything nearby can answer
  on a radio link, and an unauthenticated counter pushed towards 2^32 would exhaust the host's counters (and
  the device's, once relayed). CMD_OK's counter is never used to move the signer.
* **Replies.** CMD_OK / ERROR are matched to the command by frame sequence number; an ERROR raises
  :class:`DeviceError` with the device's code and text. INFO, STATS, PONG and XFER_STATUS answer in order.
* **Sanitized windows.** Kept by sequence number (:attr:`Session.windows`), acknowledged cumulatively as
  they arrive (so the device frees its retransmission queue), a gap in the sequence triggers RESEND, and a
  window the device no longer holds is recorded in :attr:`Session.lost` after one retry.
* **Replay flow control.** SAMPLES frames are pushed no more than ``max_ahead`` windows ahead of what the
  device has returned. QEMU's emulated UART takes about 20 KB/s from the host and a board's UART has no
  hardware flow control, so pushing a whole recording at once would only queue it in socket buffers (or
  overrun a 4 KB receive ring on a board); a window budget keeps the link busy without that.
* **Uploads.** BEGIN (signed, binds size and SHA-256) -> CHUNKs from the offset the device reports ->
  COMMIT (signed). Calling the upload again after a broken link resumes where the device stopped.

Links: a :class:`dysan.transport.Transport` (serial, socket, BLE) or a pyserial object such as the one
:func:`dysan.device.open_socket_link` returns, or ``QemuDevice.serial`` / ``HostDevice.serial``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from .. import contract
from ..errors import DysanError
from ..protocol import Frame, FrameDecoder, Signer, compute_tag, decode, encode, make
from ..protocol.errors import ProtocolError
from ..protocol.schema import BY_NAME, CHUNK_MAX, PROTOCOL_VERSION, SAMPLES_MAX, ErrorCode, Mode, XferState, XferTarget
from ..transport.base import Transport
from .provision import Identity

DEFAULT_TIMEOUT = 5.0
"""Seconds a reply may take. Generous: a COMMIT hashes up to 676 KB of flash; QEMU may share a busy host."""
DEVICE_RETX_SLOTS = 16
"""Sanitized windows the firmware keeps for retransmission (DYSAN_RETX_SLOTS). Replay never pushes more windows
than this beyond the last acknowledged one, so flow control alone can never make the device drop a window."""
XFER_STATUS_ID = 0x36
UPLOAD_WINDOW = 3
"""CHUNK frames in flight during an upload: about 3 KB, under the 4 KB receive ring of the QEMU and board
ports, and enough to keep the emulated UART busy (stop-and-wait would halve the throughput)."""
RESEND_RETRY = 1.0
"""Seconds to wait for a RESEND's windows before the missing ones are declared lost."""

FLAG_RETRANSMIT = 1
FLAG_RF_LABEL_VALID = 2
FLAG_REPLAYED = 4


class DeviceError(DysanError):
    """The device refused a command (an ERROR frame): nothing the command asked for was applied."""

    def __init__(self, code: int, text: str, ref_msg: int = 0) -> None:
        try:
            name = ErrorCode(code).name
        except ValueError:
            name = f"code {code}"
        super().__init__(f"device refused 0x{ref_msg:02x}: {name}" + (f" ({text})" if text else ""))
        self.code = code
        self.text = text
        self.ref_msg = ref_msg


@dataclass(frozen=True)
class Window:
    """A sanitized window as received: ``data`` is the int8 window (WINDOW x N_CHANNELS, sample-major)."""

    seq: int
    model_id: int
    rf_label: int
    flags: int
    data: bytes

    def array(self) -> np.ndarray:
        return np.frombuffer(self.data, dtype=np.int8).reshape(contract.WINDOW, contract.N_CHANNELS)


class _Link:
    """read(timeout) / write over a Transport or a pyserial object."""

    def __init__(self, link: object) -> None:
        self.link = link

    def read(self, timeout: float) -> bytes:
        link = self.link
        if isinstance(link, Transport):
            return link.read(4096, timeout=max(0.0, timeout))
        link.timeout = max(0.0, timeout)  # type: ignore[attr-defined]
        first = link.read(1)  # type: ignore[attr-defined]
        if not first:
            return b""
        link.timeout = 0  # type: ignore[attr-defined]
        return first + link.read(4096)  # type: ignore[attr-defined]

    def write(self, data: bytes) -> None:
        self.link.write(data)  # type: ignore[attr-defined]


INFO_TAG_LEN = 16


class ProtocolMismatch(DysanError):
    """The device speaks another PROTOCOL_VERSION: its frames cannot be trusted to mean what this host reads."""

    def __init__(self, device_version: int) -> None:
        super().__init__(f"the device speaks protocol version {device_version}, this host {PROTOCOL_VERSION}: flash "
                         "the firmware built from the same tree as this host (dysan flash, or make -C firmware)")
        self.device_version = device_version


class InfoNotAuthentic(DysanError):
    """INFO's tag did not verify with the session's key: a spoofed device, or the wrong key file."""


def info_authentic(identity: Identity, nonce: int, info) -> bool:
    """True when INFO's tag is HMAC(key, device_id || INFO id || nonce || payload before the tag)[:16]: the
    device holding ``identity``'s key answered *this* HELLO (docs/protocol.md, HELLO / INFO)."""
    payload = encode(info)
    want = compute_tag(identity.key, identity.device_id, info.ID, nonce, payload[:-INFO_TAG_LEN])
    return hmac.compare_digest(want, bytes(info.tag))


class Session:
    """The host side of the protocol with one device (see the module doc).

    ``identity``: the device's key and id (needed for signed commands; INFO's device id must match it).
    ``on_log``: called with (level, text) for every LOG line (they are also kept in :attr:`logs`).
    """

    def __init__(self, link: object, identity: Identity | None = None, *, timeout: float = DEFAULT_TIMEOUT,
                 on_log: Callable[[int, str], None] | None = None) -> None:
        self._link = _Link(link)
        self.identity = identity
        self.timeout = timeout
        self.on_log = on_log
        self.signer: Signer | None = None
        self.info = None
        self._decoder = FrameDecoder()
        self._seq = 0
        self._replies: deque[Frame] = deque()
        #: sanitized windows received, by sequence number
        self.windows: dict[int, Window] = {}
        #: RAW_WINDOW messages of calibration sessions, in arrival order
        self.raw_windows: list = []
        #: LOG lines (level, text), most recent last
        self.logs: deque[tuple[int, str]] = deque(maxlen=1000)
        #: ERROR frames that answered no pending command (e.g. a refused frame the host did not wait on)
        self.errors: deque = deque(maxlen=100)
        #: sequence numbers the device no longer had when asked to resend them
        self.lost: set[int] = set()
        #: acknowledge sanitized windows as they arrive (tests switch it off to exercise retransmission)
        self.auto_ack = True
        #: ask for missing sequence numbers with RESEND
        self.auto_resend = True
        self.retransmitted = 0
        self._next_seq: int | None = None  # lowest sequence number not yet received contiguously
        self._max_seq = 0
        self._acked = 0
        self._resend_at: float | None = None
        self._resend_from = 0
        self._pushed_samples = 0
        self._new_windows = 0  # windows (sanitized or raw) completed in the current stream

    # -- low level ------------------------------------------------------------------------------------------

    @property
    def link_errors(self) -> dict[str, int]:
        """The host side's frame error counters (CRC, COBS, length...): what the decoder refused so far."""
        return dict(self._decoder.stats)

    def send(self, msg, *, signed: bool = False) -> int:
        """Sends one message (signed with the next counter when ``signed``); returns its frame seq."""
        self._seq = (self._seq + 1) & 0xFFFF
        payload = encode(msg)
        if signed:
            if self.signer is None:
                raise DysanError("signed command without an identity (pass identity= and call hello() first)")
            frame = self.signer.sign(msg.ID, payload, self._seq)
        else:
            frame = Frame(msg.ID, payload, self._seq)
        self._link.write(frame.encode())
        return self._seq

    def poll(self, timeout: float = 0.0) -> int:
        """Reads and handles whatever arrives within ``timeout`` seconds; returns the frames handled."""
        data = self._link.read(timeout)
        frames = self._decoder.feed(data) if data else []
        for f in frames:
            self._handle(f)
        self._after_receive()
        return len(frames)

    def _handle(self, f: Frame) -> None:
        try:
            msg = decode(f.msg_id, f.payload)
        except ProtocolError as exc:
            if f.msg_id == BY_NAME["INFO"].id and len(f.payload) >= 2:
                version = int.from_bytes(f.payload[:2], "little")  # INFO starts with proto_version in every version
                if version != PROTOCOL_VERSION:
                    raise ProtocolMismatch(version) from None
            self.logs.append((3, f"undecodable frame 0x{f.msg_id:02x} from the device: {exc}"))
            return
        name = msg.NAME
        if name == "SANITIZED_WINDOW":
            self._on_window(msg)
        elif name == "RAW_WINDOW":
            self.raw_windows.append(msg)
            self._new_windows += 1
        elif name == "LOG":
            self.logs.append((int(msg.level), msg.text))
            if self.on_log is not None:
                self.on_log(int(msg.level), msg.text)
        else:
            self._replies.append(f)
            while len(self._replies) > 64:  # replies nobody waits for (e.g. to frames sent without waiting)
                old = self._replies.popleft()
                if old.msg_id == 0x08:
                    self.errors.append(decode(old.msg_id, old.payload))

    def _on_window(self, msg) -> None:
        w = Window(msg.seq, msg.model_id, msg.rf_label, msg.flags & ~FLAG_RETRANSMIT,
                   np.asarray(msg.data, dtype=np.int8).tobytes())
        if msg.flags & FLAG_RETRANSMIT:
            self.retransmitted += 1
        if w.seq in self.windows:
            return
        self.windows[w.seq] = w
        self._max_seq = max(self._max_seq, w.seq)
        if not msg.flags & FLAG_RETRANSMIT:
            self._new_windows += 1
        if self._next_seq is None:
            self._next_seq = w.seq  # the first window this session sees starts its sequence
        if w.seq < self._next_seq:
            self.lost.discard(w.seq)

    def _after_receive(self) -> None:
        """Advances the contiguous sequence, acknowledges it, and chases gaps with RESEND."""
        if self._next_seq is None:
            return
        while self._next_seq in self.windows:
            self._next_seq += 1
        now = time.monotonic()
        if self.auto_resend and self._max_seq > self._next_seq:
            if self._resend_at is None or self._resend_from != self._next_seq:
                self._resend_from, self._resend_at = self._next_seq, now
                self.send(make("RESEND", from_seq=self._next_seq))
            elif now - self._resend_at > RESEND_RETRY:
                # The device no longer holds it (dropped from a full retransmission queue): move on.
                self.lost.add(self._next_seq)
                self._next_seq += 1
                self._resend_at = None
                self._after_receive()
                return
        else:
            self._resend_at = None
        if self.auto_ack and self._next_seq - 1 > self._acked:
            self.ack(self._next_seq - 1)

    def write(self, data: bytes) -> None:
        """Writes raw bytes to the link (diagnostics, robustness tests)."""
        self._link.write(bytes(data))

    def send_frame(self, frame: Frame) -> int:
        """Sends a frame as it is (e.g. one recorded earlier, to check that the device refuses a replay)."""
        self._link.write(frame.encode())
        return frame.seq

    def reply(self, names: Iterable[str], ref_seq: int | None, timeout: float | None = None):
        """Waits for the next reply among message ``names`` (CMD_OK and ERROR are matched on the command's
        frame ``ref_seq``); an ERROR raises :class:`DeviceError`. Everything else that arrives meanwhile is
        handled as usual."""
        wanted = set(names)
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            for i, f in enumerate(self._replies):
                msg = decode(f.msg_id, f.payload)
                if msg.NAME == "ERROR" and (ref_seq is None or msg.ref_seq == ref_seq):
                    del self._replies[i]
                    raise DeviceError(int(msg.code), msg.text, msg.ref_msg)
                if msg.NAME in wanted and (msg.NAME != "CMD_OK" or ref_seq is None or msg.ref_seq == ref_seq):
                    del self._replies[i]
                    return msg
            left = deadline - time.monotonic()
            if left <= 0:
                raise DysanError(f"no {'/'.join(sorted(wanted))} from the device within "
                                 f"{self.timeout if timeout is None else timeout:.1f} s")
            self.poll(min(left, 0.2))

    # -- session --------------------------------------------------------------------------------------------

    def hello(self, *, signed: bool = False):
        """HELLO -> INFO (kept in :attr:`info`); syncs the signer to the device's counter. ``signed``: an
        authenticated HELLO, the only way INFO discloses the stated sensitive value."""
        nonce = secrets.randbits(32)
        seq = self.send(make("HELLO", proto_version=PROTOCOL_VERSION, nonce=nonce), signed=signed)
        info = self.reply(["INFO"], seq)
        if int(info.proto_version) != PROTOCOL_VERSION:
            raise ProtocolMismatch(int(info.proto_version))
        self.info = info
        if self.identity is not None:
            if bytes(info.device_id) != self.identity.device_id:
                raise DysanError(f"device id {bytes(info.device_id).hex()} is not the identity's "
                                 f"{self.identity.device_id.hex()} (wrong key file?)")
            if not info_authentic(self.identity, nonce, info):
                raise InfoNotAuthentic("INFO does not verify with this device's key (a spoofed device, or a wrong key "
                                 "file): its auth counter is not used")
            if self.signer is None:
                self.signer = Signer(self.identity.key, self.identity.device_id)
            self.signer.sync(int(info.auth_counter))
        return info

    def ping(self) -> float:
        """Round-trip time of the link in seconds."""
        t0 = time.monotonic()
        nonce = int(t0 * 1000) & 0xFFFFFFFF
        seq = self.send(make("PING", nonce=nonce))
        while True:
            pong = self.reply(["PONG"], seq)
            if pong.nonce == nonce:
                return time.monotonic() - t0

    def stats(self):
        """STATS: link, auth, stream and work counters (see docs/protocol.md)."""
        seq = self.send(make("STATS_REQ"))
        return self.reply(["STATS"], seq)

    # -- signed commands ------------------------------------------------------------------------------------

    def command(self, msg, *, signed: bool = True):
        """Sends a command and waits for CMD_OK (returned); ERROR raises :class:`DeviceError`. A signed
        command refused as a replay re-syncs the counter (HELLO) and is sent once more."""
        try:
            return self._command_once(msg, signed)
        except DeviceError as exc:
            if not signed or exc.code != ErrorCode.REPLAY:
                raise
            self.hello()
            return self._command_once(msg, signed)

    def _command_once(self, msg, signed: bool):
        seq = self.send(msg, signed=signed)
        return self.reply(["CMD_OK"], seq)  # its auth_counter is not authenticated: the signer keeps its own

    def set_mode(self, mode: Mode | int | str):
        """SET_MODE: IDLE, STREAMING or REPLAY (a new stream starts; the old one's last windows are sent)."""
        m = Mode[mode.upper()] if isinstance(mode, str) else Mode(mode)
        ok = self.command(make("SET_MODE", mode=int(m)))
        self._new_stream()
        return ok

    def set_sensitive(self, value: int):
        """SET_SENSITIVE: the user's sensitive attribute (0/1), which the device scores candidates against."""
        ok = self.command(make("SET_SENSITIVE", value=int(value)))
        self._new_stream()
        return ok

    def configure(self, segment: int, candidates: int, x_q15: int, y_q15: int, stream_enable: bool = True):
        """CONFIGURE: the selection schedule (windows per segment, candidates per window, Q15 weights)."""
        ok = self.command(make("CONFIGURE", segment_len=segment, candidates=candidates, weight_x=x_q15,
                                 weight_y=y_q15, stream_enable=int(stream_enable)))
        self._new_stream()
        return ok

    def calib_start(self, max_windows: int):
        """CALIB_START: RAW_WINDOW frames flow (:attr:`raw_windows`) until calib_stop or max_windows."""
        ok = self.command(make("CALIB_START", max_windows=max_windows))
        self._new_stream()
        return ok

    def calib_stop(self):
        return self.command(make("CALIB_STOP"))

    # -- windows --------------------------------------------------------------------------------------------

    def ack(self, seq: int) -> None:
        """Cumulative ACK: the device frees every window with a sequence number <= seq."""
        self.send(make("ACK", seq=seq))
        self._acked = max(self._acked, seq)

    def resend(self, from_seq: int) -> None:
        """Asks for every window the device still holds from ``from_seq`` on (they come back flagged)."""
        self.send(make("RESEND", from_seq=from_seq))

    def received(self, first_seq: int | None = None) -> list[Window]:
        """Sanitized windows received, in sequence order (from ``first_seq`` when given)."""
        return [self.windows[s] for s in sorted(self.windows) if first_seq is None or s >= first_seq]

    def _new_stream(self) -> None:
        self._pushed_samples = 0
        self._new_windows = 0

    @staticmethod
    def windows_in(n_samples: int) -> int:
        """Windows the device completes from the first ``n_samples`` samples of a stream."""
        return 0 if n_samples < contract.WINDOW else 1 + (n_samples - contract.WINDOW) // contract.HOP

    def push_samples(self, samples: np.ndarray, *, max_ahead: int | None = None, expect_output: bool = True,
                     stall_timeout: float = 20.0) -> None:
        """Replays int16 samples ``(n, 6)`` as SAMPLES frames (REPLAY mode, or a calibration opened in it).

        Flow control: at most ``max_ahead`` windows may be pushed beyond those the device has returned
        (sanitized -- and acknowledged at once -- or raw). The default, two segments + 2 but at most
        :data:`DEVICE_RETX_SLOTS`, keeps the device busy while its retransmission queue can never overflow.
        With ``expect_output=False`` (the device is expected to drop the windows, e.g. to check a refused
        command) frames are paced by the link alone.
        """
        s = np.ascontiguousarray(samples, dtype=np.int16).reshape(-1, contract.N_CHANNELS)
        seg = int(getattr(self.info, "segment_len", 0) or 5)
        ahead = max_ahead if max_ahead is not None else min(2 * seg + 2, DEVICE_RETX_SLOTS)
        for start in range(0, len(s), SAMPLES_MAX):
            chunk = s[start : start + SAMPLES_MAX]
            if expect_output:
                waited_from = time.monotonic()
                done = self._new_windows
                while self.windows_in(self._pushed_samples + len(chunk)) - self._new_windows > ahead:
                    self.poll(0.05)
                    if self._new_windows != done:
                        done, waited_from = self._new_windows, time.monotonic()
                    elif time.monotonic() - waited_from > stall_timeout:
                        raise DysanError(f"the device returned no window for {stall_timeout:.0f} s "
                                         f"({self._describe_not_ready()})")
            self.send(make("SAMPLES", samples=tuple(int(v) for v in chunk.reshape(-1))))
            self._pushed_samples += len(chunk)
            self.poll(0.0)

    def wait_windows(self, count: int, timeout: float = 30.0) -> list[Window]:
        """Waits until ``count`` windows of the current stream arrived (sanitized or raw)."""
        deadline = time.monotonic() + timeout
        while self._new_windows < count:
            if time.monotonic() > deadline:
                raise DysanError(f"{self._new_windows} of {count} windows within {timeout:.0f} s "
                                 f"({self._describe_not_ready()})")
            self.poll(0.1)
        return self.received()

    def replay(self, samples: np.ndarray, *, timeout: float = 60.0) -> list[Window]:
        """One recording end to end: REPLAY mode, push its samples, then IDLE so the device sends the last
        (partial) segment too; returns the sanitized windows of this stream in order. The device must be
        ready to sanitize (INFO: bundle_valid, rf_loaded, sensitive_set)."""
        self.set_mode(Mode.REPLAY)
        start = self._max_seq
        self.push_samples(samples)
        self.command(make("SET_MODE", mode=int(Mode.IDLE)))  # ends the stream: flushes the partial segment
        self.wait_windows(self.windows_in(len(np.asarray(samples).reshape(-1, contract.N_CHANNELS))), timeout)
        return self.received(start + 1)

    def _describe_not_ready(self) -> str:
        try:
            info = self.hello()
        except DysanError:
            return "no INFO either"
        missing = [what for what, ok in (("valid bundle", info.bundle_valid), ("RF", info.rf_loaded),
                                         ("sensitive value", info.sensitive_set)) if not ok]
        if missing:
            return "device lacks: " + ", ".join(missing)
        return f"mode {Mode(int(info.mode)).name}"

    # -- uploads ----------------------------------------------------------------------------------------------

    def upload(self, target: XferTarget | str, image: bytes, version: int = 0, *,
               progress: Callable[[int, int], None] | None = None, chunk: int = CHUNK_MAX):
        """Uploads and activates a bundle or an RF table; resumes a transfer the device has in progress with
        the same size and hash. Returns the final XFER_STATUS (COMMITTED); raises DeviceError / DysanError
        with the device's reason otherwise. ``progress(done, total)`` after each chunk."""
        t = XferTarget[target.upper()] if isinstance(target, str) else XferTarget(target)
        prefix = "BUNDLE" if t is XferTarget.BUNDLE else "RF"
        image = bytes(image)
        sha = hashlib.sha256(image).digest()
        seq = self.send(make(f"{prefix}_BEGIN", total_size=len(image), sha256=sha, version=version), signed=True)
        st = self.reply(["XFER_STATUS"], seq)
        chunk = max(1, min(chunk, CHUNK_MAX))
        self._send_chunks(prefix, image, st, chunk, progress)
        self._new_stream()
        logs_before = len(self.logs)
        seq = self.send(make(f"{prefix}_COMMIT", sha256=sha), signed=True)
        st = self.reply(["XFER_STATUS"], seq, timeout=max(self.timeout, 30.0))
        if st.state != XferState.COMMITTED:
            self.poll(0.2)
            why = [text for level, text in list(self.logs)[logs_before:] if level >= 3]
            raise DysanError(f"{prefix.lower()} upload not activated: state {XferState(st.state).name}"
                             + (f" ({why[-1]})" if why else ""))
        return st

    def _send_chunks(self, prefix: str, image: bytes, st, chunk: int,
                     progress: Callable[[int, int], None] | None) -> None:
        """CHUNKs from the device's next offset, UPLOAD_WINDOW of them in flight (each answered in order by
        XFER_STATUS). When an answer shows the device did not take a chunk where expected, the remaining
        answers are drained and sending resumes from the offset the device reports."""
        total = len(image)
        nxt = int(st.next_offset)
        in_flight: deque[int] = deque()  # offset each unanswered chunk ends at
        retries = 0
        while nxt < total or in_flight:
            while len(in_flight) < UPLOAD_WINDOW and nxt < total:
                self.send(make(f"{prefix}_CHUNK", offset=nxt, data=image[nxt : nxt + chunk]))
                nxt = min(total, nxt + chunk)
                in_flight.append(nxt)
            try:
                st = self.reply(["XFER_STATUS"], None)
            except DeviceError:
                raise
            except DysanError:
                # An answer never came (a frame lost on a noisy link): ask where the device stands. A chunk
                # at an impossible offset is ignored and answered with the current status.
                retries += 1
                if retries > 3:
                    raise
                self.poll(0.5)
                self._replies = deque(f for f in self._replies if f.msg_id != XFER_STATUS_ID)
                in_flight.clear()
                st = self.reply(["XFER_STATUS"], self.send(make(f"{prefix}_CHUNK", offset=0xFFFFFFFF, data=b"")))
                nxt = int(st.next_offset)
                continue
            expected = in_flight.popleft()
            if st.state not in (XferState.RECEIVING, XferState.COMPLETE):
                raise DysanError(f"{prefix.lower()} upload: device state {XferState(st.state).name}")
            if progress is not None:
                progress(int(st.next_offset), total)
            if st.next_offset != expected:
                # The rest were sent past a chunk the device did not take: each is ignored and answered with
                # the device's offset (unless it was lost too). Drain them, then go on from that offset.
                while in_flight:
                    in_flight.popleft()
                    try:
                        st = self.reply(["XFER_STATUS"], None, timeout=min(self.timeout, 1.0))
                    except DeviceError:
                        raise
                    except DysanError:
                        break
                nxt = int(st.next_offset)

    def upload_bundle(self, image: bytes, version: int = 0, **kw):
        """Uploads a model bundle image (``bundle.bin``); see :meth:`upload`."""
        return self.upload(XferTarget.BUNDLE, image, version, **kw)

    def upload_rf(self, table: bytes, version: int = 0, **kw):
        """Uploads a calibration RF table (``calibration.rf`` table bytes); see :meth:`upload`."""
        return self.upload(XferTarget.RF, table, version, **kw)
