"""Evaluate a decoder run: SDF L1 and latent cosine (paper Table 3) and surface metrics against the ground
truth (Chamfer-L1/L2, F-score at 1 %/2 %, IoU, normal consistency) on train recall and on held-out shapes
fitted with `reconstruct`. Writes RUN/eval/metrics.json and RUN/report.md|html (thumbnails, worst
shapes first).
"""

from __future__ import annotations

import argparse

from .options import add_device

HELP = "evaluate a decoder run (Table 3 numbers, surface metrics, report)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="decoder run folder (from `img2sdf fit`)")
    parser.add_argument("--splits", default="train,test", help="comma-separated splits (train = recall)")
    parser.add_argument("--max-shapes", type=int, default=0, help="per split; 0 = all")
    parser.add_argument("--resolution", type=int, default=0, help="marching cubes; 0 = 128 tiny, else 256")
    parser.add_argument("--points", type=int, default=100_000, help="surface / IoU points per mesh")
    parser.add_argument("--reconstruct-steps", type=int, default=600,
                        help="latent fit steps (test), as `img2sdf reconstruct`")
    parser.add_argument("--pictures", type=int, default=12, help="thumbnails per split (worst first)")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads (0 = torch's default; 1 is faster on a busy shared machine)")
    add_device(parser, "the decoder")


def run(args: argparse.Namespace) -> int:
    from ..devices import set_threads
    from ..eval.decoder_eval import EvalConfig, evaluate_run

    set_threads(args.threads)

    splits = tuple(s.strip() for s in args.splits.split(",") if s.strip())
    cfg = EvalConfig(splits=splits, resolution=args.resolution, n_points=args.points,
                     max_shapes=args.max_shapes, reconstruct_steps=args.reconstruct_steps,
                     pictures=args.pictures)
    metrics = evaluate_run(args.run, cfg, device=args.device)
    for split, res in metrics["splits"].items():
        m = res["mean"]
        print(f"{split}: n={res['n']} SDF-L1 mean {res['sdf_l1_mean']:.5f} max {res['sdf_l1_max']:.5f} | "
              f"Chamfer-L1 {m['chamfer_l1']:.4f} F@1% {m['fscore_1pct']:.3f} IoU {m['iou']:.3f}")
    print(f"latent pairwise cosine {metrics['latent_pairwise_cosine']:.3f}; report: {args.run}/report.html")
    return 0
