"""Studies that rerun the pipeline under varied conditions. ``study scaling``: fit → train-dit → eval-gen at
several training-set sizes carved from one prepared, encoded store (paper §6.2-6.3's 20 → 976 shift,
measured), one plot of generated-vs-retrieval Chamfer over size. ``study families``: Families A, B and C
trained on the same shapes and scored on the same held-out photos (eval/families.py). Rerunning resumes.
"""

from __future__ import annotations

from pathlib import Path

from .options import add_device

HELP = "data-scale study: the held-out evaluation at several training-set sizes"


def add_arguments(parser) -> None:
    parser.add_argument("kind", choices=["scaling", "families"], help="which study")
    parser.add_argument("data", type=Path, help="a prepared and encoded store with enough training shapes")
    parser.add_argument("--out", type=Path, required=True, help="study folder (one sub-folder per size)")
    parser.add_argument("--sizes", default="20,100,400", help="scaling: comma-separated training-set sizes")
    parser.add_argument("--n", type=int, default=64, help="families: training shapes (category-balanced)")
    parser.add_argument("--preset", default="tiny", help="preset for fit and train-dit")
    parser.add_argument("--encoder", default=None, help="encoder features to use (default as in train-dit)")
    parser.add_argument("--fit-set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a fit config field (repeatable, e.g. --fit-set epochs=100)")
    parser.add_argument("--dit-set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a train-dit config field (repeatable)")
    for flag, kind in (("--mlps-set", "fit-mlps"), ("--wdit-set", "train-wdit"), ("--wae-set", "train-wae")):
        parser.add_argument(flag, action="append", default=[], metavar="KEY=VALUE",
                            help=f"families: override a {kind} config field (repeatable)")
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
    if args.kind == "families":
        return run_families(args)
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


def run_families(args) -> int:
    import argparse

    from ..errors import UserError
    from ..eval.families import FAMILIES, FamiliesConfig
    from ..eval.families import run_families as run_study
    from ..runs.configs import make_config

    parser = argparse.ArgumentParser(prog="img2sdf study families --eval-arg", exit_on_error=False)
    parser.add_argument("--max-shapes", type=int, default=0)
    parser.add_argument("--splits", default="test,ood")
    parser.add_argument("--views", default="1,4")
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--points", type=int, default=20_000)
    parser.add_argument("--pictures", type=int, default=6)
    parser.add_argument("--no-progress", action="store_true")
    try:
        ev, unknown = parser.parse_known_args(args.eval_arg)
        views = tuple(int(v) for v in ev.views.split(",") if v)
    except (argparse.ArgumentError, ValueError) as e:
        raise UserError(f"--eval-arg: {e}") from e
    if unknown:
        raise UserError(f"--eval-arg: study families has no option {' '.join(unknown)} (it takes "
                        f"--max-shapes, --splits, --views, --resolution, --points, --pictures, "
                        f"--no-progress)")
    if args.n < 2:
        raise UserError(f"--n {args.n}: need at least 2 training shapes")
    cfg = FamiliesConfig(n_train=args.n, splits=tuple(s for s in ev.splits.split(",") if s), views=views,
                         max_shapes=ev.max_shapes, resolution=ev.resolution, n_points=ev.points,
                         pictures=ev.pictures, seed=args.seed)
    configs = {"fit": make_config("fit", args.preset, args.fit_set),
               "train-dit": make_config("train-dit", args.preset, args.dit_set),
               "fit-mlps": make_config("fit-mlps", args.preset, args.mlps_set),
               "train-wdit": make_config("train-wdit", args.preset, args.wdit_set),
               "train-wae": make_config("train-wae", args.preset, args.wae_set)}
    res = run_study(args.data, args.out, cfg, configs, args.encoder, args.device, not ev.no_progress)
    print(f"study families: {args.out}/families.json, table {args.out}/families.md, "
          f"grid {args.out}/families.png")
    for split, per_views in res["splits"].items():
        for v, per_family in per_views.items():
            print(f"  {split} {v} view(s) Chamfer-L1: " + "  ".join(
                f"{f} {per_family[f]['chamfer_l1']:.4f}" for f in (*FAMILIES, "sphere")))
    return 0
