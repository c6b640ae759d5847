"""The calibration random forest: trained on the host, shipped to the device as *data* (a node table).

**What it learns from.** Per user, at calibration time: the user's calibration windows (the first seconds of
each activity) *and*, when one is available, a **population** — the integer features and activity labels of
the run's training windows, which ``dysan export`` ships beside the bundle (``calibration_population.npz``,
:class:`Population`). The forest is fitted on the population plus the user's calibration windows, each of
those weighted ``CALIBRATION_WEIGHT`` times a population window, with ``DEFAULT_TREES`` trees of at most
``DEFAULT_MAX_LEAVES`` leaves so the table fits the device's 16 KB RF region. Five seconds per activity show
a forest too little of a user's stairs: alone they label SisFall's scored windows at 77-81 %, with the
population at 92-95 % (``dysan bench --steps calibration``, docs/evaluation.md). Without a population (no
bundle) the forest is the user's windows alone, fully grown.

The forest is trained per user, so the firmware cannot be recompiled for it: the host converts it with
emlearn (``emlearn.convert(..., method="loadable")``, whose flattened forest gives the
decision nodes, the roots and the leaves) and packs it into the table below, which the device loads into
its RF region and evaluates with ``firmware/core/src/dysan_rf.c``.

Two details make the device's labels those of :func:`predict` on 100 % of windows:

- **Thresholds.** scikit-learn goes left when ``x <= t`` with float thresholds halfway between feature
  values; emlearn's int16 export truncates ``t`` and compares ``x < int(t)``, which is wrong for a positive
  ``t`` (``x == floor(t)`` goes right). Our features are integers, so we store ``floor(t) + 1`` and compare
  ``x < threshold``: exactly ``x <= t`` for every int16 ``x``.
- **Voting.** scikit-learn averages the trees' leaf probabilities (soft voting); emlearn and the device
  give each leaf its majority class (lowest index on a tie) and count one vote per tree (hard voting, ties
  to the lowest class). Size-limited trees have impure leaves, so labels on the host always come from
  :func:`predict` (the device's hard vote, vectorized), never from scikit-learn's ``predict``.

Table layout (little-endian): ``HEADER_FIELDS`` (40 bytes), roots (u16 per tree, padded to 4), nodes
(``NODE_FIELDS``, 8 bytes: feature, threshold, left, right; a child >= 0 is a node index, a child < 0 is
leaf ``-child - 1``), leaves (u8 class each). The constants are the single definition of
``firmware/core/include/dysan_rf_format.h``.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DysanError
from ..features import N_FEATURES, calibration_features

MAGIC = 0x46525944  # "DYRF"
VERSION = 2
"""2: the 92 features of :func:`dysan.features.calibration_features` (1: 64 features)."""
MAX_TREES = 64
MAX_NODES = 4096
HEADER_FIELDS: tuple[tuple[str, str], ...] = (
    ("magic", "I"),
    ("version", "H"),
    ("header_size", "H"),
    ("table_size", "I"),
    ("n_features", "H"),
    ("n_classes", "H"),
    ("n_trees", "H"),
    ("flags", "H"),
    ("n_nodes", "I"),
    ("n_leaves", "I"),
    ("roots_off", "I"),
    ("nodes_off", "I"),
    ("leaves_off", "I"),
)
NODE_FIELDS: tuple[tuple[str, str], ...] = (("feature", "H"), ("threshold", "h"), ("left", "h"), ("right", "h"))
HEADER_FMT = "<" + "".join(c for _, c in HEADER_FIELDS)
NODE_FMT = "<" + "".join(c for _, c in NODE_FIELDS)
HEADER_SIZE = struct.calcsize(HEADER_FMT)
NODE_SIZE = struct.calcsize(NODE_FMT)
assert HEADER_SIZE == 40 and NODE_SIZE == 8, (HEADER_SIZE, NODE_SIZE)

REGION_BYTES = 16 * 1024
"""The device's RF region (firmware/ports/README.md, ``boards.py``): the most a table may take."""
DEFAULT_TREES = 12
DEFAULT_MAX_LEAVES = 150
"""Leaves per tree with a population: 12 trees of <= 150 leaves fit the region by construction (40 + 24 + 12 x
(149 x 8 + 150) = 16,168 bytes at most; 14,372 measured on SisFall). Shapes of the same size with more,
smaller trees or fewer, larger ones labelled SisFall no better when this was chosen."""
USER_ONLY_TREES = 20
"""Without a population: fully grown trees on the calibration windows alone (a few KB)."""
CALIBRATION_WEIGHT = 30.0
"""Weight of one calibration window against one population window."""
POPULATION_FORMAT = 1


