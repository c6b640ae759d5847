"""bleak backend for the NUS transport: the desktop OS Bluetooth stacks (BlueZ, CoreBluetooth, WinRT).

bleak cannot request an ATT MTU: the OS negotiates it. We read what was negotiated; on BlueZ `mtu_size`
reports 23 until the MTU is "acquired" (bleak's own `mtu_size.py` example calls the backend's
`_acquire_mtu()`), so we do that when available and fall back to 23 - slower, never wrong. For
write-without-response the payload is also capped by the characteristic's
`max_write_without_response_size`, which the OS may report below MTU - 3.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from dysan.transport.base import TransportError
from dysan.transport.ble_nus import (
    ATT_DEFAULT_MTU,
    ATT_WRITE_HEADER,
    NUS_RX_CHAR_UUID,
    NUS_SERVICE_UUID,
    NUS_TX_CHAR_UUID,
    BleDeviceInfo,
    is_address,
)


class _BleakLink:
    def __init__(self, client: Any, rx: Any, tx: Any, mtu: int) -> None:
        self._client = client
        self._rx = rx
        self._tx = tx
        self._mtu = mtu

    @property
    def mtu(self) -> int:
        return self._mtu

    async def subscribe(self, on_data: Callable[[bytes], None]) -> None:
        await self._client.start_notify(self._tx, lambda _char, data: on_data(bytes(data)))

    async def write(self, data: bytes, *, with_response: bool) -> None:
        await self._client.write_gatt_char(self._rx, data, response=with_response)

    async def disconnect(self) -> None:
        await self._client.disconnect()


class BleakBackend:
    """NUS central through bleak. `scanner`/`client` default to bleak's classes (injectable)."""

    name = "bleak"

    def __init__(self, scanner: Any = None, client: Any = None, with_response: bool = True) -> None:
        if scanner is None or client is None:
            from bleak import BleakClient, BleakScanner

            scanner = scanner or BleakScanner
            client = client or BleakClient
        self._scanner = scanner
        self._client_cls = client
        self._with_response = with_response

    async def connect(self, target: str, *, mtu: int, timeout: float,
                      on_disconnect: Callable[[], None]) -> _BleakLink:
        if is_address(target):
            device = await self._scanner.find_device_by_address(target, timeout=timeout)
        else:
            device = await self._scanner.find_device_by_name(target, timeout=timeout)
        if device is None:
            raise TransportError(f"BLE device {target} not found within {timeout:g} s (is it advertising?)")
        client = self._client_cls(device, disconnected_callback=lambda _client: on_disconnect(),
                                  services=[NUS_SERVICE_UUID], timeout=timeout)
        await client.connect()
        try:
            service = client.services.get_service(NUS_SERVICE_UUID)
            if service is None:
                raise TransportError(f"BLE device {target} does not expose the Nordic UART Service")
            rx = service.get_characteristic(NUS_RX_CHAR_UUID)
            tx = service.get_characteristic(NUS_TX_CHAR_UUID)
            if rx is None or tx is None:
                raise TransportError(f"BLE device {target}: NUS service lacks its RX/TX characteristics")
            negotiated = min(await self._negotiated_mtu(client), mtu)
            if not self._with_response:
                cap = rx.max_write_without_response_size + ATT_WRITE_HEADER
                negotiated = min(negotiated, max(cap, ATT_DEFAULT_MTU))
        except BaseException:
            with contextlib.suppress(Exception):
                await client.disconnect()
            raise
        return _BleakLink(client, rx, tx, negotiated)

    @staticmethod
    async def _negotiated_mtu(client: Any) -> int:
        backend = getattr(client, "_backend", None)
        acquire = getattr(backend, "_acquire_mtu", None)  # BlueZ only; see the module docstring
        if acquire is not None:
            with contextlib.suppress(Exception):
                await acquire()
        try:
            value = int(client.mtu_size)
        except Exception:
            return ATT_DEFAULT_MTU
        return max(value, ATT_DEFAULT_MTU)

    async def scan(self, timeout: float) -> list[BleDeviceInfo]:
        found = await self._scanner.discover(timeout=timeout, return_adv=True)
        devices = []
        for device, adv in found.values():
            uuids = {u.lower() for u in (getattr(adv, "service_uuids", None) or [])}
            devices.append(BleDeviceInfo(
                address=str(device.address),
                name=adv.local_name or device.name or "",
                rssi=getattr(adv, "rssi", None),
                has_nus=NUS_SERVICE_UUID in uuids,
            ))
        return devices

    async def aclose(self) -> None:
        """Nothing to release: bleak holds no resources between connections."""
