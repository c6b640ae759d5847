"""``dysan stream``: sanitized windows from the wearable to a file, acknowledged once written, across link
drops and device restarts.

Windows carry consecutive sequence numbers per boot. The streamer writes them strictly in order: a gap (a
window lost or corrupted on the link -- the host's decoder refuses it on its CRC) is chased with RESEND
(the device keeps every unacknowledged window, up to 16, for that), and only after the writer has flushed a
window to disk (:mod:`.writers`) does the cumulative ACK release it on the device. So a window is either in
the output or still on the device: an acknowledged window is never lost. A window the device no longer holds
after three RESENDs is counted as lost (the device counts it in STATS.windows_dropped too).

Replay (``samples`` given: the emulator, or a benchmark) pushes SAMPLES frames with flow control: at most
``max_ahead`` windows beyond those written, so the device's retransmission queue cannot overflow while the
host writes. The stream is cut into *parts*: a part is one device stream (SET_MODE REPLAY ... SET_MODE IDLE)
fed a contiguous run of the samples. When the link breaks, the samples in flight may not all have arrived, so
the current part is closed and a new one starts right after the last window of the old part the host has:

* device still running (link drop): SET_MODE IDLE makes it send the old part's last (partial) segment,
  RESEND fetches whatever the drop swallowed, and the next part starts after those windows;
* device restarted (its uptime went back, or it has sent fewer windows than we hold): what it had not sent
  is gone with its RAM (never acknowledged, so never lost by our definition); the next part starts after the
  windows written, in a new *boot*.

Each part is a fresh stream on the device, so its windows equal the Python reference run on that part's
samples (:class:`dysan.device.reference.ReferencePipeline`); :attr:`StreamStats.parts` records where each
part starts so a test can check that byte for byte. Live mode (no samples: a board's IMU) just keeps the
device STREAMING and re-enters that mode after a restart.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

from .. import contract
from ..device.session import DeviceError, Session
from ..errors import DysanError
from ..protocol import make
from ..protocol.schema import SAMPLES_MAX, Mode
from ..transport import TransportError
from .link import DeviceLink
from .replay import windows_in
from .writers import Writer

RESEND_TRIES = 3


@dataclass
class StreamOptions:
    samples: np.ndarray | None = None
    """int16 counts ``(n, 6)`` to replay (REPLAY mode); None: the device's own IMU (STREAMING mode)."""
    windows: int | None = None
    """Stop after this many windows (replay: push just enough samples for them)."""
    max_ahead: int = 12
    """Replay flow control: windows pushed beyond those written (< the device's 16 retransmission slots; at
    least one selection segment + 1, since the device sends a segment's windows together)."""
    resend_retry: float = 1.0
    """Seconds before a missing window is asked for again."""
    reconnect_timeout: float = 30.0
    """Seconds to get the link back after it broke before giving up."""
    stall_timeout: float = 60.0
    """Seconds without any new window (while some are expected) before giving up."""
    stats_every: float = 5.0
    """Seconds between STATS requests for the live view (device-side error counters)."""
    seconds: float | None = None
    """Live mode: stop after this many seconds."""
    view_every: float = 0.25
    """Seconds between calls of the view (a terminal refresh; tests use 0 to act at exact window counts)."""


@dataclass
class Part:
    boot: int
    part: int
    offset: int
    """First sample of the part in the replayed samples (0 in live mode)."""
    first_seq: int
    boot_epoch: int = 0
    """INFO's boot epoch of the device while the part streamed: with the device's key it gives the jitter
    seed a jitter bundle's windows were sent with (:func:`dysan.jitter.device_seed`)."""
    windows: int = 0
    """Windows of the part accounted for (written + lost)."""
    written: int = 0
    lost: int = 0
    end: str = "open"
    """How it ended: ``complete`` (all its samples' windows), ``flushed`` (link drop, device alive), ``cut``
    (device restarted), ``stopped`` (live mode, the user stopped)."""


@dataclass
class StreamStats:
    written: int = 0
    lost: int = 0
    resends: int = 0
    retransmitted: int = 0
    reconnects: int = 0
    reboots: int = 0
    link_errors: dict[str, int] = field(default_factory=dict)
    device_errors: int = 0
    device_stats: dict[str, int] = field(default_factory=dict)
    models: Counter = field(default_factory=Counter)
    last_model: int | None = None
    device_id: str = ""
    started: float = field(default_factory=time.monotonic)
    elapsed: float = 0.0
    rate: float = 0.0
    parts: list[Part] = field(default_factory=list)
    events: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["models"] = {str(k): v for k, v in sorted(self.models.items())}
        d.pop("started")
        return d


