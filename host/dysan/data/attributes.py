"""The sensitive attribute: which subject property the sanitizer hides, as a binary label.

``--attribute`` accepts

- ``gender`` (default): 0 = F, 1 = M;
- ``age-group``: SisFall's SA (19-30 y) = 0 vs SE (60-75 y) = 1 where the data says so, otherwise
  age < 45 = 0 vs age >= 45 = 1; ``age-group:T`` uses threshold T years instead;
- ``COLUMN:THRESHOLD``: any numeric subject column (``age``, ``height``, ``weight`` or an extra column of
  the generic format): 0 below the threshold, 1 at or above it.

A subject lacking the attribute is an error naming the subject (its windows would otherwise be silently
mislabeled).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import DysanError
from .model import Subject

DEFAULT_AGE_THRESHOLD = 45.0


@dataclass(frozen=True)
class Attribute:
    name: str
    labels: tuple[str, str]
    column: str
    threshold: float | None

    def value(self, subject: Subject) -> int:
        if self.column == "gender":
            if subject.gender not in ("F", "M"):
                raise DysanError(f"subject {subject.id} has no gender (F/M); choose another --attribute")
            return int(subject.gender == "M")
        if self.column == "age_group" and self.threshold is None:
            group = subject.extra.get("age_group")
            if group in ("SA", "SE"):
                return int(group == "SE")
            if subject.age is None:
                raise DysanError(f"subject {subject.id} has neither an age group nor an age")
            return int(subject.age >= DEFAULT_AGE_THRESHOLD)
        column = "age" if self.column == "age_group" else self.column
        raw = subject.attribute(column)
        if raw is None:
            raise DysanError(f"subject {subject.id} has no value for {column!r}")
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise DysanError(f"subject {subject.id}: {column}={raw!r} is not numeric") from None
        assert self.threshold is not None
        return int(value >= self.threshold)

    def to_dict(self) -> dict:
        return {"name": self.name, "labels": list(self.labels), "column": self.column, "threshold": self.threshold}


def parse(spec: str) -> Attribute:
    if spec == "gender":
        return Attribute("gender", ("F", "M"), "gender", None)
    if spec == "age-group":
        return Attribute("age-group", ("young", "elderly"), "age_group", None)
    if ":" in spec:
        column, _, thr = spec.partition(":")
        try:
            threshold = float(thr)
        except ValueError:
            raise DysanError(f"attribute {spec!r}: threshold {thr!r} is not a number") from None
        if column == "age-group":
            return Attribute(spec, (f"age<{thr}", f"age>={thr}"), "age_group", threshold)
        return Attribute(spec, (f"{column}<{thr}", f"{column}>={thr}"), column, threshold)
    raise DysanError(f"unknown attribute {spec!r} (gender, age-group, age-group:T or COLUMN:THRESHOLD)")
