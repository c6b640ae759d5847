"""Open a ``--port`` spec and start a protocol session with the device's key.

Every device verb takes ``--port`` as a transport spec (``socket://127.0.0.1:PORT`` for QEMU or the host build,
``/dev/ttyACM0``, ``ble:NAME``) and goes through :func:`connect`, which

1. opens the transport (:func:`dysan.transport.open_transport`), with one local twist: ``socket://`` links
   are opened without pyserial's input reset (it drops whatever the device sent while the connection was being
   set up -- QEMU starts the CPU when we connect, so that is its banner; see :func:`dysan.device.open_socket_link`).
   Schemes added with :func:`register_transport` come first: that is how the test suite plugs in links that
   exist only in its process (``virtual-ble:NAME``, :mod:`dysan.testing.ble_bridge`) without a special case
   here; an unknown scheme is a one-line :class:`~dysan.transport.TransportError` (a DysanError);
2. says HELLO, learns the device id from INFO and picks the key: ``--key-file`` when given (its device id
   must match), else the key store's entry for that device id (:mod:`.keystore`), else none (read-only
   verbs work without one; signed commands then fail with a one-line hint).

The transport keeps its own reconnect policy (USB renumbering, QEMU restarts); verbs that must survive a
reconnect watch :class:`LinkWatch` and start a fresh session on the same transport (:meth:`DeviceLink.resync`).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import serial

from ..device.provision import Identity
from ..device.session import DeviceError, InfoNotAuthentic, Session
from ..errors import DysanError
from ..protocol.schema import ErrorCode
from ..transport import LinkEvent, ReconnectPolicy, Transport, TransportError, open_transport, parse_spec
from ..transport.base import PYSERIAL_URL_SCHEMES
from ..transport.serial_link import SerialTransport
from . import keystore

DEFAULT_TIMEOUT = 10.0


class SocketTransport(SerialTransport):
    """A ``socket://`` SerialTransport that keeps the bytes received while connecting (see the module doc)."""

    def _open_port(self, path: str) -> serial.SerialBase:
        try:
            port = serial.serial_for_url(path, timeout=0, write_timeout=self.write_timeout, do_not_open=True)
            port.reset_input_buffer = lambda: None  # type: ignore[method-assign]
            try:
                port.open()
            finally:
                del port.reset_input_buffer
        except (serial.SerialException, OSError, ValueError) as exc:
            from ..transport.serial_link import describe_open_error

            raise TransportError(describe_open_error(path, exc)) from exc
        sock = getattr(port, "_socket", None)
        if sock is not None and sock.getsockname() == sock.getpeername():  # TCP self-connect: nobody listens
            port.close()
            raise TransportError(f"cannot connect to {path}: nothing listens there")
        self._port_timeout = 0
        return port


class TransportFactory(Protocol):
    """What :func:`register_transport` takes: the full ``--port`` spec in, the *open* transport out (or a
    :class:`~dysan.transport.TransportError` that says in one line why it cannot be opened)."""

    def __call__(self, spec: str, *, policy: ReconnectPolicy | None, timeout: float,
                 on_event: Callable[[LinkEvent], None] | None) -> Transport: ...


BUILTIN_SCHEMES = frozenset({"serial", "ble", *PYSERIAL_URL_SCHEMES})
"""The schemes :mod:`dysan.transport` opens itself; :func:`register_transport` cannot shadow them."""

_FACTORIES: dict[str, TransportFactory] = {}
_FACTORIES_LOCK = threading.Lock()


def register_transport(scheme: str, factory: TransportFactory, *, replace: bool = False) -> None:
    """Let every ``--port`` spec ``SCHEME:...`` open through ``factory`` (see :data:`TransportFactory`).

    For links that live in one process (the test suite's virtual BLE peripheral): the shipped tools register
    nothing. A scheme is registered once unless ``replace``; the built-in ones cannot be overridden.
    """
    key = scheme.lower()
    if not key.replace("-", "").isalnum() or key in BUILTIN_SCHEMES:
        raise ValueError(f"cannot register link scheme {scheme!r} (built in, or not a plain name)")
    with _FACTORIES_LOCK:
        if key in _FACTORIES and not replace and _FACTORIES[key] is not factory:
            raise ValueError(f"link scheme {scheme!r} is already registered")
        _FACTORIES[key] = factory


def unregister_transport(scheme: str) -> None:
    """Forget a scheme added by :func:`register_transport` (no error when it was not registered)."""
    with _FACTORIES_LOCK:
        _FACTORIES.pop(scheme.lower(), None)


def registered_schemes() -> list[str]:
    """The schemes added by :func:`register_transport`, sorted."""
    with _FACTORIES_LOCK:
        return sorted(_FACTORIES)


