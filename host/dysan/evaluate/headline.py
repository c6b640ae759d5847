"""The report's headline figure: the privacy/utility plane.

One point per strategy — activity accuracy (utility, x) against attribute accuracy (privacy leak, y) of the
*adaptive* attackers (retrained on each strategy's sanitized data, the threat model of BRIEF §6) — with the
spread over users as interquartile bars, raw marked, the attribute's chance level and the target zone shaded
(activity within 3 points of raw, attribute at most 55 %). One panel per attacker family.

Drawn from ``results.json`` alone (pooled and per-user accuracies that ``dysan evaluate`` measured): nothing
is recomputed, so the figure shows exactly the numbers of the tables below it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .figures import COLORS, _plt, _save, _title

#: the targets the main table colours (pipeline.main_table): activity >= raw - 3 pts, attribute <= 55 %
ACTIVITY_MARGIN = 0.03
ATTRIBUTE_TARGET = 0.55
FILENAME = "headline_tradeoff.png"


def points(results: dict, attacker: str) -> list[dict]:
    """Per strategy: pooled activity/attribute accuracy and the per-user quartiles of each, for one attacker."""
    out = []
    for name, s in results["strategies"].items():
        tasks = s["attackers"].get(attacker)
        if not tasks or "activity" not in tasks or "sensitive" not in tasks:
            continue
        entry = {"name": name, "label": s["label"]}
        for task in ("activity", "sensitive"):
            users = np.array([v for v in tasks[task]["per_user"].values() if v is not None], dtype=float)
            q1, q3 = (np.percentile(users, [25, 75]) if len(users) else (np.nan, np.nan))
            entry[task] = {"pooled": float(tasks[task]["accuracy"]), "q1": float(q1), "q3": float(q3),
                           "users": len(users), "majority": tasks[task].get("majority_rate")}
        out.append(entry)
    return out


def attackers(results: dict) -> list[str]:
    """The adaptive attackers present in this evaluation, RF before CNN."""
    found = {k for s in results["strategies"].values() for k in s["attackers"] if k.endswith("-adaptive")}
    return sorted(found, key=lambda k: (not k.startswith("rf"), k))


def draw(results: dict, target: Path) -> bool:
    """Write the plane to ``target``; False (nothing written) when the evaluation has no adaptive attacker."""
    keys = attackers(results)
    if not keys:
        return False
    plt = _plt()
    fig, axes = plt.subplots(1, len(keys), figsize=(6.4 * len(keys), 5.2), squeeze=False)
    attribute = results["attribute"]
    for ax, key in zip(axes[0], keys, strict=True):
        pts = points(results, key)
        raw = next((p for p in pts if p["name"] == "raw"), None)
        xs = [p["activity"]["pooled"] for p in pts] + [p["activity"]["q1"] for p in pts]
        ys = [p["sensitive"]["pooled"] for p in pts] + [p["sensitive"]["q1"] for p in pts]
        x_lo = max(0.0, min(v for v in xs if np.isfinite(v)) - 0.05)
        y_lo = max(0.0, min(min(v for v in ys if np.isfinite(v)), 0.45) - 0.05)
        if raw is not None:
            floor = raw["activity"]["pooled"] - ACTIVITY_MARGIN
            ax.axvspan(floor, 1.0, ymin=0, ymax=1, color="#c8e6c9", alpha=0.35, lw=0)
            ax.fill_between([floor, 1.0], y_lo, ATTRIBUTE_TARGET, color="#4caf50", alpha=0.25, lw=0,
                            label=f"target: activity ≥ raw − {100 * ACTIVITY_MARGIN:.0f} pts, "
                                  f"{attribute} ≤ {100 * ATTRIBUTE_TARGET:.0f} %")
            chance = raw["sensitive"].get("majority")
            if chance is not None:
                ax.axhspan(y_lo, chance, color="0.85", alpha=0.5, lw=0,
                           label=f"{attribute} at or below chance (majority class {100 * chance:.1f} %)")
        for k, p in enumerate(pts):
            a, s = p["activity"], p["sensitive"]
            color = COLORS.get(p["name"], f"C{k % 10}")
            is_raw = p["name"] == "raw"
            ax.errorbar(a["pooled"], s["pooled"],
                        xerr=[[max(0.0, a["pooled"] - a["q1"])], [max(0.0, a["q3"] - a["pooled"])]],
                        yerr=[[max(0.0, s["pooled"] - s["q1"])], [max(0.0, s["q3"] - s["pooled"])]],
                        fmt="*" if is_raw else "o", ms=15 if is_raw else 7, color="k" if is_raw else color,
                        ecolor=color, elinewidth=0.8, alpha=0.9, capsize=2, label=p["label"])
            ax.annotate(p["label"], (a["pooled"], s["pooled"]), xytext=(4, 4), textcoords="offset points",
                        fontsize=7)
        ax.set_xlim(x_lo, 1.0)
        ax.set_ylim(y_lo, 1.0)
        ax.set_xlabel("activity accuracy (utility →)")
        ax.set_ylabel(f"{attribute} accuracy (← privacy)")
        ax.set_title(f"{key} attacker (retrained on sanitized data)", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="upper left")
    users = next(iter(points(results, keys[0])), {}).get("activity", {}).get("users", 0)
    fig.suptitle(_title(f"Privacy / utility per strategy — bars: interquartile range over {users} users",
                        bool(results.get("synthetic"))), fontsize=11)
    _save(fig, target)
    return True
