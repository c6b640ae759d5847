"""``dysan calibrate``: record each activity, train the calibration RF, upload it and the sensitive value."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .. import ui
from ..errors import DysanError
from ..rundir import BundleDir
from .common import add_json_option, write_json
from .monitor import PORT_HELP


def add_parser(sub) -> None:
    p = sub.add_parser(
        "calibrate", help="guided calibration: record activities, train + upload the RF (+ the sensitive value "
        "of an attribute with more than two values)",
        description="The DySan(o) calibration, guided: for an attribute with more than two values asks the "
        "sensitive value (or takes --sensitive; a two-valued one is never asked: the device does not need it), walks "
        "through each activity with a countdown and a progress bar while the device sends raw windows (only "
        "inside this signed calibration session), trains the calibration random forest, shows its "
        "cross-validated accuracy, exports its node table and uploads it signed, then sets the sensitive value "
        "signed when there is one. Resumable: what was recorded is kept in a session file, and rerunning the same "
        "command after a broken link continues from it. --replay pushes a subject's recorded samples as the "
        "emulator's IMU. Fully scriptable: --yes asks nothing.")
    p.add_argument("--port", required=True, metavar="SPEC", help=PORT_HELP)
    p.add_argument("--key-file", metavar="FILE", help="the device's key file (default: the key store entry of the "
                   "device id the device reports)")
    p.add_argument("--sensitive", metavar="VALUE", help="the user's sensitive value, for an attribute of more than "
                   "two values (0..K-1 or a label); a two-valued one (gender) is never asked nor sent: the device's "
                   "score is the same for either value")
    p.add_argument("--attribute", default="gender", help="what the sensitive value is (labels; default: %(default)s)")
    p.add_argument("--bundle", metavar="DIR", help="the exported bundle on the device: its activity classes and "
                   "attribute labels are used")
    p.add_argument("--activities", metavar="A,B,...", help="activities, in the bundle's class order (default: the "
                   "bundle's classes, else those of the default activity map)")
    p.add_argument("--seconds-per-activity", type=float, default=30.0, metavar="N",
                   help="seconds recorded per activity (default: %(default)s)")
    p.add_argument("--replay", metavar="SPEC", help="data source whose samples stand in for the IMU "
                   "(sisfall:PATH, synthetic...): the emulator has none")
    p.add_argument("--subject", metavar="ID", help="with --replay: whose samples (e.g. SA01)")
    p.add_argument("--activity-map", default="default", help="with --replay: activity map of the data source")
    p.add_argument("--session-file", metavar="FILE", help="where the recorded windows are kept (default: "
                   "$XDG_STATE_HOME/dysan/calibration/<device-id>.npz)")
    p.add_argument("--out", metavar="DIR", help="where calibration_rf.bin and calibration.json go (default: next "
                   "to the session file)")
    p.add_argument("--countdown", type=int, help="seconds of countdown before each activity (default: 3, 0 with "
                   "--replay)")
    p.add_argument("--trees", type=int, help="trees of the calibration RF (default: 12 with the bundle's calibration "
                   "population, 20 on the calibration windows alone)")
    p.add_argument("--yes", "-y", action="store_true", help="ask nothing (every answer comes from the flags)")
    add_json_option(p)
    p.set_defaults(run=run)


def _labels(args, manifest: dict | None) -> tuple[str, ...]:
    if manifest is not None and manifest.get("attribute_labels"):
        return tuple(manifest["attribute_labels"])
    from ..data.attributes import parse

    return tuple(parse(args.attribute).labels)


def _population(bundle: str | None):
    """The bundle's calibration population (dysan export writes it), or None (the user's windows alone)."""
    from ..calibration.rf import Population

    path = BundleDir(bundle).population if bundle else None
    if path is None or not path.is_file():
        ui.info("calibration RF: no bundle calibration population, the forest learns from your windows alone")
        return None
    return Population.load(path)


def run(args: argparse.Namespace) -> int:
    from ..tools.calibrate import DEFAULT_ACTIVITIES, Calibration, CalibrationPlan, ConsoleHooks, parse_sensitive
    from ..tools.link import DeviceLink
    from ..tools.replay import open_replay

    manifest = None
    if args.bundle:
        mpath = BundleDir(args.bundle).manifest
        if not mpath.is_file():
            raise DysanError(f"{args.bundle}: no {mpath.name} (an exported bundle folder?)")
        manifest = json.loads(mpath.read_text())
    classes = tuple(manifest["classes"]) if manifest else DEFAULT_ACTIVITIES
    activities = tuple(a.strip() for a in args.activities.split(",")) if args.activities else classes
    if manifest is not None and activities != classes:
        # the RF's labels are class indices of the bundle's predictors: same classes, same order
        raise DysanError(f"--activities must be the bundle's classes in its order: {','.join(classes)}")
    if len(set(activities)) != len(activities) or len(activities) < 2:
        raise DysanError("--activities needs at least two distinct activities")
    if bool(args.replay) != bool(args.subject):
        raise DysanError("--replay and --subject go together")
    replay = open_replay(args.replay, args.subject, args.activity_map) if args.replay else None
    if replay is not None:
        missing = [a for a in activities if a not in replay.activities]
        if missing:
            raise DysanError(f"{args.replay}: no activity class {', '.join(missing)} in its {args.activity_map!r} map")
    interactive = ui.is_interactive() and not args.yes
    labels = _labels(args, manifest)
    if len(labels) == 2:
        # |0.5 - s| is the same for v and 1 - v: the device selects the same models whatever the value, so it is
        # never told (docs/firmware.md, "The sensitive value").
        sensitive = None
        if args.sensitive is not None:
            ui.info(f"--sensitive ignored: {args.attribute} has two values, and the device does not need yours")
    elif args.sensitive is not None:
        sensitive = parse_sensitive(args.sensitive, labels)
    elif interactive:
        sensitive = parse_sensitive(input(f"Your {args.attribute} ({'/'.join(labels)}): "), labels)
    elif replay is not None:
        sensitive = replay.sensitive(args.attribute)
        ui.info(f"sensitive value: the replayed subject's own ({args.attribute} of {args.subject})")
    else:
        raise DysanError("--sensitive is required with --yes (or without a terminal)")
    countdown = args.countdown if args.countdown is not None else (0 if replay is not None else 3)
    population = _population(args.bundle)
    plan = CalibrationPlan(activities, args.seconds_per_activity, sensitive, countdown=countdown, trees=args.trees,
                           population=population)
    link = DeviceLink(args.port, key_file=args.key_file, require_key=True, timeout=10.0)
    try:
        link.open()
        cal = Calibration(link, plan, replay=replay, state_path=Path(args.session_file) if args.session_file else None,
                          out_dir=Path(args.out) if args.out else None, hooks=ConsoleHooks(interactive))
        res = cal.run()
    finally:
        link.close()
    rows = [[a, n] for a, n in res.windows.items()]
    ui.table(f"Calibration of device {link.identity.device_id_hex if link.identity else '?'}",
             ["activity", "windows"], rows)
    ui.info(f"calibration RF: {res.rf['n_trees']} trees, {res.rf['table_bytes']:,} bytes; cross-validated "
            f"accuracy {ui.pct(res.cv_accuracy)} ({res.cv_folds} folds)"
            + (f"; {res.reconnects} reconnect(s)" if res.reconnects else ""))
    stated = " and the sensitive value" if sensitive is not None else " (no sensitive value: not needed)"
    ui.info(f"uploaded (signed) the RF{stated}; RF table and report in {res.out_dir}")
    write_json(args.json, res.as_dict())
    return 0
