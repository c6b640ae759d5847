"""Errors the CLI turns into one clear line (never a traceback)."""

from __future__ import annotations

from pathlib import Path


class DysanError(Exception):
    """A user-facing error: bad input, a missing file, an impossible configuration."""


class DataError(DysanError):
    """Bad input data, located as precisely as possible (file and line)."""

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None) -> None:
        self.path = str(path) if path is not None else None
        self.line = line
        where = ""
        if self.path is not None:
            where = self.path + (f":{line}" if line is not None else "") + ": "
        super().__init__(where + message)
