"""Fit a DeepSDF auto-decoder: one shared decoder and a 64-dim latent per training shape (paper §5.2, eq. 5).

Writes the run folder RUN/{config.json, ckpt/, decoder.safetensors, latents.safetensors, log.csv, loss.png}.
A killed run continues exactly with --resume. Several processes or GPUs:
``torchrun --nproc_per_node 2 -m img2sdf.cli.main fit DATA --out RUN`` (the shapes of each step are split
over the processes; shapes_per_step must be divisible by their number).
"""

from __future__ import annotations

import argparse

HELP = "fit the shared SDF decoder and per-shape latents (DeepSDF auto-decoder)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", help="prepared data folder (from `img2sdf prepare`)")
    parser.add_argument("--out", required=True, help="run folder to create (or to continue with --resume)")
    parser.add_argument("--preset", default="tiny", choices=["tiny", "pilot", "paper"],
                        help="tiny: CPU minutes; pilot: the paper's 256x4 pilot; paper: 512x8, §5.2")
    parser.add_argument("--epochs", type=int, help="override the preset's epochs (each shape once per epoch)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field, e.g. --set decoder.hidden=256")
    parser.add_argument("--resume", action="store_true", help="continue RUN from its newest checkpoint")
    parser.add_argument("--device", help="torch device (default: this rank's GPU if any, else cpu)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from ..train.fit import fit, make_config

    overrides = list(args.set) + ([f"epochs={args.epochs}"] if args.epochs else [])
    config = None if args.resume else make_config(args.preset, overrides)
    out = fit(args.data, args.out, config, resume=args.resume, device=args.device,
              progress=not args.no_progress)
    print(f"decoder run: {out}")
    return 0
