"""``dysan monitor``: what the device says (LOG lines) and counts (STATS), live, without changing anything.

The monitor only reads: HELLO, STATS_REQ and PING are unauthenticated, read-only messages. It also never
acknowledges a sanitized window it happens to see -- an ACK releases the window from the device's
retransmission queue, and the monitor does not store windows, so acknowledging them would lose them for the
client that does (``dysan stream``). The serial link has one client at a time; run the monitor when nothing
else holds the port (or use it to watch a device between calibrate and stream).

Real time: the sampling counters (samples acquired / missed, windows with gaps, late windows, RX overflows,
the ring's worst backlog) are shown with the rest, a loss since the previous update is logged as a WARN line,
and ``duty_percent`` is the share of the last interval the device was not asleep (STATS ``work_idle`` against
``cycles``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..device.session import Session
from ..errors import DysanError
from ..protocol.schema import LogLevel, Mode
from ..transport import TransportError
from .link import DeviceLink

STATS_FIELDS_SHOWN = ("uptime_ms", "frames_ok", "crc_errors", "cobs_errors", "length_errors", "header_errors",
                      "msg_errors", "auth_failures", "replays_refused", "windows_sent", "windows_acked",
                      "windows_dropped", "windows_retransmitted", "raw_windows_sent", "stage_windows",
                      "candidates_scored", "sanitizer_runs", "samples_acquired", "samples_missed",
                      "windows_with_gaps", "windows_late", "rx_overflows", "backlog_max")
LOSS_FIELDS = ("samples_missed", "windows_with_gaps", "windows_late", "rx_overflows")
"""Counters of something lost or late: an increase between two updates is logged as a WARN line."""


def info_dict(info, signed: bool = False) -> dict:
    """INFO as plain data; the sensitive value only when the HELLO was ``signed`` (an unsigned HELLO's INFO
    carries a placeholder: schema.py says 0xFF, the firmware sends 0 -- either way it is not the value)."""
    d = {"device_id": bytes(info.device_id).hex(), "fw_version": f"{(info.fw_version >> 16) & 0xFF}."
         f"{(info.fw_version >> 8) & 0xFF}.{info.fw_version & 0xFF}", "proto_version": int(info.proto_version),
         "mode": Mode(int(info.mode)).name, "calib_active": int(info.calib_active),
         "stream_enabled": int(info.stream_enabled), "bundle_valid": int(info.bundle_valid),
         "bundle_hash": bytes(info.bundle_hash).hex(), "bundle_version": int(info.bundle_version),
         "model_count": int(info.model_count), "rf_loaded": int(info.rf_loaded),
         "sensitive_set": int(info.sensitive_set), "auth_counter": int(info.auth_counter),
         "segment_len": int(info.segment_len), "candidates": int(info.candidates),
         "weight_x": int(info.weight_x), "weight_y": int(info.weight_y), "boot_epoch": int(info.boot_epoch)}
    if signed and int(info.sensitive_set):
        d["sensitive_value"] = int(info.sensitive_value)
    return d


def stats_dict(st) -> dict:
    return {f: int(getattr(st, f)) for f in STATS_FIELDS_SHOWN}


def duty_percent(prev, st) -> float | None:
    """Busy share of the interval between two STATS (100 * (1 - d(work_idle) / d(cycles))), None without one."""
    if prev is None:
        return None
    d_cycles = int(st.cycles) - int(prev.cycles)
    if d_cycles <= 0:
        return None
    busy = d_cycles - (int(st.work_idle) - int(prev.work_idle))
    return round(100.0 * max(0, busy) / d_cycles, 2)


def losses(prev: dict, now: dict) -> list[str]:
    """What was lost or late since the previous update, in words (nothing is dropped silently)."""
    return [f"{k} +{now[k] - prev[k]} (total {now[k]})" for k in LOSS_FIELDS
            if k in prev and k in now and now[k] > prev[k]]


def level_name(level: int) -> str:
    try:
        return LogLevel(level).name
    except ValueError:
        return str(level)


@dataclass
class MonitorResult:
    info: dict = field(default_factory=dict)
    stats: dict = field(default_factory=dict)
    logs: list[tuple[float, str, str]] = field(default_factory=list)
    windows_seen: int = 0
    raw_windows_seen: int = 0
    reconnects: int = 0
    rtt_ms: float | None = None

    def as_dict(self) -> dict:
        return {"info": self.info, "stats": self.stats, "windows_seen": self.windows_seen,
                "raw_windows_seen": self.raw_windows_seen, "reconnects": self.reconnects, "rtt_ms": self.rtt_ms,
                "logs": [{"t": round(t, 3), "level": lv, "text": text} for t, lv, text in self.logs]}


def run_monitor(link: DeviceLink, *, seconds: float | None = None, interval: float = 1.0,
                on_update: Callable[[MonitorResult], None] | None = None,
                on_log: Callable[[str, str], None] | None = None,
                reconnect_timeout: float = 30.0) -> MonitorResult:
    """Watches the device until ``seconds`` passed (None: until interrupted)."""
    res = MonitorResult()
    t0 = time.monotonic()

    def log(level: int, text: str) -> None:
        name = level_name(level)
        res.logs.append((time.monotonic() - t0, name, text))
        if on_log is not None:
            on_log(name, text)

    link.on_log = log

    def start() -> Session:
        s = link.session or link.open()  # the session calls log() for every LOG line, banner included
        s.auto_ack = False
        s.auto_resend = False
        s.on_log = log
        res.info = info_dict(s.hello())
        res.rtt_ms = round(s.ping() * 1000, 2)
        return s

    s = start()
    next_stats = 0.0
    prev_st = None
    deadline = None if seconds is None else t0 + seconds
    try:
        while deadline is None or time.monotonic() < deadline:
            try:
                now = time.monotonic()
                if now >= next_stats:
                    next_stats = now + interval
                    st = s.stats()
                    new = stats_dict(st)
                    lost = losses(res.stats, new)
                    if lost:
                        log(int(LogLevel.WARN), "monitor: " + ", ".join(lost))
                    duty = duty_percent(prev_st, st)
                    prev_st = st
                    res.stats = new | ({"duty_percent": duty} if duty is not None else {})
                    res.info = info_dict(s.hello())
                    if on_update is not None:
                        on_update(res)
                s.poll(0.1)
                res.windows_seen += len(s.windows)
                s.windows.clear()
                res.raw_windows_seen += len(s.raw_windows)
                s.raw_windows.clear()
            except (TransportError, DysanError) as exc:
                if isinstance(exc, DysanError) and not isinstance(exc, TransportError) and "within" not in str(exc):
                    raise
                log(int(LogLevel.WARN), f"monitor: link problem ({exc}); reconnecting")
                s = _reconnect(link, start, reconnect_timeout)
                res.reconnects += 1
    except KeyboardInterrupt:
        pass  # Ctrl-C ends a monitor normally: the caller prints the last counters
    finally:
        with contextlib.suppress(Exception):
            res.stats = stats_dict(s.stats())
    return res


def _reconnect(link: DeviceLink, start: Callable[[], Session], timeout: float) -> Session:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        link.close()
        try:
            return start()
        except (TransportError, DysanError) as exc:
            last = str(exc)
            time.sleep(0.5)
    raise DysanError(f"link lost and not back within {timeout:.0f} s ({last})")
