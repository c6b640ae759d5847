"""Algorithm 1 for one grid point: S, P and D trained against each other, resumable per epoch.

Per batch B (``iterations = n_train // batch``, remainder dropped):

1. one step of S on B with P and D frozen, minimizing J_S (:mod:`.losses`);
2. ``k_pred`` steps of P, each on its own batch of an independently shuffled copy of the data (X_p), on
   S's current outputs (S frozen), minimizing cross-entropy on the activity;
3. ``k_disc`` steps of D likewise on X_d, on the sensitive attribute.

The three streams are reshuffled every epoch from one seeded generator, so a run is deterministic for a
seed (TF op determinism is switched on; each worker runs TF single-threaded). After every epoch the models,
the three optimizers and the history are checkpointed: a killed run resumes at the last finished epoch
with identical results.

Issue-15 options (all off by default, see ``docs/evaluation.md`` "Hardened training"): an ensemble of
discriminators re-initialised on a staggered schedule and trained on a replay buffer of earlier sanitizer
outputs (``adversaries``, ``reset_every``, ``replay``), a feature adversary and an identity adversary
(:mod:`dysan.nets.adversaries`), a per-window maximum-entropy privacy term and moment matching
(:mod:`.privacy`), and the on-device random transform (:mod:`dysan.jitter`) that S is trained through.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .. import nets
from ..rundir import ModelDir, RunDir
from ..tfutil import import_tf
from .grid import GridPoint


@dataclass
class TrainConfig:
    family: str = "device"
    epochs: int = 25
    batch_size: int = 256
    learning_rate: float = 5e-4
    k_pred: int = 1
    k_disc: int = 2
    """D steps per S step. 2, not 1: on SisFall (α=0.8, λ=0.1, 10 epochs) an adaptive RF attacker's gender
    accuracy on the sanitized output drops from 85.2 % (k=1) to 82.2 % (k=3) — a stronger critic removes more."""
    seed: int = 0
    width: int = 16
    """Channels of the device sanitizer's hidden layers."""
    pretrain_epochs: int = 5
    """Epochs of the shared P/D warm start on raw windows (0: none; see :func:`pretrain_shared`)."""
    threads: int = 1
    monitor_windows: int = 2048
    loss: str = "dysan"
    """The sanitizer's objective (:mod:`.variants`): ``dysan`` or a baseline's (``gen``, ``olympus``, ``msda``)."""
    privacy_loss: str = "ber"
    """``ber``: the paper's |0.5 − softBER|; ``entropy``: per-window KL to uniform (:mod:`.privacy`)."""
    adversaries: int = 1
    """Discriminators in the ensemble (each its own network and optimizer)."""
    reset_every: int = 0
    """Re-initialise each ensemble member every this many epochs, staggered across members (0: never)."""
    replay: float = 0.0
    """Share of every adversary batch drawn from the replay buffer of earlier sanitizer outputs."""
    adversary_agg: str = "max"
    """How the privacy terms of several adversaries combine: ``max`` (the strongest) or ``mean``."""
    feature_adversary: bool = False
    """Add an adversary on differentiable RF-like window statistics (:mod:`dysan.nets.adversaries`)."""
    identity_adversary: bool = False
    """Add an adversary predicting the training subject (needs subject ids in data.npz)."""
    moment_match: float = 0.0
    """Weight (times α) of the within-activity moment matching of window statistics between groups."""
    jitter: bool = False
    """Train S through the on-device random rotation + gain (:mod:`dysan.jitter`)."""
    jitter_angle: float = 10.0
    """Max rotation per axis (degrees) of the jitter."""
    jitter_gain: float = 0.1
    """Max relative gain change of the jitter."""

    def to_dict(self) -> dict:
        """Settings as plain data. A setting is left out when it has its *legacy* value (what runs did before
        the option existed), so older runs' config.json stay equal and resumable; :meth:`from_dict` fills
        missing settings with the legacy value, never with a (possibly changed) default."""
        return {k: v for k, v in asdict(self).items() if k not in LEGACY or LEGACY[k] != v}

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        return cls(**{**LEGACY, **d})

    @property
    def hardened(self) -> bool:
        """True when any issue-15 option is on (the training step takes the general path)."""
        return any(getattr(self, k) != v for k, v in LEGACY.items() if k != "loss")

    def jitter_params(self):
        from ..jitter import JitterParams

        return JitterParams(self.jitter_angle, self.jitter_gain)


