"""The TFLM interpreter (reference kernels and CMSIS-NN kernels) on the same models, beside ours.

TFLM's libraries come from ``../shared/vendor/tflm/tflm-cmsis-nn.tar.xz`` (unpacked into ``firmware/build/vendor``)
with the compile commands TFLM's own Makefile runs for ``microlite`` (read with ``make -n -B``: same flags, same
optimization levels), limited to the interpreter core and the kernels of the ops the device family uses (64 of
202 objects with reference kernels, 156 of 315 with CMSIS-NN's, whose C sources are most of them) -- the whole
library takes 11-14 minutes per variant on two idle cores and far longer on a shared machine. They are cached
under ``firmware/build/tflm/<tarball hash>/<variant>/``. ``dysan bench-firmware`` never waits for them: where
one is missing it starts ``python -m dysan.bench.tflm build`` in the background (``nice``, log in
``out/logs/tflm-libs.log``) and says so; a later run uses the cache. ``firmware/bench/tflm_bench.cc`` then runs
each ``.tflite`` under the interpreter in QEMU (``-icount shift=0``, SysTick around ``Invoke()``).
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ..errors import DysanError
from .kernels import FIRMWARE, REPO, vendor_tarball

VARIANTS = ("ref", "cmsis_nn")
_CAL = re.compile(r"calibration instructions (\d+) ticks (\d+)")
_INVOKE = re.compile(r"invoke (\d+) ticks (\d+) crc ([0-9a-f]+)")
_ARENA = re.compile(r"arena_used (\d+)")


def cache_dir(tarball: Path) -> Path:
    """Where bench.mk caches the libraries of this tarball (its first 12 hex digits of SHA-256)."""
    return FIRMWARE / "build" / "tflm" / hashlib.sha256(tarball.read_bytes()).hexdigest()[:12]


def libraries(tarball: Path) -> dict[str, Path]:
    """The built libraries, by variant (absent ones left out)."""
    d = cache_dir(tarball)
    return {v: d / v / "libtensorflow-microlite.a" for v in VARIANTS
            if (d / v / "libtensorflow-microlite.a").is_file()}


# The kernels (file stems under tensorflow/lite/micro/kernels[/cmsis_nn]) the device family's ops need, and
# the CMSIS-NN source folders TFLM's cmsis_nn kernels call into (float variants left out).
KERNELS = {"activations", "activations_common", "add", "add_common", "conv", "conv_common", "depthwise_conv",
           "depthwise_conv_common", "fully_connected", "fully_connected_common", "pooling", "pooling_common",
           "reduce", "reduce_common", "leaky_relu", "leaky_relu_common", "quantize", "quantize_common",
           "dequantize", "dequantize_common", "reshape", "reshape_common", "expand_dims", "squeeze", "kernel_util",
           "micro_tensor_utils"}
CMSIS_NN_DIRS = ("ConvolutionFunctions", "FullyConnectedFunctions", "PoolingFunctions", "BasicMathFunctions",
                 "NNSupportFunctions")
# Interpreter-core files only tests and recording tools use.
CORE_SKIP = {"test_helpers", "test_helper_custom_ops", "mock_micro_graph", "fake_micro_context",
             "recording_micro_allocator", "recording_single_arena_buffer_allocator"}
_COMPILE = re.compile(r" -c (\S+) -o (\S+)")


def select_commands(commands: list[str]) -> list[tuple[str, str, str]]:
    """(command, source, object) of the compile commands a device-family interpreter needs."""
    out = []
    for cmd in commands:
        m = _COMPILE.search(cmd)
        if not m:
            continue
        src, obj = m.group(1), m.group(2)
        rel, stem = src.split("tflite-micro/")[-1], Path(src).stem
        if "/micro/kernels/" in src:
            keep = stem in KERNELS
        elif "cmsis_nn/Source/" in src:
            keep = any(f"/{d}/" in src for d in CMSIS_NN_DIRS) and not re.search(r"_f(16|32)\.c$", src)
        else:
            keep = stem not in CORE_SKIP and "kissfft" not in src and not rel.startswith("signal/")
        if keep:
            out.append((cmd, src, obj))
    return out


def build_library(tarball: Path, variant: str, jobs: int = 2) -> Path:
    """Compiles and archives one variant's library (blocking: minutes; see the module docstring)."""
    import concurrent.futures

    src_dir = FIRMWARE / "build" / "vendor" / "tflite-micro"
    if not src_dir.is_dir():
        r = subprocess.run(["make", "-s", "-C", str(FIRMWARE), "-f", "bench.mk", "bench-vendor",
                            f"BENCH_VENDOR_TAR={tarball}"], capture_output=True, text=True, check=False)
        if r.returncode != 0:
            raise DysanError(f"unpacking {tarball} failed: {(r.stderr or r.stdout)[-500:]}")
    out_dir = cache_dir(tarball) / variant
    args = ["make", "-n", "-B", "-f", "tensorflow/lite/micro/tools/make/Makefile", "TARGET=cortex_m_generic",
            "TARGET_ARCH=cortex-m4+fp", "TARGET_TOOLCHAIN_ROOT=/usr/bin/", "MICROLITE_TEST_SRCS=",
            "BUILD_TYPE=release_with_logs", f"BASE_GENDIR={out_dir / 'gen'}", "microlite"]
    if variant == "cmsis_nn":
        args.insert(-1, "OPTIMIZED_KERNEL_DIR=cmsis_nn")
    dry = subprocess.run(args, cwd=src_dir, capture_output=True, text=True, check=False)
    chosen = select_commands(dry.stdout.splitlines())
    if dry.returncode != 0 or not chosen:
        raise DysanError(f"TFLM's Makefile listed no compile commands: {(dry.stderr or dry.stdout)[-500:]}")

    def compile_one(item: tuple[str, str, str]) -> str | None:
        cmd, _, obj = item
        if Path(obj).is_file():
            return None
        Path(obj).parent.mkdir(parents=True, exist_ok=True)
        r = subprocess.run(["sh", "-c", cmd], cwd=src_dir, capture_output=True, text=True, check=False)
        return None if r.returncode == 0 else f"{item[1]}: {r.stderr[-400:]}"

    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        errors = [e for e in pool.map(compile_one, chosen) if e]
    if errors:
        raise DysanError(f"TFLM {variant}: {len(errors)} sources failed to compile; first: {errors[0]}")
    lib = out_dir / "libtensorflow-microlite.a"
    lib.unlink(missing_ok=True)
    # q (append), not r: several objects share a file name (kernel_util.o, common.o, ...) and r would replace
    subprocess.run(["arm-none-eabi-ar", "qcs", str(lib), *(obj for _, _, obj in chosen)], check=True)
    return lib


