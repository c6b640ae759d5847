"""``dysan flash``: build the firmware, provision the device key, put both on the target."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from .. import ui
from ..errors import DysanError
from .common import add_json_option, write_json


def add_parser(sub) -> None:
    from ..boards import EMULATED, TARGETS, help_text

    p = sub.add_parser(
        "flash", help=f"build, provision and flash the firmware ({', '.join(TARGETS)})",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Build the firmware, provision the device key and put both on the target.\n\n"
        + help_text() + "\n\n"
        "xiao-sense without PlatformIO: built with make -C firmware xiao from ../shared/vendor/xiao-nrf52840\n"
        "(the same sources and flags as platformio.ini); its --dry-run also writes and checks the UF2 file.\n\n"
        "The key: 32 random bytes generated once per device and stored in the key store\n"
        "(~/.config/dysan/keys/<device-id>.key, mode 0600; $DYSAN_KEYS overrides) or in --key-file; it is\n"
        "never printed. Later verbs find it by the device id the device reports.")
    p.add_argument("--target", choices=TARGETS, help="what to flash (required unless --stop)")
    p.add_argument("--bundle", metavar="DIR", help="an exported bundle (dysan export ... --out models/NAME): linked "
                   "into the emulator image, uploaded over the link on boards")
    p.add_argument("--key-file", metavar="FILE", help="the device key file (created with a new key if missing; "
                   "default: a new key in the key store)")
    p.add_argument("--device-id", metavar="HEX", help="re-flash a device whose key is in the key store")
    p.add_argument("--port", metavar="SPEC", help="boards: the serial port to upload through (e.g. /dev/ttyACM0)")
    p.add_argument("--uf2-drive", metavar="DIR", help="xiao-sense: the mounted UF2 bootloader drive")
    p.add_argument("--method", choices=("uf2", "nrfutil"), help="xiao-sense: how to flash (default: uf2 with "
                   "--uf2-drive, else nrfutil)")
    p.add_argument("--builder", choices=("pio", "make"), help="xiao-sense: PlatformIO, or make -C firmware xiao "
                   "from the vendored core (default: pio when installed, else make)")
    p.add_argument("--listen-port", type=int, metavar="N",
                   help=f"{'/'.join(EMULATED)}: TCP port of the serial link (default: a free one)")
    p.add_argument("--foreground", action="store_true", help="qemu/host: keep the emulator attached until Ctrl-C")
    p.add_argument("--dry-run", action="store_true", help="print the exact steps and commands; run nothing")
    p.add_argument("--stop", action="store_true", help="stop the emulators started by dysan flash (all, or the "
                   "one of --device-id) and exit")
    add_json_option(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..tools import emulator
    from ..tools.flash import FlashOptions, check_tools, dry_run_package, execute, make_plan

    if args.stop:
        stopped = emulator.stop(args.device_id)
        for e in stopped:
            ui.info(f"stopped {e.target} emulator of device {e.device_id} (pid {e.pid}, {e.url})")
        if not stopped:
            ui.info("no emulator started by dysan flash is running")
        write_json(args.json, {"stopped": [e.device_id for e in stopped]})
        return 0
    if args.target is None:
        from ..boards import TARGETS

        raise DysanError(f"--target is required ({', '.join(TARGETS)})")
    opts = FlashOptions(target=args.target, bundle=Path(args.bundle) if args.bundle else None,
                        key_file=Path(args.key_file) if args.key_file else None, device_id=args.device_id,
                        port=args.port, uf2_drive=Path(args.uf2_drive) if args.uf2_drive else None,
                        method=args.method, listen_port=args.listen_port, builder=args.builder)
    plan = make_plan(opts)
    if args.dry_run:
        package = dry_run_package(plan)
        for line in plan.lines() + package:
            ui.out.print(line, highlight=False, markup=False, soft_wrap=True)
        write_json(args.json, {"dry_run": True, "target": plan.target, "package": package,
                               "steps": [{"kind": s.kind, "text": s.text, "argv": s.argv} for s in plan.steps]})
        return 0
    check_tools(plan)
    t0 = time.monotonic()
    with ui.progress(f"flashing {args.target}", len(plan.steps)) as step:
        res = execute(plan, opts, on_step=lambda s: step.advance(1, note=s.text.split(" (")[0][:60]))
    ui.info(f"device {res.identity.device_id_hex}: key in {res.key_file}"
            + (" (new)" if res.key_created else "") + f"; done in {time.monotonic() - t0:.1f} s")
    write_json(args.json, res.as_dict())
    if res.emulator is not None:
        ui.out.print(res.emulator.url, highlight=False)
        if args.foreground:
            ui.info(f"{args.target} emulator running (pid {res.emulator.pid}); Ctrl-C stops it")
            try:
                while res.emulator.alive():
                    time.sleep(0.5)
            except KeyboardInterrupt:
                pass
            finally:
                emulator.stop(res.identity.device_id_hex)
        else:
            ui.info(f"emulator running detached (pid {res.emulator.pid}); stop it with: dysan flash --stop "
                    f"--device-id {res.identity.device_id_hex}")
    return 0
