"""Serial transport: loop://, socket:// (as QEMU offers it), a real tty (pty), reconnects, errors, listing."""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from dysan.errors import DysanError
from dysan.transport import (
    NO_RECONNECT,
    LinkEvent,
    LinkLostError,
    ReconnectPolicy,
    TransportError,
    open_transport,
    parse_spec,
)
from dysan.transport.serial_link import SerialTransport, guess_board, list_serial_ports

FAST = ReconnectPolicy(max_attempts=40, initial_delay=0.01, max_delay=0.05)

pytestmark = pytest.mark.timeout(30)


def read_exactly(transport, n: int, timeout: float = 5.0) -> bytes:
    """Read until `n` bytes arrived (reads may return any split of the stream)."""
    out = bytearray()
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        out += transport.read(n - len(out), timeout=max(0.0, deadline - time.monotonic()))
    return bytes(out)


class EchoServer:
    """A TCP server on 127.0.0.1 that echoes, like QEMU's `-serial tcp::PORT,server` with a loopback UART.

    `stop()` closes the connection and the listener (QEMU exiting); `start()` listens again on the same
    port (QEMU restarted). `echo=False` accepts but never reads (a device that stopped reading).
    """

    def __init__(self, echo: bool = True, rcvbuf: int | None = None) -> None:
        self.echo = echo
        self.rcvbuf = rcvbuf
        self.port = 0
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        # stop() may run while _serve() is between accept() and recording the connection (a busy CI
        # machine); the lock and flag make that connection close too instead of staying open unseen.
        self._lock = threading.Lock()
        self._stopped = False
        self.accepted = 0

    def start(self) -> EchoServer:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self.rcvbuf is not None:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(1)
        self.port = listener.getsockname()[1]
        with self._lock:
            self._listener = listener
            self._stopped = False
        thread = threading.Thread(target=self._serve, args=(listener,), daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def _serve(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with self._lock:
                if self._stopped:
                    conn.close()
                    return
                self.accepted += 1
                self._conns.append(conn)
            if self.echo:
                threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    @staticmethod
    def _echo(conn: socket.socket) -> None:
        try:
            while data := conn.recv(65536):
                conn.sendall(data)
        except OSError:
            pass

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            listener, self._listener = self._listener, None
            conns, self._conns = self._conns, []
        if listener is not None:
            # shutdown() first: on Linux, close() alone leaves a thread blocked in accept() listening.
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"


@pytest.fixture
def server() -> Iterator[EchoServer]:
    srv = EchoServer().start()
    yield srv
    srv.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- specs and policy -------------------------------------------------------------------------------------


def test_parse_spec_forms() -> None:
    assert parse_spec("serial:/dev/ttyACM0@921600") == parse_spec("/dev/ttyACM0@921600")
    spec = parse_spec("serial:/dev/ttyACM0@921600")
    assert (spec.kind, spec.target, spec.baudrate) == ("serial", "/dev/ttyACM0", 921600)
    assert parse_spec("serial:/dev/ttyUSB0").baudrate == 115200
    assert parse_spec("COM7").target == "COM7"
    assert parse_spec("socket://127.0.0.1:5555").target == "socket://127.0.0.1:5555"
    assert parse_spec("loop://").kind == "serial"
    ble = parse_spec("ble:DySan-1A2B?mtu=185&write=command")
    assert (ble.kind, ble.target, ble.options) == ("ble", "DySan-1A2B", {"mtu": "185", "write": "command"})
    assert parse_spec("ble:AA:BB:CC:DD:EE:FF").target == "AA:BB:CC:DD:EE:FF"
    for bad in ("", "ble:", "serial:", "wifi:thing", "ttyACM0"):
        with pytest.raises(TransportError):
            parse_spec(bad)


def test_reconnect_policy_backoff() -> None:
    policy = ReconnectPolicy(max_attempts=6, initial_delay=0.1, max_delay=0.5, factor=2.0)
    assert list(policy.delays()) == [0.0, 0.1, 0.2, 0.4, 0.5, 0.5]
    assert list(NO_RECONNECT.delays()) == [] and not NO_RECONNECT.enabled
    forever = ReconnectPolicy(max_attempts=None, initial_delay=1, max_delay=3).delays()
    assert [next(forever) for _ in range(5)] == [0.0, 1, 2, 3, 3]
    with pytest.raises(ValueError):
        ReconnectPolicy(max_attempts=-1)


# -- loop:// ----------------------------------------------------------------------------------------------


def test_loop_round_trip_in_order() -> None:
    payload = bytes(range(256)) * 8 + b"\x00tail\x00"
    with open_transport("loop://") as link:
        assert link.is_open and link.generation == 1
        link.write(payload)
        got = read_exactly(link, len(payload))
        assert got == payload
        link.write(b"abc")
        assert link.read(2, timeout=1) == b"ab"  # never more than max_bytes
        assert link.read(10, timeout=1) == b"c"
        stats = link.stats
        assert (stats.tx_bytes, stats.rx_bytes) == (len(payload) + 3, len(payload) + 3)
    assert not link.is_open
    with pytest.raises(TransportError, match="closed"):
        link.read(1, timeout=0.1)
    with pytest.raises(TransportError, match="closed"):
        link.write(b"x")


def test_read_timeout_and_early_return() -> None:
    with open_transport("loop://") as link:
        start = time.monotonic()
        assert link.read(100, timeout=0.2) == b""
        elapsed = time.monotonic() - start
        assert 0.19 <= elapsed < 1.5
        link.write(b"xyz")
        start = time.monotonic()
        assert link.read(4096, timeout=10) == b"xyz"  # returns what is there, does not wait for 4096
        assert time.monotonic() - start < 2.0


def test_close_wakes_a_blocked_reader() -> None:
    link = open_transport("loop://")
    outcome: list[object] = []
    started = threading.Event()

    def reader() -> None:
        started.set()
        try:
            outcome.append(link.read(10, timeout=None))
        except TransportError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    started.wait(5)
    time.sleep(0.05)  # let the reader block in read(); the assertion holds even if it has not yet
    link.close()
    thread.join(5)
    assert not thread.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], TransportError)


