"""The provisioning page: the one definition of where a device's identity and HMAC key live in flash.

Every port reads the same 4 KB page layout (QEMU: a RAM-backed "flash" page placed at boot by QEMU's generic
loader; host build: a file; boards: a flash page, or a compiled-in copy where the bootloader can only write
the application). The layout is defined here once; :func:`render_c_header` generates
``firmware/ports/common/dysan_provision.h`` so the C parser cannot drift from it (a test compares the two).

Layout (little-endian), the rest of the page stays erased (0xFF) like fresh flash::

    0x00  u32  magic  0x50535944 ("DYSP" in memory order)
    0x04  u16  layout version (1)
    0x06  u16  flags (0; reserved)
    0x08  u8[8]   device id
    0x10  u8[32]  HMAC-SHA256 key (never leaves the device)
    0x30  u32  CRC-32 (IEEE 802.3, as zlib.crc32) of bytes 0x00..0x2F

The CRC is there so a torn write or a stray page is reported as "not provisioned" instead of yielding a
garbage key; the magic alone would accept any page that happens to start with it.
"""

from __future__ import annotations

import os
import secrets
import stat
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from ..errors import DysanError

PAGE_SIZE: int = 4096
"""Size of the provisioning page: one nRF52840 / ESP32 flash page (the erase unit)."""

MAGIC: int = 0x50535944
"""First word of a provisioned page ("DYSP" in memory order)."""

VERSION: int = 1
"""Layout version; a device refuses pages with another version."""

OFF_MAGIC, OFF_VERSION, OFF_FLAGS = 0x00, 0x04, 0x06
OFF_DEVICE_ID, DEVICE_ID_LEN = 0x08, 8
OFF_KEY, KEY_LEN = 0x10, 32
OFF_CRC = 0x30
CRC_COVERED: int = OFF_CRC
"""Bytes [0, CRC_COVERED) are covered by the CRC."""
HEADER_LEN: int = OFF_CRC + 4

_HEADER = struct.Struct("<IHH8s32s")
assert _HEADER.size == CRC_COVERED

ERASED: int = 0xFF
"""Value of an erased flash byte; the unused tail of the page keeps it."""


@dataclass(frozen=True)
class Identity:
    """What a page carries: the public device id and the secret key."""

    device_id: bytes
    key: bytes

    def __post_init__(self) -> None:
        if len(self.device_id) != DEVICE_ID_LEN:
            raise DysanError(f"device id must be {DEVICE_ID_LEN} bytes, got {len(self.device_id)}")
        if len(self.key) != KEY_LEN:
            raise DysanError(f"key must be {KEY_LEN} bytes, got {len(self.key)}")

    @property
    def device_id_hex(self) -> str:
        return self.device_id.hex()

    def __repr__(self) -> str:
        # The key must not end up in logs or tracebacks.
        return f"Identity(device_id={self.device_id_hex}, key=<{KEY_LEN} bytes>)"


def new_identity() -> Identity:
    """A fresh random identity (``secrets``: the key is a real secret, not a test value)."""
    return Identity(device_id=secrets.token_bytes(DEVICE_ID_LEN), key=secrets.token_bytes(KEY_LEN))


def build_page(identity: Identity) -> bytes:
    """The full 4 KB page image for ``identity``, erased (0xFF) beyond the header."""
    head = _HEADER.pack(MAGIC, VERSION, 0, identity.device_id, identity.key)
    crc = zlib.crc32(head) & 0xFFFFFFFF
    page = head + struct.pack("<I", crc)
    return page + bytes([ERASED]) * (PAGE_SIZE - len(page))


def parse_page(page: bytes) -> Identity:
    """The identity in ``page``; raises :class:`DysanError` when the page is blank, torn or of another
    layout version (the same checks, in the same order, as ``dysan_provision_parse`` in C)."""
    if len(page) < HEADER_LEN:
        raise DysanError(f"provisioning page too short: {len(page)} bytes (need {HEADER_LEN})")
    magic, version, _flags, device_id, key = _HEADER.unpack_from(page, 0)
    if magic != MAGIC:
        raise DysanError("not provisioned (no provisioning magic)")
    if version != VERSION:
        raise DysanError(f"provisioning page version {version}, this tool knows {VERSION}")
    (crc,) = struct.unpack_from("<I", page, OFF_CRC)
    if crc != zlib.crc32(page[:CRC_COVERED]) & 0xFFFFFFFF:
        raise DysanError("provisioning page CRC mismatch (torn or corrupted page)")
    return Identity(device_id=bytes(device_id), key=bytes(key))


SECRET_UMASK: int = 0o077
"""The umask under which anything derived from a key is built (``dysan flash`` compiles the identity in)."""


