"""The emulated wearable in real time: the QEMU firmware sanitizing an IMU recording played at 50 Hz.

Replay (``Session.replay``) feeds samples on demand, so it can never show whether the firmware keeps up.
Here the samples come from the emulated IMU of the qemu-m4 port (:mod:`.imu_image`): a hardware timer
interrupt at 50 Hz of *virtual* time fills a FIFO whatever the core is doing, and the core runs under
``-icount shift=4`` -- 16 virtual ns per instruction, a 62.5 MHz Cortex-M4 at one instruction per cycle --
so a pipeline that falls behind loses samples exactly as it would on the wrist, and the firmware's counters
(STATS ``samples_missed``, ``windows_late``, ``windows_with_gaps``, ``backlog_max``) say so. ``sleep=off``
makes virtual time skip the core's idle periods: ten minutes of a wearable's life take seconds of host time.

The run: boot with the recording (and, unless the image links a default bundle, the bundle and RF) placed by
QEMU's loader; state the sensitive value (and a schedule, if given); STREAMING; wait until the IMU has
delivered or lost every sample of the recording; IDLE (the device processes what it acquired and sends the
last partial segment); read STATS. Its windows are what ``ReferencePipeline.run(samples, replayed=False)``
computes when nothing was lost.

Duty is measured, not modelled: the firmware accumulates the virtual time it spends asleep in
``dysan_port_idle`` (``work_idle``); everything else is busy time, divided by the recording's duration.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import contract
from ..errors import DysanError
from ..protocol.schema import Mode
from . import imu_image
from .provision import Identity, new_identity
from .qemu import QemuDevice, elf_symbols
from .reference import Bundle, Schedule
from .session import Session, Window

SHIFT = 4
"""``-icount shift``: 2^4 = 16 virtual ns per instruction = 62.5 MHz at one instruction per cycle."""
CLOCK_64MHZ = 64_000_000


@dataclass
class RealtimeRun:
    """What one real-time run produced and counted (STATS deltas over the run)."""

    n_samples: int
    shift: int
    windows: list[Window]
    counters: dict[str, int]
    wall_s: float
    schedule: dict = field(default_factory=dict)
    boot_epoch: int = 0
    """INFO's boot epoch of the run (a jitter bundle's windows are reproduced with it: dysan.jitter)."""

    @property
    def recording_s(self) -> float:
        return self.n_samples / contract.RATE_HZ

    @property
    def busy_ns(self) -> int:
        return self.counters["cycles"] - self.counters["work_idle"]

    @property
    def instructions(self) -> float:
        """Instructions executed while not asleep (virtual ns / 2^shift)."""
        return self.busy_ns / (1 << self.shift)

    @property
    def duty_emulated(self) -> float:
        """Busy fraction of the recording's duration on the emulated core (1e9 / 2^shift Hz)."""
        return self.busy_ns / (self.recording_s * 1e9)

    @property
    def duty_64mhz(self) -> float:
        """The same instructions on a 64 MHz Cortex-M4 at one instruction per cycle."""
        return self.instructions / (CLOCK_64MHZ * self.recording_s)

    def summary(self) -> dict:
        c = self.counters
        return {"samples": self.n_samples, "virtual_seconds": round(self.recording_s, 2), "icount_shift": self.shift,
                "emulated_mhz": round(1e3 / (1 << self.shift), 2), "schedule": self.schedule,
                "windows": len(self.windows), "samples_acquired": c["samples_acquired"],
                "samples_missed": c["samples_missed"], "windows_with_gaps": c["windows_with_gaps"],
                "windows_late": c["windows_late"], "backlog_max": c["backlog_max"],
                "rx_overflows": c["rx_overflows"], "windows_dropped": c["windows_dropped"],
                "stage_windows": c["stage_windows"], "candidates_scored": c["candidates_scored"],
                "busy_instructions": round(self.instructions), "duty_emulated": round(self.duty_emulated, 5),
                "duty_64mhz": round(self.duty_64mhz, 5), "wall_seconds": round(self.wall_s, 1)}


