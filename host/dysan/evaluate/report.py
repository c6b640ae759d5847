"""``dysan report``: one self-contained HTML page of an evaluation — every table inline, every figure as a
PNG beside the page (relative links), the exact commands that produced them, and a SYNTHETIC banner when the
data is synthetic.

The page is rendered from ``results.json`` and the per-analysis JSON tables that ``dysan evaluate`` wrote;
nothing is recomputed, so the page shows exactly the measured numbers.
"""

from __future__ import annotations

import html
import json
import shlex
import shutil
from pathlib import Path

from ..errors import DysanError
from ..rundir import RESULTS
from ..train import grid as grid_mod
from . import headline
from .figures import task_label
from .pipeline import ARTIFACTS, NEEDS, TASKS

CSS = """
body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.6em 0 1.4em;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:right}th{background:#f2f2f2}
td:first-child,th:first-child{text-align:left}
pre{background:#f6f6f6;padding:.7em;overflow-x:auto;font-size:12px;white-space:pre-wrap}
.synthetic{background:#b00020;color:#fff;padding:.6em 1em;font-weight:bold;font-size:1.2em}
.ok{color:#1b5e20}.bad{color:#b00020}img{max-width:100%;border:1px solid #ddd}
details{margin:.5em 0 1.2em}
"""


def train_command(config: dict, out: str) -> str:
    """The ``dysan train`` command equivalent to a run's config.json (its settings, written as options)."""
    t = config["train"]
    points = [grid_mod.GridPoint(float(p["alpha"]), float(p["lambda"])) for p in config["grid"]]
    if sorted(points) == sorted(grid_mod.full_grid()):
        grid = "full"
    elif points == grid_mod.SMALL:
        grid = "small"
    else:
        grid = ",".join(f"{p.alpha:g}/{p.lam:g}" for p in points)
    args = ["dysan", "train", "--data", config["data"], "--activities", config["activities"], "--attribute",
            config["attribute"], "--protocol", config["protocol"], "--fold", str(config["fold"])]
    if config.get("folds") is not None:
        args += ["--folds", str(config["folds"])]
    args += ["--family", t["family"], "--grid", grid, "--epochs", str(t["epochs"]), "--batch", str(t["batch_size"]),
             "--lr", f"{t['learning_rate']:g}", "--k-pred", str(t["k_pred"]), "--k-disc", str(t["k_disc"]),
             "--width", str(t["width"]), "--pretrain-epochs", str(t["pretrain_epochs"]), "--seed", str(t["seed"])]
    if t.get("loss", "dysan") != "dysan":
        args += ["--loss", t["loss"]]
    return shlex.join([*args, "--out", out])


def _e(v) -> str:
    return html.escape(str(v))


def _pct(v) -> str:
    return "–" if v is None else f"{100 * v:.1f} %"


