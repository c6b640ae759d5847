"""BLE NUS transport over a real (virtual) GATT link: Bumble peripheral + Bumble central, no radio.

Everything the transport does for real hardware happens here over Bumble's HCI/L2CAP/ATT code: MTU
exchange, chunked ATT writes, multi-notification reassembly, disconnects, reconnect + re-subscription.
"""

from __future__ import annotations

import asyncio
import math
import os
import threading
import time
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dysan.testing.virtual_nus import VirtualBle, VirtualNusPeripheral
from dysan.transport import LinkEvent, LinkLostError, ReconnectPolicy, TransportError, open_transport
from dysan.transport.base import parse_spec
from dysan.transport.ble_bleak import BleakBackend
from dysan.transport.ble_nus import (
    NUS_RX_CHAR_UUID,
    NUS_SERVICE_UUID,
    NUS_TX_CHAR_UUID,
    BleNusTransport,
    scan,
    split_for_mtu,
)
from dysan.transport.buffer import ByteBuffer

pytestmark = pytest.mark.timeout(30)

FAST = ReconnectPolicy(max_attempts=20, initial_delay=0.01, max_delay=0.05)
FRAME = bytes((i * 7 + 3) % 256 for i in range(1600))  # a 1.6 KB "frame"


@pytest.fixture
def world() -> Iterator[VirtualBle]:
    with VirtualBle() as w:
        yield w


class Recorder:
    """Collects link events and lets a test wait for one (events arrive on the BLE loop thread)."""

    def __init__(self) -> None:
        self.events: list[LinkEvent] = []
        self._cond = threading.Condition()

    def __call__(self, event: LinkEvent) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def wait_for(self, kind: str, count: int = 1, timeout: float = 10.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.kinds.count(kind) >= count, timeout)

    @property
    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]


class Sink:
    """The peripheral's RX side: every write, in order, with a wait for a byte count."""

    def __init__(self) -> None:
        self.data = bytearray()
        self._cond = threading.Condition()

    def __call__(self, chunk: bytes) -> None:
        with self._cond:
            self.data += chunk
            self._cond.notify_all()

    def wait_len(self, n: int, timeout: float = 10.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: len(self.data) >= n, timeout)


def read_until(link: BleNusTransport, done, timeout: float = 10.0) -> bytes:
    out = bytearray()
    deadline = time.monotonic() + timeout
    while not done(out) and time.monotonic() < deadline:
        out += link.read(65536, timeout=max(0.0, deadline - time.monotonic()))
    return bytes(out)


def wait_until(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.005)
    return True


# -- pure chunking --------------------------------------------------------------------------------------


def test_split_for_mtu() -> None:
    assert [len(c) for c in split_for_mtu(FRAME, 23)] == [20] * 80
    assert [len(c) for c in split_for_mtu(FRAME, 247)] == [244] * 6 + [136]
    assert b"".join(split_for_mtu(FRAME, 185)) == FRAME
    assert split_for_mtu(b"", 247) == []
    with pytest.raises(ValueError):
        split_for_mtu(FRAME, 22)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 64), st.lists(st.binary(max_size=40), max_size=30), st.integers(1, 50))
def test_byte_buffer_keeps_a_contiguous_prefix(capacity: int, feeds: list[bytes], max_read: int) -> None:
    """Model check: with nobody reading, the buffer holds exactly the first `capacity` bytes of the
    stream and counts every byte past it; reads hand them out in order, at most `max_read` at a time."""
    buf = ByteBuffer(capacity)
    stream = b"".join(feeds)
    for piece in feeds:
        buf.feed(piece)
    kept = stream[:capacity]
    assert buf.overflow_bytes == len(stream) - len(kept)
    assert buf.overflow_events == sum(1 for i in range(len(feeds))
                                      if feeds[i] and len(b"".join(feeds[:i + 1])) > capacity)
    out = b""
    while chunk := buf.read(max_read, timeout=0):
        assert len(chunk) <= max_read
        out += chunk
    assert out == kept
    buf.fail(TransportError("gone"))
    with pytest.raises(TransportError, match="gone"):
        buf.read(1, timeout=0)


