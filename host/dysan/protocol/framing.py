"""Frames: header + payload [+ auth trailer] + CRC-32, COBS-encoded and terminated by 0x00.

Layout of a decoded frame (all little-endian, see docs/protocol.md)::

    msg_id u8 | flags u8 | seq u16 | len u16 | payload[len] | [counter u32 | tag[16]] | crc32 u32

The auth trailer is present exactly when ``flags & FLAG_AUTH``; the CRC covers everything before it.
COBS removes every 0x00 from the frame, so 0x00 is an unambiguous delimiter: a receiver that joins a
stream mid-frame, or sees garbage, resynchronizes at the next 0x00 without any state from the sender.

The receive checks and their order are the C decoder's (``firmware/core/proto/dysan_frame.c``), so both
count the same errors for the same byte stream (a differential test holds them to it):

1. more than ``MAX_ENCODED`` bytes before the delimiter -> ``length`` (dropped without decoding);
2. invalid COBS -> ``cobs``;
3. shorter than header + CRC -> ``length``;
4. CRC mismatch -> ``crc``;
5. unknown flag bits -> ``header``;
6. ``len`` disagrees with the frame size -> ``length``.

The CRC is zlib's CRC-32 (the same function as the ``crc`` package's ``Crc32.CRC32``, which the tests
cross-check), chosen for its speed in Python; the ``cobs`` package does the byte stuffing.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

from cobs import cobs

from .errors import FrameError
from .schema import (
    AUTH_TAG_SIZE,
    AUTH_TRAILER_SIZE,
    CRC_SIZE,
    FLAG_AUTH,
    FLAGS_KNOWN,
    HEADER_SIZE,
    MAX_ENCODED,
    MAX_PAYLOAD,
)

_HEADER = struct.Struct("<BBHH")
_TRAILER = struct.Struct(f"<I{AUTH_TAG_SIZE}s")
_CRC = struct.Struct("<I")

COUNTERS: tuple[str, ...] = ("frames_ok", "crc_errors", "cobs_errors", "length_errors", "header_errors")
"""The receiver's counters, in the order of ``dysan_frame_stats_t`` and STATS."""


def crc32(data: bytes) -> int:
    """CRC-32/ISO-HDLC (reflected 0x04C11DB7, init and xorout 0xFFFFFFFF): zlib's crc32."""
    return zlib.crc32(data) & 0xFFFFFFFF


@dataclass(frozen=True)
class Frame:
    """One decoded frame. ``counter`` and ``tag`` are set exactly when ``flags & FLAG_AUTH``."""

    msg_id: int
    payload: bytes = b""
    seq: int = 0
    flags: int = 0
    counter: int | None = None
    tag: bytes | None = None

    @property
    def authenticated(self) -> bool:
        """Carries an auth trailer (whether the tag is *valid* is for :mod:`.auth` to say)."""
        return bool(self.flags & FLAG_AUTH)

    def check(self) -> None:
        """Refuses a frame that no receiver would accept (so the encoder never emits one)."""
        if not 0 <= self.msg_id <= 0xFF or not 0 <= self.seq <= 0xFFFF:
            raise FrameError("header", f"msg_id {self.msg_id} / seq {self.seq} out of range")
        if self.flags & ~FLAGS_KNOWN or not 0 <= self.flags <= 0xFF:
            raise FrameError("header", f"unknown flags 0x{self.flags:02x}")
        if len(self.payload) > MAX_PAYLOAD:
            raise FrameError("length", f"payload of {len(self.payload)} bytes > {MAX_PAYLOAD}")
        if self.authenticated:
            if self.counter is None or self.tag is None or len(self.tag) != AUTH_TAG_SIZE:
                raise FrameError("header", "FLAG_AUTH needs a counter and a 16-byte tag")
            if not 0 <= self.counter <= 0xFFFFFFFF:
                raise FrameError("header", f"counter {self.counter} out of u32 range")
        elif self.counter is not None or self.tag is not None:
            raise FrameError("header", "counter/tag given without FLAG_AUTH")

    def pack(self) -> bytes:
        """The decoded frame bytes, CRC included (what COBS encodes)."""
        self.check()
        body = _HEADER.pack(self.msg_id, self.flags, self.seq, len(self.payload)) + bytes(self.payload)
        if self.authenticated:
            assert self.counter is not None and self.tag is not None
            body += _TRAILER.pack(self.counter, self.tag)
        return body + _CRC.pack(crc32(body))

    def encode(self) -> bytes:
        """COBS(frame) + the 0x00 delimiter: ready for the link."""
        return cobs.encode(self.pack()) + b"\x00"


