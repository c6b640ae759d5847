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
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..tfutil import import_tf
from .grid import GridPoint

FAMILIES = ("device", "paper")


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

    def to_dict(self) -> dict:
        """Settings as plain data. ``loss`` is left out when it is the default, so the config.json of a DySan
        run is the same as before the option existed (older runs stay resumable)."""
        d = asdict(self)
        if d["loss"] == "dysan":
            del d["loss"]
        return d


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


def build_models(cfg: TrainConfig, n_act: int, n_sens: int = 2, batch_size: int | None = None):
    from ..nets import device, paper

    if cfg.family == "device":
        return (device.sanitizer(cfg.width, batch_size=batch_size), device.predictor(n_act, batch_size=batch_size),
                device.discriminator(n_sens, batch_size=batch_size))
    if cfg.family == "paper":
        return (paper.sanitizer(batch_size=batch_size), paper.predictor(n_act, batch_size=batch_size),
                paper.discriminator(n_sens, batch_size=batch_size))
    raise ValueError(f"unknown family {cfg.family!r}")


def load_arrays(run_dir: Path) -> dict[str, np.ndarray]:
    with np.load(run_dir / "data.npz") as z:
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
    target = run_dir / "shared"
    if cfg.pretrain_epochs <= 0 or (target / "done.json").exists():
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
    target.mkdir(parents=True, exist_ok=True)
    P.save_weights(target / "P.weights.h5")
    D.save_weights(target / "D.weights.h5")
    mon = _monitor_subset(len(arr["x_test"]), cfg.monitor_windows, cfg.seed)
    p_acc = float((P.predict(arr["x_test"][mon], verbose=0).argmax(1) == arr["ya_test"][mon]).mean())
    d_acc = float((D.predict(arr["x_test"][mon], verbose=0).argmax(1) == arr["ys_test"][mon]).mean())
    (target / "done.json").write_text(json.dumps({"epochs": cfg.pretrain_epochs, "seconds": time.time() - t0,
                                                  "P_raw_accuracy": p_acc, "D_raw_accuracy": d_acc}, indent=2))
    log(f"shared warm start: P {100 * p_acc:.1f} %, D {100 * d_acc:.1f} % on raw monitor windows")