def open_link(spec: str, *, policy: ReconnectPolicy | None = None, timeout: float = DEFAULT_TIMEOUT,
              on_event=None) -> Transport:
    """The open transport a ``--port`` spec names (see the module doc)."""
    scheme, sep, _ = spec.strip().partition(":")
    with _FACTORIES_LOCK:
        factory = _FACTORIES.get(scheme.lower()) if sep else None
    if factory is not None:
        return factory(spec.strip(), policy=policy, timeout=timeout, on_event=on_event)
    link = parse_spec(spec)  # TransportError (one line, the expected forms) for an unknown scheme
    if link.kind == "serial" and link.target.lower().startswith("socket://"):
        t: Transport = SocketTransport(link.target, policy=policy, on_event=on_event)
        t.open()
        return t
    return open_transport(spec, policy=policy, on_event=on_event, timeout=timeout)


@dataclass
class LinkWatch:
    """Counts the transport's connection changes (events arrive on whichever thread saw them)."""

    reconnects: int = 0
    disconnects: int = 0
    last: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __call__(self, event: LinkEvent) -> None:
        with self._lock:
            if event.kind == "reconnected":
                self.reconnects += 1
            elif event.kind == "disconnected":
                self.disconnects += 1
            self.last = f"{event.kind} {event.detail}".strip()


class DeviceLink:
    """A transport plus a :class:`Session` with the right identity (see the module doc).

    ``key_file``: the device's key file; None looks the device id up in the key store.
    ``require_key``: fail at once when no key is found (verbs that sign commands).
    """

    def __init__(self, spec: str, *, key_file: str | Path | None = None, require_key: bool = False,
                 timeout: float = 5.0, policy: ReconnectPolicy | None = None, on_log=None) -> None:
        self.spec = spec
        self.key_file = key_file
        self.require_key = require_key
        self.timeout = timeout
        self.policy = policy
        self.on_log = on_log
        self.watch = LinkWatch()
        self.transport: Transport | None = None
        self.session: Session | None = None
        self.identity: Identity | None = None
        self.key_source = ""

    def open(self) -> Session:
        self.transport = open_link(self.spec, policy=self.policy, on_event=self.watch)
        try:
            return self.resync()
        except BaseException:
            self.close()
            raise

    def resync(self) -> Session:
        """A fresh session on the (re)connected transport: HELLO, key lookup, signer synced."""
        if self.transport is None:
            raise DysanError("link not open")
        s = Session(self.transport, None, timeout=self.timeout, on_log=self.on_log)
        info = s.hello()
        device_id = bytes(info.device_id)
        if self.identity is None or self.identity.device_id != device_id:
            self.identity, self.key_source = self._find_key(device_id)
        if self.identity is not None:
            s.identity = self.identity
            try:
                s.hello()  # creates and syncs the signer (only from an INFO that verifies with the key)
            except InfoNotAuthentic:
                raise DysanError(f"{self.key_source} is not the key of device {self.identity.device_id_hex} "
                                 "(its INFO does not verify with it: AUTH_FAILED)") from None
            if self.require_key:
                self._verify_key(s)
        self.session = s
        return s

    def _verify_key(self, s: Session) -> None:
        """A signed HELLO: a wrong key is reported now, in one line, before a verb starts its work."""
        try:
            s.hello(signed=True)
        except DeviceError as exc:
            if exc.code in (ErrorCode.AUTH_FAILED, ErrorCode.NOT_PROVISIONED):
                raise DysanError(f"{self.key_source} is not the key of device {self.identity.device_id_hex} "
                                 f"(it refused a signed HELLO: {ErrorCode(exc.code).name})") from None
            raise

    def _find_key(self, device_id: bytes) -> tuple[Identity | None, str]:
        if self.key_file is not None:
            ident = keystore.load(self.key_file)
            if ident.device_id != device_id:
                raise DysanError(f"{self.key_file} is the key of device {ident.device_id_hex}, but {self.spec} "
                                 f"is device {device_id.hex()}")
            return ident, str(self.key_file)
        ident = keystore.lookup(device_id)
        if ident is not None:
            return ident, str(keystore.key_path(device_id))
        if self.require_key:
            raise DysanError(f"no key for device {device_id.hex()} in {keystore.key_dir()}: pass --key-file "
                             "(the file `dysan flash` wrote when it provisioned the device)")
        return None, ""

    def close(self) -> None:
        if self.transport is not None:
            with contextlib.suppress(Exception):
                self.transport.close()
        self.transport = None
        self.session = None

    def __enter__(self) -> DeviceLink:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def device_id_hex(session: Session) -> str:
    return bytes(session.info.device_id).hex() if session.info is not None else "?"
