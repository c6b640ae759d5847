"""Where ``dysan stream`` puts sanitized windows: CSV, Parquet or stdout, one row per sample.

Rows: ``boot, part, seq, sample, model_id, rf_label, flags`` and the six contract channels. Without a bundle
manifest the channel values are the device's int8 output as sent (the analytics service's raw material; the
model id says which sanitizer's quantization applies); with one they are dequantized to physical units
(g, rad/s): ``counts = denormalize((q - zp) * scale)`` with the sanitizer's output quantization and the
bundle's normalization, then counts to units (:func:`dysan.contract.from_counts`).

Durability is what makes the stream's ACKs honest: the stream acknowledges a window to the device only after
:meth:`Writer.flush` returned, so a window the device has forgotten is on disk.

* CSV / stdout: rows are appended and flushed (files also ``fsync``-ed) at each flush.
* Parquet cannot be appended to (its footer is written at close), so windows first go to a spool file next
  to the output (``FILE.parquet.spool``: fixed-size binary records, fsync-ed at each flush) and the Parquet
  file is written from it at close. A spool left by an interrupted run is picked up by the next run with
  the same ``--out``: its windows come first, nothing acknowledged is lost.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import struct
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import IO

import numpy as np

from .. import contract
from ..errors import DysanError
from ..preprocess import Normalization

WINDOW_VALUES = contract.WINDOW * contract.N_CHANNELS
_SPOOL_HEAD = struct.Struct("<4sHHIBBB")  # magic, boot, part, seq, model, rf_label, flags
_SPOOL_MAGIC = b"DYSW"
SPOOL_RECORD = _SPOOL_HEAD.size + WINDOW_VALUES
META_COLUMNS = ("boot", "part", "seq", "sample", "model_id", "rf_label", "flags")


class Dequantizer:
    """int8 sanitizer outputs -> physical units, per model, from an exported bundle's manifest."""

    def __init__(self, manifest: dict) -> None:
        self.norm = Normalization.from_dict(manifest["normalization"])
        self.quant: dict[int, tuple[float, int]] = {}
        for m in manifest["models"]:
            scale, zp = m["files"]["S"]["quantization"]["output"]
            self.quant[int(m["index"])] = (float(scale), int(zp))

    def __call__(self, model_id: int, data: np.ndarray) -> np.ndarray:
        if model_id not in self.quant:
            raise DysanError(f"model id {model_id} is not in the bundle manifest (another bundle on the device?)")
        scale, zp = self.quant[model_id]
        normalized = (data.astype(np.float32) - zp) * np.float32(scale)
        return contract.from_counts(self.norm.denormalize(normalized))


def columns(dequantized: bool) -> list[str]:
    if dequantized:
        return [*META_COLUMNS, *(f"{c}_{u.replace('/', '_per_')}" for c, u in zip(contract.CHANNELS, contract.UNITS,
                                                                             strict=True))]
    return [*META_COLUMNS, *contract.CHANNELS]


