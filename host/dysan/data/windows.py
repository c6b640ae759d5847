"""Windowing: recordings -> int16 count windows of ``contract.WINDOW`` samples every ``contract.HOP``.

Windows are kept as int16 *counts* (:func:`dysan.contract.to_counts`), exactly what the device holds, so
every model trained here sees the data the wearable will see.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import contract
from ..errors import DysanError
from .activities import ActivityMap
from .attributes import Attribute
from .model import Dataset


@dataclass(frozen=True)
class RecordingInfo:
    subject: int
    code: str
    trial: str
    n_samples: int


@dataclass
class WindowSet:
    """Windows with their labels and where each came from."""

    x: np.ndarray
    """``(n, WINDOW, 6)`` int16 counts."""
    activity: np.ndarray
    """``(n,)`` class index into ``classes``."""
    sensitive: np.ndarray
    """``(n,)`` 0/1 value of the sensitive attribute."""
    subject: np.ndarray
    """``(n,)`` index into ``subjects``."""
    recording: np.ndarray
    """``(n,)`` index into ``recordings``."""
    start: np.ndarray
    """``(n,)`` first sample of the window in its recording."""
    classes: tuple[str, ...]
    attribute: Attribute
    subjects: tuple[str, ...]
    recordings: tuple[RecordingInfo, ...]
    source: str
    synthetic: bool
    hop: int = contract.HOP
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.x)

    def subset(self, idx: np.ndarray) -> WindowSet:
        idx = np.asarray(idx)
        return WindowSet(
            x=self.x[idx],
            activity=self.activity[idx],
            sensitive=self.sensitive[idx],
            subject=self.subject[idx],
            recording=self.recording[idx],
            start=self.start[idx],
            classes=self.classes,
            attribute=self.attribute,
            subjects=self.subjects,
            recordings=self.recordings,
            source=self.source,
            synthetic=self.synthetic,
            hop=self.hop,
            meta=dict(self.meta),
        )

    def subject_sensitive(self) -> np.ndarray:
        """Sensitive value per subject index (-1 for subjects without windows)."""
        out = np.full(len(self.subjects), -1, dtype=np.int64)
        out[self.subject] = self.sensitive
        return out

    def counts(self) -> dict:
        return {
            "windows": len(self),
            "per_class": {c: int((self.activity == i).sum()) for i, c in enumerate(self.classes)},
            "per_sensitive": {
                lab: int((self.sensitive == i).sum()) for i, lab in enumerate(self.attribute.labels)
            },
            "subjects": len(np.unique(self.subject)),
        }


def window_starts(n_samples: int, window: int = contract.WINDOW, hop: int = contract.HOP) -> np.ndarray:
    if n_samples < window:
        return np.zeros(0, dtype=np.int64)
    return np.arange(0, n_samples - window + 1, hop, dtype=np.int64)


def make_windows(
    ds: Dataset, activities: ActivityMap, attribute: Attribute, hop: int = contract.HOP
) -> WindowSet:
    """Cut every mapped recording into windows; recordings outside the map are counted, not windowed."""
    subjects = tuple(sorted(ds.subjects))
    subject_index = {s: i for i, s in enumerate(subjects)}
    sens_of = {s: attribute.value(ds.subjects[s]) for s in subjects}
    xs, act, sens, subj, rec, starts = [], [], [], [], [], []
    infos: list[RecordingInfo] = []
    outside = 0
    short = 0
    for r in ds.recordings:
        klass = activities.class_of(r.activity)
        ri = len(infos)
        infos.append(RecordingInfo(subject_index[r.subject], r.activity, r.trial, len(r.signal)))
        if klass is None:
            outside += 1
            continue
        st = window_starts(len(r.signal), contract.WINDOW, hop)
        if len(st) == 0:
            short += 1
            continue
        counts = contract.to_counts(r.signal)
        idx = st[:, None] + np.arange(contract.WINDOW)[None, :]
        xs.append(counts[idx])
        n = len(st)
        act.append(np.full(n, klass, dtype=np.int64))
        sens.append(np.full(n, sens_of[r.subject], dtype=np.int64))
        subj.append(np.full(n, subject_index[r.subject], dtype=np.int64))
        rec.append(np.full(n, ri, dtype=np.int64))
        starts.append(st)
    if not xs:
        raise DysanError(
            f"no windows: none of the recordings matches the activity map {activities.name!r} "
            f"with at least {contract.WINDOW} samples"
        )
    meta = {"recordings_outside_map": outside, "recordings_shorter_than_window": short}
    return WindowSet(
        x=np.concatenate(xs).astype(np.int16),
        activity=np.concatenate(act),
        sensitive=np.concatenate(sens),
        subject=np.concatenate(subj),
        recording=np.concatenate(rec),
        start=np.concatenate(starts),
        classes=activities.classes,
        attribute=attribute,
        subjects=subjects,
        recordings=tuple(infos),
        source=ds.name,
        synthetic=ds.synthetic,
        hop=hop,
        meta=meta,
    )