LEGACY: dict = {"loss": "dysan", "privacy_loss": "ber", "adversaries": 1, "reset_every": 0, "replay": 0.0,
                "adversary_agg": "max", "feature_adversary": False, "identity_adversary": False,
                "moment_match": 0.0, "jitter": False, "jitter_angle": 10.0, "jitter_gain": 0.1}
"""The value of every setting added after the first runs, as those runs had it (their config.json omits them)."""
HARDENED: dict = {"privacy_loss": "entropy", "adversaries": 3, "reset_every": 3, "replay": 0.5,
                  "feature_adversary": True, "identity_adversary": True, "moment_match": 1.0}
"""The combination of issue-15 options ``dysan train --hardened`` adds to :data:`TRAIN_DEFAULT` (with it: the
ablation's ``combined`` row; ``--hardened --no-jitter``: its ``hardened`` row)."""
TRAIN_DEFAULT: dict = {"jitter": True}
"""What ``dysan train`` (and ``dysan bench``'s grid) apply on top of the paper's objective unless told
otherwise (``--paper-objective``, ``--no-jitter``, ``--hardened``): S trained through the on-device jitter.
Chosen by the ablation (docs/evaluation.md, SisFall fold 0, RF retrained on sanitized windows): against the
paper's objective it reads gender 4–8 pts lower within-subject on every point of a 4-point grid and
re-identifies 11–17 pts less, and on new users it lowers both gender (57.0 → 56.1 % balanced) and age group
(56.7 → 54.6 %), for 0.3–0.8 pt of activity and ~1.2× the training time. The full combination
(:data:`HARDENED` + jitter) hides more within-subject but raised the new-users age-group leak, so it stays
an option. The TrainConfig dataclass itself keeps the paper's values: a config.json that omits a setting
means the paper's value (see :meth:`TrainConfig.to_dict`)."""
REPLAY_WINDOWS = 1024
"""Training windows whose sanitized outputs are stored in the replay buffer at the end of every epoch."""
REPLAY_EPOCHS = 10
"""Epochs of outputs the replay buffer keeps (the oldest are dropped)."""
STATS_WINDOWS = 4096
"""Raw training windows the feature statistics are standardized on."""


def configure_tf(threads: int, seed: int) -> None:
    tf = import_tf()
    import keras

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        pass  # already initialized in this process: keep its setting
    tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(seed)


def build_models(cfg: TrainConfig, n_act: int, n_sens: int = nets.SENSITIVE_CLASSES,
                 batch_size: int | None = None) -> tuple:
    """``(S, P, D)`` of the run's family and width (:func:`dysan.nets.build`)."""
    return nets.build(cfg.family, n_act, n_sens, width=cfg.width, batch_size=batch_size)


def load_arrays(run_dir: Path) -> dict[str, np.ndarray]:
    with np.load(RunDir(run_dir).data) as z:
        return {k: z[k] for k in z.files}


def _monitor_subset(n: int, k: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed + 7919)
    return np.sort(rng.choice(n, size=min(n, k), replace=False))


def pretrain_shared(run_dir: Path, cfg: TrainConfig, log: Callable[[str], None] = print) -> None:
    """Warm start shared by the whole grid: P and D trained once on *raw* windows.

    Every grid point then starts its adversaries from these weights instead of from scratch, so the first
    epochs of Algorithm 1 already face competent critics; S starts as the identity (its residual branch's
    last layer is zero-initialized for the device family). Skipped when ``pretrain_epochs`` is 0.
    """
    shared = RunDir(run_dir).shared
    if cfg.pretrain_epochs <= 0 or shared.is_done():
        return
    configure_tf(cfg.threads, cfg.seed)
    import keras

    arr = load_arrays(run_dir)
    n_act = int(arr["n_act"])
    _, P, D = build_models(cfg, n_act)
    t0 = time.time()
    for model, y in ((P, arr["ya_train"]), (D, arr["ys_train"])):
        model.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(arr["x_train"], y, batch_size=cfg.batch_size, epochs=cfg.pretrain_epochs, verbose=0,
                  shuffle=True)
    shared.path.mkdir(parents=True, exist_ok=True)
    P.save_weights(shared.weights("P"))
    D.save_weights(shared.weights("D"))
    extra = _pretrain_extra(shared, run_dir, cfg, arr)
    mon = _monitor_subset(len(arr["x_test"]), cfg.monitor_windows, cfg.seed)
    p_acc = float((P.predict(arr["x_test"][mon], verbose=0).argmax(1) == arr["ya_test"][mon]).mean())
    d_acc = float((D.predict(arr["x_test"][mon], verbose=0).argmax(1) == arr["ys_test"][mon]).mean())
    shared.done.write_text(json.dumps({"epochs": cfg.pretrain_epochs, "seconds": time.time() - t0,
                                       "P_raw_accuracy": p_acc, "D_raw_accuracy": d_acc, **extra}, indent=2))
    log(f"shared warm start: P {100 * p_acc:.1f} %, D {100 * d_acc:.1f} % on raw monitor windows")


