"""The model bundle image: every grid point's S, P and D model images plus what the device needs around them.

One binary image serves both ways a bundle reaches the wearable — compiled into the firmware's BUNDLE
region (``firmware/build/generated/dysan_bundle.c``) or uploaded over the authenticated link into the same
region — so the firmware has one loader, which trusts nothing (every offset and size is checked).

Layout (little-endian, 4-byte aligned, offsets from the start of the bundle)::

    header    HEADER_FIELDS (128 bytes): magic "DYSB", version, sizes, contract constants, normalization
              (per-channel center and int multiplier, the sanitizers' shared int8 input zero point),
              schedule defaults, model table offset, flags and the on-device jitter's amplitudes
    models    n_models x MODEL_FIELDS (32 bytes): α and λ in thousandths, offset and size of the S, P and D
              model images (``dysan.export.model_image``), S's output / input scale ratio (Q16, for the jitter)
    images    the model images, each 4-byte aligned

Flags: ``FLAG_JITTER`` — the sanitizers were trained through the on-device jitter (``dysan train --jitter``,
:mod:`dysan.jitter`), so the device applies it to every window it sends, with the amplitudes
``jitter_angle_q14`` / ``jitter_gain_q14`` and each model's ``s_out_ratio_q16``. A bundle without the flag
has zeros there (the words were reserved, zero, in earlier bundles of this version) and is sent as before.

The constants below are the single definition; :func:`render_c_header` writes
``firmware/core/include/dysan_bundle_format.h`` (registered in :mod:`dysan.codegen`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .. import contract
from ..errors import DysanError

MAGIC = 0x42535944  # "DYSB" as a little-endian u32
VERSION = 1
ALIGN = 4
MAX_MODELS = 64
MAX_CLASSES = 16
FLAG_JITTER = 0x1
"""Header flag: apply the on-device jitter (:mod:`dysan.jitter`) to every sent window."""
KNOWN_FLAGS = FLAG_JITTER

HEADER_FIELDS: tuple[tuple[str, str], ...] = (
    ("magic", "I"),
    ("version", "I"),
    ("header_size", "I"),
    ("bundle_size", "I"),
    ("n_models", "H"),
    ("n_classes", "H"),
    ("rate_hz", "H"),
    ("window", "H"),
    ("hop", "H"),
    ("n_channels", "H"),
    ("models_off", "I"),
    ("norm_shift", "I"),
    ("center0", "i"),
    ("center1", "i"),
    ("center2", "i"),
    ("center3", "i"),
    ("center4", "i"),
    ("center5", "i"),
    ("mult0", "i"),
    ("mult1", "i"),
    ("mult2", "i"),
    ("mult3", "i"),
    ("mult4", "i"),
    ("mult5", "i"),
    ("input_zp", "i"),
    ("default_model", "H"),
    ("segment", "H"),
    ("candidates", "H"),
    ("sensitive_classes", "H"),
    ("score_x_q15", "H"),
    ("score_y_q15", "H"),
    ("max_arena", "I"),
    ("bundle_id", "I"),
    ("flags", "I"),
    ("jitter_angle_q14", "I"),
    ("jitter_gain_q14", "I"),
    ("reserved3", "I"),
    ("reserved4", "I"),
)
MODEL_FIELDS: tuple[tuple[str, str], ...] = (
    ("alpha_milli", "H"),
    ("lambda_milli", "H"),
    ("s_off", "I"),
    ("s_size", "I"),
    ("p_off", "I"),
    ("p_size", "I"),
    ("d_off", "I"),
    ("d_size", "I"),
    ("s_out_ratio_q16", "I"),
)


def _fmt(fields: tuple[tuple[str, str], ...]) -> str:
    return "<" + "".join(code for _, code in fields)


HEADER_SIZE = struct.calcsize(_fmt(HEADER_FIELDS))
MODEL_SIZE = struct.calcsize(_fmt(MODEL_FIELDS))
assert HEADER_SIZE == 128 and MODEL_SIZE == 32, (HEADER_SIZE, MODEL_SIZE)


def field_offsets(fields: tuple[tuple[str, str], ...]) -> dict[str, int]:
    out, off = {}, 0
    for name, code in fields:
        out[name] = off
        off += struct.calcsize("<" + code)
    return out


@dataclass(frozen=True)
class ScheduleDefaults:
    """How the device selects models (DySan(o)); the host reference uses the same numbers."""

    segment: int = 5
    """Windows per segment p: one model is chosen per segment."""
    candidates: int = 8
    """Candidates scored per window (round-robin over the models); all models when >= n_models. 8 of a full
    36-model grid: each segment's score then looks back over R = ceil(3 * 36 / (8 * 5)) = 3 segments
    (``selection.horizon_segments``), so every model keeps about 3 evaluations in its score, for 2/9 of the
    work of all 36 on every window: ~4 % duty at 64 MHz instead of 16.7 % (``dysan bench-firmware``,
    docs/firmware.md "Duty"); 36 (or CONFIGURE candidates >= n_models) is the paper's per-segment DySan(o)."""
    score_x_q15: int = round(0.2 * 32768)
    score_y_q15: int = round(0.8 * 32768)