@dataclass
class Population:
    """Features and activity labels of many people's windows, the forest's prior (see the module doc)."""

    features: np.ndarray
    """``(n, N_FEATURES)`` int16, :func:`dysan.features.calibration_features` of raw count windows."""
    labels: np.ndarray
    n_classes: int

    def __post_init__(self) -> None:
        self.features = np.asarray(self.features, dtype=np.int16)
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if self.features.ndim != 2 or self.features.shape[1] != N_FEATURES or len(self.labels) != len(self.features):
            raise DysanError(f"population features must be (n, {N_FEATURES}) with one label each: the features "
                             "changed since it was exported (export the bundle again)")

    @classmethod
    def from_windows(cls, windows: np.ndarray, labels: np.ndarray, n_classes: int) -> Population:
        return cls(calibration_features(windows), labels, n_classes)

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, keep: np.ndarray) -> Population:
        return Population(self.features[keep], self.labels[keep], self.n_classes)

    def save(self, path: Path) -> None:
        np.savez_compressed(path, format=POPULATION_FORMAT, rf_version=VERSION, features=self.features,
                            labels=self.labels.astype(np.int8), n_classes=self.n_classes)

    @classmethod
    def load(cls, path: Path) -> Population:
        try:
            with np.load(path) as z:
                if int(z["format"]) != POPULATION_FORMAT or int(z["rf_version"]) != VERSION:
                    raise DysanError(f"{path}: calibration population of another format (export the bundle again)")
                return cls(z["features"], z["labels"], int(z["n_classes"]))
        except (OSError, KeyError, ValueError) as exc:
            raise DysanError(f"{path}: not a calibration population ({exc})") from None


@dataclass
class CalibrationForest:
    """A trained forest, its node table and what the export found."""

    model: object
    table: bytes
    n_classes: int
    pure_leaves: bool
    n_nodes: int
    n_leaves: int
    population_windows: int = 0
    calibration_windows: int = 0

    def predict(self, features: np.ndarray) -> np.ndarray:
        """The device's labels for ``calibration_features`` rows (hard vote; see the module doc)."""
        return predict(self.model, features)

    def to_dict(self) -> dict:
        return {"table_bytes": len(self.table), "n_trees": len(self.model.estimators_), "n_nodes": self.n_nodes,
                "n_leaves": self.n_leaves, "n_classes": self.n_classes, "pure_leaves": self.pure_leaves,
                "population_windows": self.population_windows, "calibration_windows": self.calibration_windows,
                "calibration_weight": CALIBRATION_WEIGHT if self.population_windows else None,
                "features": N_FEATURES}


def predict(model, features: np.ndarray) -> np.ndarray:
    """Hard vote of a fitted forest as the device counts it: each tree's leaf majority, ties to the lowest class."""
    feats = np.asarray(features, dtype=np.float32)
    n_classes = int(model.n_classes_)
    votes = np.zeros((len(feats), n_classes), dtype=np.int64)
    rows = np.arange(len(feats))
    for est in model.estimators_:
        leaf_value = est.tree_.value[est.apply(feats), 0, :]  # (n, classes): argmax = lowest index on ties
        votes[rows, leaf_value.argmax(axis=1)] += 1
    return votes.argmax(axis=1)


def _align4(n: int) -> int:
    return (n + 3) // 4 * 4


def table_from_sklearn(model) -> tuple[bytes, bool, int, int]:
    """Pack a fitted ``RandomForestClassifier`` via emlearn's flattened forest. Returns (table, pure, n, l)."""
    saved = np.geterr()
    try:
        import emlearn  # its bayes module calls numpy.seterr(all="raise") at import: undo that below
    finally:
        np.seterr(**saved)

    n_features = int(model.n_features_in_)
    n_classes = int(model.n_classes_)
    if n_features > 0xFFFF or n_classes > 255:
        raise DysanError("random forest too wide for the device table")
    if not np.array_equal(model.classes_, np.arange(n_classes)):
        raise DysanError("train the forest on class indices 0..n-1")
    converted = emlearn.convert(model, method="loadable", dtype="int16_t")
    nodes, roots, leaves = converted.forest_
    # emlearn's flat nodes keep sklearn's float thresholds until C generation; map each to floor(t) + 1.
    packed_nodes = []
    for feature, threshold, left, right in nodes:
        th = math.floor(float(threshold)) + 1
        if not -32768 <= th <= 32767:
            raise DysanError(f"threshold {threshold} outside int16: features must be int16")
        packed_nodes.append((int(feature), th, int(left), int(right)))
    leaf_classes = [int(v) for v in leaves]
    if len(roots) > MAX_TREES or len(packed_nodes) > MAX_NODES:
        raise DysanError(f"forest too large for the device ({len(roots)} trees, {len(packed_nodes)} nodes; "
                         f"at most {MAX_TREES} and {MAX_NODES})")
    pure = all(
        float(np.max(v[0])) >= 1.0 - 1e-12
        for est in model.estimators_
        for v, left in zip(est.tree_.value, est.tree_.children_left, strict=True)
        if left == -1
    )
    roots_off = HEADER_SIZE
    nodes_off = _align4(roots_off + 2 * len(roots))
    leaves_off = nodes_off + NODE_SIZE * len(packed_nodes)
    size = _align4(leaves_off + len(leaf_classes))
    out = bytearray(size)
    struct.pack_into(HEADER_FMT, out, 0, MAGIC, VERSION, HEADER_SIZE, size, n_features, n_classes, len(roots),
                     0, len(packed_nodes), len(leaf_classes), roots_off, nodes_off, leaves_off)
    struct.pack_into(f"<{len(roots)}H", out, roots_off, *[int(r) for r in roots])
    for i, node in enumerate(packed_nodes):
        struct.pack_into(NODE_FMT, out, nodes_off + i * NODE_SIZE, *node)
    out[leaves_off:leaves_off + len(leaf_classes)] = bytes(leaf_classes)
    return bytes(out), pure, len(packed_nodes), len(leaf_classes)


