"""On-device randomness (dysan.jitter): the C twin is bit-identical, and the transform is what it claims; the
emit path (int8 in, int8 out) and the seed derivation too; the bundle flag; the firmware (host build) sends
what the reference computes with it; `dysan evaluate` scores a jitter run as the device sends it."""

from __future__ import annotations

import ctypes as C
import math
import subprocess
from pathlib import Path

import numpy as np
import pytest

from dysan import contract, jitter
from test_device_support import synthetic, synthetic_bundle, synthetic_rf  # noqa: F401 (fixtures)

REPO = Path(__file__).resolve().parents[1]
CORE = REPO / "firmware" / "core"
SRCS = [CORE / "src" / "dysan_jitter.c", CORE / "src" / "dysan_preprocess.c", CORE / "proto" / "dysan_hmac.c",
        CORE / "proto" / "dysan_sha256.c"]
SO = REPO / "firmware" / "build" / "jitter-shim" / "libdysan_jitter.so"


@pytest.fixture(scope="module")
def lib():
    SO.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-O2", "-fPIC", "-shared",
                    f"-I{CORE / 'include'}", f"-I{CORE / 'proto'}", "-o", str(SO), *map(str, SRCS)], check=True)
    lib = C.CDLL(str(SO))
    lib.dysan_jitter_apply.argtypes = [C.POINTER(C.c_int16), C.c_size_t, C.c_uint32, C.c_uint32, C.c_int32,
                                       C.c_int32]
    lib.dysan_jitter_matrices.argtypes = [C.c_uint32, C.c_uint32, C.c_int32, C.c_int32, C.POINTER(C.c_int32)]
    lib.dysan_jitter_draws.argtypes = [C.c_uint32, C.c_uint32, C.POINTER(C.c_uint32)]
    lib.dysan_jitter_int8.argtypes = [C.POINTER(C.c_int8), C.POINTER(C.c_int8), C.POINTER(C.c_int16), C.c_size_t,
                                      C.POINTER(Norm), C.c_int32, C.c_uint32, C.c_uint32, C.c_uint32, C.c_int32,
                                      C.c_int32]
    lib.dysan_jitter_seed.argtypes = [C.c_char_p, C.c_size_t, C.c_uint16]
    lib.dysan_jitter_seed.restype = C.c_uint32
    return lib


class Norm(C.Structure):
    """dysan_norm_t (dysan_preprocess.h)."""

    _fields_ = [("center", C.c_int32 * 6), ("mult", C.c_int32 * 6), ("zero_point", C.c_int32)]


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


def _c_int8(lib, q, center, mult, zp, ratio, seed, counters, params):
    norm = Norm((C.c_int32 * 6)(*center), (C.c_int32 * 6)(*mult), 0)
    out = np.zeros_like(q)
    scratch = np.zeros(q.shape[1:], dtype=np.int16)
    for i, c in enumerate(counters):
        src = np.ascontiguousarray(q[i])
        rc = lib.dysan_jitter_int8(src.ctypes.data_as(C.POINTER(C.c_int8)), out[i].ctypes.data_as(C.POINTER(C.c_int8)),
                                   scratch.ctypes.data_as(C.POINTER(C.c_int16)), q.shape[1], C.byref(norm), zp, ratio,
                                   seed, int(c), params.max_angle_q14, params.max_gain_q14)
        assert rc == 0
    return out


