"""On-device randomness (dysan.jitter): the C twin is bit-identical, and the transform is what it claims."""

from __future__ import annotations

import ctypes as C
import math
import subprocess
from pathlib import Path

import numpy as np
import pytest

from dysan import contract, jitter

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "firmware" / "core" / "src" / "dysan_jitter.c"
SO = REPO / "firmware" / "build" / "jitter-shim" / "libdysan_jitter.so"


@pytest.fixture(scope="module")
def lib():
    SO.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-O2", "-fPIC", "-shared",
                    f"-I{REPO / 'firmware' / 'core' / 'include'}", "-o", str(SO), str(SRC)], check=True)
    lib = C.CDLL(str(SO))
    lib.dysan_jitter_apply.argtypes = [C.POINTER(C.c_int16), C.c_size_t, C.c_uint32, C.c_uint32, C.c_int32,
                                       C.c_int32]
    lib.dysan_jitter_matrices.argtypes = [C.c_uint32, C.c_uint32, C.c_int32, C.c_int32, C.POINTER(C.c_int32)]
    lib.dysan_jitter_draws.argtypes = [C.c_uint32, C.c_uint32, C.POINTER(C.c_uint32)]
    return lib


def _c_apply(lib, windows, seed, counters, params):
    out = np.ascontiguousarray(windows, dtype=np.int16).copy()
    for i, c in enumerate(counters):
        row = out[i]
        rc = lib.dysan_jitter_apply(row.ctypes.data_as(C.POINTER(C.c_int16)), row.shape[0], seed, int(c),
                                    params.max_angle_q14, params.max_gain_q14)
        assert rc == 0
    return out


@pytest.mark.parametrize("params", [jitter.JitterParams(), jitter.JitterParams(28.0, 0.5),
                                    jitter.JitterParams(0.0, 0.0)])
def test_c_is_bit_identical_to_python(lib, params):
    rng = np.random.default_rng(11)
    n = 64
    windows = rng.integers(-32768, 32768, size=(n, contract.WINDOW, contract.N_CHANNELS)).astype(np.int16)
    windows[0] = -32768
    windows[1] = 32767
    windows[2] = rng.integers(-3000, 3000, size=windows[2].shape)
    counters = np.concatenate([[0, 1, 0xFFFFFFFF], rng.integers(0, 2**32, size=n - 3)]).astype(np.uint64)
    for seed in (0, 0xDEADBEEF):
        want = jitter.apply(windows, seed, counters, params)
        np.testing.assert_array_equal(_c_apply(lib, windows, seed, counters, params), want)
        mats = jitter.matrices(seed, counters, params)
        for i in (0, 5, n - 1):
            buf = (C.c_int32 * 18)()
            assert lib.dysan_jitter_matrices(seed, int(counters[i]), params.max_angle_q14, params.max_gain_q14,
                                             buf) == 0
            np.testing.assert_array_equal(np.array(buf[:]).reshape(2, 3, 3), mats[i])
            words = (C.c_uint32 * 5)()
            lib.dysan_jitter_draws(seed, int(counters[i]), words)
            np.testing.assert_array_equal(np.array(words[:], dtype=np.uint64), jitter.draws(seed, counters[i:i + 1])[0])


def test_c_rejects_bad_arguments(lib):
    w = np.zeros((contract.WINDOW, 6), dtype=np.int16)
    ptr = w.ctypes.data_as(C.POINTER(C.c_int16))
    assert lib.dysan_jitter_apply(ptr, contract.WINDOW, 1, 2, 8193, 0) == -1
    assert lib.dysan_jitter_apply(ptr, contract.WINDOW, 1, 2, 100, -1) == -1
    assert lib.dysan_jitter_apply(ptr, 0, 1, 2, 100, 100) == -1
    assert lib.dysan_jitter_apply(None, contract.WINDOW, 1, 2, 100, 100) == -1


