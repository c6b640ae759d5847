"""The calibration random forest: trained on the host, shipped to the device as *data* (a node table).

The forest is trained per user at calibration time, so the firmware cannot be recompiled for it: the host
converts it with emlearn (``emlearn.convert(..., method="loadable")``, whose flattened forest gives the
decision nodes, the roots and the leaves) and packs it into the table below, which the device loads into
its RF region and evaluates with ``firmware/core/src/dysan_rf.c``.

Two details make the device agree with scikit-learn on 100 % of windows:

- **Thresholds.** scikit-learn goes left when ``x <= t`` with float thresholds halfway between feature
  values; emlearn's int16 export truncates ``t`` and compares ``x < int(t)``, which is wrong for a positive
  ``t`` (``x == floor(t)`` goes right). Our features are integers, so we store ``floor(t) + 1`` and compare
  ``x < threshold``: exactly ``x <= t`` for every int16 ``x``.
- **Voting.** scikit-learn averages the trees' leaf probabilities (soft voting); emlearn and the device
  count one vote per tree (hard voting). They agree when every leaf is pure, which fully grown trees give
  (``min_samples_leaf=1``, no depth limit) unless two windows share all 64 features but not the label.
  :func:`train` checks purity and reports it; ties go to the lowest class index on both sides.

Table layout (little-endian): ``HEADER_FIELDS`` (40 bytes), roots (u16 per tree, padded to 4), nodes
(``NODE_FIELDS``, 8 bytes: feature, threshold, left, right; a child >= 0 is a node index, a child < 0 is
leaf ``-child - 1``), leaves (u8 class each). The constants are the single definition of
``firmware/core/include/dysan_rf_format.h``.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import numpy as np

from ..errors import DysanError
from ..features import N_FEATURES, window_features

MAGIC = 0x46525944  # "DYRF"
VERSION = 1
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

DEFAULT_TREES = 20


@dataclass
class CalibrationForest:
    """A trained forest, its node table and what the export found."""

    model: object
    table: bytes
    n_classes: int
    pure_leaves: bool
    n_nodes: int
    n_leaves: int

    def to_dict(self) -> dict:
        return {"table_bytes": len(self.table), "n_trees": len(self.model.estimators_), "n_nodes": self.n_nodes,
                "n_leaves": self.n_leaves, "n_classes": self.n_classes, "pure_leaves": self.pure_leaves}


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


def train(windows: np.ndarray, labels: np.ndarray, n_classes: int, seed: int = 0,
          n_trees: int = DEFAULT_TREES) -> CalibrationForest:
    """Train the calibration forest on raw int16 windows and pack it for the device."""
    from sklearn.ensemble import RandomForestClassifier

    labels = np.asarray(labels, dtype=np.int64)
    present = np.unique(labels)
    if len(present) < 2:
        raise DysanError("calibration needs windows of at least two activities")
    feats = window_features(windows)
    if not np.array_equal(present, np.arange(n_classes)):
        raise DysanError(f"calibration covered activities {present.tolist()} of 0..{n_classes - 1}: "
                         "record every activity")
    model = RandomForestClassifier(n_estimators=n_trees, random_state=seed, min_samples_leaf=1, n_jobs=1)
    model.fit(feats, labels)
    table, pure, n_nodes, n_leaves = table_from_sklearn(model)
    return CalibrationForest(model=model, table=table, n_classes=n_classes, pure_leaves=pure, n_nodes=n_nodes,
                             n_leaves=n_leaves)


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
