"""Family B (paper §4): train the weight autoencoder on a fit-mlps run and score it.

Example: ``img2sdf train-wae --mlps RUN --out ARUN --latent 128 --preset tiny``. After training it writes
ARUN/metrics.json: §4.1's raw-weight MSE, cos(rec, true) mean/min and latent pairwise cosine, and §4.2's
meshes — every shape's reconstructed weights decoded back to an MLP, meshed and scored (Chamfer-L1, F@1 %,
IoU) against the ground truth, beside the fitted MLP's own mesh. ``img2sdf mesh ARUN --shape I`` meshes one
reconstruction.
"""

from __future__ import annotations

from pathlib import Path

from .options import add_device, add_trainer

HELP = "train the weight autoencoder on per-shape MLP weights and score its reconstructions (paper §4)"


def add_arguments(parser) -> None:
    parser.add_argument("--mlps", type=Path, required=True,
                        help="per-shape MLP run folder (`img2sdf fit-mlps`)")
    parser.add_argument("--out", type=Path, required=True, help="weight-AE run folder to create (or resume)")
    parser.add_argument("--latent", type=int, default=None,
                        help="latent dimension (§4.1: 128 or 256; default: the preset's, 128)")
    add_trainer(parser, ["tiny", "paper"], "tiny (CPU, minutes) or paper (§4.1)", amp=False)
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (overrides the preset)")
    parser.add_argument("--no-meshes", action="store_true", help="skip §4.2's meshing and scoring")
    add_device(parser, "the autoencoder")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")


def run(args) -> int:
    from ..eval.weight_ae_eval import evaluate_wae
    from ..train.train_wae import train_wae_on_run
    from .options import trainer_config

    extra = [f"model.latent_dim={args.latent}"] if args.latent is not None else []
    extra += [f"epochs={args.epochs}"] if args.epochs is not None else []
    cfg = trainer_config("train-wae", args, args.out, extra)
    train_wae_on_run(args.mlps, cfg, args.out, resume=args.resume, progress=not args.no_progress,
                     device=args.device)
    m = evaluate_wae(args.out, meshes=not args.no_meshes, progress=not args.no_progress)
    print(f"train-wae: {m['n_shapes']} shapes, latent {m['latent_dim']}: weight MSE {m['weight_mse']:.3g}, "
          f"cos(rec, true) mean {m['cos_rec_true_mean']:.4f} min {m['cos_rec_true_min']:.4f}, "
          f"latent pairwise cos {m['latent_pairwise_cos']:.3f} (weights {m['weight_pairwise_cos']:.3f})")
    if "meshes" in m:
        r, f = m["meshes"]["reconstructed"], m["meshes"]["fitted"]
        print(f"  meshes: reconstructed Chamfer-L1 {r['chamfer_l1_mean']:.4f} ({r['n_failed']} without a "
              f"surface) vs fitted MLPs {f['chamfer_l1_mean']:.4f} ({f['n_failed']} without)")
    print(f"wrote {args.out}/metrics.json")
    return 0
