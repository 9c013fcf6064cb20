"""Train the image-conditioned latent DiT (paper §6.1) on a prepared, encoded store and an auto-decoder run.

Example: ``img2sdf train-dit DATA --decoder RUN --out DITRUN --preset tiny``. Multi-process:
``torchrun --nproc_per_node 2 -m img2sdf.cli.main train-dit ...`` (DDP; global batch = batch × processes).
"""

from __future__ import annotations

import os
from pathlib import Path

HELP = "train the latent DiT: encoded views + poses → auto-decoder latents (paper §6)"


def add_arguments(parser) -> None:
    parser.add_argument("data", type=Path, help="prepared data folder (after `img2sdf encode`)")
    parser.add_argument("--decoder", type=Path, required=True, help="auto-decoder run folder (`img2sdf fit`)")
    add_training_arguments(parser, "§6.1")


def add_training_arguments(parser, section: str) -> None:
    """The options train-dit and train-wdit share (one loop, train/train_dit.py)."""
    parser.add_argument("--out", type=Path, required=True, help="DiT run folder to create (or resume)")
    parser.add_argument("--preset", default="tiny", help=f"tiny (CPU, minutes) or paper ({section})")
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
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field, e.g. --set lr=1e-4 --set model.layers=2 (repeatable)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out from its last checkpoint")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def resolve_encoder(data: Path, name: str | None) -> str:
    """The encoder whose features to use: the one named, else the default, else the only one cached."""
    from ..data.store import ShapeStore
    from ..encoders import DEFAULT_ENCODER
    from ..errors import UserError

    store = ShapeStore(data)
    if name:
        return name
    if store.features_path(DEFAULT_ENCODER).is_file():
        return DEFAULT_ENCODER
    cached = sorted(p.stem for p in (store.root / "features").glob("*.json") if "@" not in p.stem)
    if len(cached) == 1:
        return cached[0]
    raise UserError(f"{data}/features: {'no' if not cached else 'several'} encoded feature sets "
                    f"({', '.join(cached) or 'none'}); run `img2sdf encode {data}` or pass --encoder")


def run(args) -> int:
    from ..train.train_dit import load_training_pairs

    return train_from_args(args, "latent-dit", load_training_pairs, args.decoder, "decoder_run", [])


def train_from_args(args, kind: str, load_pairs, source: Path, source_key: str, overrides: list[str]) -> int:
    """Resolve config, encoder and views, load the pairs (``load_pairs(data, source, encoder, views,
    groups)``) and run the shared training loop; ``source_key`` names ``source`` in config.json."""
    from ..train import distributed
    from ..train.train_dit import resolve_config, train_dit

    overrides = overrides + list(args.overrides) + ([f"steps={args.steps}"] if args.steps is not None else [])
    cfg = resolve_config(args.preset, overrides, kind)
    encoder = resolve_encoder(args.data, args.encoder)
    views = args.views
    command = "train-wdit" if kind == "weight-dit" else "train-dit"
    if views == "auto":
        from ..data.store import ShapeStore
        from ..encoders.cache import feature_set

        photo = ShapeStore(args.data).features_path(feature_set(encoder, "photo")).is_file()
        views = "photo" if photo else "renders"
        if not photo and int(os.environ.get("RANK", "0")) == 0:
            print(f"{command}: note: no photo pool for {encoder}; training on the renders as rendered, "
                  f"which photos through load_view do not resemble (run `img2sdf encode {args.data} "
                  f"--views photo`)")
    groups = tuple(g for g in args.pool.split(",") if g)
    pairs = load_pairs(args.data, source, encoder, views, groups)
    provenance = {"preset": args.preset, "data": str(args.data.resolve()),
                  source_key: str(source.resolve()), "encoder": encoder, "views": views,
                  **({"pool_groups": list(groups)} if views == "photo" else {})}
    try:
        train_dit(pairs, cfg, args.out, provenance=provenance, resume=args.resume,
                  progress=not args.no_progress)
    finally:
        distributed.cleanup()
    if int(os.environ.get("RANK", "0")) != 0:  # torchrun: only rank 0 reports
        return 0
    print(f"{command}: {len(pairs.obj_idx)} shapes, {cfg.steps} steps → {args.out}/dit.safetensors "
          f"(log {args.out}/log.csv, curve {args.out}/loss.png)")
    return 0
