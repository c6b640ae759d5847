"""What a receiver does with a frame that passed the link checks: the message layer's acceptance rules.

This is the Python twin of ``dysan_proto_accept`` (``firmware/core/proto/dysan_proto.c``); the checks run in
the same order so both refuse a frame with the same :class:`~.schema.ErrorCode`:

1. unknown id -> UNKNOWN_MSG;
2. a message the receiver never receives (an INFO sent *to* the device) -> WRONG_DIRECTION;
3. if the table requires auth or the frame carries a trailer: AUTH_REQUIRED / NOT_PROVISIONED /
   AUTH_FAILED / REPLAY -- authentication comes before parsing, so an unauthenticated sender reaches
   no more of the payload parser than the size checks of messages that need no auth;
4. payload unpack -> BAD_LENGTH / BAD_FIELD;
5. only then is the counter committed (the device persists it before acting).
"""

from __future__ import annotations

from dataclasses import dataclass

from .auth import Verifier
from .errors import DirectionError, UnknownMessage
from .framing import Frame
from .messages import Msg, decode
from .schema import BY_ID, Direction


@dataclass(frozen=True)
class Accepted:
    msg: Msg
    frame: Frame
    authenticated: bool
    """The frame carried a valid, fresh tag (so e.g. INFO may disclose the sensitive value)."""


def accept(frame: Frame, verifier: Verifier | None, *, at_device: bool = True) -> Accepted:
    """Accepts a frame at the device (``at_device``) or at the host; ProtocolError says why not."""
    spec = BY_ID.get(frame.msg_id)
    if spec is None:
        raise UnknownMessage(f"unknown message id 0x{frame.msg_id:02x}")
    wanted = Direction.H2D if at_device else Direction.D2H
    if spec.direction not in (wanted, Direction.BOTH):
        raise DirectionError(f"{spec.name} is {spec.direction.value}")
    counter = None
    if spec.auth or frame.authenticated:
        if verifier is None:
            verifier = Verifier(None, bytes(8))
        counter = verifier.verify(frame)
    msg = decode(frame.msg_id, frame.payload)
    if counter is not None:
        assert verifier is not None
        verifier.commit(counter)
    return Accepted(msg, frame, counter is not None)