def predict_table(table: bytes, features: np.ndarray) -> np.ndarray:
    """The device's evaluation of a node table, in Python (hard voting, ties to the lowest class)."""
    hdr = dict(zip([n for n, _ in HEADER_FIELDS], struct.unpack_from(HEADER_FMT, table, 0), strict=True))
    if hdr["magic"] != MAGIC or hdr["version"] != VERSION:
        raise DysanError("not a DySan RF table")
    roots = struct.unpack_from(f"<{hdr['n_trees']}H", table, hdr["roots_off"])
    nodes = [struct.unpack_from(NODE_FMT, table, hdr["nodes_off"] + i * NODE_SIZE) for i in range(hdr["n_nodes"])]
    leaves = table[hdr["leaves_off"]:hdr["leaves_off"] + hdr["n_leaves"]]
    feats = np.asarray(features, dtype=np.int64)
    out = np.empty(len(feats), dtype=np.int64)
    for i, f in enumerate(feats):
        votes = [0] * hdr["n_classes"]
        for root in roots:
            idx = root
            while idx >= 0:
                feature, threshold, left, right = nodes[idx]
                idx = left if f[feature] < threshold else right
            votes[leaves[-idx - 1]] += 1
        out[i] = int(np.argmax(votes))
    return out


def train(windows: np.ndarray, labels: np.ndarray, n_classes: int, seed: int = 0, n_trees: int | None = None,
          population: Population | None = None, max_leaves: int = DEFAULT_MAX_LEAVES) -> CalibrationForest:
    """Train the calibration forest on a user's raw int16 windows (and a population) and pack it for the device."""
    from sklearn.ensemble import RandomForestClassifier

    labels = np.asarray(labels, dtype=np.int64)
    present = np.unique(labels)
    if len(present) < 2:
        raise DysanError("calibration needs windows of at least two activities")
    if not np.array_equal(present, np.arange(n_classes)):
        raise DysanError(f"calibration covered activities {present.tolist()} of 0..{n_classes - 1}: "
                         "record every activity")
    feats = calibration_features(windows)
    if population is None:
        model = RandomForestClassifier(n_estimators=n_trees or USER_ONLY_TREES, random_state=seed,
                                       min_samples_leaf=1, n_jobs=1)
        model.fit(feats, labels)
    else:
        if population.n_classes != n_classes:
            raise DysanError(f"the calibration population has {population.n_classes} activities, the "
                             f"calibration {n_classes}")
        x = np.concatenate([population.features, feats])
        y = np.concatenate([population.labels, labels])
        weight = np.concatenate([np.ones(len(population)), np.full(len(feats), CALIBRATION_WEIGHT)])
        model = RandomForestClassifier(n_estimators=n_trees or DEFAULT_TREES, max_leaf_nodes=max_leaves,
                                       criterion="entropy", random_state=seed, n_jobs=1)
        model.fit(x, y, sample_weight=weight)
    table, pure, n_nodes, n_leaves = table_from_sklearn(model)
    return CalibrationForest(model=model, table=table, n_classes=n_classes, pure_leaves=pure, n_nodes=n_nodes,
                             n_leaves=n_leaves, population_windows=0 if population is None else len(population),
                             calibration_windows=len(feats))


def render_c_header() -> str:
    from ..codegen.contract_h import HEADER

    out = [HEADER.format(src="calibration/rf.py").rstrip(), "#ifndef DYSAN_RF_FORMAT_H",
           "#define DYSAN_RF_FORMAT_H", "",
           f'#define DYSAN_RF_MAGIC 0x{MAGIC:08X}u /* "DYRF" */', f"#define DYSAN_RF_VERSION {VERSION}u",
           f"#define DYSAN_RF_MAX_TREES {MAX_TREES}u", f"#define DYSAN_RF_MAX_NODES {MAX_NODES}u",
           f"#define DYSAN_RF_N_FEATURES {N_FEATURES}u", "",
           f"#define DYSAN_RF_HDR_SIZE {HEADER_SIZE}u"]
    off = 0
    for name, code in HEADER_FIELDS:
        out.append(f"#define DYSAN_RF_HDR_{name.upper()} {off}u")
        off += struct.calcsize("<" + code)
    out += ["", f"#define DYSAN_RF_NODE_SIZE {NODE_SIZE}u"]
    off = 0
    for name, code in NODE_FIELDS:
        out.append(f"#define DYSAN_RF_NODE_{name.upper()} {off}u")
        off += struct.calcsize("<" + code)
    out += ["", "#endif /* DYSAN_RF_FORMAT_H */", ""]
    return "\n".join(out)