@pytest.mark.parametrize("ratio", [65536, 23170, 181000])
def test_emit_path_c_is_bit_identical_to_python(lib, ratio):
    """dysan_jitter_int8 (dequantize, jitter, requantize the sent int8 window) == jitter.apply_int8."""
    rng = np.random.default_rng(ratio)
    q = rng.integers(-128, 128, size=(24, contract.WINDOW, 6)).astype(np.int8)
    q[0] = -128
    q[1] = 127
    center = (12, -2048, 300, 0, -5, 7)
    mult = (30000, 31000, 29000, 120000, 118000, 121000)  # ~ 2^20 / (std counts * 9/255)
    counters = np.concatenate([[1, 0xFFFFFFFF], rng.integers(0, 2**32, size=22)]).astype(np.uint64)
    for params in (jitter.JitterParams(), jitter.JitterParams(28.0, 0.5)):
        for zp in (0, -7):
            want = jitter.apply_int8(q, center, mult, zp, ratio, 0xC0FFEE, counters, params)
            np.testing.assert_array_equal(_c_int8(lib, q, center, mult, zp, ratio, 0xC0FFEE, counters, params), want)
    # no transform (zero amplitudes) and the identity ratio: dequantize + requantize give the window back
    same = jitter.apply_int8(q, center, mult, 0, 65536, 1, counters, jitter.JitterParams(0.0, 0.0))
    assert np.abs(same.astype(int) - q.astype(int)).max() <= 1 and (same == q).mean() > 0.95


def test_emit_path_rejects_bad_arguments(lib):
    q = np.zeros((contract.WINDOW, 6), dtype=np.int8)
    s = np.zeros((contract.WINDOW, 6), dtype=np.int16)
    pq, ps = q.ctypes.data_as(C.POINTER(C.c_int8)), s.ctypes.data_as(C.POINTER(C.c_int16))
    good = Norm((C.c_int32 * 6)(*[0] * 6), (C.c_int32 * 6)(*[30000] * 6), 0)
    assert lib.dysan_jitter_int8(pq, pq, ps, contract.WINDOW, C.byref(good), 0, 65536, 1, 2, 100, 100) == 0
    assert lib.dysan_jitter_int8(pq, pq, ps, contract.WINDOW, C.byref(good), 0, 0, 1, 2, 100, 100) == -1  # ratio 0
    assert lib.dysan_jitter_int8(pq, pq, ps, contract.WINDOW, C.byref(good), 128, 65536, 1, 2, 100, 100) == -1
    assert lib.dysan_jitter_int8(pq, pq, ps, contract.WINDOW, C.byref(good), 0, 65536, 1, 2, 8193, 100) == -1
    assert lib.dysan_jitter_int8(pq, pq, None, contract.WINDOW, C.byref(good), 0, 65536, 1, 2, 100, 100) == -1
    huge = Norm((C.c_int32 * 6)(*[0] * 6), (C.c_int32 * 6)(*[2**31 - 1] * 6), 0)  # M' = M * 2^16 / 1: > int32
    assert lib.dysan_jitter_int8(pq, pq, ps, contract.WINDOW, C.byref(huge), 0, 1, 1, 2, 100, 100) == -1
    with pytest.raises(ValueError):
        jitter.output_multipliers([2**31 - 1] * 6, 1)


def test_device_seed_is_hmac_of_the_key_and_boot_epoch_in_both_languages(lib):
    import hashlib
    import hmac

    seeds = set()
    for key in (bytes(range(0x40, 0x60)), b"\xff" * 32):
        for epoch in (1, 2, 0x1234, jitter.BOOT_EPOCH_MAX):
            msg = b"dysan jitter seed v2" + epoch.to_bytes(2, "little")
            want = int.from_bytes(hmac.new(key, msg, hashlib.sha256).digest()[:4], "little")
            assert jitter.device_seed(key, epoch) == want == lib.dysan_jitter_seed(key, len(key), epoch)
            seeds.add(want)
    assert len(seeds) == 8  # every (key, boot) its own series
    for bad in (0, jitter.BOOT_EPOCH_MAX + 1):
        with pytest.raises(ValueError, match="boot epoch"):
            jitter.device_seed(b"k" * 32, bad)


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


EMIT_CENTER = (12, -2048, 300, 0, -5, 7)
EMIT_MULT = (30000, 31000, 29000, 120000, 118000, 121000)
EMIT_ZP, EMIT_RATIO = -3, 70000
"""The emit path's quantization in jitter_bench.c."""


def _fnv1a(data: bytes) -> int:
    h = 2166136261
    for b in data:
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


