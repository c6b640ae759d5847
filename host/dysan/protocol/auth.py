"""Authentication of commands: HMAC-SHA256 with a per-device key, a monotonic counter, a 128-bit tag.

``tag = HMAC-SHA256(key, device_id || msg_id || counter_le32 || payload)[:16]``

* The 32-byte key is provisioned into each device at flash time and never crosses the link.
* ``device_id`` (8 bytes) binds a tag to one device, so a command recorded for one wearable is useless
  against another even if two were ever provisioned with the same key by mistake.
* ``msg_id`` binds the tag to the command: a signed payload cannot be replayed as a different message.
* ``counter`` must be strictly greater than the last counter the device accepted (the device persists it
  in its STATE region before acting), so a recorded command cannot be replayed, even across reboots.
* The fixed-size prefix fields make the concatenation unambiguous; the payload, last, is the only
  variable-length part and its length is the frame's ``len`` field.

The counter and tag travel in the frame's auth trailer (:mod:`.framing`), not in the payload schema, so
any message can be signed without changing its layout. Messages marked ``auth`` in the table are refused
unsigned; others may still be signed (an authenticated HELLO unlocks the sensitive value in INFO).
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass

from .errors import AuthError
from .framing import Frame
from .schema import (
    AUTH_KEY_SIZE,
    AUTH_TAG_SIZE,
    DEVICE_ID_SIZE,
    FLAG_AUTH,
    ErrorCode,
)

COUNTER_MAX = 0xFFFFFFFF


def _check_identity(key: bytes, device_id: bytes) -> None:
    if len(key) != AUTH_KEY_SIZE:
        raise AuthError(ErrorCode.NOT_PROVISIONED, f"auth key must be {AUTH_KEY_SIZE} bytes, got {len(key)}")
    if len(device_id) != DEVICE_ID_SIZE:
        raise AuthError(ErrorCode.NOT_PROVISIONED, f"device id must be {DEVICE_ID_SIZE} bytes")


def auth_message(device_id: bytes, msg_id: int, counter: int, payload: bytes) -> bytes:
    """The bytes the tag covers (exposed for the docs and the cross-implementation tests)."""
    return bytes(device_id) + struct.pack("<BI", msg_id, counter) + bytes(payload)


def compute_tag(key: bytes, device_id: bytes, msg_id: int, counter: int, payload: bytes) -> bytes:
    _check_identity(key, device_id)
    if not 0 <= counter <= COUNTER_MAX:
        raise AuthError(ErrorCode.AUTH_FAILED, f"counter {counter} out of u32 range")
    mac = hmac.new(key, auth_message(device_id, msg_id, counter, payload), hashlib.sha256)
    return mac.digest()[:AUTH_TAG_SIZE]


def tag_ok(key: bytes, device_id: bytes, frame: Frame) -> bool:
    """True when the frame carries a tag and it is the right one (constant-time comparison)."""
    if not frame.authenticated or frame.counter is None or frame.tag is None:
        return False
    want = compute_tag(key, device_id, frame.msg_id, frame.counter, frame.payload)
    return hmac.compare_digest(want, frame.tag)


@dataclass
class Signer:
    """The host's side: signs commands for one device with increasing counters.

    ``counter`` is the last one used. Before signing, call :meth:`sync` with INFO's ``auth_counter`` (the
    device's last accepted one) so a fresh host session never reuses a counter the device already saw.
    """

    key: bytes
    device_id: bytes
    counter: int = 0

    def __post_init__(self) -> None:
        _check_identity(self.key, self.device_id)

    def sync(self, device_counter: int) -> None:
        self.counter = max(self.counter, device_counter)

    def sign(self, msg_id: int, payload: bytes, seq: int = 0) -> Frame:
        """An authenticated frame with the next counter."""
        if self.counter >= COUNTER_MAX:
            raise AuthError(ErrorCode.REPLAY, "auth counter exhausted: the device must be re-provisioned")
        self.counter += 1
        tag = compute_tag(self.key, self.device_id, msg_id, self.counter, payload)
        return Frame(msg_id, bytes(payload), seq, FLAG_AUTH, self.counter, tag)


@dataclass
class Verifier:
    """The device's side, in Python: what ``dysan_auth_verify`` + ``dysan_auth_commit`` do in C.

    :meth:`verify` checks without side effects; :meth:`commit` then records the counter. The device
    persists the counter between the two, before it acts on the command, so a power cut can never let
    the same command be accepted twice.
    """

    key: bytes | None
    device_id: bytes
    last_counter: int = 0

    def verify(self, frame: Frame) -> int:
        """Returns the frame's counter if its tag verifies and the counter is fresh, else AuthError."""
        if not frame.authenticated:
            raise AuthError(ErrorCode.AUTH_REQUIRED, f"message 0x{frame.msg_id:02x} must be authenticated")
        if self.key is None:
            raise AuthError(ErrorCode.NOT_PROVISIONED, "device has no auth key")
        if not tag_ok(self.key, self.device_id, frame):
            raise AuthError(ErrorCode.AUTH_FAILED, "auth tag does not verify")
        assert frame.counter is not None
        if frame.counter <= self.last_counter:
            raise AuthError(ErrorCode.REPLAY, f"counter {frame.counter} <= last accepted {self.last_counter}")
        return frame.counter

    def commit(self, counter: int) -> None:
        if counter <= self.last_counter:
            raise AuthError(ErrorCode.REPLAY, "commit of a stale counter")
        self.last_counter = counter
