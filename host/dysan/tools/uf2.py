"""UF2 images (Microsoft's USB flashing format) for the XIAO nRF52840 Sense's UF2 bootloader.

Double-tapping reset makes the XIAO show up as a USB drive; copying a ``.uf2`` file onto it flashes it.
A UF2 file is a sequence of independent 512-byte blocks, each naming its own flash address, so a
bootloader can write blocks in any order and a torn copy is detected by the block count::

    u32 magic0 = 0x0A324655 ("UF2\\n")   u32 magic1 = 0x9E5D5157   u32 flags
    u32 target address                    u32 payload size (256)     u32 block number
    u32 number of blocks                  u32 family id (flag 0x2000) u8 data[476]   u32 magic end = 0x0AB16F30

The family id (flag 0x00002000) lets the bootloader refuse an image built for another chip: Adafruit's nRF52
bootloader, which the XIAO nRF52840 ships, uses ``0xADA52840``. PlatformIO builds an Intel HEX
(``firmware.hex``); :func:`hex_to_uf2` converts it (what ``uf2conv.py -f 0xADA52840 -c firmware.hex`` does).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ..errors import DysanError

MAGIC0, MAGIC1, MAGIC_END = 0x0A324655, 0x9E5D5157, 0x0AB16F30
FLAG_FAMILY = 0x00002000
FAMILY_NRF52840 = 0xADA52840
PAYLOAD = 256
BLOCK = 512
_HEAD = struct.Struct("<8I")


def parse_hex(text: str) -> dict[int, int]:
    """Intel HEX -> {address: byte}. Record types 00 (data), 01 (EOF), 02/04 (segment/linear base), 03/05
    (start address: ignored). Each record's checksum is checked."""
    mem: dict[int, int] = {}
    base = 0
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        if not line.startswith(":"):
            raise DysanError(f"Intel HEX line {n}: does not start with ':'")
        try:
            raw = bytes.fromhex(line[1:])
        except ValueError:
            raise DysanError(f"Intel HEX line {n}: not hex") from None
        if len(raw) < 5 or len(raw) != 5 + raw[0]:
            raise DysanError(f"Intel HEX line {n}: bad length")
        if sum(raw) & 0xFF:
            raise DysanError(f"Intel HEX line {n}: checksum mismatch")
        count, addr, rtype, data = raw[0], (raw[1] << 8) | raw[2], raw[3], raw[4:4 + raw[0]]
        if rtype == 0x00:
            for i in range(count):
                mem[base + addr + i] = data[i]
        elif rtype == 0x01:
            break
        elif rtype == 0x02:
            base = int.from_bytes(data, "big") << 4
        elif rtype == 0x04:
            base = int.from_bytes(data, "big") << 16
        elif rtype not in (0x03, 0x05):
            raise DysanError(f"Intel HEX line {n}: unknown record type {rtype:#04x}")
    return mem


def blocks_from_memory(mem: dict[int, int], family: int = FAMILY_NRF52840) -> bytes:
    """UF2 blocks covering every 256-byte page that holds data (gaps inside a page are 0xFF)."""
    pages = sorted({a - a % PAYLOAD for a in mem})
    out = bytearray()
    for i, page in enumerate(pages):
        data = bytes(mem.get(page + j, 0xFF) for j in range(PAYLOAD))
        out += _HEAD.pack(MAGIC0, MAGIC1, FLAG_FAMILY, page, PAYLOAD, i, len(pages), family)
        out += data + bytes(476 - PAYLOAD)
        out += struct.pack("<I", MAGIC_END)
    return bytes(out)


def hex_to_uf2(text: str, family: int = FAMILY_NRF52840) -> bytes:
    mem = parse_hex(text)
    if not mem:
        raise DysanError("the Intel HEX file holds no data")
    return blocks_from_memory(mem, family)


def bin_to_uf2(data: bytes, base: int, family: int = FAMILY_NRF52840) -> bytes:
    return blocks_from_memory({base + i: b for i, b in enumerate(data)}, family)


