"""The Python side of the wire protocol: table, payload codec, framing, resync, golden vectors, docs.

The C side and the comparisons between the two are in test_protocol_c.py; authentication in test_auth.py.
"""

from __future__ import annotations

import json
import random
import struct
import zlib

import crc
import pytest
from cobs import cobs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dysan import codegen, contract
from dysan.protocol import (
    BY_NAME,
    MESSAGES,
    FieldError,
    Frame,
    FrameDecoder,
    FrameError,
    LengthError,
    ProtocolError,
    UnknownMessage,
    decode,
    encode,
    from_dict,
    make,
    messages,
    schema,
)
from dysan.protocol.framing import COUNTERS, crc32, decode_packet, parse
from dysan.protocol.messages import Msg, _py_fields
from dysan.protocol.receive import accept
from dysan.protocol.schema import Kind
from dysan.testing import golden as G

GOLDEN = json.loads(G.GOLDEN_PATH.read_text())


# ---------------------------------------------------------------------------------------------- strategies
def field_values(f: schema.Field) -> st.SearchStrategy:
    """Valid values of one field, as the Python message classes take them."""
    t = f.type
    if f.kind is Kind.INT:
        if f.allowed is not None:
            return st.sampled_from(f.allowed)
        lo = f.lo if f.lo is not None else t.lo
        hi = f.hi if f.hi is not None else t.hi
        return st.integers(lo, hi)
    if f.kind is Kind.ARRAY:
        return st.lists(st.integers(t.lo, t.hi), min_size=f.count, max_size=f.count).map(tuple)
    if f.kind is Kind.BYTES:
        return st.binary(min_size=f.count, max_size=f.count)
    if f.kind is Kind.VAR_BYTES:
        return st.binary(max_size=f.max_len)
    if f.kind is Kind.VAR_TEXT:
        return st.text(max_size=f.max_len // 4)
    assert f.dim is not None
    return st.integers(0, f.max_len).flatmap(
        lambda n: st.lists(st.integers(t.lo, t.hi), min_size=n * f.dim.value, max_size=n * f.dim.value).map(
            tuple
        )
    )


def message_strategy(m: schema.Message) -> st.SearchStrategy[Msg]:
    return st.fixed_dictionaries({f.name: field_values(f) for f in _py_fields(m)}).map(
        lambda kw: make(m.name, **kw)
    )


ANY_MESSAGE = st.one_of([message_strategy(m) for m in MESSAGES])


# ---------------------------------------------------------------------------------------------- table
def test_table_invariants_and_contract_sizes():
    ids = [m.id for m in MESSAGES]
    assert len(ids) == len(set(ids)) and 0 not in ids
    window = contract.WINDOW * contract.N_CHANNELS
    assert BY_NAME["RAW_WINDOW"].fixed_size == 4 + 2 * window
    assert BY_NAME["SANITIZED_WINDOW"].fixed_size == 7 + window
    assert BY_NAME["SAMPLES"].max_size == 1 + 2 * contract.N_CHANNELS * contract.HOP
    assert schema.MAX_PAYLOAD == max(m.max_size for m in MESSAGES) == BY_NAME["RAW_WINDOW"].fixed_size
    assert schema.MAX_FRAME == schema.HEADER_SIZE + schema.MAX_PAYLOAD + schema.AUTH_TRAILER_SIZE + 4
    # Every command that changes what the device sends is authenticated (threat model).
    for name in ("CONFIGURE", "SET_MODE", "SET_SENSITIVE", "CALIB_START", "CALIB_STOP"):
        assert BY_NAME[name].auth
    for kind in ("BUNDLE", "RF"):
        assert BY_NAME[f"{kind}_BEGIN"].auth and BY_NAME[f"{kind}_COMMIT"].auth
    assert all(m.direction is schema.Direction.D2H for m in MESSAGES if m.name in ("RAW_WINDOW", "INFO"))


def test_offsets_are_packed_in_order():
    for m in MESSAGES:
        offs = m.offsets()
        pos = 0
        for f in m.fields:
            assert offs[f.name] == pos, (m.name, f.name)
            if not f.variable:
                pos += f.size
        assert pos == m.fixed_size


@pytest.mark.parametrize("rel", ["firmware/core/proto/dysan_msg.h", "firmware/core/proto/dysan_msg.c"])
def test_generated_c_is_current(rel):
    assert rel in codegen.GENERATED
    text = codegen.render(rel)
    assert text.startswith("/* GENERATED") and "do not edit" in text.splitlines()[0]
    assert (codegen.REPO / rel).read_text() == text, f"{rel} is stale: run `dysan codegen`"


def test_generated_c_uses_contract_macros_not_numbers():
    h = codegen.render("firmware/core/proto/dysan_msg.h")
    window = str(contract.WINDOW * contract.N_CHANNELS)
    assert "DYSAN_WINDOW * DYSAN_N_CHANNELS" in h and "DYSAN_HOP" in h
    assert window not in h and f"[{contract.WINDOW}]" not in h


# ---------------------------------------------------------------------------------------------- codec
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ANY_MESSAGE)
def test_message_round_trip(msg):
    payload = encode(msg)
    spec = msg.SPEC
    assert spec.fixed_size <= len(payload) <= spec.max_size
    back = decode(msg.ID, payload)
    assert back == msg
    assert encode(back) == payload
    assert from_dict(msg.NAME, json.loads(json.dumps(msg.to_dict()))) == msg


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(MESSAGES), st.binary(max_size=64), st.integers(0, 1600))
def test_decode_any_bytes_is_total(spec, head, extra):
    """Any payload either decodes -- and then re-encodes to the same bytes -- or raises a ProtocolError."""
    payload = head + bytes(random.Random(extra).getrandbits(8) for _ in range(extra % 1600))
    for p in (payload, payload[: spec.fixed_size], payload[: spec.max_size]):
        try:
            msg = decode(spec.id, p)
        except (LengthError, FieldError) as e:
            assert e.code is not None
            continue
        assert encode(msg) == p


