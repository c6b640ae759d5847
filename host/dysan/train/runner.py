"""``dysan train``: the whole grid, on local worker processes or as tasks on a Ray cluster.

A run directory holds everything a later step needs (:mod:`dysan.rundir` names the files)::

    config.json        data spec, protocol, split (fold, seed, sizes), attribute, activity map, family,
                       grid, training settings, normalization — enough to rebuild the exact split
    data.npz           the normalized train/test arrays the workers read (no re-loading per worker), with
                       each window's subject index (identity adversary)
    shared/            the P/D (and feature / identity adversary) warm start shared by the grid
    models/<point>/    S.keras P.keras D.keras, history.json, curves.png, done.json (+ ckpt/ while running)
    summary.json       per model final metrics and times; total wall time
    grid.png           final monitor accuracies and distortion over the (α, λ) grid

Re-running the same command continues a killed run: finished points are skipped, a point stopped mid-way
resumes from its last epoch checkpoint. Scheduling is a plain process pool or Ray tasks — no home-made
scheduler. Progress is read from each point's ``progress.json`` by the driver, which works the same for
both backends (Ray needs the run directory on a filesystem its workers share; a single-node cluster has).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .. import contract, ui
from ..data import make_split, prepare
from ..errors import DysanError
from ..preprocess import Normalization
from ..rundir import RunDir
from .grid import GridPoint
from .loop import TrainConfig, pretrain_shared, train_point

CONFIG_KEYS = ("data", "activities", "attribute", "protocol", "fold", "folds", "split_seed", "train", "grid")


def prepare_run(run_dir: Path, data: str, activities: str, attribute: str, protocol: str, fold: int,
                folds: int | None, split_seed: int, points: list[GridPoint], cfg: TrainConfig) -> dict:
    """Create (or check) the run directory's config and arrays. Returns the config."""
    wanted = {
        "data": data,
        "activities": activities,
        "attribute": attribute,
        "protocol": protocol,
        "fold": fold,
        "folds": folds,
        "split_seed": split_seed,
        "train": cfg.to_dict(),
        "grid": [p.to_dict() for p in points],
    }
    rd = RunDir(run_dir)
    cfg_path = rd.config
    if cfg_path.exists():
        existing = json.loads(cfg_path.read_text())
        diff = [k for k in CONFIG_KEYS if existing.get(k) != wanted[k]]
        if diff:
            raise DysanError(f"{run_dir} holds a run with different {', '.join(diff)}; "
                             "choose another --out (or delete it) to start a new run")
        if rd.data.exists():
            return existing
    ds, ws = prepare(data, activities=activities, attribute=attribute)
    split = make_split(ws, protocol, fold=fold, n_folds=folds, seed=split_seed)
    norm = write_arrays(run_dir, ws, split)
    config = {
        **wanted,
        "synthetic": ds.synthetic,
        "classes": list(ws.classes),
        "attribute_labels": list(ws.attribute.labels),
        "activity_map": ws.meta["activity_map"],
        "split": split.info,
        "normalization": norm.to_dict(),
        "contract": contract.as_dict(),
        "subjects": list(ws.subjects),
    }
    cfg_path.write_text(json.dumps(config, indent=2))
    return config


def write_arrays(run_dir: Path, ws, split) -> Normalization:
    """Fit the normalization on the training windows and write data.npz (atomically); returns it."""
    norm = Normalization.fit(ws.x[split.train])
    rd = RunDir(run_dir)
    rd.path.mkdir(parents=True, exist_ok=True)
    tmp = rd.data_tmp
    np.savez(
        tmp,
        x_train=norm.normalize(ws.x[split.train]),
        ya_train=ws.activity[split.train],
        ys_train=ws.sensitive[split.train],
        x_test=norm.normalize(ws.x[split.test]),
        ya_test=ws.activity[split.test],
        ys_test=ws.sensitive[split.test],
        subj_train=ws.subject[split.train].astype(np.int32),
        subj_test=ws.subject[split.test].astype(np.int32),
        n_act=np.int64(len(ws.classes)),
    )
    tmp.replace(rd.data)
    return norm


def _pool_task(job: tuple[str, dict, int, dict]) -> dict:
    run_dir, point, index, cfg = job
    return train_point(run_dir, GridPoint(point["alpha"], point["lambda"]), index, TrainConfig.from_dict(cfg))


