"""Golden vectors and the generated parts of docs/protocol.md.

The vectors (``tests/data/protocol_golden.json``) are real frames produced by this package: one or more
per message, authenticated ones signed with a fixed *test* key, plus frames that every receiver must
refuse, each with the reason. The Python tests and the C program ``firmware/tests/proto_golden_test.c``
decode every one and re-encode it byte for byte, so the two implementations are tied to the same bytes.

The JSON is written one vector per line so the C test can read it with a line scanner instead of a JSON
parser. ``tools/gen_protocol_golden.py`` writes both files; the tests fail when either is stale.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import contract
from ..protocol import schema
from ..protocol.auth import Signer, auth_message
from ..protocol.framing import Frame, crc32
from ..protocol.messages import Msg, class_name, encode, make
from ..protocol.schema import (
    CHUNK_MAX,
    FLAG_AUTH,
    SAMPLES_MAX,
    ErrorCode,
    Kind,
    LogLevel,
    Mode,
    WindowFlag,
    XferState,
    XferTarget,
)

TEST_KEY = bytes(range(0x40, 0x60))
"""The fixed key of the golden vectors and docs -- a test key, never provisioned into a real device."""
TEST_DEVICE_ID = bytes.fromhex("d15a0000c0ffee01")

REPO = Path(__file__).resolve().parents[3]
GOLDEN_PATH = REPO / "tests" / "data" / "protocol_golden.json"
DOC_PATH = REPO / "docs" / "protocol.md"


def det_bytes(label: str, n: int) -> bytes:
    """Deterministic pseudo-random bytes (SHA-256 in counter mode), stable across Python versions."""
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(f"{label}/{i}".encode()).digest()
        i += 1
    return bytes(out[:n])


def det_ints(label: str, n: int, lo: int, hi: int) -> tuple[int, ...]:
    raw = det_bytes(label, 4 * n)
    span = hi - lo + 1
    return tuple(lo + struct.unpack_from("<I", raw, 4 * i)[0] % span for i in range(n))


@dataclass(frozen=True)
class Vector:
    label: str
    msg: Msg
    seq: int
    counter: int | None = None
    """Sign with this counter (None: unauthenticated)."""

    def frame(self) -> Frame:
        payload = encode(self.msg)
        if self.counter is None:
            return Frame(self.msg.ID, payload, self.seq)
        signer = Signer(TEST_KEY, TEST_DEVICE_ID, self.counter - 1)
        return signer.sign(self.msg.ID, payload, self.seq)


def _window_i16() -> tuple[int, ...]:
    n = contract.WINDOW * contract.N_CHANNELS
    vals = list(det_ints("raw", n, -32768, 32767))
    vals[:12] = [0, 0, 0, -1, 1, -32768, 32767, 0, 255, 256, -256, 0]  # zeros and 0xff bytes: COBS edge cases
    return tuple(vals)


def _run_254_data() -> bytes:
    """BUNDLE_CHUNK data whose frame ends with exactly one full 254-byte COBS block.

    The length field's high byte is the frame's last zero; with a 250-byte payload of nonzero bytes and a
    CRC without zero bytes, exactly 254 nonzero bytes follow it: the encoder must then not add a code
    byte after the block (the ``cobs`` package's convention, which the C encoder follows).
    """
    chunk_id = schema.BY_NAME["BUNDLE_CHUNK"].id
    for fill in range(1, 256):
        data = bytes([fill]) * 246
        payload = b"\x01\x01\x01\x01" + data
        crc = crc32(struct.pack("<BBHH", chunk_id, 0, 0x0101, len(payload)) + payload)
        if all(struct.pack("<I", crc)):
            return data
    raise AssertionError("no fill byte gives a CRC without zeros")


def valid_vectors() -> list[Vector]:
    """One or more vectors per message; edge cases where the layout has them."""
    w8 = det_ints("sanitized", contract.WINDOW * contract.N_CHANNELS, -128, 127)
    sha = hashlib.sha256(b"example bundle").digest()
    rf_sha = hashlib.sha256(b"example rf").digest()
    v = [
        Vector("hello", make("HELLO", proto_version=schema.PROTOCOL_VERSION, nonce=0x1234ABCD), 1),
        Vector("hello_signed", make("HELLO", proto_version=schema.PROTOCOL_VERSION, nonce=7), 2, counter=7),
        Vector(
            "info",
            make(
                "INFO",
                proto_version=schema.PROTOCOL_VERSION,
                fw_version=0x000102,
                device_id=TEST_DEVICE_ID,
                mode=Mode.STREAMING,
                calib_active=0,
                stream_enabled=1,
                bundle_valid=1,
                bundle_hash=sha[:8],
                bundle_version=3,
                model_count=8,
                rf_loaded=1,
                sensitive_set=1,
                sensitive_value=0xFF,
                auth_counter=41,
                segment_len=5,
                candidates=4,
                weight_x=6554,
                weight_y=26214,
                boot_epoch=12,
                tag=bytes(range(0xA0, 0xB0)),
            ),
            0xFFFF,
        ),
        Vector("ping", make("PING", nonce=0xDEADBEEF), 3),
        Vector("pong", make("PONG", nonce=0xDEADBEEF, millis=123456), 3),
        Vector("stats_req", make("STATS_REQ"), 4),
        Vector(
            "stats",
            make(
                "STATS",
                **{
                    f.name: i * 1000 + 1
                    for i, f in enumerate(schema.BY_NAME["STATS"].fields)
                    if f.type.size == 4
                },
                **{
                    f.name: (1 << 40) + i
                    for i, f in enumerate(schema.BY_NAME["STATS"].fields)
                    if f.type.size == 8
                },
            ),
            4,
        ),
        Vector("cmd_ok", make("CMD_OK", ref_msg=0x10, ref_seq=9, auth_counter=42), 9),
        Vector(
            "error",
            make("ERROR", code=ErrorCode.REPLAY, ref_msg=0x11, ref_seq=10, text="counter 3 <= 42"),
            10,
        ),
        Vector(
            "error_utf8", make("ERROR", code=ErrorCode.BAD_FIELD, ref_msg=0, ref_seq=0, text="µ-défaut"), 0
        ),
        Vector("log", make("LOG", level=LogLevel.INFO, text="bundle committed: 8 models"), 11),
        Vector("log_empty", make("LOG", level=LogLevel.DEBUG, text=""), 12),
        Vector(
            "configure",
            make("CONFIGURE", segment_len=5, candidates=4, weight_x=6554, weight_y=26214, stream_enable=1),
            13,
            counter=42,
        ),
        Vector("set_mode", make("SET_MODE", mode=Mode.REPLAY), 14, counter=43),
        Vector("set_sensitive", make("SET_SENSITIVE", value=1), 15, counter=44),
        Vector("calib_start", make("CALIB_START", max_windows=240), 16, counter=45),
        Vector("calib_stop", make("CALIB_STOP"), 17, counter=46),
        Vector("samples", make("SAMPLES", samples=(2048, 0, -2048, 512, -1, 0) * 2), 18),
        Vector("samples_empty", make("SAMPLES", samples=()), 19),
        Vector(
            "samples_max",
            make("SAMPLES", samples=det_ints("samples", SAMPLES_MAX * contract.N_CHANNELS, -32768, 32767)),
            20,
        ),
        Vector("raw_window", make("RAW_WINDOW", seq=7, samples=_window_i16()), 21),
        Vector(
            "sanitized_window",
            make(
                "SANITIZED_WINDOW",
                seq=1000,
                model_id=3,
                rf_label=2,
                flags=int(WindowFlag.RF_LABEL_VALID | WindowFlag.RETRANSMIT),
                data=w8,
            ),
            22,
        ),
        Vector("ack", make("ACK", seq=999), 23),
        Vector("resend", make("RESEND", from_seq=995), 24),
        Vector(
            "bundle_begin", make("BUNDLE_BEGIN", total_size=50_000, sha256=sha, version=3), 25, counter=47
        ),
        Vector("bundle_chunk", make("BUNDLE_CHUNK", offset=4096, data=det_bytes("chunk", CHUNK_MAX)), 26),
        Vector("bundle_chunk_zeros", make("BUNDLE_CHUNK", offset=0, data=bytes(300)), 27),
        Vector("bundle_chunk_254", make("BUNDLE_CHUNK", offset=0x01010101, data=_run_254_data()), 0x0101),
        Vector("bundle_commit", make("BUNDLE_COMMIT", sha256=sha), 29, counter=48),
        Vector("rf_begin", make("RF_BEGIN", total_size=3000, sha256=rf_sha, version=1), 30, counter=49),
        Vector("rf_chunk", make("RF_CHUNK", offset=0, data=det_bytes("rf", 700)), 31),
        Vector("rf_commit", make("RF_COMMIT", sha256=rf_sha), 32, counter=0xFFFFFFFF),
        Vector(
            "xfer_status",
            make(
                "XFER_STATUS",
                target=XferTarget.BUNDLE,
                state=XferState.RECEIVING,
                next_offset=5120,
                total_size=50_000,
            ),
            33,
        ),
    ]
    return v


def _raw_frame(msg_id: int, payload: bytes, seq: int = 0, flags: int = 0, trailer: bytes = b"") -> bytes:
    """A decoded frame with a correct CRC but otherwise whatever the caller wants (for refusals)."""
    body = struct.pack("<BBHH", msg_id, flags, seq, len(payload)) + payload + trailer
    return body + struct.pack("<I", crc32(body))


def _cobs(raw: bytes) -> bytes:
    from cobs import cobs

    return cobs.encode(raw) + b"\x00"


def reject_vectors() -> list[dict[str, Any]]:
    """Byte streams every receiver must refuse, with the reason (frame counter or ERROR code).

    ``at`` is the receiving side: ``device`` (a host->device message) or ``host``.
    """
    ok = Vector("x", make("ACK", seq=1), 5).frame()
    good = ok.encode()
    signer = Signer(TEST_KEY, TEST_DEVICE_ID, 99)
    signed = signer.sign(schema.BY_NAME["SET_MODE"].id, encode(make("SET_MODE", mode=Mode.IDLE)), 6)
    bad_tag = Frame(signed.msg_id, signed.payload, signed.seq, signed.flags, signed.counter, bytes(16))
    wrong_key = Signer(bytes(32), TEST_DEVICE_ID, 99).sign(signed.msg_id, signed.payload, 6)
    other_dev = Signer(TEST_KEY, bytes(8), 99).sign(signed.msg_id, signed.payload, 6)
    corrupt = bytearray(good)
    corrupt[3] ^= 0x10
    ids = {m.name: m.id for m in schema.MESSAGES}
    flags_bad = _raw_frame(ids["ACK"], struct.pack("<I", 1), flags=0x80)
    len_bad = bytearray(_raw_frame(ids["ACK"], struct.pack("<I", 1)))
    len_bad[4] = 5
    len_bad[-4:] = struct.pack("<I", crc32(bytes(len_bad[:-4])))
    out: list[dict[str, Any]] = [
        {"label": "crc", "stream": bytes(corrupt), "expect": "crc"},
        {"label": "cobs_truncated_block", "stream": b"\x05\x01\x02\x00", "expect": "cobs"},
        {"label": "runt", "stream": _cobs(b"\x23\x00\x00"), "expect": "length"},
        {"label": "overlong", "stream": b"\x11" * (schema.MAX_ENCODED + 1) + b"\x00", "expect": "length"},
        {"label": "len_field", "stream": _cobs(bytes(len_bad)), "expect": "length"},
        {"label": "unknown_flags", "stream": _cobs(flags_bad), "expect": "header"},
        {"label": "unknown_msg", "stream": _cobs(_raw_frame(0x7F, b"")), "expect": ErrorCode.UNKNOWN_MSG},
        {
            "label": "wrong_direction",
            "stream": _cobs(_raw_frame(ids["STATS"], bytes(schema.BY_NAME["STATS"].fixed_size))),
            "expect": ErrorCode.WRONG_DIRECTION,
        },
        {
            "label": "bad_length",
            "stream": _cobs(_raw_frame(ids["ACK"], b"\x01\x02")),
            "expect": ErrorCode.BAD_LENGTH,
        },
        {
            "label": "bad_field_mode",
            "stream": Signer(TEST_KEY, TEST_DEVICE_ID, 0).sign(ids["SET_MODE"], b"\x09").encode(),
            "expect": ErrorCode.BAD_FIELD,
        },
        {
            "label": "samples_count",
            "stream": _cobs(_raw_frame(ids["SAMPLES"], b"\x02" + bytes(2 * contract.N_CHANNELS))),
            "expect": ErrorCode.BAD_LENGTH,
        },
        {
            "label": "unsigned_command",
            "stream": _cobs(_raw_frame(ids["SET_MODE"], b"\x00")),
            "expect": ErrorCode.AUTH_REQUIRED,
        },
        {"label": "bad_tag", "stream": bad_tag.encode(), "expect": ErrorCode.AUTH_FAILED},
        {"label": "wrong_key", "stream": wrong_key.encode(), "expect": ErrorCode.AUTH_FAILED},
        {"label": "other_device", "stream": other_dev.encode(), "expect": ErrorCode.AUTH_FAILED},
        {
            "label": "replay",
            "stream": signed.encode(),
            "expect": ErrorCode.REPLAY,
            "last_counter": signed.counter,
        },
        {
            "label": "replay_older",
            "stream": signed.encode(),
            "expect": ErrorCode.REPLAY,
            "last_counter": 1000,
        },
    ]
    for r in out:
        r.setdefault("at", "device")
        r.setdefault("last_counter", 0)
    return out


def vector_json(v: Vector) -> dict[str, Any]:
    f = v.frame()
    return {
        "label": v.label,
        "name": v.msg.NAME,
        "id": v.msg.ID,
        "seq": v.seq,
        "counter": f.counter,
        "fields": v.msg.to_dict(),
        "payload": f.payload.hex(),
        "frame": f.encode().hex(),
    }


def render_golden() -> str:
    """The golden JSON, one vector per line (see the module docstring)."""
    head = {
        "comment": "GENERATED by tools/gen_protocol_golden.py -- do not edit. Test key only.",
        "protocol_version": schema.PROTOCOL_VERSION,
        "key": TEST_KEY.hex(),
        "device_id": TEST_DEVICE_ID.hex(),
    }
    lines = ["{"]
    lines += [f"  {json.dumps(k)}: {json.dumps(val)}," for k, val in head.items()]
    lines.append('  "vectors": [')
    vecs = [json.dumps(vector_json(v), ensure_ascii=True) for v in valid_vectors()]
    lines += [f"    {s}," for s in vecs[:-1]] + [f"    {vecs[-1]}"]
    lines += ["  ],", '  "rejects": [']
    rej = []
    for r in reject_vectors():
        exp = r["expect"]
        rej.append(
            json.dumps(
                {
                    "label": r["label"],
                    "at": r["at"],
                    "last_counter": r["last_counter"],
                    "expect": exp.name if isinstance(exp, ErrorCode) else exp,
                    "code": int(exp) if isinstance(exp, ErrorCode) else 0,
                    "stream": r["stream"].hex(),
                }
            )
        )
    lines += [f"    {s}," for s in rej[:-1]] + [f"    {rej[-1]}"]
    lines += ["  ]", "}", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- docs
def _hex(b: bytes) -> str:
    return " ".join(f"{x:02x}" for x in b)


def _wrap_hex(b: bytes, first: str, width: int = 24) -> list[str]:
    """Hex lines: the first after ``first``, the others aligned under it."""
    pad = " " * len(first)
    return [(first if i == 0 else pad) + _hex(b[i : i + width]) for i in range(0, len(b), width)]


def _field_type(f: schema.Field) -> str:
    if f.kind is Kind.INT:
        return f.type.name
    if f.kind in (Kind.ARRAY, Kind.BYTES):
        assert f.dim is not None
        return f"{f.type.name}[{f.dim.value}]"
    if f.kind is Kind.VAR_ARRAY:
        assert f.dim is not None
        return f"{f.type.name}[{f.dim.value}] x {f.count_field} (<= {f.max_len})"
    return f"{'utf8' if f.kind is Kind.VAR_TEXT else 'u8'}[0..{f.max_len}]"


def _constraint(f: schema.Field) -> str:
    if f.enum is not None:
        return f"{f.enum.__name__}: " + ", ".join(f"{m.value}={m.name}" for m in f.enum)
    if f.lo == 0 and f.hi == 1:
        return "0 or 1"
    parts = []
    if f.lo is not None:
        parts.append(f">= {f.lo}")
    if f.hi is not None:
        parts.append(f"<= {f.hi}")
    return " ".join(parts)


def render_message_table() -> str:
    rows = [
        "| id | name | direction | auth | payload bytes | reply |",
        "|---:|---|---|:-:|---:|---|",
    ]
    for m in schema.MESSAGES:
        size = str(m.fixed_size) if m.var_field is None else f"{m.fixed_size}..{m.max_size}"
        auth = "yes" if m.auth else ""
        rows.append(f"| 0x{m.id:02x} | `{m.name}` | {m.direction.value} | {auth} | {size} | {m.reply} |")
    out = ["\n".join(rows), ""]
    for m in schema.MESSAGES:
        out.append(f"### 0x{m.id:02x} {m.name}")
        out.append("")
        auth = "authenticated" if m.auth else "not authenticated"
        out.append(f"{m.direction.value}, {auth}. {m.doc}" + (f" Reply: {m.reply}." if m.reply else ""))
        out.append("")
        if not m.fields:
            out += ["Empty payload.", ""]
            continue
        out.append("| offset | field | type | constraint | meaning |")
        out.append("|---:|---|---|---|---|")
        offs = m.offsets()
        for f in m.fields:
            out.append(f"| {offs[f.name]} | `{f.name}` | {_field_type(f)} | {_constraint(f)} | {f.doc} |")
        out.append("")
    return "\n".join(out).rstrip("\n")


DOC_EXAMPLES = ("hello", "ack", "error", "samples", "set_mode", "calib_stop")


def render_examples() -> str:
    by_label = {v.label: v for v in valid_vectors()}
    out = []
    for label in DOC_EXAMPLES:
        v = by_label[label]
        f = v.frame()
        fields = ", ".join(f"{k}={val!r}" for k, val in v.msg.to_dict().items()) or "no fields"
        raw = f.pack()
        lines = [f"{v.msg.NAME} ({class_name(v.msg.NAME)}), seq={v.seq}: {fields}"]
        what = f"id=0x{f.msg_id:02x} flags=0x{f.flags:02x} seq={f.seq} len={len(f.payload)}"
        lines.append(f"  header  {_hex(raw[:6])}   {what}")
        lines += _wrap_hex(f.payload, "  payload ") if f.payload else ["  payload (empty)"]
        if f.flags & FLAG_AUTH:
            assert f.counter is not None and f.tag is not None
            lines.append(f"  counter {_hex(struct.pack('<I', f.counter))}   ({f.counter})")
            lines.append(f"  tag     {_hex(f.tag)}")
            mac_in = auth_message(TEST_DEVICE_ID, f.msg_id, f.counter, f.payload)
            lines.append(f"          = HMAC-SHA256(test key, {_hex(mac_in)})[:16]")
        lines.append(f"  crc32   {_hex(raw[-4:])}")
        enc = f.encode()
        lines += _wrap_hex(enc, "  wire    ")
        out.append("\n".join(lines))
    return "```text\n" + "\n\n".join(out) + "\n```"


def render_limits() -> str:
    rows = [
        ("PROTOCOL_VERSION", schema.PROTOCOL_VERSION, "reported by HELLO and INFO"),
        ("HEADER_SIZE", schema.HEADER_SIZE, "msg_id, flags, seq, len"),
        ("AUTH_TRAILER_SIZE", schema.AUTH_TRAILER_SIZE, "counter u32 + 16-byte tag, when flags & 0x01"),
        ("CRC_SIZE", schema.CRC_SIZE, "CRC-32/ISO-HDLC, little-endian"),
        ("MAX_PAYLOAD", schema.MAX_PAYLOAD, "largest payload in the table (RAW_WINDOW)"),
        ("MAX_FRAME", schema.MAX_FRAME, "largest decoded frame: header + payload + trailer + CRC"),
        ("MAX_ENCODED", schema.MAX_ENCODED, "largest COBS packet; longer runs are dropped as overlong"),
        ("CHUNK_MAX", schema.CHUNK_MAX, "largest BUNDLE_CHUNK / RF_CHUNK data"),
        ("TEXT_MAX", schema.TEXT_MAX, "largest ERROR / LOG text (UTF-8 bytes)"),
        ("SAMPLES_MAX", schema.SAMPLES_MAX, "samples per SAMPLES frame (contract.HOP)"),
        ("window values", contract.WINDOW * contract.N_CHANNELS, "contract.WINDOW x contract.N_CHANNELS"),
    ]
    out = ["| constant | value | meaning |", "|---|---:|---|"]
    out += [f"| `{n}` | {v} | {d} |" for n, v, d in rows]
    return "\n".join(out)


SECTIONS = {"limits": render_limits, "messages": render_message_table, "examples": render_examples}
_MARK = re.compile(r"(<!-- BEGIN GENERATED: (\w+) -->\n)(.*?)(<!-- END GENERATED: \2 -->)", re.S)


def render_doc(text: str) -> str:
    """``text`` with every generated section replaced by what the code renders now."""
    return _MARK.sub(lambda m: m.group(1) + SECTIONS[m.group(2)]() + "\n" + m.group(4), text)
