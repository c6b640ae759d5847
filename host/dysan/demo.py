"""The main job on the embedded synthetic default: every stage of the chain, small, without ``../shared``.

Stages (each writes under ``OUT``; each prints what it did):

1. data — summary of the synthetic dataset (labelled SYNTHETIC everywhere);
2. baseline — raw-data activity analyst / gender and age-group attackers (RF and CNN, both protocols);
3. train — a small device grid (4 sanitizers) with Algorithm 1;
4. evaluate — a GEN baseline trained the same way, then ``dysan evaluate``: every strategy (fixed,
   personalized, dynamic, DySan(o), …) against adaptive and raw-trained RF and CNN attackers, and the paper's
   analyses;
5. export — int8 TFLite + bundle + C source, verified against TFLM and the float models;
6. firmware — the Cortex-M4F image with the bundle linked in, provisioned and booted in QEMU (``dysan flash``);
7. calibrate — a signed calibration session fed by one subject's replayed samples, the RF trained, exported
   and uploaded signed with the sensitive value (``dysan calibrate``);
8. stream — more of the subject's samples replayed, the sanitized windows streamed to Parquet and checked
   byte for byte against the Python reference pipeline (``dysan stream``);
9. report — ``dysan report``: the evaluation as one HTML page.

The summary table at the end gathers one line per stage; the main evaluation table is printed after it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import ui

DEMO_DATA = "synthetic:subjects=12,seed=0"
DEMO_GRID = "small"
"""The demo's device grid (``dysan train --grid``)."""
DEMO_TRAIN: dict = {"epochs": 12, "pretrain_epochs": 3, "batch_size": 64,
                    "jitter": True, "jitter_angle": 7.5, "jitter_gain": 0.05}
"""The demo grid's training (:class:`dysan.train.loop.TrainConfig` fields; batch 64: ~24 steps an epoch on the
~1.5 k training windows instead of 6 at the default 256), on top of the hardened options (``dysan train
--hardened``: entropy privacy term, 3 discriminators reset every 3 epochs with replay, feature and identity
adversaries, moment matching), trained through the on-device jitter (``--jitter``: a secret random rotation of
at most 7.5° per axis and a gain within ±5 % per window, which the exported bundle makes the device apply).

Why these (measured 2026-12-03 on the 12-person demo data, adaptive RF attacker, DySan(o) against raw 100.0 %
activity / 94.7 % gender): the paper's objective with 6 epochs left the attribute at 99.6 % -- a single
discriminator goes stale and the person's tilt and gait, which give the gender away within-subject, stay in
the output; the hardened objective alone reached 99.6 / 75.0 % (19.7 pts, short of the demo's 20). The jitter
blurs each person's mount angle, the main carrier of the synthetic gender, but costs activity when large:
±5°: 97.8 / 77.6 %; ±7.5° (these settings): 100.0 / 67.5 %; ±10° and ±10 % gain: 95.2 / 64.0 %. 228 scored test
windows: one window is 0.44 pt."""


@dataclass
class DemoContext:
    out: Path
    data: str = DEMO_DATA
    summary: list[tuple[str, str, float]] = field(default_factory=list)
    state: dict = field(default_factory=dict)

    def record(self, stage: str, result: str, seconds: float) -> None:
        self.summary.append((stage, result, seconds))

    @property
    def synthetic(self) -> bool:
        return self.data.split(":", 1)[0] == "synthetic"

    @property
    def tag(self) -> str:
        """`` (SYNTHETIC data)`` on synthetic data, so no figure made from it passes for a real one."""
        return " (SYNTHETIC data)" if self.synthetic else ""


def stage_data(ctx: DemoContext) -> str:
    from .data import prepare

    ds, ws = prepare(ctx.data)
    c = ws.counts()
    (ctx.out / "data.json").write_text(json.dumps({"data": ds.summary(), "windows": c}, indent=2))
    return f"{c['windows']} windows, {c['subjects']} subjects{' (SYNTHETIC)' if ds.synthetic else ''}"


def stage_baseline(ctx: DemoContext) -> str:
    from . import baseline

    cfg = baseline.BaselineConfig(data=ctx.data, epochs=3, folds={"within-subject": 4, "new-users": 4},
                                  max_folds=2, rf_trees=100)
    report = baseline.run(cfg, ui.progress)
    (ctx.out / "baseline.json").write_text(json.dumps(report, indent=2))
    acc = {(r["protocol"], r["task"], r["model"]): r["accuracy"] for r in report["results"]}
    ctx.state["baseline"] = acc
    return (f"RF: activity {ui.pct(acc[('new-users', 'activity', 'rf')])} (new users), "
            f"gender {ui.pct(acc[('within-subject', 'gender', 'rf')])} (within-subject)")


