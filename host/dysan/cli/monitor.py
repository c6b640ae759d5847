"""``dysan monitor``: device logs (LOG) and counters (INFO, STATS), live; read-only."""

from __future__ import annotations

import argparse
import time

from .. import ui
from .common import add_json_option, write_json

PORT_HELP = ("the device link: socket://127.0.0.1:PORT (QEMU or the host build, as printed by dysan flash), "
             "/dev/ttyACM0 (serial:PATH@BAUD), or ble:NAME")


def add_parser(sub) -> None:
    p = sub.add_parser("monitor", help="device logs and stats, live (read-only)",
                       description="Show the device's LOG lines as they come and its INFO and STATS counters "
                       "(link errors, auth failures, windows sent / acknowledged / dropped, work per stage) every "
                       "--interval seconds. Read-only: sends only HELLO, PING and STATS_REQ and never acknowledges "
                       "a window. Ctrl-C stops.")
    p.add_argument("--port", required=True, metavar="SPEC", help=PORT_HELP)
    p.add_argument("--key-file", metavar="FILE", help="the device's key file (only to check it matches the device)")
    p.add_argument("--seconds", type=float, help="stop after this many seconds (default: until Ctrl-C)")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between STATS (default: %(default)s)")
    add_json_option(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from rich.live import Live
    from rich.table import Table

    from ..tools.link import DeviceLink
    from ..tools.monitor import run_monitor

    def render(res) -> Table:
        t = Table(title=f"device {res.info.get('device_id', '?')}  mode {res.info.get('mode', '?')}  "
                  f"bundle {'ok' if res.info.get('bundle_valid') else 'none'} ({res.info.get('model_count', 0)} "
                  f"models)  RF {'ok' if res.info.get('rf_loaded') else 'none'}  sensitive "
                  f"{'set' if res.info.get('sensitive_set') else 'unset'}", title_justify="left")
        t.add_column("counter")
        t.add_column("value", justify="right")
        for k, v in res.stats.items():
            t.add_row(k, f"{v:,}")
        t.add_row("windows seen (not acknowledged)", f"{res.windows_seen:,}")
        return t

    def on_log(level: str, text: str) -> None:
        style = {"ERROR": "bold red", "WARN": "yellow", "DEBUG": "dim"}.get(level, "")
        ui.err.print(f"[{style}]{time.strftime('%H:%M:%S')} {level:5s} {text}[/{style}]" if style else
                     f"{time.strftime('%H:%M:%S')} {level:5s} {text}", highlight=False, markup=bool(style))

    link = DeviceLink(args.port, key_file=args.key_file)
    live = Live(console=ui.err, auto_refresh=False, transient=False) if ui.err.is_terminal else None
    last_line = [0.0]

    def on_update(res) -> None:
        if live is not None:
            live.update(render(res), refresh=True)
        elif time.monotonic() - last_line[0] > 10:
            last_line[0] = time.monotonic()
            ui.info("stats: " + ", ".join(f"{k}={v}" for k, v in res.stats.items()))

    res = None
    try:
        if live is not None:
            live.start()
        res = run_monitor(link, seconds=args.seconds, interval=args.interval, on_update=on_update, on_log=on_log)
    except KeyboardInterrupt:
        pass
    finally:
        if live is not None:
            live.stop()
        link.close()
    if res is not None:
        ui.table("INFO", ["field", "value"], [[k, v] for k, v in res.info.items()])
        ui.table("STATS", ["counter", "value"], [[k, f"{v:,}"] for k, v in res.stats.items()])
        write_json(args.json, res.as_dict())
    return 0