def decoder_errors(s: Session) -> dict[str, int]:
    """The host decoder's refused-frame counters (CRC, COBS, length, header) of this session."""
    return {k: int(v) for k, v in s.link_errors.items() if k != "frames_ok"}


_DEVICE_ERROR_FIELDS = ("crc_errors", "cobs_errors", "length_errors", "header_errors", "msg_errors",
                        "auth_failures", "replays_refused")


class _Retry(Exception):
    """Internal: the link broke or stalled; recover and go on."""


class Streamer:
    """Runs one ``dysan stream`` (see the module doc). ``view(stats)`` is called a few times per second."""

    def __init__(self, link: DeviceLink, writer: Writer, opts: StreamOptions,
                 view: Callable[[StreamStats], None] | None = None) -> None:
        self.link = link
        self.writer = writer
        self.opts = opts
        self.view = view
        self.stats = StreamStats()
        self.samples = None if opts.samples is None else np.ascontiguousarray(opts.samples, np.int16).reshape(
            -1, contract.N_CHANNELS)
        if self.samples is not None and opts.windows is not None:
            need = contract.WINDOW + (opts.windows - 1) * contract.HOP if opts.windows > 0 else 0
            if len(self.samples) < need:
                raise DysanError(f"the replay source has {len(self.samples)} samples: {windows_in(len(self.samples))}"
                                 f" windows, fewer than --windows {opts.windows}")
            self.samples = self.samples[:need]
        self.boot = writer.first_boot
        self.next_seq = 1
        self.part: Part | None = None
        self.pos = 0  # replay: next sample to push, absolute
        self.idle_sent = False
        self._resend_from: int | None = None
        self._resend_at = 0.0
        self._resend_tries = 0
        self._last_progress = time.monotonic()
        self._last_uptime = 0
        self._last_view = 0.0
        self._last_stats = 0.0
        self._rates: deque[tuple[float, int]] = deque(maxlen=50)
        self._watch_reconnects = 0
        self._done = False
        self._tail_tries = 0
        self._err_session: Session | None = None
        self._errors_closed: dict[str, int] = {}

    # -- public -----------------------------------------------------------------------------------------

    def run(self) -> StreamStats:
        s = self._own(self.link.session or self.link.open())
        self.stats.device_id = bytes(s.info.device_id).hex()
        self._check_ready(s)
        self._watch_reconnects = self.link.watch.reconnects
        st = s.stats()
        self._last_uptime = int(st.uptime_ms)
        self.next_seq = int(st.windows_sent) + 1
        self._begin_part(s, offset=0)
        try:
            while not self._done:
                try:
                    self._pump(self.link.session)  # type: ignore[arg-type]
                except (_Retry, TransportError) as exc:
                    self._recover(str(exc))
                except DeviceError:
                    raise
                except DysanError as exc:  # a reply that never came: the link stalled
                    if "within" not in str(exc):
                        raise
                    self._recover(str(exc))
        finally:
            self._finish()
        return self.stats

    @staticmethod
    def _own(s: Session) -> Session:
        """The streamer acknowledges and chases windows itself: an ACK must follow the write, never precede it."""
        s.auto_ack = False
        s.auto_resend = False
        return s

    # -- parts --------------------------------------------------------------------------------------------

    def _check_ready(self, s: Session) -> None:
        info = s.info
        # No sensitive value is required: a two-valued attribute is never stated (docs/firmware.md, "The sensitive
        # value"); a bundle of more values without one makes the device log "no sanitized output: ...".
        missing = [what for what, ok in (("model bundle", info.bundle_valid), ("calibration RF", info.rf_loaded))
                   if not ok]
        if missing:
            raise DysanError(f"device {bytes(info.device_id).hex()} lacks: {', '.join(missing)}; it sends no "
                             "sanitized window until flashed with a bundle and calibrated (dysan calibrate)")
        if not info.stream_enabled:
            self.stats.events.append("device has stream_enable=0 (CONFIGURE): no windows will be sent")

    def _begin_part(self, s: Session, offset: int) -> None:
        if self.part is not None:
            self.stats.parts.append(self.part)
        if self.samples is not None:
            s.set_mode(Mode.REPLAY)  # every part is a fresh device stream
        elif int(s.info.mode) != Mode.STREAMING:
            s.set_mode(Mode.STREAMING)
        first = int(s.stats().windows_sent) + 1
        self.next_seq = max(self.next_seq, first)
        self.part = Part(self.boot, len(self.stats.parts), offset, self.next_seq,
                         boot_epoch=int(s.info.boot_epoch))
        self.pos = offset
        self.idle_sent = False
        self._resend_from = None
        self._last_progress = time.monotonic()

    def _end_part(self, end: str) -> None:
        assert self.part is not None
        self.part.end = end

    # -- the loop ---------------------------------------------------------------------------------------------

    def _guard(self) -> None:
        """Raises _Retry once the transport has reconnected underneath us. Checked before every SAMPLES frame:
        after a reconnect the device may have lost samples that were in flight, so a sample pushed on the new
        connection would be appended after a gap -- the part must end first (see the module doc)."""
        if self.link.watch.reconnects != self._watch_reconnects:
            raise _Retry(f"link reconnected ({self.link.watch.last})")

    def _pump(self, s: Session) -> None:
        self._guard()
        if self.samples is None:
            self._pump_live(s)
        else:
            self._pump_replay(s)
        self._refresh(s)

    def _pump_replay(self, s: Session) -> None:
        assert self.samples is not None and self.part is not None
        self._drain(s)
        if self.pos < len(self.samples):
            chunk = self.samples[self.pos: self.pos + SAMPLES_MAX]
            pushed_rel = self.pos - self.part.offset + len(chunk)
            if windows_in(pushed_rel) - self.part.windows > self._max_ahead(s):
                s.poll(0.05)
                self._check_stall(s)
                return
            self._guard()
            s.send(make("SAMPLES", samples=tuple(int(v) for v in chunk.reshape(-1))))
            self.pos += len(chunk)
            s.poll(0.0)
            return
        if not self.idle_sent:
            s.command(make("SET_MODE", mode=int(Mode.IDLE)))  # ends the part: the last segment is sent
            self.idle_sent = True
            self._last_progress = time.monotonic()
        expected = windows_in(len(self.samples) - self.part.offset)
        if self.part.windows >= expected:
            self._end_part("complete")
            self._done = True
            return
        s.poll(0.1)
        self._drain(s)
        self._chase_tail(s)
        self._check_stall(s)

    def _max_ahead(self, s: Session) -> int:
        """The device answers a whole segment at once: flow control must let at least one segment through."""
        seg = int(getattr(s.info, "segment_len", 1) or 1)
        return max(self.opts.max_ahead, seg + 1)

    def _pump_live(self, s: Session) -> None:
        assert self.part is not None
        s.poll(0.2)
        self._drain(s)
        self._chase_tail(s)
        enough = self.opts.windows is not None and self.stats.written >= self.opts.windows
        timeout = self.opts.seconds is not None and time.monotonic() - self.stats.started >= self.opts.seconds
        if enough or timeout:
            self._end_part("stopped")
            self._done = True

    def _drain(self, s: Session) -> None:
        """Writes the contiguous windows received, acknowledges them, and chases gaps with RESEND."""
        assert self.part is not None
        wrote = False
        while True:
            w = s.windows.pop(self.next_seq, None)
            if w is None:
                break
            self.writer.write(self.part.boot, self.part.part, w)
            self.part.windows += 1
            self.part.written += 1
            self.stats.written += 1
            self.stats.models[w.model_id] += 1
            self.stats.last_model = w.model_id
            self.next_seq += 1
            wrote = True
            if self.opts.windows is not None and self.stats.written >= self.opts.windows:
                break
        for seq in [q for q in s.windows if q < self.next_seq]:  # duplicates (retransmissions of written ones)
            del s.windows[seq]
        if wrote:
            self.writer.flush()
            s.ack(self.next_seq - 1)
            self._last_progress = time.monotonic()
            self._resend_from = None
            self._tail_tries = 0
            self._rates.append((time.monotonic(), self.stats.written))
        self.stats.retransmitted = s.retransmitted
        if s.windows and min(s.windows) > self.next_seq:
            self._resend_missing(s)

    def _resend_missing(self, s: Session) -> None:
        assert self.part is not None
        now = time.monotonic()
        if self._resend_from != self.next_seq:
            self._resend_from, self._resend_tries = self.next_seq, 0
        elif now - self._resend_at < self.opts.resend_retry:
            return
        if self._resend_tries >= RESEND_TRIES:
            # The device no longer holds it: count it and move on (the device counted the drop as well).
            self.stats.lost += 1
            self.part.lost += 1
            self.part.windows += 1
            self.stats.events.append(f"window {self.next_seq} (boot {self.part.boot}) lost")
            self.next_seq += 1
            self._resend_from = None
            s.ack(self.next_seq - 1)
            return
        s.resend(self.next_seq)
        self._resend_tries += 1
        self._resend_at = now
        self.stats.resends += 1

    def _chase_tail(self, s: Session) -> None:
        """Windows expected but none arriving: the last ones may have been lost on the link -- ask again; after
        RESEND_TRIES, take the device's word (STATS) for what it made and count the rest as lost."""
        now = time.monotonic()
        if now - self._last_progress <= self.opts.resend_retry or now - self._resend_at <= self.opts.resend_retry:
            return
        if self.samples is None and not s.windows:
            return
        if self._tail_tries < RESEND_TRIES:
            s.resend(self.next_seq)
            self._resend_at = now
            self._tail_tries += 1
            self.stats.resends += 1
            return
        self._tail_tries = 0
        if self.samples is None or not self.idle_sent:
            return
        assert self.part is not None
        last = int(s.stats().windows_sent)
        while self.next_seq <= last:  # sent, never received, no longer held: lost
            self.stats.lost += 1
            self.part.lost += 1
            self.part.windows += 1
            self.next_seq += 1
        s.ack(self.next_seq - 1)
        expected = windows_in(len(self.samples) - self.part.offset)
        if self.part.windows < expected:
            self.stats.events.append(f"part {self.part.part}: the device made {self.part.windows} of {expected} "
                                     "windows (samples lost on the way to it)")
        self._end_part("complete" if self.part.windows >= expected else "short")
        self._done = True

    def _check_stall(self, s: Session) -> None:
        if time.monotonic() - self._last_progress > self.opts.stall_timeout:
            raise DysanError(f"no sanitized window for {self.opts.stall_timeout:.0f} s "
                             f"({self.stats.written} written; is the device computing? try `dysan monitor`)")

    # -- recovery ---------------------------------------------------------------------------------------------

    def _recover(self, why: str) -> None:
        assert self.part is not None
        self.stats.events.append(f"link: {why}")
        deadline = time.monotonic() + self.opts.reconnect_timeout
        s = self._own(self._reconnect(deadline))
        self.stats.reconnects += 1
        self._watch_reconnects = self.link.watch.reconnects
        st = s.stats()
        rebooted = int(st.uptime_ms) < self._last_uptime or int(st.windows_sent) < self.next_seq - 1
        self._last_uptime = int(st.uptime_ms)
        if rebooted:
            self.stats.reboots += 1
            self.stats.events.append(f"device restarted: new boot {self.boot + 1}")
            self._check_ready(s)
            self._end_part("cut")
            self.boot += 1
            self.next_seq = int(st.windows_sent) + 1
            for q in list(s.windows):
                del s.windows[q]
        elif self.samples is not None:
            # The device is alive: end its stream, then collect every window it made of the old part.
            s.command(make("SET_MODE", mode=int(Mode.IDLE)))
            last = int(s.stats().windows_sent)
            deadline = time.monotonic() + max(5.0, self.opts.resend_retry * (RESEND_TRIES + 2))
            while self.next_seq <= last and time.monotonic() < deadline:
                s.poll(0.1)
                self._drain(s)
                if self.next_seq <= last and not s.windows:
                    self._resend_missing_tail(s, last)
            while self.next_seq <= last:  # what the device could not give back
                self.stats.lost += 1
                self.part.lost += 1
                self.part.windows += 1
                self.next_seq += 1
            s.ack(self.next_seq - 1)
            self._end_part("flushed")
        else:
            s.resend(self.next_seq)
            self.stats.resends += 1
            return
        if self.samples is None:
            self._begin_part(s, 0)
            return
        offset = self.part.offset + self.part.windows * contract.HOP
        remaining = windows_in(len(self.samples) - offset)
        if remaining <= 0:
            self.stats.parts.append(self.part)
            self.part = Part(self.boot, len(self.stats.parts), offset, self.next_seq,
                             boot_epoch=int(s.info.boot_epoch), end="complete")
            self._done = True
            return
        self._begin_part(s, offset)

    def _resend_missing_tail(self, s: Session, last: int) -> None:
        now = time.monotonic()
        if now - self._resend_at >= self.opts.resend_retry:
            s.resend(self.next_seq)
            self._resend_at = now
            self.stats.resends += 1

    def _reconnect(self, deadline: float) -> Session:
        """A working session again: on the same transport when it is still (or again) up, else a new one."""
        delay = 0.1
        last = ""
        while True:
            try:
                if self.link.transport is not None and self.link.transport.is_open:
                    with contextlib.suppress(TransportError):
                        self.link.transport.write(b"\x00")  # abort any half-sent frame on the device's side
                    return self.link.resync()
            except (TransportError, DysanError) as exc:
                if isinstance(exc, DeviceError):
                    raise
                last = str(exc)
            self.link.close()
            try:
                return self.link.open()
            except (TransportError, DysanError) as exc:
                if isinstance(exc, DeviceError):
                    raise
                last = str(exc)
            if time.monotonic() + delay > deadline:
                raise DysanError(f"link lost and not back within {self.opts.reconnect_timeout:.0f} s ({last}); "
                                 f"{self.stats.written} windows written")
            time.sleep(delay)
            delay = min(2.0, delay * 2)

    # -- view and end ---------------------------------------------------------------------------------------------

    def _refresh(self, s: Session) -> None:
        now = time.monotonic()
        if now - self._last_stats > self.opts.stats_every and self.view is not None:
            self._last_stats = now
            self._device_stats(s)
        if self.view is not None and now - self._last_view >= self.opts.view_every:
            self._last_view = now
            self._update_numbers()
            self.view(self.stats)

    def _update_numbers(self) -> None:
        self.stats.elapsed = time.monotonic() - self.stats.started
        s = self.link.session
        if s is not self._err_session:  # a new session (after a reconnect) has a fresh decoder
            if self._err_session is not None:
                for k, v in decoder_errors(self._err_session).items():
                    self._errors_closed[k] = self._errors_closed.get(k, 0) + v
            self._err_session = s
        cur = decoder_errors(s) if s is not None else {}
        self.stats.link_errors = {k: self._errors_closed.get(k, 0) + cur.get(k, 0)
                                  for k in sorted(set(cur) | set(self._errors_closed))}
        if len(self._rates) >= 2:
            (t0, n0), (t1, n1) = self._rates[0], self._rates[-1]
            self.stats.rate = (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0

    def _device_stats(self, s: Session) -> None:
        st = s.stats()
        self._last_uptime = int(st.uptime_ms)
        self.stats.device_stats = {f: int(getattr(st, f)) for f in (*_DEVICE_ERROR_FIELDS, "windows_sent",
                                                                    "windows_acked", "windows_dropped",
                                                                    "windows_retransmitted", "uptime_ms")}
        self.stats.device_errors = sum(self.stats.device_stats[f] for f in _DEVICE_ERROR_FIELDS)

    def _finish(self) -> None:
        s = self.link.session
        with contextlib.suppress(Exception):
            self.writer.flush()
        if self.part is not None and (not self.stats.parts or self.stats.parts[-1] is not self.part):
            self.stats.parts.append(self.part)
        if s is not None:
            with contextlib.suppress(Exception):
                self._device_stats(s)
        self._update_numbers()
        if self.view is not None:
            self.view(self.stats)


def reference_for_parts(pipeline, samples: np.ndarray, parts: list[Part], key: bytes | None = None) -> list:
    """What a correct device sent for a replayed stream cut into ``parts`` (see the module doc): each part is a
    fresh device stream of its own samples; a part cut by a restart kept the windows written, which were whole
    segments computed before the restart (or the start of one), so its reference is that of the full segments.

    A jitter bundle's bytes depend on the device's seed of the part's boot and on the windows' sequence
    numbers: ``key`` (the device key) with each part's ``boot_epoch`` and ``first_seq`` reproduce them."""
    from ..errors import DysanError
    from ..jitter import device_seed

    seg = pipeline.schedule.segment
    jittered = getattr(pipeline.bundle, "jitter", None) is not None
    if jittered and key is None:
        raise DysanError("the bundle applies the on-device jitter: the reference of a stream needs the device key")
    out = []
    seed = pipeline.jitter_seed
    try:
        for p in parts:
            n = p.windows if p.end != "cut" else -(-p.windows // seg) * seg
            if not n:
                continue
            if jittered:
                pipeline.jitter_seed = device_seed(key, p.boot_epoch)
            got = pipeline.run(samples[p.offset: p.offset + contract.WINDOW + max(0, n - 1) * contract.HOP],
                               first_seq=p.first_seq if jittered else 1)
            out.extend(got[: p.windows])
    finally:
        pipeline.jitter_seed = seed  # the caller's pipeline is left as it was
    return out