def train_config():
    """The demo grid's :class:`TrainConfig` (also the GEN baseline's, with ``loss="gen"``)."""
    from .train.loop import HARDENED, TrainConfig

    return TrainConfig(**HARDENED, **DEMO_TRAIN)


def stage_train(ctx: DemoContext) -> str:
    from .train import grid
    from .train.runner import prepare_run, run_grid

    run_dir = ctx.out / "run"
    points = grid.parse(DEMO_GRID)
    cfg = train_config()
    prepare_run(run_dir, ctx.data, "default", "gender", "within-subject", 0, None, 0, points, cfg)
    summary = run_grid(run_dir, points, cfg, workers=2)
    ctx.state["run"] = run_dir
    best = max(summary["models"], key=lambda m: m["final"]["P_monitor_acc"] - abs(0.5 - m["final"]["D_monitor_acc"]))
    f = best["final"]
    return (f"{len(points)} device sanitizers; e.g. {best['point']['name']}: own P {ui.pct(f['P_monitor_acc'])}, "
            f"own D {ui.pct(f['D_monitor_acc'])}")


DEMO_ATTACK = {"families": ("rf", "cnn"), "cnn_epochs": 3, "rf_trees": 100}
"""Attackers of the demo's evaluation: the real pipeline with lighter attackers (``dysan evaluate`` defaults:
10 CNN epochs, 200 trees)."""
DEMO_DTW_WINDOWS = 32
"""Test windows sampled for the DTW analysis (``dysan evaluate`` default: 64)."""


def evaluation_config():
    """The demo's :class:`EvalConfig`: ``dysan evaluate``'s defaults with :data:`DEMO_ATTACK` attackers."""
    from .evaluate.attackers import AttackConfig
    from .evaluate.pipeline import EvalConfig

    return EvalConfig(attack=AttackConfig(**DEMO_ATTACK), dtw_windows=DEMO_DTW_WINDOWS)


def evaluate_command(run_dir: Path) -> str:
    """The ``dysan evaluate`` command that repeats the demo's evaluation (recorded in results.json)."""
    a = DEMO_ATTACK
    return (f"dysan evaluate {run_dir} --attackers {','.join(a['families'])} --cnn-epochs {a['cnn_epochs']} "
            f"--rf-trees {a['rf_trees']} --dtw-windows {DEMO_DTW_WINDOWS}")


def stage_evaluate(ctx: DemoContext) -> str:
    """GEN baseline (one model, the grid's settings) and the evaluation of the grid against it (what
    ``dysan evaluate`` does, through the same library functions)."""
    from .evaluate import pipeline, runs
    from .evaluate.report import train_command
    from .rundir import RunDir
    from .train import variants
    from .train.runner import prepare_run, run_grid

    run_dir = ctx.state["run"]
    gen_dir = RunDir(run_dir).baseline("gen").path
    cfg = replace(train_config(), loss="gen")
    point = [variants.get("gen").default_point]
    prepare_run(gen_dir, ctx.data, "default", "gender", "within-subject", 0, None, 0, point, cfg)
    run_grid(gen_dir, point, cfg, workers=1)
    with ui.progress(f"rebuilding the split of {run_dir}") as step:
        run = runs.open_run(run_dir)
        step.advance()
    for b in runs.discover_baselines(run_dir):
        runs.add_baseline(run, b)
        if run.baseline_runs[-1]["differences"]:
            ui.warn(f"baseline {b} was trained differently from the grid: "
                    + "; ".join(run.baseline_runs[-1]["differences"]))
    commands = {"evaluate": evaluate_command(run_dir), "train": train_command(run.config, str(run_dir)),
                "baselines": [train_command(b["config"], b["path"]) for b in run.baseline_runs]}
    results = pipeline.evaluate(run, evaluation_config(), run_dir / run.eval_name, commands=commands)
    (ctx.out / "evaluate.json").write_text(json.dumps(results, indent=2, default=str))
    ctx.state["evaluation"] = results
    raw, dyn = (results["strategies"][k]["attackers"]["rf-adaptive"] for k in ("raw", "dysan-o"))
    return (f"{len(results['strategies'])} strategies × RF/CNN attackers; RF adaptive, DySan(o) vs raw: activity "
            f"{ui.pct(dyn['activity']['accuracy'])} vs {ui.pct(raw['activity']['accuracy'])}, gender "
            f"{ui.pct(dyn['sensitive']['accuracy'])} vs {ui.pct(raw['sensitive']['accuracy'])}")


def stage_report(ctx: DemoContext) -> str:
    """The evaluation as one HTML page (``dysan report``'s library function)."""
    from .evaluate.report import render
    from .rundir import RunDir

    run_dir = ctx.state["run"]
    eval_dir = RunDir(run_dir).eval_dir()
    page = render(eval_dir, eval_dir, report_command=f"dysan report {run_dir}")
    ctx.state["report"] = page
    return f"{page}{ctx.tag}"


