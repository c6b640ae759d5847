"""``dysan train``: adversarial training of the (α, λ) sanitizer grid."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from .. import ui
from ..train import grid as grid_mod
from ..train import variants
from ..train.loop import FAMILIES, TrainConfig
from ..train.runner import prepare_run, run_grid
from .common import add_attribute_option, add_data_options, add_json_option, add_protocol_option, write_json


def add_parser(sub) -> None:
    p = sub.add_parser(
        "train", help="train the (α, λ) grid of sanitizers (S, P, D per point)",
        description="Train one S/P/D triple per (α, λ) grid point with Algorithm 1 on the training part of "
        "the split. Resumable: rerun the same command to continue a killed run.")
    add_data_options(p)
    add_attribute_option(p)
    add_protocol_option(p)
    p.add_argument("--fold", type=int, default=0, help="which fold of the protocol is the test part (default: 0)")
    p.add_argument("--folds", type=int, help="number of folds (default: 4 within-subject, 5 new-users)")
    p.add_argument("--family", choices=FAMILIES, default="device", help="network family (default: %(default)s)")
    p.add_argument("--grid", help="full (36), small (4), N (a spread subset), or 'a/l,a/l,...' (default: full for "
                   "--loss dysan, the baseline's own point otherwise)")
    p.add_argument("--loss", default=variants.DEFAULT, choices=tuple(variants.VARIANTS),
                   help="the sanitizer's objective: dysan, or a baseline's — gen (no distortion, 0.6/0.4), "
                   "olympus, msda; see docs/evaluation.md (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=TrainConfig.epochs, help="epochs per model (default: %(default)s)")
    p.add_argument("--batch", type=int, default=TrainConfig.batch_size, help="batch size (default: %(default)s)")
    p.add_argument("--lr", type=float, default=TrainConfig.learning_rate,
                   help="Adam learning rate (default: %(default)s)")
    p.add_argument("--k-pred", type=int, default=TrainConfig.k_pred, help="P steps per S step (default: %(default)s)")
    p.add_argument("--k-disc", type=int, default=TrainConfig.k_disc, help="D steps per S step (default: %(default)s)")
    p.add_argument("--width", type=int, default=TrainConfig.width, help="device sanitizer width (default: %(default)s)")
    p.add_argument("--pretrain-epochs", type=int, default=TrainConfig.pretrain_epochs,
                   help="epochs of the shared P/D warm start on raw windows, 0 for none (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the split and of training (default: %(default)s)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="local worker processes (default: cores)")
    p.add_argument("--ray", metavar="ADDRESS", help="run each grid point as a task on a Ray cluster "
                   "('auto', an address, or 'local' to start a single-node cluster here)")
    p.add_argument("--out", required=True, help="run directory, e.g. runs/sisfall-device")
    add_json_option(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    variant = variants.get(args.loss)
    if args.grid is None:
        points = [variant.default_point] if variant.default_point is not None else grid_mod.parse("full")
    else:
        points = grid_mod.parse(args.grid)
    cfg = TrainConfig(family=args.family, epochs=args.epochs, batch_size=args.batch, learning_rate=args.lr,
                      k_pred=args.k_pred, k_disc=args.k_disc, seed=args.seed, width=args.width,
                      pretrain_epochs=args.pretrain_epochs, threads=1, loss=args.loss)
    run_dir = Path(args.out)
    config = prepare_run(run_dir, args.data, args.activities, args.attribute, args.protocol, args.fold,
                         args.folds, args.seed, points, cfg)
    tag = " (SYNTHETIC data)" if config["synthetic"] else ""
    loss = "" if args.loss == variants.DEFAULT else f" ({variant.label} loss)"
    ui.info(f"{len(points)} {args.family} models{loss} on {args.data}{tag}, {args.protocol} fold {args.fold}: "
            f"{config['split']['train_windows']} train / {config['split']['test_windows']} test windows -> {run_dir}")
    summary = run_grid(run_dir, points, cfg, workers=max(1, args.workers), ray_address=args.ray)
    rows = [[m["point"]["name"], m["final"].get("P_monitor_acc"), m["final"].get("D_monitor_acc"),
             m["final"].get("distortion_monitor"), round(m["train_seconds"])] for m in summary["models"]]
    ui.table(f"{run_dir}: own P / D accuracy on the test windows{tag}",
             ["model", "activity (P)", "sensitive (D)", "distortion", "train s"], rows,
             caption=f"wall time {summary['wall_seconds_total'] / 60:.1f} min")
    write_json(args.json, summary)
    return 0
