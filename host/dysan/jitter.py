"""On-device randomness: a per-window random rotation and gain applied to the sanitized window before it leaves.

Why: an attacker retrained on sanitized windows reads a person's mount angle from the per-axis gravity
means (a per-person fingerprint, hence gender within-subject). A small random rotation per window, from a
seed that stays on the device, blurs that fingerprint in a way no attacker can undo (the seed is never
sent), and a small gain jitter blurs per-person amplitude levels. The sanitizer is trained *through* the
transform (:mod:`dysan.train.loop`, ``TrainConfig.jitter``), so it learns to keep the activity readable
after it.

The transform is integer code, bit-identical here and in C (``firmware/core/src/dysan_jitter.c``;
``tests/test_jitter.py`` compares them on every output value):

- randomness: ``r_k = fmix32(fmix32(seed ^ counter) + k * 0x9E3779B9)`` (murmur3's finalizer, uint32
  wrap-around), k = 0..4, for window number ``counter`` — stateless, so the device needs only its seed and
  a window counter;
- three angles ``a_k = floor(((r_k >> 16) − 32768) · A / 32768)`` in Q14 radians (A = ``max_angle_q14``),
  two gains ``g = 16384 + floor(((r_k >> 16) − 32768) · G / 32768)`` in Q14 (G = ``max_gain_q14``), one for
  the accelerometer and one for the gyroscope;
- sin / cos by Taylor polynomials in Q14 (``sin a = a − a³/6 + a⁵/120``, ``cos a = 1 − a²/2 + a⁴/24``,
  each product rounded: ``rshift_round(v, 14) = floor((v + 8192) / 16384)``), error < 1e-4 for |a| ≤ 0.5;
- R = Rz(a2) · Ry(a1) · Rx(a0) in Q14 (rounded products), M_acc = g_acc · R, M_gyro = g_gyro · R (Q14);
- per sample and triad: ``out_i = sat16(rshift_round(Σ_j M_ij · x_j, 14))``.

All intermediate values fit in int32 (|M_ij| ≤ 1.5·16384, |x| ≤ 32768: |Σ| < 2^31) and shifts of negative
values are floors in both languages (the C code uses a floor shift defined for negative operands).

On the device (:func:`apply_int8`, ``dysan_jitter_int8``): the wire carries S's int8 output, so each sent
window is dequantized to int16 counts, transformed, and requantized, all in integers. The bundle carries,
per model, the ratio of S's output scale to the shared input scale in Q16 (``r``); with the input
multipliers ``M_c`` of the normalization the output multipliers are ``M'_c = round(M_c · 2^16 / r)`` and

- dequantize: ``x = sat16(center_c + floor(((q − zp) · D_c + 2^15) / 2^16))``, ``D_c = round(2^36 / M'_c)``;
- transform: :func:`apply`;
- requantize: :func:`dysan.preprocess.quantize_input` with ``(center, M', zp)``.

The seed (:func:`device_seed`) is derived from the device's provisioned HMAC key and its boot epoch, so it is
provisioned with the key and never leaves the device; the window counter is the window's SANITIZED_WINDOW
sequence number. Sequence numbers restart at 1 on every boot, so the boot epoch (a counter in STATE that the
device raises once per boot, reported in authenticated INFO) is mixed into the seed: a reboot starts a new
series of transforms instead of replaying the last one.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from dataclasses import dataclass

import numpy as np

from . import contract

Q = 14
ONE = 1 << Q
GOLDEN = 0x9E3779B9
MASK32 = 0xFFFFFFFF
DRAWS = 5
"""Random words per window: three angles, the accelerometer gain, the gyroscope gain."""


@dataclass(frozen=True)
class JitterParams:
    """Amplitudes of the transform. Defaults: rotations up to ±10° per axis, gains 1 ± 10 %."""

    max_angle_deg: float = 10.0
    max_gain: float = 0.10

    @property
    def max_angle_q14(self) -> int:
        return round(math.radians(self.max_angle_deg) * ONE)

    @property
    def max_gain_q14(self) -> int:
        return round(self.max_gain * ONE)

    @classmethod
    def from_q14(cls, max_angle_q14: int, max_gain_q14: int) -> JitterParams:
        """The parameters whose Q14 amplitudes are exactly these (what a bundle header carries)."""
        p = cls(math.degrees(max_angle_q14 / ONE), max_gain_q14 / ONE)
        if (p.max_angle_q14, p.max_gain_q14) != (max_angle_q14, max_gain_q14):
            raise ValueError(f"jitter amplitudes {max_angle_q14}, {max_gain_q14} do not round-trip")
        return p

    def __post_init__(self) -> None:
        if not 0 <= self.max_angle_deg <= 28.0:  # |a| <= 0.5 rad keeps the Taylor error < 1e-4
            raise ValueError("jitter: max angle must be within 0..28 degrees")
        if not 0 <= self.max_gain <= 0.5:
            raise ValueError("jitter: max gain must be within 0..0.5")


def _fmix32(h: np.ndarray) -> np.ndarray:
    h = np.asarray(h, dtype=np.uint64) & MASK32
    h ^= h >> np.uint64(16)
    h = (h * np.uint64(0x85EBCA6B)) & MASK32
    h ^= h >> np.uint64(13)
    h = (h * np.uint64(0xC2B2AE35)) & MASK32
    h ^= h >> np.uint64(16)
    return h


def draws(seed: int, counters: np.ndarray) -> np.ndarray:
    """``(n, DRAWS)`` uint32 random words of windows ``counters`` (uint32) for a device ``seed``."""
    c = np.asarray(counters, dtype=np.uint64) & MASK32
    base = _fmix32(np.uint64(seed & MASK32) ^ c)
    k = np.arange(DRAWS, dtype=np.uint64)
    return _fmix32((base[:, None] + k[None, :] * np.uint64(GOLDEN)) & MASK32)


def _rshift_round(v: np.ndarray) -> np.ndarray:
    return (np.asarray(v, dtype=np.int64) + (1 << (Q - 1))) >> Q


def _centered(r: np.ndarray, amplitude: int) -> np.ndarray:
    """``floor(((r >> 16) − 32768) · amplitude / 32768)`` as int64."""
    return ((r.astype(np.int64) >> 16) - 32768) * amplitude >> 15


def _sin_cos(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a2 = _rshift_round(a * a)
    a3 = _rshift_round(a2 * a)
    a4 = _rshift_round(a2 * a2)
    a5 = _rshift_round(a4 * a)
    sin = a - _rshift_round(a3 * 2731) + _rshift_round(a5 * 137)  # 2731 ≈ 16384/6, 137 ≈ 16384/120
    cos = ONE - _rshift_round(a2 * 8192) + _rshift_round(a4 * 683)  # 8192 = 16384/2, 683 ≈ 16384/24
    return sin, cos


def _matmul_q14(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(n, 3, 3) @ (n, 3, 3)`` in Q14, each output rounded once after its sum."""
    return _rshift_round(np.einsum("nij,njk->nik", a, b))