def evaluation_rows(results: dict) -> list[list[str]]:
    """Strategy × (activity, attribute) for the adaptive RF and CNN attackers: the demo's closing table."""
    rows = []
    for r in results["strategies"].values():
        row = [r["label"]]
        for key in ("rf-adaptive", "cnn-adaptive"):
            for task in ("activity", "sensitive"):
                v = r["attackers"].get(key, {}).get(task)
                row.append(ui.pct(v["accuracy"]) if v else "-")
        rows.append(row)
    return rows


def stage_export(ctx: DemoContext) -> str:
    from .export.exporter import export_run
    from .export.verify import verify_export

    models = ctx.out / "models"
    manifest = export_run(ctx.state["run"], models)
    report = verify_export(ctx.state["run"], models, n_windows=300)
    (ctx.out / "verify.json").write_text(json.dumps(report, indent=2))
    ctx.state["models"] = models
    lsb = report["checks"]["tflm_vs_tflite_max_lsb"]["value"]
    pts = report["checks"]["p_d_int8_vs_float_points"]["value"]
    failed = [k for k, c in report["checks"].items() if not (c is True or c["passed"])]
    verdict = "every check passed" if not failed else f"FAILED: {', '.join(failed)} (see verify.json)"
    return (f"bundle {manifest['bundle']['bytes']:,} bytes; TFLM vs TF Lite ≤ {lsb} LSB per op; "
            f"int8 vs float P/D ≤ {pts:.1f} pts; {verdict}")


# -- the device stages: the emulated wearable driven by the same library functions as the device verbs -------------

DEMO_KEY_NAME = "demo-qemu.key"
"""The demo's emulated wearable keeps one key in the key store (generated on the first demo, reused after)."""
DEMO_CALIB_SECONDS = 20.0
"""Seconds of each activity replayed into the calibration session (15 windows each at hop 62)."""
DEMO_STREAM_WINDOWS = 100
"""Sanitized windows streamed (about 2 min of replayed data) and checked against the Python reference."""


def stage_firmware(ctx: DemoContext) -> str:
    """make -C firmware qemu with the exported bundle linked in, a provisioned key, the emulator booted."""
    import atexit

    from .device.qemu import elf_symbols
    from .tools import emulator, flash, keystore

    opts = flash.FlashOptions("qemu", bundle=ctx.state["models"], key_file=keystore.key_dir() / DEMO_KEY_NAME)
    plan = flash.make_plan(opts)
    with ui.progress("building the firmware and booting the emulated wearable", len(plan.steps)) as step:
        res = flash.execute(plan, opts, on_step=lambda st: step.advance(1, note=st.kind))
    atexit.register(emulator.stop, res.identity.device_id_hex)  # also when a later stage fails
    ctx.state["device"] = {"url": res.url, "key_file": res.key_file, "device_id": res.identity.device_id_hex,
                           "image": plan.image}
    sym = elf_symbols(plan.image, ["__dysan_code_used", "__dysan_ram_used", "__dysan_bundle_image_start",
                                   "__dysan_bundle_image_end"])
    bundle = sym.get("__dysan_bundle_image_end", 0) - sym.get("__dysan_bundle_image_start", 0)
    (ctx.out / "device").mkdir(exist_ok=True)
    (ctx.out / "device" / "flash.json").write_text(json.dumps(res.as_dict(), indent=2, default=str))
    return (f"Cortex-M4F image ({sym.get('__dysan_code_used', 0) // 1024} KB code + {bundle // 1024} KB bundle, "
            f"{sym.get('__dysan_ram_used', 0) // 1024} KB RAM) in QEMU at {res.url}; device "
            f"{res.identity.device_id_hex} provisioned")


def _demo_subject(ctx: DemoContext):
    from .tools.replay import open_replay

    if "replay" not in ctx.state:
        from .data import load

        subject = sorted(load(ctx.data).subjects)[0]
        ctx.state["replay"] = open_replay(ctx.data, subject)
    return ctx.state["replay"]


