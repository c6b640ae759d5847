"""``dysan evaluate``: every strategy against every attacker, and the paper's analyses, for one run.

Steps (each long one shows a progress bar):

1. every model's outputs on the run's train and test windows (:mod:`.sanitize`, cached);
2. users' streams and the calibration subset (:mod:`.streams`), calibration forests (:mod:`.calib`);
3. the strategies (:mod:`.strategies`) on both sides — the training side's mixed streams are what the
   adaptive attackers learn from;
4. attackers per strategy (:mod:`.attackers`): adaptive and raw-trained, each family, both tasks, plus the
   chosen models' own P and D; pooled and per-user accuracies over the scored test windows;
5. the analyses: per-user CDFs (Fig. 3), trade-off over y (Fig. 7), number of candidates (Table 1),
   distortion statistics (Table 4), models used per user (Fig. 6), uniqueness (Fig. 8), DTW (Appendix F).

Sweeps (Fig. 7, Table 1) retrain only the feature-RF attacker (CNNs per sweep point would take hours on
the host); the main table has every family. Everything lands in ``results.json`` plus one JSON table and
one PNG per analysis in the output folder.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import jsonio, ui
from ..errors import DysanError
from ..export.bundle_format import ScheduleDefaults
from ..features import window_features
from ..rundir import RESULTS, RunDir
from ..tfutil import import_tf
from ..train import grid as grid_mod
from . import attackers, calib, figures, metrics, sanitize, streams, transforms
from .runs import RunContext
from .strategies import RAW, Strategy, Weights

TASKS = ("activity", "sensitive")
IDENTITY = "identity"
"""The re-identification task (which subject is this window from?), within-subject only."""
GRID_STRATEGIES = ("fixed", "personalized", "dynamic", "dysan-o", "dysan-o-device")
REIDENTIFY = ("auto", "on", "off")
PRED_CACHE_VERSION = 1
SKIPPABLE = ("tradeoff", "candidates", "dtw")
ARTIFACTS: dict[str, tuple[str, str, str]] = {
    # key: (json, png, heading)
    "main": ("main_table.json", "main_accuracy.png", "Strategies × attackers"),
    "fig3": ("fig3_user_cdf.json", "fig3_user_cdf.png", "Per-user accuracy CDFs (Fig. 3)"),
    "fig7": ("fig7_tradeoff.json", "fig7_tradeoff.png", "Utility / privacy trade-off over y (Fig. 7)"),
    "table1": ("table1_candidates.json", "table1_candidates.png", "Number of candidate models (Table 1)"),
    "table4": ("table4_distortion.json", "table4_distortion.png", "Distortion statistics (Table 4)"),
    "fig6": ("fig6_models_used.json", "fig6_models_used.png", "Models used per user (Fig. 6)"),
    "fig8": ("fig8_uniqueness.json", "fig8_uniqueness.png", "Uniqueness of selected models (Fig. 8)"),
    "dtw": ("appF_dtw.json", "appF_dtw.png", "DTW distortion across models (Appendix F)"),
}
NEEDS = {"fig7": "tradeoff", "table1": "candidates", "fig8": "candidates", "dtw": "dtw"}


@dataclass
class EvalConfig:
    weights: Weights = field(default_factory=Weights)
    segment: int = 5
    candidates: int = ScheduleDefaults().candidates
    calibration_seconds: float = 5.0
    attack: attackers.AttackConfig = field(default_factory=attackers.AttackConfig)
    sweep_ys: tuple[float, ...] = tuple(round(0.1 * i, 1) for i in range(1, 10))
    candidate_counts: tuple[int, ...] = (36, 20, 16, 8)
    uniqueness_points: tuple[int, ...] = (1, 2, 3, 4, 5)
    uniqueness_draws: int = 100
    dtw_windows: int = 64
    skip: frozenset[str] = frozenset()
    seed: int = 0
    strategies: frozenset[str] | None = None
    """Strategies to score (None: all). ``raw`` is always scored (every table compares with it)."""
    reidentify: str = "auto"
    """Subject re-identification attackers: ``auto`` (within-subject runs), ``on``, ``off``."""

    def wants(self, name: str) -> bool:
        return self.strategies is None or name in self.strategies or name == "raw"

    def to_dict(self) -> dict:
        return {
            "x": self.weights.x, "y": self.weights.y, "segment": self.segment, "candidates": self.candidates,
            "calibration_seconds": self.calibration_seconds,
            "calibration_windows_per_code": streams.windows_for(self.calibration_seconds),
            "attackers": list(self.attack.families), "cnn_epochs": self.attack.cnn_epochs,
            "rf_trees": self.attack.rf_trees, "sweep_ys": list(self.sweep_ys),
            "candidate_counts": list(self.candidate_counts), "uniqueness_points": list(self.uniqueness_points),
            "uniqueness_draws": self.uniqueness_draws, "dtw_windows": self.dtw_windows,
            "skip": sorted(self.skip), "seed": self.seed,
            "strategies": None if self.strategies is None else sorted(self.strategies),
            "reidentify": self.reidentify,
        }


def dump(path: Path, obj) -> None:
    path.write_text(jsonio.dumps(obj, indent=1))


class Evaluation:
    """State shared by the steps: the run, every model's outputs, streams, hits and the raw attackers."""

    def __init__(self, ctx: RunContext, cfg: EvalConfig, cache_root: Path) -> None:
        self.ctx, self.cfg = ctx, cfg
        self.pred_cache = cache_root / "attacks"
        import_tf().get_logger().setLevel("ERROR")  # Keras predict's retracing notes would flood the log
        n_models = len(ctx.models)
        with ui.progress(f"sanitizing with {n_models} models", n_models) as step:
            self.outs = sanitize.all_outputs(ctx, cache_root, step)
        self.n_grid = len(ctx.grid)
        with ui.progress("streams and calibration forests", 2) as step:
            per_code = streams.windows_for(cfg.calibration_seconds)
            self.sides = {"train": ctx.train, "test": ctx.test}
            self.streams = {s: streams.build(self.sides[s], per_code) for s in self.sides}
            self.raw_features = {s: window_features(self.sides[s].counts) for s in self.sides}
            self.rf_labels, self.calibration = {}, {}
            for s in self.sides:
                self.rf_labels[s], self.calibration[s] = calib.rf_labels(
                    self.sides[s], self.streams[s], ctx.n_act, seed=cfg.seed, population=ctx.train)
                step.advance()
        self.idx = {s: self.streams[s].scored_index() for s in self.sides}
        for s, idx in self.idx.items():
            if len(idx) == 0:
                raise DysanError(f"no {s} window is left to score after the calibration windows "
                                 f"(--calibration-seconds {cfg.calibration_seconds})")
        self.hits = {}
        for s, side in self.sides.items():
            act = np.stack([o.side(s).act_pred for o in self.outs[: self.n_grid]], axis=1)
            sens = np.stack([o.side(s).sens_pred for o in self.outs[: self.n_grid]], axis=1)
            self.hits[s] = {"act": act == side.activity[:, None], "sens": sens == side.sensitive[:, None],
                            "act_o": act == self.rf_labels[s][:, None]}
        self.own_pred = {s: {"activity": np.stack([o.side(s).act_pred for o in self.outs]),
                             "sensitive": np.stack([o.side(s).sens_pred for o in self.outs])} for s in self.sides}
        self.sources: list = list(self.outs)
        """What a choice index points to: the models' outputs, then the reference transforms' (when used)."""
        self._transform_index: dict[str, int] = {}
        self.reid = reidentification(ctx.protocol, cfg.reidentify)
        self._raw_models: dict[tuple[str, str], object] = {}

    # -- strategies ---------------------------------------------------------------------------------------

    def labels(self, side: str, task: str) -> np.ndarray:
        s = self.sides[side]
        if task == IDENTITY:
            return s.subject
        return s.activity if task == "activity" else s.sensitive

    def n_classes(self, task: str) -> int:
        return {"activity": self.ctx.n_act, "sensitive": 2, IDENTITY: len(self.ctx.subjects)}[task]

    def grid_strategies(self, w: Weights, subset: list[int] | None = None,
                        which: tuple[str, ...] = ("fixed", "personalized", "dynamic", "dysan-o", "dysan-o-device")
                        ) -> list[Strategy]:
        from . import strategies as st

        subset = list(range(self.n_grid)) if subset is None else subset
        pick = np.asarray(subset)

        def to_global(c: np.ndarray) -> np.ndarray:
            return np.where(c == RAW, RAW, pick[np.clip(c, 0, None)])

        h = {s: {k: v[:, subset] for k, v in self.hits[s].items()} for s in self.sides}
        n = {s: len(self.sides[s]) for s in self.sides}
        out = []
        if "fixed" in which:
            best, info = st.fixed_model(h["train"]["act"], h["train"]["sens"], self.streams["train"], w)
            model = int(pick[best])
            out.append(Strategy("fixed", "fixed", *(st.constant_choice(model, self.streams[s], n[s]) for s in
                                                    ("train", "test")),
                                {"model": self.ctx.models[model].key, **info}))
        if "personalized" in which:
            choice, info = {}, {}
            for s in ("train", "test"):
                models = st.personalized_models(h[s]["act"], h[s]["sens"], self.streams[s], w)
                choice[s] = to_global(st.per_user_choice(models, self.streams[s], n[s]))
                info[s] = {self.ctx.subjects[u]: self.ctx.models[int(pick[m])].key for u, m in models.items()}
            out.append(Strategy("personalized", "personalized", choice["train"], choice["test"], {"models": info}))
        for name, label, key, cands in (("dynamic", "dynamic (DySan)", "act", None),
                                        ("dysan-o", "DySan(o)", "act_o", None),
                                        ("dysan-o-device", "DySan(o)-device", "act_o", self.cfg.candidates)):
            if name not in which:
                continue
            choice = {s: to_global(st.dynamic_models(h[s][key], h[s]["sens"], self.streams[s], w, self.cfg.segment,
                                                      candidates=cands)) for s in ("train", "test")}
            info = {"candidates_per_window": min(cands, len(subset)) if cands else len(subset)}
            out.append(Strategy(name, label, choice["train"], choice["test"], info))
        return out

    def baseline_strategies(self) -> list[Strategy]:
        from .strategies import constant_choice

        out = []
        for k, ref in enumerate(self.ctx.baselines):
            m = self.n_grid + k
            out.append(Strategy(ref.key, ref.label, constant_choice(m, self.streams["train"], len(self.ctx.train)),
                                constant_choice(m, self.streams["test"], len(self.ctx.test)), {"model": ref.key}))
        return out

    def raw_strategy(self) -> Strategy:
        return Strategy("raw", "raw", np.full(len(self.ctx.train), RAW), np.full(len(self.ctx.test), RAW), {})

    def transform_strategies(self, names: tuple[str, ...] = tuple(transforms.TRANSFORMS)) -> list[Strategy]:
        """The reference transforms (:mod:`.transforms`) as strategies: every scored window transformed."""
        from .strategies import constant_choice

        out = []
        for name in names:
            t = transforms.TRANSFORMS[name]
            if name not in self._transform_index:
                self._transform_index[name] = len(self.sources)
                self.sources.append(transforms.outputs(t, self.ctx.train.counts, self.ctx.test.counts, self.ctx.norm,
                                                       seed=self.cfg.seed))
            m = self._transform_index[name]
            out.append(Strategy(name, t.label, constant_choice(m, self.streams["train"], len(self.ctx.train)),
                                constant_choice(m, self.streams["test"], len(self.ctx.test)),
                                {"transform": name}))
        return out

    # -- attackers ----------------------------------------------------------------------------------------

    def _inputs(self, choice: np.ndarray, side: str, families: tuple[str, ...]) -> attackers.Inputs:
        s = self.sides[side]
        return attackers.inputs(choice, self.idx[side], side, s.counts, self.raw_features[side], self.sources,
                                families)

    def raw_model(self, family: str, task: str):
        key = (family, task)
        if key not in self._raw_models:
            data = self._inputs(np.full(len(self.ctx.train), RAW), "train", (family,)).for_family(family)
            self._raw_models[key] = attackers.fit(family, task, self.n_classes(task), data,
                                                  self.labels("train", task)[self.idx["train"]], self.cfg.attack)
        return self._raw_models[key]

    def _predictions(self, kind: str, family: str, task: str, strat: Strategy, compute) -> np.ndarray:
        """Test predictions of one attacker, cached on disk by everything they depend on.

        The key covers the attacker (kind, family, task, its settings and seed), the models' cached outputs,
        the scored windows and the strategy's choice on each side it reads, so a rerun (or a sweep point that
        repeats a choice) reuses them and a change of any input recomputes.
        """
        a = self.cfg.attack
        h = hashlib.sha256(json.dumps([PRED_CACHE_VERSION, kind, family, task, a.seed,
                                       a.rf_trees if family == "rf" else a.cnn_epochs,
                                       [o.cache_id for o in self.sources]]).encode())
        for arr in (self.idx["train"], self.idx["test"], strat.test, *((strat.train,) if kind == "adaptive" else ())):
            h.update(np.ascontiguousarray(arr, dtype=np.int64).tobytes())
        path = self.pred_cache / f"{h.hexdigest()[:32]}.npy"
        if path.is_file():
            return np.load(path)
        pred = np.asarray(compute(), dtype=np.int64)
        self.pred_cache.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, pred)
        tmp.replace(path)
        return pred

    def tasks(self, reid: bool) -> tuple[str, ...]:
        return (*TASKS, IDENTITY) if reid and self.reid else TASKS

    def attack(self, strat: Strategy, families: tuple[str, ...], step=None, raw_trained: bool = True,
               reid: bool = False) -> dict:
        """Accuracy summaries ``{attacker: {task: summary}}`` over the scored test windows.

        ``reid``: also the subject re-identification attackers (task ``identity``) where the evaluation has
        them (within-subject: every test user is among the training users).
        """
        te = self.idx["test"]
        names = self.ctx.subjects
        subject = self.ctx.test.subject[te]
        lazy: dict[str, attackers.Inputs] = {}

        def data(side: str, family: str) -> np.ndarray:
            if side not in lazy:
                lazy[side] = self._inputs(strat.test if side == "test" else strat.train, side, families)
            return lazy[side].for_family(family)

        out: dict[str, dict] = {}
        for family in families:
            for task in self.tasks(reid):
                y = self.labels("test", task)[te]
                n_classes = self.n_classes(task)

                def raw_compute(family=family, task=task):
                    return attackers.predict(self.raw_model(family, task), data("test", family))

                def adaptive_compute(family=family, task=task, n_classes=n_classes):
                    model = attackers.fit(family, task, n_classes, data("train", family),
                                          self.labels("train", task)[self.idx["train"]], self.cfg.attack)
                    return attackers.predict(model, data("test", family))

                raw_pred = self._predictions("raw", family, task, strat, raw_compute)
                if strat.name == "raw":
                    pred = raw_pred  # the adaptive attacker of raw data is the raw-trained one
                else:
                    pred = self._predictions("adaptive", family, task, strat, adaptive_compute)
                out.setdefault(f"{family}-adaptive", {})[task] = metrics.accuracy_summary(pred == y, subject, names,
                                                                                          labels=y)
                if raw_trained:
                    out.setdefault(f"{family}-raw", {})[task] = metrics.accuracy_summary(raw_pred == y, subject,
                                                                                         names, labels=y)
                if step is not None:
                    step.advance(1, note=f"{strat.name} {family} {task}")
        chosen = strat.test[te]
        if ((chosen != RAW) & (chosen < len(self.outs))).all():  # own P/D: models only, not transforms
            for task in TASKS:
                y = self.labels("test", task)[te]
                own = self.own_pred["test"][task][chosen, te]
                out.setdefault("own", {})[task] = metrics.accuracy_summary(own == y, subject, names, labels=y)
        return out

    # -- per-strategy extras ----------------------------------------------------------------------------

    def distortion(self, strat: Strategy) -> dict:
        te = self.idx["test"]
        windows = self._inputs(strat.test, "test", ("cnn",)).windows
        chosen = strat.test[te]
        l1 = np.zeros(len(te), dtype=np.float64)
        for m in np.unique(chosen[chosen != RAW]):
            rows = chosen == m
            l1[rows] = self.sources[int(m)].test.distortion[te[rows]]
        return {"l1_normalized": float(l1.mean()), "stats": metrics.distortion_table(windows)}

    def traces(self, strat: Strategy) -> dict[str, np.ndarray]:
        from .strategies import segment_trace

        tr = segment_trace(strat.test, self.streams["test"], self.cfg.segment)
        return {self.ctx.subjects[u]: t for u, t in tr.items()}


