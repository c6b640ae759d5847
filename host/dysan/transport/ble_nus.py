"""BLE transport over the Nordic UART Service (NUS): the backend-independent core.

NUS turns GATT into a byte pipe: the host writes to the RX characteristic, the device notifies on TX.
This module owns everything that makes that pipe behave like a UART for the protocol layer:

* MTU-aware chunking: a GATT write carries at most ATT_MTU - 3 bytes (opcode + handle), so a 1.6 KB
  frame is split into ceil(1600 / (MTU - 3)) writes, in order, one at a time.
* Reassembly: notifications are appended to one ordered byte stream (a bounded `ByteBuffer` with an
  overflow counter); frame boundaries are the protocol layer's business (0x00 delimiters).
* Connection life: disconnect detection, reconnect with capped backoff, re-subscription to TX on the new
  connection (a CCCD subscription does not survive a reconnect unless bonded), and a generation tag on
  every notification callback so bytes of a dead connection can never land after bytes of a new one.

Writes use write-WITH-response by default. Each ATT Write Request is acknowledged by the peer's GATT
server, which gives (1) backpressure end-to-end: the next chunk leaves only when the device accepted
the previous one, so a slow or busy device cannot be overrun and nothing is dropped silently in an OS
queue; (2) an error path: a rejected write surfaces as `TransportError` instead of vanishing; (3) a
known boundary at a disconnect: acknowledged chunks arrived, the one in flight did not count. The price
is throughput (one write per connection event or two), which does not matter for host -> device traffic
(commands, acks, configuration). Write-without-response (`write=command` in the link spec) is there for
bulk uploads; it relies on the OS stack's flow control (CoreBluetooth's canSendWriteWithoutResponse,
BlueZ/WinRT queues; Bumble's HCI ACL credits) and may drop at the device if its RX buffer is full.

The bleak (desktop) and Bumble (pure-Python stack: tests over a virtual link, or a USB HCI dongle)
backends live in `ble_bleak.py` and `ble_bumble.py`; they implement `NusBackend` / `NusLink`.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from dysan.transport.base import (
    EventCallback,
    LinkLostError,
    LinkSpec,
    ReconnectPolicy,
    Transport,
    TransportError,
)
from dysan.transport.buffer import ByteBuffer
from dysan.transport.loop_thread import LoopThread

NUS_SERVICE_UUID = "6e400001-b5a3-f393-e0a9-e50e24dcca9e"
NUS_RX_CHAR_UUID = "6e400002-b5a3-f393-e0a9-e50e24dcca9e"  # host -> device (write)
NUS_TX_CHAR_UUID = "6e400003-b5a3-f393-e0a9-e50e24dcca9e"  # device -> host (notify)

ATT_DEFAULT_MTU = 23
ATT_MAX_MTU = 517
ATT_WRITE_HEADER = 3  # opcode (1) + attribute handle (2); same for notifications
DEFAULT_MTU_REQUEST = 247  # nRF52840 SoftDevice / Zephyr maximum with 251-byte data length

_ADDRESS = re.compile(r"^([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}(/P)?$")
_APPLE_UUID = re.compile(r"^[0-9A-Fa-f]{8}-([0-9A-Fa-f]{4}-){3}[0-9A-Fa-f]{12}$")


def is_address(target: str) -> bool:
    """True for a Bluetooth address (or a macOS peripheral UUID); otherwise it is an advertised name."""
    return bool(_ADDRESS.match(target) or _APPLE_UUID.match(target))


def max_payload(mtu: int) -> int:
    """Bytes one write or notification can carry at this ATT MTU."""
    if mtu < ATT_DEFAULT_MTU:
        raise ValueError(f"ATT MTU {mtu} is below the minimum {ATT_DEFAULT_MTU}")
    return mtu - ATT_WRITE_HEADER


def split_for_mtu(data: bytes, mtu: int) -> list[bytes]:
    """Split `data` into consecutive pieces of at most MTU - 3 bytes (the last may be shorter)."""
    size = max_payload(mtu)
    return [data[i:i + size] for i in range(0, len(data), size)]


# -- backend interface ----------------------------------------------------------------------------------


class NusLink(Protocol):
    """One live GATT connection to a NUS peripheral, characteristics already discovered."""

    @property
    def mtu(self) -> int:
        """Negotiated ATT MTU (writes carry at most mtu - 3 bytes)."""
        ...

    async def subscribe(self, on_data: Callable[[bytes], None]) -> None:
        """Enable TX notifications; `on_data` runs on the loop thread, once per notification, in order."""
        ...

    async def write(self, data: bytes, *, with_response: bool) -> None:
        """One ATT write of len(data) <= mtu - 3 bytes to RX."""
        ...

    async def disconnect(self) -> None: ...


class NusBackend(Protocol):
    """A BLE central stack that can find and connect to NUS peripherals."""

    name: str

    async def connect(self, target: str, *, mtu: int, timeout: float,
                      on_disconnect: Callable[[], None]) -> NusLink:
        """Find `target` (address or advertised name), connect, request `mtu`, discover NUS.

        `on_disconnect` must be called on the loop thread when this connection drops, whoever drops it.
        Raises `TransportError` with a one-line reason.
        """
        ...

    async def scan(self, timeout: float) -> list[BleDeviceInfo]: ...

    async def aclose(self) -> None:
        """Release what the backend opened itself (HCI transport...)."""
        ...


@dataclass(frozen=True)
class BleDeviceInfo:
    address: str
    name: str
    rssi: int | None
    has_nus: bool  # advertises the Nordic UART Service UUID

    def as_dict(self) -> dict[str, object]:
        return {"address": self.address, "name": self.name, "rssi": self.rssi, "nus": self.has_nus}


@dataclass
class ScanResult:
    """Devices seen by a scan; `note` explains an empty result that is not "nothing in range"."""

    devices: list[BleDeviceInfo] = field(default_factory=list)
    note: str = ""


def no_bluetooth_note(exc: BaseException) -> str:
    """One line for "this machine cannot do BLE" failures (no adapter, no BlueZ/D-Bus, radio off)."""
    if isinstance(exc, FileNotFoundError):
        return "Bluetooth unavailable: no D-Bus system bus (BlueZ/bluetoothd not running or not installed)"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"Bluetooth unavailable: {text}"


def make_backend(name: str, hci: str | None = None, with_response: bool = True) -> NusBackend:
    """The named backend; `with_response` lets bleak size chunks for write-without-response."""
    if name == "bleak":
        from dysan.transport.ble_bleak import BleakBackend

        return BleakBackend(with_response=with_response)
    if name == "bumble":
        from dysan.transport.ble_bumble import BumbleBackend

        if not hci:
            raise TransportError("backend=bumble needs an HCI transport: ble:NAME?backend=bumble&hci=usb:0")
        return BumbleBackend(hci=hci)
    raise TransportError(f"unknown BLE backend {name!r} (expected bleak or bumble)")


def scan(timeout: float = 5.0, backend: NusBackend | None = None,
         loop: LoopThread | None = None) -> ScanResult:
    """Scan for BLE devices (for `dysan devices`); never raises for a machine without Bluetooth.

    `loop`: the loop the backend's objects live on (a Bumble virtual central), else a temporary one.
    Broad `except`: the failure modes of "no Bluetooth here" differ by OS and stack (bleak raises
    FileNotFoundError without D-Bus, BleakError without an adapter, D-Bus errors without bluetoothd);
    for a listing command all of them mean the same thing - an empty list and a note saying why.
    """
    chosen = backend
    runner = loop or LoopThread("dysan-ble-scan").start()
    try:
        if chosen is None:
            chosen = make_backend("bleak")
        devices = runner.run(chosen.scan(timeout), timeout + 10.0, "BLE scan")
    except Exception as exc:
        return ScanResult([], no_bluetooth_note(exc))
    finally:
        if chosen is not None and backend is None:
            with contextlib.suppress(Exception):
                runner.run(chosen.aclose(), 5.0, "closing BLE backend")
        if loop is None:
            runner.stop()
    devices.sort(key=lambda d: (not d.has_nus, -(d.rssi if d.rssi is not None else -999), d.address))
    return ScanResult(devices, "" if devices else "no BLE devices found (is the wearable advertising?)")


# -- the transport --------------------------------------------------------------------------------------

_LINK_OPTIONS = ("mtu", "write", "backend", "hci", "rx_buffer")


class BleNusTransport(Transport):
    """`Transport` over NUS; all BLE work runs on a `LoopThread`, the public methods are blocking."""

    def __init__(self, target: str, backend: NusBackend | None = None, *, mtu: int = DEFAULT_MTU_REQUEST,
                 with_response: bool = True, policy: ReconnectPolicy | None = None,
                 on_event: EventCallback | None = None, connect_timeout: float = 10.0,
                 write_timeout: float = 30.0, rx_capacity: int = 64 * 1024,
                 loop: LoopThread | None = None, own_backend: bool = False) -> None:
        """`mtu`: the ATT MTU to request (the peer may grant less). `loop`: share an existing loop
        thread (required when the backend's objects live on it, e.g. a Bumble virtual link);
        otherwise the transport runs its own. `own_backend`: call `backend.aclose()` on close."""
        if not ATT_DEFAULT_MTU <= mtu <= ATT_MAX_MTU:
            raise TransportError(f"ATT MTU must be in {ATT_DEFAULT_MTU}..{ATT_MAX_MTU}, got {mtu}")
        super().__init__(f"ble:{target}", policy, on_event)
        self.target = target
        self.mtu_request = mtu
        self.with_response = with_response
        self.connect_timeout = connect_timeout
        self.write_timeout = write_timeout
        self._backend = backend
        self._own_backend = own_backend or backend is None
        self._own_loop = loop is None
        self._loop = loop or LoopThread(f"dysan-ble-{target}")
        self._rx = ByteBuffer(rx_capacity, on_overflow=self._on_overflow)
        self._opened = False
        # Everything below is touched only on the loop thread.
        self._link: NusLink | None = None
        self._active_gen: int | None = None  # connection whose notifications are accepted
        self._mtu = 0
        self._closing = False
        self._failed: TransportError | None = None
        self._reconnect_task: asyncio.Task[None] | None = None
        self._state: asyncio.Future[None] | None = None
        self._write_lock: asyncio.Lock | None = None

    @classmethod
    def from_spec(cls, spec: LinkSpec, *, policy: ReconnectPolicy | None = None,
                  on_event: EventCallback | None = None, connect_timeout: float = 10.0) -> BleNusTransport:
        """`ble:TARGET?mtu=247&write=response|command&backend=bleak|bumble&hci=usb:0&rx_buffer=65536`."""
        opts = dict(spec.options)
        unknown = sorted(set(opts) - set(_LINK_OPTIONS))
        if unknown:
            raise TransportError(f"unknown BLE link option(s) {', '.join(unknown)} "
                                 f"(known: {', '.join(_LINK_OPTIONS)})")
        write = opts.get("write", "response")
        if write not in ("response", "command"):
            raise TransportError(f"BLE link option write={write!r}: expected response or command")
        try:
            mtu = int(opts.get("mtu", DEFAULT_MTU_REQUEST))
            rx_capacity = int(opts.get("rx_buffer", 64 * 1024))
        except ValueError as exc:
            raise TransportError(f"BLE link option is not an integer: {exc}") from None
        if rx_capacity < 1:
            raise TransportError(f"BLE link option rx_buffer={rx_capacity}: must be at least 1 byte")
        backend = make_backend(opts.get("backend", "bleak"), opts.get("hci"), write == "response")
        return cls(spec.target, backend, mtu=mtu, with_response=(write == "response"), policy=policy,
                   on_event=on_event, connect_timeout=connect_timeout, rx_capacity=rx_capacity,
                   own_backend=True)

    # -- properties -----------------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self._opened and self._failed is None

    @property
    def mtu(self) -> int:
        """ATT MTU of the current (or last) connection; 0 before the first."""
        return self._mtu

    @property
    def connected(self) -> bool:
        """True while a connection is up (False while reconnecting)."""
        return self._link is not None

    # -- life -----------------------------------------------------------------------------------------

    def open(self) -> None:
        if self._opened:
            return
        if self._backend is None:
            self._backend = make_backend("bleak", with_response=self.with_response)
        self._loop.start()
        self._rx.reset()
        try:
            self._loop.run(self._open_async(), self._setup_bound() + 5.0, f"connecting to {self.name}")
        except TransportError:
            self._abort_open()
            raise
        except Exception as exc:
            # Whatever the stack raised (bleak: FileNotFoundError without D-Bus, BleakError without an
            # adapter...), the user gets one line.
            self._abort_open()
            raise TransportError(f"cannot connect to {self.name}: {_describe(exc)}") from exc
        self._opened = True
        self._emit("connected", f"ATT MTU {self._mtu}")

    def close(self) -> None:
        if not self._opened:
            return
        self._opened = False
        try:
            self._loop.run(self._close_async(), 10.0, f"closing {self.name}")
        except TransportError:
            pass
        finally:
            self._rx.fail(TransportError(f"{self.name}: link is closed"))
            self._shutdown_loop()

    def _abort_open(self) -> None:
        with contextlib.suppress(Exception):
            self._loop.run(self._close_async(), 10.0, f"closing {self.name}")
        self._shutdown_loop()

    def _shutdown_loop(self) -> None:
        if self._own_loop:
            self._loop.stop()

    # -- I/O --------------------------------------------------------------------------------------------

    def read(self, max_bytes: int = 4096, timeout: float | None = 1.0) -> bytes:
        if not self._opened and self._failed is None:
            raise TransportError(f"{self.name}: link is closed")
        data = self._rx.read(max_bytes, timeout)
        if data:
            self._count(rx_bytes=len(data))
        return data

    def write(self, data: bytes) -> None:
        if not data:
            return
        if self._failed is not None:
            raise self._failed
        if not self._opened:
            raise TransportError(f"{self.name}: link is closed")
        self._loop.run(self._write(bytes(data)), self.write_timeout, f"{self.name}: write")

    # -- loop-thread side -------------------------------------------------------------------------------

    def _changed(self) -> None:
        """Wake every coroutine waiting for a state change (connected, lost, failed, closing)."""
        previous, self._state = self._state, asyncio.get_running_loop().create_future()
        if previous is not None and not previous.done():
            previous.set_result(None)

    async def _open_async(self) -> None:
        self._closing = False
        self._failed = None
        self._write_lock = asyncio.Lock()
        self._changed()
        await self._connect_once()

    async def _connect_once(self) -> None:
        assert self._backend is not None
        gen = self._generation + 1
        try:
            link = await self._setup(gen)
        except TimeoutError:
            raise TransportError(f"{self.name}: connection setup timed out") from None
        if self._closing or self._active_gen != gen:  # closed, or dropped while subscribing
            await _quietly_disconnect(link)
            raise TransportError(f"{self.name}: connection dropped during setup")
        self._link = link
        self._mtu = link.mtu
        self._generation = gen
        self._changed()

    async def _setup(self, gen: int) -> NusLink:
        """Connect + subscribe. The backend bounds its own scan and connect by `connect_timeout`; the
        outer bound is a safety net for a stack that hangs in discovery or the CCCD write."""
        assert self._backend is not None
        async with asyncio.timeout(self._setup_bound()):
            link = await self._backend.connect(self.target, mtu=self.mtu_request,
                                               timeout=self.connect_timeout,
                                               on_disconnect=lambda: self._on_disconnect(gen))
            # Accept this connection's notifications before subscribing: the device may notify as soon
            # as the CCCD write lands, before our subscribe() call has even returned.
            self._active_gen = gen
            try:
                await link.subscribe(lambda data: self._on_data(gen, data))
            except BaseException:
                self._active_gen = None
                await _quietly_disconnect(link)
                raise
        return link

    def _setup_bound(self) -> float:
        return 3 * self.connect_timeout + 5.0

    def _on_data(self, gen: int, data: bytes) -> None:
        if gen != self._active_gen:
            self._count(rx_stale_bytes=len(data))
            return
        self._rx.feed(bytes(data))

    def _on_overflow(self, dropped: int) -> None:
        self._count(rx_overflow_bytes=dropped, rx_overflow_events=1)

    def _on_disconnect(self, gen: int) -> None:
        if gen != self._active_gen or self._closing:
            return  # a stale connection, or one we are closing ourselves
        self._active_gen = None
        if gen != self._generation:
            return  # dropped while still being set up: _connect_once notices and fails that attempt
        self._link = None
        self._changed()
        self._emit("disconnected")
        if not self.policy.enabled:
            self._fail(LinkLostError(f"{self.name}: link lost; reconnecting is disabled"))
            return
        self._reconnect_task = asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        last_error = "no attempt made"
        attempt = 0
        for attempt, delay in enumerate(self.policy.delays(), start=1):
            if delay:
                await asyncio.sleep(delay)
            if self._closing:
                return
            self._count(reconnect_attempts=1)
            try:
                await self._connect_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                last_error = _describe(exc)
                self._emit("reconnect_failed", last_error, attempt)
                continue
            self._count(reconnects=1)
            self._emit("reconnected", f"ATT MTU {self._mtu}", attempt)
            return
        self._fail(LinkLostError(f"{self.name}: link lost; gave up after {attempt} reconnect attempts "
                                 f"({last_error})"))

    def _fail(self, error: TransportError) -> None:
        self._failed = error
        self._rx.fail(error)
        self._changed()
        self._emit("gave_up", str(error))

    async def _wait_link(self) -> tuple[NusLink, int]:
        """The live link, waiting through a reconnect; raises once the link is closed or given up."""
        while True:
            if self._failed is not None:
                raise self._failed
            if self._closing:
                raise TransportError(f"{self.name}: link is closed")
            if self._link is not None:
                return self._link, self._generation
            assert self._state is not None
            await asyncio.shield(self._state)  # shield: a cancelled waiter must not cancel the others

    async def _write(self, data: bytes) -> None:
        assert self._write_lock is not None
        async with self._write_lock:  # chunks of concurrent write() calls must not interleave
            link, gen = await self._wait_link()
            sent = 0
            for chunk in split_for_mtu(data, link.mtu):
                try:
                    await self._unless_dropped(gen, link.write(chunk, with_response=self.with_response))
                except _LinkDropped:
                    error: BaseException | None = None
                except asyncio.CancelledError:
                    task = asyncio.current_task()
                    if task is not None and task.cancelling():
                        raise  # our own cancellation (write timeout / close), not the link
                    error = ConnectionError("write aborted by the stack")
                except Exception as exc:
                    error = exc
                else:
                    sent += len(chunk)
                    self._count(tx_bytes=len(chunk))
                    continue
                if error is None or await self._dropped(gen):
                    # At-most-once: the chunk in flight and the rest of this write are discarded, not
                    # spliced onto the next connection (see the delivery contract in base.py).
                    self._count(tx_dropped=len(data) - sent)
                    return
                raise TransportError(f"{self.name}: write failed: {_one_line(error)}")

    async def _unless_dropped(self, gen: int, operation: Awaitable[None]) -> None:
        """Await `operation` unless connection `gen` drops first (then cancel it, raise _LinkDropped).

        Needed because a stack may accept a request on a link that just died and wait for the ATT
        transaction timeout (30 s) before failing it - Bumble does, for a write sent right after the
        disconnect event.
        """
        task = asyncio.ensure_future(operation)
        try:
            while not task.done():
                if self._active_gen != gen:
                    raise _LinkDropped
                assert self._state is not None
                await asyncio.wait({task, self._state}, return_when=asyncio.FIRST_COMPLETED)
            task.result()
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    async def _dropped(self, gen: int, grace: float = 1.0) -> bool:
        """Did connection `gen` go down? A failed write often precedes the disconnect event slightly."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while self._active_gen == gen:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            assert self._state is not None
            try:
                await asyncio.wait_for(asyncio.shield(self._state), remaining)
            except TimeoutError:
                return False
        return True

    async def _close_async(self) -> None:
        self._closing = True
        self._changed()
        task, self._reconnect_task = self._reconnect_task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        link, self._link = self._link, None
        self._active_gen = None
        if link is not None:
            await _quietly_disconnect(link)
        if self._own_backend and self._backend is not None:
            try:
                async with asyncio.timeout(5.0):
                    await self._backend.aclose()
            except Exception:
                pass


class _LinkDropped(Exception):
    """Internal: the connection a write was using went down."""


async def _quietly_disconnect(link: NusLink) -> None:
    """Best-effort disconnect: the link may already be gone, which is fine."""
    try:
        async with asyncio.timeout(5.0):
            await link.disconnect()
    except Exception:
        pass


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TransportError):
        return str(exc)
    if isinstance(exc, FileNotFoundError) or "bluetooth" in type(exc).__name__.lower():
        return no_bluetooth_note(exc)
    return _one_line(exc)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