# -- socket:// (QEMU) -------------------------------------------------------------------------------------


def test_socket_round_trip(server: EchoServer) -> None:
    payload = os.urandom(20_000)
    with open_transport(server.url) as link:
        for i in range(0, len(payload), 1600):
            link.write(payload[i:i + 1600])
        assert read_exactly(link, len(payload)) == payload


def test_socket_reconnects_after_server_restart(server: EchoServer) -> None:
    events: list[LinkEvent] = []

    def on_event(event: LinkEvent) -> None:
        events.append(event)
        if event.kind == "reconnect_failed" and event.attempt == 1:
            server.start()  # "QEMU restarted" only once the transport has seen it gone

    with open_transport(server.url, policy=FAST, on_event=on_event) as link:
        link.write(b"before")
        assert read_exactly(link, 6) == b"before"
        server.stop()
        deadline = time.monotonic() + 10
        while not any(e.kind == "reconnected" for e in events) and time.monotonic() < deadline:
            assert link.read(100, timeout=0.3) == b""
        link.write(b"after")
        assert read_exactly(link, 5) == b"after"
        assert link.read(100, timeout=0.1) == b""  # nothing stale or duplicated
        kinds = [e.kind for e in events]
        assert kinds[0] == "connected" and kinds[1] == "disconnected"
        assert "reconnect_failed" in kinds and kinds[-1] == "reconnected"
        assert link.generation == 2 and events[-1].generation == 2
        assert link.stats.reconnects == 1 and link.stats.reconnect_attempts >= 2
        assert server.accepted == 2


