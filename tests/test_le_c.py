"""The core's one little-endian header (firmware/core/include/dysan_le.h) and its C unit test.

firmware/tests/test_le.c checks byte order, the sign boundaries (0x80000000, 0x8000, 0x80, all ones, negative
int16/int32 written and read back) and round trips at every alignment. Here it is built as C99 and C11 with
GCC and Clang and as C++ (the board ports are C++), each with -Wconversion and under ASan + UBSan, so an
unaligned access or a signed overflow in the header fails the run; the same test against a header with one
byte-order slip must fail (the test is not vacuous); and on the Cortex-M4 the signed 32-bit read is still
one load (the kernels read their biases and multipliers with it).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

FW = Path(__file__).resolve().parents[1] / "firmware"
HEADER = FW / "core" / "include" / "dysan_le.h"
TEST = FW / "tests" / "test_le.c"
WARN = ["-Wall", "-Wextra", "-Werror", "-Wconversion", "-Wsign-conversion", "-pedantic"]
SAN = ["-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"]

BUILDS = {
    "gcc-c99": ["gcc", "-std=c99"],
    "gcc-c11-O2": ["gcc", "-std=c11", "-O2"],
    "clang-c11": ["clang", "-std=c11"],
    "g++-c++17": ["g++", "-x", "c++", "-std=c++17"],
}


def _build_and_run(tmp: Path, compiler: list[str], include: Path) -> subprocess.CompletedProcess[str]:
    if shutil.which(compiler[0]) is None:
        pytest.skip(f"{compiler[0]} is not installed")
    exe = tmp / "test_le"
    cmd = [*compiler, *WARN, *SAN, f"-I{include}", str(TEST), "-o", str(exe)]
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert r.returncode == 0, f"{' '.join(cmd)}\n{r.stderr}"
    return subprocess.run([str(exe)], capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("build", sorted(BUILDS))
def test_le_header_unit_checks(build: str, tmp_path: Path) -> None:
    r = _build_and_run(tmp_path, BUILDS[build], HEADER.parent)
    assert r.returncode == 0 and re.match(r"ok \d+ checks", r.stdout), r.stdout + r.stderr


def test_le_unit_test_catches_a_byte_order_slip(tmp_path: Path) -> None:
    """The same checks against a header whose put_u32 swaps its two middle bytes: they must fail."""
    good = "    p[1] = (uint8_t)(v >> 8);\n    p[2] = (uint8_t)(v >> 16);\n"
    text = HEADER.read_text()
    assert text.count(good) == 1
    swapped = "    p[1] = (uint8_t)(v >> 16);\n    p[2] = (uint8_t)(v >> 8);\n"
    (tmp_path / "dysan_le.h").write_text(text.replace(good, swapped))
    r = _build_and_run(tmp_path, BUILDS["gcc-c11-O2"], tmp_path)
    assert r.returncode == 1 and "FAIL" in r.stdout and "test_le: FAILED" in r.stdout, r.stdout + r.stderr


def test_le_reads_stay_single_loads_on_the_m4(tmp_path: Path) -> None:
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc is not installed")
    src = tmp_path / "le.c"
    src.write_text('#include "dysan_le.h"\n'
                   "int32_t rd_i32(const uint8_t *p) { return dysan_le_get_i32(p); }\n"
                   "int16_t rd_i16(const uint8_t *p) { return dysan_le_get_i16(p); }\n"
                   "void wr_u32(uint8_t *p, uint32_t v) { dysan_le_put_u32(p, v); }\n")
    r = subprocess.run(["arm-none-eabi-gcc", "-std=c11", *WARN, "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard",
                        "-mfpu=fpv4-sp-d16", "-O2", f"-I{HEADER.parent}", "-S", str(src), "-o", "-"],
                       capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    bodies: dict[str, list[str]] = {}
    fn = None
    for line in r.stdout.splitlines():
        if re.match(r"^\w+:$", line):
            fn = line[:-1]
            bodies[fn] = []
        elif fn and line.startswith("\t") and not line.startswith(("\t.", "\t@")):
            bodies[fn].append(line.split("@")[0].split()[0])
    assert bodies["rd_i32"] == ["ldr", "bx"], bodies
    assert bodies["rd_i16"] == ["ldrsh", "bx"], bodies
    assert bodies["wr_u32"] == ["str", "bx"], bodies
