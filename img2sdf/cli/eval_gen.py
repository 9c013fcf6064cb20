"""Evaluate image → shape generation on held-out shapes (paper §7.4): test and ood splits, 1 and 4 views,
generated vs retrieval vs the auto-decoder's reconstruct ceiling vs a sphere; Chamfer-L1, F-score@1 %, IoU.

Headline protocol ``photo``: the shapes rendered from new cameras as photo files (varied backgrounds, JPEG)
through ``load_view`` and the unknown-pose token — the path of ``img2sdf generate photo.jpg``; second
protocol ``known_pose``: the training cameras' renders with their true poses. Writes ``OUT/metrics.json``
(protocol → split → views → method → metric, per-category means, bootstrap intervals of generated −
retrieval, the cosine-ranking diagnostic), ``OUT/shapes.json``, ``OUT/photos/`` (the input photos) and
``OUT/report.html`` with pictures.
"""

from __future__ import annotations

from pathlib import Path

from .options import add_device, add_samples

HELP = "held-out evaluation of generation vs retrieval vs reconstruct (writes metrics.json + report)"


def add_arguments(parser) -> None:
    parser.add_argument("--model", type=Path, required=True, help="DiT run folder (from train-dit)")
    parser.add_argument("--out", type=Path, required=True, help="output folder for metrics.json and report")
    parser.add_argument("--data", type=Path, default=None,
                        help="prepared store to evaluate on (default: the one the DiT run was trained on)")
    parser.add_argument("--splits", default="test,ood", help="comma-separated splits")
    parser.add_argument("--views", default="1,4", help="comma-separated numbers of input views")
    parser.add_argument("--protocols", default="photo,known_pose",
                        help="comma-separated: photo (new cameras, photo files, load_view, unknown pose: the "
                             "headline) and/or known_pose (training cameras' renders with true poses)")
    parser.add_argument("--max-shapes", type=int, default=0, help="cap on shapes per split (0 = all)")
    parser.add_argument("--resolution", type=int, default=64, help="marching-cubes resolution of every mesh")
    parser.add_argument("--points", type=int, default=20_000, help="sample points per metric")
    parser.add_argument("--steps", type=int, default=0, help="DDIM steps (0 = the run's own)")
    add_samples(parser)
    parser.add_argument("--reconstruct-steps", type=int, default=600,
                        help="latent-fitting iterations of the reconstruct reference")
    parser.add_argument("--pictures", type=int, default=6, help="shapes per split shown in the report")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1 is fastest for the tiny models on a busy shared CPU)")
    parser.add_argument("--unknown-poses", action="store_true",
                        help="known_pose protocol: condition on the unknown-pose token, not the true poses")
    parser.add_argument("--recall-shapes", type=int, default=32,
                        help="training shapes of the recall diagnostic (0 = all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of view choice, noise and metric samples")
    add_device(parser, "the encoder, DiT and decoder")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def eval_config(args):
    """The :class:`~img2sdf.eval.generation_eval.EvalGenConfig` the flags describe."""
    from ..errors import UserError
    from ..eval.generation_eval import PROTOCOLS, EvalGenConfig
    from ..generate import check_sampling

    try:
        views = tuple(int(v) for v in args.views.split(","))
    except ValueError as e:
        raise UserError(f"--views {args.views!r}: give comma-separated integers such as 1,4") from e
    if any(not 1 <= v <= 8 for v in views):
        raise UserError(f"--views {args.views!r}: each must be between 1 and 8")
    check_sampling(args.samples, args.pick)
    protocols = tuple(p for p in args.protocols.split(",") if p)
    if not protocols or any(p not in PROTOCOLS for p in protocols):
        raise UserError(f"--protocols {args.protocols!r}: choose from {', '.join(PROTOCOLS)}")
    cfg = EvalGenConfig(splits=tuple(s for s in args.splits.split(",") if s), views=views,
                        protocols=protocols,
                        recall_shapes=args.recall_shapes,
                        max_shapes=args.max_shapes, resolution=args.resolution, n_points=args.points,
                        steps=args.steps, samples=args.samples, pick=args.pick,
                        known_poses=not args.unknown_poses,
                        reconstruct_steps=args.reconstruct_steps, pictures=args.pictures, seed=args.seed)
    return cfg


def run(args) -> int:
    import torch

    from ..eval.generation_eval import run_eval_gen

    cfg = eval_config(args)
    torch.set_num_threads(max(1, args.threads))
    result, path, report = run_eval_gen(args.model, args.out, cfg, args.data, args.device,
                                        progress=not args.no_progress)
    m = result["metrics"]
    print(f"eval-gen: {path}")
    print(f"  {'protocol':<10} {'split':<5} {'views':>5}  {'method':<12} {'chamfer_l1':>10} "
          f"{'fscore_1pct':>11} {'iou':>6} {'failed':>6} {'flagged':>7}")
    for protocol in cfg.protocols:
        for split in cfg.splits:
            for v in cfg.views:
                res = m[protocol][split][str(v)]
                for method in ("generated", "guarded", "retrieval", "reconstruct", "sphere"):
                    row = res[method]
                    print(f"  {protocol:<10} {split:<5} {v:>5}  {method:<12} {row['chamfer_l1']:>10.4f} "
                          f"{row['fscore_1pct']:>11.3f} {row['iou']:>6.3f} {row['n_failed']:>6} "
                          f"{row['n_flagged']:>7}")
                d = res["generated_minus_retrieval"]
                print(f"  {'':<10} {'':<5} {'':>5}  generated − retrieval {d['mean']:+.4f} "
                      f"[{d['lo']:+.4f}, {d['hi']:+.4f}] (95 %, n={d['n']})")
        rec = m["diagnostics"][protocol]["recall"]
        print(f"  {protocol}: recall (training shapes, 1 view): top-1 {rec['recall_top1']:.2f} of "
              f"{rec['n']}, cos(pred, true) {rec['cos_true_mean']:.3f}; retrieval's top-1 is the true "
              f"shape for {rec['retrieval_top1']:.2f}")
    print(f"eval-gen: report at {report}")
    return 0