def test_socket_gives_up_after_policy(server: EchoServer) -> None:
    policy = ReconnectPolicy(max_attempts=3, initial_delay=0.01, max_delay=0.02)
    events: list[LinkEvent] = []
    link = open_transport(server.url, policy=policy, on_event=events.append)
    server.stop()
    with pytest.raises(LinkLostError, match="gave up after 3 reconnect attempts") as err:
        link.read(10, timeout=5)
    assert "\n" not in str(err.value) and "connection refused" in str(err.value)
    assert not link.is_open
    with pytest.raises(LinkLostError):
        link.write(b"x")
    assert [e.kind for e in events] == ["connected", "disconnected", *["reconnect_failed"] * 3, "gave_up"]
    link.close()


def test_no_reconnect_policy_fails_at_once(server: EchoServer) -> None:
    link = open_transport(server.url, policy=NO_RECONNECT)
    server.stop()
    with pytest.raises(LinkLostError, match="reconnecting is disabled"):
        link.read(10, timeout=5)
    link.close()


def test_write_timeout_when_peer_stops_reading() -> None:
    srv = EchoServer(echo=False, rcvbuf=4096).start()
    try:
        link = SerialTransport(srv.url, write_timeout=0.2, policy=NO_RECONNECT)
        link.open()
        start = time.monotonic()
        with pytest.raises(TransportError, match=r"write timed out after 0\.2 s"):
            link.write(bytes(32 * 1024 * 1024))
        assert time.monotonic() - start < 5
        link.close()
    finally:
        srv.stop()


# -- errors -----------------------------------------------------------------------------------------------


def test_missing_port_is_one_clear_line() -> None:
    with pytest.raises(TransportError) as err:
        open_transport("serial:/dev/ttyDYSAN_NOPE@115200")
    message = str(err.value)
    assert isinstance(err.value, DysanError)
    assert message == "serial port /dev/ttyDYSAN_NOPE not found (run `dysan devices` to list ports)"


def test_refused_socket_is_one_clear_line() -> None:
    url = f"socket://127.0.0.1:{free_port()}"
    with pytest.raises(TransportError) as err:
        open_transport(url)
    assert str(err.value).startswith(f"cannot connect to {url}: connection refused")
    assert "\n" not in str(err.value)


def test_bad_pyserial_url() -> None:
    with pytest.raises(TransportError, match="socket://"):
        open_transport("socket://nohostport")


# -- a real tty: USB unplug and renumbering -----------------------------------------------------------------


@dataclass
class FakePort:
    device: str
    description: str = "n/a"
    vid: int | None = None
    pid: int | None = None
    serial_number: str | None = None


@pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX ptys")
def test_tty_unplug_and_renumbering_reconnect() -> None:
    """A pty is a real tty (pyserial's POSIX class); closing its master looks exactly like a USB unplug."""
    master1, slave1 = os.openpty()
    path1 = os.ttyname(slave1)
    os.close(slave1)
    where = {"path": path1}

    def lister() -> list[FakePort]:
        return [FakePort(where["path"], "XIAO nRF52840", 0x2886, 0x8045, "DYSAN0001")]

    events: list[LinkEvent] = []
    link = SerialTransport(path1, policy=FAST, on_event=events.append, list_ports=lister)
    link.open()
    master2 = None
    try:
        os.write(master1, b"hello")
        assert read_exactly(link, 5) == b"hello"
        link.write(b"world")
        assert os.read(master1, 100) == b"world"

        master2, slave2 = os.openpty()  # the board re-enumerates under another name...
        path2 = os.ttyname(slave2)
        os.close(slave2)
        assert path2 != path1
        where["path"] = path2
        os.close(master1)  # ...after the old port vanished

        link.write(b"lost")  # hits the dead port: dropped (counted), then reconnect
        assert link.stats.tx_dropped == 4
        assert link.port_path == path2 and link.generation == 2
        link.write(b"again")
        assert os.read(master2, 100) == b"again"
        os.write(master2, b"back")
        assert read_exactly(link, 4) == b"back"
        assert [e.kind for e in events][:2] == ["connected", "disconnected"]
        assert events[-1].kind == "reconnected" and events[-1].detail == path2
    finally:
        link.close()
        if master2 is not None:
            os.close(master2)


@pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX ptys")
def test_close_wakes_a_reader_blocked_on_a_tty() -> None:
    master, slave = os.openpty()
    path = os.ttyname(slave)
    os.close(slave)
    link = SerialTransport(path, policy=NO_RECONNECT)
    link.open()
    outcome: list[object] = []

    def reader() -> None:
        try:
            outcome.append(link.read(10, timeout=None))
        except TransportError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        time.sleep(0.05)  # let it block; the outcome must be the same if it has not yet
        link.close()
        thread.join(5)
        assert not thread.is_alive()
        assert len(outcome) == 1 and isinstance(outcome[0], TransportError)
    finally:
        os.close(master)


# -- port listing -----------------------------------------------------------------------------------------


def test_list_serial_ports_guesses_boards() -> None:
    fake = [
        FakePort("/dev/ttyS0"),
        FakePort("/dev/ttyUSB1", "USB Serial", 0x1234, 0x5678),
        FakePort("/dev/ttyUSB0", "CP2102 USB to UART Bridge Controller", 0x10C4, 0xEA60, "0001"),
        FakePort("/dev/ttyACM0", "Nano 33 BLE", 0x2341, 0x805A, "ABCDEF"),
        FakePort("/dev/ttyACM1", "XIAO nRF52840 Sense", 0x2886, 0x8045),
        FakePort("/dev/ttyUSB2", "USB2.0-Serial", 0x1A86, 0x7523),
        FakePort("/dev/ttyUSB3", "FT232R USB UART", 0x0403, 0x6001),
    ]
    ports = list_serial_ports(lambda: fake)
    by_port = {p.port: p for p in ports}
    assert by_port["/dev/ttyACM0"].guess == "Arduino Nano 33 BLE (nRF52840)"
    assert by_port["/dev/ttyACM0"].vid_pid == "2341:805A"
    assert by_port["/dev/ttyACM1"].guess == "Seeed XIAO nRF52840"
    assert "CP210x" in by_port["/dev/ttyUSB0"].guess and "ESP32" in by_port["/dev/ttyUSB0"].guess
    assert "CH340" in by_port["/dev/ttyUSB2"].guess
    assert "FTDI" in by_port["/dev/ttyUSB3"].guess
    assert by_port["/dev/ttyUSB1"].guess == "" and by_port["/dev/ttyUSB1"].vid_pid == "1234:5678"
    assert by_port["/dev/ttyS0"].description == "" and by_port["/dev/ttyS0"].vid_pid == ""
    # Recognised boards first, unknown USB next, legacy ports last.
    assert [p.port for p in ports][-2:] == ["/dev/ttyUSB1", "/dev/ttyS0"]
    assert "/dev/ttyS0" not in {p.port for p in list_serial_ports(lambda: fake, usb_only=True)}
    assert by_port["/dev/ttyACM0"].as_dict() == {
        "port": "/dev/ttyACM0", "description": "Nano 33 BLE", "vid_pid": "2341:805A",
        "serial_number": "ABCDEF", "guess": "Arduino Nano 33 BLE (nRF52840)"}


def test_guess_board_falls_back_to_vendor() -> None:
    assert guess_board(0x2341, 0x005A) == "Arduino Nano 33 BLE (nRF52840, bootloader)"
    assert guess_board(0x2341, 0x0043) == "Arduino board"
    assert "Espressif" in guess_board(0x303A, 0x1001)
    assert guess_board(None, None) == ""


def test_list_serial_ports_wraps_lister_errors() -> None:
    def broken() -> list[FakePort]:
        raise OSError("sysfs unreadable")

    with pytest.raises(TransportError, match="cannot list serial ports: sysfs unreadable"):
        list_serial_ports(broken)
