"""Bumble backend for the NUS transport: Bumble is a pure-Python BLE host stack.

Two uses: tests drive a Bumble central over an in-process virtual link (no radio, no kernel Bluetooth;
see `dysan.testing.virtual_nus`), and on a machine without a usable OS stack Bumble can drive a USB HCI dongle
directly (`ble:NAME?backend=bumble&hci=usb:0`).

The central always scans before connecting, like bleak does: it lets `ble:NAME` work, and it avoids
issuing an LE Create Connection to a device that is not advertising (Bumble's virtual controller
cannot cancel such a pending connection).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from bumble.core import UUID, AdvertisingData, PhysicalTransport
from bumble.device import Advertisement, Connection, Device, Peer
from bumble.gatt_client import CharacteristicProxy
from bumble.hci import Address

from dysan.transport.base import TransportError
from dysan.transport.ble_nus import (
    ATT_DEFAULT_MTU,
    NUS_RX_CHAR_UUID,
    NUS_SERVICE_UUID,
    NUS_TX_CHAR_UUID,
    BleDeviceInfo,
    is_address,
)

_NUS = UUID(NUS_SERVICE_UUID)
_NAME_TYPES = (AdvertisingData.COMPLETE_LOCAL_NAME, AdvertisingData.SHORTENED_LOCAL_NAME)
_UUID128_TYPES = (AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
                  AdvertisingData.INCOMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS)
HOST_ADDRESS = "C0:D5:A0:00:00:01"  # static random address of the host when Bumble owns the HCI dongle


def _bare_address(address: Any) -> str:
    """`F0:..:F0/P` -> `F0:..:F0` (Bumble appends /P to public addresses)."""
    return str(address).split("/")[0].upper()


def _adv_name(adv: Advertisement) -> str:
    for ad_type in _NAME_TYPES:
        value = adv.data.get(ad_type)
        if value:
            return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return ""


def _adv_has_nus(adv: Advertisement) -> bool:
    for ad_type in _UUID128_TYPES:
        for uuid in adv.data.get_all(ad_type) or []:
            items = uuid if isinstance(uuid, list) else [uuid]
            if any(str(u).lower() == NUS_SERVICE_UUID for u in items):
                return True
    return False


class _BumbleLink:
    def __init__(self, connection: Connection, peer: Peer, rx: CharacteristicProxy[bytes],
                 tx: CharacteristicProxy[bytes], mtu: int) -> None:
        self._connection = connection
        self._peer = peer
        self._rx = rx
        self._tx = tx
        self._mtu = mtu

    @property
    def mtu(self) -> int:
        return self._mtu

    async def subscribe(self, on_data: Callable[[bytes], None]) -> None:
        await self._peer.subscribe(self._tx, lambda value: on_data(bytes(value)))

    async def write(self, data: bytes, *, with_response: bool) -> None:
        await self._peer.write_value(self._rx, data, with_response=with_response)

    async def disconnect(self) -> None:
        if self._connection.handle in self._connection.device.connections:
            await self._connection.disconnect()


class BumbleBackend:
    """A NUS central on a Bumble `Device`: given (tests: already powered on, on a virtual link), or
    created from an HCI transport spec that Bumble opens itself (`usb:0`, `serial:/dev/ttyUSB0,1000000`)."""

    name = "bumble"

    def __init__(self, device: Device | None = None, *, hci: str | None = None) -> None:
        if (device is None) == (hci is None):
            raise ValueError("give exactly one of device or hci")
        self._device = device
        self._hci_spec = hci
        self._hci: Any = None  # bumble.transport.Transport when we opened it

    async def _ensure_device(self) -> Device:
        if self._device is not None:
            return self._device
        from bumble.transport import open_transport

        assert self._hci_spec is not None
        try:
            self._hci = await open_transport(self._hci_spec)
        except Exception as exc:
            raise TransportError(f"cannot open Bluetooth HCI {self._hci_spec}: {exc}") from exc
        device = Device.with_hci("dysan-host", Address(HOST_ADDRESS), self._hci.source, self._hci.sink)
        await device.power_on()
        self._device = device
        return device

    async def _find(self, device: Device, target: str, timeout: float) -> Advertisement | None:
        """First connectable advertisement from `target` (an address or an advertised name)."""
        want_address = _bare_address(target) if is_address(target) else None
        found: asyncio.Future[Advertisement] = asyncio.get_running_loop().create_future()

        def on_advertisement(adv: Advertisement) -> None:
            if found.done() or not adv.is_connectable:
                return
            if (want_address is not None and _bare_address(adv.address) == want_address) or (
                    want_address is None and _adv_name(adv) == target):
                found.set_result(adv)

        device.on(device.EVENT_ADVERTISEMENT, on_advertisement)
        await device.start_scanning(active=False, filter_duplicates=False)
        try:
            return await asyncio.wait_for(found, timeout)
        except TimeoutError:
            return None
        finally:
            device.remove_listener(device.EVENT_ADVERTISEMENT, on_advertisement)
            await device.stop_scanning()

    async def connect(self, target: str, *, mtu: int, timeout: float,
                      on_disconnect: Callable[[], None]) -> _BumbleLink:
        device = await self._ensure_device()
        adv = await self._find(device, target, timeout)
        if adv is None:
            raise TransportError(f"BLE device {target} not found within {timeout:g} s (is it advertising?)")
        connection = await device.connect(adv.address, transport=PhysicalTransport.LE, timeout=timeout)
        connection.on(connection.EVENT_DISCONNECTION, lambda *_: on_disconnect())
        try:
            peer = Peer(connection)
            negotiated = await peer.request_mtu(mtu) if mtu > ATT_DEFAULT_MTU else ATT_DEFAULT_MTU
            services = await peer.discover_service(_NUS)
            if not services:
                raise TransportError(f"BLE device {target} does not expose the Nordic UART Service")
            characteristics = await services[0].discover_characteristics()
            by_uuid = {str(c.uuid).lower(): c for c in characteristics}
            rx, tx = by_uuid.get(NUS_RX_CHAR_UUID), by_uuid.get(NUS_TX_CHAR_UUID)
            if rx is None or tx is None:
                raise TransportError(f"BLE device {target}: NUS service lacks its RX/TX characteristics")
        except BaseException:
            with contextlib.suppress(Exception):
                await connection.disconnect()
            raise
        return _BumbleLink(connection, peer, rx, tx, negotiated)

    async def scan(self, timeout: float) -> list[BleDeviceInfo]:
        device = await self._ensure_device()
        seen: dict[str, BleDeviceInfo] = {}

        def on_advertisement(adv: Advertisement) -> None:
            address = _bare_address(adv.address)
            previous = seen.get(address)
            name = _adv_name(adv) or (previous.name if previous else "")
            has_nus = _adv_has_nus(adv) or (previous.has_nus if previous else False)
            seen[address] = BleDeviceInfo(address, name, adv.rssi, has_nus)

        device.on(device.EVENT_ADVERTISEMENT, on_advertisement)
        await device.start_scanning(active=True, filter_duplicates=False)
        try:
            await asyncio.sleep(timeout)
        finally:
            device.remove_listener(device.EVENT_ADVERTISEMENT, on_advertisement)
            await device.stop_scanning()
        return list(seen.values())

    async def aclose(self) -> None:
        if self._hci is not None:
            hci, self._hci = self._hci, None
            self._device = None
            await hci.close()