def attacker_keys(families: tuple[str, ...]) -> list[str]:
    return [f"{f}-adaptive" for f in families] + [f"{f}-raw" for f in families] + ["own"]


def reidentification(protocol: str, setting: str) -> bool:
    """Whether the re-identification attackers run: only where every test user is among the training users."""
    if setting not in REIDENTIFY:
        raise DysanError(f"--reidentification: {setting!r} (choose from {', '.join(REIDENTIFY)})")
    if setting == "on" and protocol != "within-subject":
        raise DysanError(f"re-identification needs the test users among the training users (within-subject); "
                         f"this evaluation is {protocol}")
    return setting == "on" or (setting == "auto" and protocol == "within-subject")


def main_table(results: dict, families: tuple[str, ...], attribute: str) -> dict:
    keys = attacker_keys(families)
    rows = []
    raw = results["strategies"]["raw"]["attackers"]
    for name, r in results["strategies"].items():
        att = r["attackers"]
        acc = {k: {t: att[k][t]["accuracy"] for t in (*TASKS, IDENTITY) if t in att[k]} for k in keys if k in att}
        balanced = {k: {t: att[k][t].get("balanced_accuracy") for t in (*TASKS, IDENTITY) if t in att[k]}
                    for k in keys if k in att}
        targets = {}
        for f in families:
            key = f"{f}-adaptive"
            if key in r["attackers"]:
                a, s = acc[key]["activity"], acc[key]["sensitive"]
                ra = raw[key]["activity"]["accuracy"]
                targets[key] = {"activity_within_3_points_of_raw": bool(a >= ra - 0.03),
                                "sensitive_at_most_55_percent": bool(s <= 0.55)}
        rows.append({"name": name, "label": r["label"], "accuracy": acc, "balanced_accuracy": balanced,
                     "targets": targets, "distortion_l1": r["distortion"]["l1_normalized"]})
    first = next(iter(raw.values()))
    majority = {t: first[t].get("majority_rate") for t in (*TASKS, IDENTITY) if t in first}
    return {"attribute": attribute, "attackers": keys, "majority_rate": majority, "rows": rows,
            "identity": IDENTITY in first}


