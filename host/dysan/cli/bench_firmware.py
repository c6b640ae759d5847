"""``dysan bench-firmware``: what the firmware costs on the Cortex-M4F, measured in QEMU.

The QEMU image runs under ``-icount shift=0``, where ``dysan_port_cycles()`` counts executed instructions
exactly (firmware/ports/README.md). The firmware accumulates them per pipeline stage and per int8 kernel
(per-op profiling of every inference, with each op's MACs) and reports them in STATS, which this verb reads
over the serial socket after replaying windows. It reports against the budgets of BRIEF.md section 4:

* sanitize one window (one S run) <= 1 M instructions;
* sanitization + on-chip selection, amortized per hop, <= 25 % duty at 64 MHz, assuming one instruction per
  cycle (one hop = 62 samples at 50 Hz = 1.24 s = 79.36 M cycles) -- measured for several candidate counts,
  which gives the largest count per window that fits;
* flash (firmware + models + RF) <= 768 KB, from ``make -C firmware size`` and the images;
* RAM of the ML path <= 96 KB: the pipeline's static objects (nm -S of the ELF) plus its deepest stack;
* MAC per instruction of the conv / fully-connected kernels >= 1.

Without ``--bundle`` it benchmarks a bundle of a full grid's size (36 models) of untrained device-family
networks: the kernels execute the same instructions whatever the weights, so the costs are those of a
trained grid (``--bundle`` takes an exported one instead).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np

from .. import contract, ui
from ..errors import DysanError
from ..rundir import BundleDir
from .common import add_json_option, write_json

REPO = Path(__file__).resolve().parents[3]
FIRMWARE = REPO / "firmware"
ELF = FIRMWARE / "build" / "qemu-m4" / "dysan.elf"
CLOCK_HZ = 64_000_000
HOP_S = contract.HOP / contract.RATE_HZ
HOP_CYCLES = HOP_S * CLOCK_HZ
BUDGETS = {
    "sanitize_window_instructions": 1_000_000,
    "duty_cycle": 0.25,
    "flash_bytes": 768 * 1024,
    "ml_ram_bytes": 96 * 1024,
    "macs_per_instruction": 1.0,
}
ASSUMPTION = (f"duty = instructions per hop / ({contract.HOP} samples / {contract.RATE_HZ} Hz x 64 MHz = "
              f"{HOP_CYCLES / 1e6:.2f} M cycles), assuming one instruction per cycle on the Cortex-M4F "
              "(QEMU -icount shift=0 counts instructions, not cycles: flash wait states, loads and taken "
              "branches make a real M4 slower, SMLAD and single-cycle MACs do not)")
ML_OBJECTS = ("ml_pipe", "ml_bundle", "ml_ring", "ml_window", "ml_samples", "ml_jitter_counts", "ml_jitter_out")
# The deepest call chain of the ML path (stack frames from -fstack-usage, core/src and core/nn): a stream
# ending on a command drains the sample ring through the pipeline's slices.
ML_STACK_CHAIN = ("dysan_app_poll", "handle_frame", "on_set_mode", "restart_stream", "drain_ring", "take_samples",
                  "window_ready", "dysan_pipe_step", "emit_slice", "run", "dysan_nn_invoke_profiled", "nn_conv2d",
                  "nn_m4_conv_fast_pass", "nn_k22_run", "dysan_rf_predict", "dysan_window_features")
# Hand-written assembly has no .su file: its frame, read from the source (push/sub sp in nn_k22_run).
ASM_FRAMES = {"nn_k22_run": 76}


def add_parser(sub) -> None:
    p = sub.add_parser("bench-firmware", help="instructions per stage, duty cycle, flash and RAM of the firmware "
                       "(QEMU Cortex-M4F)",
                       description="Boot the QEMU firmware under -icount shift=0, replay windows, read the "
                       "per-stage instruction counters over the link and report them against the device "
                       "budgets (BRIEF.md section 4).")
    p.add_argument("--bundle", metavar="DIR", help="exported bundle directory (bundle.bin); default: a full-grid "
                   "size bundle of untrained device-family models")
    p.add_argument("--windows", type=int, default=60,
                   help="windows replayed per candidate count (default: %(default)s)")
    p.add_argument("--candidates", default="8,16,24,28,32,36", metavar="LIST",
                   help="candidate counts per window to measure (default: %(default)s)")
    p.add_argument("--models", type=int, default=36, help="models of the default bundle (default: %(default)s)")
    p.add_argument("--out", default="out/bench-firmware", help="output directory (default: %(default)s)")
    p.add_argument("--realtime-minutes", type=float, default=10.0, metavar="MIN",
                   help="minutes of virtual time for the real-time run on the emulated wearable (IMU at 50 Hz from a "
                   "timer interrupt, 62.5 MHz core; 0 skips it; default: %(default)s)")
    p.add_argument("--realtime-data", default=None, metavar="SPEC",
                   help="the recording the emulated IMU plays (default: SisFall from ../shared where present, else "
                   "the synthetic data)")
    p.add_argument("--heavy-minutes", type=float, default=2.0, metavar="MIN",
                   help="minutes of the deliberately too-heavy real-time run (every candidate, 7.8 MHz) whose losses "
                   "the counters must catch (0 skips it; default: %(default)s)")
    p.add_argument("--no-cmsis", action="store_true", help="skip the op-by-op comparison of our kernels with "
                   "CMSIS-NN's (it needs ../shared/vendor; skipped with a note where that is absent)")
    add_json_option(p)
    p.set_defaults(run=run)


def _make(*targets: str) -> str:
    r = subprocess.run(["make", "-C", str(FIRMWARE), "-j2", *targets], capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise DysanError(f"make -C firmware {' '.join(targets)} failed:\n{r.stderr[-2000:] or r.stdout[-2000:]}")
    return r.stdout + r.stderr


def _nm_sizes(elf: Path) -> dict[str, int]:
    nm = shutil.which("arm-none-eabi-nm")
    if nm is None:
        raise DysanError("arm-none-eabi-nm not found (tools/install-sysdeps.sh)")
    out = subprocess.run([nm, "-S", str(elf)], capture_output=True, text=True, check=True).stdout
    sizes = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4:
            sizes[parts[3]] = int(parts[1], 16)
    return sizes


def _stack_usage() -> dict[str, int]:
    """Frame bytes per function of the QEMU build (-fstack-usage .su files)."""
    frames: dict[str, int] = {}
    for su in (FIRMWARE / "build" / "qemu-m4" / "obj").rglob("*.su"):
        for line in su.read_text().splitlines():
            m = re.match(r"^\S+:\d+:\d+:([\w.]+)\s+(\d+)\s+", line)
            if m:
                name = m.group(1).split(".")[0]
                frames[name] = max(frames.get(name, 0), int(m.group(2)))
    return frames


def memory_report(bundle_bytes: int, rf_bytes: int) -> dict:
    _make("size")
    size = json.loads((FIRMWARE / "build" / "qemu-m4" / "size.json").read_text())["dysan.elf"]
    sizes = _nm_sizes(ELF)
    ml_static = {k: sizes.get(k, 0) for k in ML_OBJECTS}
    frames = {**_stack_usage(), **ASM_FRAMES}
    stack = sum(frames.get(f, 0) for f in ML_STACK_CHAIN)
    flash = size["code_flash"] + bundle_bytes + rf_bytes
    return {
        "flash": {"firmware_code": size["code_flash"], "bundle": bundle_bytes, "rf": rf_bytes, "total": flash,
                  "budget": BUDGETS["flash_bytes"], "ok": flash <= BUDGETS["flash_bytes"]},
        "ram": {"total_static_incl_stacks": size["ram"], "stack_reserved": size["stack"],
                "ml_static_objects": ml_static, "ml_stack_chain_bytes": stack,
                "ml_path": sum(ml_static.values()) + stack, "budget": BUDGETS["ml_ram_bytes"],
                "ok": sum(ml_static.values()) + stack <= BUDGETS["ml_ram_bytes"]},
    }


def _default_bundle(out: Path, n_models: int) -> Path:
    """A full-grid-size bundle of untrained device-family models (two distinct triples, repeated)."""
    import hashlib
    import inspect

    from ..data import prepare
    from ..device import random_bundle
    from ..export import bundle_format, model_image
    from ..nets import device

    # Keyed by what shapes the bytes (the networks, the image and bundle formats): never a stale bundle.
    key = hashlib.sha256(f"{inspect.getsource(device)}|{model_image.VERSION}|{bundle_format.VERSION}".encode())
    target = out / f"bundle-random-{n_models}-{key.hexdigest()[:10]}"
    if BundleDir(target).image.is_file():
        return target
    _, ws = prepare("synthetic")
    with ui.progress(f"converting untrained device-family models for a {n_models}-model bundle", 1) as step:
        random_bundle.build(target, ws.x[::4], n_models=n_models, distinct=2, n_classes=len(ws.classes), seed=0)
        step.advance(1)
    return target


def _replay_stream(n_windows: int) -> tuple[np.ndarray, bytes, int]:
    """Synthetic samples for n windows, and a calibration RF (a calibration session's worth of windows)."""
    from ..calibration import rf
    from ..data import prepare
    from ..device.stream_replay import samples_for_windows, subject_samples

    ds, ws = prepare("synthetic")
    need = samples_for_windows(n_windows)
    parts = [subject_samples(ds, subj) for subj in sorted({r.subject for r in ds.recordings})]
    samples = np.concatenate(parts)[:need]
    if len(samples) < need:
        raise DysanError(f"the synthetic data holds fewer than {n_windows} windows")
    rng = np.random.default_rng(0)
    pick = np.concatenate([rng.permutation(np.flatnonzero(ws.activity == c))[:50] for c in range(len(ws.classes))])
    with np.errstate(**np.geterr()):  # rf.train imports emlearn, which sets numpy.seterr(all="raise") for good
        forest = rf.train(ws.x[pick], ws.activity[pick], len(ws.classes), seed=0)
    return samples, forest.table, len(ws.classes)


def _per_window(delta: dict[str, int]) -> dict:
    w = max(1, delta["stage_windows"])
    out = {f"{k}_per_window": delta[f"work_{k}"] / w
           for k in ("preprocess", "rf", "score", "sanitize", "link", "total")}
    out["per_candidate"] = delta["work_score"] / max(1, delta["candidates_scored"])
    out["per_sanitizer_run"] = delta["work_sanitize"] / max(1, delta["sanitizer_runs"])
    out["duty_cycle"] = out["total_per_window"] / HOP_CYCLES
    return out


def measure(bundle_dir: Path, candidates: list[int], n_windows: int) -> dict:
    from ..device import QemuDevice, elf_symbols, new_identity
    from ..device.reference import Bundle
    from ..device.session import Session

    bundle = Bundle(bundle_dir, verify=False)
    samples, rf_table, n_classes = _replay_stream(n_windows)
    if bundle.n_classes != n_classes:
        raise DysanError(f"the benchmark's RF has {n_classes} classes, the bundle {bundle.n_classes}")
    syms = elf_symbols(ELF, ["__dysan_bundle_start", "__dysan_bundle_image_start", "__dysan_bundle_image_end",
                             "__dysan_rf_start"])
    linked = syms.get("__dysan_bundle_image_end", 0) > syms.get("__dysan_bundle_image_start", 0)
    loads = [] if linked else [(bundle.image, syms["__dysan_bundle_start"]), (rf_table, syms["__dysan_rf_start"])]
    identity = new_identity()
    runs = []
    with QemuDevice(ELF, provision=identity, loads=loads, icount=0, read_timeout=30.0) as qemu:
        s = Session(qemu.serial, identity, timeout=60.0)
        s.hello()
        if linked:  # QEMU cannot place a second image over the linked default bundle: upload instead
            with ui.progress("uploading the bundle over the emulated UART", len(bundle.image)) as step:
                s.upload_bundle(bundle.image, progress=lambda done, total: step.advance(done - step.done))
            s.upload_rf(rf_table)
        s.set_sensitive(1)
        info = s.hello()
        if not (info.bundle_valid and info.rf_loaded):
            raise DysanError(f"the firmware did not load the bundle / RF: {list(s.logs)[-3:]}")
        h = bundle.header
        with ui.progress(f"replaying {n_windows} windows per candidate count in QEMU", len(candidates)) as step:
            for k in candidates:
                s.configure(h["segment"], k, h["score_x_q15"], h["score_y_q15"])
                before = s.stats().to_dict()
                got = s.replay(samples, timeout=1200)
                after = s.stats().to_dict()
                delta = {key: after[key] - before[key] for key in after if isinstance(after[key], int)}
                if len(got) != n_windows or delta["windows_dropped"]:
                    raise DysanError(f"candidates {k}: {len(got)} of {n_windows} windows, "
                                     f"{delta['windows_dropped']} dropped")
                runs.append({"candidates": k, "evaluated_per_window": min(k, bundle.n_models),
                             "counters": delta, **_per_window(delta)})
                step.advance(1, note=f"k={k}")
    conv_m = sum(r["counters"]["kernel_conv_macs"] for r in runs)
    conv_w = sum(r["counters"]["kernel_conv_work"] for r in runs)
    fc_m = sum(r["counters"]["kernel_fc_macs"] for r in runs)
    fc_w = sum(r["counters"]["kernel_fc_work"] for r in runs)
    kernels = {"conv": {"macs": conv_m, "instructions": conv_w, "macs_per_instruction": conv_m / max(1, conv_w)},
               "fc": {"macs": fc_m, "instructions": fc_w, "macs_per_instruction": fc_m / max(1, fc_w)},
               "conv+fc": {"macs_per_instruction": (conv_m + fc_m) / max(1, conv_w + fc_w)}}
    return {"bundle": str(bundle_dir), "n_models": bundle.n_models, "segment": bundle.header["segment"],
            "rf_bytes": len(rf_table), "bundle_bytes": len(bundle.image), "runs": runs, "kernels": kernels,
            "windows_per_run": n_windows}


def run(args: argparse.Namespace) -> int:
    from ..device import qemu_available

    if not qemu_available():
        raise DysanError("qemu-system-arm not found (Debian: apt-get install qemu-system-arm)")
    if args.windows < 5:
        raise DysanError("--windows must be at least 5")
    try:
        candidates = sorted({int(v) for v in args.candidates.split(",") if v.strip()})
    except ValueError:
        raise DysanError(f"--candidates: expected comma-separated integers, got {args.candidates!r}") from None
    if not candidates or min(candidates) < 1 or max(candidates) > 255:
        raise DysanError("--candidates: values in 1..255")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    _make("qemu")
    bundle_dir = Path(args.bundle) if args.bundle else _default_bundle(out, args.models)
    result = measure(bundle_dir, candidates, args.windows)
    result["memory"] = memory_report(result["bundle_bytes"], result["rf_bytes"])
    result["kernels_vs_cmsis"] = {"skipped": "--no-cmsis"} if args.no_cmsis else _kernels_vs_cmsis(bundle_dir)
    result["default_schedule"] = _default_schedule_duty(result, bundle_dir)
    if args.realtime_minutes > 0:
        result["realtime"] = _realtime(bundle_dir, args.realtime_minutes, args.realtime_data, args.heavy_minutes)
    fits = [r for r in result["runs"] if r["duty_cycle"] <= BUDGETS["duty_cycle"]]
    result["recommended_candidates"] = max((r["candidates"] for r in fits), default=None)
    sanitize = max(r["per_sanitizer_run"] for r in result["runs"])
    mpi = result["kernels"]["conv+fc"]["macs_per_instruction"]
    result["budgets"] = {
        "sanitize_window_instructions": {"measured": round(sanitize), "budget": BUDGETS["sanitize_window_instructions"],
                                         "ok": sanitize <= BUDGETS["sanitize_window_instructions"]},
        "duty_cycle": {"measured": {r["candidates"]: round(r["duty_cycle"], 4) for r in result["runs"]},
                       "budget": BUDGETS["duty_cycle"], "fits_up_to_candidates": result["recommended_candidates"]},
        "flash_bytes": {"measured": result["memory"]["flash"]["total"], "budget": BUDGETS["flash_bytes"],
                        "ok": result["memory"]["flash"]["ok"]},
        "ml_ram_bytes": {"measured": result["memory"]["ram"]["ml_path"], "budget": BUDGETS["ml_ram_bytes"],
                         "ok": result["memory"]["ram"]["ok"]},
        "macs_per_instruction": {"measured": round(mpi, 3), "budget": BUDGETS["macs_per_instruction"],
                                 "ok": mpi >= BUDGETS["macs_per_instruction"]},
    }
    d = result["default_schedule"]
    result["budgets"]["default_schedule_duty"] = {"measured": d.get("duty_cycle"), "budget": DEFAULT_DUTY_BUDGET,
                                                  "candidates": d["candidates"], "ok": d.get("ok", False)}
    if "realtime" in result:
        rt = result["realtime"]["default"]
        result["budgets"]["realtime_no_missed_sample"] = {
            "measured": rt["samples_missed"], "budget": 0, "virtual_seconds": rt["virtual_seconds"],
            "ok": rt["samples_missed"] == 0 and rt.get("identical_to_reference", True)}
    result["assumption"] = ASSUMPTION
    result["clock_hz"] = CLOCK_HZ
    result["hop_cycles"] = HOP_CYCLES
    _print(result)
    _print_realtime(result)
    _print_kernels_vs_cmsis(result["kernels_vs_cmsis"])
    (out / "bench-firmware.json").write_text(json.dumps(result, indent=2))
    ui.info(f"wrote {out / 'bench-firmware.json'}")
    write_json(args.json, result)
    return 0


def _kernels_vs_cmsis(bundle_dir: Path) -> dict:
    """Model 0's S, P and D op by op through our kernels and CMSIS-NN's, and under the TFLM interpreter where its
    libraries are built (:mod:`dysan.bench.kernels`)."""
    from ..bench import kernels

    return kernels.compare_bundle(bundle_dir)


def _print_kernels_vs_cmsis(rep: dict) -> None:
    from ..bench import kernels

    kernels.print_report(rep)


DEFAULT_DUTY_BUDGET = 0.05
"""The raised goal (BRIEF.md section 4): the default on-chip DySan(o) schedule at <= 5 % duty, 64 MHz."""


def _default_schedule_duty(result: dict, bundle_dir: Path) -> dict:
    """The measured row of the bundle's default candidates per window, against the 5 % goal."""
    from ..device.reference import Bundle
    from ..export.bundle_format import ScheduleDefaults

    header = Bundle(bundle_dir, verify=False).header
    k = min(int(ScheduleDefaults().candidates), int(header["n_models"]))
    row = next((r for r in result["runs"] if r["evaluated_per_window"] == k), None)
    out = {"candidates": k, "bundle_default_candidates": int(header["candidates"]), "budget": DEFAULT_DUTY_BUDGET}
    if row is None:
        out["note"] = f"no measured row with {k} candidates per window (add it to --candidates)"
        return out
    out |= {"instructions_per_hop": round(row["total_per_window"]), "duty_cycle": round(row["duty_cycle"], 4),
            "ok": row["duty_cycle"] <= DEFAULT_DUTY_BUDGET}
    return out


def _realtime(bundle_dir: Path, minutes: float, data: str | None, heavy_minutes: float) -> dict:
    """The real-time runs of :func:`dysan.device.realtime.bench` on a SisFall subject (or synthetic data)."""
    from ..device import realtime
    from .bench import DEFAULT_DATA

    if data is None:
        archive = REPO / DEFAULT_DATA.split(":", 1)[1]
        data = f"sisfall:{archive}" if archive.is_file() else "synthetic"
        if data == "synthetic":
            ui.warn(f"{archive} not found: the real-time run plays the synthetic data")
    return realtime.bench(ELF, bundle_dir, minutes=minutes, data=data, heavy_minutes=heavy_minutes,
                          check_reference=BundleDir(bundle_dir).manifest.is_file())


def _print_realtime(result: dict) -> None:
    from ..device import realtime

    d = result.get("default_schedule", {})
    if "duty_cycle" in d:
        ui.info(f"default schedule ({d['candidates']} candidates / window): {d['instructions_per_hop'] / 1e6:.2f} M "
                f"instructions per hop = {100 * d['duty_cycle']:.2f} % duty at 64 MHz (goal <= 5 %: "
                f"{'ok' if d['ok'] else 'OVER'})")
    if "realtime" in result:
        realtime.print_bench(result["realtime"])


def _k(v: float) -> str:
    return f"{v / 1000:,.1f} k"


def _print(r: dict) -> None:
    rows = []
    for run_ in r["runs"]:
        rows.append([run_["candidates"], run_["evaluated_per_window"], _k(run_["preprocess_per_window"]),
                     _k(run_["rf_per_window"]), _k(run_["score_per_window"]), _k(run_["per_candidate"]),
                     _k(run_["sanitize_per_window"]), _k(run_["per_sanitizer_run"]), _k(run_["link_per_window"]),
                     _k(run_["total_per_window"]), f"{100 * run_['duty_cycle']:.1f} %"])
    ui.table(f"Instructions per window = per hop (QEMU Cortex-M4F, {r['n_models']} models, segment {r['segment']}, "
             f"{r['windows_per_run']} windows per row)",
             ["candidates", "evaluated", "preprocess", "RF", "scoring", "per candidate", "sanitize", "per S run",
              "link", "total / hop", "duty @64 MHz"], rows, caption=r["assumption"])
    m, b = r["memory"], r["budgets"]
    k = r["kernels"]
    ui.table("Budgets (BRIEF.md section 4)", ["what", "measured", "budget", "ok"], [
        ["sanitize one window (S run)", f"{b['sanitize_window_instructions']['measured']:,} instr",
         "1,000,000", b["sanitize_window_instructions"]["ok"]],
        ["duty cycle, selection + sanitization", f"fits up to {r['recommended_candidates']} candidates/window",
         "25 %", r["recommended_candidates"] is not None],
        ["flash: firmware + bundle + RF", f"{m['flash']['firmware_code']:,} + {m['flash']['bundle']:,} + "
         f"{m['flash']['rf']:,} = {m['flash']['total']:,} B", f"{BUDGETS['flash_bytes']:,} B", m["flash"]["ok"]],
        ["RAM of the ML path", f"{m['ram']['ml_path']:,} B (static {sum(m['ram']['ml_static_objects'].values()):,}"
         f" + stack {m['ram']['ml_stack_chain_bytes']:,})", f"{BUDGETS['ml_ram_bytes']:,} B", m["ram"]["ok"]],
        ["MAC / instruction, conv + FC", f"{k['conv+fc']['macs_per_instruction']:.3f} (conv "
         f"{k['conv']['macs_per_instruction']:.3f}, FC {k['fc']['macs_per_instruction']:.3f})", ">= 1",
         b["macs_per_instruction"]["ok"]],
    ])