@dataclass
class BundleModel:
    alpha: float
    lam: float
    s_image: bytes
    p_image: bytes
    d_image: bytes
    s_out_ratio_q16: int = 0
    """S's output scale / the shared input scale, Q16 (:func:`dysan.jitter.ratio_q16`): needed with the
    jitter only (0 otherwise)."""


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def pack(models: list[BundleModel], n_classes: int, center: tuple[int, ...], multipliers: tuple[int, ...],
         input_zp: int, default_model: int, schedule: ScheduleDefaults, max_arena: int, bundle_id: int,
         sensitive_classes: int = 2, jitter=None) -> bytes:
    """Assemble a bundle image (see the module doc). ``sensitive_classes``: values of the sensitive attribute
    (every D outputs that many logits; 2 for gender or the two SisFall age groups). ``jitter``: the
    :class:`dysan.jitter.JitterParams` the sanitizers were trained with (sets ``FLAG_JITTER``; every model
    then needs its ``s_out_ratio_q16``), or None."""
    if jitter is not None and any(m.s_out_ratio_q16 <= 0 for m in models):
        raise DysanError("a jitter bundle needs every model's S output / input scale ratio")
    if not 2 <= sensitive_classes <= MAX_CLASSES:
        raise DysanError(f"a bundle supports 2..{MAX_CLASSES} sensitive values, got {sensitive_classes}")
    if not 1 <= len(models) <= MAX_MODELS:
        raise DysanError(f"a bundle holds 1..{MAX_MODELS} models, got {len(models)}")
    if not 2 <= n_classes <= MAX_CLASSES:
        raise DysanError(f"a bundle supports 2..{MAX_CLASSES} activity classes, got {n_classes}")
    if not 0 <= default_model < len(models):
        raise DysanError("default model index out of range")
    models_off = HEADER_SIZE
    offset = _align(models_off + MODEL_SIZE * len(models))
    table, blobs = [], []
    for m in models:
        entry = {"alpha_milli": round(m.alpha * 1000), "lambda_milli": round(m.lam * 1000),
                 "s_out_ratio_q16": m.s_out_ratio_q16 if jitter is not None else 0}
        for key, image in (("s", m.s_image), ("p", m.p_image), ("d", m.d_image)):
            entry[f"{key}_off"] = offset
            entry[f"{key}_size"] = len(image)
            blobs.append((offset, image))
            offset = _align(offset + len(image))
        table.append(entry)
    total = offset
    header = {
        "magic": MAGIC, "version": VERSION, "header_size": HEADER_SIZE, "bundle_size": total,
        "n_models": len(models), "n_classes": n_classes, "rate_hz": contract.RATE_HZ, "window": contract.WINDOW,
        "hop": contract.HOP, "n_channels": contract.N_CHANNELS, "models_off": models_off,
        "norm_shift": contract.NORM_SHIFT, "input_zp": input_zp, "default_model": default_model,
        "segment": schedule.segment, "candidates": schedule.candidates, "sensitive_classes": sensitive_classes,
        "score_x_q15": schedule.score_x_q15, "score_y_q15": schedule.score_y_q15, "max_arena": max_arena,
        "bundle_id": bundle_id & 0xFFFFFFFF,
        "flags": FLAG_JITTER if jitter is not None else 0,
        "jitter_angle_q14": jitter.max_angle_q14 if jitter is not None else 0,
        "jitter_gain_q14": jitter.max_gain_q14 if jitter is not None else 0,
        **{f"reserved{i}": 0 for i in range(3, 5)},
    }
    for i in range(contract.N_CHANNELS):
        header[f"center{i}"] = int(center[i])
        header[f"mult{i}"] = int(multipliers[i])
    out = bytearray(total)
    out[:HEADER_SIZE] = struct.pack(_fmt(HEADER_FIELDS), *(header[n] for n, _ in HEADER_FIELDS))
    for i, entry in enumerate(table):
        pos = models_off + i * MODEL_SIZE
        out[pos:pos + MODEL_SIZE] = struct.pack(_fmt(MODEL_FIELDS), *(entry[n] for n, _ in MODEL_FIELDS))
    for off, image in blobs:
        out[off:off + len(image)] = image
    return bytes(out)