def select_strategies(ev: Evaluation, cfg: EvalConfig) -> list[Strategy]:
    """raw, the reference transforms, the grid's strategies, the baselines — those ``cfg.strategies`` names.

    A baseline is named by its model key (``gen-a0.60_l0.40``) or its run's loss (``gen``: all its models).
    """
    baselines = ev.baseline_strategies()
    losses = {m.loss for m in ev.ctx.baselines}
    known = ["raw", *transforms.TRANSFORMS, *GRID_STRATEGIES, *sorted(losses), *(b.name for b in baselines)]
    if cfg.strategies is not None:
        unknown = sorted(set(cfg.strategies) - set(known))
        if unknown:
            raise DysanError(f"--strategies: unknown {', '.join(unknown)} (this evaluation has: {', '.join(known)})")
    names = tuple(n for n in transforms.TRANSFORMS if cfg.wants(n))
    grid = tuple(n for n in GRID_STRATEGIES if cfg.wants(n))
    loss_of = {m.key: m.loss for m in ev.ctx.baselines}
    chosen_baselines = [b for b in baselines if cfg.wants(b.name) or cfg.wants(loss_of[b.name])]
    return [ev.raw_strategy(), *ev.transform_strategies(names),
            *(ev.grid_strategies(cfg.weights, which=grid) if grid else []), *chosen_baselines]


