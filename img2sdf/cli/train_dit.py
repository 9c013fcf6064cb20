"""Train the image-conditioned latent DiT (paper §6.1) on a prepared, encoded store and an auto-decoder run.

Example: ``img2sdf train-dit DATA --decoder RUN --out DITRUN --preset tiny``. Multi-process:
``torchrun --nproc_per_node 2 -m img2sdf.cli.main train-dit ...`` (DDP; global batch = batch × processes,
the LR is not scaled with it; a run resumes under the process count it was started with).
"""

from __future__ import annotations

import os
from pathlib import Path

from .options import add_device, add_trainer

HELP = "train the latent DiT: encoded views + poses → auto-decoder latents (paper §6)"


def add_arguments(parser) -> None:
    parser.add_argument("data", type=Path, help="prepared data folder (after `img2sdf encode`)")
    parser.add_argument("--decoder", type=Path, required=True, help="auto-decoder run folder (`img2sdf fit`)")
    add_dit_training(parser, "§6.1")


def add_dit_training(parser, section: str) -> None:
    """The options train-dit and train-wdit share (one loop: train/train_dit.py)."""
    parser.add_argument("--out", type=Path, required=True, help="DiT run folder to create (or resume)")
    add_trainer(parser, ["tiny", "paper"], f"tiny (CPU, minutes) or paper ({section})")
    parser.add_argument("--encoder", default=None,
                        help="image-encoder features to train on (default: the offline default encoder, or "
                        "the only one encoded in DATA)")
    parser.add_argument("--views", default="auto", choices=("auto", "photo", "renders"),
                        help="training views: photo = the photo pool of `encode --views photo` (what "
                             "photos look like after load_view; needed for photo input), renders = the 64 "
                             "renders as rendered (the paper's §6.1 setting); auto = photo when encoded, "
                             "else renders")
    parser.add_argument("--pool", default="framed,jittered,random",
                        help="photo pool groups to train on (an ablation): framed renders, jittered "
                             "photo-style copies, random-camera photos")
    parser.add_argument("--steps", type=int, default=None, help="training steps (overrides the preset)")
    add_device(parser)
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args) -> int:
    from ..train.train_dit import train_dit_on_store

    return run_dit_training(args, "train-dit", train_dit_on_store, args.decoder)


def run_dit_training(args, kind: str, train_on_store, target_run: Path, extra: list[str] | None = None
                     ) -> int:
    from ..train import distributed
    from .options import trainer_config

    steps = [f"steps={args.steps}"] if args.steps is not None else []
    cfg = trainer_config(kind, args, args.out, [*(extra or []), *steps])
    groups = tuple(g for g in args.pool.split(",") if g)
    try:
        _, pairs = train_on_store(args.data, target_run, args.out, cfg, args.encoder, args.views, groups,
                                  resume=args.resume, progress=not args.no_progress, device=args.device)
    finally:
        distributed.cleanup()
    if int(os.environ.get("RANK", "0")) != 0:  # torchrun: only rank 0 reports
        return 0
    print(f"{kind}: {len(pairs.obj_idx)} shapes → {args.out}/dit.safetensors "
          f"(log {args.out}/log.csv, curve {args.out}/loss.png)")
    return 0
