"""THE message table of the host <-> device wire protocol (UART and BLE Nordic UART Service alike).

Every fact about a message -- its id, direction, whether it must be authenticated, and the byte layout of
its payload -- is written here once. The Python codec (:mod:`.messages`) interprets this table at import
time and the C side (``firmware/core/proto/dysan_msg.{h,c}``) is generated from it (:mod:`.cgen`), so the
two cannot disagree; ``tests/test_codegen.py`` fails when the generated C is stale.

Payloads are plain packed little-endian: fixed-size fields in declaration order, then at most one trailing
variable-length field whose size follows from the frame's payload length. That keeps the C unpackers
trivially bounds-checked (one size comparison per message) and makes every payload easy to fuzz.

Window sizes come from :mod:`dysan.contract` (``WINDOW``, ``N_CHANNELS``, ``HOP``) and reach C as the
``dysan_contract.h`` macros: no window dimension is written twice.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .. import contract

PROTOCOL_VERSION: int = 3
"""Bumped on any incompatible change of this table or of the frame layout (reported in INFO)."""

# ---------------------------------------------------------------------------------------------- frame
HEADER_SIZE: int = 6
"""``msg_id u8 | flags u8 | seq u16 | payload_len u16`` (see docs/protocol.md)."""
CRC_SIZE: int = 4
"""CRC-32/ISO-HDLC (IEEE 802.3, zlib's crc32) over header + payload + auth trailer."""
AUTH_COUNTER_SIZE: int = 4
AUTH_TAG_SIZE: int = 16
"""HMAC-SHA256 truncated to its first 128 bits (RFC 4868's HMAC-SHA-256-128; see docs/protocol.md)."""
AUTH_TRAILER_SIZE: int = AUTH_COUNTER_SIZE + AUTH_TAG_SIZE
DEVICE_ID_SIZE: int = 8
AUTH_KEY_SIZE: int = 32
FLAG_AUTH: int = 0x01
"""Frame flag: an auth trailer (counter u32 + tag) follows the payload."""
FLAGS_KNOWN: int = FLAG_AUTH
"""Frames with any other flag bit set are refused: a future flag may change the layout."""

CHUNK_MAX: int = 1024
"""Largest data field of BUNDLE_CHUNK / RF_CHUNK (a power of two keeps flash writes page-aligned)."""
TEXT_MAX: int = 96
"""Largest ERROR / LOG text (UTF-8 bytes)."""
SAMPLES_MAX: int = contract.HOP
"""Largest number of samples in one SAMPLES frame: one hop, so replay paces itself window by window."""
SAMPLES_MAX_C: str = "DYSAN_HOP"
"""The same bound for C (a ``dysan_contract.h`` macro)."""
STAGES: tuple[str, ...] = ("preprocess", "rf", "score", "sanitize", "link", "total")
"""Per-stage work counters reported by STATS (instructions under QEMU, cycles on boards): int8 input
quantization, RF (features + forest), candidate scoring (S + P + D of each candidate), the final sanitizer
runs, framing + sending, and the whole window (every stage plus selection and bookkeeping)."""
KERNELS: tuple[str, ...] = ("conv", "fc")
"""int8 kernels whose multiply-accumulates and work STATS reports (per-op profiling of every inference)."""


class Direction(enum.Enum):
    H2D = "host->device"
    D2H = "device->host"
    BOTH = "both"


# ---------------------------------------------------------------------------------------------- enums
class Mode(enum.IntEnum):
    """What the device does with IMU samples."""

    IDLE = 0
    STREAMING = 1
    CALIBRATION = 2
    REPLAY = 3


class ErrorCode(enum.IntEnum):
    """``ERROR.code``: why the device refused a frame (the frame's id and seq are echoed)."""

    UNKNOWN_MSG = 1
    WRONG_DIRECTION = 2
    BAD_LENGTH = 3
    BAD_FIELD = 4
    AUTH_REQUIRED = 5
    AUTH_FAILED = 6
    REPLAY = 7
    NOT_PROVISIONED = 8
    STORAGE = 9
    WRONG_MODE = 10
    XFER_OFFSET = 11
    XFER_SIZE = 12
    XFER_HASH = 13
    XFER_STATE = 14
    BUSY = 15
    INTERNAL = 16


class XferTarget(enum.IntEnum):
    """Which persistent region an upload writes."""

    BUNDLE = 0
    RF = 1


class XferState(enum.IntEnum):
    """Progress of an upload (XFER_STATUS.state)."""

    IDLE = 0
    RECEIVING = 1
    COMPLETE = 2
    """All ``total_size`` bytes received; waiting for the authenticated COMMIT."""
    COMMITTED = 3
    FAILED = 4


class LogLevel(enum.IntEnum):
    """Severity of a LOG message."""

    DEBUG = 0
    INFO = 1
    WARN = 2
    ERROR = 3


class WindowFlag(enum.IntFlag):
    """Bits of ``SANITIZED_WINDOW.flags``."""

    RETRANSMIT = 0x01
    RF_LABEL_VALID = 0x02
    REPLAYED = 0x04
    """Built from host-provided SAMPLES (replay mode), not from the IMU."""
    FALLBACK_MODEL = 0x08
    """The dynamic selection had no decision yet (first segment); the bundle's default model was used."""
    SAMPLES_MISSED = 0x10
    """IMU samples were lost inside this window (the sample ring or the IMU's FIFO overflowed): its samples
    are not contiguous in time. Counted in STATS.samples_missed / windows_with_gaps."""
    LATE = 0x20
    """When this window completed, the pipeline was a hop or more behind the IMU (STATS.windows_late)."""


ENUMS: tuple[type[enum.IntEnum] | type[enum.IntFlag], ...] = (
    Mode,
    ErrorCode,
    XferTarget,
    XferState,
    LogLevel,
    WindowFlag,
)


# ---------------------------------------------------------------------------------------------- types
@dataclass(frozen=True)
class Scalar:
    """A fixed-width little-endian integer type."""

    name: str
    size: int
    signed: bool
    struct_char: str
    c_type: str

    @property
    def lo(self) -> int:
        return -(1 << (8 * self.size - 1)) if self.signed else 0

    @property
    def hi(self) -> int:
        return (1 << (8 * self.size - 1)) - 1 if self.signed else (1 << (8 * self.size)) - 1


TYPES: dict[str, Scalar] = {
    t.name: t
    for t in (
        Scalar("u8", 1, False, "B", "uint8_t"),
        Scalar("u16", 2, False, "H", "uint16_t"),
        Scalar("u32", 4, False, "I", "uint32_t"),
        Scalar("u64", 8, False, "Q", "uint64_t"),
        Scalar("i8", 1, True, "b", "int8_t"),
        Scalar("i16", 2, True, "h", "int16_t"),
    )
}


@dataclass(frozen=True)
class Dim:
    """An array dimension: its value here and the C expression that must equal it (contract macros)."""

    value: int
    c_expr: str


WINDOW_VALUES = Dim(contract.WINDOW * contract.N_CHANNELS, "(DYSAN_WINDOW * DYSAN_N_CHANNELS)")
SAMPLE_VALUES = Dim(contract.N_CHANNELS, "DYSAN_N_CHANNELS")


class Kind(enum.Enum):
    INT = "int"
    """A scalar integer."""
    ARRAY = "array"
    """A fixed-length integer array (Python: tuple of int)."""
    BYTES = "bytes"
    """A fixed-length byte string (Python: bytes)."""
    VAR_BYTES = "var_bytes"
    """Trailing variable-length bytes, 0..max_len (Python: bytes)."""
    VAR_TEXT = "var_text"
    """Trailing variable-length UTF-8 text, 0..max_len bytes (Python: str)."""
    VAR_ARRAY = "var_array"
    """Trailing ``count`` groups of ``group`` integers; ``count`` is a preceding u8/u16 field."""


@dataclass(frozen=True)
class Field:
    """One payload field. Constraints (``lo``/``hi``/``enum``) are enforced by both codecs."""

    name: str
    kind: Kind
    type: Scalar
    doc: str
    dim: Dim | None = None
    """Element count of ARRAY / BYTES; group size of VAR_ARRAY."""
    max_len: int = 0
    """VAR_*: the largest element count (VAR_ARRAY: number of groups)."""
    max_c: str = ""
    """VAR_*: ``max_len`` as a C expression (a contract macro where it derives from the contract)."""
    count_field: str | None = None
    """VAR_ARRAY: the name of the (earlier, implicit in Python) field holding the number of groups."""
    lo: int | None = None
    hi: int | None = None
    enum: type[enum.IntEnum] | None = None

    @property
    def variable(self) -> bool:
        return self.kind in (Kind.VAR_BYTES, Kind.VAR_TEXT, Kind.VAR_ARRAY)

    @property
    def count(self) -> int:
        """Number of elements of a fixed field."""
        return self.dim.value if self.dim is not None else 1

    @property
    def size(self) -> int:
        """Bytes of a fixed field; bytes of one element (group) of a variable field."""
        if self.kind is Kind.VAR_ARRAY:
            assert self.dim is not None
            return self.type.size * self.dim.value
        if self.variable:
            return 1
        return self.type.size * self.count

    @property
    def allowed(self) -> tuple[int, ...] | None:
        return tuple(int(v) for v in self.enum) if self.enum is not None else None


def u8(name: str, doc: str, *, lo: int | None = None, hi: int | None = None) -> Field:
    return Field(name, Kind.INT, TYPES["u8"], doc, lo=lo, hi=hi)


def u16(name: str, doc: str, *, lo: int | None = None, hi: int | None = None) -> Field:
    return Field(name, Kind.INT, TYPES["u16"], doc, lo=lo, hi=hi)


def u32(name: str, doc: str) -> Field:
    return Field(name, Kind.INT, TYPES["u32"], doc)


def u64(name: str, doc: str) -> Field:
    return Field(name, Kind.INT, TYPES["u64"], doc)


def flag(name: str, doc: str) -> Field:
    """A boolean carried as u8 0/1 (anything else is refused, so there is one encoding per value)."""
    return Field(name, Kind.INT, TYPES["u8"], doc, lo=0, hi=1)


def choice(name: str, e: type[enum.IntEnum], doc: str) -> Field:
    return Field(name, Kind.INT, TYPES["u8"], doc, enum=e)


def array(name: str, type_: str, dim: Dim, doc: str) -> Field:
    return Field(name, Kind.ARRAY, TYPES[type_], doc, dim=dim)


def raw(name: str, n: int, doc: str) -> Field:
    return Field(name, Kind.BYTES, TYPES["u8"], doc, dim=Dim(n, str(n)))


def var_bytes(name: str, max_len: int, doc: str) -> Field:
    return Field(name, Kind.VAR_BYTES, TYPES["u8"], doc, max_len=max_len, max_c=str(max_len))


def var_text(name: str, max_len: int, doc: str) -> Field:
    return Field(name, Kind.VAR_TEXT, TYPES["u8"], doc, max_len=max_len, max_c=str(max_len))


def var_array(name: str, type_: str, group: Dim, max_groups: Dim, count_field: str, doc: str) -> Field:
    return Field(
        name,
        Kind.VAR_ARRAY,
        TYPES[type_],
        doc,
        dim=group,
        max_len=max_groups.value,
        max_c=max_groups.c_expr,
        count_field=count_field,
    )


# ---------------------------------------------------------------------------------------------- messages
@dataclass(frozen=True)
class Message:
    id: int
    name: str
    direction: Direction
    auth: bool
    """True: the device refuses this message unless it carries a valid auth trailer with a fresh counter."""
    fields: tuple[Field, ...]
    doc: str
    reply: str = ""
    """What the device answers (documentation only)."""

    @property
    def fixed_size(self) -> int:
        return sum(f.size for f in self.fields if not f.variable)

    @property
    def var_field(self) -> Field | None:
        return self.fields[-1] if self.fields and self.fields[-1].variable else None

    @property
    def max_size(self) -> int:
        v = self.var_field
        return self.fixed_size + (v.size * v.max_len if v is not None else 0)

    def offsets(self) -> dict[str, int]:
        """Byte offset of each field in the payload (the variable field starts after all fixed ones)."""
        out, off = {}, 0
        for f in self.fields:
            out[f.name] = off
            if not f.variable:
                off += f.size
        return out


def _xfer(kind: str, base: int, what: str) -> list[Message]:
    """BEGIN / CHUNK / COMMIT of a resumable, hash-checked upload (bundle and RF share the shape)."""
    up = kind.upper()
    return [
        Message(
            base,
            f"{up}_BEGIN",
            Direction.H2D,
            True,
            (
                u32("total_size", f"Bytes of the {what} image."),
                raw(
                    "sha256",
                    32,
                    "SHA-256 of the whole image; COMMIT succeeds only if the received bytes match.",
                ),
                u32("version", f"Version of the {what}, reported back in INFO once committed."),
            ),
            f"Starts -- or resumes -- an upload of the {what}. A BEGIN with the same size and hash as the "
            "transfer in progress resumes it; any other erases the region and starts at offset 0.",
            "XFER_STATUS with the next expected offset",
        ),
        Message(
            base + 1,
            f"{up}_CHUNK",
            Direction.H2D,
            False,
            (
                u32("offset", "Must equal the device's next expected offset, else the chunk is ignored."),
                var_bytes("data", CHUNK_MAX, f"Up to CHUNK_MAX bytes of the {what} image."),
            ),
            "One piece of the image. Not authenticated (a flash write per counter would wear the STATE "
            "region); integrity comes from the authenticated BEGIN's SHA-256, checked at COMMIT.",
            "XFER_STATUS",
        ),
        Message(
            base + 2,
            f"{up}_COMMIT",
            Direction.H2D,
            True,
            (raw("sha256", 32, "Must equal BEGIN's hash and the hash of the received bytes."),),
            f"Activates the received {what} once every byte arrived and the hash matches.",
            "XFER_STATUS (COMMITTED or FAILED)",
        ),
    ]


def _stats_fields() -> tuple[Field, ...]:
    counters = (
        ("frames_ok", "Frames that passed COBS, length and CRC checks."),
        ("crc_errors", "Frames whose CRC-32 did not match."),
        ("cobs_errors", "Frames that were not valid COBS."),
        ("length_errors", "Frames too short, too long, or whose length field disagrees with their size."),
        ("header_errors", "Frames with unknown flag bits."),
        ("msg_errors", "Frames refused by the message layer (unknown id, direction, payload length, field)."),
        ("auth_failures", "Authenticated frames whose tag did not verify, or missing a required tag."),
        ("replays_refused", "Correctly signed frames whose counter was not above the last accepted one."),
        ("windows_sent", "SANITIZED_WINDOW frames sent, retransmissions excluded."),
        ("windows_acked", "Sanitized windows released by a cumulative ACK."),
        ("windows_dropped", "Sanitized windows dropped from the retransmission buffer before an ACK."),
        ("windows_retransmitted", "SANITIZED_WINDOW frames sent again after RESEND."),
        ("raw_windows_sent", "RAW_WINDOW frames sent (calibration sessions only)."),
        ("uptime_ms", "Milliseconds since boot."),
    )
    fields = [u32(n, d) for n, d in counters]
    fields.append(
        u32("stage_windows", "Windows that went through the stages below (divide by it for means).")
    )
    fields.append(u32("candidates_scored", "Candidate evaluations (one S + P + D run each) in stage 'score'."))
    fields.append(u32("sanitizer_runs", "S runs of stage 'sanitize' (an output reused from scoring costs none)."))
    fields += [
        u64(f"work_{s}", f"Cumulative instructions (QEMU -icount) or cycles (boards) spent in stage '{s}'.")
        for s in STAGES
    ]
    for k in KERNELS:
        what = {"conv": "CONV_2D / DEPTHWISE_CONV_2D", "fc": "FULLY_CONNECTED"}[k]
        fields += [
            u64(f"kernel_{k}_macs", f"Cumulative multiply-accumulates of the {what} ops run."),
            u64(f"kernel_{k}_work", "Cumulative instructions (QEMU) or cycles (boards) spent in those ops."),
        ]
    fields += list(_realtime_fields())
    return tuple(fields)


def _realtime_fields() -> tuple[Field, ...]:
    """Sampling and real-time counters (docs/firmware.md, "Sampling and real time"): nothing is lost silently."""
    return (
        u32("samples_acquired", "IMU samples that reached the sample ring (streaming, calibration from the IMU)."),
        u32("samples_missed", "IMU samples lost: the sample ring was full or the IMU's FIFO overflowed. Windows "
            "spanning a loss are flagged SAMPLES_MISSED."),
        u32("windows_with_gaps", "Windows flagged SAMPLES_MISSED (sanitized or raw)."),
        u32("windows_late", "Windows that completed while the pipeline was a hop or more behind the IMU (flagged "
            "LATE)."),
        u32("rx_overflows", "Link bytes the port dropped because its receive buffer was full (0 where the port "
            "applies backpressure)."),
        u32("backlog_max", "Most samples seen waiting in the sample ring (the pipeline's worst lag, in samples)."),
        u64("work_idle", "Cumulative instructions / cycles / ns spent asleep in dysan_port_idle; duty = 1 - "
            "d(work_idle) / d(cycles)."),
        u64("cycles", "dysan_port_cycles() when this STATS was built (the clock of every work counter)."),
    )


MESSAGES: tuple[Message, ...] = (
    # -- session and diagnostics ---------------------------------------------------------------
    Message(
        0x01,
        "HELLO",
        Direction.H2D,
        False,
        (
            u16("proto_version", "The host's PROTOCOL_VERSION."),
            u32(
                "nonce",
                "A fresh random number from the host. INFO's tag covers it, so an INFO recorded earlier (or "
                "made up by a spoofed peripheral) cannot pass for the answer to this HELLO.",
            ),
        ),
        "Asks for INFO. May be sent authenticated: only then does INFO disclose the sensitive value.",
        "INFO",
    ),
    Message(
        0x02,
        "INFO",
        Direction.D2H,
        False,
        (
            u16("proto_version", "The device's PROTOCOL_VERSION."),
            u32("fw_version", "Firmware version, 0x00MMmmpp (major, minor, patch)."),
            raw("device_id", DEVICE_ID_SIZE, "Provisioned device id (part of every auth tag)."),
            choice("mode", Mode, "Current mode."),
            flag("calib_active", "1 while a calibration session is open (raw windows may leave the device)."),
            flag("stream_enabled", "CONFIGURE's stream_enable."),
            flag("bundle_valid", "1 when a committed bundle passed its hash and layout checks."),
            raw("bundle_hash", 8, "First 8 bytes of the committed bundle's SHA-256 (zeros when none)."),
            u32("bundle_version", "BUNDLE_BEGIN's version of the committed bundle (0 when none)."),
            u8("model_count", "Sanitizers in the bundle."),
            flag("rf_loaded", "1 when a calibration random forest is committed."),
            flag("sensitive_set", "1 once SET_SENSITIVE was accepted."),
            u8(
                "sensitive_value",
                "The sensitive value, only in reply to an authenticated HELLO; 0xFF otherwise "
                "(it is the attribute the device exists to hide: never broadcast it).",
            ),
            u32("auth_counter", "Last accepted auth counter: the next command must use a larger one."),
            u8("segment_len", "Schedule: windows per selection segment (p)."),
            u8("candidates", "Schedule: candidate models scored per window."),
            u16("weight_x", "Schedule: score weight x (activity), Q15: 32768 = 1.0.", hi=32768),
            u16("weight_y", "Schedule: score weight y (privacy), Q15: 32768 = 1.0.", hi=32768),
            u16(
                "boot_epoch",
                "Boots of this provisioned device (STATE keeps it; each boot raises it by one). Not secret: the "
                "jitter seed of this boot is HMAC(key, label || boot_epoch), so a host holding the key can "
                "reproduce the jittered windows, and no boot repeats another's transforms.",
            ),
            raw(
                "tag",
                16,
                "HMAC-SHA256(key, device_id || 0x02 || HELLO's nonce (u32 LE) || the INFO payload before this "
                "field)[:16]: the host believes auth_counter (and the rest) only when it verifies. Zeros from an "
                "unprovisioned device.",
            ),
        ),
        "The device's identity, state and schedule, authenticated by a tag over the HELLO's nonce.",
    ),
    Message(
        0x03,
        "PING",
        Direction.H2D,
        False,
        (u32("nonce", "Echoed in PONG."),),
        "Liveness and round-trip time of the link.",
        "PONG",
    ),
    Message(
        0x04,
        "PONG",
        Direction.D2H,
        False,
        (u32("nonce", "PING's nonce."), u32("millis", "Device milliseconds since boot.")),
        "Answer to PING.",
    ),
    Message(0x05, "STATS_REQ", Direction.H2D, False, (), "Asks for STATS.", "STATS"),
    Message(0x06, "STATS", Direction.D2H, False, _stats_fields(), "Link, auth, stream and work counters."),
    Message(
        0x07,
        "CMD_OK",
        Direction.D2H,
        False,
        (
            u8("ref_msg", "Id of the accepted command."),
            u16("ref_seq", "Frame sequence number of the accepted command."),
            u32("auth_counter", "Last accepted auth counter after this command."),
        ),
        "A command without a more specific reply was accepted and applied.",
    ),
    Message(
        0x08,
        "ERROR",
        Direction.D2H,
        False,
        (
            Field("code", Kind.INT, TYPES["u16"], "Why (ErrorCode)."),
            u8("ref_msg", "Id of the refused frame (0 when the frame could not be parsed)."),
            u16("ref_seq", "Frame sequence number of the refused frame."),
            var_text("text", TEXT_MAX, "Short human-readable detail."),
        ),
        "A frame was refused. Nothing it asked for was applied.",
    ),
    Message(
        0x09,
        "LOG",
        Direction.D2H,
        False,
        (choice("level", LogLevel, "Severity."), var_text("text", TEXT_MAX, "The message.")),
        "Free-form diagnostics from the firmware.",
    ),
    # -- configuration (all authenticated: they change what the device sends) -----------------------
    Message(
        0x10,
        "CONFIGURE",
        Direction.H2D,
        True,
        (
            u8("segment_len", "Windows per selection segment (the paper's p).", lo=1),
            u8("candidates", "Candidate models scored per window (bounded by the device budget).", lo=1),
            u16("weight_x", "Score weight x (activity accuracy), Q15: 32768 = 1.0.", hi=32768),
            u16("weight_y", "Score weight y (1 - |0.5 - sensitive accuracy|), Q15.", hi=32768),
            flag("stream_enable", "1: send SANITIZED_WINDOW frames while streaming."),
        ),
        "Sets the selection schedule; persisted in the STATE region.",
        "CMD_OK",
    ),
    Message(
        0x11,
        "SET_MODE",
        Direction.H2D,
        True,
        (choice("mode", Mode, "IDLE, STREAMING or REPLAY (CALIBRATION only through CALIB_START)."),),
        "Changes the mode. REPLAY makes SAMPLES the device's IMU (emulator, benchmarks).",
        "CMD_OK",
    ),
    Message(
        0x12,
        "SET_SENSITIVE",
        Direction.H2D,
        True,
        (
            u8(
                "value",
                "The user's value of the sensitive attribute, 0..K-1 (K: the bundle's sensitive classes).",
                hi=15,
            ),
        ),
        "States the user's sensitive value once (DySan(o)), for attributes with more than two values (e.g. "
        "three age groups). A two-valued attribute is never stated: the score 1 - |0.5 - s| is the same for "
        "v and 1 - v, so the device does without it.",
        "CMD_OK",
    ),
    Message(
        0x13,
        "CALIB_START",
        Direction.H2D,
        True,
        (u16("max_windows", "The session closes by itself after this many RAW_WINDOW frames.", lo=1),),
        "Opens a calibration session: raw windows leave the device only inside one.",
        "CMD_OK, then RAW_WINDOW frames",
    ),
    Message(0x14, "CALIB_STOP", Direction.H2D, True, (), "Closes the calibration session.", "CMD_OK"),
    # -- data --------------------------------------------------------------------------------------
    Message(
        0x20,
        "SAMPLES",
        Direction.H2D,
        False,
        (
            u8("count", "Number of samples that follow (Python: implied by `samples`).", hi=SAMPLES_MAX),
            var_array(
                "samples",
                "i16",
                SAMPLE_VALUES,
                Dim(SAMPLES_MAX, SAMPLES_MAX_C),
                "count",
                "count x N_CHANNELS int16 counts, sample-major, contract channel order.",
            ),
        ),
        "Replay mode only (and a calibration session opened in it): samples that stand in for the IMU (QEMU "
        "has none). Ignored in other modes.",
    ),
    Message(
        0x21,
        "RAW_WINDOW",
        Direction.D2H,
        False,
        (
            u32("seq", "Window sequence number."),
            array("samples", "i16", WINDOW_VALUES, "WINDOW x N_CHANNELS int16 counts, sample-major."),
        ),
        "One raw window, only while a calibration session is open.",
    ),
    Message(
        0x22,
        "SANITIZED_WINDOW",
        Direction.D2H,
        False,
        (
            u32("seq", "Window sequence number (kept for retransmission until ACKed)."),
            u8("model_id", "Index of the sanitizer in the bundle."),
            u8("rf_label", "Activity label of the calibration RF (valid when RF_LABEL_VALID)."),
            u8("flags", "WindowFlag bits."),
            array("data", "i8", WINDOW_VALUES, "WINDOW x N_CHANNELS int8 sanitized values, sample-major."),
        ),
        "One sanitized window (the model's int8 output).",
    ),
    Message(
        0x23,
        "ACK",
        Direction.H2D,
        False,
        (u32("seq", "Every sanitized window with a sequence number <= seq was received."),),
        "Cumulative acknowledgement: frees the device's retransmission buffer.",
    ),
    Message(
        0x24,
        "RESEND",
        Direction.H2D,
        False,
        (u32("from_seq", "First sequence number to send again."),),
        "Asks for every still-buffered sanitized window from from_seq on.",
        "SANITIZED_WINDOW frames flagged RETRANSMIT",
    ),
    # -- uploads -------------------------------------------------------------------------------------
    *_xfer("bundle", 0x30, "model bundle"),
    *_xfer("rf", 0x33, "calibration random forest"),
    Message(
        0x36,
        "XFER_STATUS",
        Direction.D2H,
        False,
        (
            choice("target", XferTarget, "Which upload."),
            choice("state", XferState, "Where it stands."),
            u32("next_offset", "The next byte offset the device expects (resume point)."),
            u32("total_size", "BEGIN's total size (0 when idle)."),
        ),
        "State of an upload, in reply to every BEGIN, CHUNK and COMMIT.",
    ),
)

BY_ID: dict[int, Message] = {m.id: m for m in MESSAGES}
BY_NAME: dict[str, Message] = {m.name: m for m in MESSAGES}

MAX_PAYLOAD: int = max(m.max_size for m in MESSAGES)
MAX_FRAME: int = HEADER_SIZE + MAX_PAYLOAD + AUTH_TRAILER_SIZE + CRC_SIZE
"""Largest decoded frame (before COBS)."""


def cobs_max(n: int) -> int:
    """Largest COBS encoding of ``n`` bytes (one code byte per started 254-byte run, at least one)."""
    return max(1, n + (n + 253) // 254)


MAX_ENCODED: int = cobs_max(MAX_FRAME)
"""Largest COBS-encoded frame, delimiter excluded: receivers drop anything longer as overlong."""


def validate_table() -> None:
    """Checks the invariants both codecs rely on; runs at import so a bad edit fails immediately."""
    ids = [m.id for m in MESSAGES]
    if len(set(ids)) != len(ids) or len(BY_NAME) != len(MESSAGES):
        raise ValueError("duplicate message id or name")
    for m in MESSAGES:
        if not 1 <= m.id <= 0xFF:
            raise ValueError(f"{m.name}: id must be 1..255 (0 is never used)")
        names = [f.name for f in m.fields]
        if len(set(names)) != len(names):
            raise ValueError(f"{m.name}: duplicate field name")
        for i, f in enumerate(m.fields):
            if f.variable and i != len(m.fields) - 1:
                raise ValueError(f"{m.name}.{f.name}: the variable field must be the last")
            if f.kind is Kind.VAR_ARRAY:
                cf = next((g for g in m.fields if g.name == f.count_field), None)
                if cf is None or cf.kind is not Kind.INT or cf.hi is None or cf.hi > f.max_len:
                    raise ValueError(f"{m.name}.{f.name}: count field must be an int bounded by max_len")
    if MAX_PAYLOAD > 0xFFFF:
        raise ValueError("payload length must fit the u16 length field")


validate_table()