def test_matrices_are_bounded_scaled_rotations():
    params = jitter.JitterParams(10.0, 0.1)
    counters = np.arange(4000, dtype=np.uint64)
    m = jitter.float_matrices(7, counters, params)
    for t in range(2):
        gram = np.einsum("nij,nkj->nik", m[:, t], m[:, t])
        gain2 = gram[:, 0, 0]
        np.testing.assert_allclose(gram, gain2[:, None, None] * np.eye(3), atol=2e-3)  # orthogonal up to Q14
        gain = np.sqrt(gain2)
        assert gain.min() >= 0.9 - 1e-3 and gain.max() <= 1.1 + 1e-3
        assert gain.std() > 0.04  # roughly uniform over ±10 %, not constant
    # rotation angle of the accelerometer matrix: up to about sqrt(3) * 10 degrees, spread out
    r = m[:, 0] / np.sqrt(np.einsum("nij,nij->n", m[:, 0], m[:, 0]) / 3)[:, None, None]
    angle = np.degrees(np.arccos(np.clip((np.trace(r, axis1=1, axis2=2) - 1) / 2, -1, 1)))
    assert angle.max() <= math.sqrt(3) * 10 + 0.5 and np.median(angle) > 5
    # the same device and window: the same transform; another seed or window: another
    np.testing.assert_array_equal(jitter.matrices(7, counters[:10], params), jitter.matrices(7, counters[:10], params))
    assert not np.array_equal(jitter.matrices(8, counters[:10], params), jitter.matrices(7, counters[:10], params))


def test_gravity_keeps_its_magnitude_but_not_its_direction():
    """A still device (1 g on z): the transform tilts gravity by up to the max angle, its norm within the gain."""
    w = np.zeros((500, contract.WINDOW, 6), dtype=np.int16)
    w[..., 2] = contract.ACC_COUNTS_PER_G
    out = jitter.apply(w, 3, np.arange(500, dtype=np.uint64)).astype(np.float64)
    g = out[:, 0, 0:3] / contract.ACC_COUNTS_PER_G
    norm = np.linalg.norm(g, axis=1)
    assert norm.min() > 0.89 and norm.max() < 1.11
    tilt = np.degrees(np.arccos(g[:, 2] / norm))
    assert np.median(tilt) > 2 and tilt.max() < 15


def _bench_windows(n: int) -> np.ndarray:
    """The windows jitter_bench.c fills (its LCG), as int16 ``(n, 125, 6)``."""
    out = np.empty((n, contract.WINDOW * 6), dtype=np.int16)
    for w in range(n):
        s = (0x12345678 ^ ((w * 2654435761) & 0xFFFFFFFF)) & 0xFFFFFFFF
        for i in range(contract.WINDOW * 6):
            s = (s * 1664525 + 1013904223) & 0xFFFFFFFF
            out[w, i] = np.uint16(s >> 16).view(np.int16)
    return out.reshape(n, contract.WINDOW, 6)


@pytest.mark.qemu
def test_jitter_cost_on_cortex_m4(tmp_path):
    """Instructions of dysan_jitter_apply per window on the M4 (QEMU -icount shift=0, as bench-firmware counts),
    and its outputs there are those of dysan.jitter (checksum of every byte)."""
    import re
    import shutil

    missing = [t for t in ("arm-none-eabi-gcc", "qemu-system-arm") if shutil.which(t) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (tools/install-sysdeps.sh)")
    fw = REPO / "firmware"
    elf = fw / "build" / "jitter-qemu" / "jitter_bench.elf"
    elf.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["arm-none-eabi-gcc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-mcpu=cortex-m4", "-mthumb",
                    "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard", "-O2", "-g", "-ffunction-sections", "-fdata-sections",
                    "-Icore/include", "-Itests", "tests/jitter_bench.c", "core/src/dysan_jitter.c",
                    "tests/qemu/startup.c", "--specs=rdimon.specs", "-nostartfiles", "-T", "tests/qemu/nn_qemu.ld",
                    "-Wl,--gc-sections", "-o", str(elf)], cwd=fw, check=True)
    proc = subprocess.run(["qemu-system-arm", "-M", "mps2-an386", "-nographic", "-monitor", "none", "-icount",
                           "shift=0", "-semihosting-config", "enable=on,target=native,arg=jitter_bench", "-kernel",
                           str(elf)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    cal = re.search(r"calibration instructions (\d+) ticks (\d+)", proc.stdout)
    run = re.search(r"jitter windows (\d+) ticks (\d+)", proc.stdout)
    checksum = int(re.search(r"checksum (\d+)", proc.stdout).group(1))
    per_tick = int(cal.group(1)) / int(cal.group(2))
    per_window = int(run.group(2)) * per_tick / int(run.group(1))
    print(f"dysan_jitter_apply: {per_window:,.0f} instructions per window on Cortex-M4F (QEMU -icount)")
    windows = _bench_windows(int(run.group(1)))
    out = jitter.apply(windows, 0x5EED, np.arange(len(windows), dtype=np.uint64), jitter.JitterParams())
    h = 2166136261
    for b in out.tobytes():
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    assert h == checksum, "the M4's outputs differ from dysan.jitter"
    assert 2_000 < per_window < 40_000  # measured 18,022; the sanitizer's budget is 1,000,000 per window
