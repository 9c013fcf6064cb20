"""Fit one ReLU+PE MLP (54,785 parameters) per training shape — Family A phase 1 (paper §3.1).

``img2sdf fit-mlps DATA --out RUN --preset tiny --init anchor`` writes RUN/{config.json, anchor.safetensors,
weights.safetensors (float32 [N, 54785], rows in config.json's obj_idx order), losses.json (per-shape final
losses, outliers > 0.01), log.csv, loss.png}. Many MLPs are fitted at once with batched matmuls. A killed run
continues with --resume. --shard i/n fits the shapes with obj_idx % n == i into the same RUN (e.g. a SLURM
array); the last shard to finish merges, or run ``img2sdf fit-mlps RUN --merge``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .options import add_device, add_trainer

HELP = "fit one small MLP per training shape (Family A, §3.1): anchor, random or shared init"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="prepared data folder (from `img2sdf prepare`); with --merge: the run")
    parser.add_argument("--out", type=Path, help="run folder to create (or to continue with --resume)")
    add_trainer(parser, ["tiny", "paper"],
                "tiny: 32 shapes in minutes on a CPU; paper: 200 epochs of 200k samples, §3.1", amp=False)
    parser.add_argument("--init", default=None, choices=["anchor", "random", "same"],
                        help="anchor: all start from an MLP fitted on obj_0000 (the paper); random: "
                        "independent inits; same: one shared untrained random init (default: anchor)")
    parser.add_argument("--epochs", type=int, help="override the preset's epochs per shape")
    parser.add_argument("--shard", default="0/1", help="fit shard i of n (shapes with obj_idx %% n == i)")
    parser.add_argument("--merge", action="store_true",
                        help="only merge the finished shards of run PATH into weights.safetensors")
    add_device(parser, "the MLPs")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads, the same as --set threads=N (1 is faster on a busy machine)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from ..data.prepare import parse_shard
    from ..errors import UserError
    from ..io import read_json
    from ..train.fit_mlps import fit_mlps, merge
    from .options import trainer_config

    if args.merge:
        path = merge(args.path)
        print(f"merged: {path}")
        return 0
    if not args.out:
        raise UserError("--out RUN is required (or pass --merge with PATH = the run)")
    init = args.init or (None if args.resume else "anchor")
    extra = ([f"init={init}"] if init else []) + ([f"epochs={args.epochs}"] if args.epochs else []) \
        + ([f"threads={args.threads}"] if args.threads is not None else [])
    config = trainer_config("fit-mlps", args, args.out, extra)
    out = fit_mlps(args.path, args.out, config, resume=args.resume, shard=parse_shard(args.shard),
                   device=args.device, progress=not args.no_progress)
    if (out / "losses.json").is_file() and (out / "weights.safetensors").is_file():
        losses = read_json(out / "losses.json")
        print(f"fit-mlps run: {out}: {losses['n_shapes']} MLPs, final loss median {losses['median']:.5f}, "
              f"95th percentile {losses['p95']:.5f}, {losses['n_outliers']} above "
              f"{losses['outlier_threshold']}")
    else:
        print(f"fit-mlps run: {out}: shard {args.shard} done; other shards are still missing")
    return 0
