"""``dysan devices``: what is attached -- serial ports (with a board guess), emulators started by
``dysan flash``, BLE devices in range -- and, with ``probe``, which of them answer our HELLO.

Probing opens the port, sends one HELLO and waits briefly for INFO; it is opt-in because opening a serial
port may reset a board (ESP32 DevKits wire DTR/RTS to EN/IO0) and because a port that is not ours may
receive a few stray bytes. The BLE scan uses the OS stack through bleak; on a machine without Bluetooth
(no adapter, no BlueZ) it reports that in one line instead of failing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..boards import board_for_usb
from ..device.session import Session
from ..errors import DysanError
from ..transport import NO_RECONNECT, TransportError
from ..transport.ble_nus import scan
from ..transport.serial_link import list_serial_ports
from . import emulator
from .link import open_link
from .monitor import info_dict


@dataclass
class DeviceList:
    ports: list[dict] = field(default_factory=list)
    emulators: list[dict] = field(default_factory=list)
    ble: list[dict] = field(default_factory=list)
    ble_note: str = ""
    probed: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"serial_ports": self.ports, "emulators": self.emulators, "ble": self.ble, "ble_note": self.ble_note,
                "probed": self.probed}


def probe(spec: str, timeout: float = 1.5) -> dict:
    """Does ``spec`` answer HELLO? ``{"port", "answers", "info" | "why"}``."""
    out: dict = {"port": spec, "answers": False}
    try:
        transport = open_link(spec, policy=NO_RECONNECT, timeout=timeout + 5)
    except (TransportError, DysanError) as exc:
        out["why"] = str(exc)
        return out
    try:
        s = Session(transport, None, timeout=timeout)
        out["info"] = info_dict(s.hello())
        out["answers"] = True
    except (TransportError, DysanError) as exc:
        out["why"] = str(exc) if "within" not in str(exc) else f"no INFO within {timeout:g} s (not a DySan device?)"
    finally:
        transport.close()
    return out


def list_devices(*, do_probe: bool = False, extra: list[str] | None = None, ble: bool = True,
                 ble_timeout: float = 4.0, all_ports: bool = False, probe_timeout: float = 1.5,
                 on_step=None) -> DeviceList:
    result = DeviceList()
    for p in list_serial_ports(usb_only=not all_ports):
        row = p.as_dict()
        board = board_for_usb(p.vid, p.pid)
        row["target"] = board.target if board is not None else None  # the `dysan flash --target` for it
        result.ports.append(row)
    for emu in emulator.running():
        result.emulators.append({"device_id": emu.device_id, "target": emu.target, "url": emu.url, "pid": emu.pid})
    if do_probe:
        specs = [p["port"] for p in result.ports] + [e["url"] for e in result.emulators] + list(extra or [])
        for spec in dict.fromkeys(specs):
            if on_step is not None:
                on_step(spec)
            result.probed.append(probe(spec, probe_timeout))
    elif extra:
        for spec in extra:
            result.probed.append(probe(spec, probe_timeout))
    if ble:
        found = scan(ble_timeout)
        result.ble = [d.as_dict() for d in found.devices]
        result.ble_note = found.note
    return result
