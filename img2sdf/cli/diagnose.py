"""The paper's diagnostics of a run, for any family.

``img2sdf diagnose weights RUN``: Table 2 (§3.6) — L2 norms, pairwise cosines, the most central shapes by
cosine to the mean, variance captured by the top dimensions and principal components, near-constant
dimensions — of RUN/weights.safetensors (fit-mlps) or RUN/latents.safetensors (fit), or of any
.safetensors matrix. Writes RUN/diagnostics/weights.json and weights.md (ours beside the paper's values).
"""

from __future__ import annotations

import argparse

HELP = "diagnostics of a run (weights: Table 2 statistics of its per-shape vectors)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = actions.add_parser("weights", help="Table 2 (§3.6): norms, cosines, variance spread of the per-shape "
                           "vectors", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("run", help="run folder (fit-mlps or fit) or a .safetensors file with a [N, D] tensor")
    p.add_argument("--key", help="tensor name inside the file (default: its only 2-D tensor)")
    p.add_argument("--out", help="output folder (default: RUN/diagnostics, or next to the file)")
    p.add_argument("--central", type=int, default=5, help="how many most-central shapes to list")


def run(args: argparse.Namespace) -> int:
    return ACTIONS[args.action](args)


def run_weights(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..eval.weight_stats import load_run_matrix, weight_stats, weights_markdown
    from ..io import write_json, write_text

    matrix, obj_idx, source = load_run_matrix(args.run, args.key)
    stats = weight_stats(matrix, obj_idx, n_central=args.central)
    stats["source"] = source
    run_path = Path(args.run)
    out = Path(args.out) if args.out else (run_path if run_path.is_dir() else run_path.parent) / "diagnostics"
    write_json(out / "weights.json", stats)
    write_text(out / "weights.md", weights_markdown(stats, f"{args.run} ({source})"))
    top = ", ".join(f"obj_{c['obj_idx']:04d} {c['cos_to_mean']:.4f}" for c in stats["central"][:3])
    print(f"{source}: {stats['n_shapes']} x {stats['params_per_shape']}, L2 norm {stats['mean_l2_norm']:.3f} "
          f"± {stats['std_l2_norm']:.3f}, pairwise cos mean {stats['mean_pairwise_cos']:.4f} (min "
          f"{stats['min_pairwise_cos']:.4f}, max {stats['max_pairwise_cos']:.4f}); most central: {top}")
    print(f"wrote {out / 'weights.json'} and {out / 'weights.md'}")
    return 0


ACTIONS = {"weights": run_weights}
