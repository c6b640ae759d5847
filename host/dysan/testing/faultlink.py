"""A misbehaving link for robustness checks: a TCP proxy between the host tools and the emulated device that
injects garbage, truncated and CRC-broken frames, floods, corrupts the device's frames and drops the
connection -- on demand, at chosen points.

The proxy keeps ONE connection to the device (QEMU or the host build) for its whole life and lets host
clients come and go, as a BLE link or a USB cable does: :meth:`FaultLink.drop` cuts the host's side while
the device keeps running (and keeps its unacknowledged windows), which is what ``dysan stream`` must survive.
Bytes the device sends while no client is connected are discarded, like notifications with nobody
subscribed.

Injections go in *between* frames (right after a 0x00 delimiter of the stream they join), so they test the
receivers' resynchronization without destroying the surrounding legitimate frames; :meth:`corrupt` instead
flips one byte inside the next large frames from the device (sanitized windows), which the host must detect
by CRC and recover with RESEND.
"""

from __future__ import annotations

import contextlib
import socket
import threading

from ..protocol import Frame


def garbage_frames(seed: int = 0) -> list[tuple[str, bytes]]:
    """Labelled byte strings that a receiver must refuse and survive, each ending in a delimiter."""
    import numpy as np

    rng = np.random.default_rng(seed)
    hello = Frame(0x01, b"\x01\x00", 7).encode()
    bad_crc = bytearray(Frame(0x03, b"\x11\x22\x33\x44", 8).encode())
    bad_crc[3] ^= 0x5A
    noise = bytes(int(b) for b in rng.integers(1, 256, size=300))
    return [
        ("random bytes", noise + b"\x00"),
        ("truncated frame", hello[: len(hello) // 2] + b"\x00"),
        ("CRC error", bytes(bad_crc)),
        ("unknown message id", Frame(0x7E, b"", 9).encode()),
        ("bad payload length", Frame(0x23, b"\x01\x02", 10).encode()),  # ACK with 2 bytes instead of 4
        ("overlong run", bytes(int(b) for b in rng.integers(1, 256, size=2000)) + b"\x00"),
        ("flood", bytes(int(b) for b in rng.integers(0, 256, size=20000)) + b"\x00"),
        ("idle delimiters", b"\x00" * 50),
    ]


class FaultLink:
    """``FaultLink(device_port)``: listens on :attr:`url`, forwards to 127.0.0.1:device_port (see module doc)."""

    def __init__(self, device_port: int, host: str = "127.0.0.1") -> None:
        self.device_addr = (host, device_port)
        self._listen = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listen.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listen.bind(("127.0.0.1", 0))
        self._listen.listen(4)
        self.port = int(self._listen.getsockname()[1])
        self._upstream: socket.socket | None = None
        self._client: socket.socket | None = None
        self._lock = threading.Lock()  # guards writes to the device and the client switch
        self._h2d_boundary = True
        self._d2h_boundary = True
        self._pending_h2d: list[bytes] = []
        self._pending_d2h: list[bytes] = []
        self._corrupt_left = 0
        self._corrupt_at = 200
        self._frame_pos = 0
        self._closed = threading.Event()
        self._threads: list[threading.Thread] = []
        self.clients = 0
        self.drops = 0
        self.corrupted = 0
        self.injected = 0

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    # -- control ------------------------------------------------------------------------------------------------

    def inject(self, data: bytes) -> None:
        """Sends ``data`` to the device at the next frame boundary of the host's stream."""
        with self._lock:
            self.injected += len(data)
            if self._h2d_boundary and self._upstream is not None:
                self._upstream.sendall(data)
            else:
                self._pending_h2d.append(data)

    def inject_to_host(self, data: bytes) -> None:
        """Sends ``data`` to the host at the next frame boundary of the device's stream."""
        with self._lock:
            self.injected += len(data)
            self._pending_d2h.append(data)

    def corrupt(self, frames: int = 1, at: int = 200) -> None:
        """Flips the byte at offset ``at`` of each of the next ``frames`` device frames longer than that: with
        the default, only sanitized and raw windows (~770 / 1500 bytes; STATS, the largest reply, is ~170)."""
        with self._lock:
            self._corrupt_left += frames
            self._corrupt_at = at

    def drop(self) -> None:
        """Cuts the host's connection (the device's stays up)."""
        with self._lock:
            c, self._client = self._client, None
            self._pending_d2h.clear()
        if c is not None:
            self.drops += 1
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
            c.close()

    # -- life -------------------------------------------------------------------------------------------------------

    def start(self) -> FaultLink:
        self._upstream = socket.create_connection(self.device_addr, timeout=10)
        self._upstream.settimeout(None)
        for fn, name in ((self._accept_loop, "accept"), (self._from_device, "device->host")):
            th = threading.Thread(target=fn, name=f"faultlink {name}", daemon=True)
            th.start()
            self._threads.append(th)
        return self

    def close(self) -> None:
        self._closed.set()
        self.drop()
        with contextlib.suppress(OSError):
            self._listen.close()
        if self._upstream is not None:
            with contextlib.suppress(OSError):
                self._upstream.shutdown(socket.SHUT_RDWR)
            self._upstream.close()
        for th in self._threads:
            th.join(timeout=2)

    def __enter__(self) -> FaultLink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- pumps --------------------------------------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                c, _ = self._listen.accept()
            except OSError:
                return
            self.drop()  # one client at a time, like the device's UART
            with self._lock:
                self._client = c
                self.clients += 1
            th = threading.Thread(target=self._from_client, args=(c,), name="faultlink host->device", daemon=True)
            th.start()

    def _from_client(self, c: socket.socket) -> None:
        up = self._upstream
        assert up is not None
        while True:
            try:
                data = c.recv(4096)
            except OSError:
                return
            if not data:
                with contextlib.suppress(OSError):
                    c.close()
                return
            with self._lock:
                if self._client is not c:
                    return
                pos = 0
                while pos < len(data):
                    z = data.find(0, pos)
                    end = len(data) if z < 0 else z + 1
                    up.sendall(data[pos:end])
                    self._h2d_boundary = z >= 0
                    pos = end
                    if self._h2d_boundary and self._pending_h2d:
                        for p in self._pending_h2d:
                            up.sendall(p)
                        self._pending_h2d.clear()

    def _from_device(self) -> None:
        up = self._upstream
        assert up is not None
        while not self._closed.is_set():
            try:
                data = up.recv(8192)
            except OSError:
                return
            if not data:
                return
            out = bytearray()
            with self._lock:
                for b in data:
                    if b == 0:
                        self._frame_pos = 0
                        out.append(0)
                        if self._pending_d2h:
                            for p in self._pending_d2h:
                                out += p
                            self._pending_d2h.clear()
                        continue
                    if self._corrupt_left and self._frame_pos == self._corrupt_at:
                        b ^= 0x5A if b != 0x5A else 0x33  # never 0x00: the frame stays one frame
                        self._corrupt_left -= 1
                        self.corrupted += 1
                    self._frame_pos += 1
                    out.append(b)
                c = self._client
            if c is not None:
                with contextlib.suppress(OSError):
                    c.sendall(bytes(out))