def evaluate(ctx: RunContext, cfg: EvalConfig, out_dir: Path, commands: dict | None = None,
             log: Callable[[str], None] = ui.info) -> dict:
    t0 = time.time()
    out_dir.mkdir(parents=True, exist_ok=True)
    jit = sanitize.jitter_of(ctx)
    if jit is not None:
        log(f"the run was trained with --jitter: its sanitized windows are evaluated through the on-device jitter "
            f"(±{jit.max_angle_deg:g}° rotation, 1 ± {jit.max_gain:g} gain), one secret seed per user")
    ev = Evaluation(ctx, cfg, RunDir(ctx.path).eval_cache(ctx.transfer_name))
    families = cfg.attack.families
    strategies = select_strategies(ev, cfg)
    names = {s.name for s in strategies}
    split = ctx.split_info
    results: dict = {
        "run": str(ctx.path), "data": ctx.data_spec, "synthetic": ctx.synthetic, "protocol": ctx.protocol,
        "fold": split["fold"], "folds": split["folds"], "split_seed": split["seed"],
        "transfer": ctx.transfer,
        "attribute": ctx.attribute, "attribute_labels": list(ctx.attribute_labels), "classes": list(ctx.classes),
        "family": ctx.config["train"]["family"], "epochs": ctx.config["train"]["epochs"],
        "models": [m.key for m in ctx.grid], "baselines": ctx.baseline_runs and [
            {k: v for k, v in b.items() if k != "config"} for b in ctx.baseline_runs],
        "config": cfg.to_dict(), "commands": commands or {},
        "jitter": sanitize.jitter_info(ctx),
        "windows": {s: {"total": len(ev.sides[s]), "scored": int(ev.streams[s].scored.sum()),
                        "users": len(ev.streams[s].users)} for s in ev.sides},
        "calibration": {s: {**{k: v for k, v in ev.calibration[s].items() if k != "per_user"},
                            "per_user": {ctx.subjects[u]: v for u, v in ev.calibration[s]["per_user"].items()}}
                        for s in ev.sides},
        "strategies": {},
    }
    results["reidentification"] = ev.reid
    n_fits = len(strategies) * len(families) * len(ev.tasks(True))
    with ui.progress("attackers per strategy", n_fits) as step:
        for strat in strategies:
            results["strategies"][strat.name] = {"label": strat.label, "info": strat.info,
                                                 "attackers": ev.attack(strat, families, step, reid=True),
                                                 "distortion": ev.distortion(strat)}
    artifacts = {}

    def write(key: str, table: dict, draw) -> None:
        json_name, png_name, heading = ARTIFACTS[key]
        dump(out_dir / json_name, table)
        draw(table, out_dir / png_name, ctx.synthetic)
        artifacts[key] = {"json": json_name, "png": png_name, "heading": heading}

    write("main", main_table(results, families, ctx.attribute), figures.main_accuracy)
    cdf_attackers = [k for k in attacker_keys(families) if k.endswith("adaptive")] + ["own"]
    write("fig3", {"attribute": ctx.attribute, "attackers": cdf_attackers, "strategies": {
        name: {"label": results["strategies"][name]["label"],
               **{k: {t: sorted(results["strategies"][name]["attackers"][k][t]["per_user"].values()) for t in TASKS}
                  for k in cdf_attackers if k in results["strategies"][name]["attackers"]}}
        for name in ("raw", "fixed", "personalized", "dynamic") if name in names}}, figures.user_cdf)
    write("table4", distortion_table(results), figures.distortion)
    dynamic_like = [s for s in strategies if s.name in ("dynamic", "dysan-o", "dysan-o-device")]
    write("fig6", {"models": ev.n_grid, "strategies": {
        s.name: {"label": s.label, "per_user": metrics.models_used_share(ev.traces(s), ev.n_grid)}
        for s in dynamic_like}}, figures.models_used)
    # the sweeps are about the dynamic selection: run when it is among the selected strategies
    if "tradeoff" not in cfg.skip and "dynamic" in names:
        write("fig7", tradeoff(ev, cfg, results["strategies"]), figures.tradeoff)
    if "candidates" not in cfg.skip and {"dynamic", "dysan-o"} <= names:
        table1, fig8 = candidates(ev, cfg, results)
        write("table1", table1, figures.candidates)
        write("fig8", fig8, figures.uniqueness)
    if "dtw" not in cfg.skip:
        write("dtw", dtw_table(ev, cfg), figures.dtw)
    results["artifacts"] = artifacts
    results["seconds"] = round(time.time() - t0, 1)
    dump(out_dir / RESULTS, results)
    log(f"wrote {out_dir / RESULTS} and {len(artifacts)} tables/figures in {results['seconds']:.0f} s")
    return results