# -- MTU + chunking over the link ------------------------------------------------------------------------


@pytest.mark.parametrize(("request_mtu", "peripheral_max", "expected", "with_response"), [
    (23, 517, 23, True),
    (247, 517, 247, True),
    (247, 185, 185, True),  # the device grants less than asked
    (247, 517, 247, False),  # write-without-response path
])
def test_mtu_negotiation_and_chunking(world: VirtualBle, request_mtu: int, peripheral_max: int,
                                      expected: int, with_response: bool) -> None:
    sink = Sink()
    peripheral = world.add_peripheral("DySan-MTU", max_mtu=peripheral_max, on_rx=sink)
    with world.transport("DySan-MTU", mtu=request_mtu, with_response=with_response) as link:
        assert link.mtu == expected
        assert peripheral.mtu == expected  # both ends agree on the exchanged MTU
        link.write(FRAME)
        if with_response:
            assert len(sink.data) == len(FRAME)  # acknowledged writes: all there when write() returns
        assert sink.wait_len(len(FRAME))
        assert bytes(sink.data) == FRAME
        assert max(peripheral.writes) == expected - 3
        assert len(peripheral.writes) == math.ceil(len(FRAME) / (expected - 3))
        assert link.stats.tx_bytes == len(FRAME)


def test_concurrent_writes_do_not_interleave(world: VirtualBle) -> None:
    sink = Sink()
    world.add_peripheral("DySan-W", on_rx=sink)
    frames = [bytes([k]) * 700 for k in range(1, 7)]
    with world.transport("DySan-W", mtu=23) as link:
        threads = [threading.Thread(target=link.write, args=(f,)) for f in frames]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert sink.wait_len(sum(map(len, frames)))
    data = bytes(sink.data)
    # Each 700-byte write arrives contiguous (35 chunks at MTU 23), whatever the order of the calls.
    runs = [data[i:i + 700] for i in range(0, len(data), 700)]
    assert sorted(runs) == sorted(frames)


# -- notifications -> ordered stream ---------------------------------------------------------------------


def test_notifications_reassembled_in_order(world: VirtualBle) -> None:
    peripheral = world.add_peripheral("DySan-N")
    pieces = [os.urandom(n) for n in (1, 19, 20, 21, 40, 244, 245, 1000, 1, 3000)]
    total = b"".join(pieces)
    with world.transport("DySan-N", mtu=23) as link:
        for piece in pieces:
            peripheral.notify(piece)
        got = read_until(link, lambda b: len(b) >= len(total))
        assert got == total
        assert peripheral.notified_bytes == len(total)
        assert link.read(10, timeout=0.05) == b""
        stats = link.stats
        assert stats.rx_bytes == len(total) and stats.rx_overflow_bytes == 0


# -- disconnect mid-stream, reconnect, re-subscribe -------------------------------------------------------


def test_disconnect_mid_stream_then_reconnect(world: VirtualBle) -> None:
    """Bytes handed to the stack before the drop may be lost (a tail of `before`), never duplicated or
    reordered; after the reconnect the transport re-subscribes and the new stream arrives whole."""
    peripheral = world.add_peripheral("DySan-R")
    rec = Recorder()
    before = bytes(i % 251 for i in range(3000))
    while_down = b"X" * 100
    after = bytes((200 - i) % 256 for i in range(2000))
    with world.transport("DySan-R", mtu=247, policy=FAST, on_event=rec, connect_timeout=0.3) as link:
        link.add_listener(lambda event: 1 / 0)  # a broken status printer must not break reconnection
        peripheral.notify(before)
        peripheral.set_advertising(False)  # the device goes out of range...
        peripheral.disconnect()
        peripheral.notify(while_down)  # ...and what it sends meanwhile reaches nobody
        peripheral.flush()
        assert rec.wait_for("reconnect_failed")  # the central is retrying, with backoff
        assert link.is_open and not link.connected
        peripheral.set_advertising(True)  # back in range
        assert rec.wait_for("reconnected")
        assert peripheral.wait_subscriptions(2)  # re-subscribed on the new connection
        peripheral.notify(after)
        got = read_until(link, lambda b: b.endswith(after))
        assert got.endswith(after)
        head = got[:-len(after)]
        # A prefix of `before` (so nothing reordered, duplicated, nor anything sent while down).
        assert before.startswith(head)
        assert peripheral.dropped_bytes == len(while_down)
        assert link.read(10, timeout=0.05) == b""
        assert link.generation == 2 and link.stats.reconnects == 1 and link.stats.rx_stale_bytes == 0
        assert rec.kinds[:2] == ["connected", "disconnected"] and rec.kinds[-1] == "reconnected"


