"""``dysan stream``: sanitized windows to CSV / Parquet / stdout, each acknowledged once written."""

from __future__ import annotations

import argparse
import json
import time

from .. import ui
from ..errors import DysanError
from .common import add_json_option, write_json
from .monitor import PORT_HELP


def add_parser(sub) -> None:
    p = sub.add_parser(
        "stream", help="sanitized windows from the device to CSV / Parquet / stdout, with a live view",
        description="Receive the device's sanitized windows and write them, one row per sample (boot, part, seq, "
        "sample, model_id, rf_label, flags, six channels), acknowledging each window only once it is written; "
        "missing windows are asked for again (RESEND), and the stream reconnects after a link drop or a device "
        "restart. Without --bundle the channels are the device's int8 output (with the model id); with it, "
        "they are dequantized to g and rad/s. --replay pushes a subject's recorded samples as the emulator's "
        "IMU (REPLAY mode).")
    p.add_argument("--port", required=True, metavar="SPEC", help=PORT_HELP)
    p.add_argument("--key-file", metavar="FILE", help="the device's key file (default: from the key store)")
    p.add_argument("--out", metavar="FILE", help="FILE.csv, FILE.parquet or - (stdout); default: only the summary")
    p.add_argument("--windows", type=int, metavar="N", help="stop after N windows")
    p.add_argument("--seconds", type=float, metavar="S", help="live mode: stop after S seconds")
    p.add_argument("--bundle", metavar="DIR", help="the exported bundle on the device: dequantize to g and rad/s")
    p.add_argument("--replay", metavar="SPEC", help="data source whose samples stand in for the IMU")
    p.add_argument("--subject", metavar="ID", help="with --replay: whose samples")
    p.add_argument("--activity-map", default="default", help="with --replay: activity map of the data source")
    p.add_argument("--chunk-seconds", type=float, default=10.0,
                   help="with --replay: seconds of each activity before the next (default: %(default)s)")
    p.add_argument("--skip-seconds", type=float, default=0.0,
                   help="with --replay: seconds of each activity left out first, e.g. those calibration used")
    p.add_argument("--reconnect-timeout", type=float, default=30.0,
                   help="seconds to get a broken link back (default: %(default)s)")
    add_json_option(p)
    p.set_defaults(run=run)


def _view_renderer():
    from rich.table import Table

    def render(st) -> Table:
        t = Table(title=f"dysan stream  device {st.device_id}", title_justify="left", show_header=False)
        t.add_column("what")
        t.add_column("value", justify="right")
        models = ", ".join(f"{m}: {n}" for m, n in sorted(st.models.items())) or "-"
        errors = sum(st.link_errors.values())
        t.add_row("selected model (last)", "-" if st.last_model is None else str(st.last_model))
        t.add_row("windows by model", models)
        t.add_row("windows written", f"{st.written:,}")
        t.add_row("windows / s", f"{st.rate:.1f}")
        t.add_row("link errors (host decoder)", f"{errors:,}")
        t.add_row("device errors (STATS)", f"{st.device_errors:,}")
        t.add_row("resends / retransmitted", f"{st.resends:,} / {st.retransmitted:,}")
        t.add_row("lost", f"{st.lost:,}")
        t.add_row("reconnects / restarts", f"{st.reconnects} / {st.reboots}")
        return t

    return render


def run(args: argparse.Namespace) -> int:
    from rich.live import Live

    from ..tools.link import DeviceLink
    from ..tools.replay import open_replay, samples_for
    from ..tools.stream import Streamer, StreamOptions
    from ..tools.writers import Dequantizer, open_writer

    if bool(args.replay) != bool(args.subject):
        raise DysanError("--replay and --subject go together")
    if args.windows is not None and args.windows < 1:
        raise DysanError("--windows must be at least 1")
    samples = None
    if args.replay:
        src = open_replay(args.replay, args.subject, args.activity_map)
        n = samples_for(args.windows) if args.windows else None
        samples = src.stream_samples(n, chunk_s=args.chunk_seconds, skip_s=args.skip_seconds)
    deq = None
    if args.bundle:
        from ..rundir import BundleDir

        mpath = BundleDir(args.bundle).manifest
        if not mpath.is_file():
            raise DysanError(f"{args.bundle}: no {mpath.name} (an exported bundle folder?)")
        deq = Dequantizer(json.loads(mpath.read_text()))
    writer = open_writer(args.out, deq)
    if getattr(writer, "recovered", 0):
        ui.info(f"{args.out}: {writer.recovered} windows of an interrupted run recovered from its spool")
    opts = StreamOptions(samples=samples, windows=args.windows, seconds=args.seconds,
                         reconnect_timeout=args.reconnect_timeout)
    link = DeviceLink(args.port, key_file=args.key_file, require_key=samples is not None, timeout=10.0)
    render = _view_renderer()
    live = Live(console=ui.err, auto_refresh=False, transient=False) if ui.err.is_terminal else None
    last_line = [0.0]

    def view(st) -> None:
        if live is not None:
            live.update(render(st), refresh=True)
        elif time.monotonic() - last_line[0] > 10:
            last_line[0] = time.monotonic()
            ui.info(f"  {st.written} windows, {st.rate:.1f}/s, model {st.last_model}, resends {st.resends}, "
                    f"lost {st.lost}, reconnects {st.reconnects}")

    stats = None
    try:
        if live is not None:
            live.start()
        link.open()
        stats = Streamer(link, writer, opts, view).run()
    except KeyboardInterrupt:
        ui.info("stopped")
    finally:
        if live is not None:
            live.stop()
        link.close()
        writer.close()
    if stats is None:
        return 130
    caption = f"output: {args.out}" if args.out else "no --out: windows were acknowledged and discarded"
    if args.out == "-":  # stdout carries the CSV: the summary goes to stderr
        ui.info(f"{stats.written} windows written, {stats.lost} lost, {stats.resends} resends, "
                f"{stats.reconnects} reconnects, {stats.elapsed:.1f} s")
        write_json(args.json, stats.as_dict())
        return 0
    ui.table("dysan stream", ["", "value"], [
        ["windows written", stats.written], ["windows lost", stats.lost],
        ["models used", ", ".join(f"{m}: {n}" for m, n in sorted(stats.models.items())) or "-"],
        ["resends / retransmitted", f"{stats.resends} / {stats.retransmitted}"],
        ["link errors (host)", sum(stats.link_errors.values())], ["reconnects / restarts",
                                                                   f"{stats.reconnects} / {stats.reboots}"],
        ["seconds", f"{stats.elapsed:.1f}"]], caption=caption)
    write_json(args.json, stats.as_dict())
    return 0