def parse(raw: bytes) -> Frame:
    """Checks a decoded (un-COBSed) frame, steps 3-6 above; FrameError names the failed check."""
    n = len(raw)
    if n < HEADER_SIZE + CRC_SIZE:
        raise FrameError("length", f"{n} bytes is shorter than header + CRC")
    (want,) = _CRC.unpack_from(raw, n - CRC_SIZE)
    got = crc32(raw[: n - CRC_SIZE])
    if got != want:
        raise FrameError("crc", f"CRC 0x{got:08x} != 0x{want:08x}")
    msg_id, flags, seq, length = _HEADER.unpack_from(raw, 0)
    if flags & ~FLAGS_KNOWN:
        raise FrameError("header", f"unknown flags 0x{flags:02x}")
    trailer = AUTH_TRAILER_SIZE if flags & FLAG_AUTH else 0
    if length > MAX_PAYLOAD or HEADER_SIZE + length + trailer + CRC_SIZE != n:
        raise FrameError("length", f"len={length} does not match a {n}-byte frame")
    payload = bytes(raw[HEADER_SIZE : HEADER_SIZE + length])
    if not trailer:
        return Frame(msg_id, payload, seq, flags)
    counter, tag = _TRAILER.unpack_from(raw, HEADER_SIZE + length)
    return Frame(msg_id, payload, seq, flags, counter, tag)


def decode_packet(packet: bytes) -> Frame:
    """One COBS packet (delimiter excluded) to a frame, steps 1-6 above."""
    if len(packet) > MAX_ENCODED:
        raise FrameError("length", f"{len(packet)} encoded bytes > {MAX_ENCODED}")
    try:
        raw = cobs.decode(packet)
    except cobs.DecodeError as e:
        raise FrameError("cobs", str(e)) from None
    return parse(raw)


@dataclass
class FrameDecoder:
    """Streaming receiver: feed it whatever the link delivers, get whole frames back.

    Memory is bounded (at most ``MAX_ENCODED`` bytes are kept); an overlong run of bytes is dropped up to
    the next delimiter and counted once. Empty packets (repeated 0x00) are idle filler, not errors.
    """

    stats: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    last_error: FrameError | None = None
    _buf: bytearray = field(default_factory=bytearray)
    _overflow: bool = False

    def feed(self, data: bytes) -> list[Frame]:
        frames: list[Frame] = []
        start = 0
        n = len(data)
        while start <= n:
            z = data.find(0, start)
            end = n if z < 0 else z
            if not self._overflow:
                if len(self._buf) + (end - start) > MAX_ENCODED:
                    self._overflow = True
                    self._buf.clear()
                else:
                    self._buf += data[start:end]
            if z < 0:
                break
            frame = self._finish()
            if frame is not None:
                frames.append(frame)
            start = z + 1
        return frames

    def _finish(self) -> Frame | None:
        overflow, packet = self._overflow, bytes(self._buf)
        self._overflow = False
        self._buf.clear()
        if overflow:
            self._count(FrameError("length", f"more than {MAX_ENCODED} encoded bytes"))
            return None
        if not packet:
            return None
        try:
            frame = decode_packet(packet)
        except FrameError as e:
            self._count(e)
            return None
        self.stats["frames_ok"] += 1
        return frame

    def _count(self, e: FrameError) -> None:
        self.stats[f"{e.kind}_errors"] += 1
        self.last_error = e