def _stats_subset(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed + 104729)
    return np.sort(rng.choice(n, size=min(n, STATS_WINDOWS), replace=False))


def _standardizer(run_dir: Path, arr: dict, cfg: TrainConfig):
    """The feature statistics' standardizer (None when no option needs it). Same constants in every worker."""
    if not (cfg.feature_adversary or cfg.moment_match > 0):
        return None
    from ..nets.adversaries import StatsStandardizer

    norm = json.loads(RunDir(run_dir).config.read_text())["normalization"]
    x = arr["x_train"]
    return StatsStandardizer(norm["center"], norm["scale"], x[_stats_subset(len(x), cfg.seed)])


def _norm_constants(run_dir: Path):
    norm = json.loads(RunDir(run_dir).config.read_text())["normalization"]
    return (np.asarray(norm["center"], dtype=np.float32), np.asarray(norm["scale"], dtype=np.float32))


def subject_labels(arr: dict) -> tuple[np.ndarray, np.ndarray, int]:
    """Training-subject ids 0..K−1 of the train windows, the test windows' ids (−1: not a training subject), K."""
    if "subj_train" not in arr:
        from ..errors import DysanError

        raise DysanError("--identity-adversary needs subject ids in data.npz: this run was prepared before "
                         "they were stored; train into a new --out")
    train_subjects = np.unique(arr["subj_train"])
    lookup = np.full(int(max(arr["subj_train"].max(), arr["subj_test"].max())) + 1, -1, dtype=np.int32)
    lookup[train_subjects] = np.arange(len(train_subjects), dtype=np.int32)
    return lookup[arr["subj_train"]], lookup[arr["subj_test"]], len(train_subjects)


def _pretrain_extra(shared: ModelDir, run_dir: Path, cfg: TrainConfig, arr: dict) -> dict:
    """Warm start of the feature and identity adversaries on raw windows (same epochs as P / D)."""
    import keras

    from ..nets import adversaries

    out = {}
    jobs = []
    if cfg.feature_adversary:
        stdz = _standardizer(run_dir, arr, cfg)
        z = np.concatenate([stdz(arr["x_train"][i:i + 2048]).numpy() for i in range(0, len(arr["x_train"]), 2048)])
        jobs.append(("F", adversaries.feature_adversary(2), z, arr["ys_train"]))
    if cfg.identity_adversary:
        sid, _, k = subject_labels(arr)
        jobs.append(("I", adversaries.identity_adversary(k), arr["x_train"], sid))
    for name, model, x, y in jobs:
        model.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
        hist = model.fit(x, y, batch_size=cfg.batch_size, epochs=cfg.pretrain_epochs, verbose=0, shuffle=True)
        model.save_weights(shared.weights(name))
        out[f"{name}_raw_train_accuracy"] = float(hist.history["accuracy"][-1])
    return out


@dataclass
class _Adversary:
    """One adversary of the sanitizer: a network, its optimizer, which labels it predicts, what it reads."""

    name: str
    model: object
    opt: object
    target: str
    """``sens`` (the attribute) or ``subject`` (training-subject id)."""
    n_classes: int
    on_stats: bool
    member: int | None = None
    """Index in the discriminator ensemble (None for the feature / identity adversaries)."""


def _reinit(adv: _Adversary, builder: Callable, seed: int) -> None:
    """Fresh random weights and a fresh optimizer state (a member of the staggered-reset ensemble)."""
    import keras

    keras.utils.set_random_seed(seed)
    fresh = builder()
    for v, w in zip(adv.model.weights, fresh.weights, strict=True):
        v.assign(w)
    for v in adv.opt.variables:
        v.assign(np.zeros(v.shape, dtype=v.dtype))


