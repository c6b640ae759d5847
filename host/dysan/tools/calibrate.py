"""``dysan calibrate``: the DySan(o) calibration session, guided and resumable.

What the paper's deployable variant needs from the user, once: a short recording of each activity (the
calibration random forest learns the user's own movements from those *raw* windows) and the sensitive value,
stated (it is what the device scores candidate sanitizers against). The flow:

1. for each activity: a signed CALIB_START (raw windows leave the device only inside such a session), the
   user performs the activity (or, in replay mode, the subject's recorded samples of that activity are
   pushed as the emulator's IMU), RAW_WINDOW frames are recorded until enough windows arrived, CALIB_STOP;
2. the RF is trained on those windows (:func:`dysan.calibration.rf.train`) and its cross-validated accuracy
   shown (stratified k-fold on the same windows: a check that the activities are separable, not a claim
   about new users);
3. its node table is exported (``calibration_rf.bin`` + ``calibration.json``) and uploaded signed
   (RF_BEGIN / chunks / RF_COMMIT: resumes where the device stopped), then the sensitive value is set signed,
   and a signed HELLO checks that the device reports both.

**Resumable.** Every recorded window goes to a session file (``$XDG_STATE_HOME/dysan/calibration/<device
id>.npz``, mode 0600: it holds raw motion data and the sensitive value) as soon as it arrives. If the link
drops, the session reconnects and goes on; if it cannot, it stops with a one-line error and rerunning the
same command continues from the file -- finished activities are not asked for again, a half-recorded one
needs only its missing windows. A finished session is kept as ``<device id>.done.npz``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import contract, ui
from ..calibration import rf as rf_mod
from ..data.activities import BUILTIN
from ..device.session import DeviceError, Session
from ..errors import DysanError
from ..features import calibration_features
from ..protocol.schema import Mode
from ..transport import TransportError
from .link import DeviceLink
from .replay import ReplaySource, samples_for, windows_in

DEFAULT_ACTIVITIES = tuple(BUILTIN["sisfall"]["default"])
"""Activities walked through when no bundle says which: the classes of the default activity map."""
RF_REGION_BYTES = rf_mod.REGION_BYTES
"""Capacity of the device's RF region (firmware/ports/README.md): a larger table is retrained smaller."""
STATE_FORMAT = 1


def state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "dysan" / "calibration"


@dataclass
class CalibrationPlan:
    activities: tuple[str, ...]
    """Activity names in label order (label = position): the bundle's classes."""
    seconds: float
    sensitive: int | None
    """The user's value of the sensitive attribute; None for a two-valued one, which is never stated (the
    device's score is the same for either value: docs/firmware.md)."""
    countdown: int = 3
    trees: int | None = None
    """Trees of the forest (None: rf's default, 12 with a population, 20 without)."""
    seed: int = 0
    population: rf_mod.Population | None = None
    """The bundle's calibration population (``calibration_population.npz``): the forest learns from it and
    the user's windows together (:mod:`dysan.calibration.rf`); None: the user's windows alone."""

    @property
    def windows_per_activity(self) -> int:
        return max(2, windows_in(round(self.seconds * contract.RATE_HZ)))


