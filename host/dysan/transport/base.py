"""The byte-transport interface shared by the serial and BLE links, and the `--link` URL factory.

A transport moves an ordered byte stream between the host and one device and owns the connection's life
(open, detect loss, reconnect, close). It knows nothing about frames: the protocol layer above
(COBS frames delimited by 0x00, with CRC, in `dysan.protocol`) resynchronises on the next delimiter and
retransmits, so the transport can promise exactly what a UART promises and no more.

Delivery contract (both directions, every implementation):

* Within one connection, bytes arrive in order, never duplicated.
* A reconnect may lose the bytes that were in flight when the link dropped (a gap), but never
  duplicates or reorders them: bytes of an old connection are never delivered after bytes of a newer one.
* Each `write()` goes out on a single connection. If the link drops during the call, the unsent rest of
  that call is discarded (counted in `TransportStats.tx_dropped`) rather than spliced onto the next
  connection, and the call returns normally; the next `write()` goes out on the reconnected link.
  Splicing half a frame from one connection onto a new connection (where the peer may have rebooted)
  would only manufacture a corrupt frame.
* When the reconnect policy gives up, the pending and later calls raise `LinkLostError`.

Threading: one reader thread and one writer thread may use a transport concurrently.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self
from urllib.parse import parse_qsl

from dysan.errors import DysanError

_log = logging.getLogger(__name__)

#: Baud rate used when a `serial:` spec does not name one (the firmware's UART default).
DEFAULT_BAUDRATE = 115200

#: pyserial URL schemes passed through to `serial.serial_for_url` unchanged.
PYSERIAL_URL_SCHEMES = ("socket", "loop", "rfc2217", "spy", "hwgrep", "alt", "cp2110")


class TransportError(DysanError):
    """A link failure the user can act on (missing port, refused connection, no Bluetooth...).

    Messages are one line, name the link, and say what to check: the CLI prints them as they are.
    """


class LinkLostError(TransportError):
    """The connection dropped and the reconnect policy gave up (or reconnecting is disabled)."""


@dataclass(frozen=True)
class ReconnectPolicy:
    """How a transport re-establishes a lost connection: capped exponential backoff.

    The first attempt is immediate (a device that merely reset is usually back within a few hundred
    milliseconds), then `initial_delay`, doubling (x `factor`) up to `max_delay`. `max_attempts=None`
    retries forever; `0` disables reconnection (loss raises `LinkLostError` at once).
    """

    max_attempts: int | None = 8
    initial_delay: float = 0.25
    max_delay: float = 5.0
    factor: float = 2.0

    def __post_init__(self) -> None:
        if self.max_attempts is not None and self.max_attempts < 0:
            raise ValueError("max_attempts must be >= 0 or None")
        if self.initial_delay < 0 or self.max_delay < 0 or self.factor < 1:
            raise ValueError("delays must be >= 0 and factor >= 1")

    @property
    def enabled(self) -> bool:
        return self.max_attempts is None or self.max_attempts > 0

    def delays(self) -> Iterator[float]:
        """Seconds to wait before each attempt (first one 0); finite unless `max_attempts` is None."""
        attempt = 0
        delay = self.initial_delay
        while self.max_attempts is None or attempt < self.max_attempts:
            if attempt == 0:
                yield 0.0
            else:
                yield min(delay, self.max_delay)
                delay *= self.factor
            attempt += 1


#: Reconnection disabled: the first loss raises `LinkLostError`.
NO_RECONNECT = ReconnectPolicy(max_attempts=0)


@dataclass(frozen=True)
class LinkEvent:
    """A change in the connection's life, for status lines and for the protocol layer.

    kind: "connected" (first open), "disconnected", "reconnect_failed" (one attempt), "reconnected",
    "gave_up". `generation` is the connection number the event refers to (1 = the first connection);
    the protocol layer uses "reconnected" to reset its decoder and re-authenticate.
    """

    kind: str
    generation: int
    detail: str = ""
    attempt: int = 0


EventCallback = Callable[[LinkEvent], None]


@dataclass
class TransportStats:
    """Counters a status line or a test reads; `Transport.stats` returns a copy."""

    rx_bytes: int = 0  # delivered to read()
    tx_bytes: int = 0  # handed to the link by write()
    tx_dropped: int = 0  # discarded from writes interrupted by a disconnect
    rx_overflow_bytes: int = 0  # received but dropped because the receive buffer was full
    rx_overflow_events: int = 0
    rx_stale_bytes: int = 0  # arrived from an already-replaced connection, discarded
    reconnects: int = 0
    reconnect_attempts: int = 0


class Transport(ABC):
    """A reliable-while-connected, reconnecting byte pipe to one device (see the module docstring)."""

    def __init__(self, name: str, policy: ReconnectPolicy | None = None,
                 on_event: EventCallback | None = None) -> None:
        self.name = name
        self.policy = policy if policy is not None else ReconnectPolicy()
        self._listeners: list[EventCallback] = [on_event] if on_event is not None else []
        self._stats = TransportStats()
        self._stats_lock = threading.Lock()
        self._generation = 0

    # -- the interface ------------------------------------------------------------------------------

    @abstractmethod
    def open(self) -> None:
        """Connect; raises `TransportError` with a one-line reason when the device cannot be reached.

        The first connection fails fast (no retries): a wrong port name should say so at once.
        """

    @abstractmethod
    def close(self) -> None:
        """Disconnect and release everything; idempotent, and wakes a blocked `read()`."""

    @abstractmethod
    def write(self, data: bytes) -> None:
        """Send `data` (see the delivery contract); blocks until handed to the link."""

    @abstractmethod
    def read(self, max_bytes: int = 4096, timeout: float | None = 1.0) -> bytes:
        """Return 1..max_bytes bytes as soon as any are available, or b"" after `timeout` seconds.

        `timeout=None` waits indefinitely. A disconnect during the wait triggers the reconnect
        policy; the call keeps waiting on the new connection until its deadline.
        """

    @property
    @abstractmethod
    def is_open(self) -> bool:
        """True between a successful `open()` and `close()` (also while reconnecting)."""

    # -- shared machinery ---------------------------------------------------------------------------

    @property
    def generation(self) -> int:
        """Connection number: 1 after `open()`, +1 per successful reconnect, 0 before opening."""
        return self._generation

    @property
    def stats(self) -> TransportStats:
        with self._stats_lock:
            return dataclasses.replace(self._stats)

    def add_listener(self, callback: EventCallback) -> None:
        """Call `callback(LinkEvent)` on every connection change.

        It runs on whichever thread saw the change (the caller's for serial, the BLE loop thread for
        BLE), so it must be quick and must not call back into the transport.
        """
        self._listeners.append(callback)

    def _count(self, **increments: int) -> None:
        with self._stats_lock:
            for key, value in increments.items():
                setattr(self._stats, key, getattr(self._stats, key) + value)

    def _emit(self, kind: str, detail: str = "", attempt: int = 0) -> None:
        event = LinkEvent(kind, self._generation, detail, attempt)
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                # A broken status printer must not break the link's own bookkeeping (the BLE
                # disconnect handler runs these callbacks on the loop thread).
                _log.exception("link event listener failed on %s", event)

    def __enter__(self) -> Self:
        if not self.is_open:
            self.open()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "open" if self.is_open else "closed"
        return f"<{type(self).__name__} {self.name} {state} gen={self._generation}>"


# -- the `--link` URL factory ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkSpec:
    """A parsed `--link` value.

    kind "serial": `target` is a device path or a pyserial URL (socket://, loop://, ...); `baudrate` set.
    kind "ble": `target` is an address (or macOS UUID) or an advertised name; `options` from `?k=v&...`.
    """

    kind: str
    target: str
    baudrate: int = DEFAULT_BAUDRATE
    options: dict[str, str] = field(default_factory=dict)


_BAUD_SUFFIX = re.compile(r"^(?P<path>.+?)@(?P<baud>\d+)$")


def parse_spec(spec: str) -> LinkSpec:
    """Parse `serial:/dev/ttyACM0[@115200]`, `socket://HOST:PORT`, `loop://`, `ble:ADDR_OR_NAME[?k=v]`.

    A bare path (`/dev/ttyACM0`, `COM3`) is taken as a serial port, since that is what people type.
    """
    text = spec.strip()
    if not text:
        raise TransportError("empty link spec (expected serial:PORT[@BAUD], socket://HOST:PORT or ble:NAME)")
    scheme, sep, rest = text.partition(":")
    scheme = scheme.lower()
    if sep and scheme in PYSERIAL_URL_SCHEMES:
        return LinkSpec("serial", text)
    if sep and scheme == "serial":
        if not rest:
            raise TransportError(f"link {spec!r}: missing port (e.g. serial:/dev/ttyACM0@115200)")
        match = _BAUD_SUFFIX.match(rest)
        if match:
            baud = int(match["baud"])
            if baud <= 0:
                raise TransportError(f"link {spec!r}: baud rate must be positive")
            return LinkSpec("serial", match["path"], baud)
        return LinkSpec("serial", rest)
    if sep and scheme == "ble":
        target, _, query = rest.partition("?")
        if not target:
            raise TransportError(f"link {spec!r}: missing device address or name (e.g. ble:DySan-1A2B)")
        return LinkSpec("ble", target, options=dict(parse_qsl(query, keep_blank_values=True)))
    looks_like_path = text.startswith(("/", ".")) or re.fullmatch(r"(?i)com\d+", text) is not None
    if looks_like_path:
        return parse_spec("serial:" + text)
    raise TransportError(
        f"unknown link {spec!r} (expected serial:PORT[@BAUD], socket://HOST:PORT, loop:// or ble:NAME)"
    )


def open_transport(spec: str, *, policy: ReconnectPolicy | None = None,
                   on_event: EventCallback | None = None, timeout: float = 10.0) -> Transport:
    """Build the transport a `--link` value names and open it (first connection fails fast).

    `timeout` bounds the first BLE connection (scan + connect + discovery); serial ports open at once
    (pyserial's socket:// connect has its own 5 s limit).
    Implementations are imported lazily so that serial users never import the BLE stacks.
    """
    link = parse_spec(spec)
    transport: Transport
    if link.kind == "serial":
        from dysan.transport.serial_link import SerialTransport

        transport = SerialTransport(link.target, baudrate=link.baudrate, policy=policy, on_event=on_event)
    else:
        from dysan.transport.ble_nus import BleNusTransport

        transport = BleNusTransport.from_spec(link, policy=policy, on_event=on_event,
                                              connect_timeout=timeout)
    transport.open()
    return transport

