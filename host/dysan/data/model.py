"""The one in-memory structure every loader returns.

A :class:`Dataset` is a list of :class:`Recording` (one trial: a 50 Hz signal in the contract's channel
order and units, with the source's activity code) plus a table of :class:`Subject` attributes. Loaders do
not map activities to classes or pick the sensitive attribute: that is the job of
:mod:`dysan.data.activities` and :mod:`dysan.data.attributes`, so one loaded dataset serves any task.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import contract


@dataclass(frozen=True)
class Subject:
    """One person. ``gender`` is ``"F"`` or ``"M"``; numeric fields may be ``None`` when unknown."""

    id: str
    gender: str | None
    age: float | None
    height_cm: float | None
    weight_kg: float | None
    extra: dict[str, float | str] = field(default_factory=dict)

    def attribute(self, name: str) -> float | str | None:
        """Any attribute by name: the fixed fields first, then ``extra``."""
        fixed = {"gender": self.gender, "age": self.age, "height": self.height_cm, "weight": self.weight_kg}
        if name in fixed:
            return fixed[name]
        return self.extra.get(name)

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "gender": self.gender,
            "age": self.age,
            "height_cm": self.height_cm,
            "weight_kg": self.weight_kg,
            "extra": dict(self.extra),
        }

    @classmethod
    def from_dict(cls, d: dict) -> Subject:
        return cls(
            id=d["id"],
            gender=d["gender"],
            age=d["age"],
            height_cm=d["height_cm"],
            weight_kg=d["weight_kg"],
            extra=dict(d.get("extra", {})),
        )


@dataclass
class Recording:
    """One trial of one activity by one subject, resampled to the contract rate."""

    subject: str
    activity: str
    """The source's own activity code (``D01``, ``wlk``, ``STD``...); mapped to classes later."""
    trial: str
    signal: np.ndarray
    """``(n, 6)`` float32 in contract units (g with gravity, rad/s), at ``contract.RATE_HZ``."""
    source: str = ""
    """Where it came from (file name), for messages."""

    def __post_init__(self) -> None:
        if self.signal.ndim != 2 or self.signal.shape[1] != contract.N_CHANNELS:
            raise ValueError(f"recording signal must be (n, {contract.N_CHANNELS}), got {self.signal.shape}")


@dataclass
class Dataset:
    """Recordings plus subjects, with what the loader had to skip (never silently)."""

    name: str
    """The data source spec it was loaded from (``sisfall:...``, ``synthetic``)."""
    kind: str
    recordings: list[Recording]
    subjects: dict[str, Subject]
    skipped: dict[str, int] = field(default_factory=dict)
    """Reason -> count of files or rows skipped by a documented rule."""
    synthetic: bool = False
    notes: list[str] = field(default_factory=list)
    quirks: dict[str, int] = field(default_factory=dict)
    """Reason -> count of samples, rows or recordings whose quirk the loader *handled* by a documented rule
    instead of skipping them: reordered rows, re-timed bursts, bridged gaps, trimmed stream ends, clipped
    values kept as they are."""

    def skip(self, reason: str, n: int = 1) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + n

    @property
    def n_samples(self) -> int:
        return sum(len(r.signal) for r in self.recordings)

    def summary(self) -> dict:
        genders = [s.gender for s in self.subjects.values()]
        return {
            "name": self.name,
            "kind": self.kind,
            "synthetic": self.synthetic,
            "subjects": len(self.subjects),
            "female": genders.count("F"),
            "male": genders.count("M"),
            "recordings": len(self.recordings),
            "samples_50hz": self.n_samples,
            "skipped": dict(self.skipped),
            "quirks": dict(self.quirks),
        }
