"""The owner's key store: one HMAC key per device, generated once, kept outside the repository.

Why a store at all: the key signs every command that changes what the wearable sends (docs/protocol.md),
and it is generated when the device is provisioned, long before the commands that need it. The store maps
the device id that INFO reports to its key, so ``dysan calibrate --port ...`` finds the right key without
being told (``--key-file`` still overrides).

Layout: ``$DYSAN_KEYS`` or ``$XDG_CONFIG_HOME/dysan/keys`` (default ``~/.config/dysan/keys``), mode 0700,
one file per device ``<device-id-hex>.key``, mode 0600, holding JSON ``{"format": "dysan-key/1",
"device_id": HEX, "key": HEX}``. A ``--key-file`` may also be a provisioning page image
(:mod:`dysan.device.provision`), since that is what a factory would hand over.

Rules that make a key hard to lose or leak: a key file is created with ``O_EXCL`` at mode 0600 (never
widened afterwards, never overwritten with a different key), keys are never printed (``Identity.__repr__``
hides them), and a key file readable by others is refused on load.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from ..device.provision import DEVICE_ID_LEN, Identity, new_identity, parse_page
from ..errors import DysanError

FORMAT = "dysan-key/1"
ENV = "DYSAN_KEYS"


def key_dir() -> Path:
    """The key store folder (not created here)."""
    if os.environ.get(ENV):
        return Path(os.environ[ENV]).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "dysan" / "keys"


def key_path(device_id: bytes, directory: Path | None = None) -> Path:
    if len(device_id) != DEVICE_ID_LEN:
        raise DysanError(f"device id must be {DEVICE_ID_LEN} bytes")
    return (directory or key_dir()) / f"{device_id.hex()}.key"


def _text(identity: Identity) -> str:
    return json.dumps({"format": FORMAT, "device_id": identity.device_id.hex(), "key": identity.key.hex()}) + "\n"


def save(identity: Identity, path: str | Path | None = None) -> Path:
    """Stores ``identity`` (default: in the store under its device id); returns the file.

    Saving the same identity again is a no-op; a file holding another key is never overwritten (that key may
    be the only copy of a provisioned device's secret)."""
    target = Path(path) if path is not None else key_path(identity.device_id)
    if target.exists():
        if load(target) == identity:
            return target
        raise DysanError(f"{target} already holds another key; refusing to overwrite it")
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise DysanError(f"cannot create key file {target}: {exc.strerror}") from None
    with os.fdopen(fd, "w") as f:
        f.write(_text(identity))
    return target


def load(path: str | Path) -> Identity:
    """The identity in a key file (JSON or a provisioning page image)."""
    p = Path(path).expanduser()
    try:
        mode = p.stat().st_mode
        data = p.read_bytes()
    except FileNotFoundError:
        raise DysanError(f"{p}: no such key file") from None
    except OSError as exc:
        raise DysanError(f"{p}: cannot read key file: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise DysanError(f"{p}: key file is accessible by other users (mode {stat.S_IMODE(mode):o}); "
                         f"run: chmod 600 {p}")
    if data[:1] == b"{":
        try:
            obj = json.loads(data)
            if obj.get("format") != FORMAT:
                raise ValueError(f"format {obj.get('format')!r}, expected {FORMAT}")
            return Identity(device_id=bytes.fromhex(obj["device_id"]), key=bytes.fromhex(obj["key"]))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise DysanError(f"{p}: not a DySan key file ({exc})") from None
    try:
        return parse_page(data)
    except DysanError as exc:
        raise DysanError(f"{p}: neither a DySan key file nor a provisioning page ({exc})") from None


def lookup(device_id: bytes, directory: Path | None = None) -> Identity | None:
    """The stored identity of ``device_id``, or None when the store has none."""
    path = key_path(device_id, directory)
    if not path.exists():
        return None
    ident = load(path)
    if ident.device_id != device_id:
        raise DysanError(f"{path}: holds the key of device {ident.device_id_hex}, not {device_id.hex()}")
    return ident


def resolve(key_file: str | Path | None, *, create: bool = False, device_id: str | None = None) -> tuple[
        Identity, Path, bool]:
    """The identity a flash should provision: ``(identity, file, created)``.

    ``key_file``: use it (created with a fresh identity when it does not exist and ``create``);
    ``device_id`` (hex): the stored key of that device; neither: a fresh identity saved in the store.
    """
    if key_file is not None:
        p = Path(key_file).expanduser()
        if p.exists():
            return load(p), p, False
        if not create:
            raise DysanError(f"{p}: no such key file")
        ident = new_identity()
        return ident, save(ident, p), True
    if device_id is not None:
        try:
            raw = bytes.fromhex(device_id)
        except ValueError:
            raise DysanError(f"device id {device_id!r} is not hex") from None
        ident = lookup(raw)
        if ident is None:
            raise DysanError(f"no key for device {device_id} in {key_dir()}")
        return ident, key_path(raw), False
    ident = new_identity()
    return ident, save(ident), True