def matrices(seed: int, counters: np.ndarray, params: JitterParams = JitterParams()) -> np.ndarray:
    """``(n, 2, 3, 3)`` int64 Q14 matrices (accelerometer, gyroscope) of windows ``counters``."""
    r = draws(seed, counters)
    n = len(r)
    ang = _centered(r[:, 0:3], params.max_angle_q14)
    gains = ONE + _centered(r[:, 3:5], params.max_gain_q14)
    s, c = _sin_cos(ang)
    zero, one = np.zeros(n, dtype=np.int64), np.full(n, ONE, dtype=np.int64)

    def mat(rows):
        return np.stack([np.stack(row, axis=-1) for row in rows], axis=-2)

    rx = mat([[one, zero, zero], [zero, c[:, 0], -s[:, 0]], [zero, s[:, 0], c[:, 0]]])
    ry = mat([[c[:, 1], zero, s[:, 1]], [zero, one, zero], [-s[:, 1], zero, c[:, 1]]])
    rz = mat([[c[:, 2], -s[:, 2], zero], [s[:, 2], c[:, 2], zero], [zero, zero, one]])
    rot = _matmul_q14(rz, _matmul_q14(ry, rx))
    return np.stack([_rshift_round(gains[:, 0, None, None] * rot), _rshift_round(gains[:, 1, None, None] * rot)],
                    axis=1)


def apply(windows: np.ndarray, seed: int, counters: np.ndarray, params: JitterParams = JitterParams()) -> np.ndarray:
    """The device's transform on ``(n, W, 6)`` int16 count windows (window i uses ``counters[i]``)."""
    w = np.asarray(windows)
    if w.ndim != 3 or w.shape[2] != contract.N_CHANNELS:
        raise ValueError(f"windows must be (n, W, {contract.N_CHANNELS}), got {w.shape}")
    m = matrices(seed, counters, params)
    x = w.astype(np.int64)
    acc = _rshift_round(np.einsum("nij,ntj->nti", m[:, 0], x[..., 0:3]))
    gyro = _rshift_round(np.einsum("nij,ntj->nti", m[:, 1], x[..., 3:6]))
    out = np.concatenate([acc, gyro], axis=-1)
    return np.clip(out, contract.INT16_MIN, contract.INT16_MAX).astype(np.int16)


