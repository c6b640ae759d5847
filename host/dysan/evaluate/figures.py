"""The PNG figures of the evaluation, each drawn from the JSON table written beside it (nothing recomputed).

Every function takes that table (plain data) and a target path, so a figure can be redrawn from the JSON
alone. Titles carry "SYNTHETIC" when the data is synthetic.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _title(text: str, synthetic: bool) -> str:
    return f"{text} — SYNTHETIC data" if synthetic else text


def _save(fig, target: Path) -> None:
    fig.tight_layout()
    fig.savefig(target, dpi=90)
    _plt().close(fig)


def main_accuracy(table: dict, target: Path, synthetic: bool) -> None:
    """Grouped bars: per strategy, activity and sensitive accuracy of each attacker."""
    plt = _plt()
    rows = table["rows"]
    attackers = table["attackers"]
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.2), sharey=True)
    width = 0.8 / max(1, len(attackers))
    x = np.arange(len(rows))
    for ax, task in zip(axes, ("activity", "sensitive"), strict=True):
        for k, att in enumerate(attackers):
            vals = [r["accuracy"].get(att, {}).get(task) for r in rows]
            ax.bar(x + k * width, [np.nan if v is None else v for v in vals], width, label=att)
        ax.set_xticks(x + width * (len(attackers) - 1) / 2, [r["label"] for r in rows], rotation=30, ha="right")
        ax.set_title(f"{task_label(task, table['attribute'])} accuracy")
        if task == "sensitive":
            ax.axhline(0.5, color="k", lw=0.8, ls=":")
            ax.axhline(0.55, color="r", lw=0.8, ls="--", label="target ≤ 55 %")
        ax.set_ylim(0, 1.15)
        ax.legend(fontsize=7, ncol=3, loc="upper right")
    fig.suptitle(_title("Accuracy per strategy and attacker (test windows)", synthetic))
    _save(fig, target)


COLORS = {"raw": "0.45", "fixed": "C1", "personalized": "C2", "dynamic": "C3", "dysan-o": "C4",
          "dysan-o-device": "C5"}


def task_label(task: str, attribute: str) -> str:
    """How a task is named on figures and tables: "activity", or the attribute's name (gender, age-group…)."""
    return "activity" if task == "activity" else attribute


def _cdf(ax, values: list[float], label: str, style: str = "-", color: str | None = None) -> None:
    v = np.sort(np.asarray(values, dtype=float))
    if len(v):
        ax.step(np.concatenate([[v[0]], v]), np.concatenate([[0.0], np.arange(1, len(v) + 1) / len(v)]),
                where="post", ls=style, label=label, color=color, lw=1.6 if style == "-" else 2.2)


def user_cdf(table: dict, target: Path, synthetic: bool) -> None:
    """Fig. 3: per-user CDFs of activity and sensitive accuracy, one row per attacker."""
    plt = _plt()
    attackers = table["attackers"]
    fig, axes = plt.subplots(len(attackers), 2, figsize=(10, 3.2 * len(attackers)), squeeze=False)
    for r, att in enumerate(attackers):
        for c, task in enumerate(("activity", "sensitive")):
            ax = axes[r][c]
            for name, entry in table["strategies"].items():
                vals = entry.get(att, {}).get(task)
                if vals:
                    _cdf(ax, vals, entry["label"], ":" if name == "raw" else "-", COLORS.get(name))
            ax.set_xlim(0, 1.02)
            ax.set_xlabel(f"{task_label(task, table['attribute'])} accuracy per user")
            ax.set_ylabel("share of users")
            ax.set_title(att, fontsize=9)
            ax.legend(fontsize=7)
    fig.suptitle(_title("Per-user accuracy CDFs (Fig. 3)", synthetic))
    _save(fig, target)


