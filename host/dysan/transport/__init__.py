"""Byte transports under the wire protocol: serial (pyserial URLs, incl. QEMU's socket://) and BLE NUS.

`open_transport("serial:/dev/ttyACM0@115200" | "socket://127.0.0.1:5555" | "loop://" | "ble:DySan-1A2B")`
returns an open `Transport`; see `base.py` for the interface and its delivery contract. The BLE modules
(bleak, Bumble) are imported only when a `ble:` link is used.
"""

from dysan.transport.base import (
    NO_RECONNECT,
    LinkEvent,
    LinkLostError,
    LinkSpec,
    ReconnectPolicy,
    Transport,
    TransportError,
    TransportStats,
    open_transport,
    parse_spec,
)

__all__ = [
    "NO_RECONNECT",
    "LinkEvent",
    "LinkLostError",
    "LinkSpec",
    "ReconnectPolicy",
    "Transport",
    "TransportError",
    "TransportStats",
    "open_transport",
    "parse_spec",
]
