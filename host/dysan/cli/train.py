"""``dysan train``: adversarial training of the (α, λ) sanitizer grid."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from .. import ui
from ..errors import DysanError
from ..nets import FAMILIES
from ..train import grid as grid_mod
from ..train import variants
from ..train.loop import HARDENED, LEGACY, TRAIN_DEFAULT, TrainConfig
from ..train.privacy import AGGREGATIONS, PRIVACY_LOSSES
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
                   "olympus, msda, orf (random-forest component selection, not adversarial); see "
                   "docs/evaluation.md (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=TrainConfig.epochs, help="epochs per model (default: %(default)s)")
    p.add_argument("--batch", type=int, default=TrainConfig.batch_size, help="batch size (default: %(default)s)")
    p.add_argument("--lr", type=float, default=TrainConfig.learning_rate,
                   help="Adam learning rate (default: %(default)s)")
    p.add_argument("--k-pred", type=int, default=TrainConfig.k_pred, help="P steps per S step (default: %(default)s)")
    p.add_argument("--k-disc", type=int, default=TrainConfig.k_disc, help="D steps per S step (default: %(default)s)")
    p.add_argument("--width", type=int, default=TrainConfig.width, help="device sanitizer width (default: %(default)s)")
    p.add_argument("--pretrain-epochs", type=int, default=TrainConfig.pretrain_epochs,
                   help="epochs of the shared P/D warm start on raw windows, 0 for none (default: %(default)s)")
    add_hardening_options(p)
    p.add_argument("--seed", type=int, default=0, help="seed of the split and of training (default: %(default)s)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="local worker processes (default: cores)")
    p.add_argument("--ray", metavar="ADDRESS", help="run each grid point as a task on a Ray cluster "
                   "('auto', an address, or 'local' to start a single-node cluster here)")
    p.add_argument("--out", required=True, help="run directory, e.g. runs/sisfall-device")
    add_json_option(p)
    p.set_defaults(run=run)


def add_hardening_options(p: argparse.ArgumentParser) -> None:
    """Issue-15 options (docs/evaluation.md "Hardened training"). Unset ones keep dysan train's defaults
    (TRAIN_DEFAULT: the paper's objective trained through the on-device jitter), or the paper's objective
    with --paper-objective."""
    g = p.add_argument_group("hardened training (adversaries that do not go stale, see what attackers see)")
    d = TrainConfig(**TRAIN_DEFAULT)
    g.add_argument("--paper-objective", action="store_true",
                   help="the paper's objective as published (one D, |0.5 - BER|, no jitter) instead of the "
                   "defaults")
    g.add_argument("--hardened", action="store_true",
                   help="the full combination: the defaults plus the entropy term, 3 discriminators reset every 3 "
                   "epochs with replay 0.5, feature and identity adversaries, moment matching 1 (the ablation's "
                   "'combined' row)")
    g.add_argument("--privacy-loss", choices=PRIVACY_LOSSES,
                   help=f"ber: |0.5 - softBER| (paper); entropy: per-window KL to uniform (default: {d.privacy_loss})")
    g.add_argument("--adversaries", type=int, help=f"discriminators in the ensemble (default: {d.adversaries})")
    g.add_argument("--reset-every", type=int,
                   help=f"re-initialise each discriminator every N epochs, staggered; 0 never "
                   f"(default: {d.reset_every})")
    g.add_argument("--replay", type=float,
                   help=f"share of adversary batches from a replay buffer of earlier outputs (default: {d.replay})")
    g.add_argument("--adversary-agg", choices=AGGREGATIONS,
                   help=f"score S against the strongest adversary or their mean (default: {d.adversary_agg})")
    g.add_argument("--feature-adversary", action=argparse.BooleanOptionalAction,
                   help=f"add an adversary on RF-like window statistics (default: {d.feature_adversary})")
    g.add_argument("--identity-adversary", action=argparse.BooleanOptionalAction,
                   help=f"add an adversary predicting the training subject (default: {d.identity_adversary})")
    g.add_argument("--moment-match", type=float,
                   help=f"weight (x alpha) of within-activity moment matching between groups "
                   f"(default: {d.moment_match})")
    g.add_argument("--jitter", action=argparse.BooleanOptionalAction,
                   help=f"train S through the on-device random rotation + gain (default: {d.jitter})")
    g.add_argument("--jitter-angle", type=float,
                   help=f"max jitter rotation per axis, degrees (default: {d.jitter_angle})")
    g.add_argument("--jitter-gain", type=float, help=f"max jitter relative gain change (default: {d.jitter_gain})")


HARDENING_KEYS = ("privacy_loss", "adversaries", "reset_every", "replay", "adversary_agg", "feature_adversary",
                  "identity_adversary", "moment_match", "jitter", "jitter_angle", "jitter_gain")


def hardening_settings(args: argparse.Namespace) -> dict:
    """The issue-15 settings the command line asks for (defaults filled in)."""
    if args.paper_objective and args.hardened:
        raise DysanError("--paper-objective and --hardened exclude each other")
    base = LEGACY if args.paper_objective or args.loss != variants.DEFAULT else {**LEGACY, **TRAIN_DEFAULT}
    if args.hardened:
        base = {**LEGACY, **TRAIN_DEFAULT, **HARDENED}
    out = {k: base.get(k, LEGACY[k]) for k in HARDENING_KEYS}
    for k in HARDENING_KEYS:
        if getattr(args, k, None) is not None:
            out[k] = getattr(args, k)
    return out


def run(args: argparse.Namespace) -> int:
    variant = variants.get(args.loss)
    if args.grid is None:
        points = [variant.default_point] if variant.default_point is not None else grid_mod.parse("full")
    else:
        points = grid_mod.parse(args.grid)
    cfg = TrainConfig(family=args.family, epochs=args.epochs, batch_size=args.batch, learning_rate=args.lr,
                      k_pred=args.k_pred, k_disc=args.k_disc, seed=args.seed, width=args.width,
                      pretrain_epochs=args.pretrain_epochs, threads=1, loss=args.loss,
                      **hardening_settings(args))
    if cfg.hardened and args.loss not in ("dysan", "gen"):
        raise DysanError(f"the hardened-training options apply to --loss dysan or gen, not {args.loss}")
    run_dir = Path(args.out)
    config = prepare_run(run_dir, args.data, args.activities, args.attribute, args.protocol, args.fold,
                         args.folds, args.seed, points, cfg)
    tag = " (SYNTHETIC data)" if config["synthetic"] else ""
    loss = "" if args.loss == variants.DEFAULT else f" ({variant.label} loss)"
    ui.info(f"{len(points)} {args.family} models{loss} on {args.data}{tag}, {args.protocol} fold {args.fold}: "
            f"{config['split']['train_windows']} train / {config['split']['test_windows']} test windows -> {run_dir}")
    if args.loss in variants.NOT_ADVERSARIAL:
        from ..train import orf

        summary = orf.run(run_dir, points, cfg, log=ui.info)
    else:
        summary = run_grid(run_dir, points, cfg, workers=max(1, args.workers), ray_address=args.ray)
    rows = [[m["point"]["name"], m["final"].get("P_monitor_acc"), m["final"].get("D_monitor_acc"),
             m["final"].get("distortion_monitor"), round(m["train_seconds"])] for m in summary["models"]]
    ui.table(f"{run_dir}: own P / D accuracy on the test windows{tag}",
             ["model", "activity (P)", "sensitive (D)", "distortion", "train s"], rows,
             caption=f"wall time {summary['wall_seconds_total'] / 60:.1f} min")
    write_json(args.json, summary)
    return 0