def write_folds(out_dir: Path, per_fold: list[dict], log: Callable[[str], None] = ui.info) -> dict:
    """Aggregate the folds' results (:mod:`.folds`) beside the first one; returns its updated results."""
    from . import folds

    table = folds.aggregate(per_fold)
    dump(out_dir / folds.JSON, table)
    figures.folds(table, out_dir / folds.PNG, bool(per_fold[0]["synthetic"]))
    results = per_fold[0]
    results["folds_summary"] = {"json": folds.JSON, "png": folds.PNG, "heading": folds.HEADING, "n": table["n"],
                                "folds": table["folds"], "runs": table["runs"]}
    dump(out_dir / RESULTS, results)
    log(f"wrote {out_dir / folds.JSON}: mean ± std over {table['n']} folds {table['folds']}")
    return results


def distortion_table(results: dict) -> dict:
    rows = []
    raw = results["strategies"]["raw"]["distortion"]["stats"]
    for name, r in results["strategies"].items():
        stats = r["distortion"]["stats"]
        rel = {sig: {k: metrics.relative_error(v, raw[sig][k]) for k, v in vals.items()} for sig, vals in stats.items()}
        rows.append({"name": name, "label": r["label"], "values": stats, "relative_error": rel,
                     "l1_normalized": r["distortion"]["l1_normalized"]})
    return {"signals": list(raw), "stats": list(metrics.STATS), "rows": rows}


