"""Protocol errors: one class per way a frame or payload can be refused.

They derive from :class:`dysan.errors.DysanError`, so the CLI reports them as one line. Where the device
would answer with an ``ERROR`` frame, ``code`` holds the :class:`~.schema.ErrorCode` it would send, which
lets tests check that the host and device codecs refuse the same input for the same reason.
"""

from __future__ import annotations

from ..errors import DysanError
from .schema import ErrorCode


class ProtocolError(DysanError):
    """Base of every wire-protocol failure."""

    code: ErrorCode | None = None


class UnknownMessage(ProtocolError):
    code = ErrorCode.UNKNOWN_MSG


class DirectionError(ProtocolError):
    code = ErrorCode.WRONG_DIRECTION


class LengthError(ProtocolError):
    """A payload whose size does not fit its message (or a var-array count that disagrees)."""

    code = ErrorCode.BAD_LENGTH


class FieldError(ProtocolError):
    """A field value out of its type's range or the table's constraint (enum, lo/hi, 0/1 flags)."""

    code = ErrorCode.BAD_FIELD


class FrameError(ProtocolError):
    """A frame refused below the message layer; ``kind`` names the receiver's error counter."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind} error: {message}")
        self.kind = kind


class AuthError(ProtocolError):
    """Missing, wrong or replayed authentication; ``code`` says which."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
