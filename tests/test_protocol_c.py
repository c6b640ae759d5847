"""The C protocol core: its unit tests, the golden vectors, cross-compilation, a short libFuzzer run, and
differential tests that push the same inputs through C (ctypes, firmware/tests/proto_shim.c) and Python."""

from __future__ import annotations

import re
import subprocess
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dysan.protocol import (
    BY_ID,
    MESSAGES,
    Frame,
    FrameDecoder,
    ProtocolError,
    Signer,
    Verifier,
    accept,
    decode,
    encode,
    make,
    schema,
)
from dysan.protocol.framing import COUNTERS
from dysan.protocol.schema import FLAG_AUTH
from dysan.testing import golden, proto_shim

BUILD = proto_shim.FIRMWARE / "build" / "proto"
KEY, DEV = golden.TEST_KEY, golden.TEST_DEVICE_ID


@pytest.fixture(scope="module")
def c() -> proto_shim.CShim:
    proto_shim.build()
    return proto_shim.CShim()


@pytest.mark.parametrize(
    "name", ["proto_crypto_test", "proto_frame_test", "proto_auth_test", "proto_golden_test"]
)
def test_c_unit_tests(c, name):
    args = [str(BUILD / name)]
    if name == "proto_golden_test":
        args.append(str(golden.GOLDEN_PATH))
    r = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{name}: " in r.stdout and "ok (0 failures)" in r.stdout
    if name == "proto_golden_test":
        m = re.search(r"(\d+) vectors, (\d+) rejects", r.stdout)
        assert (
            m
            and int(m.group(1)) == len(golden.valid_vectors())
            and int(m.group(2)) == len(golden.reject_vectors())
        )


def test_golden_test_fails_on_a_wrong_vector(c, tmp_path):
    """The C golden test is not vacuous: one flipped payload byte (with a fixed CRC) makes it fail."""
    text = golden.GOLDEN_PATH.read_text()
    vec = golden.vector_json(golden.valid_vectors()[3])  # PING
    bad = golden.Vector("bad", make("PING", nonce=1), 3).frame().encode().hex()
    broken = text.replace(vec["frame"], bad, 1)
    assert broken != text
    p = tmp_path / "golden.json"
    p.write_text(broken)
    r = subprocess.run(
        [str(BUILD / "proto_golden_test"), str(p)], capture_output=True, text=True, check=False
    )
    assert r.returncode == 1 and "FAIL" in r.stdout


def test_core_compiles_clean_with_clang_and_for_cortex_m4():
    out = proto_shim.build(("proto-cross",))
    assert "clean under" in out


def test_limits_agree(c):
    assert c.limits() == {
        "max_payload": schema.MAX_PAYLOAD,
        "max_frame": schema.MAX_FRAME,
        "max_encoded": schema.MAX_ENCODED,
        "msg_count": len(MESSAGES),
    }


# ---------------------------------------------------------------------------------------------- differential
def _frames_eq(a: list[Frame], b: list[Frame]) -> bool:
    return [(f.msg_id, f.flags, f.seq, f.payload, f.counter, f.tag) for f in a] == [
        (f.msg_id, f.flags, f.seq, f.payload, f.counter, f.tag) for f in b
    ]


def _stream(draw_frames: list[Frame], garbage: list[bytes], cut: list[int]) -> bytes:
    parts = []
    for i, f in enumerate(draw_frames):
        wire = f.encode()
        if i < len(cut) and cut[i]:
            wire = wire[: cut[i] % len(wire)]  # truncated
        parts.append(wire)
        if i < len(garbage):
            parts.append(garbage[i])
    return b"".join(parts)


FRAMES = st.builds(
    lambda mid, payload, seq, auth: Frame(
        mid, payload, seq, FLAG_AUTH if auth else 0, *(auth or (None, None))
    ),
    st.integers(0, 255),
    st.binary(max_size=300),
    st.integers(0, 0xFFFF),
    st.one_of(st.none(), st.tuples(st.integers(0, 0xFFFFFFFF), st.binary(min_size=16, max_size=16))),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(FRAMES, max_size=6),
    st.lists(st.binary(max_size=40), max_size=6),
    st.lists(st.integers(0, 400), max_size=6),
)
def test_decoders_agree_on_streams(c, frames, garbage, cut):
    stream = _stream(frames, garbage, cut)
    py = FrameDecoder()
    got_py = py.feed(stream)
    got_c, stats_c = c.decode(stream)
    assert _frames_eq(got_py, got_c)
    assert py.stats == stats_c


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=4000), st.integers(0, 255))
def test_decoders_agree_on_noise(c, noise, every):
    stream = bytes(0 if every and i % (every + 1) == every else b for i, b in enumerate(noise))
    py = FrameDecoder()
    got_py = py.feed(stream)
    got_c, stats_c = c.decode(stream)
    assert _frames_eq(got_py, got_c) and py.stats == stats_c


