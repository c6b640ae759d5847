"""The firmware's bundle loader (firmware/core/src/dysan_bundle.c) refuses every malformed bundle, says where,
and never reads outside what it was given -- also under AddressSanitizer + UBSan.

A bundle arrives over the radio link, so each refusal below is a way an attacker or a broken upload could
hand the device a bundle: truncated, wrong magic or version, another data contract, offsets outside the
bundle or into its header, counts out of range, models whose sizes do not chain (S window -> window, P to
the activity classes, D to the sensitive classes), P/D reading S's output with another quantization, a
sanitizer on another input quantization, an arena larger than the firmware's.
"""

from __future__ import annotations

import ast
import os
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from dysan.export import bundle_format as bf
from dysan.export import model_image as mi
from dysan.testing.core_shim import CoreShim, build
from test_device_support import REPO, synthetic, synthetic_bundle  # noqa: F401 (fixtures)

OK, ARG, TRUNCATED, MAGIC, VERSION, CONTRACT, LAYOUT, SHAPE, MODEL, IO, QUANT, ARENA = (
    0, -1, -2, -3, -4, -5, -6, -7, -8, -9, -10, -11)
HDR = bf.field_offsets(bf.HEADER_FIELDS)
MOD = bf.field_offsets(bf.MODEL_FIELDS)
ARENA_BYTES = 32 * 1024  # DYSAN_PIPE_ARENA_BYTES


@pytest.fixture(scope="module")
def core() -> CoreShim:
    return CoreShim(build())


def put(image: bytes, off: int, fmt: str, value: int | float) -> bytes:
    b = bytearray(image)
    struct.pack_into("<" + fmt, b, off, value)
    return bytes(b)


def models_off(image: bytes) -> int:
    return struct.unpack_from("<I", image, HDR["models_off"])[0]


def model_field(image: bytes, i: int, name: str) -> int:
    return struct.unpack_from("<I", image, models_off(image) + i * bf.MODEL_SIZE + MOD[name])[0]


def set_model_field(image: bytes, i: int, name: str, value: int) -> bytes:
    return put(image, models_off(image) + i * bf.MODEL_SIZE + MOD[name], "I", value)


def tensor_field_offset(image: bytes, i: int, part: str, which: str, field: str) -> int:
    """Offset in the bundle of a field of model i's `part` image's input/output tensor record."""
    base = model_field(image, i, f"{part.lower()}_off")
    hdr = mi.field_offsets(mi.HEADER_FIELDS)
    tensors_off = struct.unpack_from("<I", image, base + hdr["tensors_off"][0])[0]
    tid = struct.unpack_from("<I", image, base + hdr[f"{which}_tensor"][0])[0]
    return base + tensors_off + tid * mi.TENSOR_SIZE + mi.field_offsets(mi.TENSOR_FIELDS)[field][0]