def stage_calibrate(ctx: DemoContext) -> str:
    """Calibration by replay: one subject's samples of each activity stand in for the IMU."""
    from .rundir import BundleDir
    from .tools.calibrate import Calibration, CalibrationPlan, ConsoleHooks
    from .tools.link import DeviceLink

    dev = ctx.state["device"]
    manifest = json.loads(BundleDir(ctx.state["models"]).manifest.read_text())
    src = _demo_subject(ctx)
    plan = CalibrationPlan(tuple(manifest["classes"]), DEMO_CALIB_SECONDS, src.sensitive(manifest["attribute"]),
                           countdown=0)
    out = ctx.out / "device"
    for stale in out.glob("calibration*.npz"):
        stale.unlink()  # a fresh emulator: a session file of an earlier demo would not describe it
    with DeviceLink(dev["url"], key_file=dev["key_file"], require_key=True, timeout=10.0) as link:
        res = Calibration(link, plan, replay=src, state_path=out / "calibration.npz", out_dir=out,
                          hooks=ConsoleHooks()).run()
    ctx.state["calibration"] = res
    per = min(res.windows.values())
    return (f"subject {src.subject}: {per} raw windows per activity ({len(res.windows)} activities) in a signed "
            f"session; RF {res.rf['n_trees']} trees, {res.rf['table_bytes']:,} bytes, cross-validated accuracy "
            f"{ui.pct(res.cv_accuracy)}; RF and sensitive value uploaded signed")


def stage_stream(ctx: DemoContext) -> str:
    """Replay more of the subject's data; stream the sanitized windows; compare with the Python reference."""
    from . import jitter
    from .device import reference
    from .errors import DysanError
    from .rundir import BundleDir
    from .tools import emulator, keystore
    from .tools.link import DeviceLink
    from .tools.replay import samples_for
    from .tools.stream import Streamer, StreamOptions, reference_for_parts
    from .tools.writers import open_writer, read_windows

    dev = ctx.state["device"]
    src = _demo_subject(ctx)
    cal = ctx.state["calibration"]
    samples = src.stream_samples(samples_for(DEMO_STREAM_WINDOWS), chunk_s=10.0, skip_s=DEMO_CALIB_SECONDS)
    target = ctx.out / "device" / "stream.parquet"
    for old in (target, target.with_name(target.name + ".spool")):
        old.unlink(missing_ok=True)
    writer = open_writer(str(target))
    try:
        with DeviceLink(dev["url"], key_file=dev["key_file"], require_key=True, timeout=10.0) as link, \
                ui.progress("streaming sanitized windows from the emulated wearable", DEMO_STREAM_WINDOWS) as step:
            stats = Streamer(link, writer, StreamOptions(samples=samples),
                             view=lambda st: step.update(completed=st.written)).run()
    finally:
        writer.close()
        emulator.stop(dev["device_id"])
    bundle = reference.Bundle(ctx.state["models"])
    manifest = json.loads(BundleDir(ctx.state["models"]).manifest.read_text())
    # a jitter bundle's bytes follow the device's seed of each part's boot (the key and INFO's boot epoch,
    # recorded per part by the streamer): reference_for_parts reseeds the pipeline part by part
    key = keystore.load(dev["key_file"]).key
    seed = jitter.device_seed(key, stats.parts[0].boot_epoch) if bundle.jitter is not None else None
    pipe = reference.ReferencePipeline(bundle, cal.rf_table, src.sensitive(manifest["attribute"]), jitter_seed=seed)
    want = reference_for_parts(pipe, samples, stats.parts, key)
    got = read_windows(target)
    same = sum(1 for g, w in zip(got, want, strict=False)
               if (g["data"], g["model_id"], g["rf_label"], g["flags"]) == (w.data, w.model_id, w.rf_label, w.flags))
    report = {"windows": len(got), "reference_windows": len(want), "identical": same, "stats": stats.as_dict(),
              "output": str(target), "subject": src.subject, "calibration": cal.as_dict()}
    (ctx.out / "device" / "device.json").write_text(json.dumps(report, indent=2, default=str))
    ctx.state["stream"] = report
    if len(got) != len(want) or same != len(want):
        raise DysanError(f"the emulated device's output differs from the Python reference: {same} of {len(want)} "
                         f"windows identical ({len(got)} received); see {ctx.out / 'device' / 'device.json'}")
    models = ", ".join(f"{m}: {n}" for m, n in sorted(stats.models.items()))
    return (f"{len(got)} sanitized windows ({stats.rate:.0f}/s), byte-identical to the Python reference; "
            f"models used {models}; {target}")


STAGES: list[tuple[str, Callable[[DemoContext], str]]] = [
    ("data", stage_data),
    ("baseline", stage_baseline),
    ("train", stage_train),
    ("evaluate", stage_evaluate),
    ("export", stage_export),
    ("firmware", stage_firmware),
    ("calibrate", stage_calibrate),
    ("stream", stage_stream),
    ("report", stage_report),
]


def run(out: Path, data: str = DEMO_DATA) -> DemoContext:
    out.mkdir(parents=True, exist_ok=True)
    ctx = DemoContext(out=out, data=data)
    t_all = time.time()
    for name, fn in STAGES:
        ui.info(f"== {name}")
        t0 = time.time()
        result = fn(ctx)
        ctx.record(name, result, time.time() - t0)
        ui.info(f"   {result}")
    ctx.record("total", f"outputs in {out}", time.time() - t_all)
    return ctx