@dataclass
class CalibrationState:
    """What a calibration has done so far (the session file)."""

    device_id: str
    activities: tuple[str, ...]
    sensitive: int
    """The stated value, or NOT_STATED (a two-valued attribute)."""
    windows: dict[str, np.ndarray] = field(default_factory=dict)
    consumed: dict[str, int] = field(default_factory=dict)
    """Replay: windows of the activity's samples already used (the next round starts after them)."""
    rf_table: bytes = b""
    rf_committed_sha: str = ""
    sensitive_done: bool = False
    report: dict = field(default_factory=dict)

    def recorded(self, activity: str) -> int:
        w = self.windows.get(activity)
        return 0 if w is None else len(w)

    def add(self, activity: str, wins: list[np.ndarray]) -> None:
        if not wins:
            return
        new = np.stack(wins).astype(np.int16)
        old = self.windows.get(activity)
        self.windows[activity] = new if old is None else np.concatenate([old, new])

    def save(self, path: Path) -> None:
        meta = {"format": STATE_FORMAT, "device_id": self.device_id, "activities": list(self.activities),
                "sensitive": self.sensitive, "consumed": self.consumed, "rf_committed_sha": self.rf_committed_sha,
                "sensitive_done": self.sensitive_done, "report": self.report}
        arrays = {f"w{i}": self.windows[a] for i, a in enumerate(self.activities) if a in self.windows}
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            np.savez(f, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8),
                     rf=np.frombuffer(self.rf_table, np.uint8), **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> CalibrationState:
        try:
            with np.load(path) as z:
                meta = json.loads(bytes(z["meta"]).decode())
                if meta.get("format") != STATE_FORMAT:
                    raise ValueError(f"format {meta.get('format')}")
                acts = tuple(meta["activities"])
                windows = {a: z[f"w{i}"] for i, a in enumerate(acts) if f"w{i}" in z.files}
                rf_table = bytes(z["rf"])
        except (OSError, ValueError, KeyError) as exc:
            raise DysanError(f"{path}: not a calibration session file ({exc}); remove it to start over") from None
        return cls(meta["device_id"], acts, int(meta["sensitive"]), windows, dict(meta["consumed"]), rf_table,
                   meta["rf_committed_sha"], bool(meta["sensitive_done"]), meta.get("report", {}))


class Hooks:
    """What the flow shows and asks; the CLI gives a rich implementation, tests and the demo a quiet one."""

    def message(self, text: str) -> None:
        pass

    def ready(self, activity: str, index: int, total: int, seconds: float) -> None:
        """Called before an activity's recording starts (the CLI asks the user to press Enter)."""

    def countdown(self, activity: str, seconds: int) -> None:
        pass

    def progress(self, label: str, total: int) -> contextlib.AbstractContextManager[Callable[[int], None]]:
        @contextlib.contextmanager
        def quiet():
            yield lambda done: None

        return quiet()


class ConsoleHooks(Hooks):
    """Messages, prompts, countdowns and progress bars on the terminal (``dysan calibrate``, the demo)."""

    def __init__(self, interactive: bool = False) -> None:
        self.interactive = interactive

    def message(self, text: str) -> None:
        ui.info(text)

    def ready(self, activity: str, index: int, total: int, seconds: float) -> None:
        ui.info(f"[bold]Activity {index + 1} of {total}: {activity}[/bold] -- about {seconds:g} s")
        if self.interactive:
            input(f"Get ready to {activity}; press Enter to start ")

    def countdown(self, activity: str, seconds: int) -> None:
        for i in range(seconds, 0, -1):
            ui.info(f"  {activity} in {i} ...")
            time.sleep(1.0)
        if seconds:
            ui.info(f"  go: {activity}!")

    @contextlib.contextmanager
    def progress(self, label: str, total: int):
        with ui.progress(label, total) as step:
            yield lambda done: step.update(completed=done)


@dataclass
class CalibrationResult:
    state_path: Path
    out_dir: Path
    windows: dict[str, int]
    cv_accuracy: float | None
    cv_folds: int
    rf: dict
    rf_table: bytes
    reconnects: int
    resumed: bool

    def as_dict(self) -> dict:
        return {"session_file": str(self.state_path), "out": str(self.out_dir), "windows": self.windows,
                "cv_accuracy": self.cv_accuracy, "cv_folds": self.cv_folds, "rf": self.rf,
                "reconnects": self.reconnects, "resumed": self.resumed}