def test_decoders_agree_on_edge_lengths(c):
    """Packets around MAX_ENCODED, and runs of 0x01 / 0xFF codes (the extremes of COBS)."""
    for n in (schema.MAX_ENCODED - 2, schema.MAX_ENCODED - 1, schema.MAX_ENCODED, schema.MAX_ENCODED + 1):
        for fill in (0x01, 0x02, 0xFF, 0x11):
            stream = bytes([fill]) * n + b"\x00"
            py = FrameDecoder()
            got_py = py.feed(stream)
            got_c, stats_c = c.decode(stream)
            assert _frames_eq(got_py, got_c) and py.stats == stats_c, (n, fill)
    biggest = Frame(
        0x21, bytes(range(256)) * 5 + bytes(schema.MAX_PAYLOAD - 1280), 1, FLAG_AUTH, 5, bytes(16)
    )
    wire = biggest.encode()
    assert len(wire) - 1 <= schema.MAX_ENCODED
    got_c, stats_c = c.decode(wire)
    assert _frames_eq(got_c, [biggest]) and stats_c["frames_ok"] == 1


@settings(max_examples=300, deadline=None)
@given(FRAMES, st.integers(0, schema.MAX_ENCODED + 2))
def test_encoders_agree_byte_for_byte(c, frame, cap):
    rc, wire = c.encode(frame)
    assert rc == 0 and wire == frame.encode()
    rc, short = c.encode(frame, cap)
    if cap >= len(wire):
        assert rc == 0 and short == wire
    else:
        assert rc == schema.ErrorCode.BAD_LENGTH and short == b""


def test_encoders_agree_on_cobs_block_boundaries(c):
    """Payload sizes that put a 254-byte COBS block exactly at the end of the frame, and around it."""
    for n in range(240, 270):
        for fill in (0x01, 0xFF):
            f = Frame(0x31, bytes([fill]) * n, 0x0101)
            assert c.encode(f)[1] == f.encode(), (n, fill)
            assert c.decode(f.encode())[0][0].payload == f.payload


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([*MESSAGES, None]), st.binary(max_size=1600), st.integers(0, 1600))
def test_unpackers_agree(c, spec, data, cut):
    msg_id = spec.id if spec is not None else 0x7F
    for payload in {data, data[: cut % (len(data) + 1)], data[: spec.fixed_size] if spec else b""}:
        rc, repacked = c.unpack_repack(msg_id, payload)
        try:
            msg = decode(msg_id, payload)
        except ProtocolError as e:
            assert rc == e.code, (BY_ID.get(msg_id), payload.hex(), rc, e)
            continue
        assert rc == 0 and repacked == payload == encode(msg)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from([m.id for m in MESSAGES] + [0x7F]),
    st.binary(max_size=60),
    st.integers(0, 200),
    st.sampled_from(["signed", "unsigned", "forged"]),
    st.booleans(),
    st.sampled_from(["key", "no_key", "no_ctx"]),
)
def test_acceptance_rules_agree(c, msg_id, payload, last, how, at_device, provisioned):
    spec = BY_ID.get(msg_id)
    if spec is not None and payload and spec.max_size and len(payload) > spec.max_size:
        payload = payload[: spec.max_size]
    counter = 100
    if how == "unsigned":
        f = Frame(msg_id, payload, 1)
    else:
        tag = Signer(KEY, DEV, counter - 1).sign(msg_id, payload).tag if how == "signed" else bytes(16)
        f = Frame(msg_id, payload, 1, FLAG_AUTH, counter, tag)
    key = KEY if provisioned == "key" else None
    r = c.accept(
        f, at_device=at_device, key=key, device_id=DEV, last_counter=last, no_auth=provisioned == "no_ctx"
    )
    verifier = None if provisioned == "no_ctx" else Verifier(key, DEV, last)
    try:
        acc = accept(f, verifier, at_device=at_device)
    except ProtocolError as e:
        assert r.rc == e.code and not r.authenticated
        if verifier is not None:
            assert r.last_counter == verifier.last_counter == last
        return
    assert r.rc == 0 and r.authenticated == acc.authenticated and r.repacked == payload
    if verifier is not None:
        assert r.last_counter == verifier.last_counter


def test_crc_agrees(c):
    for data in (b"", b"123456789", bytes(range(256)) * 7):
        assert c.crc32(data) == zlib.crc32(data)


def test_counters_in_the_same_order():
    assert COUNTERS[0] == "frames_ok" and len(COUNTERS) == 5


# ---------------------------------------------------------------------------------------------- fuzzing
def test_short_libfuzzer_run_finds_nothing():
    """~15 s of libFuzzer + ASan + UBSan on the frame decoder, unpackers, auth and encoders."""
    r = subprocess.run(
        ["make", "-f", "proto.mk", "fuzz-short", "PROTO_FUZZ_SECONDS=15"],
        cwd=proto_shim.FIRMWARE,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    m = re.search(r"fuzz_frame: runs=(\d+) crashes=(\d+) hangs=(\d+)", r.stdout)
    assert m, r.stdout
    runs, crashes, hangs = map(int, m.groups())
    assert runs > 10_000 and crashes == 0 and hangs == 0