def run(elf: str | Path, bundle: Bundle, rf_table: bytes, sensitive: int, samples: np.ndarray, *,
        schedule: Schedule | None = None, shift: int = SHIFT, fifo_depth: int = 0,
        identity: Identity | None = None, timeout: float = 1800.0, progress=None) -> RealtimeRun:
    """One real-time run of ``samples`` (``(n, 6)`` int16 counts) through the QEMU image ``elf``.

    ``schedule``: CONFIGURE it (None: the bundle's defaults); ``fifo_depth``: the emulated IMU's FIFO (0: 32);
    ``progress(done, total)``: called with samples delivered so far."""
    s_np = np.ascontiguousarray(samples, dtype=np.int16).reshape(-1, contract.N_CHANNELS)
    n = len(s_np)
    names = ["__dysan_bundle_start", "__dysan_bundle_image_start", "__dysan_bundle_image_end", "__dysan_rf_start",
             imu_image.SYMBOL, imu_image.SIZE_SYMBOL]
    syms = elf_symbols(elf, names)
    if imu_image.SYMBOL not in syms:
        raise DysanError(f"{elf}: no {imu_image.SYMBOL} (an image without the emulated IMU: make -C firmware qemu)")
    if n > imu_image.capacity(syms[imu_image.SIZE_SYMBOL]):
        raise DysanError(f"{n} samples do not fit the IMU region ({imu_image.capacity(syms[imu_image.SIZE_SYMBOL])})")
    linked = syms.get("__dysan_bundle_image_end", 0) > syms.get("__dysan_bundle_image_start", 0)
    loads: list[tuple[bytes, int]] = [(imu_image.pack(s_np, fifo_depth=fifo_depth), syms[imu_image.SYMBOL])]
    if not linked:
        loads += [(bundle.image, syms["__dysan_bundle_start"]), (bytes(rf_table), syms["__dysan_rf_start"])]
    identity = identity or new_identity()
    t0 = time.monotonic()
    with QemuDevice(elf, provision=identity, loads=loads, icount=shift, icount_sleep=False, read_timeout=30.0) as q:
        s = Session(q.serial, identity, timeout=60.0)
        s.hello()
        if linked:  # QEMU cannot place a second image over the linked default bundle: upload instead
            s.upload_bundle(bundle.image)
            s.upload_rf(rf_table)
        s.set_sensitive(int(sensitive))
        if schedule is not None:
            s.configure(schedule.segment, schedule.candidates, schedule.x_q15, schedule.y_q15)
        info = s.hello()
        if not (info.bundle_valid and info.rf_loaded and info.sensitive_set):
            raise DysanError(f"the firmware is not ready to sanitize: {list(s.logs)[-3:]}")
        before = s.stats().to_dict()
        first = max(s.windows, default=0) + 1
        s.set_mode(Mode.STREAMING)
        deadline = time.monotonic() + timeout
        while True:
            st = s.stats().to_dict()
            done = (st["samples_acquired"] - before["samples_acquired"]
                    + st["samples_missed"] - before["samples_missed"])
            if progress is not None:
                progress(min(done, n), n)
            if done >= n:
                break
            if time.monotonic() > deadline:
                raise DysanError(f"the emulated IMU delivered {done} of {n} samples within {timeout:.0f} s")
            s.poll(0.2)
        s.set_mode(Mode.IDLE)  # the samples acquired are processed, the last partial segment sent
        after = s.stats().to_dict()
        windows = s.received(first)
    counters = {k: after[k] - before[k] for k in after if isinstance(after[k], int)}
    counters["backlog_max"] = after["backlog_max"]  # a maximum, not a count
    sched = schedule or bundle.schedule
    return RealtimeRun(n, shift, windows, counters, time.monotonic() - t0,
                       {"segment": sched.segment, "candidates": sched.candidates, "x_q15": sched.x_q15,
                        "y_q15": sched.y_q15}, int(info.boot_epoch))


# -- the benchmark (``dysan bench-firmware``: >= 10 minutes of virtual time) --------------------------------

def recording(data: str, n_samples: int, seed: int = 0) -> tuple[np.ndarray, bytes, int, str]:
    """A wearable's recording of ``n_samples`` samples from the data spec ``data``: the subject with the most
    samples (more subjects back to back if one is too short), a calibration RF trained on that subject's own
    windows (as its calibration session would) and its sensitive value. Returns ``(samples, rf_table,
    sensitive, description)``."""
    from ..calibration import rf
    from ..data import prepare
    from .stream_replay import subject_samples

    ds, ws = prepare(data)
    per_subject = {s: subject_samples(ds, s) for s in sorted({r.subject for r in ds.recordings})}
    order = sorted(per_subject, key=lambda s: -len(per_subject[s]))
    taken, parts = [], []
    for s in order:
        taken.append(s)
        parts.append(per_subject[s])
        if sum(len(p) for p in parts) >= n_samples:
            break
    samples = np.concatenate(parts)[:n_samples]
    if len(samples) < n_samples:
        raise DysanError(f"{data}: {len(samples)} samples in all, {n_samples} needed")
    sid = ws.subjects.index(taken[0])
    mine = np.flatnonzero(ws.subject == sid)
    rng = np.random.default_rng(seed)
    pick = np.concatenate([rng.permutation(mine[ws.activity[mine] == c])[:40] for c in range(len(ws.classes))])
    with np.errstate(**np.geterr()):  # rf.train imports emlearn, which sets numpy.seterr(all="raise") for good
        table = rf.train(ws.x[pick], ws.activity[pick], len(ws.classes), seed=seed, n_trees=10).table
    return samples, table, int(ws.sensitive[mine[0]]), f"{data.split(':')[0]} subject(s) {', '.join(taken)}"


