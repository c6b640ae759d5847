"""Train/test splits for the two evaluation protocols (BRIEF §2).

``within-subject`` — the paper's protocol: every subject is on both sides, but no recorded moment is.
For each (subject, activity code): when the subject has at least ``n_folds`` trials of it, whole trials are
dealt to folds (shuffled by ``seed``); otherwise its trials are laid end to end in trial order and that
timeline is cut into ``n_folds`` contiguous time blocks, block ``k`` belonging to fold ``k``. A window
overlapping two blocks is dropped (counted in
``dropped_at_boundaries``), so overlapping windows never sit on both sides.

``new-users`` — subjects never seen in training: subject-grouped folds stratified by the sensitive
attribute (``StratifiedGroupKFold``, shuffled by ``seed``).

Every split carries ``info`` (protocol, fold, folds, seed, sizes) for the outputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from .. import contract
from ..errors import DysanError
from .windows import WindowSet

PROTOCOLS = ("within-subject", "new-users")


@dataclass
class Split:
    train: np.ndarray
    test: np.ndarray
    info: dict


def within_subject(ws: WindowSet, fold: int = 0, n_folds: int = 4, seed: int = 0) -> Split:
    if not 0 <= fold < n_folds or n_folds < 2:
        raise DysanError(f"fold {fold} outside 0..{n_folds - 1} (folds >= 2)")
    rng = np.random.default_rng(seed)
    fold_of = np.full(len(ws), -1, dtype=np.int64)
    groups: dict[tuple[int, str], list[int]] = {}
    for ri, info in enumerate(ws.recordings):
        groups.setdefault((info.subject, info.code), []).append(ri)
    by_recording: dict[int, np.ndarray] = {}
    order = np.argsort(ws.recording, kind="stable")
    rec_sorted = ws.recording[order]
    for ri in np.unique(rec_sorted):
        lo, hi = np.searchsorted(rec_sorted, [ri, ri + 1])
        by_recording[int(ri)] = order[lo:hi]
    by_trial = 0
    by_block = 0
    for key in sorted(groups):
        recs = [r for r in groups[key] if r in by_recording]
        if not recs:
            continue
        if len(recs) >= n_folds:
            # Rotate the first fold from group to group so no fold collects the extra trials.
            perm = rng.permutation(len(recs))
            for pos, j in enumerate(perm):
                fold_of[by_recording[recs[j]]] = (pos + by_trial) % n_folds
            by_trial += 1
        else:
            # Too few trials: lay them end to end (in trial order) and cut that timeline into blocks.
            by_block += 1
            recs.sort(key=lambda r: ws.recordings[r].trial)
            offsets = np.cumsum([0] + [ws.recordings[r].n_samples for r in recs])
            bounds = [round(k * offsets[-1] / n_folds) for k in range(n_folds + 1)]
            for r, offset in zip(recs, offsets[:-1], strict=True):
                idx = by_recording[r]
                st = ws.start[idx] + offset
                for k in range(n_folds):
                    inside = (st >= bounds[k]) & (st + contract.WINDOW <= bounds[k + 1])
                    fold_of[idx[inside]] = k
    test = np.flatnonzero(fold_of == fold)
    train = np.flatnonzero((fold_of >= 0) & (fold_of != fold))
    info = {
        "protocol": "within-subject",
        "fold": fold,
        "folds": n_folds,
        "seed": seed,
        "train_windows": len(train),
        "test_windows": len(test),
        "dropped_at_boundaries": int((fold_of < 0).sum()),
        "groups_split_by_trial": by_trial,
        "groups_split_by_time_block": by_block,
    }
    return Split(train=train, test=test, info=info)


def new_users(ws: WindowSet, fold: int = 0, n_folds: int = 5, seed: int = 0) -> Split:
    if not 0 <= fold < n_folds or n_folds < 2:
        raise DysanError(f"fold {fold} outside 0..{n_folds - 1} (folds >= 2)")
    present = np.unique(ws.subject)
    labels = ws.subject_sensitive()[present]
    minority = min(int((labels == 0).sum()), int((labels == 1).sum()))
    if len(present) < n_folds:
        raise DysanError(f"new-users needs at least {n_folds} subjects, the data has {len(present)}")
    if minority < n_folds:
        raise DysanError(
            f"new-users with {n_folds} folds needs {n_folds} subjects of each {ws.attribute.name} value; "
            f"the data has {minority} of one — use fewer --folds"
        )
    sgkf = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    _, subj_test = list(sgkf.split(present, labels, groups=present))[fold]
    test_subjects = present[subj_test]
    mask = np.isin(ws.subject, test_subjects)
    train, test = np.flatnonzero(~mask), np.flatnonzero(mask)
    info = {
        "protocol": "new-users",
        "fold": fold,
        "folds": n_folds,
        "seed": seed,
        "train_windows": len(train),
        "test_windows": len(test),
        "test_subjects": [ws.subjects[i] for i in test_subjects],
    }
    return Split(train=train, test=test, info=info)


def make_split(ws: WindowSet, protocol: str, fold: int = 0, n_folds: int | None = None, seed: int = 0) -> Split:
    if protocol == "within-subject":
        return within_subject(ws, fold, n_folds or 4, seed)
    if protocol == "new-users":
        return new_users(ws, fold, n_folds or 5, seed)
    raise DysanError(f"unknown protocol {protocol!r} (choose {' or '.join(PROTOCOLS)})")