def _accuracies(attacks: dict) -> dict:
    """``{attacker: {task: summary}}`` -> ``{attacker: {task: pooled accuracy}}``."""
    return {a: {t: v[t]["accuracy"] for t in TASKS} for a, v in attacks.items()}


def _per_user(attacks: dict) -> dict:
    """``{attacker: {task: summary}}`` -> ``{attacker: {task: {user: accuracy}}}``."""
    return {a: {t: v[t]["per_user"] for t in TASKS} for a, v in attacks.items()}


def _rf_and_own(attacks: dict) -> dict:
    return {k: v for k, v in attacks.items() if k in ("rf-adaptive", "rf-raw", "own")}


def tradeoff(ev: Evaluation, cfg: EvalConfig, main: dict | None = None) -> dict:
    """Fig. 7: the dynamic (oracle) selection for y = 0.1 … 0.9 with x = 1 − y; RF attackers and own P/D."""
    rows = []
    with ui.progress("trade-off sweep over y", len(cfg.sweep_ys) * len(TASKS)) as step:
        for y in cfg.sweep_ys:
            w = Weights(round(1 - y, 6), y)
            strat = ev.grid_strategies(w, which=("dynamic",))[0]
            if main is not None and (w.x, w.y) == (cfg.weights.x, cfg.weights.y) and "rf" in cfg.attack.families:
                res = _rf_and_own(main["dynamic"]["attackers"])  # the main table's dynamic row: same choice
                step.advance(len(TASKS), note=f"y = {y} (main table's)")
            else:
                res = ev.attack(strat, ("rf",), step)
            rows.append({"y": y, "x": w.x, "accuracy": _accuracies(res), "per_user": _per_user(res),
                         "models_used_mean": float(np.mean(list(metrics.models_used_share(
                             ev.traces(strat), ev.n_grid).values())))})
    return {"x_rule": "1 − y", "attribute": ev.ctx.attribute, "strategy": "dynamic (DySan, oracle labels)",
            "attackers": list(rows[0]["accuracy"]) if rows else [], "rows": rows}