def tradeoff(table: dict, target: Path, synthetic: bool) -> None:
    """Fig. 7: accuracies of the dynamic selection against the privacy weight y."""
    plt = _plt()
    rows = table["rows"]
    ys = [r["y"] for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, task in zip(axes, ("activity", "sensitive"), strict=True):
        for att in table["attackers"]:
            ax.plot(ys, [r["accuracy"][att][task] for r in rows], marker="o", label=att)
        ax.set_xlabel(f"y (privacy weight; x = {table['x_rule']})")
        ax.set_title(f"{task_label(task, table['attribute'])} accuracy")
        ax.legend(fontsize=7)
    fig.suptitle(_title("Utility / privacy trade-off of the dynamic selection (Fig. 7)", synthetic))
    _save(fig, target)


def candidates(table: dict, target: Path, synthetic: bool) -> None:
    """Table 1: accuracies against the number of candidate models."""
    plt = _plt()
    rows = table["rows"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, task in zip(axes, ("activity", "sensitive"), strict=True):
        for strat in table["strategies"]:
            for att in table["attackers"]:
                pts = [(r["models"], r["results"][strat][att][task]) for r in rows if strat in r["results"]]
                if pts:
                    ax.plot(*zip(*pts, strict=True), marker="o", label=f"{strat} / {att}")
        ax.set_xlabel("candidate models")
        ax.set_title(f"{task_label(task, table['attribute'])} accuracy")
        ax.legend(fontsize=7)
    fig.suptitle(_title("Number of candidate models (Table 1)", synthetic))
    _save(fig, target)


def distortion(table: dict, target: Path, synthetic: bool) -> None:
    """Table 4: relative error of each statistic against raw, per strategy (acceleration magnitude)."""
    plt = _plt()
    signal = table["signals"][0]
    rows = [r for r in table["rows"] if r["name"] != "raw"]
    stats = table["stats"]
    fig, ax = plt.subplots(figsize=(11, 3.8))
    width = 0.8 / max(1, len(rows))
    x = np.arange(len(stats))
    for k, r in enumerate(rows):
        vals = [r["relative_error"][signal][s] for s in stats]
        ax.bar(x + k * width, [np.nan if v is None else 100 * v for v in vals], width, label=r["label"])
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xticks(x + width * (len(rows) - 1) / 2, stats)
    ax.set_ylabel("relative error vs raw (%)")
    ax.legend(fontsize=7, ncol=2)
    fig.suptitle(_title(f"Distortion of {signal} (Table 4)", synthetic))
    _save(fig, target)


def models_used(table: dict, target: Path, synthetic: bool) -> None:
    """Fig. 6: CDF over users of the share of all models their stream uses."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name, entry in table["strategies"].items():
        _cdf(ax, list(entry["per_user"].values()), entry["label"], color=COLORS.get(name))
    ax.set_xlim(0, 1.02)
    ax.set_xlabel(f"share of the {table['models']} models used")
    ax.set_ylabel("share of users")
    ax.legend(fontsize=7)
    fig.suptitle(_title("Models used per user (Fig. 6)", synthetic))
    _save(fig, target)


def uniqueness(table: dict, target: Path, synthetic: bool) -> None:
    """Fig. 8: distribution over users of the uniqueness of p selected models, per candidate count."""
    plt = _plt()
    groups = table["rows"]
    fig, ax = plt.subplots(figsize=(10, 3.8))
    ps = table["points"]
    width = 0.8 / max(1, len(groups))
    for k, g in enumerate(groups):
        data = [[v for v in g["per_user"][str(p)].values() if v is not None] for p in ps]
        pos = np.arange(len(ps)) + k * width
        bp = ax.boxplot([d if d else [np.nan] for d in data], positions=pos, widths=width * 0.9,
                        patch_artist=True, manage_ticks=False)
        color = plt.cm.viridis(k / max(1, len(groups) - 1) if len(groups) > 1 else 0.3)
        for patch in bp["boxes"]:
            patch.set_facecolor(color)
        ax.plot([], [], color=color, lw=6, label=f"{g['models']} models")
    ax.set_xticks(np.arange(len(ps)) + width * (len(groups) - 1) / 2, [str(p) for p in ps])
    ax.set_xlabel("p (selected models drawn)")
    ax.set_ylabel("uniqueness per user")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=7)
    fig.suptitle(_title("Uniqueness of selected-model sets (Fig. 8)", synthetic))
    _save(fig, target)


def dtw(table: dict, target: Path, synthetic: bool) -> None:
    """Appendix F: DTW distance raw vs sanitized, per model."""
    plt = _plt()
    rows = table["rows"]
    fig, ax = plt.subplots(figsize=(max(6, 0.3 * len(rows) + 2), 3.8))
    ax.boxplot([r["per_window"] for r in rows], patch_artist=True)
    ax.set_xticks(np.arange(1, len(rows) + 1), [r["label"] for r in rows], rotation=90, fontsize=7)
    ax.set_ylabel("DTW(raw, sanitized)")
    fig.suptitle(_title(f"DTW distortion per model on {table['windows']} windows (Appendix F)", synthetic))
    _save(fig, target)


def folds(table: dict, target: Path, synthetic: bool) -> None:
    """Mean ± sample std over folds of each strategy's adaptive accuracies (activity, attribute, identity)."""
    plt = _plt()
    rows = table["rows"]
    tasks = [t for t in ("activity", "sensitive", "identity")
             if any(t in v for r in rows for a, v in r["accuracy"].items() if a.endswith("-adaptive"))]
    attackers = [a for a in (rows[0]["accuracy"] if rows else {}) if a.endswith("-adaptive")]
    fig, axes = plt.subplots(1, max(1, len(tasks)), figsize=(5 * max(1, len(tasks)), 4.2), sharey=True,
                             squeeze=False)
    width = 0.8 / max(1, len(attackers))
    x = np.arange(len(rows))
    for ax, task in zip(axes[0], tasks, strict=False):
        for k, att in enumerate(attackers):
            st = [r["accuracy"].get(att, {}).get(task) or {} for r in rows]
            mean = [np.nan if s.get("mean") is None else s["mean"] for s in st]
            err = [0.0 if s.get("std") is None else s["std"] for s in st]
            ax.bar(x + k * width, mean, width, yerr=err, capsize=2, label=att)
        ax.set_xticks(x + width * (len(attackers) - 1) / 2, [r["label"] for r in rows], rotation=30, ha="right")
        ax.set_title(f"{task_label(task, table['attribute']) if task != 'identity' else 'subject (re-id)'} accuracy")
        ax.set_ylim(0, 1.1)
        ax.legend(fontsize=7)
    fig.suptitle(_title(f"Mean ± std over {table['n']} folds (folds {table['folds']})", synthetic))
    _save(fig, target)