@pytest.mark.qemu
def test_jitter_cost_on_cortex_m4(tmp_path):
    """Instructions per window on the M4 (QEMU -icount shift=0, as bench-firmware counts) of dysan_jitter_apply
    and of the whole emit path dysan_jitter_int8 (dequantize, jitter, requantize: what dysan_app.c's emit adds
    per sent window with a jitter bundle), and their outputs there are those of dysan.jitter (checksums of
    every byte)."""
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
                    "-Icore/include", "-Icore/proto", "-Itests", "tests/jitter_bench.c", "core/src/dysan_jitter.c",
                    "core/src/dysan_preprocess.c", "core/proto/dysan_hmac.c", "core/proto/dysan_sha256.c",
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
    counters = np.arange(len(windows), dtype=np.uint64)
    out = jitter.apply(windows, 0x5EED, counters, jitter.JitterParams())
    assert _fnv1a(out.tobytes()) == checksum, "the M4's outputs differ from dysan.jitter"
    assert 2_000 < per_window < 40_000  # measured 18,022; the sanitizer's budget is 1,000,000 per window
    emit = re.search(r"emit windows (\d+) ticks (\d+)", proc.stdout)
    emit_sum = int(re.search(r"emit checksum (\d+)", proc.stdout).group(1))
    emit_per_window = int(emit.group(2)) * per_tick / int(emit.group(1))
    print(f"dysan_jitter_int8 (emit path): {emit_per_window:,.0f} instructions per window on Cortex-M4F")
    q = (windows.view(np.uint16) & 0xFF).astype(np.uint8).view(np.int8)
    out8 = jitter.apply_int8(q, EMIT_CENTER, EMIT_MULT, EMIT_ZP, EMIT_RATIO, 0x5EED, counters, jitter.JitterParams())
    assert _fnv1a(out8.tobytes()) == emit_sum, "the M4's emit path differs from jitter.apply_int8"
    assert per_window < emit_per_window < 80_000


# ---- the emit path: bundle flag, firmware (host build) == reference -------------------------------------------


def _jitter_bundle(bundle, directory: Path, params: jitter.JitterParams | None):
    """The bundle's models re-packed with the jitter flag (what `dysan export` writes for a run trained with
    --jitter), as a bundle directory; ``params`` None re-packs without it."""
    import shutil

    from dysan.device import reference
    from dysan.export import bundle_format as bf

    shutil.copytree(bundle.directory, directory)
    h = bundle.header
    models = []
    metas = sorted(bundle.manifest["models"], key=lambda m: m["index"])
    for entry, meta in zip(bundle.table, metas, strict=True):
        q = meta["files"]["S"]["quantization"]
        models.append(bf.BundleModel(entry["alpha_milli"] / 1000, entry["lambda_milli"] / 1000, entry["S"], entry["P"],
                                     entry["D"], jitter.ratio_q16(q["output"][0], q["input"][0])))
    image = bf.pack(models, n_classes=h["n_classes"], center=tuple(h[f"center{i}"] for i in range(6)),
                    multipliers=tuple(h[f"mult{i}"] for i in range(6)), input_zp=h["input_zp"],
                    default_model=h["default_model"],
                    schedule=bf.ScheduleDefaults(h["segment"], h["candidates"], h["score_x_q15"], h["score_y_q15"]),
                    max_arena=h["max_arena"], bundle_id=h["bundle_id"], sensitive_classes=h["sensitive_classes"],
                    jitter=params)
    (directory / "bundle.bin").write_bytes(image)
    return reference.Bundle(directory)


