"""Sample streams to replay into the device (REPLAY mode: the emulator's IMU, benchmarks, tests).

The device sees int16 counts in the contract's channel order (``contract.to_counts``), one sample every
20 ms; a replayed recording is exactly that: a subject's recordings back to back, as an IMU would have
delivered them over a session. Windows cross recording boundaries on the device as they would on a wrist,
and the reference pipeline (:mod:`.reference`) cuts the same stream the same way.
"""

from __future__ import annotations

import numpy as np

from .. import contract
from ..data import Dataset
from ..errors import DysanError


def subject_samples(ds: Dataset, subject: str, activities: set[str] | None = None,
                    max_samples: int | None = None) -> np.ndarray:
    """One subject's recordings (optionally only those of the source activity codes ``activities``), back to
    back, as int16 counts ``(n, 6)``; at most ``max_samples`` of them."""
    recs = [r for r in ds.recordings if r.subject == subject and (activities is None or r.activity in activities)]
    if not recs:
        raise DysanError(f"no recording of subject {subject!r}" + (" for those activities" if activities else ""))
    samples = np.concatenate([contract.to_counts(r.signal) for r in recs])
    return samples[:max_samples] if max_samples is not None else samples


def samples_for_windows(n_windows: int) -> int:
    """Samples the device needs to complete ``n_windows`` windows (the first after WINDOW, then every HOP)."""
    return 0 if n_windows <= 0 else contract.WINDOW + contract.HOP * (n_windows - 1)