def candidate_subsets(ev: Evaluation, counts: tuple[int, ...]) -> list[tuple[int, list[int]]]:
    """Prefixes of the coarse-to-fine order of the run's grid (the same order ``--grid N`` uses)."""
    points = [m.point for m in ev.ctx.grid]
    order = grid_mod.coarse_to_fine(points)
    index = {p: i for i, p in enumerate(points)}
    sizes = sorted({n for n in counts if n < len(points)} | {len(points)}, reverse=True)
    return [(n, sorted(index[p] for p in order[:n])) for n in sizes]


def candidates(ev: Evaluation, cfg: EvalConfig, results: dict) -> tuple[dict, dict]:
    """Table 1 (accuracies with fewer candidates) and Fig. 8 (uniqueness of the selected-model sets)."""
    subsets = candidate_subsets(ev, cfg.candidate_counts)
    rows, uniq_rows = [], []
    names = ("dynamic", "dysan-o")
    with ui.progress("candidate subsets", len(subsets) * len(names) * len(TASKS)) as step:
        for n, subset in subsets:
            strats = ev.grid_strategies(cfg.weights, subset=subset, which=names)
            if n == ev.n_grid and "rf" in cfg.attack.families:  # every model: the main table's rows
                res = {s.name: _rf_and_own(results["strategies"][s.name]["attackers"]) for s in strats}
                step.advance(len(names) * len(TASKS), note=f"{n} models (main table's)")
            else:
                res = {s.name: ev.attack(s, ("rf",), step) for s in strats}
            rows.append({"models": n, "subset": [ev.ctx.models[i].key for i in subset],
                         "results": {k: _accuracies(v) for k, v in res.items()},
                         "per_user": {k: _per_user(v) for k, v in res.items()}})
            dyn = next(s for s in strats if s.name == "dynamic")
            traces = ev.traces(dyn)
            uniq_rows.append({"models": n, "per_user": {str(p): metrics.uniqueness(traces, p, cfg.uniqueness_draws,
                                                                                     cfg.seed)
                                                         for p in cfg.uniqueness_points},
                              "segments_per_user": {u: len(t) for u, t in traces.items()}})
    attackers_ = list(rows[0]["results"]["dynamic"]) if rows else []
    table1 = {"attribute": ev.ctx.attribute, "strategies": list(names), "attackers": attackers_, "rows": rows,
              "subset_rule": "prefix of train.grid.coarse_to_fine over the run's grid points"}
    for r in uniq_rows:
        r["mean"] = {p: (float(np.mean([v for v in vals.values() if v is not None]))
                         if any(v is not None for v in vals.values()) else None) for p, vals in r["per_user"].items()}
    fig8 = {"points": list(cfg.uniqueness_points), "draws": cfg.uniqueness_draws, "strategy": "dynamic",
            "rows": uniq_rows}
    return table1, fig8