def unpack(image: bytes) -> tuple[dict, list[dict]]:
    """Header and model table of a bundle image (host-side reader, for checks and the reference pipeline)."""
    if len(image) < HEADER_SIZE:
        raise DysanError("bundle image shorter than its header")
    header = dict(zip([n for n, _ in HEADER_FIELDS], struct.unpack_from(_fmt(HEADER_FIELDS), image, 0),
                      strict=True))
    if header["magic"] != MAGIC or header["version"] != VERSION:
        raise DysanError("not a DySan bundle image (or another format version)")
    if header["bundle_size"] > len(image):
        raise DysanError("bundle image truncated")
    if header["flags"] & ~KNOWN_FLAGS:
        raise DysanError(f"bundle flags 0x{header['flags']:x}: unknown to this version")
    models = []
    for i in range(header["n_models"]):
        values = struct.unpack_from(_fmt(MODEL_FIELDS), image, header["models_off"] + i * MODEL_SIZE)
        entry = dict(zip([n for n, _ in MODEL_FIELDS], values, strict=True))
        for key in ("s", "p", "d"):
            off, size = entry[f"{key}_off"], entry[f"{key}_size"]
            if off + size > header["bundle_size"]:
                raise DysanError(f"model {i}: {key.upper()} image outside the bundle")
            entry[key.upper()] = image[off:off + size]
        models.append(entry)
    return header, models


def jitter_params(header: dict):
    """The :class:`dysan.jitter.JitterParams` a bundle header asks the device to apply, or None."""
    if not header["flags"] & FLAG_JITTER:
        return None
    from ..jitter import JitterParams

    try:
        return JitterParams.from_q14(header["jitter_angle_q14"], header["jitter_gain_q14"])
    except ValueError as exc:
        raise DysanError(f"bundle jitter amplitudes: {exc}") from None


def render_c_header() -> str:
    out = [
        "/* GENERATED by `dysan codegen` from host/dysan/export/bundle_format.py -- do not edit. */",
        "#ifndef DYSAN_BUNDLE_FORMAT_H",
        "#define DYSAN_BUNDLE_FORMAT_H",
        "",
        f'#define DYSAN_BUNDLE_MAGIC 0x{MAGIC:08X}u /* "DYSB" */',
        f"#define DYSAN_BUNDLE_VERSION {VERSION}u",
        f"#define DYSAN_BUNDLE_ALIGN {ALIGN}u",
        f"#define DYSAN_BUNDLE_MAX_MODELS {MAX_MODELS}u",
        f"#define DYSAN_BUNDLE_MAX_CLASSES {MAX_CLASSES}u",
        f"#define DYSAN_BUNDLE_FLAG_JITTER 0x{FLAG_JITTER:X}u /* apply the on-device jitter to sent windows */",
        f"#define DYSAN_BUNDLE_KNOWN_FLAGS 0x{KNOWN_FLAGS:X}u",
        "",
    ]
    for prefix, fields, size in (("HDR", HEADER_FIELDS, HEADER_SIZE), ("MODEL", MODEL_FIELDS, MODEL_SIZE)):
        out.append(f"/* {prefix.lower()} record: {size} bytes, little-endian; byte offset of each field */")
        out.append(f"#define DYSAN_BUNDLE_{prefix}_SIZE {size}u")
        for name, off in field_offsets(fields).items():
            out.append(f"#define DYSAN_BUNDLE_{prefix}_{name.upper()} {off}u")
        out.append("")
    out += ["#endif /* DYSAN_BUNDLE_FORMAT_H */", ""]
    return "\n".join(out)