def _table(columns: list[str], rows: list[list], raw_html: bool = False) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{c if raw_html else _e(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _main(t: dict, results: dict) -> str:
    cols = ["strategy"] + [f"{a} {task_label(k, t['attribute'])}" for a in t["attackers"]
                           for k in TASKS] + ["L1 distortion"]
    rows = []
    for r in t["rows"]:
        row = [_e(r["label"])]
        for a in t["attackers"]:
            for k in TASKS:
                v = r["accuracy"].get(a, {}).get(k)
                cls = ""
                tgt = r["targets"].get(a)
                if tgt and r["name"] != "raw":
                    ok = tgt["activity_within_3_points_of_raw" if k == "activity" else "sensitive_at_most_55_percent"]
                    cls = " class='ok'" if ok else " class='bad'"
                row.append(f"<span{cls}>{_pct(v)}</span>")
        row.append(f"{r['distortion_l1']:.3f}")
        rows.append(row)
    note = ("<p>Accuracy over the scored test windows (calibration windows and their overlaps excluded). "
            "<b>adaptive</b>: trained on the strategy's sanitized training stream; <b>raw</b>: trained on raw "
            "windows; <b>own</b>: the selected models' own P and D. Green/red (adaptive columns): activity within "
            "3 points of raw, attribute accuracy at most 55 %. L1: mean |S(x) − x| in normalized units.</p>")
    extra = []
    for s in results["strategies"].values():
        info = s.get("info", {})
        if "model" in info:
            extra.append([s["label"], _e(info["model"])])
        elif "models" in info:
            test = info["models"].get("test", {})
            extra.append([s["label"], _e(", ".join(f"{u}: {m}" for u, m in test.items()))])
    chosen = _table(["strategy", "model(s) (test users)"], extra, raw_html=True) if extra else ""
    return note + _table(cols, rows, raw_html=True) + _balanced(t) + _reid(t) + chosen + _per_user(results)


def _reid(t: dict) -> str:
    """Re-identification: attackers retrained to name the subject of each window (within-subject only)."""
    if not t.get("identity"):
        return ""
    keys = [a for a in t["attackers"] if a != "own"]
    cols = ["strategy"] + [f"{a} {m}" for a in keys for m in ("accuracy", "balanced")]
    rows = [[r["label"]] + [_pct(d.get(a, {}).get("identity")) for a in keys
                            for d in (r["accuracy"], r["balanced_accuracy"])] for r in t["rows"]]
    majority = (t.get("majority_rate") or {}).get("identity")
    return ("<h3>Re-identification</h3><p>Which subject is this window from? Attackers trained on the training "
            "windows of every subject (adaptive: sanitized by the strategy), tested on the scored test windows; "
            f"the most frequent subject is {_pct(majority)} of them.</p>" + _table(cols, rows))


def _transfer_facts(results: dict) -> list[list[str]]:
    """Which data set trained the sanitizers and which judged them (a transfer evaluation)."""
    t = results.get("transfer")
    if not t:
        return []
    left = f"; test classes left out: {', '.join(t['test_classes_left_out'])}" if t["test_classes_left_out"] else ""
    return [["sanitizers trained on", f"{t['trained_on']} ({t['trained_protocol']})"],
            ["judged on (transfer)", f"{t['data']} ({t['protocol']}, {t['subjects']} subjects): attackers and "
                                     f"analysts retrained on its sanitized training part, tested on its test part; "
                                     f"DySan(o) calibrated per user of this data{left}"]]


def _jitter_fact(j: dict | None) -> str:
    if not j:
        return "no (trained without --jitter)"
    return (f"yes: the sanitizers were trained through it, and their windows are evaluated as the device sends "
            f"them — rotated by up to ±{j['max_angle_deg']:g}° per axis and scaled by 1 ± {j['max_gain']:g}, "
            f"{j['seed']}, counter = {j['counter']}; applied to {j['applied_to']}")


def _folds(results: dict, eval_dir: Path, out_dir: Path) -> str:
    """Mean ± spread over fold runs (``dysan evaluate --folds``), when this evaluation has it."""
    f = results.get("folds_summary")
    if not f or not (eval_dir / f["json"]).is_file():
        return ""
    t = json.loads((eval_dir / f["json"]).read_text())
    if out_dir.resolve() != eval_dir.resolve():
        for name in (f["json"], f["png"]):
            shutil.copy2(eval_dir / name, out_dir / name)

    def ms(st: dict | None) -> str:
        if not st or st.get("mean") is None:
            return "–"
        return _pct(st["mean"]) + ("" if st.get("std") is None else f" ± {100 * st['std']:.1f}")

    keys = [a for a in (t["rows"][0]["accuracy"] if t["rows"] else {}) if a != "own"]
    tasks = [k for k in (*TASKS, "identity") if any(k in r["accuracy"].get(a, {}) for r in t["rows"] for a in keys)]
    cols = ["strategy"] + [f"{a} {task_label(k, t['attribute']) if k != 'identity' else 're-id'}" for a in keys
                           for k in tasks]
    rows = [[r["label"]] + [ms(r["accuracy"].get(a, {}).get(k)) for a in keys for k in tasks] for r in t["rows"]]
    return (f"<h2>{_e(f['heading'])}</h2><p><img src='{_e(f['png'])}' alt='folds'></p><p>{t['n']} runs, folds "
            f"{_e(t['folds'])}, each trained on its own fold and evaluated on its own split ({_e(', '.join(t['runs']))}"
            f"); mean ± {_e(t['spread'])}, in points. Calibration forest accuracy "
            f"{ms(t['calibration_rf_accuracy'])}.</p>" + _table(cols, rows)
            + f"<p>Table: <a href='{_e(f['json'])}'>{_e(f['json'])}</a></p>")


def _balanced(t: dict) -> str:
    """Balanced accuracy (mean per-class recall): chance is 50 % for the attribute whatever its class balance."""
    majority = t.get("majority_rate") or {}
    if not any("balanced_accuracy" in r for r in t["rows"]):
        return ""  # an evaluation written before balanced accuracy was recorded
    keys = [a for a in t["attackers"] if a.endswith("-adaptive") or a == "own"]
    cols = ["strategy"] + [f"{a} {task_label(k, t['attribute'])}" for a in keys for k in TASKS]
    rows = [[r["label"]] + [_pct(r["balanced_accuracy"].get(a, {}).get(k)) for a in keys for k in TASKS]
            for r in t["rows"]]
    return (f"<p>Balanced accuracy (mean recall per class; chance = 1 / number of classes). The majority class "
            f"is {_pct(majority.get('sensitive'))} of the scored test windows for {_e(t['attribute'])} and "
            f"{_pct(majority.get('activity'))} for activity: plain accuracy at or below that rate is at chance.</p>"
            + _table(cols, rows))


def _per_user(results: dict) -> str:
    parts = []
    for s in results["strategies"].values():
        for att, tasks in s["attackers"].items():
            users = list(next(iter(tasks.values()))["per_user"])
            rows = [[u] + [_pct(tasks[k]["per_user"].get(u)) for k in TASKS] for u in users]
            parts.append(f"<details><summary>per-user accuracy: {_e(s['label'])} / {_e(att)}</summary>"
                         + _table(["user", "activity", results["attribute"]], rows) + "</details>")
    return "".join(parts)


def _fig3(t: dict) -> str:
    rows = []
    for s in t["strategies"].values():
        for a in t["attackers"]:
            for k in TASKS:
                v = s.get(a, {}).get(k)
                if v:
                    q = sorted(v)
                    rows.append([s["label"], a, k, _pct(q[0]), _pct(q[len(q) // 2]), _pct(q[-1]), len(q)])
    return _table(["strategy", "attacker", "task", "min user", "median user", "max user", "users"], rows)


def _fig7(t: dict) -> str:
    cols = ["y", "x"] + [f"{a} {k}" for a in t["attackers"] for k in TASKS] + ["models used (mean share)"]
    rows = [[r["y"], r["x"]] + [_pct(r["accuracy"][a][k]) for a in t["attackers"] for k in TASKS]
            + [_pct(r["models_used_mean"])] for r in t["rows"]]
    return f"<p>Strategy: {_e(t['strategy'])}; x = {_e(t['x_rule'])}.</p>" + _table(cols, rows)


def _table1(t: dict) -> str:
    cols = ["models"] + [f"{s} / {a} {k}" for s in t["strategies"] for a in t["attackers"] for k in TASKS]
    rows = [[r["models"]] + [_pct(r["results"][s][a][k]) for s in t["strategies"] for a in t["attackers"]
                             for k in TASKS] for r in t["rows"]]
    subsets = "".join(f"<details><summary>{r['models']} models</summary><pre>{_e(', '.join(r['subset']))}</pre>"
                      "</details>" for r in t["rows"])
    return f"<p>Subsets: {_e(t['subset_rule'])}.</p>" + _table(cols, rows) + subsets


def _table4(t: dict) -> str:
    out = []
    for sig in t["signals"]:
        cols = ["strategy"] + t["stats"] + ["L1 (normalized)"]
        rows = []
        for r in t["rows"]:
            cells = []
            for s in t["stats"]:
                v, rel = r["values"][sig][s], r["relative_error"][sig][s]
                cells.append(f"{v:.3f}" + ("" if r["name"] == "raw" or rel is None else f" ({100 * rel:+.1f} %)"))
            rows.append([r["label"], *cells, f"{r['l1_normalized']:.3f}"])
        out.append(f"<h4>{_e(sig)}</h4>" + _table(cols, rows))
    return ("<p>Per-window statistics averaged over the scored test windows; in parentheses the relative error "
            "against raw.</p>" + "".join(out))


def _fig6(t: dict) -> str:
    rows = []
    for s in t["strategies"].values():
        v = sorted(s["per_user"].values())
        if v:
            rows.append([s["label"], _pct(v[0]), _pct(v[len(v) // 2]), _pct(v[-1])])
    return _table(["strategy", f"min share of {t['models']}", "median", "max"], rows)


def _fig8(t: dict) -> str:
    cols = ["models"] + [f"p = {p}" for p in t["points"]]
    rows = [[r["models"]] + [_pct(r["mean"][str(p)]) for p in t["points"]] for r in t["rows"]]
    return (f"<p>Mean over users of the share of {t['draws']} random draws of p segments whose set of selected "
            "models no other user's trace contains (dynamic selection).</p>" + _table(cols, rows))


def _dtw(t: dict) -> str:
    rows = [[r["label"], f"{r['mean']:.2f}", f"{r['std']:.2f}"] for r in t["rows"]]
    cv = t["grid_cv_of_model_means"]
    return (f"<p>{t['windows']} test windows; {_e(t['units'])}. Grid: mean {t['grid_mean']:.2f}, std of the models' "
            f"means {t['grid_std_of_model_means']:.2f} (CV {'–' if cv is None else f'{cv:.2f}'}), mean over windows "
            f"of the std across models {t['grid_mean_std_across_models_per_window']:.2f}.</p>"
            + _table(["model", "mean DTW", "std over windows"], rows))


RENDER = {"main": _main, "fig3": _fig3, "fig7": _fig7, "table1": _table1, "table4": _table4, "fig6": _fig6,
          "fig8": _fig8, "dtw": _dtw}


def render(eval_dir: Path, out_dir: Path, report_command: str | None = None) -> Path:
    """Write ``out_dir/report.html`` (and copy the figures there when ``out_dir`` is another folder)."""
    results_path = eval_dir / RESULTS
    if not results_path.is_file():
        raise DysanError(f"{results_path} not found: run dysan evaluate first")
    results = json.loads(results_path.read_text())
    out_dir.mkdir(parents=True, exist_ok=True)
    synthetic = bool(results["synthetic"])
    parts = ["<!doctype html><html><head><meta charset='utf-8'>",
             f"<title>DySan evaluation — {_e(results['run'])}{' — SYNTHETIC' if synthetic else ''}</title>",
             f"<style>{CSS}</style></head><body>"]
    if synthetic:
        parts.append("<div class='synthetic'>SYNTHETIC DATA — generated by dysan.data.synthetic, not real "
                     "recordings. No number on this page describes real people.</div>")
    parts.append(f"<h1>DySan evaluation{' (SYNTHETIC)' if synthetic else ''}</h1>")
    if headline.draw(results, out_dir / headline.FILENAME):
        parts.append("<h2>Privacy / utility</h2>"
                     f"<p><img src='{headline.FILENAME}' alt='privacy/utility plane'></p>"
                     "<p>Each point is a strategy: activity accuracy against attribute accuracy of attackers "
                     "<b>retrained on that strategy's sanitized data</b>; bars span the middle half of the users. "
                     "Green: the target zone (activity within 3 points of raw, attribute at most 55 %); grey: at or "
                     "below the attribute's majority-class rate. Up and left is what a sanitizer gives away; down and "
                     "right is the goal.</p>")
    cfg = results["config"]
    facts = [
        ["run", results["run"]], ["data", results["data"] + (" (SYNTHETIC)" if synthetic else "")],
        *_transfer_facts(results),
        ["protocol", f"{results['protocol']}, fold {results['fold']} of {results['folds']}, split seed "
                     f"{results['split_seed']}"],
        ["sensitive attribute", f"{results['attribute']} ({' / '.join(results['attribute_labels'])})"],
        ["activities", ", ".join(results["classes"])],
        ["models", f"{len(results['models'])} {results['family']} models, {results['epochs']} epochs"],
        ["on-device jitter", _jitter_fact(results.get("jitter"))],
        ["baselines", ", ".join(m for b in results["baselines"] or [] for m in b["models"]) or "none"],
        *[[f"⚠ {', '.join(b['models'])}", "trained differently from the grid: " + "; ".join(b["differences"])]
          for b in results["baselines"] or [] if b.get("differences")],
        ["windows (train / test)", f"{results['windows']['train']['total']} / {results['windows']['test']['total']} "
                                   f"(scored {results['windows']['train']['scored']} / "
                                   f"{results['windows']['test']['scored']})"],
        ["selection", f"x = {cfg['x']}, y = {cfg['y']}, segment p = {cfg['segment']}, device candidates "
                      f"{cfg['candidates']}"],
        ["calibration", f"first {cfg['calibration_seconds']} s of each activity code "
                        f"({cfg['calibration_windows_per_code']} windows); calibration RF accuracy on test users' "
                        "scored windows "
                        f"{_pct(results['calibration']['test']['rf_accuracy_pooled'])}"],
        ["attackers", f"{', '.join(cfg['attackers'])} (CNN {cfg['cnn_epochs']} epochs, RF {cfg['rf_trees']} trees)"],
    ]
    parts.append(_table(["", ""], facts))
    cmds = [results["commands"].get("train"), *(results["commands"].get("baselines") or []),
            results["commands"].get("evaluate"), report_command]
    parts.append("<h2>Commands</h2><pre>" + _e("\n".join(c for c in cmds if c)) + "</pre>"
                 "<p>The train commands are the runs' config.json settings written as options.</p>")
    artifacts = results.get("artifacts", {})
    for key, (json_name, png_name, heading) in ARTIFACTS.items():
        parts.append(f"<h2>{_e(heading)}</h2>")
        if key not in artifacts:
            parts.append(f"<p>Not run (dysan evaluate --skip {NEEDS.get(key, key)}, or --strategies without the "
                         "strategies it is about).</p>")
            continue
        table = json.loads((eval_dir / json_name).read_text())
        png = eval_dir / png_name
        if out_dir.resolve() != eval_dir.resolve():
            shutil.copy2(png, out_dir / png_name)
            shutil.copy2(eval_dir / json_name, out_dir / json_name)
        parts.append(f"<p><img src='{_e(png_name)}' alt='{_e(heading)}'></p>")
        parts.append(RENDER[key](table, results) if key == "main" else RENDER[key](table))
        parts.append(f"<p>Table: <a href='{_e(json_name)}'>{_e(json_name)}</a></p>")
    parts.append(_folds(results, eval_dir, out_dir))
    parts.append("</body></html>")
    target = out_dir / "report.html"
    target.write_text("\n".join(parts))
    return target