def dtw_table(ev: Evaluation, cfg: EvalConfig) -> dict:
    """Appendix F: DTW(raw, sanitized) for a seeded sample of scored test windows, every model."""
    rng = np.random.default_rng(cfg.seed)
    te = ev.idx["test"]
    sample = np.sort(rng.choice(te, size=min(cfg.dtw_windows, len(te)), replace=False))
    raw = ev.ctx.test.x[sample]
    rows = []
    with ui.progress("DTW per model", len(ev.outs)) as step:
        for o in ev.outs:
            san = ev.ctx.norm.normalize(np.asarray(o.test.windows[sample]))
            d = metrics.dtw_batch(raw, san)
            rows.append({"model": o.ref.key, "label": o.ref.label, "baseline": o.ref.baseline,
                         "mean": float(d.mean()), "std": float(d.std()), "per_window": d.tolist()})
            step.advance(1, note=o.ref.key)
    grid_rows = [r for r in rows if not r["baseline"]]
    means = np.array([r["mean"] for r in grid_rows])
    per_window = np.array([r["per_window"] for r in grid_rows])
    return {
        "windows": len(sample), "units": "normalized channels (the run's normalization), Euclidean local cost",
        "rows": rows,
        "grid_mean": float(means.mean()), "grid_std_of_model_means": float(means.std()),
        "grid_cv_of_model_means": float(means.std() / means.mean()) if means.mean() > 0 else None,
        "grid_mean_std_across_models_per_window": float(per_window.std(axis=0).mean()),
    }