def read_uf2(image: bytes) -> dict[int, bytes]:
    """{address: 256 payload bytes} of a UF2 image, checking magics, sizes and the block count."""
    if len(image) % BLOCK:
        raise DysanError("UF2 image size is not a multiple of 512")
    out: dict[int, bytes] = {}
    n = len(image) // BLOCK
    for i in range(n):
        b = image[i * BLOCK:(i + 1) * BLOCK]
        m0, m1, _flags, addr, size, no, total, _family = _HEAD.unpack_from(b, 0)
        (end,) = struct.unpack_from("<I", b, BLOCK - 4)
        if (m0, m1, end) != (MAGIC0, MAGIC1, MAGIC_END) or size > 476 or no != i or total != n:
            raise DysanError(f"UF2 block {i} is malformed")
        out[addr] = b[32:32 + size]
    return out


@dataclass(frozen=True)
class Uf2Summary:
    """What a checked UF2 image writes: ``blocks`` blocks of 256 bytes from ``start`` to ``end``."""

    blocks: int
    start: int
    end: int
    family: int
    payload_bytes: int

    def line(self) -> str:
        return (f"{self.blocks} blocks of {PAYLOAD} B, 0x{self.start:05X}-0x{self.end - 1:05X}, "
                f"family 0x{self.family:08X}, {self.blocks * BLOCK} B file")


def verify(image: bytes, *, family: int = FAMILY_NRF52840, lo: int, hi: int,
           expect: dict[int, int] | None = None) -> Uf2Summary:
    """Checks every byte a UF2 bootloader would act on, or raises DysanError (one line): both magics and the
    end magic, the family flag and id, 256-byte payloads, 256-aligned addresses inside [lo, hi) with no page
    written twice, block numbers 0..n-1, the same block count in every block, zero padding after the payload,
    and -- with ``expect`` ({address: byte}, e.g. :func:`parse_hex` of the image it was made from) -- that
    the payloads are exactly those bytes (0xFF in the gaps of a page) and cover all of them."""
    if not image or len(image) % BLOCK:
        raise DysanError(f"UF2 image of {len(image)} B is not a whole number of {BLOCK}-byte blocks")
    n = len(image) // BLOCK
    seen: set[int] = set()
    for i in range(n):
        b = image[i * BLOCK:(i + 1) * BLOCK]
        m0, m1, flags, addr, size, no, total, fam = _HEAD.unpack_from(b, 0)
        (end,) = struct.unpack_from("<I", b, BLOCK - 4)
        where = f"UF2 block {i} (0x{addr:05X})"
        if (m0, m1, end) != (MAGIC0, MAGIC1, MAGIC_END):
            raise DysanError(f"{where}: bad magic")
        if not flags & FLAG_FAMILY or fam != family:
            raise DysanError(f"{where}: family 0x{fam:08X} (flags 0x{flags:08X}), want 0x{family:08X}")
        if size != PAYLOAD or no != i or total != n:
            raise DysanError(f"{where}: payload {size}, block {no} of {total}, want {PAYLOAD}, {i} of {n}")
        if addr % PAYLOAD or not (lo <= addr and addr + PAYLOAD <= hi):
            raise DysanError(f"{where}: outside 0x{lo:05X}-0x{hi:05X} or not {PAYLOAD}-aligned")
        if addr in seen:
            raise DysanError(f"{where}: page written twice")
        seen.add(addr)
        if any(b[32 + PAYLOAD:BLOCK - 4]):
            raise DysanError(f"{where}: non-zero padding after the payload")
        if expect is not None:
            want = bytes(expect.get(addr + j, 0xFF) for j in range(PAYLOAD))
            if b[32:32 + PAYLOAD] != want:
                raise DysanError(f"{where}: payload differs from the image")
    if expect is not None:
        missing = {a - a % PAYLOAD for a in expect} - seen
        if missing:
            raise DysanError(f"UF2 image lacks {len(missing)} page(s) of the image, first 0x{min(missing):05X}")
    return Uf2Summary(n, min(seen), max(seen) + PAYLOAD, family, n * PAYLOAD)
