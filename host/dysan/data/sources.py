"""Data sources named ``KIND:PATH`` (or ``synthetic``), loaded once and cached outside the repository.

Kinds: ``sisfall:`` (the ``.tar.xz`` or its folder), ``weda-fall:`` (the ``.tar.xz`` or its folder),
``motionsense:``, ``mobiact:`` (MobiAct or MobiFall v2), ``generic:`` (see :mod:`dysan.data.generic`) and
``synthetic`` / ``synthetic:subjects=N,seed=S``.

Loaded datasets are cached in ``$DYSAN_CACHE`` (default ``~/.cache/dysan``), keyed by a hash of the
source (file contents for an archive; names, sizes and times for a folder), of the loader's own code and of
the parameters, so a changed file or loader never serves stale data.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import contract
from ..errors import DataError, DysanError
from . import generic, mobiact, motionsense, resample, sisfall, synthetic, weda_fall
from .model import Dataset, Recording, Subject

LOADERS = {"sisfall": sisfall, "weda-fall": weda_fall, "motionsense": motionsense, "mobiact": mobiact,
           "generic": generic}
KINDS = (*LOADERS, "synthetic")


@dataclass(frozen=True)
class SourceSpec:
    kind: str
    path: Path | None
    params: dict[str, int]
    text: str


def parse_spec(text: str) -> SourceSpec:
    kind, sep, rest = text.partition(":")
    if kind == "synthetic":
        params = {"subjects": 16, "seed": 0}
        if rest:
            for item in rest.split(","):
                key, eq, value = item.partition("=")
                if key not in params or not eq or not value.isdigit():
                    raise DysanError(f"data source {text!r}: expected synthetic:subjects=N,seed=S")
                params[key] = int(value)
        return SourceSpec("synthetic", None, params, text)
    if kind not in LOADERS:
        raise DysanError(f"unknown data kind {kind!r} in {text!r} (known: {', '.join(KINDS)}; write KIND:PATH)")
    if not sep or not rest:
        raise DysanError(f"data source {text!r} lacks a path (write {kind}:PATH)")
    return SourceSpec(kind, Path(rest).expanduser(), {}, text)


def cache_dir() -> Path:
    return Path(os.environ.get("DYSAN_CACHE", Path.home() / ".cache" / "dysan"))


def _fingerprint(path: Path) -> str:
    h = hashlib.sha256()
    if path.is_file():
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    else:
        for f in sorted(path.rglob("*")):
            if f.is_file():
                st = f.stat()
                h.update(f"{f.relative_to(path)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _code_hash(kind: str) -> str:
    h = hashlib.sha256()
    for module in (LOADERS[kind], resample, contract):
        h.update(inspect.getsource(module).encode())
    return h.hexdigest()[:16]


def _save(ds: Dataset, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    lengths = np.array([len(r.signal) for r in ds.recordings], dtype=np.int64)
    meta = {
        "name": ds.name,
        "kind": ds.kind,
        "synthetic": ds.synthetic,
        "skipped": ds.skipped,
        "notes": ds.notes,
        "quirks": ds.quirks,
        "subjects": [s.to_dict() for s in ds.subjects.values()],
        "recordings": [[r.subject, r.activity, r.trial, r.source] for r in ds.recordings],
    }
    tmp = target.with_suffix(".tmp.npz")
    np.savez(tmp, signal=np.concatenate([r.signal for r in ds.recordings]), lengths=lengths,
             meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))
    tmp.replace(target)


def _restore(target: Path) -> Dataset:
    with np.load(target) as z:
        meta = json.loads(bytes(z["meta"]).decode())
        signal, lengths = z["signal"], z["lengths"]
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    recs = [
        Recording(subject=s, activity=a, trial=t, source=src, signal=signal[bounds[i]: bounds[i + 1]])
        for i, (s, a, t, src) in enumerate(meta["recordings"])
    ]
    subjects = {d["id"]: Subject.from_dict(d) for d in meta["subjects"]}
    return Dataset(name=meta["name"], kind=meta["kind"], recordings=recs, subjects=subjects,
                   skipped=meta["skipped"], synthetic=meta["synthetic"], notes=meta["notes"],
                   quirks=meta.get("quirks", {}))


def load(text: str, progress: Callable[[int, str], None] | None = None, use_cache: bool = True) -> Dataset:
    """Load a data source by spec, from the cache when the source and loader are unchanged."""
    spec = parse_spec(text)
    if spec.kind == "synthetic":
        return synthetic.generate(subjects=spec.params["subjects"], seed=spec.params["seed"], name=text)
    assert spec.path is not None
    if not spec.path.exists():
        raise DataError("no such file or folder", spec.path)
    key = None
    if use_cache:
        key = hashlib.sha256(
            json.dumps([spec.kind, _fingerprint(spec.path), _code_hash(spec.kind)]).encode()
        ).hexdigest()[:24]
        target = cache_dir() / f"{spec.kind}-{key}.npz"
        if target.is_file():
            try:
                ds = _restore(target)
                ds.name = text
                return ds
            except (OSError, ValueError, KeyError):
                target.unlink(missing_ok=True)
    ds = LOADERS[spec.kind].load(spec.path, name=text, progress=progress)
    if key is not None:
        try:
            _save(ds, cache_dir() / f"{spec.kind}-{key}.npz")
        except OSError as exc:
            ds.notes.append(f"cache not written ({exc})")
    return ds
