"""A virtual BLE world: Bumble NUS peripherals and a Bumble central on an in-process link.

Bumble's `Controller` is a software link-layer, and `LocalLink` connects several of them inside one
asyncio loop: advertising, connections, ATT and notifications run over real HCI/L2CAP/ATT code paths,
with no radio and no kernel Bluetooth. This is how the BLE transport is tested (MTU exchange, chunking,
reassembly, disconnect, reconnect, re-subscription all happen for real), and how the device side can
be emulated without hardware: `VirtualNusPeripheral` hands every RX write to a callback and sends
whatever `notify()` is given as TX notifications, so bridging it to the emulated firmware's UART
(QEMU socket://) is a reader thread calling `notify()` plus an `on_rx` that queues bytes to the socket.

Limitation of Bumble's virtual controller (0.0.236): LE Create Connection Cancel is a no-op, so a
connect to a device that is not advertising would hang; `BumbleBackend` scans first, which avoids it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from bumble import gatt
from bumble.controller import Controller
from bumble.core import UUID, AdvertisingData
from bumble.device import Connection, Device
from bumble.hci import Address
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport.common import AsyncPipeSink

from dysan.transport.ble_bumble import BumbleBackend
from dysan.transport.ble_nus import (
    DEFAULT_MTU_REQUEST,
    NUS_RX_CHAR_UUID,
    NUS_SERVICE_UUID,
    NUS_TX_CHAR_UUID,
    BleNusTransport,
    split_for_mtu,
)
from dysan.transport.loop_thread import LoopThread

RxCallback = Callable[[bytes], None]


def _advertising_data(name: str) -> bytes:
    """Flags + complete local name, + the NUS UUID when it fits in the 31-byte legacy payload."""
    entries: list[tuple[int, bytes]] = [
        (AdvertisingData.FLAGS, bytes([0x06])),  # LE General Discoverable, BR/EDR not supported
        (AdvertisingData.COMPLETE_LOCAL_NAME, name.encode()),
    ]
    uuid = (AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS, bytes(UUID(NUS_SERVICE_UUID)))
    if len(bytes(AdvertisingData([*entries, uuid]))) <= 31:
        entries.append(uuid)
    return bytes(AdvertisingData(entries))


def _new_device(link: LocalLink, name: str, address: str) -> Device:
    """A Bumble host + virtual controller on `link` (call on the loop: Controller needs it running)."""
    controller = Controller(name, link=link, public_address=address)
    return Device(name=name, address=Address(address), host=Host(controller, AsyncPipeSink(controller)))


class VirtualNusPeripheral:
    """A NUS GATT server that advertises `name` and forwards RX writes to `on_rx`.

    The public methods are thread-safe (they hop onto the loop). `notify()` and `disconnect()` go
    through one FIFO, so "send these bytes, then drop the link" happens in exactly that order.
    `on_rx(bytes)` runs on the loop thread once per ATT write: it must not block.
    """

    def __init__(self, world: VirtualBle, name: str, address: str, *, max_mtu: int = 517,
                 on_rx: RxCallback | None = None) -> None:
        self.world = world
        self.name = name
        self.address = address
        self.max_mtu = max_mtu
        self.on_rx = on_rx
        self.device: Device | None = None
        self._tx: gatt.Characteristic[bytes] | None = None
        self._connection: Connection | None = None
        self._subscribed = False
        self._ops: asyncio.Queue[tuple[str, Any]] | None = None
        self._sender: asyncio.Task[None] | None = None
        self._cond = threading.Condition()
        self.subscriptions = 0  # CCCD enables seen, over all connections
        self.connections = 0
        self.notified_bytes = 0
        self.dropped_bytes = 0  # notify() while nobody was subscribed, or cut by a disconnect
        self.writes: list[int] = []  # length of every RX write, in arrival order

    # -- setup (loop thread) ----------------------------------------------------------------------------

    async def start(self) -> None:
        device = _new_device(self.world.link, self.name, self.address)
        rx = gatt.Characteristic(
            NUS_RX_CHAR_UUID,
            gatt.Characteristic.Properties.WRITE | gatt.Characteristic.Properties.WRITE_WITHOUT_RESPONSE,
            gatt.Characteristic.WRITEABLE,
            gatt.CharacteristicValue(write=self._on_write),
        )
        self._tx = gatt.Characteristic(NUS_TX_CHAR_UUID, gatt.Characteristic.Properties.NOTIFY,
                                       gatt.Characteristic.READABLE, b"")
        device.add_service(gatt.Service(NUS_SERVICE_UUID, [rx, self._tx]))
        device.gatt_server.max_mtu = self.max_mtu
        device.on(device.EVENT_CONNECTION, self._on_connection)
        device.gatt_server.on(device.gatt_server.EVENT_CHARACTERISTIC_SUBSCRIPTION, self._on_subscription)
        self.device = device
        self._ops = asyncio.Queue()
        self._sender = asyncio.get_running_loop().create_task(self._send_loop())
        await device.power_on()
        await self._advertise(True)

    async def _advertise(self, on: bool) -> None:
        assert self.device is not None
        if on:
            await self.device.start_advertising(
                auto_restart=True, advertising_data=_advertising_data(self.name),
                advertising_interval_min=20, advertising_interval_max=20)
        else:
            await self.device.stop_advertising()

    def _on_connection(self, connection: Connection) -> None:
        self._connection = connection
        self._subscribed = False
        connection.on(connection.EVENT_DISCONNECTION, lambda *_: self._on_disconnection(connection))
        with self._cond:
            self.connections += 1
            self._cond.notify_all()

    def _on_disconnection(self, connection: Connection) -> None:
        if self._connection is connection:
            self._connection = None
            self._subscribed = False

    def _on_subscription(self, connection: Connection, characteristic: Any, notify: bool,
                         indicate: bool) -> None:
        if connection is not self._connection or characteristic is not self._tx:
            return
        self._subscribed = notify
        if notify:
            with self._cond:
                self.subscriptions += 1
                self._cond.notify_all()

    def _on_write(self, connection: Connection, value: bytes) -> None:
        data = bytes(value)
        self.writes.append(len(data))
        if self.on_rx is not None:
            self.on_rx(data)

    async def _send_loop(self) -> None:
        assert self._ops is not None and self.device is not None and self._tx is not None
        while True:
            op, arg = await self._ops.get()
            if op == "data":
                await self._send(arg)
            elif op == "disconnect":
                connection = self._connection
                if connection is not None:
                    await connection.disconnect()
            elif op == "advertise":
                await self._advertise(arg)
            elif op == "barrier" and not arg.done():
                arg.set_result(None)

    async def _send(self, data: bytes) -> None:
        assert self.device is not None and self._tx is not None
        connection = self._connection
        if connection is None or not self._subscribed:
            self.dropped_bytes += len(data)
            return
        sent = 0
        for chunk in split_for_mtu(data, connection.att_mtu):
            if self._connection is not connection or not self._subscribed:
                self.dropped_bytes += len(data) - sent
                return
            await self.device.notify_subscriber(connection, self._tx, chunk)
            sent += len(chunk)
            self.notified_bytes += len(chunk)

    # -- thread-safe API --------------------------------------------------------------------------------

    def _post(self, op: str, arg: Any = None) -> None:
        assert self._ops is not None
        self.world.loop.call_soon(self._ops.put_nowait, (op, arg))

    def notify(self, data: bytes) -> None:
        """Queue `data` for TX notifications (chunked to the connection's MTU - 3); returns at once.

        Bytes queued while no central is subscribed are dropped and counted, as NUS firmware does.
        """
        if data:
            self._post("data", bytes(data))

    def disconnect(self) -> None:
        """Drop the current connection after everything queued before it (range loss, reset)."""
        self._post("disconnect")

    def set_advertising(self, on: bool) -> None:
        """Stop (device "off") or restart advertising, in order with notify()/disconnect()."""
        self._post("advertise", on)

    def flush(self, timeout: float = 5.0) -> None:
        """Block until every operation queued so far has been handed to the stack."""

        async def barrier() -> None:
            done = asyncio.get_running_loop().create_future()
            self._post("barrier", done)
            await done

        self.world.loop.run(barrier(), timeout, f"flushing {self.name}")

    def wait_subscriptions(self, count: int, timeout: float = 5.0) -> bool:
        """Wait until `count` subscriptions (over all connections so far) have been seen."""
        with self._cond:
            return self._cond.wait_for(lambda: self.subscriptions >= count, timeout)

    @property
    def connected(self) -> bool:
        return self._connection is not None

    @property
    def mtu(self) -> int:
        """ATT MTU of the current connection (0 when none)."""
        connection = self._connection
        return connection.att_mtu if connection is not None else 0


class VirtualBle:
    """One loop thread + one `LocalLink`, with factories for peripherals, centrals and transports.

    Use as a context manager; everything lives on `self.loop` and dies with it. Bridging the emulated
    firmware's UART to BLE (for an end-to-end `--link ble:` demo) would look like::

        with VirtualBle() as world:
            uart = open_transport(qemu.url)                         # socket://127.0.0.1:PORT
            to_uart: queue.Queue[bytes] = queue.Queue()             # on_rx must not block the loop
            device = world.add_peripheral("DySan-QEMU", on_rx=to_uart.put)
            # thread 1: while True: device.notify(uart.read())      (UART TX -> NUS notifications)
            # thread 2: while True: uart.write(to_uart.get())       (NUS RX writes -> UART RX)
            link = world.transport("DySan-QEMU")                    # the host's BleNusTransport
    """

    def __init__(self) -> None:
        self.loop = LoopThread("dysan-virtual-ble").start()
        self.link = LocalLink()
        self._next_address = 1
        self._centrals: list[Device] = []

    def _address(self, prefix: str) -> str:
        n = self._next_address
        self._next_address += 1
        return f"{prefix}:00:00:00:{n >> 8:02X}:{n & 0xFF:02X}"

    def add_peripheral(self, name: str = "DySan-Virtual", *, max_mtu: int = 517,
                       on_rx: RxCallback | None = None) -> VirtualNusPeripheral:
        peripheral = VirtualNusPeripheral(self, name, self._address("F0"), max_mtu=max_mtu, on_rx=on_rx)
        self.loop.run(peripheral.start(), 10.0, f"starting virtual peripheral {name}")
        return peripheral

    def central_backend(self) -> BumbleBackend:
        """A powered-on Bumble central on this link, as a `NusBackend`."""

        async def make() -> Device:
            device = _new_device(self.link, "dysan-host", self._address("C0"))
            await device.power_on()
            return device

        device = self.loop.run(make(), 10.0, "starting virtual central")
        self._centrals.append(device)
        return BumbleBackend(device)

    def transport(self, target: str, *, mtu: int = DEFAULT_MTU_REQUEST, **kwargs: Any) -> BleNusTransport:
        """A (not yet opened) `BleNusTransport` to `target` through a fresh virtual central."""
        return BleNusTransport(target, self.central_backend(), mtu=mtu, loop=self.loop, **kwargs)

    def close(self) -> None:
        self.loop.stop()

    def __enter__(self) -> VirtualBle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
