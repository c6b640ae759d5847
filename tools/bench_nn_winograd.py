#!/usr/bin/env python3
"""Measures the experimental integer Winograd path of CONV_2D against the direct fast path, layer by layer.

    .venv/bin/python tools/bench_nn_winograd.py --bundle out/export-full-p9999 [--json out/wino/bench.json]

Builds `make bench-firmware`'s op-by-op harness (firmware/bench/nn_cmsis_bench.c, CMSIS-NN from
../shared/vendor) twice into firmware/build/bench-wino/ -- as shipped, and with -DDYSAN_NN_WINOGRAD -- and
runs model 0 of the bundle (S, P, D; 5 inputs) through both under QEMU -icount (dysan.bench.kernels.compare:
every output byte must equal CMSIS-NN's). Prints instructions and MAC per instruction of every convolution
with and without the Winograd path. Needs the CMSIS-NN library `make bench-firmware` builds
(firmware/build/bench/libcmsis-nn.a; the tool builds it through bench.mk when missing).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "host"))

from dysan.bench import kernels  # noqa: E402
from dysan.errors import DysanError  # noqa: E402
from dysan.rundir import BundleDir  # noqa: E402

FIRMWARE = REPO / "firmware"
ARCH = ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"]


def build(winograd: bool) -> Path:
    """The op-by-op harness with the shipped kernels, or with the Winograd path switched on."""
    tarball = kernels.vendor_tarball()
    if tarball is None:
        raise DysanError(f"{kernels.VENDOR_TAR} not found (../shared/vendor is absent)")
    kernels.build(tarball)  # the shipped harness and libcmsis-nn.a, through bench.mk
    out = FIRMWARE / "build" / "bench-wino" / ("nn_cmsis_bench_wino.elf" if winograd else "nn_cmsis_bench.elf")
    out.parent.mkdir(parents=True, exist_ok=True)
    srcs = sorted(str(p.relative_to(FIRMWARE)) for p in (FIRMWARE / "core" / "nn").glob("*.c"))
    cmd = [
        "arm-none-eabi-gcc", "-std=c11", "-Wall", "-Wextra", "-Werror", *ARCH,
        "-O2", "-g", "-ffunction-sections", "-fdata-sections", *(["-DDYSAN_NN_WINOGRAD"] if winograd else []),
        "-Icore/nn", "-Icore/include", "-Itests", "-isystem", "build/vendor/cmsis_nn/Include",
        "bench/nn_cmsis_bench.c", *srcs, "tests/qemu/startup.c", "build/bench/libcmsis-nn.a",
        *ARCH, "--specs=rdimon.specs", "-nostartfiles", "-T", "tests/qemu/nn_qemu.ld", "-Wl,--gc-sections",
        "-o", str(out),
    ]  # fmt: skip
    r = subprocess.run(cmd, cwd=FIRMWARE, capture_output=True, text=True)
    if r.returncode != 0:
        raise DysanError(f"building {out.name} failed:\n{r.stderr[-2000:]}")
    return out


def measure(images: dict[str, bytes], elf: Path) -> dict:
    """dysan.bench.kernels.compare with the given harness."""
    shipped = kernels.build
    kernels.build = lambda tarball: elf  # type: ignore[assignment]
    try:
        return kernels.compare(images, 5)
    finally:
        kernels.build = shipped  # type: ignore[assignment]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bundle", type=Path, required=True, help="exported bundle directory (model 0 is measured)")
    ap.add_argument("--json", type=Path, help="also write both reports as JSON here")
    args = ap.parse_args()
    images = kernels.bundle_models(BundleDir(args.bundle).image.read_bytes())
    reps = {name: measure(images, build(name == "winograd")) for name in ("direct", "winograd")}
    print(f"{'layer':<12}{'MACs':>8}{'direct':>10}{'MAC/ins':>9}{'winograd':>10}{'MAC/ins':>9}")
    rows = zip(reps["direct"]["layers"], reps["winograd"]["layers"], strict=True)
    for a, b in rows:
        if a["kind"] == "CONV_2D":
            print(f"{a['model']} op {a['index']:<7}{a['macs']:>8}{a['ours_instructions']:>10}"
                  f"{a['ours_macs_per_instruction']:>9}{b['ours_instructions']:>10}{b['ours_macs_per_instruction']:>9}")
    c0, c1 = reps["direct"]["conv"], reps["winograd"]["conv"]
    print(f"{'conv':<12}{c0['macs']:>8}{c0['ours_instructions']:>10}{c0['ours_macs_per_instruction']:>9}"
          f"{c1['ours_instructions']:>10}{c1['ours_macs_per_instruction']:>9}")
    print("every output byte equal to CMSIS-NN's in both builds")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(reps, indent=1))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except DysanError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
