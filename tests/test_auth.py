"""Authentication: HMAC vectors, replay refused, wrong key / device refused, unsigned refused, and the
Python signer and the C verifier (and vice versa) agreeing on every tag."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dysan.protocol import BY_NAME, AuthError, Frame, Signer, Verifier, accept, encode, make
from dysan.protocol.auth import auth_message, compute_tag, tag_ok
from dysan.protocol.schema import FLAG_AUTH, PROTOCOL_VERSION, ErrorCode, Mode
from dysan.testing import golden, proto_shim

KEY = golden.TEST_KEY
DEV = golden.TEST_DEVICE_ID
SET_MODE = BY_NAME["SET_MODE"].id

# RFC 4231 test cases (key, data, HMAC-SHA256 prefix); case 5 is the 128-bit truncation our tags use.
RFC4231 = [
    (b"\x0b" * 20, b"Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (
        b"Jefe",
        b"what do ya want for nothing?",
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
    ),
    (b"\xaa" * 20, b"\xdd" * 50, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
    (bytes(range(1, 26)), b"\xcd" * 50, "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
    (b"\x0c" * 20, b"Test With Truncation", "a3b6167473100ee06e0c796c2955552b"),
    (
        b"\xaa" * 131,
        b"Test Using Larger Than Block-Size Key - Hash Key First",
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
    ),
]


@pytest.fixture(scope="module")
def c() -> proto_shim.CShim:
    proto_shim.build()
    return proto_shim.CShim()


def _set_mode(mode: Mode = Mode.STREAMING) -> bytes:
    return encode(make("SET_MODE", mode=mode))


# ---------------------------------------------------------------------------------------------- vectors
def test_tag_layout_is_hmac_of_the_documented_message():
    payload = _set_mode()
    mac_input = DEV + bytes([SET_MODE]) + (43).to_bytes(4, "little") + payload
    assert auth_message(DEV, SET_MODE, 43, payload) == mac_input
    assert (
        compute_tag(KEY, DEV, SET_MODE, 43, payload) == hmac.new(KEY, mac_input, hashlib.sha256).digest()[:16]
    )


def test_known_tag_from_the_golden_vectors():
    """A fixed value, so a change of the tag scheme cannot go unnoticed on both sides at once."""
    vec = next(v for v in json.loads(golden.GOLDEN_PATH.read_text())["vectors"] if v["label"] == "set_mode")
    frame = Frame(vec["id"], bytes.fromhex(vec["payload"]), vec["seq"], FLAG_AUTH, vec["counter"], None)
    tag = compute_tag(KEY, DEV, frame.msg_id, vec["counter"], frame.payload)
    assert tag.hex() == "65c0798a79b4bbd6f677ef7f5c343747"


@pytest.mark.parametrize(("key", "data", "want"), RFC4231)
def test_c_hmac_matches_rfc4231(c, key, data, want):
    assert c.hmac(key, data).hex().startswith(want)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.binary(max_size=2000))
def test_c_sha256_and_hmac_match_hashlib(c, key, data):
    assert c.sha256(data) == hashlib.sha256(data).digest()
    assert c.hmac(key, data) == hmac.new(key, data, hashlib.sha256).digest()


def test_c_sha256_fips_long_message(c):
    assert (
        c.sha256(b"a" * 1_000_000).hex() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
    )


# ---------------------------------------------------------------------------------------------- python side
def test_replay_refused_and_counters_advance():
    signer = Signer(KEY, DEV)
    verifier = Verifier(KEY, DEV)
    first = signer.sign(SET_MODE, _set_mode(), seq=1)
    assert accept(first, verifier).authenticated and verifier.last_counter == 1
    with pytest.raises(AuthError) as e:
        accept(first, verifier)
    assert e.value.code is ErrorCode.REPLAY
    second = signer.sign(SET_MODE, _set_mode(Mode.IDLE), seq=2)
    assert second.counter == 2 and accept(second, verifier).msg.mode is Mode.IDLE
    with pytest.raises(AuthError) as e:
        accept(first, verifier)  # older than the last accepted
    assert e.value.code is ErrorCode.REPLAY


def test_wrong_key_wrong_device_tampering_refused():
    verifier = Verifier(KEY, DEV, 10)
    good = Signer(KEY, DEV, 10).sign(SET_MODE, _set_mode())
    forged = [
        Signer(bytes(32), DEV, 10).sign(SET_MODE, _set_mode()),
        Signer(KEY, bytes(8), 10).sign(SET_MODE, _set_mode()),
        Frame(good.msg_id, _set_mode(Mode.IDLE), good.seq, good.flags, good.counter, good.tag),
        Frame(good.msg_id, good.payload, good.seq, good.flags, (good.counter or 0) + 1, good.tag),
        Frame(BY_NAME["SET_SENSITIVE"].id, b"\x01", good.seq, good.flags, good.counter, good.tag),
        Frame(good.msg_id, good.payload, good.seq, good.flags, good.counter, bytes(16)),
    ]
    for f in forged:
        with pytest.raises(AuthError) as e:
            accept(f, verifier)
        assert e.value.code is ErrorCode.AUTH_FAILED
    assert verifier.last_counter == 10
    assert accept(good, verifier).authenticated


def test_unsigned_and_unprovisioned_refused():
    unsigned = Frame(SET_MODE, _set_mode())
    for verifier in (Verifier(KEY, DEV), None):
        with pytest.raises(AuthError) as e:
            accept(unsigned, verifier)
        assert e.value.code is ErrorCode.AUTH_REQUIRED
    signed = Signer(KEY, DEV).sign(SET_MODE, _set_mode())
    with pytest.raises(AuthError) as e:
        accept(signed, Verifier(None, DEV))
    assert e.value.code is ErrorCode.NOT_PROVISIONED
    # Messages that need no auth are accepted unsigned, and verified when signed.
    hello = encode(make("HELLO", proto_version=1, nonce=5))
    assert not accept(Frame(BY_NAME["HELLO"].id, hello), Verifier(KEY, DEV)).authenticated
    assert accept(Signer(KEY, DEV).sign(BY_NAME["HELLO"].id, hello), Verifier(KEY, DEV)).authenticated
    bad = Frame(BY_NAME["HELLO"].id, hello, 0, FLAG_AUTH, 5, bytes(16))
    with pytest.raises(AuthError):
        accept(bad, Verifier(KEY, DEV))


def test_signer_sync_and_exhaustion():
    signer = Signer(KEY, DEV, counter=3)
    signer.sync(41)  # INFO.auth_counter from the device
    assert signer.sign(SET_MODE, b"\x00").counter == 42
    signer.sync(10)  # never goes back
    assert signer.sign(SET_MODE, b"\x00").counter == 43
    last = Signer(KEY, DEV, counter=0xFFFFFFFE)
    assert last.sign(SET_MODE, b"\x00").counter == 0xFFFFFFFF
    with pytest.raises(AuthError):
        last.sign(SET_MODE, b"\x00")
    with pytest.raises(AuthError):
        Signer(b"short", DEV)


def test_tag_ok_needs_a_trailer():
    assert not tag_ok(KEY, DEV, Frame(SET_MODE, b"\x00"))


# ---------------------------------------------------------------------------------------------- both sides
@settings(max_examples=150, deadline=None)
@given(
    st.integers(0, 255),
    st.integers(0, 0xFFFFFFFF),
    st.binary(max_size=1200),
    st.binary(min_size=32, max_size=32),
)
def test_python_and_c_compute_the_same_tag(c, msg_id, counter, payload, key):
    assert c.tag(key, DEV, msg_id, counter, payload) == compute_tag(key, DEV, msg_id, counter, payload)


def test_python_signed_commands_accepted_by_c_and_refused_when_replayed(c):
    signer = Signer(KEY, DEV, counter=100)
    for name, fields in [
        (
            "CONFIGURE",
            {"segment_len": 5, "candidates": 4, "weight_x": 6554, "weight_y": 26214, "stream_enable": 1},
        ),
        ("SET_MODE", {"mode": Mode.REPLAY}),
        ("SET_SENSITIVE", {"value": 1}),
        ("CALIB_START", {"max_windows": 240}),
        ("CALIB_STOP", {}),
        ("BUNDLE_COMMIT", {"sha256": bytes(range(32))}),
    ]:
        payload = encode(make(name, **fields))
        f = signer.sign(BY_NAME[name].id, payload, seq=7)
        last = (f.counter or 0) - 1
        r = c.accept(f, at_device=True, key=KEY, device_id=DEV, last_counter=last)
        assert (r.rc, r.authenticated, r.last_counter, r.repacked) == (0, True, f.counter, payload), name
        r = c.accept(f, at_device=True, key=KEY, device_id=DEV, last_counter=f.counter or 0)
        assert r.rc == ErrorCode.REPLAY and not r.authenticated
        r = c.accept(f, at_device=True, key=bytes(32), device_id=DEV, last_counter=last)
        assert r.rc == ErrorCode.AUTH_FAILED
        r = c.accept(f, at_device=True, key=KEY, device_id=bytes(8), last_counter=last)
        assert r.rc == ErrorCode.AUTH_FAILED
        r = c.accept(f, at_device=True, key=None, device_id=DEV, last_counter=last)
        assert r.rc == ErrorCode.NOT_PROVISIONED
        unsigned = Frame(f.msg_id, f.payload, f.seq)
        r = c.accept(unsigned, at_device=True, key=KEY, device_id=DEV, last_counter=last)
        assert r.rc == ErrorCode.AUTH_REQUIRED and r.last_counter == last


def test_c_signed_tags_verify_in_python(c):
    verifier = Verifier(KEY, DEV, 0)
    for counter in (1, 2, 1000, 0xFFFFFFFF):
        payload = _set_mode()
        tag = c.tag(KEY, DEV, SET_MODE, counter, payload)
        f = Frame(SET_MODE, payload, 0, FLAG_AUTH, counter, tag)
        assert accept(f, verifier).authenticated
        assert verifier.last_counter == counter


# -- the host believes the device's counter only from an authenticated INFO -----------------------------------

class _FakePeripheral:
    """A pyserial-like link answering HELLO with INFO (and anything signed with CMD_OK), as a device -- or a
    spoofer -- would. ``key``: what the INFO tag is computed with (None: zeros); ``nonce``: a fixed nonce
    (an INFO recorded from an earlier HELLO) instead of the HELLO's; ``counter``: the claimed auth counter;
    ``old_info``: an INFO payload sent as is (another firmware's)."""

    def __init__(self, key: bytes | None, counter: int, nonce: int | None = None,
                 old_info: bytes | None = None) -> None:
        from dysan.protocol import FrameDecoder

        self.key, self.counter, self.nonce, self.old_info = key, counter, nonce, old_info
        self.timeout = 0.0
        self._dec = FrameDecoder()
        self._out = b""

    def write(self, data: bytes) -> None:
        from dysan.protocol import decode

        for f in self._dec.feed(data):
            msg = decode(f.msg_id, f.payload)
            if msg.NAME == "HELLO":
                if self.old_info is not None:  # an older firmware's INFO payload
                    self._out += Frame(BY_NAME["INFO"].id, self.old_info, f.seq).encode()
                    continue
                info = make("INFO", proto_version=PROTOCOL_VERSION, fw_version=1, device_id=DEV, mode=0,
                            calib_active=0, stream_enabled=1, bundle_valid=0, bundle_hash=bytes(8), bundle_version=0,
                            model_count=0, rf_loaded=0, sensitive_set=0, sensitive_value=0xFF,
                            auth_counter=self.counter, segment_len=5, candidates=4, weight_x=1, weight_y=2,
                            boot_epoch=3, tag=bytes(16))
                if self.key is not None:
                    nonce = msg.nonce if self.nonce is None else self.nonce
                    info = dataclasses.replace(info, tag=compute_tag(self.key, DEV, info.ID, nonce,
                                                                     encode(info)[:-16]))
                reply = Frame(info.ID, encode(info), f.seq)
            else:
                reply = Frame(BY_NAME["CMD_OK"].id, encode(make("CMD_OK", ref_msg=f.msg_id, ref_seq=f.seq,
                                                                auth_counter=0xFFFFFFFE)), f.seq)
            self._out += reply.encode()

    def read(self, n: int = 1) -> bytes:
        out, self._out = self._out[:n], self._out[n:]
        return out


def _session(link):
    from dysan.device.provision import Identity
    from dysan.device.session import Session

    return Session(link, Identity(device_id=DEV, key=KEY), timeout=0.5)


def test_a_device_of_another_protocol_version_is_named_not_misread():
    """INFO grew in protocol 3 (boot_epoch): a version-2 firmware's 60-byte INFO does not decode, and the host
    says which version the device speaks instead of timing out; a same-size INFO of another version too."""
    from dysan.device.session import ProtocolMismatch

    v2 = (2).to_bytes(2, "little") + bytes(58)
    with pytest.raises(ProtocolMismatch, match="protocol version 2, this host 3"):
        _session(_FakePeripheral(KEY, counter=1, old_info=v2)).hello()
    good = encode(make("INFO", proto_version=PROTOCOL_VERSION, fw_version=1, device_id=DEV, mode=0, calib_active=0,
                       stream_enabled=1, bundle_valid=0, bundle_hash=bytes(8), bundle_version=0, model_count=0,
                       rf_loaded=0, sensitive_set=0, sensitive_value=0xFF, auth_counter=1, segment_len=5,
                       candidates=4, weight_x=1, weight_y=2, boot_epoch=1, tag=bytes(16)))
    with pytest.raises(ProtocolMismatch, match="protocol version 9"):
        _session(_FakePeripheral(KEY, counter=1, old_info=(9).to_bytes(2, "little") + good[2:])).hello()


def test_host_counter_moves_only_on_an_authenticated_info():
    from dysan.errors import DysanError

    genuine = _session(_FakePeripheral(KEY, counter=41))
    assert genuine.hello().auth_counter == 41 and genuine.signer.counter == 41
    # a spoofer pushing the counter towards 2^32: no key, a wrong key, or a genuine INFO recorded earlier
    for link in (_FakePeripheral(None, 0xFFFFFFF0), _FakePeripheral(bytes(32), 0xFFFFFFF0),
                 _FakePeripheral(KEY, 0xFFFFFFF0, nonce=1234)):
        s = _session(link)
        with pytest.raises(DysanError, match="INFO does not verify"):
            s.hello()
        assert s.signer is None or s.signer.counter < 0xFFFFFFF0
    # CMD_OK's counter is not authenticated: it never moves the signer
    genuine.set_mode(Mode.IDLE)
    assert genuine.signer.counter == 42
    # the nonce is fresh per HELLO (a recorded INFO cannot be replayed)
    seen = set()
    for _ in range(4):
        link = _FakePeripheral(KEY, counter=1)
        sent = []
        orig = link.write
        link.write = lambda data, _o=orig, _s=sent: (_s.append(data), _o(data))[1]
        _session(link).hello()
        from dysan.protocol import FrameDecoder, decode
        seen.add(decode(1, FrameDecoder().feed(sent[0])[0].payload).nonce)
    assert len(seen) == 4
