"""Python codec of the message payloads, built at import time from :data:`.schema.MESSAGES`.

Each message becomes a frozen dataclass (``Hello``, ``SanitizedWindow``, ...; CamelCase of the table
name) with one attribute per payload field. Integer arrays are tuples of int, fixed byte arrays and
VAR_BYTES are ``bytes``, VAR_TEXT is ``str``. The count field of a VAR_ARRAY (``SAMPLES.count``) is
implicit here -- it is always the number of groups given -- so the Python side cannot send an inconsistent
one; the decoder still checks it, as the C decoder does.

The checks, and their order, mirror the generated C unpackers exactly (payload size first, then each
field's constraint, then the var-array count), so both sides refuse the same payload with the same
:class:`~.schema.ErrorCode`; a differential test holds them to it.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Mapping
from typing import Any, ClassVar

from .errors import FieldError, LengthError, UnknownMessage
from .schema import BY_ID, BY_NAME, MESSAGES, Field, Kind, Message

_TEXT_ERRORS = "surrogateescape"
"""Invalid UTF-8 survives a decode/encode round trip byte for byte (the fuzzers check that identity)."""


class Msg:
    """Base of the generated message classes."""

    SPEC: ClassVar[Message]
    ID: ClassVar[int]
    NAME: ClassVar[str]

    def encode(self) -> bytes:
        """The payload bytes (no frame header)."""
        return encode(self)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able fields: bytes as hex, text as str, arrays as lists."""
        out: dict[str, Any] = {}
        for f in _py_fields(self.SPEC):
            v = getattr(self, f.name)
            if f.kind in (Kind.BYTES, Kind.VAR_BYTES):
                out[f.name] = v.hex()
            elif f.kind in (Kind.ARRAY, Kind.VAR_ARRAY):
                out[f.name] = list(v)
            else:
                out[f.name] = v if isinstance(v, str) else int(v)
        return out