def test_write_interrupted_by_disconnect_is_not_spliced(world: VirtualBle) -> None:
    """A write cut by a disconnect delivers a prefix and drops the rest; the next write waits for the
    reconnect and arrives whole - the two are never spliced into one stream across connections."""
    sink = Sink()
    holder: dict[str, VirtualNusPeripheral] = {}

    def on_rx(chunk: bytes) -> None:
        sink(chunk)
        if len(holder["p"].writes) == 3:
            holder["p"].disconnect()  # the link drops while the host is mid-frame

    holder["p"] = peripheral = world.add_peripheral("DySan-X", on_rx=on_rx)
    rec = Recorder()
    nxt = b"\x00next-frame\x00"
    with world.transport("DySan-X", mtu=23, policy=FAST, on_event=rec) as link:
        link.write(FRAME)  # returns normally although the link dropped under it
        assert rec.wait_for("disconnected")
        dropped = link.stats.tx_dropped
        assert 0 < dropped < len(FRAME)
        link.write(nxt)  # waits for the reconnection
        assert sink.wait_len(1) and rec.wait_for("reconnected")
        assert wait_until(lambda: bytes(sink.data).endswith(nxt))
        received = bytes(sink.data)
        head = received[:-len(nxt)]
        assert FRAME.startswith(head) and len(head) < len(FRAME)
        # What the peer got plus what the host counted as dropped covers the frame, at most one chunk
        # (the one in flight at the drop, fate unknown) counted on both sides.
        assert len(FRAME) <= len(head) + dropped <= len(FRAME) + 20
        assert peripheral.subscriptions == 2


def test_gives_up_when_device_stays_away(world: VirtualBle) -> None:
    peripheral = world.add_peripheral("DySan-G")
    rec = Recorder()
    policy = ReconnectPolicy(max_attempts=2, initial_delay=0.01, max_delay=0.01)
    link = world.transport("DySan-G", policy=policy, on_event=rec, connect_timeout=0.2)
    link.open()
    peripheral.notify(b"last words")
    assert read_until(link, lambda b: len(b) >= 10) == b"last words"
    peripheral.set_advertising(False)
    peripheral.disconnect()
    with pytest.raises(LinkLostError, match="gave up after 2 reconnect attempts") as err:
        link.read(10, timeout=10)
    assert "\n" not in str(err.value)
    assert not link.is_open
    with pytest.raises(LinkLostError):
        link.write(b"x")
    assert rec.kinds == ["connected", "disconnected", "reconnect_failed", "reconnect_failed", "gave_up"]
    link.close()


# -- receive buffer overflow ------------------------------------------------------------------------------


def test_overflow_counter(world: VirtualBle) -> None:
    peripheral = world.add_peripheral("DySan-O")
    payload = bytes(range(256)) * 4  # 1024 bytes into a 256-byte buffer nobody reads
    with world.transport("DySan-O", rx_capacity=256) as link:
        peripheral.notify(payload)
        assert wait_until(lambda: link.stats.rx_overflow_bytes == 1024 - 256)
        assert link.read(4096, timeout=1) == payload[:256]  # the oldest bytes survive, contiguous
        assert link.read(4096, timeout=0.05) == b""
        assert link.stats.rx_overflow_events >= 1
        peripheral.notify(b"recovered")  # room again: the stream continues
        assert read_until(link, lambda b: len(b) >= 9) == b"recovered"


# -- open errors, close ----------------------------------------------------------------------------------