def corruptions(image: bytes) -> list[tuple[str, bytes, int, int]]:
    """(what, bytes, expected status, length passed) -- the length lets a case truncate the region."""
    n = len(image)
    s0 = model_field(image, 0, "s_off")
    p1_zp = tensor_field_offset(image, 1, "P", "input", "zero_point")
    d0_scale = tensor_field_offset(image, 0, "D", "input", "scale")
    (d0_scale_v,) = struct.unpack_from("<f", image, d0_scale)
    swapped = set_model_field(set_model_field(image, 2, "p_off", model_field(image, 2, "d_off")), 2, "p_size",
                              model_field(image, 2, "d_size"))
    (zp_v,) = struct.unpack_from("<i", image, p1_zp)
    return [
        ("valid", image, OK, n),
        ("shorter than the header", image, TRUNCATED, bf.HEADER_SIZE - 1),
        ("shorter than bundle_size", image, TRUNCATED, n - 1),
        ("bundle_size beyond the region", put(image, HDR["bundle_size"], "I", n + 4), TRUNCATED, n),
        ("magic", put(image, HDR["magic"], "I", 0x42535945), MAGIC, n),
        ("erased flash", b"\xff" * n, MAGIC, n),
        ("version", put(image, HDR["version"], "I", bf.VERSION + 1), VERSION, n),
        ("window length", put(image, HDR["window"], "H", 128), CONTRACT, n),
        ("hop", put(image, HDR["hop"], "H", 64), CONTRACT, n),
        ("normalization shift", put(image, HDR["norm_shift"], "I", 16), CONTRACT, n),
        ("header_size", put(image, HDR["header_size"], "I", 64), LAYOUT, n),
        ("model table beyond the bundle", put(image, HDR["models_off"], "I", n - 16), LAYOUT, n),
        ("model table misaligned", put(image, HDR["models_off"], "I", bf.HEADER_SIZE + 2), LAYOUT, n),
        ("no models", put(image, HDR["n_models"], "H", 0), SHAPE, n),
        ("65 models", put(image, HDR["n_models"], "H", 65), SHAPE, n),
        ("one class", put(image, HDR["n_classes"], "H", 1), SHAPE, n),
        ("default model out of range", put(image, HDR["default_model"], "H", 4), SHAPE, n),
        ("segment 0", put(image, HDR["segment"], "H", 0), SHAPE, n),
        ("candidates 0", put(image, HDR["candidates"], "H", 0), SHAPE, n),
        ("weight above 1.0", put(image, HDR["score_y_q15"], "H", 32769), SHAPE, n),
        ("S offset beyond the bundle", set_model_field(image, 0, "s_off", n + 4), LAYOUT, n),
        ("S offset + size wraps 32 bits", set_model_field(set_model_field(image, 0, "s_off", 0xFFFFFFF0), 0,
                                                           "s_size", 0x20), LAYOUT, n),
        ("D size past the end", set_model_field(image, 3, "d_size", n), LAYOUT, n),
        ("S misaligned", set_model_field(image, 1, "s_off", model_field(image, 1, "s_off") + 2), LAYOUT, n),
        ("S inside the header", set_model_field(image, 0, "s_off", 0), LAYOUT, n),
        ("S image truncated", set_model_field(image, 0, "s_size", model_field(image, 0, "s_size") - 8), MODEL, n),
        ("S image corrupted", put(image, s0 + 4, "I", 99), MODEL, n),
        ("P and D swapped (outputs do not chain)", swapped, IO, n),
        ("P reads another zero point than S writes", put(image, p1_zp, "i", zp_v + 1), QUANT, n),
        ("D reads another scale than S writes", put(image, d0_scale, "f", d0_scale_v * 1.01), QUANT, n),
        ("S on another input zero point", put(image, HDR["input_zp"], "i", 3), QUANT, n),
    ]


def test_loader_refuses_each_malformed_bundle(core: CoreShim, synthetic_bundle) -> None:  # noqa: F811
    image = synthetic_bundle.image
    failures = []
    for what, data, want, length in corruptions(image):
        rc, info = core.bundle_load(data[:length])
        if rc != want:
            failures.append(f"{what}: status {rc}, expected {want} ({info})")
        elif rc != OK:
            assert info["n_models"] == 0
    assert not failures, "\n".join(failures)
    rc, info = core.bundle_load(image)
    assert info["n_models"] == 4 and info["n_classes"] == 4 and 0 < info["max_arena"] <= ARENA_BYTES


def test_loader_says_which_model_failed(core: CoreShim, synthetic_bundle) -> None:  # noqa: F811
    image = synthetic_bundle.image
    p1_zp = tensor_field_offset(image, 1, "P", "input", "zero_point")
    rc, info = core.bundle_load(put(image, p1_zp, "i", struct.unpack_from("<i", image, p1_zp)[0] - 1))
    assert rc == QUANT and info["model"] == 1 and info["part"] == "P"
    rc, info = core.bundle_load(image, arena_cap=4096)
    assert rc == ARENA and info["model"] == 0 and info["part"] == "S"