def bench(elf: str | Path, bundle_dir: str | Path, *, minutes: float, data: str, heavy_minutes: float,
          check_reference: bool = True) -> dict:
    """The real-time benchmark: ``minutes`` of virtual time with the bundle's default schedule (0 missed
    samples expected, output byte-identical to the reference), then ``heavy_minutes`` of a configuration
    that cannot keep up (every candidate on every window on a 7.8 MHz core: shift 7), which the counters
    must catch."""
    from .. import ui
    from ..jitter import device_seed
    from .reference import ReferencePipeline

    bundle = Bundle(bundle_dir, verify=check_reference)
    n = int(minutes * 60 * contract.RATE_HZ)
    samples, rf_table, sensitive, what = recording(data, n)
    out: dict = {"data": what, "bundle": str(bundle_dir), "n_models": bundle.n_models}
    identity = new_identity()  # kept: a jitter bundle's reference needs the device's seed (dysan.jitter)
    with ui.progress(f"real time: {minutes:g} min of virtual time at 62.5 MHz", n) as step:
        run_ = run(elf, bundle, rf_table, sensitive, samples, identity=identity,
                   progress=lambda done, total: step.advance(done - step.done))
    out["default"] = run_.summary()
    if check_reference:
        with ui.progress(f"the Python reference on the same {n} samples (TFLM)", 1) as step:
            seed = device_seed(identity.key, run_.boot_epoch)
            want = ReferencePipeline(bundle, rf_table, sensitive, jitter_seed=seed).run(samples, replayed=False)
            step.advance(1)
        same = len(want) == len(run_.windows) and all(
            (g.seq, g.model_id, g.rf_label, g.flags, g.data) == (w.seq, w.model_id, w.rf_label, w.flags, w.data)
            for g, w in zip(run_.windows, want, strict=False))
        out["default"]["identical_to_reference"] = same
        out["default"]["reference_windows"] = len(want)
    if heavy_minutes > 0:
        h = bundle.header
        every = Schedule(h["segment"], bundle.n_models, h["score_x_q15"], h["score_y_q15"])
        m = int(heavy_minutes * 60 * contract.RATE_HZ)
        with ui.progress(f"too heavy: {heavy_minutes:g} min, every candidate, 7.8 MHz", m) as step:
            heavy = run(elf, bundle, rf_table, sensitive, samples[:m], schedule=every, shift=7,
                        progress=lambda done, total: step.advance(done - step.done))
        out["too_heavy"] = heavy.summary()
        out["too_heavy"]["windows_flagged"] = sum(1 for w in heavy.windows if w.flags & 0x30)
    return out


def print_bench(r: dict) -> None:
    from .. import ui

    rows = []
    for key, label in (("default", "default schedule, 62.5 MHz"), ("too_heavy", "every candidate, 7.8 MHz")):
        if key not in r:
            continue
        s = r[key]
        rows.append([label, f"{s['virtual_seconds'] / 60:.1f} min", s["schedule"]["candidates"], s["windows"],
                     s["samples_missed"], s["windows_with_gaps"], s["windows_late"], s["backlog_max"],
                     f"{100 * s['duty_64mhz']:.2f} %", s.get("identical_to_reference", "-"),
                     f"{s['wall_seconds']:.0f} s"])
    ui.table(f"Real time on the emulated wearable ({r['data']}, {r['n_models']} models; IMU at 50 Hz of virtual "
             "time from a timer interrupt)",
             ["run", "virtual", "cand.", "windows", "samples missed", "gap windows", "late windows",
              "worst backlog", "duty @64 MHz", "= reference", "host time"], rows,
             caption="duty: busy virtual time (not asleep in dysan_port_idle) / recording, converted to 64 MHz at "
                     "one instruction per cycle")