def start_build(tarball: Path) -> Path:
    """Starts ``python -m dysan.bench.tflm build`` in the background (nice) unless one runs; returns its log."""
    import os
    import sys

    log = REPO / "out" / "logs" / "tflm-libs.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    running = subprocess.run(["pgrep", "-f", "dysan.bench.tflm build"], capture_output=True,
                             check=False).returncode == 0
    if not running:
        with open(log, "w") as f:
            subprocess.Popen(["nice", "-n", "10", sys.executable, "-m", "dysan.bench.tflm", "build", str(tarball)],
                             stdout=f, stderr=subprocess.STDOUT, start_new_session=True,
                             env={**os.environ, "PYTHONPATH": str(REPO / "host")})
    return log


def parse_output(stdout: str) -> dict:
    """Instructions per Invoke (mean over inputs), the arena TFLM used and the output checksums."""
    cal, arena = _CAL.search(stdout), _ARENA.search(stdout)
    runs = _INVOKE.findall(stdout)
    if not cal or not arena or not runs:
        raise DysanError(f"unexpected tflm_bench output: {stdout[-400:]!r}")
    per_tick = int(cal.group(1)) / int(cal.group(2))
    return {"instructions_per_invoke": round(sum(int(t) for _, t, _ in runs) * per_tick / len(runs)),
            "arena_used_bytes": int(arena.group(1)), "output_crcs": [c for _, _, c in runs]}