def write_secret(path: str | Path, data: bytes) -> Path:
    """Writes a file that holds a key: mode 0600, whether it is new or not.

    Why not just ``os.open(..., O_CREAT | O_TRUNC, 0o600)``: the mode only applies when the file is created;
    a file that already exists (an earlier, looser version, a copy made with ``cp``) keeps its mode and
    would now hold the key readable by others. So the file is opened without following a symlink, must be a
    regular file of ours, is ``fchmod``-ed to 0600 and only then truncated and written.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(target, flags, 0o600)
    except OSError as exc:
        raise DysanError(f"{target}: cannot write a key file: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise DysanError(f"{target}: not a regular file; refusing to write a key into it")
        if hasattr(os, "getuid") and st.st_uid != os.getuid():
            raise DysanError(f"{target}: owned by another user; refusing to write a key into it")
        os.fchmod(fd, 0o600)
        os.ftruncate(fd, 0)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)
    return target


def tighten_tree(root: str | Path) -> int:
    """Removes group and world access from every file and folder under ``root`` (build outputs that contain a
    compiled-in key: objects, ELF, HEX, UF2). Returns how many modes changed; a missing ``root`` is 0."""
    changed = 0
    top = Path(root)
    if not top.exists():
        return 0
    for p in [top, *top.rglob("*")]:
        if p.is_symlink():
            continue
        mode = stat.S_IMODE(p.lstat().st_mode)
        if mode & 0o077:
            p.chmod(mode & ~0o077)
            changed += 1
    return changed


def write_page(path: str | Path, identity: Identity) -> Path:
    """Writes the page image for ``identity`` to ``path`` (mode 0600: it holds the key)."""
    return write_secret(path, build_page(identity))


def read_page(path: str | Path) -> Identity:
    """The identity stored in the page image at ``path``."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise DysanError(f"{p}: cannot read provisioning page: {exc.strerror}") from exc
    try:
        return parse_page(data)
    except DysanError as exc:
        raise DysanError(f"{p}: {exc}") from exc


def render_c_header() -> str:
    """``firmware/ports/common/dysan_provision.h``: the layout constants for the C parser."""
    defs = [
        ("DYSAN_PROVISION_PAGE_SIZE", f"{PAGE_SIZE}u", "bytes in the page (one flash page)"),
        ("DYSAN_PROVISION_MAGIC", f"0x{MAGIC:08X}u", '"DYSP" in memory order'),
        ("DYSAN_PROVISION_VERSION", f"{VERSION}u", "layout version"),
        ("DYSAN_PROVISION_OFF_MAGIC", f"{OFF_MAGIC}u", "u32"),
        ("DYSAN_PROVISION_OFF_VERSION", f"{OFF_VERSION}u", "u16"),
        ("DYSAN_PROVISION_OFF_FLAGS", f"{OFF_FLAGS}u", "u16, reserved (0)"),
        ("DYSAN_PROVISION_OFF_DEVICE_ID", f"{OFF_DEVICE_ID}u", "u8[DEVICE_ID_LEN]"),
        ("DYSAN_PROVISION_DEVICE_ID_LEN", f"{DEVICE_ID_LEN}u", ""),
        ("DYSAN_PROVISION_OFF_KEY", f"{OFF_KEY}u", "u8[KEY_LEN]"),
        ("DYSAN_PROVISION_KEY_LEN", f"{KEY_LEN}u", ""),
        ("DYSAN_PROVISION_OFF_CRC", f"{OFF_CRC}u", "u32, CRC-32 (zlib) of bytes [0, CRC_COVERED)"),
        ("DYSAN_PROVISION_CRC_COVERED", f"{CRC_COVERED}u", ""),
        ("DYSAN_PROVISION_HEADER_LEN", f"{HEADER_LEN}u", "bytes a parser needs"),
    ]
    lines = [
        "/* GENERATED by `dysan codegen` from host/dysan/device/provision.py -- do not edit. */",
        "/* Layout of the provisioning page (little-endian); the rest of the page is erased (0xFF). */",
        "",
        "#ifndef DYSAN_PROVISION_H",
        "#define DYSAN_PROVISION_H",
        "",
    ]
    for name, value, comment in defs:
        tail = f" /* {comment} */" if comment else ""
        lines.append(f"#define {name} {value}{tail}")
    lines += ["", "#endif /* DYSAN_PROVISION_H */", ""]
    return "\n".join(lines)


def render_c_image(identity: Identity, symbol: str = "dysan_provision_image") -> str:
    """A C file defining ``const uint8_t <symbol>[HEADER_LEN]``: the page header compiled into an image.

    For boards whose bootloader can only write the application (nRF52 DFU, bossac), the port falls back to
    this linked-in copy when its flash provisioning page is blank. The file holds the key: it is generated
    under ``firmware/build/generated/`` (ignored by git) and never committed, written with
    :func:`write_secret` (0600), and the build that compiles it runs under :data:`SECRET_UMASK`, its outputs
    tightened by :func:`tighten_tree` (``dysan flash``).
    """
    head = build_page(identity)[:HEADER_LEN]
    rows = []
    for i in range(0, len(head), 12):
        rows.append("    " + ", ".join(f"0x{b:02x}" for b in head[i : i + 12]) + ",")
    return "\n".join(
        [
            "/* GENERATED by dysan (provisioning) -- holds a secret key: never commit. */",
            "#include <stdint.h>",
            "",
            f"const uint8_t {symbol}[{HEADER_LEN}] = {{",
            *rows,
            "};",
            "",
        ]
    )
