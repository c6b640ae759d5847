"""Activity maps: from a source's activity codes to the classes a model learns.

Built-in maps, per data kind (``--activities NAME``):

======== =============== ==================================================================
kind     map             classes (source codes)
======== =============== ==================================================================
sisfall  ``default``     walk (D01 D02), jog (D03 D04), stairs (D05 D06), sit/stand (D07-D10)
sisfall  ``with-falls``  the four above + fall (F01-F15)
weda-fall ``default``    walk (D01), jog (D02), stairs (D03, up and down in one code), sit/stand (D04)
weda-fall ``with-falls`` the four above + fall (F01-F08)
motionsense ``default``  walk (wlk), jog (jog), stairs (ups dws), sit/stand (sit std)
mobiact  ``default``     walk (WAL), jog (JOG), stairs (STU STN), sit/stand (STD SIT SCH CHU)
synthetic ``default``    walk, jog, stairs, sit/stand (the generator's own codes)
generic  ``default``     one class per distinct activity name, sorted
======== =============== ==================================================================

Or a JSON file ``{"class name": ["code", ...], ...}`` (class order = file order). Recordings whose code is
in no class are left out of the windows and counted in the summary ("recordings outside the activity map").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import DysanError

_SISFALL_4 = {
    "walk": ["D01", "D02"],
    "jog": ["D03", "D04"],
    "stairs": ["D05", "D06"],
    "sit/stand": ["D07", "D08", "D09", "D10"],
}
_WEDA_4 = {"walk": ["D01"], "jog": ["D02"], "stairs": ["D03"], "sit/stand": ["D04"]}
BUILTIN: dict[str, dict[str, dict[str, list[str]]]] = {
    "sisfall": {
        "default": _SISFALL_4,
        "with-falls": {**_SISFALL_4, "fall": [f"F{i:02d}" for i in range(1, 16)]},
    },
    "weda-fall": {
        "default": _WEDA_4,
        "with-falls": {**_WEDA_4, "fall": [f"F{i:02d}" for i in range(1, 9)]},
    },
    "motionsense": {
        "default": {"walk": ["wlk"], "jog": ["jog"], "stairs": ["ups", "dws"], "sit/stand": ["sit", "std"]}
    },
    "mobiact": {
        "default": {
            "walk": ["WAL"],
            "jog": ["JOG"],
            "stairs": ["STU", "STN"],
            "sit/stand": ["STD", "SIT", "SCH", "CHU"],
        }
    },
    "synthetic": {
        "default": {"walk": ["walk"], "jog": ["jog"], "stairs": ["stairs"], "sit/stand": ["sitstand"]}
    },
}


@dataclass(frozen=True)
class ActivityMap:
    """An ordered mapping class -> source codes."""

    name: str
    classes: tuple[str, ...]
    codes: tuple[tuple[str, ...], ...]

    def class_of(self, code: str) -> int | None:
        for i, codes in enumerate(self.codes):
            if code in codes:
                return i
        return None

    def to_dict(self) -> dict:
        return {"name": self.name, "classes": {c: list(k) for c, k in zip(self.classes, self.codes, strict=True)}}

    @classmethod
    def from_mapping(cls, name: str, mapping: dict[str, list[str]]) -> ActivityMap:
        if not mapping:
            raise DysanError(f"activity map {name!r} has no classes")
        seen: dict[str, str] = {}
        for klass, codes in mapping.items():
            if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
                raise DysanError(f"activity map {name!r}: class {klass!r} must list code strings")
            for code in codes:
                if code in seen:
                    raise DysanError(f"activity map {name!r}: code {code!r} is in both {seen[code]!r} and {klass!r}")
                seen[code] = klass
        return cls(name=name, classes=tuple(mapping), codes=tuple(tuple(v) for v in mapping.values()))


def resolve(spec: str, kind: str, codes_present: set[str]) -> ActivityMap:
    """A built-in map name for ``kind`` or a JSON file path."""
    if spec.endswith(".json") or Path(spec).is_file():
        path = Path(spec)
        try:
            mapping = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise DysanError(f"{path}: cannot read the activity map ({exc})") from None
        if not isinstance(mapping, dict):
            raise DysanError(f"{path}: an activity map is a JSON object {{class: [codes]}}")
        return ActivityMap.from_mapping(str(path), mapping)
    if kind == "generic" and spec == "default":
        return ActivityMap.from_mapping("default", {c: [c] for c in sorted(codes_present)})
    maps = BUILTIN.get(kind, {})
    if spec not in maps:
        known = ", ".join(sorted(maps)) or "none"
        raise DysanError(f"unknown activity map {spec!r} for {kind} data (built-in: {known}; or a JSON file)")
    return ActivityMap.from_mapping(spec, maps[spec])