class _Watcher:
    """Polls the points' progress files and drives one bar per running point plus an overall ETA."""

    def __init__(self, run_dir: Path, points: list[GridPoint], epochs: int) -> None:
        self.run_dir, self.points, self.epochs = run_dir, points, epochs
        self.t0 = time.time()

    def epochs_done(self) -> dict[str, int]:
        out = {}
        for p in self.points:
            d = RunDir(self.run_dir).model(p.name)
            if d.is_done():
                out[p.name] = self.epochs
            elif d.progress.exists():
                try:
                    out[p.name] = int(json.loads(d.progress.read_text())["epoch"])
                except (ValueError, KeyError, OSError):
                    out[p.name] = 0
            else:
                out[p.name] = 0
        return out

    def line(self, start_done: int) -> tuple[int, str]:
        done = self.epochs_done()
        total = sum(done.values())
        running = [f"{k} {v}/{self.epochs}" for k, v in done.items() if 0 < v < self.epochs]
        finished = sum(v >= self.epochs for v in done.values())
        elapsed = time.time() - self.t0
        rate = (total - start_done) / elapsed if elapsed > 0 else 0
        remaining = len(self.points) * self.epochs - total
        eta = f"ETA {remaining / rate / 60:.1f} min" if rate > 0 else "ETA -"
        return total, f"{finished}/{len(self.points)} models, {eta}; running: {', '.join(running) or '-'}"


def run_grid(run_dir: Path, points: list[GridPoint], cfg: TrainConfig, workers: int = 2,
             ray_address: str | None = None, log: Callable[[str], None] = ui.info) -> dict:
    """Train every point not finished yet; returns the summary (also written to summary.json)."""
    t0 = time.time()
    with ui.progress("shared P/D warm start", 1) as step:
        pretrain_shared(run_dir, cfg, log=log)
        step.advance()
    jobs = [(str(run_dir), p.to_dict(), i, cfg.to_dict()) for i, p in enumerate(points)]
    watcher = _Watcher(run_dir, points, cfg.epochs)
    start_done, _ = watcher.line(0)
    results: list[dict] = []
    with ui.progress(f"training {len(points)} {cfg.family} models", len(points) * cfg.epochs) as step:
        def tick() -> None:
            total, text = watcher.line(start_done)
            step.update(completed=total, note=text)

        if ray_address is not None:
            results = _run_ray(jobs, ray_address, workers, tick)
        elif workers <= 1:
            for job in jobs:
                results.append(_pool_task(job))
                tick()
        else:
            ctx = mp.get_context("spawn")
            with ctx.Pool(workers, maxtasksperchild=None) as pool:
                pending = pool.map_async(_pool_task, jobs, chunksize=1)
                while not pending.ready():
                    tick()
                    pending.wait(2.0)
                results = pending.get()
        tick()
    summary = write_summary(run_dir, points, time.time() - t0, workers, ray_address)
    return summary


def _run_ray(jobs, address: str, workers: int, tick: Callable[[], None]) -> list[dict]:
    try:
        import ray
    except ImportError:  # pragma: no cover - ray is in the pinned set
        raise DysanError("--ray needs the ray package (pip install 'ray[default]')") from None
    if not ray.is_initialized():
        if address == "local":
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    task = ray.remote(num_cpus=1)(_pool_task)
    refs = [task.remote(job) for job in jobs]
    pending = list(refs)
    while pending:
        _, pending = ray.wait(pending, num_returns=len(pending), timeout=2.0)
        tick()
    return ray.get(refs)


def write_summary(run_dir: Path, points: list[GridPoint], wall: float, workers: int, ray_address: str | None) -> dict:
    rd = RunDir(run_dir)
    models = []
    for p in points:
        done = rd.model(p.name).done
        if done.exists():
            models.append(json.loads(done.read_text()))
    previous = {}
    if rd.summary.exists():
        previous = json.loads(rd.summary.read_text())
    summary = {
        "run": str(run_dir),
        "models": models,
        "complete": len(models) == len(points),
        "wall_seconds_this_session": round(wall, 1),
        "wall_seconds_total": round(wall + previous.get("wall_seconds_total", 0.0), 1),
        "train_seconds_sum": round(sum(m["train_seconds"] for m in models), 1),
        "workers": workers,
        "ray": ray_address,
    }
    rd.summary.write_text(json.dumps(summary, indent=2))
    _plot_grid(models, rd.grid_plot)
    return summary


def _plot_grid(models: list[dict], target: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not models:
        return
    a = [m["point"]["alpha"] for m in models]
    lam = [m["point"]["lambda"] for m in models]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    for ax, key, title in zip(axes, ("P_monitor_acc", "D_monitor_acc", "distortion_monitor"),
                              ("activity (own P)", "sensitive (own D)", "distortion |S(x)-x|"), strict=True):
        sc = ax.scatter(a, lam, c=[m["final"].get(key, np.nan) for m in models], s=160, cmap="viridis")
        fig.colorbar(sc, ax=ax)
        ax.set_xlabel("α (privacy)")
        ax.set_ylabel("λ (utility)")
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(target, dpi=80)
    plt.close(fig)
