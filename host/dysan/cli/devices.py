"""``dysan devices``: serial ports, emulators and BLE devices in range; ``--probe``: which answer HELLO."""

from __future__ import annotations

import argparse

from .. import ui
from .common import add_json_option, write_json


def add_parser(sub) -> None:
    from ..boards import BOARDS

    ids = "; ".join(f"{b.target} {', '.join(f'{u.vid:04X}:{u.pid:04X}' for u in b.usb_ids)}"
                    for b in BOARDS.values() if b.usb_ids)
    p = sub.add_parser("devices", help="list serial ports, running emulators and BLE devices (optionally probe them)",
                       description="List the serial ports (with a guess of the board behind each USB id), the "
                       "emulators started by `dysan flash --target qemu|host`, and the BLE devices in range (the OS "
                       "Bluetooth stack through bleak; one line says so where there is none). --probe sends HELLO "
                       "to each port and emulator and shows what answers (opening a port may reset an ESP32). "
                       f"USB ids of the boards (from dysan.boards): {ids}.")
    p.add_argument("--probe", action="store_true", help="send HELLO to every port and emulator listed")
    p.add_argument("--port", action="append", default=[], metavar="SPEC",
                   help="also probe this link spec (socket://HOST:PORT, /dev/ttyX, ble:NAME); repeatable")
    p.add_argument("--no-ble", action="store_true", help="skip the BLE scan")
    p.add_argument("--ble-timeout", type=float, default=4.0, help="seconds of BLE scanning (default: %(default)s)")
    p.add_argument("--all", action="store_true", help="also list non-USB serial ports (/dev/ttyS*)")
    add_json_option(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..tools.devices import list_devices

    res = list_devices(do_probe=args.probe, extra=args.port, ble=not args.no_ble, ble_timeout=args.ble_timeout,
                       all_ports=args.all, on_step=lambda spec: ui.info(f"probing {spec} ..."))
    answers = {p["port"]: p for p in res.probed}

    def probe_cell(spec: str) -> str:
        p = answers.get(spec)
        if p is None:
            return "-"
        if p["answers"]:
            i = p["info"]
            return f"DySan {i['device_id']} fw {i['fw_version']} ({i['mode']})"
        return "no answer"

    rows = [[p["port"], p["vid_pid"] or "-", (p["guess"] or p["description"] or "-")
             + (f" (dysan flash --target {p['target']})" if p.get("target") else ""), probe_cell(p["port"])]
            for p in res.ports]
    rows += [[e["url"], "-", f"emulator ({e['target']}, pid {e['pid']}, device {e['device_id']})",
              probe_cell(e["url"])] for e in res.emulators]
    listed = {r[0] for r in rows}
    rows += [[spec, "-", "-", probe_cell(spec)] for spec in args.port if spec not in listed]
    if rows:
        ui.table("Serial links", ["port", "USB id", "what", "HELLO"], rows)
    else:
        ui.info("no serial ports found (USB boards show up as /dev/ttyACM* or /dev/ttyUSB*)")
    for p in res.probed:
        if not p["answers"] and p["port"] in args.port:
            ui.info(f"{p['port']}: {p['why']}")
    if not args.no_ble:
        if res.ble:
            ui.table("BLE devices", ["address", "name", "RSSI", "Nordic UART"],
                     [[d["address"], d["name"] or "-", d["rssi"], "yes" if d["nus"] else "-"] for d in res.ble])
        else:
            ui.info(f"BLE: {res.ble_note}")
    write_json(args.json, res.as_dict())
    return 0
