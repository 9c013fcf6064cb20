"""Fit a DeepSDF auto-decoder: one shared decoder and a 64-dim latent per training shape (paper §5.2, eq. 5).

Writes the run folder RUN/{config.json, ckpt/, decoder.safetensors, latents.safetensors, log.csv, loss.png}.
A killed run continues exactly with --resume. Several processes or GPUs:
``torchrun --nproc_per_node 2 -m img2sdf.cli.main fit DATA --out RUN`` (the shapes of each step are split
over the processes; shapes_per_step must be divisible by their number, also when a run is resumed under a
different number).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .options import add_device, add_trainer

HELP = "fit the shared SDF decoder and per-shape latents (DeepSDF auto-decoder)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", help="prepared data folder (from `img2sdf prepare`)")
    parser.add_argument("--out", required=True, type=Path,
                        help="run folder to create (or to continue with --resume)")
    add_trainer(parser, ["tiny", "cpu", "pilot", "paper"],
                "tiny: CPU minutes; cpu: 128x6, the CPU's best at 976 shapes (README); "
                "pilot: the paper's 256x4 pilot; paper: 512x8, §5.2")
    parser.add_argument("--epochs", type=int, help="override the preset's epochs (each shape once per epoch)")
    add_device(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from ..train.fit import fit
    from .options import trainer_config

    config = trainer_config("fit", args, args.out, [f"epochs={args.epochs}"] if args.epochs else [])
    out = fit(args.data, args.out, config, resume=args.resume, device=args.device,
              progress=not args.no_progress)
    print(f"decoder run: {out}")
    return 0
