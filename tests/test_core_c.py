"""The portable C core against its Python definitions: features, the RF table, input quantization."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from dysan import contract
from dysan.calibration import rf
from dysan.features import N_FEATURES, calibration_features
from dysan.preprocess import Normalization, quantize_input
from dysan.testing.core_shim import CoreShim, build


@pytest.fixture(scope="module")
def core():
    return CoreShim(build())


def test_features_bit_exact(core, synthetic_windows):
    _, ws = synthetic_windows
    rng = np.random.default_rng(3)
    extreme = rng.integers(-32768, 32768, size=(40, contract.WINDOW, contract.N_CHANNELS)).astype(np.int16)
    extreme[0] = -32768
    extreme[1] = 32767
    extreme[2] = 0
    extreme[3, :, :3] = 1  # tiny gravity: a unit vector longer than 2^14
    extreme[4, :, :3] = (-32768, -32768, 32767)  # largest |a . u|
    extreme[5] = rng.integers(-3, 4, size=extreme[5].shape)  # near-zero autocorrelation energy
    windows = np.concatenate([ws.x[::5], extreme])
    np.testing.assert_array_equal(core.features(windows), calibration_features(windows))


def test_quantization_bit_exact(core):
    rng = np.random.default_rng(4)
    counts = rng.integers(-32768, 32768, size=(3000, contract.N_CHANNELS)).astype(np.int16)
    norm = Normalization(center=(-12, -2000, 300, 0, -5, 9), scale=(310.5, 280.0, 400.2, 120.0, 90.5, 60.0))
    for s_in, zp in ((0.031, -3), (0.2, 40), (0.004, -128)):
        mult = norm.multipliers(s_in)
        np.testing.assert_array_equal(core.quantize(counts, norm.center, mult, zp),
                                      quantize_input(counts, norm.center, mult, zp))


def test_rf_table_matches_sklearn_everywhere(core, synthetic_windows):
    """emlearn export + our thresholds: C, Python table evaluator and scikit-learn agree on 100 %."""
    _, ws = synthetic_windows
    calib = np.arange(0, len(ws), 4)
    forest = rf.train(ws.x[calib], ws.activity[calib], len(ws.classes), seed=1)
    assert forest.pure_leaves
    feats = calibration_features(ws.x)
    want = forest.model.predict(feats)
    np.testing.assert_array_equal(forest.predict(feats), want)
    np.testing.assert_array_equal(rf.predict_table(forest.table, feats), want)
    np.testing.assert_array_equal(core.rf_predict(forest.table, feats), want)


def test_population_forest_hard_vote_everywhere(core, synthetic_windows):
    """Size-limited trees (impure leaves, weighted calibration windows): rf.predict is the device's vote."""
    _, ws = synthetic_windows
    pop = rf.Population.from_windows(ws.x[1::3], ws.activity[1::3], len(ws.classes))
    calib = np.arange(0, len(ws), 9)
    with np.errstate(**np.geterr()):
        forest = rf.train(ws.x[calib], ws.activity[calib], len(ws.classes), seed=3, population=pop, max_leaves=12)
    assert not forest.pure_leaves and len(forest.table) <= rf.REGION_BYTES
    feats = calibration_features(ws.x)
    want = forest.predict(feats)
    np.testing.assert_array_equal(rf.predict_table(forest.table, feats), want)
    np.testing.assert_array_equal(core.rf_predict(forest.table, feats), want)


def test_rf_thresholds_at_integer_boundaries(core):
    """Features equal to floor(threshold) must go left, as in scikit-learn (emlearn's int cast does not)."""
    rng = np.random.default_rng(5)
    windows = rng.integers(-50, 50, size=(200, contract.WINDOW, contract.N_CHANNELS)).astype(np.int16)
    labels = np.arange(200) % 3
    forest = rf.train(windows, labels, 3, seed=2, n_trees=5)
    feats = calibration_features(windows)
    # probe every threshold t at floor(t) and floor(t) + 1 on its feature
    probes = []
    for est in forest.model.estimators_:
        tree = est.tree_
        for f, t in zip(tree.feature, tree.threshold, strict=True):
            if f >= 0:
                for v in (np.floor(t), np.floor(t) + 1):
                    row = feats[0].copy()
                    row[f] = int(v)
                    probes.append(row)
    probes = np.array(probes, dtype=np.int16)
    np.testing.assert_array_equal(core.rf_predict(forest.table, probes), forest.model.predict(probes))


def test_rf_table_rejects_corruption(core, synthetic_windows):
    _, ws = synthetic_windows
    forest = rf.train(ws.x[::6], ws.activity[::6], len(ws.classes), n_trees=4)
    t = bytearray(forest.table)
    assert core.rf_load_status(bytes(t)) == 0
    assert core.rf_load_status(bytes(t[:20])) == -2
    bad = bytearray(t)
    bad[0] ^= 1
    assert core.rf_load_status(bytes(bad)) == -3
    # a child pointing back to its parent would loop forever: refused
    nodes_off = struct.unpack_from("<I", t, 32)[0]
    loop = bytearray(t)
    struct.pack_into("<h", loop, nodes_off + 4, 0)
    assert core.rf_load_status(bytes(loop)) == -7
    # a feature index past the features
    feat = bytearray(t)
    struct.pack_into("<H", feat, nodes_off, N_FEATURES)
    assert core.rf_load_status(bytes(feat)) == -7
    rng = np.random.default_rng(0)
    for _ in range(300):  # random byte flips never crash the loader (each is accepted or refused)
        m = bytearray(t)
        for pos in rng.integers(0, len(m), size=3):
            m[pos] = rng.integers(0, 256)
        assert core.rf_load_status(bytes(m)) in (0, -2, -3, -4, -5, -6, -7)
