"""The paper's diagnostics of a run, for any family.

``img2sdf diagnose weights RUN``: Table 2 (§3.6) — L2 norms, pairwise cosines, the most central shapes by
cosine to the mean, variance captured by the top dimensions and principal components, near-constant
dimensions — of RUN/weights.safetensors (fit-mlps) or RUN/latents.safetensors (fit), or of any
.safetensors matrix. Writes RUN/diagnostics/weights.json and weights.md (ours beside the paper's values).

``img2sdf diagnose timesteps DITRUN``: Table 1 (§3.4) — x0 MSE and the implied ε MSE at t ∈ {0, 50, 100,
200, 300, 450}. ``img2sdf diagnose ranking DITRUN``: §3.3 — for chosen shapes cos(pred, true), the top-5
training vectors by cosine and the attractor set. Both take weight DiT (train-wdit) and latent DiT
(train-dit) runs and write DITRUN/diagnostics/{timesteps,ranking}.{json,md}.
"""

from __future__ import annotations

import argparse

from .options import add_device

HELP = "diagnostics of a run (weights: Table 2; timesteps: Table 1; ranking: §3.3's attractor test)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = actions.add_parser("weights", help="Table 2 (§3.6): norms, cosines, variance spread of the per-shape "
                           "vectors", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("run", help="run folder (fit-mlps or fit) or a .safetensors file with a [N, D] tensor")
    p.add_argument("--key", help="tensor name inside the file (default: its only 2-D tensor)")
    p.add_argument("--out", help="output folder (default: RUN/diagnostics, or next to the file)")
    p.add_argument("--central", type=int, default=5, help="how many most-central shapes to list")

    p = actions.add_parser("timesteps", help="Table 1 (§3.4): x0 and implied ε MSE of a DiT run across t",
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("run", help="DiT run folder (train-wdit or train-dit)")
    p.add_argument("--t", default="0,50,100,200,300,450", help="timesteps, comma-separated")
    p.add_argument("--max-shapes", type=int, default=0, help="training shapes to score (0 = all)")
    _dit_options(p)

    p = actions.add_parser("ranking", help="§3.3: cosine ranking of predictions against the training "
                           "vectors; the attractor set",
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("run", help="DiT run folder (train-wdit or train-dit)")
    p.add_argument("--shapes", default="",
                   help="obj_idx of training shapes to predict, comma-separated, or 'all' (default: 4 spread "
                        "over the run, as §3.3)")
    p.add_argument("--top", type=int, default=5, help="training vectors listed per input")
    p.add_argument("--steps", type=int, default=None, help="DDIM steps (default: the run's, 50)")
    _dit_options(p)


def _dit_options(p) -> None:
    p.add_argument("--views", type=int, default=8, help="cached views per shape (the first K, known poses)")
    p.add_argument("--seed", type=int, default=0, help="noise seed")
    p.add_argument("--out", help="output folder (default: RUN/diagnostics)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    add_device(p, "the DiT")



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


def _load(args):
    from pathlib import Path

    from ..devices import choose_device, set_threads
    from ..runs.load import load_dit_run
    from ..runs.pairs import load_run_pairs

    set_threads(args.threads)
    run = load_dit_run(args.run).to(choose_device(0, args.device))
    out = Path(args.out) if args.out else Path(args.run) / "diagnostics"
    return run, load_run_pairs(run), out


def _ints(text: str, what: str) -> list[int]:
    from ..errors import UserError

    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UserError(f"{what} {text!r}: expected comma-separated integers") from None


def run_timesteps(args: argparse.Namespace) -> int:
    from ..errors import UserError
    from ..eval.dit_diagnostics import timestep_table, timesteps_markdown
    from ..io import write_json, write_text

    run, pairs, out = _load(args)
    ts = _ints(args.t, "--t")
    if not ts or not all(0 <= t < run.diffusion.timesteps for t in ts):
        raise UserError(f"--t {args.t!r}: timesteps must lie in [0, {run.diffusion.timesteps - 1}]")
    table = timestep_table(run, pairs, ts, args.views, args.seed, args.max_shapes)
    table["run"], table["kind"] = str(run.path), run.kind
    write_json(out / "timesteps.json", table)
    write_text(out / "timesteps.md", timesteps_markdown(table, f"{args.run} ({run.kind})"))
    print("  t  alpha_bar  MSE(x0)   MSE(eps)")
    for r in table["rows"]:
        print(f"{r['t']:>3}  {r['alpha_bar']:.4f}   {r['mse_x0']:.5f}  {r['mse_eps_implied']:.4g}")
    print(f"x0 MSE of the mean: {table['mse_x0_of_mean']:.4f}; MSE(x0) first/last t: {table['flatness']:.3f} "
          f"(paper 0.982: flat)\nwrote {out / 'timesteps.json'} and {out / 'timesteps.md'}")
    return 0


def run_ranking(args: argparse.Namespace) -> int:
    from ..errors import UserError
    from ..eval.dit_diagnostics import default_inputs, ranking, ranking_markdown
    from ..io import write_json, write_text

    run, pairs, out = _load(args)
    if args.shapes == "all":
        shapes = list(pairs.obj_idx)
    else:
        shapes = _ints(args.shapes, "--shapes") or default_inputs(pairs.obj_idx)
    unknown = [i for i in shapes if i not in pairs.obj_idx]
    if unknown:
        raise UserError(f"--shapes: {unknown} are not training shapes of {args.run} "
                        f"({len(pairs.obj_idx)} shapes, obj_idx {min(pairs.obj_idx)}..{max(pairs.obj_idx)})")
    result = ranking(run, pairs, shapes, args.views, args.top, args.seed, args.steps)
    result["run"], result["kind"] = str(run.path), run.kind
    write_json(out / "ranking.json", result)
    write_text(out / "ranking.md", ranking_markdown(result, f"{args.run} ({run.kind})"))
    for r in result["inputs"]:
        top = ", ".join(f"{t['obj_idx']}:{t['cos']:.4f}" for t in r["top"])
        print(f"obj_{r['obj_idx']:04d}: cos(pred, true) {r['cos_pred_true']:.4f} (rank {r['true_rank']}); "
              f"top {top}")
    col = result["collapse"]
    print(f"top-1 recall {result['recall']['recall_top1']:.2f}; distinct top-1 {col['distinct_top1']} of "
          f"{result['n_inputs']}; attractors: {[a['obj_idx'] for a in result['attractors']] or 'none'}")
    print(f"wrote {out / 'ranking.json'} and {out / 'ranking.md'}")
    return 0


ACTIONS = {"weights": run_weights, "timesteps": run_timesteps, "ranking": run_ranking}