def class_name(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def _py_fields(m: Message) -> list[Field]:
    """Fields a Python message carries: all but the implicit count of a VAR_ARRAY."""
    v = m.var_field
    implicit = v.count_field if v is not None and v.kind is Kind.VAR_ARRAY else None
    return [f for f in m.fields if f.name != implicit]


def _fmt(f: Field) -> str:
    if f.kind is Kind.BYTES:
        return f"{f.count}s"
    if f.kind is Kind.ARRAY:
        return f"{f.count}{f.type.struct_char}"
    return f.type.struct_char


@dataclasses.dataclass(frozen=True)
class _Codec:
    spec: Message
    cls: type[Msg]
    fixed: struct.Struct
    fixed_fields: tuple[Field, ...]


def _build(m: Message) -> _Codec:
    annotations: list[tuple[str, Any]] = []
    for f in _py_fields(m):
        py: Any = {
            Kind.INT: int,
            Kind.ARRAY: tuple[int, ...],
            Kind.BYTES: bytes,
            Kind.VAR_BYTES: bytes,
            Kind.VAR_TEXT: str,
            Kind.VAR_ARRAY: tuple[int, ...],
        }[f.kind]
        annotations.append((f.name, py))
    cls = dataclasses.make_dataclass(
        class_name(m.name),
        annotations,
        bases=(Msg,),
        frozen=True,
        namespace={"SPEC": m, "ID": m.id, "NAME": m.name, "__doc__": f"{m.name} (0x{m.id:02x}): {m.doc}"},
    )
    cls.__module__ = __name__
    fixed = tuple(f for f in m.fields if not f.variable)
    return _Codec(m, cls, struct.Struct("<" + "".join(_fmt(f) for f in fixed)), fixed)


_CODECS: dict[int, _Codec] = {m.id: _build(m) for m in MESSAGES}
CLASSES: dict[str, type[Msg]] = {c.spec.name: c.cls for c in _CODECS.values()}
"""Message classes by table name (``CLASSES["SANITIZED_WINDOW"]``); also module attributes in CamelCase."""
globals().update({c.cls.__name__: c.cls for c in _CODECS.values()})
__all__ = [
    "CLASSES",
    "Msg",
    "decode",
    "encode",
    "from_dict",
    "make",
    *(c.cls.__name__ for c in _CODECS.values()),
]


def make(name: str, **fields: Any) -> Msg:
    """Builds a message by table name (``make("ACK", seq=3)``); unknown names raise UnknownMessage."""
    if name not in CLASSES:
        raise UnknownMessage(f"unknown message {name!r}")
    try:
        return CLASSES[name](**fields)
    except TypeError as e:
        raise FieldError(f"{name}: {e}") from None


def _check_int(m: Message, f: Field, v: object) -> int:
    if not isinstance(v, int):
        raise FieldError(f"{m.name}.{f.name}: expected int, got {type(v).__name__}")
    _check_value(m, f, v)
    return v


def _check_value(m: Message, f: Field, v: int) -> None:
    """The constraints the C unpacker checks (same order: type range, then enum / lo / hi)."""
    if not f.type.lo <= v <= f.type.hi:
        raise FieldError(f"{m.name}.{f.name}: {v} out of {f.type.name} range")
    if f.allowed is not None and v not in f.allowed:
        raise FieldError(f"{m.name}.{f.name}: {v} is not one of {list(f.allowed)}")
    if f.lo is not None and v < f.lo:
        raise FieldError(f"{m.name}.{f.name}: {v} < {f.lo}")
    if f.hi is not None and v > f.hi:
        raise FieldError(f"{m.name}.{f.name}: {v} > {f.hi}")


def _check_ints(m: Message, f: Field, v: object, n: int | None) -> tuple[int, ...]:
    if isinstance(v, (bytes, str)) or not hasattr(v, "__len__"):
        raise FieldError(f"{m.name}.{f.name}: expected a sequence of int")
    t = tuple(int(x) for x in v)  # type: ignore[attr-defined]
    if n is not None and len(t) != n:
        raise FieldError(f"{m.name}.{f.name}: expected {n} values, got {len(t)}")
    if t and (min(t) < f.type.lo or max(t) > f.type.hi):
        raise FieldError(f"{m.name}.{f.name}: values out of {f.type.name} range")
    return t


def _check_bytes(m: Message, f: Field, v: object, n: int | None, max_len: int) -> bytes:
    if not isinstance(v, (bytes, bytearray)):
        raise FieldError(f"{m.name}.{f.name}: expected bytes, got {type(v).__name__}")
    if n is not None and len(v) != n:
        raise FieldError(f"{m.name}.{f.name}: expected {n} bytes, got {len(v)}")
    if len(v) > max_len:
        raise FieldError(f"{m.name}.{f.name}: {len(v)} bytes > max {max_len}")
    return bytes(v)


def encode(msg: Msg) -> bytes:
    """Packs a message into its payload, refusing any value the receiver would refuse (FieldError)."""
    codec = _CODECS.get(getattr(msg, "ID", -1))
    if codec is None or not isinstance(msg, codec.cls):
        raise UnknownMessage(f"not a protocol message: {type(msg).__name__}")
    m = codec.spec
    values: list[Any] = []
    var = m.var_field
    tail = b""
    n_groups = 0
    if var is not None:
        raw = getattr(msg, var.name)
        if var.kind is Kind.VAR_ARRAY:
            assert var.dim is not None
            flat = _check_ints(m, var, raw, None)
            if len(flat) % var.dim.value:
                raise FieldError(f"{m.name}.{var.name}: length not a multiple of {var.dim.value}")
            n_groups = len(flat) // var.dim.value
            if n_groups > var.max_len:
                raise FieldError(f"{m.name}.{var.name}: {n_groups} groups > max {var.max_len}")
            tail = struct.pack(f"<{len(flat)}{var.type.struct_char}", *flat)
        elif var.kind is Kind.VAR_TEXT:
            if not isinstance(raw, str):
                raise FieldError(f"{m.name}.{var.name}: expected str, got {type(raw).__name__}")
            tail = _check_bytes(m, var, raw.encode("utf-8", _TEXT_ERRORS), None, var.max_len)
        else:
            tail = _check_bytes(m, var, raw, None, var.max_len)
    for f in codec.fixed_fields:
        if var is not None and f.name == var.count_field:
            _check_value(m, f, n_groups)
            values.append(n_groups)
        elif f.kind is Kind.INT:
            values.append(_check_int(m, f, getattr(msg, f.name)))
        elif f.kind is Kind.BYTES:
            values.append(_check_bytes(m, f, getattr(msg, f.name), f.count, f.count))
        else:
            values.extend(_check_ints(m, f, getattr(msg, f.name), f.count))
    return codec.fixed.pack(*values) + tail


def decode(msg_id: int, payload: bytes) -> Msg:
    """Unpacks a payload into its message object; UnknownMessage, LengthError or FieldError otherwise."""
    codec = _CODECS.get(msg_id)
    if codec is None:
        raise UnknownMessage(f"unknown message id 0x{msg_id:02x}")
    m = codec.spec
    n = len(payload)
    fixed = codec.fixed.size
    var = m.var_field
    if n < fixed or (var is None and n != fixed):
        raise LengthError(f"{m.name}: payload of {n} bytes, expected {fixed}" + (" or more" if var else ""))
    if var is not None:
        extra = n - fixed
        if extra % var.size or extra // var.size > var.max_len:
            raise LengthError(f"{m.name}: {extra} trailing bytes do not fit {var.name}")
    flat = codec.fixed.unpack_from(payload, 0)
    kwargs: dict[str, Any] = {}
    i = 0
    count_value = None
    for f in codec.fixed_fields:
        if f.kind is Kind.ARRAY:
            kwargs[f.name] = tuple(flat[i : i + f.count])
            i += f.count
            continue
        v = flat[i]
        i += 1
        if f.kind is Kind.INT:
            _check_value(m, f, v)
            v = f.enum(v) if f.enum is not None else v
        if var is not None and f.name == var.count_field:
            count_value = v
        else:
            kwargs[f.name] = v
    if var is not None:
        tail = payload[fixed:]
        if var.kind is Kind.VAR_ARRAY:
            if count_value is None or count_value * var.size != len(tail):
                raise LengthError(f"{m.name}: {var.count_field}={count_value} but {len(tail)} bytes follow")
            kwargs[var.name] = struct.unpack(f"<{len(tail) // var.type.size}{var.type.struct_char}", tail)
        elif var.kind is Kind.VAR_TEXT:
            kwargs[var.name] = bytes(tail).decode("utf-8", _TEXT_ERRORS)
        else:
            kwargs[var.name] = bytes(tail)
    return codec.cls(**kwargs)


def from_dict(name: str, fields: Mapping[str, Any]) -> Msg:
    """Inverse of :meth:`Msg.to_dict` (golden vectors, CLI arguments)."""
    if name not in BY_NAME:
        raise UnknownMessage(f"unknown message {name!r}")
    kwargs: dict[str, Any] = {}
    for f in _py_fields(BY_NAME[name]):
        if f.name not in fields:
            raise FieldError(f"{name}: missing field {f.name!r}")
        v = fields[f.name]
        if f.kind in (Kind.BYTES, Kind.VAR_BYTES):
            try:
                v = bytes.fromhex(v)
            except (TypeError, ValueError):
                raise FieldError(f"{name}.{f.name}: expected a hex string") from None
        elif f.kind in (Kind.ARRAY, Kind.VAR_ARRAY):
            v = tuple(v)
        kwargs[f.name] = v
    return make(name, **kwargs)


def spec(msg_id: int) -> Message:
    if msg_id not in BY_ID:
        raise UnknownMessage(f"unknown message id 0x{msg_id:02x}")
    return BY_ID[msg_id]