def test_decode_errors_are_specific():
    with pytest.raises(UnknownMessage):
        decode(0x7F, b"")
    for m in MESSAGES:
        with pytest.raises(LengthError):
            decode(m.id, bytes(m.max_size + (1 if m.var_field is None else m.var_field.size)))
        if m.fixed_size:
            with pytest.raises(LengthError):
                decode(m.id, bytes(m.fixed_size - 1))
    with pytest.raises(FieldError, match="mode"):
        decode(BY_NAME["SET_MODE"].id, b"\x04")
    with pytest.raises(FieldError, match="stream_enable"):
        decode(BY_NAME["CONFIGURE"].id, bytes([5, 4, 0, 0, 0, 0, 2]))
    with pytest.raises(FieldError, match="weight_x"):
        decode(BY_NAME["CONFIGURE"].id, bytes([5, 4, 1, 0x80, 0, 0, 1]))
    with pytest.raises(FieldError, match="segment_len"):
        decode(BY_NAME["CONFIGURE"].id, bytes([0, 4, 0, 0, 0, 0, 1]))
    sample = 2 * contract.N_CHANNELS
    with pytest.raises(LengthError, match="count"):
        decode(BY_NAME["SAMPLES"].id, b"\x02" + bytes(sample))
    with pytest.raises(LengthError):
        decode(BY_NAME["SAMPLES"].id, b"\x01" + bytes(sample + 1))
    with pytest.raises(FieldError, match="count"):
        decode(BY_NAME["SAMPLES"].id, bytes([contract.HOP + 1]))


def test_encode_refuses_what_a_receiver_refuses():
    window = contract.WINDOW * contract.N_CHANNELS
    bad = [
        ("SET_MODE", {"mode": 7}),
        ("SET_SENSITIVE", {"value": 16}),
        ("ACK", {"seq": -1}),
        ("ACK", {"seq": 1 << 32}),
        ("ACK", {"seq": "3"}),
        (
            "CONFIGURE",
            {"segment_len": 5, "candidates": 4, "weight_x": 40000, "weight_y": 0, "stream_enable": 1},
        ),
        ("RAW_WINDOW", {"seq": 0, "samples": (0,) * (window - 1)}),
        ("RAW_WINDOW", {"seq": 0, "samples": (40000,) * window}),
        ("SANITIZED_WINDOW", {"seq": 0, "model_id": 0, "rf_label": 0, "flags": 0, "data": (128,) * window}),
        ("SAMPLES", {"samples": (0,) * (contract.N_CHANNELS + 1)}),
        ("SAMPLES", {"samples": (0,) * (contract.N_CHANNELS * (contract.HOP + 1))}),
        ("BUNDLE_CHUNK", {"offset": 0, "data": bytes(schema.CHUNK_MAX + 1)}),
        ("BUNDLE_COMMIT", {"sha256": bytes(31)}),
        ("ERROR", {"code": 1, "ref_msg": 0, "ref_seq": 0, "text": "é" * schema.TEXT_MAX}),
        ("LOG", {"level": 1, "text": b"bytes"}),
    ]
    for name, fields in bad:
        with pytest.raises(FieldError):
            encode(make(name, **fields))
    with pytest.raises(FieldError):
        make("ACK")  # missing field
    with pytest.raises(UnknownMessage):
        make("NOPE")


def test_classes_are_exported_and_typed():
    assert messages.SanitizedWindow is messages.CLASSES["SANITIZED_WINDOW"]
    m = messages.SetMode(mode=schema.Mode.REPLAY)
    assert m.ID == 0x11 and m.NAME == "SET_MODE" and "SET_MODE" in type(m).__doc__
    back = decode(m.ID, m.encode())
    assert back.mode is schema.Mode.REPLAY
    with pytest.raises(AttributeError):
        m.mode = 1  # frozen


