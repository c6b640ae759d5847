"""A published data set read from the authors' archive or from the folder it unpacks to, the same way.

SisFall and WEDA-FALL ship as ``.tar.xz``; users pass either the archive as downloaded or its unpacked
folder, and the loaders must see the same thing in both cases: every file under the data set's top folder,
named relative to it (``SA01/D01_SA01_R01.txt``, ``dataset/50Hz/D01/U01_R01_accel.csv``). The archive is
streamed member by member, never unpacked to disk; a damaged or truncated archive, or a folder that is not
the data set, is one :class:`DataError` naming the path. Files a loader does not read are still listed
(``bytes`` None) so it can count them as skipped without paying for their contents.
"""

from __future__ import annotations

import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError


@dataclass(frozen=True)
class Layout:
    """Where a data set's files sit."""

    name: str
    """The data set's name in messages (``SisFall``)."""
    top: str
    """Its top folder: stripped from archive member names, and tried below a folder that is not the root."""
    archive: str
    """The archive's published file name (messages)."""
    markers: tuple[str, ...]
    """Paths every root folder has, relative to it; a trailing ``/`` marks a folder."""

    def is_root(self, folder: Path) -> bool:
        return all((folder / m.rstrip("/")).is_dir() if m.endswith("/") else (folder / m).is_file()
                   for m in self.markers)


def find_root(path: Path, layout: Layout) -> Path:
    """The unpacked data set's root: ``path`` itself or its ``top`` sub-folder."""
    for candidate in (path, path / layout.top):
        if layout.is_root(candidate):
            return candidate
    raise DataError(f"no {' and '.join(layout.markers)} here or in {layout.top}/ (expected the unpacked "
                    f"{layout.name} folder)", path)


def iter_members(path: Path, layout: Layout,
                 wanted: Callable[[str], bool] | None = None) -> Iterator[tuple[str, bytes | None]]:
    """``(name relative to the top folder, bytes)`` of every file of the archive or folder ``path``; bytes are
    None for the names ``wanted`` rejects (default: every file is read). Archive order, or sorted names."""
    if path.is_file():
        if not tarfile.is_tarfile(path):
            raise DataError(f"not a tar archive (expected {layout.archive} or its unpacked folder)", path)
        try:
            with tarfile.open(path, "r:*") as tar:
                for member in tar:
                    if not member.isfile():
                        continue
                    name = member.name.removeprefix("./").removeprefix(f"{layout.top}/")
                    if wanted is None or wanted(name):
                        f = tar.extractfile(member)
                        yield name, (f.read() if f is not None else b"")
                    else:
                        yield name, None
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise DataError(f"cannot read the archive ({exc}); is it complete?", path) from None
    else:
        root = find_root(path, layout)
        for f in sorted(root.rglob("*")):
            if f.is_file():
                name = str(f.relative_to(root))
                yield name, (f.read_bytes() if wanted is None or wanted(name) else None)