def float_matrices(seed: int, counters: np.ndarray, params: JitterParams = JitterParams()) -> np.ndarray:
    """:func:`matrices` as float32 (``/ 2^14``): what training multiplies the sanitizer's output with."""
    return (matrices(seed, counters, params) / ONE).astype(np.float32)


# ---- the device's emit path ----------------------------------------------------------------------------------

RATIO_Q = 16
"""Fraction bits of the bundle's per-model S output / input scale ratio."""
SEED_LABEL = b"dysan jitter seed v2"
"""HMAC message prefix that derives the jitter seed from the device key (generated into C as
DYSAN_JITTER_SEED_LABEL); the boot epoch (u16 little-endian) follows it."""
BOOT_EPOCH_MAX = 0xFFFF
"""The last boot epoch: STATE keeps it in a u16, and a device whose epochs are used up sends no jittered
window rather than repeat a series (generated into C as DYSAN_JITTER_EPOCH_MAX)."""


def device_seed(key: bytes, boot_epoch: int) -> int:
    """The jitter seed of one boot: the first 4 bytes (little-endian) of
    HMAC-SHA256(key, SEED_LABEL || boot_epoch as u16 LE).

    Derived, not stored: provisioning the key provisions the seeds, a seed reveals nothing of the key or of
    another boot's seed, and the epoch (not secret: INFO reports it) is what makes each boot's series new."""
    if not 1 <= boot_epoch <= BOOT_EPOCH_MAX:
        raise ValueError(f"boot epoch {boot_epoch} outside 1..{BOOT_EPOCH_MAX} (a device that streams has "
                         "raised its epoch at least once)")
    msg = SEED_LABEL + int(boot_epoch).to_bytes(2, "little")
    return int.from_bytes(hmac.new(bytes(key), msg, hashlib.sha256).digest()[:4], "little")


def ratio_q16(output_scale: float, input_scale: float) -> int:
    """``round(output_scale / input_scale · 2^16)``: what the bundle stores per model for the emit path."""
    if output_scale <= 0 or input_scale <= 0:
        raise ValueError("quantization scales must be positive")
    r = round(output_scale / input_scale * (1 << RATIO_Q))
    if not 1 <= r <= 0xFFFFFFFF:
        raise ValueError(f"S output / input scale ratio {output_scale / input_scale:g} out of range")
    return int(r)


def output_multipliers(multipliers: tuple[int, ...] | np.ndarray, ratio: int) -> np.ndarray:
    """``M'_c = round(M_c · 2^16 / ratio)`` (int64); raises ValueError outside 1 .. 2^31 − 1 (as C refuses)."""
    m = np.asarray(multipliers, dtype=np.int64)
    if ratio <= 0 or (m <= 0).any():
        raise ValueError("multipliers and ratio must be positive")
    out = ((m << RATIO_Q) + ratio // 2) // ratio
    if (out < 1).any() or (out > 0x7FFFFFFF).any():
        raise ValueError("jitter: output multiplier out of int32 range")
    return out


def apply_int8(q: np.ndarray, center: tuple[int, ...], multipliers: tuple[int, ...], zero_point: int, ratio: int,
               seed: int, counters: np.ndarray, params: JitterParams = JitterParams()) -> np.ndarray:
    """The device's emit path on ``(n, W, 6)`` int8 sanitized windows (S's output quantization: zero point
    ``zero_point``, scale ``ratio / 2^16`` times the input scale that ``multipliers`` were made for)."""
    from .preprocess import quantize_input

    x = np.asarray(q)
    if x.ndim != 3 or x.shape[2] != contract.N_CHANNELS:
        raise ValueError(f"windows must be (n, W, {contract.N_CHANNELS}), got {x.shape}")
    out_mult = output_multipliers(multipliers, ratio)
    deq = ((1 << 36) + out_mult // 2) // out_mult
    c = np.asarray(center, dtype=np.int64)
    counts = c + (((x.astype(np.int64) - int(zero_point)) * deq + (1 << 15)) >> 16)
    counts = np.clip(counts, contract.INT16_MIN, contract.INT16_MAX).astype(np.int16)
    return quantize_input(apply(counts, seed, counters, params), tuple(center), tuple(int(v) for v in out_mult),
                          zero_point)