def test_invalid_utf8_text_round_trips():
    payload = struct.pack("<HBH", 1, 0, 0) + b"\xff\xfe ok \xc3"
    msg = decode(BY_NAME["ERROR"].id, payload)
    assert encode(msg) == payload


# ---------------------------------------------------------------------------------------------- framing
def test_crc_is_the_crc_packages_crc32():
    calc = crc.Calculator(crc.Crc32.CRC32)
    for data in (b"", b"123456789", bytes(range(256)) * 3):
        assert crc32(data) == calc.checksum(data) == zlib.crc32(data)
    assert crc32(b"123456789") == 0xCBF43926  # the catalogue check value of CRC-32/ISO-HDLC


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_cobs_bound(data):
    assert len(cobs.encode(data)) <= schema.cobs_max(len(data))


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 255),
    st.binary(max_size=schema.MAX_PAYLOAD),
    st.integers(0, 0xFFFF),
    st.one_of(st.none(), st.tuples(st.integers(0, 0xFFFFFFFF), st.binary(min_size=16, max_size=16))),
)
def test_frame_round_trip(msg_id, payload, seq, auth):
    f = Frame(msg_id, payload, seq, schema.FLAG_AUTH if auth else 0, *(auth or (None, None)))
    wire = f.encode()
    assert wire.endswith(b"\x00") and b"\x00" not in wire[:-1]
    assert len(wire) - 1 <= schema.MAX_ENCODED
    assert decode_packet(wire[:-1]) == f
    dec = FrameDecoder()
    assert dec.feed(wire) == [f]
    assert dec.stats["frames_ok"] == 1


def test_frame_check_refuses_bad_frames():
    bad = [
        Frame(256),
        Frame(1, seq=70000),
        Frame(1, flags=0x02),
        Frame(1, bytes(schema.MAX_PAYLOAD + 1)),
        Frame(1, flags=schema.FLAG_AUTH),
        Frame(1, flags=schema.FLAG_AUTH, counter=1, tag=bytes(15)),
        Frame(1, counter=1),
    ]
    for f in bad:
        with pytest.raises(FrameError):
            f.encode()


def _raw(
    msg_id: int, payload: bytes, flags: int = 0, length: int | None = None, trailer: bytes = b""
) -> bytes:
    body = (
        struct.pack("<BBHH", msg_id, flags, 0, len(payload) if length is None else length) + payload + trailer
    )
    return body + struct.pack("<I", crc32(body))


def test_parse_classifies_each_error():
    ok = _raw(0x23, bytes(4))
    assert parse(ok).msg_id == 0x23
    cases = {
        "length": [b"", ok[:9], _raw(0x23, bytes(4), length=5), _raw(0x23, bytes(4), flags=schema.FLAG_AUTH)],
        "crc": [ok[:-1] + bytes([ok[-1] ^ 1]), bytes([ok[0] ^ 1]) + ok[1:]],
        "header": [_raw(0x23, bytes(4), flags=0x80)],
    }
    for kind, raws in cases.items():
        for raw in raws:
            with pytest.raises(FrameError) as e:
                parse(raw)
            assert e.value.kind == kind
    with pytest.raises(FrameError) as e:
        decode_packet(b"\x05\x01\x02")
    assert e.value.kind == "cobs"


def _good(seq: int) -> bytes:
    return Frame(0x23, struct.pack("<I", seq), seq).encode()