def test_unknown_device_fails_fast_with_one_line(world: VirtualBle) -> None:
    world.add_peripheral("DySan-A")
    link = world.transport("DySan-Nope", connect_timeout=0.3)
    start = time.monotonic()
    with pytest.raises(TransportError) as err:
        link.open()
    assert time.monotonic() - start < 5
    assert str(err.value) == "BLE device DySan-Nope not found within 0.3 s (is it advertising?)"
    assert not link.is_open


def test_device_without_nus_is_rejected(world: VirtualBle) -> None:
    from bumble.core import AdvertisingData

    from dysan.testing.virtual_nus import _new_device

    async def plain_device() -> None:
        device = _new_device(world.link, "Other", "F0:00:00:00:AA:01")
        await device.power_on()
        ad = bytes(AdvertisingData([(AdvertisingData.COMPLETE_LOCAL_NAME, b"Other")]))
        await device.start_advertising(advertising_data=ad, advertising_interval_min=20,
                                       advertising_interval_max=20)

    world.loop.run(plain_device(), 10, "plain device")
    link = world.transport("Other", connect_timeout=1)
    with pytest.raises(TransportError, match="does not expose the Nordic UART Service"):
        link.open()


def test_connect_by_address_and_close_wakes_reader(world: VirtualBle) -> None:
    peripheral = world.add_peripheral("DySan-C")
    link = world.transport(peripheral.address)
    link.open()
    outcome: list[object] = []

    def reader() -> None:
        try:
            outcome.append(link.read(10, timeout=None))
        except TransportError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    link.close()
    thread.join(5)
    assert not thread.is_alive() and isinstance(outcome[0], TransportError)
    assert wait_until(lambda: not peripheral.connected)


# -- scanning, specs, the real OS stack -----------------------------------------------------------------


def test_scan_with_bumble_central(world: VirtualBle) -> None:
    world.add_peripheral("DySan-S")
    result = scan(timeout=0.3, backend=world.central_backend(), loop=world.loop)
    assert result.note == ""
    assert [(d.name, d.has_nus) for d in result.devices] == [("DySan-S", True)]


def test_scan_without_os_bluetooth_returns_note() -> None:
    result = scan(timeout=0.5)
    assert isinstance(result.devices, list)
    if not os.path.exists("/run/dbus/system_bus_socket") and os.name == "posix":
        assert result.devices == []
        assert result.note.startswith("Bluetooth unavailable") and "\n" not in result.note


@pytest.mark.skipif(os.path.exists("/run/dbus/system_bus_socket"), reason="this machine has D-Bus")
def test_open_ble_without_os_bluetooth_is_one_line() -> None:
    with pytest.raises(TransportError) as err:
        open_transport("ble:DySan-1A2B", timeout=1)
    message = str(err.value)
    assert message.startswith("cannot connect to ble:DySan-1A2B: Bluetooth unavailable")
    assert "\n" not in message


def test_ble_spec_options() -> None:
    link = BleNusTransport.from_spec(parse_spec("ble:DySan-1A2B?mtu=185&write=command&rx_buffer=4096"))
    assert (link.target, link.mtu_request, link.with_response) == ("DySan-1A2B", 185, False)
    for bad, message in [
        ("ble:X?speed=1", "unknown BLE link option"),
        ("ble:X?mtu=abc", "not an integer"),
        ("ble:X?mtu=600", "ATT MTU must be in 23..517"),
        ("ble:X?write=maybe", "expected response or command"),
        ("ble:X?backend=bumble", "needs an HCI transport"),
        ("ble:X?backend=winrt", "unknown BLE backend"),
    ]:
        with pytest.raises(TransportError, match=message):
            BleNusTransport.from_spec(parse_spec(bad))


# -- the bleak backend's glue, against a stand-in for bleak's classes -------------------------------------


class _Char:
    def __init__(self, uuid: str) -> None:
        self.uuid = uuid
        self.max_write_without_response_size = 20


class _Service:
    def __init__(self) -> None:
        self.chars = {u: _Char(u) for u in (NUS_RX_CHAR_UUID, NUS_TX_CHAR_UUID)}

    def get_characteristic(self, uuid: str) -> _Char | None:
        return self.chars.get(uuid)