def train_point(run_dir: str | Path, point: GridPoint, index: int, cfg: TrainConfig) -> dict:
    """Train (or resume, or skip if finished) one grid point; returns its final metrics."""
    run_dir = Path(run_dir)
    out = run_dir / "models" / point.name
    done = out / "done.json"
    if done.exists():
        return json.loads(done.read_text())
    out.mkdir(parents=True, exist_ok=True)
    configure_tf(cfg.threads, cfg.seed + 1000 * index)
    import keras
    import tensorflow as tf

    from . import variants
    from .losses import hard_ber

    arr = load_arrays(run_dir)
    n_act, n_sens = int(arr["n_act"]), 2
    x, ya, ys = arr["x_train"], arr["ya_train"].astype(np.int32), arr["ys_train"].astype(np.int32)
    mon = _monitor_subset(len(arr["x_test"]), cfg.monitor_windows, cfg.seed)
    xm, yam, ysm = arr["x_test"][mon], arr["ya_test"][mon], arr["ys_test"][mon]

    S, P, D = build_models(cfg, n_act, n_sens)
    shared = run_dir / "shared"
    if (shared / "done.json").exists():
        P.load_weights(shared / "P.weights.h5")
        D.load_weights(shared / "D.weights.h5")
    opt_s, opt_p, opt_d = (keras.optimizers.Adam(cfg.learning_rate) for _ in range(3))
    for opt, model in ((opt_s, S), (opt_p, P), (opt_d, D)):
        opt.build(model.trainable_variables)
    epoch_var = tf.Variable(0, dtype=tf.int64)
    ckpt = tf.train.Checkpoint(S=S, P=P, D=D, opt_s=opt_s, opt_p=opt_p, opt_d=opt_d, epoch=epoch_var)
    manager = tf.train.CheckpointManager(ckpt, str(out / "ckpt"), max_to_keep=1)
    history_path = out / "history.json"
    history: list[dict] = []
    if manager.latest_checkpoint:
        ckpt.restore(manager.latest_checkpoint).expect_partial()
        history = json.loads(history_path.read_text()) if history_path.exists() else []
        history = history[: int(epoch_var.numpy())]
    start = int(epoch_var.numpy())

    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def accuracy(logits, labels):
        return tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, 1, output_type=tf.int32), labels), tf.float32))

    variant = variants.get(cfg.loss)

    @tf.function(reduce_retracing=True)
    def batch_step(xb, yab, ysb, xp, yap, xd, ysd):
        with tf.GradientTape() as tape:
            s = S(xb, training=True)
            pl, dl = P(s, training=False), D(s, training=False)
            j, l_act, l_sens, l_dist = variants.objective(variant, point, xb, s, pl, dl, yab, ysb, n_act, n_sens)
        opt_s.apply_gradients(zip(tape.gradient(j, S.trainable_variables), S.trainable_variables, strict=True))
        p_loss = d_loss = 0.0
        p_hit = d_hit = 0.0
        for k in range(cfg.k_pred):
            sp = S(xp[k], training=False)
            with tf.GradientTape() as tape:
                logits = P(sp, training=True)
                loss = ce(yap[k], logits)
            opt_p.apply_gradients(zip(tape.gradient(loss, P.trainable_variables), P.trainable_variables, strict=True))
            p_loss += loss / cfg.k_pred
            p_hit += accuracy(logits, yap[k]) / cfg.k_pred
        for k in range(cfg.k_disc):
            sd = S(xd[k], training=False)
            with tf.GradientTape() as tape:
                logits = D(sd, training=True)
                loss = ce(ysd[k], logits)
            opt_d.apply_gradients(zip(tape.gradient(loss, D.trainable_variables), D.trainable_variables, strict=True))
            d_loss += loss / cfg.k_disc
            d_hit += accuracy(logits, ysd[k]) / cfg.k_disc
        return tf.stack([j, l_act, l_sens, l_dist, p_loss, d_loss, p_hit, d_hit])

    @tf.function(reduce_retracing=True)
    def monitor_step(xb):
        s = S(xb, training=False)
        return s, P(s, training=False), D(s, training=False)

    n = len(x)
    bs = min(cfg.batch_size, n)
    iters = max(1, n // bs)
    names = ["J_S", "L_act", "L_sens", "L_dist", "P_loss", "D_loss", "P_train_acc", "D_train_acc"]
    progress_path = out / "progress.json"
    t_start = time.time()
    for epoch in range(start, cfg.epochs):
        rng = np.random.default_rng([cfg.seed, index, epoch])
        order_s, order_p, order_d = (rng.permutation(n) for _ in range(3))
        sums = np.zeros(len(names))
        t0 = time.time()
        for i in range(iters):
            bsl = order_s[i * bs:(i + 1) * bs]
            bp = np.stack([order_p[((i * cfg.k_pred + k) * bs) % (n - bs + 1):][:bs] for k in range(cfg.k_pred)])
            bd = np.stack([order_d[((i * cfg.k_disc + k) * bs) % (n - bs + 1):][:bs] for k in range(cfg.k_disc)])
            vals = batch_step(x[bsl], ya[bsl], ys[bsl], x[bp], ya[bp], x[bd], ys[bd])
            sums += vals.numpy()
        rec = {name: float(v) for name, v in zip(names, sums / iters, strict=True)}
        s_m, p_m, d_m = (t.numpy() for t in monitor_step(xm))
        p_pred, d_pred = p_m.argmax(1), d_m.argmax(1)
        rec.update({
            "epoch": epoch + 1,
            "seconds": time.time() - t0,
            "P_monitor_acc": float((p_pred == yam).mean()),
            "D_monitor_acc": float((d_pred == ysm).mean()),
            "P_monitor_ber": float(hard_ber(p_pred, yam, n_act)),
            "D_monitor_ber": float(hard_ber(d_pred, ysm, n_sens)),
            "distortion_monitor": float(np.abs(s_m - xm).mean()),
        })
        history.append(rec)
        epoch_var.assign(epoch + 1)
        manager.save()
        history_path.write_text(json.dumps(history, indent=1))
        elapsed = time.time() - t_start
        progress_path.write_text(json.dumps({"epoch": epoch + 1, "epochs": cfg.epochs, "seconds": elapsed,
                                             "last": rec}))
    S.save(out / "S.keras")
    P.save(out / "P.keras")
    D.save(out / "D.keras")
    final = history[-1] if history else {}
    result = {
        "point": point.to_dict(),
        "index": index,
        "epochs": cfg.epochs,
        "final": final,
        "train_seconds": float(sum(h["seconds"] for h in history)),
    }
    done.write_text(json.dumps(result, indent=2))
    _plot_history(history, out / "curves.png", point)
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
