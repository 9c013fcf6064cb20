"""Studies that rerun the pipeline under varied conditions. ``study scaling``: fit → train-dit → eval-gen at
several training-set sizes carved from one prepared, encoded store (paper §6.2-6.3's 20 → 976 shift,
measured), one plot of generated-vs-retrieval Chamfer over size. Rerunning resumes finished sizes.
"""

from __future__ import annotations

from pathlib import Path

from .options import add_device

HELP = "data-scale study: the held-out evaluation at several training-set sizes"


def add_arguments(parser) -> None:
    parser.add_argument("kind", choices=["scaling"], help="which study")
    parser.add_argument("data", type=Path, help="a prepared and encoded store with enough training shapes")
    parser.add_argument("--out", type=Path, required=True, help="study folder (one sub-folder per size)")
    parser.add_argument("--sizes", default="20,100,400", help="comma-separated training-set sizes")
    parser.add_argument("--preset", default="tiny", help="preset for fit and train-dit")
    parser.add_argument("--encoder", default=None, help="encoder features to use (default as in train-dit)")
    parser.add_argument("--fit-set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a fit config field (repeatable, e.g. --fit-set epochs=100)")
    parser.add_argument("--dit-set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a train-dit config field (repeatable)")
    parser.add_argument("--eval-arg", action="append", default=[], metavar="ARG",
                        help="an `eval-gen` flag (repeatable, e.g. --eval-arg=--max-shapes=8)")
    parser.add_argument("--decoder", type=Path, default=None,
                        help="a finished `fit` run on the largest size that the other sizes share (their "
                        "latents only) instead of fitting their own (default: every size fits its own)")
    parser.add_argument("--refit", default="",
                        help="with --decoder: comma-separated sizes that fit their own decoder (e.g. 20)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the subset choice")
    add_device(parser, "every stage")


def run(args) -> int:
    import argparse

    from ..errors import UserError
    from ..eval.study import run_scaling
    from ..runs.configs import make_config
    from . import eval_gen

    try:
        sizes = sorted({int(s) for s in args.sizes.split(",") if s})
    except ValueError as e:
        raise UserError(f"--sizes {args.sizes!r}: give comma-separated integers such as 20,100,400") from e
    if not sizes or min(sizes) < 2:
        raise UserError(f"--sizes {args.sizes!r}: need at least one size ≥ 2")
    try:
        refit = {int(s) for s in args.refit.split(",") if s}
    except ValueError as e:
        raise UserError(f"--refit {args.refit!r}: give comma-separated sizes such as 20") from e
    if refit - set(sizes):
        raise UserError(f"--refit {args.refit!r}: not among --sizes {args.sizes}")
    if refit and args.decoder is None:
        raise UserError("--refit: only with --decoder (without it every size fits its own decoder)")
    eval_parser = argparse.ArgumentParser(prog="img2sdf study --eval-arg", exit_on_error=False)
    eval_gen.add_arguments(eval_parser)
    try:
        eval_args, unknown = eval_parser.parse_known_args(["--model", ".", "--out", ".", *args.eval_arg])
    except argparse.ArgumentError as e:
        raise UserError(f"--eval-arg: {e}") from e
    if unknown:
        raise UserError(f"--eval-arg: `img2sdf eval-gen` has no option {' '.join(unknown)}")
    fit_cfg = make_config("fit", args.preset, args.fit_set)
    dit_cfg = make_config("train-dit", args.preset, args.dit_set)
    summary = run_scaling(args.data, args.out, sizes, fit_cfg, dit_cfg, eval_gen.eval_config(eval_args),
                          args.encoder, args.seed, args.device, args.decoder, refit)
    print(f"study scaling: {args.out}/scaling.json, plot {args.out}/scaling.png")
    protocol = summary["protocol"]
    for n, m in summary["sizes"].items():
        for split, by_views in m[protocol].items():
            for views, row in by_views.items():
                chamfer = {k: row[k]["chamfer_l1"] for k in ("generated", "retrieval", "reconstruct")}
                print(f"  n={int(n):>5} ({summary['decoders'][n]} decoder) {split} {views} view(s), "
                      f"{protocol} protocol, Chamfer-L1: "
                      + "  ".join(f"{k} {v:.4f}" for k, v in chamfer.items()))
    return 0