class Writer:
    """Base: ``write(boot, part, window)``, ``flush()``, ``close()``; counts windows written."""

    def __init__(self, dequantize: Dequantizer | None = None) -> None:
        self.dequantize = dequantize
        self.windows = 0
        #: boot numbers of this run start here (after those of an earlier run appended to the same output)
        self.first_boot = 0

    def _values(self, window) -> np.ndarray:
        data = np.frombuffer(window.data, dtype=np.int8).reshape(contract.WINDOW, contract.N_CHANNELS)
        return self.dequantize(window.model_id, data) if self.dequantize is not None else data

    def write(self, boot: int, part: int, window) -> None:
        raise NotImplementedError

    def flush(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.flush()

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class CsvWriter(Writer):
    """CSV rows to a file (appending; header when the file is new) or to stdout (``-``)."""

    def __init__(self, target: str | Path, dequantize: Dequantizer | None = None) -> None:
        super().__init__(dequantize)
        self.path = None if str(target) == "-" else Path(target)
        if self.path is None:
            self._f: IO[str] = sys.stdout
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            new = not self.path.exists() or self.path.stat().st_size == 0
            try:
                self._f = open(self.path, "a", newline="")  # noqa: SIM115 -- closed in close()
            except OSError as exc:
                raise DysanError(f"cannot write {self.path}: {exc.strerror}") from None
            if not new:
                with open(self.path, newline="") as f:
                    head = f.readline().strip().split(",")
                    last = ""
                    for line in f:
                        last = line or last
                if head != columns(dequantize is not None):
                    self._f.close()
                    raise DysanError(f"{self.path} exists with other columns (int8 vs dequantized?): "
                                     "choose another --out")
                if last.strip():
                    self.first_boot = int(last.split(",")[0]) + 1
        self._csv = csv.writer(self._f)
        if self.path is None or new:
            self._csv.writerow(columns(dequantize is not None))

    def write(self, boot: int, part: int, window) -> None:
        vals = self._values(window)
        fmt = (lambda v: f"{v:.6g}") if self.dequantize is not None else int
        head = [boot, part, window.seq]
        for i, row in enumerate(vals):
            self._csv.writerow([*head, i, window.model_id, window.rf_label, window.flags, *(fmt(v) for v in row)])
        self.windows += 1

    def flush(self) -> None:
        self._f.flush()
        if self.path is not None:
            with contextlib.suppress(OSError):
                os.fsync(self._f.fileno())

    def close(self) -> None:
        self.flush()
        if self.path is not None:
            self._f.close()


class ParquetWriter(Writer):
    """Spool-backed Parquet (see the module doc)."""

    def __init__(self, target: str | Path, dequantize: Dequantizer | None = None) -> None:
        super().__init__(dequantize)
        self.path = Path(target)
        self.spool_path = self.path.with_name(self.path.name + ".spool")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        #: windows recovered from the spool of an interrupted run
        self.recovered = 0
        if self.spool_path.exists():
            size = self.spool_path.stat().st_size
            self.recovered = size // SPOOL_RECORD
            if size % SPOOL_RECORD:  # a torn last record (power cut mid-write): it was never acknowledged
                with open(self.spool_path, "r+b") as f:
                    f.truncate(self.recovered * SPOOL_RECORD)
            self.windows = self.recovered
            if self.recovered:
                self.first_boot = max(w.boot for w in _read_spool(self.spool_path)) + 1
        self._spool = open(self.spool_path, "ab")  # noqa: SIM115 -- closed in close()

    def write(self, boot: int, part: int, window) -> None:
        head = _SPOOL_HEAD.pack(_SPOOL_MAGIC, boot, part, window.seq, window.model_id, window.rf_label, window.flags)
        self._spool.write(head + bytes(window.data))
        self.windows += 1

    def flush(self) -> None:
        self._spool.flush()
        os.fsync(self._spool.fileno())

    def close(self) -> None:
        self.flush()
        self._spool.close()
        table = _table(_read_spool(self.spool_path), self.dequantize)
        import pyarrow.parquet as pq

        tmp = self.path.with_name(self.path.name + ".tmp")
        pq.write_table(table, tmp)
        os.replace(tmp, self.path)
        self.spool_path.unlink()


class _SpooledWindow:
    __slots__ = ("boot", "data", "flags", "model_id", "part", "rf_label", "seq")


def _read_spool(path: Path) -> list[_SpooledWindow]:
    raw = path.read_bytes()
    out = []
    for off in range(0, len(raw) - SPOOL_RECORD + 1, SPOOL_RECORD):
        magic, boot, part, seq, model, label, flags = _SPOOL_HEAD.unpack_from(raw, off)
        if magic != _SPOOL_MAGIC:
            raise DysanError(f"{path}: corrupted spool record at byte {off}")
        w = _SpooledWindow()
        w.boot, w.part, w.seq, w.model_id, w.rf_label, w.flags = boot, part, seq, model, label, flags
        w.data = raw[off + _SPOOL_HEAD.size: off + SPOOL_RECORD]
        out.append(w)
    return out


def _table(windows: Iterable, dequantize: Dequantizer | None):
    import pyarrow as pa

    ws = list(windows)
    n = len(ws) * contract.WINDOW
    meta = {name: np.empty(n, dtype=np.int64) for name in META_COLUMNS}
    dtype = np.float32 if dequantize is not None else np.int8
    vals = np.empty((n, contract.N_CHANNELS), dtype=dtype)
    for i, w in enumerate(ws):
        sl = slice(i * contract.WINDOW, (i + 1) * contract.WINDOW)
        meta["boot"][sl], meta["part"][sl], meta["seq"][sl] = w.boot, w.part, w.seq
        meta["sample"][sl] = np.arange(contract.WINDOW)
        meta["model_id"][sl], meta["rf_label"][sl], meta["flags"][sl] = w.model_id, w.rf_label, w.flags
        data = np.frombuffer(w.data, dtype=np.int8).reshape(contract.WINDOW, contract.N_CHANNELS)
        vals[sl] = dequantize(w.model_id, data) if dequantize is not None else data
    cols = columns(dequantize is not None)
    arrays = {name: pa.array(meta[name].astype(np.uint32 if name == "seq" else np.int32)) for name in META_COLUMNS}
    for j, name in enumerate(cols[len(META_COLUMNS):]):
        arrays[name] = pa.array(vals[:, j])
    return pa.table(arrays)


def open_writer(target: str | None, dequantize: Dequantizer | None = None) -> Writer:
    """CSV for ``.csv`` and ``-``, Parquet for ``.parquet`` / ``.pq``; None discards (still acknowledges)."""
    if target is None:
        return NullWriter(dequantize)
    suffix = Path(target).suffix.lower()
    if target == "-" or suffix == ".csv":
        return CsvWriter(target, dequantize)
    if suffix in (".parquet", ".pq"):
        return ParquetWriter(target, dequantize)
    raise DysanError(f"--out {target}: use FILE.csv, FILE.parquet or - (stdout)")


class NullWriter(Writer):
    def write(self, boot: int, part: int, window) -> None:
        self.windows += 1

    def flush(self) -> None:
        pass


def read_windows(path: str | Path) -> list[dict]:
    """Windows back from a ``dysan stream`` output (CSV or Parquet, int8 columns): one dict per window with
    ``boot, part, seq, model_id, rf_label, flags, data`` (``data``: the 750 int8 bytes, sample-major)."""
    p = Path(path)
    if p.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        t = pq.read_table(p)
        cols = {c: t.column(c).to_numpy() for c in t.column_names}
    else:
        text = p.read_text()
        rows = list(csv.reader(io.StringIO(text)))
        head, body = rows[0], rows[1:]
        arr = np.asarray(body, dtype=np.float64) if body else np.zeros((0, len(head)))
        cols = {c: arr[:, i] for i, c in enumerate(head)}
    if contract.CHANNELS[0] not in cols:
        raise DysanError(f"{p}: dequantized output; read_windows needs the int8 columns")
    n = len(cols["seq"]) // contract.WINDOW
    vals = np.stack([np.asarray(cols[c]) for c in contract.CHANNELS], axis=1).astype(np.int8)
    out = []
    for i in range(n):
        r = i * contract.WINDOW
        out.append({k: int(cols[k][r]) for k in ("boot", "part", "seq", "model_id", "rf_label", "flags")}
                   | {"data": vals[r: r + contract.WINDOW].tobytes()})
    return out
