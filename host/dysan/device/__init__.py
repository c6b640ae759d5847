"""Talking to a device: the QEMU and host-process launchers, and the provisioning page layout.

``QemuDevice`` boots the Cortex-M4F image in ``qemu-system-arm`` and ``HostDevice`` runs the native build;
both expose the same pyserial object, so every host tool and test drives either one through one API.
"""

from __future__ import annotations

from .provision import Identity, build_page, new_identity, parse_page
from .qemu import HostDevice, QemuDevice, elf_symbols, open_socket_link, qemu_available

__all__ = [
    "HostDevice",
    "Identity",
    "QemuDevice",
    "build_page",
    "elf_symbols",
    "new_identity",
    "open_socket_link",
    "parse_page",
    "qemu_available",
]