def test_resync_after_garbage_truncation_crc_and_overlong():
    dec = FrameDecoder()
    stream = (
        b"\x37\x99\x42"  # garbage glued to the next frame: spoils that one
        + _good(1)
        + _good(2)
        + _good(3)[:7]  # truncated: its tail is lost
        + _good(4)  # ... so it merges with this one: one error, frame 4 lost
        + b"\x00" * 5  # idle
        + _good(5)
        + bytes([0x11]) * (schema.MAX_ENCODED + 10)
        + b"\x00"  # overlong
        + _good(6)[:5]
        + bytes([_good(6)[5] ^ 0x40])
        + _good(6)[6:]  # corrupted byte
        + _good(7)
    )
    got = dec.feed(stream)
    assert [f.seq for f in got] == [2, 5, 7]
    errors = sum(v for k, v in dec.stats.items() if k != "frames_ok")
    assert errors == 4 and dec.stats["length_errors"] >= 1
    assert dec.last_error is not None


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 200), min_size=1, max_size=20), st.binary(max_size=3000))
def test_chunking_does_not_matter(cuts, noise):
    stream = noise + b"\x00" + b"".join(_good(i) for i in range(5)) + noise
    one = FrameDecoder()
    expected = one.feed(stream)
    many = FrameDecoder()
    got: list[Frame] = []
    pos = 0
    for c in cuts * (len(stream) // max(1, sum(cuts)) + 1):
        got += many.feed(stream[pos : pos + c])
        pos += c
        if pos >= len(stream):
            break
    got += many.feed(stream[pos:])
    assert got == expected and many.stats == one.stats
    assert [f.seq for f in expected if f.msg_id == 0x23][-5:] == list(range(5))


def test_flood_of_random_bytes():
    """1 MB of noise: bounded memory, every packet classified once, a good frame afterwards still decodes."""
    rng = random.Random(7)
    noise = bytes(rng.getrandbits(8) for _ in range(1 << 20))
    dec = FrameDecoder()
    frames = dec.feed(noise)
    packets = sum(1 for part in noise.split(b"\x00")[:-1] if part)
    assert sum(dec.stats.values()) == packets
    assert len(frames) == dec.stats["frames_ok"]
    assert len(dec._buf) <= schema.MAX_ENCODED
    assert dec.feed(b"\x00" + _good(9)) == [Frame(0x23, struct.pack("<I", 9), 9)]


def test_flood_without_delimiters_stays_bounded():
    dec = FrameDecoder()
    for _ in range(100):
        dec.feed(b"\x55" * 10_000)
        assert len(dec._buf) <= schema.MAX_ENCODED
    assert dec.feed(b"\x00" + _good(1))[0].seq == 1
    assert dec.stats["length_errors"] == 1


# ---------------------------------------------------------------------------------------------- golden
def test_golden_file_and_doc_are_current():
    assert G.GOLDEN_PATH.read_text() == G.render_golden(), "run tools/gen_protocol_golden.py"
    doc = G.DOC_PATH.read_text()
    assert doc == G.render_doc(doc), "docs/protocol.md examples are stale: run tools/gen_protocol_golden.py"
    for section in G.SECTIONS:
        assert f"<!-- BEGIN GENERATED: {section} -->" in doc


def test_doc_examples_are_real_frames():
    """Every wire line in the doc's examples decodes to the frame the example describes."""
    doc = G.DOC_PATH.read_text()
    block = doc.split("<!-- BEGIN GENERATED: examples -->")[1].split("<!-- END GENERATED: examples -->")[0]
    wires = []
    for example in block.strip().strip("`").split("\n\n"):
        lines = example.splitlines()
        start = next(i for i, ln in enumerate(lines) if ln.strip().startswith("wire"))
        hexes = " ".join(ln.replace("wire", "").strip() for ln in lines[start:])
        wires.append(bytes.fromhex(hexes.replace(" ", "")))
    assert len(wires) == len(G.DOC_EXAMPLES)
    for wire in wires:
        (frame,) = FrameDecoder().feed(wire)
        decode(frame.msg_id, frame.payload)


@pytest.mark.parametrize("vec", GOLDEN["vectors"], ids=lambda v: v["label"])
def test_golden_vector_decodes_and_reencodes(vec):
    wire = bytes.fromhex(vec["frame"])
    dec = FrameDecoder()
    (frame,) = dec.feed(wire)
    assert frame.msg_id == vec["id"] and frame.seq == vec["seq"] and frame.counter == vec["counter"]
    assert frame.payload.hex() == vec["payload"]
    msg = decode(frame.msg_id, frame.payload)
    assert vec["name"] == msg.NAME
    assert msg.to_dict() == vec["fields"]
    assert from_dict(vec["name"], vec["fields"]) == msg
    assert frame.encode() == wire
    assert encode(msg) == frame.payload


@pytest.mark.parametrize("rej", GOLDEN["rejects"], ids=lambda r: r["label"])
def test_golden_rejects_are_refused_for_their_reason(rej):
    from dysan.protocol import Verifier

    dec = FrameDecoder()
    frames = dec.feed(bytes.fromhex(rej["stream"]))
    if rej["code"] == 0:
        assert frames == []
        assert dec.stats[f"{rej['expect']}_errors"] == 1
        assert sum(dec.stats.values()) == 1
        return
    (frame,) = frames
    verifier = Verifier(bytes.fromhex(GOLDEN["key"]), bytes.fromhex(GOLDEN["device_id"]), rej["last_counter"])
    with pytest.raises(ProtocolError) as e:
        accept(frame, verifier, at_device=rej["at"] == "device")
    assert e.value.code == rej["code"] and e.value.code.name == rej["expect"]
    assert verifier.last_counter == rej["last_counter"]


def test_counters_match_c_struct_order():
    assert COUNTERS == ("frames_ok", "crc_errors", "cobs_errors", "length_errors", "header_errors")
    stats = BY_NAME["STATS"]
    assert [f.name for f in stats.fields[:5]] == list(COUNTERS)
