"""Serial transport (USB CDC / USB-UART bridges, QEMU's socket://, loop:// in tests) and port listing.

Everything goes through `serial.serial_for_url`, so a device path, `socket://127.0.0.1:PORT` (QEMU's
`-serial tcp::PORT,server`) and `loop://` share one code path and one reconnect policy.

Reconnects: a board that resets (flashing, watchdog, the nRF52840 bootloader double-tap) makes its
USB port vanish and come back, often under the same path but sometimes under another (/dev/ttyACM0 ->
/dev/ttyACM1); QEMU restarts close the TCP socket. Both show up as a `SerialException` on read/write.
The transport then reopens the port under its policy, falling back to the port with the same USB serial
number when the old path is gone. Reconnection runs on the thread whose call saw the loss.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import serial
import serial.tools.list_ports

from dysan.boards import usb_guesses
from dysan.transport.base import (
    DEFAULT_BAUDRATE,
    PYSERIAL_URL_SCHEMES,
    EventCallback,
    LinkLostError,
    ReconnectPolicy,
    Transport,
    TransportError,
)

PortLister = Callable[[], Iterable[Any]]


def _is_url(target: str) -> bool:
    scheme, sep, _ = target.partition("://")
    return bool(sep) and scheme.lower() in PYSERIAL_URL_SCHEMES


def _root_cause(exc: BaseException) -> BaseException:
    """pyserial wraps OSErrors in SerialException; the socket handler keeps the original only as context."""
    if isinstance(exc, OSError) and exc.errno is not None:
        return exc
    inner = exc.__cause__ or exc.__context__
    return _root_cause(inner) if inner is not None else exc


def describe_open_error(target: str, exc: BaseException) -> str:
    """One line saying why `target` did not open and what to check."""
    cause = _root_cause(exc)
    code = getattr(exc, "errno", None) or getattr(cause, "errno", None)
    if target.lower().startswith("socket://"):
        if isinstance(cause, ConnectionRefusedError) or code == errno.ECONNREFUSED:
            return (f"cannot connect to {target}: connection refused "
                    "(is QEMU running with -serial tcp::PORT,server?)")
        return f"cannot connect to {target}: {cause}"
    if code == errno.ENOENT:
        return f"serial port {target} not found (run `dysan devices` to list ports)"
    if code in (errno.EACCES, errno.EPERM):
        return f"no permission to open {target} (on Linux, add yourself to the dialout group)"
    if code == errno.EBUSY or "lock" in str(exc).lower():
        return f"serial port {target} is busy (another program, e.g. a serial monitor, has it open)"
    if isinstance(exc, ValueError):
        return f"invalid serial link {target!r}: {exc}"
    return f"cannot open serial port {target}: {exc}"


class SerialTransport(Transport):
    """A `Transport` over any pyserial port or URL."""

    def __init__(self, target: str, baudrate: int = DEFAULT_BAUDRATE, *,
                 policy: ReconnectPolicy | None = None, on_event: EventCallback | None = None,
                 write_timeout: float | None = 5.0,
                 list_ports: PortLister | None = None) -> None:
        """`target`: a device path or a pyserial URL. `write_timeout`: seconds a write may block
        (None = forever) before `TransportError` - a device that stopped reading must not hang the host.
        `list_ports`: where to find a renumbered port by USB serial number (tests inject a fake)."""
        name = target if _is_url(target) else f"serial:{target}@{baudrate}"
        super().__init__(name, policy, on_event)
        self.target = target
        self.baudrate = baudrate
        self.write_timeout = write_timeout
        self._list_ports: PortLister = list_ports or serial.tools.list_ports.comports
        self._port: serial.SerialBase | None = None
        self._port_timeout: float | None = -1.0  # cache: pyserial reconfigures the tty on every set
        self._path = target  # where the device currently is (may change on renumbering)
        self._serial_number: str | None = None
        self._lock = threading.RLock()  # serialises reconnects and close
        self._closing = threading.Event()
        self._failed: TransportError | None = None
        self._opened = False

    # -- life -------------------------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self._opened and self._failed is None

    @property
    def port_path(self) -> str:
        """Where the device is now (differs from `target` after a renumbering reconnect)."""
        return self._path

    def open(self) -> None:
        with self._lock:
            if self._port is not None:
                return
            self._closing.clear()
            self._failed = None
            self._port = self._open_port(self._path)
            self._serial_number = self._lookup_serial_number(self._path)
            self._generation += 1
            self._opened = True
        self._emit("connected", self._path)

    def close(self) -> None:
        self._closing.set()
        port = self._port
        if port is not None:
            # Cancel + close first (without the lock) unblocks a reader stuck in port.read().
            with contextlib.suppress(Exception):
                port.cancel_read()  # posix and loop:// ports; socket:// wakes on close's shutdown()
            with contextlib.suppress(serial.SerialException, OSError):
                port.close()
        with self._lock:
            # A reconnect that finished while we waited for the lock left a fresh port behind.
            if self._port is not None and self._port is not port:
                with contextlib.suppress(serial.SerialException, OSError):
                    self._port.close()
            self._port = None
            self._opened = False

    def _open_port(self, path: str) -> serial.SerialBase:
        kwargs: dict[str, Any] = {"baudrate": self.baudrate, "timeout": 0,
                                  "write_timeout": self.write_timeout, "do_not_open": True}
        if not _is_url(path):
            kwargs["exclusive"] = True  # a second reader would silently steal half the bytes
        try:
            port = serial.serial_for_url(path, **kwargs)
            port.open()
        except (serial.SerialException, OSError, ValueError) as exc:
            raise TransportError(describe_open_error(path, exc)) from exc
        self._port_timeout = 0
        return port

    # -- I/O --------------------------------------------------------------------------------------------

    def _current_port(self) -> serial.SerialBase:
        while True:
            if self._failed is not None:
                raise self._failed
            port = self._port
            if port is not None:
                return port
            if not self._opened or self._closing.is_set():
                raise TransportError(f"{self.name}: link is closed")
            with self._lock:
                pass  # another thread is reconnecting (it holds the lock): wait for it to finish

    def _set_timeout(self, port: serial.SerialBase, timeout: float | None) -> None:
        if self._port_timeout != timeout:
            port.timeout = timeout
            self._port_timeout = timeout

    def read(self, max_bytes: int = 4096, timeout: float | None = 1.0) -> bytes:
        if max_bytes <= 0:
            return b""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            port = self._current_port()
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                # pyserial's read(n) waits for all n bytes: take what is there if anything is, else wait
                # for one byte and then take what followed it. While streaming, the first branch keeps
                # the port's timeout at 0 (changing it costs a tcsetattr on real ports).
                if port.in_waiting:
                    self._set_timeout(port, 0)
                    data = port.read(max_bytes)
                else:
                    self._set_timeout(port, remaining)
                    data = port.read(1)
                    if data and max_bytes > 1:
                        self._set_timeout(port, 0)
                        data += port.read(max_bytes - 1)
            except (serial.SerialException, OSError, TypeError, AttributeError) as exc:
                # TypeError/AttributeError: pyserial's posix read on a port closed under it by close().
                if self._closing.is_set():
                    raise TransportError(f"{self.name}: link is closed") from None
                self._recover(port, exc)
                if deadline is not None and time.monotonic() >= deadline:
                    return b""
                continue
            if data:
                self._count(rx_bytes=len(data))
            elif self._closing.is_set():
                raise TransportError(f"{self.name}: link is closed")
            return data

    def write(self, data: bytes) -> None:
        if not data:
            return
        port = self._current_port()
        try:
            port.write(data)
        except serial.SerialTimeoutException:
            raise TransportError(
                f"{self.name}: write timed out after {self.write_timeout:g} s (is the device reading?)"
            ) from None
        except (serial.SerialException, OSError, TypeError, AttributeError) as exc:
            if self._closing.is_set():
                raise TransportError(f"{self.name}: link is closed") from None
            self._count(tx_dropped=len(data))
            self._recover(port, exc)
            return
        self._count(tx_bytes=len(data))

    # -- reconnection -----------------------------------------------------------------------------------

    def _recover(self, failed_port: serial.SerialBase, exc: BaseException) -> None:
        """Replace `failed_port` with a fresh connection, or raise `LinkLostError` per the policy."""
        with self._lock:
            if self._failed is not None:
                raise self._failed
            if self._port is not failed_port:
                return  # another thread already reconnected
            reason = str(exc) or type(exc).__name__
            with contextlib.suppress(serial.SerialException, OSError):
                failed_port.close()
            self._port = None
            self._emit("disconnected", reason)
            last_error = reason
            attempt = 0
            for attempt, delay in enumerate(self.policy.delays(), start=1):
                if delay and self._closing.wait(delay):
                    break
                if self._closing.is_set():
                    break
                self._count(reconnect_attempts=1)
                try:
                    path = self._reconnect_path()
                    self._port = self._open_port(path)
                except TransportError as err:
                    last_error = str(err)
                    self._emit("reconnect_failed", last_error, attempt)
                    continue
                self._path = path
                self._generation += 1
                self._count(reconnects=1)
                self._emit("reconnected", path, attempt)
                return
            if self._closing.is_set():
                raise TransportError(f"{self.name}: link is closed")
            if not self.policy.enabled:
                message = f"{self.name}: link lost ({reason}); reconnecting is disabled"
            else:
                message = f"{self.name}: link lost; gave up after {attempt} reconnect attempts ({last_error})"
            self._failed = LinkLostError(message)
            self._emit("gave_up", message, attempt)
            raise self._failed

    def _reconnect_path(self) -> str:
        """The old path if it still exists, else wherever the same USB serial number re-appeared."""
        if _is_url(self._path) or self._serial_number is None or os.path.exists(self._path):
            return self._path
        for info in self._list_ports():
            if getattr(info, "serial_number", None) == self._serial_number:
                return str(info.device)
        return self._path

    def _lookup_serial_number(self, path: str) -> str | None:
        if _is_url(path):
            return None
        real = os.path.realpath(path)
        try:
            ports = list(self._list_ports())
        except (OSError, serial.SerialException):
            return None
        for info in ports:
            if os.path.realpath(str(info.device)) == real:
                return getattr(info, "serial_number", None) or None
        return None


# -- `dysan devices`: port listing ------------------------------------------------------------------------


#: (VID, PID or None for any) -> what the port probably is. The firmware targets the nRF52840 boards
#: (native USB CDC) and ESP32 DevKits (a USB-UART bridge chip in front of UART0). The boards' own ids come
#: from the boards table (dysan.boards); the vendor-wide guesses below are for everything else.
KNOWN_USB_IDS: dict[tuple[int, int | None], str] = {
    **usb_guesses(),
    (0x2341, None): "Arduino board",
    (0x2886, None): "Seeed Studio board (XIAO nRF52840?)",
    (0x1915, None): "Nordic Semiconductor device (nRF52840 Dongle/DK?)",
    (0x1366, None): "SEGGER J-Link VCOM (nRF52840 DK?)",
    (0x239A, None): "Adafruit board (nRF52840 Feather?)",
    (0x10C4, None): "Silicon Labs USB-UART (ESP32 board?)",
    (0x1A86, None): "WCH USB-UART (ESP32 board?)",
    (0x0403, None): "FTDI USB-UART (ESP32 board or adapter)",
    (0x303A, None): "Espressif native USB (ESP32-S3/C3)",
}


def guess_board(vid: int | None, pid: int | None) -> str:
    """Best guess of the board behind a USB VID:PID ("" when unknown or not USB)."""
    if vid is None:
        return ""
    return KNOWN_USB_IDS.get((vid, pid)) or KNOWN_USB_IDS.get((vid, None), "")


@dataclass(frozen=True)
class PortInfo:
    port: str
    description: str
    vid: int | None
    pid: int | None
    serial_number: str | None
    guess: str

    @property
    def vid_pid(self) -> str:
        """`2341:805A`, or "" for non-USB ports."""
        if self.vid is None or self.pid is None:
            return ""
        return f"{self.vid:04X}:{self.pid:04X}"

    def as_dict(self) -> dict[str, Any]:
        return {"port": self.port, "description": self.description, "vid_pid": self.vid_pid,
                "serial_number": self.serial_number, "guess": self.guess}


def list_serial_ports(list_ports: PortLister | None = None, *, usb_only: bool = False) -> list[PortInfo]:
    """The serial ports present, with a board guess, likely boards first (for `dysan devices`).

    `usb_only` hides the legacy /dev/ttyS* ports every Linux PC reports.
    """
    lister = list_ports or serial.tools.list_ports.comports
    try:
        raw = list(lister())
    except (OSError, serial.SerialException) as exc:
        raise TransportError(f"cannot list serial ports: {exc}") from exc
    ports = []
    for info in raw:
        vid = getattr(info, "vid", None)
        pid = getattr(info, "pid", None)
        if usb_only and vid is None:
            continue
        description = getattr(info, "description", None)
        ports.append(PortInfo(
            port=str(info.device),
            description="" if description in (None, "n/a") else str(description),
            vid=vid, pid=pid,
            serial_number=getattr(info, "serial_number", None),
            guess=guess_board(vid, pid),
        ))
    ports.sort(key=lambda p: (p.guess == "", p.vid is None, p.port))
    return ports