class _Services:
    def get_service(self, uuid: str) -> _Service | None:
        return _Service() if uuid == NUS_SERVICE_UUID else None


class FakeBleakClient:
    """Mimics the BleakClient calls the backend makes (same names and signatures as bleak 3.x)."""

    instances: ClassVar[list[FakeBleakClient]] = []

    def __init__(self, device: Any, disconnected_callback: Any = None, services: Any = None,
                 timeout: float = 30) -> None:
        self.device, self.disconnected_callback, self.filter = device, disconnected_callback, services
        self.services = _Services()
        self.mtu_size = 247
        self.writes: list[tuple[str, bytes, bool]] = []
        self.notify: Any = None
        FakeBleakClient.instances.append(self)

    async def connect(self) -> None:
        self.loop = asyncio.get_running_loop()  # bleak calls back on the loop it runs on

    async def disconnect(self) -> None:
        pass

    async def start_notify(self, char: _Char, callback: Any) -> None:
        self.notify = (char.uuid, callback)

    async def write_gatt_char(self, char: _Char, data: bytes, response: bool) -> None:
        self.writes.append((char.uuid, bytes(data), response))


class FakeBleakScanner:
    @staticmethod
    async def find_device_by_name(name: str, timeout: float) -> Any:
        return f"device<{name}>" if name == "DySan-B" else None

    @staticmethod
    async def find_device_by_address(address: str, timeout: float) -> Any:
        return None


def test_bleak_backend_glue() -> None:
    FakeBleakClient.instances.clear()
    backend = BleakBackend(scanner=FakeBleakScanner, client=FakeBleakClient)
    rec = Recorder()
    with BleNusTransport("DySan-B", backend, policy=FAST, on_event=rec) as link:
        first = FakeBleakClient.instances[0]
        assert first.device == "device<DySan-B>" and first.filter == [NUS_SERVICE_UUID]
        assert link.mtu == 247
        link.write(FRAME)
        assert {(u, r) for u, _, r in first.writes} == {(NUS_RX_CHAR_UUID, True)}
        assert b"".join(d for _, d, _ in first.writes) == FRAME and len(first.writes) == 7
        uuid, callback = first.notify
        assert uuid == NUS_TX_CHAR_UUID
        first.loop.call_soon_threadsafe(callback, None, bytearray(b"hello"))
        assert read_until(link, lambda b: len(b) >= 5) == b"hello"
        first.loop.call_soon_threadsafe(first.disconnected_callback, first)  # bleak reports the drop
        assert rec.wait_for("reconnected")
        second = FakeBleakClient.instances[1]
        assert second.notify is not None and second.notify[0] == NUS_TX_CHAR_UUID  # re-subscribed
        first.loop.call_soon_threadsafe(first.notify[1], None, bytearray(b"stale"))  # old link: ignored
        second.loop.call_soon_threadsafe(second.notify[1], None, bytearray(b"fresh"))
        assert read_until(link, lambda b: len(b) >= 5) == b"fresh"
        assert link.stats.rx_stale_bytes == 5
    command = BleakBackend(scanner=FakeBleakScanner, client=FakeBleakClient, with_response=False)
    with BleNusTransport("DySan-B", command, with_response=False) as link:
        assert link.mtu == 23  # capped by max_write_without_response_size (20) + 3
        link.write(b"x" * 50)
        assert [len(d) for _, d, r in FakeBleakClient.instances[-1].writes if not r] == [20, 20, 10]
    with pytest.raises(TransportError, match="BLE device DySan-Z not found"):
        BleNusTransport("DySan-Z", BleakBackend(scanner=FakeBleakScanner, client=FakeBleakClient),
                        connect_timeout=0.1).open()


def test_asyncio_is_not_leaked_into_caller() -> None:
    """The sync API must work from a thread that has its own running event loop (e.g. a notebook)."""

    async def inside_a_loop() -> bytes:
        with VirtualBle() as w:
            peripheral = w.add_peripheral("DySan-L")
            with w.transport("DySan-L") as link:
                peripheral.notify(b"ok")
                return read_until(link, lambda b: len(b) >= 2)

    assert asyncio.run(inside_a_loop()) == b"ok"