class Calibration:
    """One run of the flow (see the module doc)."""

    def __init__(self, link: DeviceLink, plan: CalibrationPlan, *, replay: ReplaySource | None = None,
                 state_path: Path | None = None, out_dir: Path | None = None, hooks: Hooks | None = None,
                 reconnect_timeout: float = 30.0, window_timeout: float = 30.0) -> None:
        self.link = link
        self.plan = plan
        self.replay = replay
        self.hooks = hooks or Hooks()
        self.state_path = state_path
        self.out_dir = out_dir
        self.reconnect_timeout = reconnect_timeout
        self.window_timeout = window_timeout
        self.reconnects = 0
        self.state: CalibrationState | None = None
        self.resumed = False

    # -- run --------------------------------------------------------------------------------------------------

    def run(self) -> CalibrationResult:
        s = self.link.session or self.link.open()
        device_id = bytes(s.info.device_id).hex()
        if self.link.identity is None:
            raise DysanError(f"no key for device {device_id}: calibration needs signed commands (pass --key-file)")
        self.state_path = self.state_path or state_dir() / f"{device_id}.npz"
        self.out_dir = self.out_dir or self.state_path.parent / device_id
        self.state = self._load_or_new(device_id)
        for i, activity in enumerate(self.plan.activities):
            if self.state.recorded(activity) < self.plan.windows_per_activity:
                self._with_retries(lambda a=activity, i=i: self._record(a, i))
        forest, cv, folds = self._train()
        self._export(forest, cv, folds)
        self._with_retries(self._upload)
        result = CalibrationResult(self.state_path, self.out_dir,
                                   {a: self.state.recorded(a) for a in self.plan.activities}, cv, folds,
                                   forest.to_dict(), forest.table, self.reconnects, self.resumed)
        done = self.state_path.with_name(self.state_path.stem + ".done.npz")
        os.replace(self.state_path, done)
        result.state_path = done
        return result

    def _load_or_new(self, device_id: str) -> CalibrationState:
        assert self.state_path is not None
        p = self.state_path
        if p.exists():
            st = CalibrationState.load(p)
            if st.device_id != device_id:
                raise DysanError(f"{p} is a calibration of device {st.device_id}, not {device_id}: "
                                 "pass another --session-file")
            if st.activities != self.plan.activities:
                raise DysanError(f"{p} records activities {', '.join(st.activities)}; this run asks for "
                                 f"{', '.join(self.plan.activities)}: pass the same --activities, or remove the "
                                 "file to start over")
            if st.sensitive != _stated(self.plan.sensitive):
                st.sensitive, st.sensitive_done = _stated(self.plan.sensitive), False
            self.resumed = True
            done = sum(min(st.recorded(a), self.plan.windows_per_activity) for a in st.activities)
            self.hooks.message(f"resuming the calibration in {p}: {done} of "
                               f"{self.plan.windows_per_activity * len(st.activities)} windows already recorded")
            return st
        st = CalibrationState(device_id, self.plan.activities, _stated(self.plan.sensitive))
        st.save(p)
        return st

    def _with_retries(self, step: Callable[[], None]) -> None:
        """Runs a step; when the link breaks, reconnects and runs it again (it resumes from the state)."""
        deadline = None
        while True:
            try:
                step()
                return
            except DeviceError:
                raise
            except (TransportError, DysanError) as exc:
                if isinstance(exc, DysanError) and not isinstance(exc, TransportError) and "within" not in str(exc):
                    raise
                assert self.state is not None and self.state_path is not None
                self.state.save(self.state_path)
                deadline = deadline or time.monotonic() + self.reconnect_timeout
                self.hooks.message(f"link problem ({exc}); reconnecting")
                if not self._reconnect(deadline):
                    raise DysanError(f"link lost ({exc}); what was recorded is in {self.state_path}: rerun the same "
                                     "command to continue") from None
                self.reconnects += 1

    def _reconnect(self, deadline: float) -> bool:
        delay = 0.2
        while time.monotonic() < deadline:
            try:
                if self.link.transport is not None and self.link.transport.is_open:
                    with contextlib.suppress(TransportError):
                        self.link.transport.write(b"\x00")
                    self.link.resync()
                    return True
            except (TransportError, DysanError):
                pass
            self.link.close()
            try:
                self.link.open()
                return True
            except (TransportError, DysanError):
                time.sleep(delay)
                delay = min(2.0, 2 * delay)
        return False

    # -- recording ------------------------------------------------------------------------------------------------

    def _record(self, activity: str, index: int) -> None:
        st = self.state
        assert st is not None and self.state_path is not None
        s = self.link.session
        assert s is not None
        need_total = self.plan.windows_per_activity
        need = need_total - st.recorded(activity)
        if need <= 0:  # finished before the link broke
            return
        if st.recorded(activity) == 0 and activity not in st.consumed:
            self.hooks.ready(activity, index, len(self.plan.activities), self.plan.seconds)
            self.hooks.countdown(activity, self.plan.countdown)
        with self.hooks.progress(f"{activity} ({index + 1}/{len(self.plan.activities)})", need_total) as advance:
            advance(st.recorded(activity))
            if int(s.info.calib_active):
                s.calib_stop()  # a session left open by an interrupted run
            s.raw_windows.clear()
            if self.replay is not None:
                s.set_mode(Mode.REPLAY)  # SAMPLES stand in for the IMU; calibration opened in this mode
            s.calib_start(need)
            try:
                if self.replay is not None:
                    self._push_replay(s, activity, need, advance)
                else:
                    self._collect(s, activity, need, advance, timeout=self.plan.seconds * 2 + self.window_timeout)
            finally:
                self._keep(s, activity)
            with contextlib.suppress(DeviceError):
                if int(s.hello().calib_active):
                    s.calib_stop()
        st.save(self.state_path)

    def _keep(self, s: Session, activity: str) -> None:
        """Moves the RAW_WINDOWs received so far into the state (and the file)."""
        st = self.state
        assert st is not None and self.state_path is not None
        wins = [np.asarray(w.samples, dtype=np.int16).reshape(contract.WINDOW, contract.N_CHANNELS)
                for w in s.raw_windows]
        room = self.plan.windows_per_activity - st.recorded(activity)
        if self.replay is not None and s.raw_windows:
            st.consumed[activity] = st.consumed.get(activity, 0) + int(max(w.seq for w in s.raw_windows)) + 1
        st.add(activity, wins[:max(0, room)])
        s.raw_windows.clear()
        st.save(self.state_path)

    def _push_replay(self, s: Session, activity: str, need: int, advance: Callable[[int], None]) -> None:
        assert self.replay is not None and self.state is not None
        start = self.state.consumed.get(activity, 0) * contract.HOP
        samples = self.replay.activity_samples(activity)[start: start + samples_for(need)]
        if windows_in(len(samples)) < need:
            raise DysanError(f"subject {self.replay.subject} has too few samples of {activity!r} for "
                             f"{self.plan.windows_per_activity} windows: lower --seconds-per-activity")
        base = self.state.recorded(activity)
        generation = self.link.watch.reconnects
        for off in range(0, len(samples), contract.HOP):
            if self.link.watch.reconnects != generation:
                # samples in flight may be lost: a sample pushed now would follow a gap in the device's window
                raise TransportError("link reconnected")
            s.push_samples(samples[off: off + contract.HOP], stall_timeout=self.window_timeout)
            advance(base + len(s.raw_windows))
            if len(s.raw_windows) >= need:
                break
        self._collect(s, activity, need, advance, timeout=self.window_timeout, base=base)

    def _collect(self, s: Session, activity: str, need: int, advance: Callable[[int], None], timeout: float,
                 base: int | None = None) -> None:
        base = self.state.recorded(activity) if base is None else base  # type: ignore[union-attr]
        deadline = time.monotonic() + timeout
        last = -1
        while len(s.raw_windows) < need:
            if time.monotonic() > deadline:
                raise DysanError(f"{len(s.raw_windows)} of {need} {activity} windows within {timeout:.0f} s")
            s.poll(0.1)
            if len(s.raw_windows) != last:
                last = len(s.raw_windows)
                advance(base + last)
                deadline = max(deadline, time.monotonic() + self.window_timeout)

    # -- RF, export, upload ----------------------------------------------------------------------------------------

    def _train(self) -> tuple[rf_mod.CalibrationForest, float | None, int]:
        st = self.state
        assert st is not None
        x = np.concatenate([st.windows[a][: self.plan.windows_per_activity] for a in self.plan.activities])
        y = np.concatenate([np.full(min(st.recorded(a), self.plan.windows_per_activity), i)
                            for i, a in enumerate(self.plan.activities)])
        pop = self.plan.population
        trees = self.plan.trees or (rf_mod.DEFAULT_TREES if pop is not None else rf_mod.USER_ONLY_TREES)
        while True:
            forest = rf_mod.train(x, y, len(self.plan.activities), seed=self.plan.seed, n_trees=trees,
                                  population=pop)
            if len(forest.table) <= RF_REGION_BYTES or trees <= 1:
                break
            trees = max(1, trees // 2)
        if len(forest.table) > RF_REGION_BYTES:
            raise DysanError(f"calibration RF table is {len(forest.table)} bytes, more than the device's "
                             f"{RF_REGION_BYTES}: record fewer seconds per activity")
        cv, folds = cross_validated_accuracy(x, y, self.plan.seed, trees)
        st.rf_table = forest.table
        return forest, cv, folds

    def _export(self, forest: rf_mod.CalibrationForest, cv: float | None, folds: int) -> None:
        assert self.out_dir is not None and self.state is not None
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / "calibration_rf.bin").write_bytes(forest.table)
        report = {"device_id": self.state.device_id, "activities": list(self.plan.activities),
                  "windows": {a: self.state.recorded(a) for a in self.plan.activities},
                  "seconds_per_activity": self.plan.seconds, "cv_accuracy": cv, "cv_folds": folds,
                  "rf": forest.to_dict(), "rf_sha256": hashlib.sha256(forest.table).hexdigest(),
                  "replay": None if self.replay is None else {"source": self.replay.spec,
                                                              "subject": self.replay.subject},
                  "sensitive_stated": self.state.sensitive != NOT_STATED}  # the value stays in the 0600 file
        (self.out_dir / "calibration.json").write_text(json.dumps(report, indent=2) + "\n")
        self.state.report = report

    def _upload(self) -> None:
        st = self.state
        assert st is not None and self.state_path is not None
        s = self.link.session
        assert s is not None
        # Always sent, never skipped on the session file's word: the device may have been re-flashed since. The
        # upload itself resumes a transfer of the same image the device has in progress.
        with self.hooks.progress("uploading the calibration RF (signed)", len(st.rf_table)) as advance:
            s.upload_rf(st.rf_table, version=int(time.time()) & 0xFFFFFFFF, progress=lambda done, total: advance(done))
        st.rf_committed_sha = hashlib.sha256(st.rf_table).hexdigest()
        st.save(self.state_path)
        if st.sensitive != NOT_STATED:  # only an attribute of more than two values is ever stated
            s.set_sensitive(st.sensitive)
            st.sensitive_done = True
            st.save(self.state_path)
        info = s.hello(signed=True)
        stated_ok = st.sensitive == NOT_STATED or (info.sensitive_set and int(info.sensitive_value) == st.sensitive)
        if not (info.rf_loaded and stated_ok):
            raise DysanError("the device did not take the calibration (INFO: rf_loaded "
                             f"{info.rf_loaded}, sensitive_set {info.sensitive_set})")