def _elf_flash(elf: Path) -> int:
    out = subprocess.run(["arm-none-eabi-size", str(elf)], capture_output=True, text=True, check=True).stdout
    text, data = (int(v) for v in out.splitlines()[1].split()[:2])
    return text + data


def _run(elf: Path, tflite: bytes, x: np.ndarray) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "m.tflite").write_bytes(tflite)
        np.ascontiguousarray(x, dtype=np.int8).tofile(d / "in.bin")
        cmd = ["qemu-system-arm", "-M", "mps2-an386", "-nographic", "-monitor", "none", "-icount", "shift=0",
               "-semihosting-config", "enable=on,target=native,arg=tflm_bench,arg=m.tflite,arg=in.bin",
               "-kernel", str(elf)]
        r = subprocess.run(cmd, cwd=d, capture_output=True, text=True, timeout=900, check=False)
    if r.returncode != 0 or "\nok " not in r.stdout:
        raise DysanError(f"tflm_bench failed (rc {r.returncode}): {(r.stdout + r.stderr)[-800:]}")
    return r.stdout


def compare(tflite: dict[str, bytes], inputs: dict[str, np.ndarray]) -> dict:
    """Each model under TFLM with each built library: instructions per Invoke, arena, flash of the bench ELF;
    {"skipped": why} without the vendor tarball, {"building": log} while the libraries are being built."""
    tarball = vendor_tarball()
    if tarball is None:
        return {"skipped": "TFLM comparison skipped: ../shared/vendor is absent"}
    if shutil.which("arm-none-eabi-g++") is None:
        return {"skipped": "TFLM comparison skipped: arm-none-eabi-g++ not found (tools/install-sysdeps.sh)"}
    libs = libraries(tarball)
    if set(libs) != set(VARIANTS):
        log = start_build(tarball)
        note = (f"TFLM libraries not built yet ({', '.join(v for v in VARIANTS if v not in libs)}): building in "
                f"the background (minutes to an hour, depending on the load; log {log.relative_to(REPO)}); rerun "
                "`make bench-firmware` when done")
        if not libs:
            return {"building": note}
    else:
        note = None
    targets = [f"build/bench/tflm_bench_{v}.elf" for v in VARIANTS if v in libs]
    r = subprocess.run(["make", "-s", "-C", str(FIRMWARE), "-f", "bench.mk", *targets,
                        f"BENCH_VENDOR_TAR={tarball}"], capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise DysanError(f"make -f bench.mk {' '.join(targets)} failed:\n{(r.stderr or r.stdout)[-2000:]}")
    out: dict = {"building": note} if note else {}
    # ours in the same harness (semihosting stdio, newlib), the model image not included either
    r = subprocess.run(["make", "-s", "-C", str(FIRMWARE), "-f", "nn.mk", "nn-qemu"], capture_output=True, text=True,
                       check=False)
    if r.returncode == 0:
        out["ours_elf_flash_bytes"] = _elf_flash(FIRMWARE / "build" / "nn-qemu" / "nn_runner.elf")
    for variant in (v for v in VARIANTS if v in libs):
        elf = FIRMWARE / "build" / "bench" / f"tflm_bench_{variant}.elf"
        out[variant] = {"elf_flash_bytes": _elf_flash(elf),
                        "models": {name: {**parse_output(_run(elf, tfl, inputs[name])), "tflite_bytes": len(tfl)}
                                   for name, tfl in tflite.items()}}
    return out


def main(argv: list[str]) -> int:
    """``python -m dysan.bench.tflm build TARBALL``: builds the missing libraries (what start_build runs)."""
    if len(argv) != 2 or argv[0] != "build":
        print("usage: python -m dysan.bench.tflm build TARBALL")
        return 2
    tarball = Path(argv[1])
    for variant in VARIANTS:
        if variant not in libraries(tarball):
            print(f"building TFLM ({variant}) ...", flush=True)
            print(f"built {build_library(tarball, variant)}", flush=True)
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
