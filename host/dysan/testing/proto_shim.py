"""ctypes access to the C protocol core, for differential tests: the same bytes through both stacks.

``firmware/proto.mk`` builds ``firmware/build/proto/libdysan_proto_shim.so`` from
``firmware/tests/proto_shim.c``, a flat API of integers and byte buffers (no C struct is mirrored here).
Tests compare every result of this module with the Python implementation on generated inputs.
"""

from __future__ import annotations

import ctypes as C
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..errors import DysanError
from ..protocol.framing import COUNTERS, Frame
from ..protocol.schema import AUTH_TAG_SIZE, FLAG_AUTH, MAX_ENCODED, MAX_PAYLOAD

REPO = Path(__file__).resolve().parents[3]
FIRMWARE = REPO / "firmware"
SHIM = FIRMWARE / "build" / "proto" / "libdysan_proto_shim.so"

_u8p = C.POINTER(C.c_uint8)
_size = C.c_size_t


def build(targets: tuple[str, ...] = ("proto-host-tests",)) -> str:
    """Runs ``make -f proto.mk`` in firmware/; returns its output, DysanError (with it) on failure."""
    r = subprocess.run(
        ["make", "-f", "proto.mk", *targets], cwd=FIRMWARE, capture_output=True, text=True, check=False
    )
    if r.returncode != 0:
        raise DysanError(f"make {' '.join(targets)} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r.stdout


def _buf(data: bytes) -> C.Array[C.c_uint8]:
    return (C.c_uint8 * max(1, len(data))).from_buffer_copy(data or b"\0")


@dataclass(frozen=True)
class CAccept:
    rc: int
    last_counter: int
    authenticated: bool
    repacked: bytes


class CShim:
    """The shim's functions with Python types."""

    def __init__(self, path: Path = SHIM) -> None:
        lib = C.CDLL(str(path))
        lib.shim_decode.restype = C.c_long
        lib.shim_decode.argtypes = [_u8p, _size, _u8p, _size, C.POINTER(_size), C.POINTER(C.c_uint32)]
        lib.shim_accept.restype = C.c_int
        lib.shim_accept.argtypes = [
            C.c_uint8, C.c_uint8, C.c_uint16, _u8p, C.c_uint16, C.c_uint32, _u8p, C.c_uint8,
            _u8p, _u8p, C.c_uint32, C.c_int, C.POINTER(C.c_uint32), C.POINTER(C.c_int), _u8p, _size,
            C.POINTER(_size),
        ]  # fmt: skip
        lib.shim_unpack_repack.restype = C.c_int
        lib.shim_unpack_repack.argtypes = [C.c_uint8, _u8p, _size, _u8p, _size, C.POINTER(_size)]
        lib.shim_encode.restype = C.c_int
        lib.shim_encode.argtypes = [
            C.c_uint8, C.c_uint8, C.c_uint16, _u8p, C.c_uint16, C.c_uint32, _u8p, _u8p, _size,
            C.POINTER(_size),
        ]  # fmt: skip
        lib.shim_tag.restype = None
        lib.shim_tag.argtypes = [_u8p, _u8p, C.c_uint8, C.c_uint32, _u8p, _size, _u8p]
        lib.shim_sha256.restype = None
        lib.shim_sha256.argtypes = [_u8p, _size, _u8p]
        lib.shim_hmac.restype = None
        lib.shim_hmac.argtypes = [_u8p, _size, _u8p, _size, _u8p]
        lib.shim_crc32.restype = C.c_uint32
        lib.shim_crc32.argtypes = [_u8p, _size]
        lib.shim_limit.restype = C.c_long
        lib.shim_limit.argtypes = [C.c_int]
        self.lib = lib

    def limits(self) -> dict[str, int]:
        names = ("max_payload", "max_frame", "max_encoded", "msg_count")
        return {n: int(self.lib.shim_limit(i)) for i, n in enumerate(names)}

    def decode(self, stream: bytes) -> tuple[list[Frame], dict[str, int]]:
        """The C streaming decoder over ``stream``: its frames and its five counters."""
        cap = len(stream) * 30 + 64  # each frame record is at most 26 + its payload (< 30 x its wire size)
        out = (C.c_uint8 * cap)()
        used = _size(0)
        stats = (C.c_uint32 * 5)()
        n = self.lib.shim_decode(_buf(stream), len(stream), out, cap, C.byref(used), stats)
        if n < 0:
            raise AssertionError("shim_decode: output buffer too small")
        raw = bytes(out[: used.value])
        frames, pos = [], 0
        for _ in range(n):
            msg_id, flags = raw[pos], raw[pos + 1]
            seq = int.from_bytes(raw[pos + 2 : pos + 4], "little")
            length = int.from_bytes(raw[pos + 4 : pos + 6], "little")
            counter = int.from_bytes(raw[pos + 6 : pos + 10], "little")
            tag = raw[pos + 10 : pos + 26]
            payload = raw[pos + 26 : pos + 26 + length]
            pos += 26 + length
            auth = bool(flags & FLAG_AUTH)
            frames.append(
                Frame(msg_id, payload, seq, flags, counter if auth else None, tag if auth else None)
            )
        return frames, dict(zip(COUNTERS, list(stats), strict=True))

    def accept(
        self,
        frame: Frame,
        *,
        at_device: bool,
        key: bytes | None,
        device_id: bytes,
        last_counter: int,
        no_auth: bool = False,
    ) -> CAccept:
        """``dysan_proto_accept`` (receiver: device or host) with a fresh auth context."""
        last = C.c_uint32(0)
        authd = C.c_int(0)
        out = (C.c_uint8 * MAX_PAYLOAD)()
        n = _size(0)
        rc = self.lib.shim_accept(
            frame.msg_id,
            frame.flags,
            frame.seq,
            _buf(frame.payload),
            len(frame.payload),
            frame.counter or 0,
            _buf(frame.tag or bytes(AUTH_TAG_SIZE)),
            1 if at_device else 2,
            _buf(key) if key is not None else None,
            _buf(device_id),
            last_counter,
            int(no_auth),
            C.byref(last),
            C.byref(authd),
            out,
            MAX_PAYLOAD,
            C.byref(n),
        )
        return CAccept(rc, last.value, bool(authd.value), bytes(out[: n.value]))

    def unpack_repack(self, msg_id: int, payload: bytes) -> tuple[int, bytes]:
        out = (C.c_uint8 * MAX_PAYLOAD)()
        n = _size(0)
        rc = self.lib.shim_unpack_repack(msg_id, _buf(payload), len(payload), out, MAX_PAYLOAD, C.byref(n))
        return rc, bytes(out[: n.value])

    def encode(self, frame: Frame, cap: int = MAX_ENCODED + 1) -> tuple[int, bytes]:
        out = (C.c_uint8 * max(1, cap))()
        n = _size(0)
        rc = self.lib.shim_encode(
            frame.msg_id,
            frame.flags,
            frame.seq,
            _buf(frame.payload),
            len(frame.payload),
            frame.counter or 0,
            _buf(frame.tag) if frame.tag is not None else None,
            out,
            cap,
            C.byref(n),
        )
        return rc, bytes(out[: n.value])

    def tag(self, key: bytes, device_id: bytes, msg_id: int, counter: int, payload: bytes) -> bytes:
        out = (C.c_uint8 * AUTH_TAG_SIZE)()
        self.lib.shim_tag(_buf(key), _buf(device_id), msg_id, counter, _buf(payload), len(payload), out)
        return bytes(out)

    def sha256(self, data: bytes) -> bytes:
        out = (C.c_uint8 * 32)()
        self.lib.shim_sha256(_buf(data), len(data), out)
        return bytes(out)

    def hmac(self, key: bytes, data: bytes) -> bytes:
        out = (C.c_uint8 * 32)()
        self.lib.shim_hmac(_buf(key), len(key), _buf(data), len(data), out)
        return bytes(out)

    def crc32(self, data: bytes) -> int:
        return int(self.lib.shim_crc32(_buf(data), len(data)))