def cross_validated_accuracy(x: np.ndarray, y: np.ndarray, seed: int, trees: int) -> tuple[float | None, int]:
    """Stratified k-fold accuracy of the forest on the calibration windows (None with < 2 per class)."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    counts = np.bincount(y)
    folds = int(min(5, counts.min()))
    if folds < 2:
        return None, 0
    model = RandomForestClassifier(n_estimators=trees, random_state=seed, min_samples_leaf=1, n_jobs=1)
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    scores = cross_val_score(model, calibration_features(x), y, cv=cv)
    return float(np.mean(scores)), folds


def parse_sensitive(value: str, labels: tuple[str, ...] = ("F", "M")) -> int:
    """``0``..``K-1`` or one of the attribute's K labels (case-insensitive), e.g. F/M for gender."""
    v = value.strip()
    if v.isdigit() and int(v) < len(labels):
        return int(v)
    for i, label in enumerate(labels):
        if v.lower() == str(label).lower():
            return i
    raise DysanError(f"sensitive value {value!r}: expected 0..{len(labels) - 1} or one of "
                     f"{', '.join(map(str, labels))}")


NOT_STATED = -1
"""CalibrationState.sensitive of a two-valued attribute: nothing is stated to the device."""


def _stated(value: int | None) -> int:
    return NOT_STATED if value is None else int(value)
