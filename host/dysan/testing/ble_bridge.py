"""A virtual BLE wearable: Bumble's virtual NUS peripheral bridged to the emulated device's UART.

There is no Bluetooth hardware where the tests run, but the BLE path is more than a transport swap: frames
are cut into ATT writes of MTU - 3 bytes, notifications of any size are reassembled into the byte stream,
and the protocol must not care. To run that for real, :class:`UartBleBridge` puts a
:class:`dysan.testing.virtual_nus.VirtualNusPeripheral` (a real GATT server on Bumble's in-process
link-layer) in front of the firmware's UART -- QEMU's or the host build's ``socket://`` link:

* every ATT write the host's central makes to NUS RX is queued to the UART (``on_rx`` runs on the BLE loop
  and must not block, so a writer thread drains the queue);
* every byte the firmware writes to its UART is sent as TX notifications (a reader thread), chunked to the
  connection's MTU by the peripheral.

The host side then opens ``virtual-ble:NAME[?mtu=N]``: :func:`open_virtual`, registered for that scheme by
:func:`dysan.testing.register_transports` (``tests/conftest.py`` calls it) through
:func:`dysan.tools.link.register_transport`, finds the virtual world of the newest open bridge and connects a
Bumble central through it, so ``dysan stream --port virtual-ble:...`` runs the real BLE transport
(:class:`dysan.transport.ble_nus.BleNusTransport`: MTU exchange, chunking, reassembly) under the real protocol,
in one process. The shipped ``dysan`` knows no such scheme.
"""

from __future__ import annotations

import contextlib
import queue
import threading

from ..transport import ReconnectPolicy, Transport, TransportError, parse_spec
from ..transport.ble_nus import DEFAULT_MTU_REQUEST

SCHEME = "virtual-ble"
"""The ``--port`` scheme of a bridge's peripheral: ``virtual-ble:NAME[?mtu=N]``."""

_WORLDS: list = []
_LOCK = threading.Lock()


def open_virtual(spec: str, *, policy: ReconnectPolicy | None = None, timeout: float = 10.0,
                 on_event=None) -> Transport:
    """The open BLE transport of ``virtual-ble:NAME[?mtu=N]`` through the newest bridge's virtual world."""
    scheme, _, rest = spec.partition(":")
    if scheme.lower() != SCHEME:
        raise TransportError(f"link {spec!r}: not a {SCHEME}: link")
    link = parse_spec("ble:" + rest)
    unknown = sorted(set(link.options) - {"mtu"})
    if unknown:
        raise TransportError(f"link {spec!r}: unknown option(s) {', '.join(unknown)} (known: mtu)")
    with _LOCK:
        worlds = list(_WORLDS)
    if not worlds:
        raise TransportError(f"link {spec!r}: no virtual BLE world in this process (only an open UartBleBridge "
                             "creates one)")
    try:
        mtu = int(link.options.get("mtu", DEFAULT_MTU_REQUEST))
    except ValueError:
        raise TransportError(f"link {spec!r}: option mtu is not an integer") from None
    t = worlds[-1].transport(link.target, mtu=mtu, policy=policy, on_event=on_event, connect_timeout=timeout)
    t.open()
    return t


class UartBleBridge:
    """Bridges a virtual NUS peripheral named ``name`` to the UART at ``uart_url`` (see the module doc).

    ``max_mtu``: the largest ATT MTU the peripheral accepts (a small one forces many chunks per frame).
    Use as a context manager; while open, ``virtual-ble:NAME`` (:attr:`spec`) reaches the device.
    """

    def __init__(self, uart_url: str, name: str = "DySan-Virtual", *, max_mtu: int = 247) -> None:
        self.uart_url = uart_url
        self.name = name
        self.max_mtu = max_mtu
        self.world = None
        self.peripheral = None
        self.uart: Transport | None = None
        self._to_uart: queue.Queue[bytes | None] = queue.Queue()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.bytes_to_device = 0
        self.bytes_from_device = 0

    def start(self) -> UartBleBridge:
        from ..tools.link import open_link
        from ..transport import NO_RECONNECT
        from .virtual_nus import VirtualBle

        self.uart = open_link(self.uart_url, policy=NO_RECONNECT)
        self.world = VirtualBle()
        self.peripheral = self.world.add_peripheral(self.name, max_mtu=self.max_mtu, on_rx=self._to_uart.put)
        for target, label in ((self._pump_to_ble, "uart->ble"), (self._pump_to_uart, "ble->uart")):
            th = threading.Thread(target=target, name=f"dysan-bridge {label}", daemon=True)
            th.start()
            self._threads.append(th)
        with _LOCK:
            _WORLDS.append(self.world)
        return self

    def _pump_to_ble(self) -> None:
        assert self.uart is not None and self.peripheral is not None
        while not self._stop.is_set():
            try:
                data = self.uart.read(4096, timeout=0.1)
            except TransportError:
                return
            if data:
                self.bytes_from_device += len(data)
                self.peripheral.notify(data)

    def _pump_to_uart(self) -> None:
        assert self.uart is not None
        while True:
            data = self._to_uart.get()
            if data is None or self._stop.is_set():
                return
            try:
                self.uart.write(data)
            except TransportError:
                return
            self.bytes_to_device += len(data)

    def close(self) -> None:
        self._stop.set()
        self._to_uart.put(None)
        with _LOCK:
            if self.world in _WORLDS:
                _WORLDS.remove(self.world)
        for th in self._threads:
            th.join(timeout=2.0)
        if self.uart is not None:
            with contextlib.suppress(Exception):
                self.uart.close()
        if self.world is not None:
            self.world.close()

    @property
    def spec(self) -> str:
        """The ``--port`` spec that reaches this bridge's peripheral (append ``?mtu=N`` to request an MTU)."""
        return f"{SCHEME}:{self.name}"

    def __enter__(self) -> UartBleBridge:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc: object) -> None:
        self.close()