def test_every_truncation_is_refused(core: CoreShim, synthetic_bundle) -> None:  # noqa: F811
    image = synthetic_bundle.image
    for length in [*range(0, 300, 7), *range(300, len(image), 997), len(image) - 1]:
        assert core.bundle_load(image[:length])[0] == TRUNCATED, length


_ASAN_DRIVER = textwrap.dedent("""
    import sys, struct, numpy as np
    from pathlib import Path
    from dysan.testing.core_shim import CoreShim
    sys.path.insert(0, sys.argv[3])
    import test_app_bundle as t
    core = CoreShim(Path(sys.argv[1]))
    image = Path(sys.argv[2]).read_bytes()
    if len(sys.argv) > 4:  # canary: a deliberate overflow must be caught by the sanitizer
        import ctypes
        short = np.zeros(125 * 5, dtype=np.int16)  # one window needs 125 * 6 values
        out = np.zeros(64, dtype=np.int16)
        core.lib.shim_features(short.ctypes.data_as(ctypes.c_void_p), ctypes.c_size_t(1),
                               out.ctypes.data_as(ctypes.c_void_p))
    statuses = set()
    for what, data, want, length in t.corruptions(image):
        rc, _ = core.bundle_load(data[:length])
        assert rc == want, (what, rc, want)
    rng = np.random.default_rng(7)
    for i in range(400):
        b = bytearray(image)
        for _ in range(int(rng.integers(1, 6))):
            pos = int(rng.integers(0, len(b)))
            b[pos] = int(rng.integers(0, 256))
        if i % 4 == 0:
            pos = int(rng.integers(0, 128 + 4 * 32))  # header and model table
            struct.pack_into("<I", b, pos - pos % 4, int(rng.integers(0, 2**32)))
        n = len(b) if i % 3 else int(rng.integers(0, len(b)))
        statuses.add(core.bundle_load(bytes(b[:n]))[0])
    print("ok", sorted(statuses))
""")


@pytest.mark.skipif(sys.platform != "linux", reason="LD_PRELOAD of libasan is Linux-only")
def test_loader_under_asan(synthetic_bundle, tmp_path: Path) -> None:  # noqa: F811
    """The corruption cases and 400 random corruptions through the ASan + UBSan build of the loader; a
    deliberate out-of-bounds read in the same harness must be reported (so the harness can fail)."""
    r = subprocess.run(["make", "-C", str(REPO / "firmware"), "core-shim-asan"], capture_output=True, text=True,
                       check=False)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    libasan = subprocess.run(["cc", "-print-file-name=libasan.so"], capture_output=True, text=True,
                             check=False).stdout.strip()
    if not libasan or not Path(libasan).exists():
        pytest.skip("libasan.so not found (gcc's sanitizer runtime)")
    (tmp_path / "bundle.bin").write_bytes(synthetic_bundle.image)
    env = dict(os.environ, LD_PRELOAD=libasan, ASAN_OPTIONS="detect_leaks=0:abort_on_error=0",
               UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1")
    shim = REPO / "firmware" / "build" / "shim-asan" / "libdysan_core_shim.so"
    args = [sys.executable, "-c", _ASAN_DRIVER, str(shim), str(tmp_path / "bundle.bin"), str(REPO / "tests")]
    run = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert run.returncode == 0 and "ok" in run.stdout, run.stdout[-2000:] + run.stderr[-4000:]
    canary = subprocess.run([*args, "canary"], capture_output=True, text=True, env=env, timeout=300, check=False)
    assert canary.returncode != 0 and "AddressSanitizer" in canary.stderr, canary.stderr[-2000:]
    statuses = ast.literal_eval(run.stdout.split("ok", 1)[1].strip())  # what the random corruptions produced
    assert len(statuses) >= 3, statuses
    assert np.all(np.array(statuses) <= 0)