def _resets(cfg: TrainConfig, epoch: int) -> list[int]:
    """Ensemble members re-initialised at the start of ``epoch`` (member k is offset by k·R/N epochs)."""
    if cfg.reset_every <= 0 or epoch == 0:
        return []
    r, n = cfg.reset_every, cfg.adversaries
    return [k for k in range(n) if (epoch + (k * r) // n) % r == 0]


def start_point(run_dir: str | Path, point: GridPoint, index: int, cfg: TrainConfig) -> tuple[ModelDir, dict | None]:
    """The preamble of every trainer of one grid point (Algorithm 1's :func:`train_point`, ORF's): the point's
    folder and, when it is finished already, its recorded result (a rerun skips it). Otherwise the folder is
    created and TF seeded for this point (``seed + 1000·index``: points differ, each is reproducible)."""
    md = RunDir(run_dir).model(point.name)
    if md.is_done():
        return md, json.loads(md.done.read_text())
    md.path.mkdir(parents=True, exist_ok=True)
    configure_tf(cfg.threads, cfg.seed + 1000 * index)
    return md, None


def finish_point(md: ModelDir, point: GridPoint, index: int, cfg: TrainConfig, final: dict,
                 seconds: float) -> dict:
    """Write the point's ``done.json`` — last, so its presence means finished — in the one form the summaries,
    the evaluation and the export read; returns it."""
    result = {"point": point.to_dict(), "index": index, "epochs": cfg.epochs, "final": final,
              "train_seconds": seconds}
    md.done.write_text(json.dumps(result, indent=2))
    return result


def train_point(run_dir: str | Path, point: GridPoint, index: int, cfg: TrainConfig) -> dict:
    """Train (or resume, or skip if finished) one grid point; returns its final metrics."""
    run_dir = Path(run_dir)
    md, finished = start_point(run_dir, point, index, cfg)
    if finished is not None:
        return finished
    import keras
    import tensorflow as tf

    from . import privacy, variants
    from .losses import hard_ber

    arr = load_arrays(run_dir)
    n_act, n_sens = int(arr["n_act"]), 2
    x, ya, ys = arr["x_train"], arr["ya_train"].astype(np.int32), arr["ys_train"].astype(np.int32)
    mon = _monitor_subset(len(arr["x_test"]), cfg.monitor_windows, cfg.seed)
    xm, yam, ysm = arr["x_test"][mon], arr["ya_test"][mon], arr["ys_test"][mon]
    variant = variants.get(cfg.loss)
    hardened = cfg.hardened
    if hardened and cfg.loss not in ("dysan", "gen"):
        from ..errors import DysanError

        raise DysanError(f"the hardened-training options apply to --loss dysan or gen, not {cfg.loss}")
    if cfg.adversaries < 1:
        from ..errors import DysanError

        raise DysanError("--adversaries must be at least 1")
    sid = np.zeros(len(x), dtype=np.int32)
    sid_m = np.full(len(mon), -1, dtype=np.int32)
    n_subj = 1
    if cfg.identity_adversary:
        sid, sid_test, n_subj = subject_labels(arr)
        sid_m = sid_test[mon]
    stdz = _standardizer(run_dir, arr, cfg)

    S, P, D = build_models(cfg, n_act, n_sens)
    shared = RunDir(run_dir).shared
    warm = shared.is_done()
    if warm:
        P.load_weights(shared.weights("P"))
        D.load_weights(shared.weights("D"))
    opt_s, opt_p, opt_d = (keras.optimizers.Adam(cfg.learning_rate) for _ in range(3))
    advs = [_Adversary("D", D, opt_d, "sens", n_sens, False, 0)]
    builders: dict[str, Callable] = {"D": lambda: build_models(cfg, n_act, n_sens)[2]}
    for k in range(1, cfg.adversaries):
        model = build_models(cfg, n_act, n_sens)[2]
        if warm:
            model.load_weights(shared.weights("D"))
        advs.append(_Adversary(f"D{k}", model, keras.optimizers.Adam(cfg.learning_rate), "sens", n_sens, False, k))
        builders[f"D{k}"] = builders["D"]
    if cfg.feature_adversary or cfg.identity_adversary:
        from ..nets import adversaries

        if cfg.feature_adversary:
            model = adversaries.feature_adversary(n_sens)
            if shared.weights("F").exists():
                model.load_weights(shared.weights("F"))
            advs.append(_Adversary("F", model, keras.optimizers.Adam(cfg.learning_rate), "sens", n_sens, True))
        if cfg.identity_adversary:
            model = adversaries.identity_adversary(n_subj)
            if shared.weights("I").exists():
                model.load_weights(shared.weights("I"))
            advs.append(_Adversary("I", model, keras.optimizers.Adam(cfg.learning_rate), "subject", n_subj, False))
    for opt, model in ((opt_s, S), (opt_p, P), *((a.opt, a.model) for a in advs)):
        opt.build(model.trainable_variables)
    epoch_var = tf.Variable(0, dtype=tf.int64)
    tracked = {"S": S, "P": P, "D": D, "opt_s": opt_s, "opt_p": opt_p, "opt_d": opt_d, "epoch": epoch_var}
    for a in advs[1:]:
        tracked[a.name] = a.model
        tracked[f"opt_{a.name.lower()}"] = a.opt
    ckpt = tf.train.Checkpoint(**tracked)
    manager = tf.train.CheckpointManager(ckpt, str(md.checkpoints), max_to_keep=1)
    history_path = md.history
    replay_path = md.replay
    history: list[dict] = []
    replay: list[dict[str, np.ndarray]] = []
    if manager.latest_checkpoint:
        ckpt.restore(manager.latest_checkpoint).expect_partial()
        history = json.loads(history_path.read_text()) if history_path.exists() else []
        history = history[: int(epoch_var.numpy())]
        if cfg.replay > 0 and replay_path.exists():
            with np.load(replay_path) as z:
                replay = [{k: z[f"{e}_{k}"] for k in ("s", "ys", "sid")} for e in range(int(z["n"]))]
    start = int(epoch_var.numpy())

    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    center, scale = _norm_constants(run_dir)
    center_t, scale_t = tf.constant(center), tf.constant(scale)
    jparams = cfg.jitter_params()

    def accuracy(logits, labels):
        return tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, 1, output_type=tf.int32), labels), tf.float32))

    def emit(s, m):
        """What leaves the device: S's output, through the jitter when it is on (float twin of dysan.jitter)."""
        if m is None:
            return s
        counts = s * scale_t + center_t
        acc = tf.einsum("bij,btj->bti", m[:, 0], counts[..., 0:3])
        gyro = tf.einsum("bij,btj->bti", m[:, 1], counts[..., 3:6])
        return (tf.concat([acc, gyro], axis=-1) - center_t) / scale_t

    def adv_logits(a: _Adversary, s, z):
        return a.model(z if a.on_stats else s, training=True)

    @tf.function(reduce_retracing=True, autograph=False)  # no tensor-dependent Python control flow: no AutoGraph
    def batch_step(xb, yab, ysb, sb, mb, xp, yap, mp, xd, ysd, sidd, md, rd, rysd, rsidd):
        with tf.GradientTape() as tape:
            s_raw = S(xb, training=True)
            s = emit(s_raw, mb)
            pl = P(s, training=False)
            if not hardened:
                dl = D(s, training=False)
                j, l_act, l_sens, l_dist = variants.objective(variant, point, xb, s, pl, dl, yab, ysb, n_act, n_sens)
                l_mm = tf.constant(0.0)
            else:
                z = stdz(s) if stdz is not None else None
                terms = [privacy.term(cfg.privacy_loss, a.model(z if a.on_stats else s, training=False),
                                      ysb if a.target == "sens" else sb, a.n_classes) for a in advs]
                l_sens = privacy.aggregate(cfg.adversary_agg, terms)
                from .losses import soft_ber

                l_act = soft_ber(pl, yab, n_act)
                l_dist = tf.reduce_mean(tf.abs(s_raw - xb))
                w_act, w_sens, w_dist = variant.weights(point)
                j = w_act * l_act + w_sens * l_sens + w_dist * l_dist
                l_mm = tf.constant(0.0)
                if cfg.moment_match > 0:
                    l_mm = privacy.moment_matching(z, yab, ysb, n_act)
                    j = j + w_sens * cfg.moment_match * l_mm
        opt_s.apply_gradients(zip(tape.gradient(j, S.trainable_variables), S.trainable_variables, strict=True))
        p_loss = p_hit = 0.0
        for k in range(cfg.k_pred):
            sp = emit(S(xp[k], training=False), None if mp is None else mp[k])
            with tf.GradientTape() as tape:
                logits = P(sp, training=True)
                loss = ce(yap[k], logits)
            opt_p.apply_gradients(zip(tape.gradient(loss, P.trainable_variables), P.trainable_variables, strict=True))
            p_loss += loss / cfg.k_pred
            p_hit += accuracy(logits, yap[k]) / cfg.k_pred
        a_loss = [0.0] * len(advs)
        a_hit = [0.0] * len(advs)
        for k in range(cfg.k_disc):
            sd = emit(S(xd[k], training=False), None if md is None else md[k])
            ys_k, sid_k = ysd[k], sidd[k]
            if rd is not None:
                sd = tf.concat([sd, rd[k]], axis=0)
                ys_k, sid_k = tf.concat([ys_k, rysd[k]], axis=0), tf.concat([sid_k, rsidd[k]], axis=0)
            zd = stdz(sd) if stdz is not None else None
            for i, a in enumerate(advs):
                labels = ys_k if a.target == "sens" else sid_k
                with tf.GradientTape() as tape:
                    logits = adv_logits(a, sd, zd)
                    loss = ce(labels, logits)
                a.opt.apply_gradients(zip(tape.gradient(loss, a.model.trainable_variables),
                                          a.model.trainable_variables, strict=True))
                a_loss[i] += loss / cfg.k_disc
                a_hit[i] += accuracy(logits, labels) / cfg.k_disc
        extra = [l_mm, *a_hit] if hardened else []
        return tf.stack([j, l_act, l_sens, l_dist, p_loss, a_loss[0], p_hit, a_hit[0], *extra])

    @tf.function(reduce_retracing=True, autograph=False)  # no tensor-dependent Python control flow: no AutoGraph
    def sanitize_step(xb, mb):
        return emit(S(xb, training=False), mb)

    def jitter_mats(rng: np.random.Generator, shape: tuple[int, ...]):
        if not cfg.jitter:
            return None
        from .. import jitter

        counters = rng.integers(0, 2**32, size=int(np.prod(shape)), dtype=np.uint64)
        return jitter.float_matrices(cfg.seed + 17, counters, jparams).reshape(*shape, 2, 3, 3)

    n = len(x)
    bs = min(cfg.batch_size, n)
    iters = max(1, n // bs)
    n_rep = round(bs * cfg.replay) if cfg.replay > 0 else 0
    names = ["J_S", "L_act", "L_sens", "L_dist", "P_loss", "D_loss", "P_train_acc", "D_train_acc"]
    if hardened:
        names += ["L_mm", *(f"{a.name}_train_acc" for a in advs)]
    progress_path = md.progress
    t_start = time.time()
    for epoch in range(start, cfg.epochs):
        rng = np.random.default_rng([cfg.seed, index, epoch])
        order_s, order_p, order_d = (rng.permutation(n) for _ in range(3))
        jrng = np.random.default_rng([cfg.seed, index, epoch, 1])
        resets = _resets(cfg, epoch)
        for k in resets:
            a = advs[k]
            _reinit(a, builders[a.name], cfg.seed * 7919 + index * 104729 + epoch * 31 + k)
        sums = np.zeros(len(names))
        t0 = time.time()
        for i in range(iters):
            bsl = order_s[i * bs:(i + 1) * bs]
            bp = np.stack([order_p[((i * cfg.k_pred + k) * bs) % (n - bs + 1):][:bs] for k in range(cfg.k_pred)])
            use_replay = n_rep > 0 and bool(replay)
            cur = bs - n_rep if use_replay else bs
            bd = np.stack([order_d[((i * cfg.k_disc + k) * bs) % (n - bs + 1):][:cur] for k in range(cfg.k_disc)])
            rd = rysd = rsidd = None
            if use_replay:
                pool_s = np.concatenate([r["s"] for r in replay])
                pool_ys = np.concatenate([r["ys"] for r in replay])
                pool_sid = np.concatenate([r["sid"] for r in replay])
                pick = jrng.integers(0, len(pool_s), size=(cfg.k_disc, n_rep))
                rd, rysd, rsidd = pool_s[pick], pool_ys[pick], pool_sid[pick]
            vals = batch_step(x[bsl], ya[bsl], ys[bsl], sid[bsl], jitter_mats(jrng, (len(bsl),)),
                              x[bp], ya[bp], jitter_mats(jrng, bp.shape),
                              x[bd], ys[bd], sid[bd], jitter_mats(jrng, bd.shape), rd, rysd, rsidd)
            sums += vals.numpy()
        rec = {name: float(v) for name, v in zip(names, sums / iters, strict=True)}
        if cfg.replay > 0:
            pick = np.sort(jrng.choice(n, size=min(n, REPLAY_WINDOWS), replace=False))
            replay.append({"s": sanitize_step(x[pick], jitter_mats(jrng, (len(pick),))).numpy(),
                           "ys": ys[pick], "sid": sid[pick]})
            replay = replay[-REPLAY_EPOCHS:]
        m_mon = None
        if cfg.jitter:
            from .. import jitter

            m_mon = jitter.float_matrices(cfg.seed + 23, np.arange(len(xm), dtype=np.uint64), jparams)
        s_m = sanitize_step(xm, m_mon).numpy()
        strongest = advs[0]
        if hardened:
            strongest = max((a for a in advs if a.member is not None), key=lambda a: rec[f"{a.name}_train_acc"])
        p_pred = P(s_m, training=False).numpy().argmax(1)
        d_pred = strongest.model(s_m, training=False).numpy().argmax(1)
        rec.update({
            "epoch": epoch + 1,
            "seconds": time.time() - t0,
            "P_monitor_acc": float((p_pred == yam).mean()),
            "D_monitor_acc": float((d_pred == ysm).mean()),
            "P_monitor_ber": float(hard_ber(p_pred, yam, n_act)),
            "D_monitor_ber": float(hard_ber(d_pred, ysm, n_sens)),
            "distortion_monitor": float(np.abs(s_m - xm).mean()),
        })
        if hardened:
            rec["strongest_D"] = strongest.name
            rec["reset"] = [advs[k].name for k in resets]
            z_m = stdz(tf.constant(s_m)).numpy() if stdz is not None else None
            for a in advs[1:]:
                labels = ysm if a.target == "sens" else sid_m
                keep = labels >= 0
                if keep.any():
                    pred = a.model(z_m if a.on_stats else s_m, training=False).numpy().argmax(1)
                    rec[f"{a.name}_monitor_acc"] = float((pred[keep] == labels[keep]).mean())
        history.append(rec)
        epoch_var.assign(epoch + 1)
        manager.save()
        if cfg.replay > 0:
            tmp = replay_path.with_suffix(".tmp.npz")
            np.savez(tmp, n=len(replay), **{f"{e}_{k}": r[k] for e, r in enumerate(replay) for k in r})
            tmp.replace(replay_path)
        history_path.write_text(json.dumps(history, indent=1))
        elapsed = time.time() - t_start
        progress_path.write_text(json.dumps({"epoch": epoch + 1, "epochs": cfg.epochs, "seconds": elapsed,
                                             "last": rec}))
    best = advs[0]
    if history and hardened:
        best = next(a for a in advs if a.name == history[-1]["strongest_D"])
    S.save(md.keras("S"))
    P.save(md.keras("P"))
    best.model.save(md.keras("D"))
    for a in advs[1:]:
        if a.member is None:
            a.model.save_weights(md.weights(a.name))
    final = history[-1] if history else {}
    result = finish_point(md, point, index, cfg, final, float(sum(h["seconds"] for h in history)))
    _plot_history(history, md.curves, point)
    return result

def _plot_history(history: list[dict], target: Path, point: GridPoint) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not history:
        return
    ep = [h["epoch"] for h in history]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    for key in ("J_S", "L_act", "L_sens", "L_dist"):
        axes[0].plot(ep, [h[key] for h in history], label=key)
    axes[0].set_title("sanitizer loss terms")
    for key in ("P_loss", "D_loss"):
        axes[1].plot(ep, [h[key] for h in history], label=key)
    axes[1].set_title("P / D cross-entropy")
    for key in ("P_train_acc", "D_train_acc", "P_monitor_acc", "D_monitor_acc"):
        axes[2].plot(ep, [h[key] for h in history], label=key)
    axes[2].set_title("accuracies")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7)
    fig.suptitle(f"α = {point.alpha}, λ = {point.lam}")
    fig.tight_layout()
    fig.savefig(target, dpi=80)
    plt.close(fig)
