"""A subject's recorded samples standing in for the wearable's IMU (``--replay SPEC --subject ID``).

The emulated device has no IMU: in REPLAY mode it takes SAMPLES frames instead, and everything after that
(windowing, preprocessing, RF, selection, sanitizing) runs as it would on a sensor's data. This module cuts
the samples to push out of any data source (``sisfall:...``, ``synthetic``...), as the int16 counts an IMU
driver would deliver (:func:`dysan.contract.to_counts`):

* :meth:`ReplaySource.activity_samples` -- one activity class of the subject (a calibration step), the
  subject's recordings of that class back to back, in the dataset's order;
* :meth:`ReplaySource.stream_samples` -- a stream that visits the activities in turn, ``chunk`` seconds of
  each, as a day would; ``skip`` seconds of each activity are left out first (e.g. what calibration used).

Both are deterministic functions of (source, subject, arguments), so a test can recompute exactly what a
verb pushed and run the Python reference on it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import contract
from ..data import activities as activities_mod
from ..data import attributes as attributes_mod
from ..data import load
from ..data.model import Dataset
from ..device.stream_replay import samples_for_windows, subject_samples
from ..errors import DysanError


@dataclass
class ReplaySource:
    spec: str
    subject: str
    dataset: Dataset
    amap: activities_mod.ActivityMap

    @property
    def activities(self) -> tuple[str, ...]:
        """The activity classes, in class-index order (the RF's and the predictors' labels)."""
        return self.amap.classes

    def sensitive(self, attribute: str = "gender") -> int:
        """The subject's sensitive value (0/1) for ``attribute``: what the user would state."""
        return attributes_mod.parse(attribute).value(self.dataset.subjects[self.subject])

    def activity_samples(self, activity: str | int) -> np.ndarray:
        """int16 counts ``(n, 6)`` of every recording of the subject in that class, back to back."""
        k = self._class_index(activity)
        try:
            return subject_samples(self.dataset, self.subject, set(self.amap.codes[k]))
        except DysanError:
            raise DysanError(f"subject {self.subject} has no recording of activity "
                             f"{self.amap.classes[k]!r} in {self.spec}") from None

    def stream_samples(self, n_samples: int | None = None, chunk_s: float = 10.0, skip_s: float = 0.0) -> np.ndarray:
        """A stream cycling through the activities, ``chunk_s`` seconds of each (see the module doc).

        ``n_samples``: stop there (None: until every activity's data is used up)."""
        chunk = max(1, round(chunk_s * contract.RATE_HZ))
        skip = max(0, round(skip_s * contract.RATE_HZ))
        per = []
        for a in self.activities:
            try:
                per.append(self.activity_samples(a)[skip:])
            except DysanError:
                per.append(np.zeros((0, contract.N_CHANNELS), np.int16))
        pos = [0] * len(per)
        out: list[np.ndarray] = []
        total = 0
        while n_samples is None or total < n_samples:
            progressed = False
            for i, s in enumerate(per):
                if pos[i] >= len(s):
                    continue
                take = s[pos[i]: pos[i] + chunk]
                if n_samples is not None:
                    take = take[: n_samples - total]
                pos[i] += len(take)
                out.append(take)
                total += len(take)
                progressed = progressed or len(take) > 0
                if n_samples is not None and total >= n_samples:
                    break
            if not progressed:
                break
        if not out:
            return np.zeros((0, contract.N_CHANNELS), np.int16)
        return np.concatenate(out).astype(np.int16)

    def _class_index(self, activity: str | int) -> int:
        if isinstance(activity, int):
            if not 0 <= activity < len(self.amap.classes):
                raise DysanError(f"activity index {activity} outside 0..{len(self.amap.classes) - 1}")
            return activity
        if activity not in self.amap.classes:
            raise DysanError(f"activity {activity!r} is not a class of the {self.amap.name!r} map "
                             f"({', '.join(self.amap.classes)})")
        return self.amap.classes.index(activity)


def open_replay(spec: str, subject: str, activity_map: str = "default") -> ReplaySource:
    """Loads ``spec`` (cached by the data layer) and checks that ``subject`` is in it."""
    ds = load(spec)
    if subject not in ds.subjects:
        known = sorted(ds.subjects)
        shown = ", ".join(known[:12]) + (" ..." if len(known) > 12 else "")
        raise DysanError(f"subject {subject!r} not in {spec} (subjects: {shown})")
    amap = activities_mod.resolve(activity_map, ds.kind, {r.activity for r in ds.recordings})
    return ReplaySource(spec, subject, ds, amap)


def windows_in(n_samples: int) -> int:
    """Windows the device completes from ``n_samples`` samples of one stream."""
    return 0 if n_samples < contract.WINDOW else 1 + (n_samples - contract.WINDOW) // contract.HOP


def samples_for(n_windows: int) -> int:
    """Samples of a stream that make exactly ``n_windows`` windows."""
    return samples_for_windows(n_windows)
