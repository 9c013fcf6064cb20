"""Auto-decoder training throughput (SDF points per second) for the tiny and paper presets.

Our step: all samples resident as one tensor [N, P, 4], the batch gathered with one indexing op, latents
broadcast per shape. Reference step, as in the original DeepSDF ``train_deep_sdf.py``: per shape in the
batch a Python-level ``unpack_sdf_samples_from_ram`` (half the points from the positive samples, half from
the negative ones, ``index_select`` each), ``torch.cat`` of the pieces, then one latent lookup per point.
Both run the same decoder, loss (eq. 5) and Adam update in the same process; the ratio is ours / reference.

    python benchmarks/bench_fit.py [--data DATA] [--threads 1] [--steps-tiny 30 --steps-paper 4]

Without ``--data`` the samples come from analytic solids (sphere / box / torus of random sizes), 200k per
shape like ``img2sdf prepare``. Prints one JSON object per preset and a summary object last.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from img2sdf.data import analytic
from img2sdf.runs.configs import make_config
from img2sdf.train.fit import AutoDecoder, clamped_l1, load_samples


def analytic_samples(n_shapes: int, n_points: int, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n_shapes):
        kind = i % 3
        pts = rng.uniform(-1, 1, size=(n_points, 3))
        if kind == 0:
            sdf = analytic.sphere_sdf(pts, rng.uniform(0.3, 0.8))
        elif kind == 1:
            sdf = analytic.box_sdf(pts, rng.uniform(0.2, 0.6, size=3))
        else:
            sdf = analytic.torus_sdf(pts, rng.uniform(0.4, 0.6), rng.uniform(0.1, 0.25))
        out.append(np.concatenate([pts, sdf[:, None]], axis=1).astype(np.float32))
    return torch.from_numpy(np.stack(out))


def update(opt, cfg, pred, sdf, z):
    """Eq. (5) and one Adam step: identical for both loops."""
    loss = clamped_l1(pred, sdf, cfg.clamp_delta).mean() + cfg.latent_reg * z.pow(2).sum(-1).mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def our_step(model, opt, data, cfg, shape_idx, gen):
    point_idx = torch.randint(data.shape[1], (len(shape_idx), cfg.points_per_shape), generator=gen)
    samples = data[shape_idx[:, None], point_idx]
    pred, z = model(shape_idx, samples[..., :3])
    update(opt, cfg, pred, samples[..., 3], z)


def reference_step(model, opt, pos_neg, cfg, shape_idx, gen):
    half = cfg.points_per_shape // 2
    pieces, indices = [], []
    for i in shape_idx.tolist():  # DeepSDF: one Python iteration per shape
        pos, neg = pos_neg[i]
        pick_pos = (torch.rand(half, generator=gen) * pos.shape[0]).long()
        pick_neg = (torch.rand(half, generator=gen) * neg.shape[0]).long()
        pieces.append(torch.cat([torch.index_select(pos, 0, pick_pos), torch.index_select(neg, 0, pick_neg)]))
        indices.append(torch.full((2 * half,), i, dtype=torch.long))
    sdf_data, idx = torch.cat(pieces), torch.cat(indices)
    z = model.latents(idx)  # one latent lookup per point
    update(opt, cfg, model.decoder(z, sdf_data[:, :3]), sdf_data[:, 3], z)


def measure(step_fn, steps: int, warmup: int = 2) -> float:
    for i in range(warmup + steps):
        if i == warmup:
            t = time.perf_counter()
        step_fn()
    return (time.perf_counter() - t) / steps


def bench_preset(name: str, data: torch.Tensor, steps: int) -> dict:
    cfg = make_config("fit", name)
    torch.manual_seed(0)
    model = AutoDecoder(cfg, data.shape[0])
    opt = torch.optim.Adam([{"params": model.decoder.parameters(), "lr": cfg.lr_decoder},
                            {"params": model.latents.parameters(), "lr": cfg.lr_latent}])
    pos_neg = [(d[d[:, 3] >= 0], d[d[:, 3] < 0]) for d in data]
    gen = torch.Generator().manual_seed(0)
    order = torch.randint(data.shape[0], (10_000, cfg.shapes_per_step), generator=gen)
    counter = iter(range(10_000))
    ours = measure(lambda: our_step(model, opt, data, cfg, order[next(counter)], gen), steps)
    ref = measure(lambda: reference_step(model, opt, pos_neg, cfg, order[next(counter)], gen), steps)
    points = cfg.shapes_per_step * cfg.points_per_shape
    return {"preset": name, "decoder": f"{cfg.decoder.hidden}x{cfg.decoder.layers}",
            "points_per_step": points, "steps_timed": steps,
            "ours_s_per_step": ours, "reference_s_per_step": ref,
            "ours_points_per_s": points / ours, "reference_points_per_s": points / ref,
            "ratio_ours_over_reference": ref / ours}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="prepared store (default: analytic solids)")
    parser.add_argument("--shapes", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps-tiny", type=int, default=30)
    parser.add_argument("--steps-paper", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.data:
        from img2sdf.data.store import ShapeStore

        store = ShapeStore(args.data)
        ids = [s.obj_idx for s in store.load_manifest().select(split="train")][: args.shapes]
        data = load_samples(store, ids, progress=False)
    else:
        data = analytic_samples(args.shapes, 200_000)
    results = [bench_preset("tiny", data, args.steps_tiny), bench_preset("paper", data, args.steps_paper)]
    for r in results:
        print(json.dumps(r))
    print(json.dumps({"benchmark": "fit", "threads": args.threads, "shapes": data.shape[0],
                      "samples_per_shape": data.shape[1], "data": args.data or "analytic",
                      **{f"{r['preset']}_points_per_s": round(r["ours_points_per_s"]) for r in results},
                      **{f"{r['preset']}_ratio_vs_reference": round(r["ratio_ours_over_reference"], 3)
                         for r in results}}))


if __name__ == "__main__":
    main()
