"""`dysan evaluate` building blocks on constructed cases with known answers.

A hand-built run directory holds two sanitizers whose effect is known exactly — the identity and a constant
— so the attackers' accuracies are known too: the identity changes nothing, the constant leaves the
attacker nothing but the majority class.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from dysan.errors import DysanError
from dysan.evaluate import metrics, strategies, streams
from dysan.evaluate.runs import Side
from dysan.evaluate.strategies import RAW, Weights
from dysan.train.grid import GridPoint

IDENTITY, CONSTANT = GridPoint(0.1, 0.8), GridPoint(0.8, 0.1)


def _conv_sanitizer(kernel: np.ndarray):
    """A 1x1 convolution ``S(x) = x · kernel`` (no bias): identity for ``eye``, constant 0 for zeros."""
    import keras

    from dysan import contract

    inp = keras.Input((contract.WINDOW, contract.N_CHANNELS))
    out = keras.layers.Conv1D(contract.N_CHANNELS, 1, use_bias=False, name="mix")(inp)
    model = keras.Model(inp, out, name="S")
    model.get_layer("mix").set_weights([kernel[None].astype(np.float32)])
    return model


def build_known_run(run, cfg):
    """Write a run with an identity sanitizer and a constant one (own P/D: untrained device classifiers) into
    ``run`` with training settings ``cfg`` (shared with tests/test_jitter.py)."""
    from dysan.nets import device
    from dysan.train.runner import prepare_run

    prepare_run(run, "synthetic:subjects=8,seed=4", "default", "gender", "within-subject", 0, None, 0,
                [IDENTITY, CONSTANT], cfg)
    for point, kernel in ((IDENTITY, np.eye(6)), (CONSTANT, np.zeros((6, 6)))):
        folder = run / "models" / point.name
        folder.mkdir(parents=True)
        _conv_sanitizer(kernel).save(folder / "S.keras")
        device.predictor(4).save(folder / "P.keras")
        device.discriminator(2).save(folder / "D.keras")
        (folder / "done.json").write_text(json.dumps({"point": point.to_dict()}))
    return run


@pytest.fixture(scope="module")
def known_run(tmp_path_factory):
    """A run with an identity sanitizer and a constant one (own P/D: untrained device classifiers)."""
    from dysan.train.loop import TrainConfig

    return build_known_run(tmp_path_factory.mktemp("known") / "run", TrainConfig(epochs=1, pretrain_epochs=0))


@pytest.fixture(scope="module")
def known_eval(known_run):
    from dysan.evaluate import pipeline, runs

    ctx = runs.open_run(known_run)
    cfg = pipeline.EvalConfig(attack=pipeline.attackers.AttackConfig(families=("rf",), rf_trees=30))
    return pipeline.Evaluation(ctx, cfg, known_run / "eval" / "cache")


def _only(ev, point: GridPoint):
    k = next(i for i, m in enumerate(ev.ctx.grid) if m.point == point)
    return ev.grid_strategies(Weights(), subset=[k], which=("fixed",))[0]


def test_identity_sanitizer_leaves_raw_accuracies_unchanged(known_eval):
    ev = known_eval
    k = next(i for i, m in enumerate(ev.ctx.grid) if m.point == IDENTITY)
    np.testing.assert_array_equal(np.asarray(ev.outs[k].test.windows), ev.ctx.test.counts)
    assert float(ev.outs[k].test.distortion.max()) == 0.0
    raw = ev.attack(ev.raw_strategy(), ("rf",))
    same = ev.attack(_only(ev, IDENTITY), ("rf",))
    for task in ("activity", "sensitive"):
        assert same["rf-adaptive"][task] == raw["rf-adaptive"][task]
        assert same["rf-raw"][task] == raw["rf-raw"][task]
    assert raw["rf-adaptive"]["activity"]["accuracy"] > 0.8  # the unchanged number is a real classifier's


def test_constant_sanitizer_drives_the_attacker_to_chance(known_eval):
    ev = known_eval
    k = next(i for i, m in enumerate(ev.ctx.grid) if m.point == CONSTANT)
    windows = np.asarray(ev.outs[k].test.windows)
    assert (windows == windows[0]).all()
    res = ev.attack(_only(ev, CONSTANT), ("rf",))
    te, tr = ev.idx["test"], ev.idx["train"]
    for task, labels in (("sensitive", ev.ctx.test.sensitive), ("activity", ev.ctx.test.activity)):
        train_labels = (ev.ctx.train.sensitive if task == "sensitive" else ev.ctx.train.activity)[tr]
        majority = np.bincount(train_labels).argmax()
        assert res["rf-adaptive"][task]["accuracy"] == pytest.approx(float((labels[te] == majority).mean()))
        # one class predicted for every window: balanced accuracy is exactly 1 / number of classes
        assert res["rf-adaptive"][task]["balanced_accuracy"] == pytest.approx(1 / len(np.unique(labels[te])))
        assert res["rf-adaptive"][task]["majority_rate"] == pytest.approx(np.bincount(labels[te]).max() / len(te))
    assert abs(res["rf-adaptive"]["sensitive"]["accuracy"] - 0.5) < 0.1
    assert res["rf-adaptive"]["activity"]["accuracy"] < 0.5


def test_run_is_evaluated_under_its_own_protocol_and_attribute(known_run, capsys):
    from dysan.cli import main

    assert main(["evaluate", str(known_run), "--protocol", "new-users"]) == 2
    assert "trained with --protocol within-subject" in capsys.readouterr().err
    assert main(["evaluate", str(known_run), "--attribute", "age-group"]) == 2
    assert "trained with --attribute gender" in capsys.readouterr().err
    assert main(["evaluate", str(known_run), "--data", "synthetic:subjects=8,seed=5"]) == 2
    assert "differ" in capsys.readouterr().err


def _float_score(act, sens, w: Weights) -> np.ndarray:
    n = len(act)
    return w.x * act.sum(0) / n + w.y * (1 - np.abs(0.5 - sens.sum(0) / n))


def _streams(n_windows: int, users: int = 1) -> streams.Streams:
    per = np.array_split(np.arange(n_windows), users)
    return streams.Streams(order={u: idx for u, idx in enumerate(per)},
                           calibration={u: np.zeros(0, int) for u in range(users)},
                           scored=np.ones(n_windows, bool))


def test_dynamic_choice_is_the_argmax_of_the_score_per_segment():
    rng = np.random.default_rng(0)
    n, m, seg = 53, 7, 5
    act, sens = rng.random((n, m)) < 0.7, rng.random((n, m)) < 0.5
    w = Weights(0.2, 0.8)
    st = _streams(n, users=2)
    choice = strategies.dynamic_models(act, sens, st, w, seg)
    for idx in st.order.values():
        for lo in range(0, len(idx), seg):
            block = idx[lo:lo + seg]
            assert len(set(choice[block])) == 1
            scores = _float_score(act[block], sens[block], w)
            assert scores[choice[block[0]]] == pytest.approx(scores.max(), abs=1e-4)
            assert choice[block[0]] == int(np.flatnonzero(scores >= scores.max() - 1e-4)[0])
    device = strategies.dynamic_models(act, sens, st, w, seg, candidates=3)
    from dysan.selection import horizon_segments, schedule_mask

    back = (horizon_segments(seg, 3, m) - 1) * seg  # the device scores a segment with the ones before it
    assert back > 0
    for idx in st.order.values():
        mask = schedule_mask(len(idx), m, 3)
        for lo in range(0, len(idx), seg):
            # only a candidate evaluated inside the segment's scoring horizon can win
            assert mask[max(0, lo - back):lo + seg, device[idx[lo]]].any()


def test_fixed_and_personalized_choices():
    act = np.zeros((8, 3), bool)
    sens = np.zeros((8, 3), bool)
    act[:, 1] = True  # model 1 always right about the activity ...
    act[:4, 2] = True  # model 2 is right about user 0's activity and fools D on half of user 0's windows
    sens[:2, 2] = True
    st = _streams(8, users=2)
    best, info = strategies.fixed_model(act, sens, st, Weights(0.2, 0.8))
    per_user = strategies.personalized_models(act, sens, st, Weights(0.2, 0.8))
    assert per_user == {0: 2, 1: 1}
    assert best == 2 and info["users"] == 2  # user mean: model 2 (1.0 + 0.4) / 2 = 0.7 > model 1's 0.6
    assert info["mean_train_score"] == pytest.approx([0.4, 0.6, 0.7], abs=1e-4)
    choice = strategies.per_user_choice(per_user, st, 8)
    assert (choice[:4] == 2).all() and (choice[4:] == 1).all()


def test_calibration_takes_the_first_windows_of_each_activity_code_and_drops_overlaps():
    from dysan import contract

    # one user; class 0 = codes A (recording 0) and B (recording 1); class 1 = code C (recording 2); 6 windows each
    n = 18
    rev = np.arange(n)[::-1]  # stored out of time order on purpose
    side = Side("test", x=np.zeros((n, 1, 1)), counts=np.zeros((n, 1, 1)),
                activity=np.array([0] * 12 + [1] * 6)[rev], sensitive=np.zeros(n, int), subject=np.zeros(n, int),
                recording=np.repeat([0, 1, 2], 6)[rev], start=np.tile(np.arange(6) * contract.HOP, 3)[rev],
                code=np.repeat(["A", "B", "C"], 6)[rev])
    st = streams.build(side, per_code=2)
    cal = st.calibration[0]
    assert list(side.code[cal]) == ["A", "A", "B", "B", "C", "C"]  # every code, not only the class's first
    assert list(side.start[cal]) == [0, contract.HOP] * 3
    # windows starting 2 and 3 hops in still share samples with the one at 1 hop (186 - 62 < 125): not scored
    assert list(side.recording[st.order[0]]) == [0, 0, 1, 1, 2, 2]  # time order
    assert list(side.start[st.order[0]]) == [4 * contract.HOP, 5 * contract.HOP] * 3
    assert st.scored.sum() == 6
    few = streams.build(side, per_code=5)  # never more than half of a code's windows
    assert len(few.calibration[0]) == 9
    assert streams.windows_for(5) == 3 and streams.windows_for(2.5) == 1 and streams.windows_for(10) == 7


def test_uniqueness_on_a_hand_made_table():
    traces = {"A": np.array([5, 5, 5]), "B": np.array([0, 1, 0]), "C": np.array([0, 1, 2, 2])}
    one = metrics.uniqueness(traces, 1)
    assert one["A"] == 1.0 and one["B"] == 0.0
    assert 0.35 <= one["C"] <= 0.65  # half of C's segments used model 2, which only C used
    assert metrics.uniqueness(traces, 3)["B"] == 0.0  # {0, 1} is inside C's set
    assert metrics.uniqueness(traces, 4) == {"A": None, "B": None, "C": 1.0}
    assert metrics.models_used_share(traces, 10) == {"A": 0.1, "B": 0.2, "C": 0.3}


def _dtw_brute(a, b):
    d = np.full((len(a) + 1, len(b) + 1), np.inf)
    d[0, 0] = 0
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i, j] = np.linalg.norm(a[i - 1] - b[j - 1]) + min(d[i - 1, j - 1], d[i - 1, j], d[i, j - 1])
    return d[-1, -1]


def test_dtw_on_tiny_known_sequences():
    assert metrics.dtw_batch(np.array([[0, 1, 2.0]]), np.array([[0, 1, 1, 2.0]]))[0] == 0.0
    assert metrics.dtw_batch(np.array([[0, 0, 0.0]]), np.array([[1, 1, 1.0]]))[0] == 3.0
    assert metrics.dtw_batch(np.array([[0, 5.0]]), np.array([[0, 0, 0, 5.0]]))[0] == 0.0
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(300, 6, 2)), rng.normal(size=(300, 9, 2))  # > one chunk
    got = metrics.dtw_batch(a, b)
    np.testing.assert_allclose(got[[0, 1, 299]], [_dtw_brute(a[k], b[k]) for k in (0, 1, 299)])


def test_distortion_stats_on_known_arrays():
    t = 125
    flat = metrics.window_stats(np.full((1, t), 2.0))
    assert (flat["mean"][0], flat["std"][0], flat["skewness"][0], flat["kurtosis"][0]) == (2.0, 0.0, 0.0, 0.0)
    assert flat["energy"][0] == pytest.approx(4.0 * t)
    alt = metrics.window_stats(np.where(np.arange(124) % 2, 1.0, -1.0)[None])
    assert alt["mean"][0] == 0 and alt["std"][0] == 1 and alt["skewness"][0] == 0
    assert alt["kurtosis"][0] == pytest.approx(-2.0) and alt["energy"][0] == 124
    from scipy import stats

    x = np.random.default_rng(2).gamma(2.0, size=(3, t))
    s = metrics.window_stats(x)
    np.testing.assert_allclose(s["skewness"], stats.skew(x, axis=1))
    np.testing.assert_allclose(s["kurtosis"], stats.kurtosis(x, axis=1))
    counts = np.zeros((1, t, 6), np.int16)
    counts[..., 1] = 2048  # 1 g on y, no rotation
    table = metrics.distortion_table(counts)
    assert table["acc_mag_g"]["mean"] == pytest.approx(1.0) and table["gyro_mag_rad_s"]["energy"] == 0
    assert metrics.relative_error(1.5, 1.0) == 0.5 and metrics.relative_error(1.0, 0.0) is None


def test_gather_picks_each_windows_model():
    from dysan.evaluate.attackers import gather

    raw = np.arange(5)[:, None] * 10
    models = [raw + 1, raw + 2]
    choice = np.array([RAW, 0, 1, 0, RAW])
    np.testing.assert_array_equal(gather(choice, np.array([4, 1, 2]), raw, models)[:, 0], [40, 11, 22])


def test_loss_variants():
    import tensorflow as tf

    from dysan.train import variants
    from dysan.train.loop import TrainConfig
    from dysan.train.losses import sanitizer_loss, sanitizer_terms

    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(8, 4, 6)), tf.float32)
    s = x + 0.5
    pl, dl = tf.constant(rng.normal(size=(8, 4)), tf.float32), tf.constant(rng.normal(size=(8, 2)), tf.float32)
    ya, ys = np.array([0, 1, 2, 3, 0, 1, 2, 3]), np.array([0, 1] * 4)
    p = GridPoint(0.3, 0.5)
    j, *_ = variants.objective(variants.get("dysan"), p, x, s, pl, dl, ya, ys, 4, 2)
    ref = sanitizer_terms(x, s, pl, dl, ya, ys, 4, 2)
    assert float(j) == float(sanitizer_loss(0.3, 0.5, *ref))
    j_gen, a, b, _ = variants.objective(variants.get("gen"), p, x, s, pl, dl, ya, ys, 4, 2)
    assert float(j_gen) == pytest.approx(0.5 * float(a) + 0.3 * float(b))  # no distortion term
    _, _, uniform_kl, _ = variants.objective(variants.get("olympus"), p, x, s, pl, tf.zeros((8, 2)), ya, ys, 4, 2)
    assert float(uniform_kl) == pytest.approx(0.0, abs=1e-6)
    _, _, confident_kl, _ = variants.objective(variants.get("olympus"), p, x, s, pl, dl * 20, ya, ys, 4, 2)
    assert float(confident_kl) > 1.0
    j_m, ce_a, neg_ce, mse = variants.objective(variants.get("msda"), p, x, s, pl, dl, ya, ys, 4, 2)
    ce_d = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=ys, logits=dl))
    assert float(neg_ce) == pytest.approx(-float(ce_d)) and float(mse) == pytest.approx(0.25)
    assert float(j_m) == pytest.approx(0.5 * float(ce_a) - 0.3 * float(ce_d) + 0.2 * 0.25, rel=1e-5)
    assert "loss" not in TrainConfig().to_dict() and TrainConfig(loss="msda").to_dict()["loss"] == "msda"
    with pytest.raises(DysanError):
        variants.get("nope")


def test_baselines_must_share_the_data_and_differences_are_reported(known_run, tmp_path):
    import shutil

    from dysan.evaluate import runs
    from dysan.train.loop import TrainConfig
    from dysan.train.runner import prepare_run

    ctx = runs.open_run(known_run)
    base = tmp_path / "gen"
    prepare_run(base, "synthetic:subjects=8,seed=4", "default", "gender", "within-subject", 0, None, 0,
                [GridPoint(0.6, 0.4)], TrainConfig(epochs=3, pretrain_epochs=0, loss="gen"))
    shutil.copytree(known_run / "models" / IDENTITY.name, base / "models" / GridPoint(0.6, 0.4).name)
    refs = runs.add_baseline(ctx, base)
    assert [r.label for r in refs] == ["GEN"] and refs[0].key == "gen-a0.60_l0.40"
    assert ctx.baseline_runs[0]["differences"] == ["epochs: 1 vs 3"]
    other = tmp_path / "other"
    prepare_run(other, "synthetic:subjects=8,seed=9", "default", "gender", "within-subject", 0, None, 0,
                [GridPoint(0.6, 0.4)], TrainConfig(epochs=1, pretrain_epochs=0, loss="gen"))
    with pytest.raises(DysanError, match="differs"):
        runs.add_baseline(ctx, other)