def test_bundle_flag_round_trips_and_is_checked(tmp_path, synthetic_bundle):  # noqa: F811
    """Without the flag the re-packed image is the original byte for byte (the format change is invisible to
    bundles without jitter); with it, the header carries the amplitudes and every model its scale ratio, and
    the C loader refuses an unknown flag, an amplitude out of range, and a ratio that is not S's."""
    from dysan.export import bundle_format as bf
    from dysan.testing.core_shim import CoreShim, build

    plain = _jitter_bundle(synthetic_bundle, tmp_path / "plain", None)
    assert plain.image == synthetic_bundle.image and plain.jitter is None
    jb = _jitter_bundle(synthetic_bundle, tmp_path / "jitter", jitter.JitterParams())
    assert jb.jitter == jitter.JitterParams.from_q14(2860, 1638)
    assert all(e["s_out_ratio_q16"] > 0 for e in jb.table)
    core = CoreShim(build())
    assert core.bundle_load(jb.image)[0] == 0 and core.bundle_load(plain.image)[0] == 0
    hdr, mdl = bf.field_offsets(bf.HEADER_FIELDS), bf.field_offsets(bf.MODEL_FIELDS)

    def put(image: bytes, off: int, value: int) -> bytes:
        b = bytearray(image)
        b[off:off + 4] = value.to_bytes(4, "little")
        return bytes(b)

    ratio_off = jb.header["models_off"] + bf.MODEL_SIZE + mdl["s_out_ratio_q16"]  # model 1's
    ratio1 = jb.table[1]["s_out_ratio_q16"]
    shape, quant = -7, -10
    for what, image, want in (
        ("unknown flag", put(jb.image, hdr["flags"], 0x3), shape),
        ("unknown flag without jitter", put(plain.image, hdr["flags"], 0x2), shape),
        ("angle out of range", put(jb.image, hdr["jitter_angle_q14"], 8193), shape),
        ("gain out of range", put(jb.image, hdr["jitter_gain_q14"], 0x80000000), shape),
        ("model 1's ratio is not its S's", put(jb.image, ratio_off, ratio1 + ratio1 // 100), quant),
        ("model 1's ratio is 0", put(jb.image, ratio_off, 0), quant),
    ):
        rc, info = core.bundle_load(image)
        assert rc == want, f"{what}: status {rc} ({info})"
    with pytest.raises(Exception, match="flags"):
        bf.unpack(put(jb.image, hdr["flags"], 0x3))
    # without the flag the amplitude and ratio words are not read (zero in every bundle the exporter writes)
    assert core.bundle_load(put(plain.image, hdr["jitter_angle_q14"], 9999))[0] == 0


def test_host_firmware_sends_what_the_reference_computes_with_jitter(tmp_path, synthetic, synthetic_bundle,  # noqa: F811
                                                                    synthetic_rf):  # noqa: F811
    """The firmware application (host build, provisioned with the test identity) on a jitter bundle: every
    sent window equals the reference's (jitter.apply_int8 with device_seed(key, INFO's boot epoch) and the
    window's seq); the models and labels are those of the same bundle without the flag, the bytes are not.
    After a reboot on the same flash the epoch is one higher and the same samples leave as other bytes (the
    sequence numbers restart, the series does not), again exactly the reference's."""
    from dysan.device import reference as ref_mod
    from test_device_host import SCHED, device, ready
    from test_device_support import TEST_IDENTITY, assert_same_windows, build_firmware, subject_stream

    build_firmware("host")
    ds, _ = synthetic
    samples = subject_stream(ds, ds.recordings[-1].subject, 125 + 62 * 59 + 17)  # 60 windows
    jb = _jitter_bundle(synthetic_bundle, tmp_path / "jitter", jitter.JitterParams())
    with pytest.raises(Exception, match="seed"):
        ref_mod.ReferencePipeline(jb, synthetic_rf, 0, SCHED)
    plain = ref_mod.ReferencePipeline(synthetic_bundle, synthetic_rf, 0, SCHED).run(samples)
    regions = tmp_path / "regions.bin"  # the host build's flash regions in a file: STATE survives the restart
    with device(regions) as s:
        ready(s, jb, synthetic_rf, sensitive=0, sched=SCHED)
        epoch = int(s.info.boot_epoch)
        got = s.replay(samples)
    assert epoch >= 1
    want = ref_mod.ReferencePipeline(jb, synthetic_rf, 0, SCHED,
                                     jitter_seed=jitter.device_seed(TEST_IDENTITY.key, epoch)).run(samples)
    assert [(w.model_id, w.rf_label) for w in want] == [(w.model_id, w.rf_label) for w in plain]
    assert len({w.model_id for w in want}) > 1
    assert_same_windows(got, want, "host build, jitter bundle")
    with device(regions) as s:  # reboot: same bundle, RF and settings from flash, a new epoch
        assert int(s.info.boot_epoch) == epoch + 1 and int(s.info.bundle_valid) and int(s.info.rf_loaded)
        again = s.replay(samples)
    want2 = ref_mod.ReferencePipeline(jb, synthetic_rf, 0, SCHED,
                                      jitter_seed=jitter.device_seed(TEST_IDENTITY.key, epoch + 1)).run(samples)
    assert_same_windows(again, want2, "host build, jitter bundle, after a reboot")
    assert [w.seq for w in again] == [w.seq for w in got]  # sequence numbers restarted ...
    assert np.mean([a.data != g.data for a, g in zip(again, got, strict=True)]) > 0.9  # ... the series did not
    differ = np.mean([w.data != p.data for w, p in zip(want, plain, strict=True)])
    assert differ > 0.9, "the jitter changed almost no window"
    # small: each value moves by a rotation of <= ~17 degrees and a gain of <= 10 %, not more
    a = np.frombuffer(b"".join(w.data for w in want), np.int8).astype(float)
    b = np.frombuffer(b"".join(p.data for p in plain), np.int8).astype(float)
    assert 0 < np.abs(a - b).mean() < 0.5 * np.abs(b).mean() + 2


def _c_defines(*headers: str) -> dict[str, int]:
    """Integer ``#define``s of firmware headers: the STATE layout is read from its one definition."""
    import re

    inc = Path(__file__).resolve().parents[1] / "firmware" / "core" / "include"
    out = {}
    for h in headers:
        for name, value in re.findall(r"^#define\s+(\w+)\s+(0x[0-9A-Fa-f]+|\d+)u?\b", (inc / h).read_text(), re.M):
            out[name] = int(value, 0)
    return out


def _set_boot_epoch(regions: Path, epoch: int) -> None:
    """Rewrite the boot epoch (and CRC) of the current STATE settings record in a host build's regions file
    (STATE is its last DYSAN_STATE_BYTES): what a device that has booted ``epoch`` times holds."""
    import struct
    import zlib

    d = _c_defines("dysan_state.h", "dysan_port.h")
    page, rec_size, off0 = d["DYSAN_PORT_PAGE"], d["DYSAN_STATE_RECORD_SIZE"], d["DYSAN_STATE_SETTINGS_OFF"]
    buf = bytearray(regions.read_bytes())
    state = len(buf) - d["DYSAN_STATE_PAGES"] * page

    def crc_ok(at: int, n: int, crc_at: int) -> bool:
        return struct.unpack_from("<I", buf, crc_at)[0] == zlib.crc32(bytes(buf[at:at + n]))

    pages = [(struct.unpack_from("<I", buf, base + 4)[0], base) for base in (state, state + page)
             if struct.unpack_from("<I", buf, base)[0] == d["DYSAN_STATE_MAGIC"] and crc_ok(base, 12, base + 12)]
    base = max(pages)[1]
    body = rec_size - 4  # the record's CRC-32 covers the bytes before it
    rec = [base + off for off in range(off0, page - rec_size + 1, rec_size)
           if buf[base + off] == d["DYSAN_STATE_TAG"] and crc_ok(base + off, body, base + off + body)][-1]
    struct.pack_into("<H", buf, rec + 10, epoch)  # boot_epoch: dysan_state.h's record layout
    struct.pack_into("<I", buf, rec + body, zlib.crc32(bytes(buf[rec:rec + body])))
    regions.write_bytes(bytes(buf))


def test_a_device_that_cannot_start_a_new_series_sends_no_jittered_window(tmp_path, synthetic, synthetic_bundle,  # noqa: F811
                                                                          synthetic_rf):  # noqa: F811
    """A device whose STATE holds the last boot epoch (65535) cannot raise it: INFO keeps reporting 65535, and
    a jitter bundle is refused with the reason instead of streaming a series an earlier boot may have sent.
    A plain bundle streams as before."""
    from dysan.protocol.schema import Mode
    from test_device_host import SCHED, device, ready
    from test_device_support import build_firmware, subject_stream

    build_firmware("host")
    ds, _ = synthetic
    samples = subject_stream(ds, ds.recordings[-1].subject, 125 + 62 * 4)
    jb = _jitter_bundle(synthetic_bundle, tmp_path / "jitter", jitter.JitterParams())
    regions = tmp_path / "regions.bin"
    with device(regions) as s:
        ready(s, jb, synthetic_rf, sensitive=0, sched=SCHED)
        assert int(s.info.boot_epoch) == 1  # a fresh device's first boot
    _set_boot_epoch(regions, jitter.BOOT_EPOCH_MAX)
    with device(regions) as s:
        assert int(s.info.boot_epoch) == jitter.BOOT_EPOCH_MAX and int(s.info.bundle_valid)
        s.set_mode(Mode.REPLAY)
        s.push_samples(samples, expect_output=False)
        s.set_mode(Mode.IDLE)
        s.ping()
        assert not s.windows
        assert any(level == 2 and "no sanitized output: boot epochs used up" in text for level, text in s.logs)
        s.upload_bundle(synthetic_bundle.image, version=8)  # the same models without the jitter flag
        assert len(s.replay(samples)) == 5


# ---- dysan evaluate on a run trained with --jitter --------------------------------------------------------------


def test_evaluate_applies_the_jitter_of_a_jitter_run(tmp_path):
    """A tiny run trained with --jitter (hand-built: an identity and a constant sanitizer, as in
    test_evaluate.py): `dysan evaluate` scores the windows the device would send — the identity model's
    windows are the raw ones through the jitter with one seed per user and per-user counters, not the raw
    ones — while own-P/D predictions stay those of S's output; results.json and the report say so."""

    from dysan.evaluate import pipeline, report, runs, sanitize
    from dysan.rundir import RunDir
    from dysan.train.loop import TrainConfig
    from test_evaluate import IDENTITY, build_known_run

    run = build_known_run(tmp_path / "run", TrainConfig(epochs=1, pretrain_epochs=0, jitter=True))
    ctx = runs.open_run(run)
    params = sanitize.jitter_of(ctx)
    assert params == jitter.JitterParams()
    cfg = pipeline.EvalConfig(attack=pipeline.attackers.AttackConfig(families=("rf",), rf_trees=20),
                              skip=frozenset({"tradeoff", "candidates", "dtw"}), strategies=frozenset({"fixed"}),
                              reidentify="off")
    out = tmp_path / "eval"
    res = pipeline.evaluate(ctx, cfg, out)
    ev = pipeline.Evaluation(ctx, cfg, RunDir(run).eval_cache(ctx.transfer_name))  # the outputs evaluate cached
    k = next(i for i, m in enumerate(ctx.grid) if m.point == IDENTITY)
    got = np.asarray(ev.outs[k].test.windows)
    assert not np.array_equal(got, ctx.test.counts)
    counters = sanitize.jitter_counters(ctx)
    subj = np.asarray(ctx.test.subject)
    for u in np.unique(subj)[:3]:
        rows = np.flatnonzero(subj == u)
        want = jitter.apply(ctx.test.counts[rows], sanitize.user_seed(ctx.subjects[int(u)]), counters["test"][rows])
        np.testing.assert_array_equal(got[rows], want)
        train_rows = np.flatnonzero(np.asarray(ctx.train.subject) == u)
        assert counters["test"][rows].min() == len(train_rows) + 1  # the stream goes on after the train windows
    assert float(ev.outs[k].test.distortion.max()) == 0.0  # measured before the jitter, as in training
    assert res["jitter"]["max_angle_deg"] == 10.0 and "per user" in res["jitter"]["seed"]
    html = report.render(out, out).read_text()
    assert "on-device jitter" in html and "evaluated as the device sends them" in html
