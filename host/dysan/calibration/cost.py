"""What the calibration forest costs per window on the Cortex-M4F: features + forest, counted in QEMU.

``firmware/tests/rf_runner.c`` runs exactly the pipeline's RF stage (``dysan_window_features`` then
``dysan_rf_predict``) over a file of windows, bare-metal on ``qemu-system-arm -M mps2-an386`` under
``-icount shift=0``, where the SysTick clock advances by a fixed number of ticks per executed instruction;
the runner measures that ratio with a loop of known length (the method of the int8 kernel benchmarks,
firmware/tests/qemu/nn_qemu.h). The runner also writes each window's label, which must equal the Python
table evaluator's: the cost is measured on the forest that labels the windows.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import contract
from ..errors import DysanError

REPO = Path(__file__).resolve().parents[3]
FIRMWARE = REPO / "firmware"
QEMU_RUNNER = FIRMWARE / "build" / "rf-qemu" / "rf_runner.elf"
HOST_RUNNER = FIRMWARE / "build" / "rf-host" / "rf_runner"
BUDGET_INSTRUCTIONS = 100_000
"""Features + forest per window (issue 12)."""


@dataclass
class Cost:
    windows: int
    features_per_window: float
    forest_per_window: float
    max_window: float
    labels: np.ndarray

    @property
    def per_window(self) -> float:
        return self.features_per_window + self.forest_per_window

    def to_dict(self) -> dict:
        return {"windows": self.windows, "features_instructions_per_window": round(self.features_per_window),
                "forest_instructions_per_window": round(self.forest_per_window),
                "instructions_per_window": round(self.per_window), "max_window_instructions": round(self.max_window),
                "budget": BUDGET_INSTRUCTIONS, "ok": self.max_window <= BUDGET_INSTRUCTIONS}


def available() -> str | None:
    """None when the QEMU measurement can run, else why not."""
    missing = [t for t in ("arm-none-eabi-gcc", "qemu-system-arm") if shutil.which(t) is None]
    return f"needs {', '.join(missing)} (tools/install-sysdeps.sh)" if missing else None


def build() -> None:
    r = subprocess.run(["make", "-s", "-C", str(FIRMWARE), "rf-runner"], capture_output=True, text=True,
                       check=False)
    if r.returncode != 0:
        raise DysanError(f"make -C firmware rf-runner failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")


def _run(cmd: list[str], cwd: Path, n: int, timeout: float) -> tuple[str, np.ndarray]:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    out = proc.stdout + proc.stderr
    if proc.returncode != 0 or f"ok {n}" not in out:
        raise DysanError(f"rf_runner failed (rc {proc.returncode}): {out.strip()[-500:]}")
    return out, np.fromfile(cwd / "labels.bin", dtype=np.int8).astype(np.int64)


def labels_native(table: bytes, windows: np.ndarray) -> np.ndarray:
    """The labels of the C features + forest built for this machine (a fast bit-exactness check)."""
    build()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "rf.bin").write_bytes(table)
        w = np.ascontiguousarray(windows, dtype="<i2").reshape(-1, contract.WINDOW, contract.N_CHANNELS)
        w.tofile(d / "windows.bin")
        _, labels = _run([str(HOST_RUNNER), "rf.bin", "windows.bin", "labels.bin"], d, len(w), 120.0)
    return labels


def measure(table: bytes, windows: np.ndarray, timeout: float = 600.0) -> Cost:
    """Instructions per window of features + forest on the Cortex-M4F (QEMU), and the labels it gave."""
    why = available()
    if why:
        raise DysanError(f"QEMU cost of the calibration forest: {why}")
    build()
    w = np.ascontiguousarray(windows, dtype="<i2").reshape(-1, contract.WINDOW, contract.N_CHANNELS)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "rf.bin").write_bytes(table)
        w.tofile(d / "windows.bin")
        semi = "enable=on,target=native,arg=rf_runner,arg=rf.bin,arg=windows.bin,arg=labels.bin"
        cmd = ["qemu-system-arm", "-M", "mps2-an386", "-nographic", "-monitor", "none", "-icount", "shift=0",
               "-semihosting-config", semi, "-kernel", str(QEMU_RUNNER)]
        out, labels = _run(cmd, d, len(w), timeout)
    cal = re.search(r"calibration instructions (\d+) ticks (\d+)", out)
    t = re.search(r"features ticks (\d+) forest ticks (\d+) max_window ticks (\d+)", out)
    if not cal or not t:
        raise DysanError(f"rf_runner: no tick counts in its output: {out[-300:]}")
    per_tick = int(cal.group(1)) / int(cal.group(2))
    n = max(1, len(w))
    return Cost(windows=len(w), features_per_window=int(t.group(1)) * per_tick / n,
                forest_per_window=int(t.group(2)) * per_tick / n, max_window=int(t.group(3)) * per_tick,
                labels=labels)
