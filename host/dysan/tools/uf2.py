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
