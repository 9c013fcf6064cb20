"""Train the image-conditioned weight-space DiT (paper §3.2, Family A) on an encoded store and a fit-mlps run.

Example: ``img2sdf train-wdit DATA --mlps RUN --out WRUN --preset tiny``. ``--raw`` diffuses unstandardised
weights (Phase 8), ``--no-dropout`` sets cfg and pose dropout to 0 (Phase 9), ``--tokens layer`` uses one
token per weight/bias tensor instead of 8 chunks. The loop, run folder, resume rule and torchrun support are
train-dit's; ``img2sdf mesh WRUN --shape I`` meshes the weights it predicts from shape I's views, and
``img2sdf diagnose timesteps|ranking WRUN`` runs Table 1 and §3.3 on it.
"""

from __future__ import annotations

from pathlib import Path

from .train_dit import add_dit_training, run_dit_training

HELP = "train the weight-space DiT: encoded views + poses → per-shape MLP weights (paper §3)"


def add_arguments(parser) -> None:
    parser.add_argument("data", type=Path, help="prepared data folder (after `img2sdf encode`)")
    parser.add_argument("--mlps", type=Path, required=True,
                        help="per-shape MLP run folder (`img2sdf fit-mlps`)")
    parser.add_argument("--tokens", choices=("chunk", "layer"), default=None,
                        help="chunk = 8 tokens of 6,849 weights (§3.2, the default); layer = one token per "
                             "weight/bias tensor (HyperDiffusion)")
    parser.add_argument("--raw", action="store_true",
                        help="no per-dimension standardisation of the weights (Phase 8, §3.5)")
    parser.add_argument("--no-dropout", action="store_true",
                        help="cfg_dropout = pose_dropout = 0 (Phase 9, §3.5); default 0.1 / 0.2 (§3.2)")
    add_dit_training(parser, "§3.2")


def run(args) -> int:
    from ..train.train_dit import train_wdit_on_store

    extra = [f"model.tokens={args.tokens}"] if args.tokens else []
    extra += ["model.standardise=false"] if args.raw else []
    extra += ["cfg_dropout=0", "pose_dropout=0"] if args.no_dropout else []
    return run_dit_training(args, "train-wdit", train_wdit_on_store, args.mlps, extra)
