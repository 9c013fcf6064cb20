"""Batched per-shape MLP fitting (img2sdf fit-mlps) vs fitting them one after another, in the same run.

The one-by-one loop is what HyperDiffusion does: a standard ``nn.Module`` MLP and its own Adam per shape, a
Python loop over shapes. Both fit the same K analytic shapes (spheres, boxes, tori of varied sizes, exact
SDF samples) from the same initial weights with the same steps, points per step, learning rate and cosine
schedule; the batched side runs the real ``train.fit_mlps.run_job``. Prints JSON: shapes/hour of each, the
ratio, the mean final losses (both must fit equally well), threads and the load average.

    .venv/bin/python benchmarks/bench_fit_mlps.py --shapes 16 --steps 200 --threads 1
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from img2sdf.data import analytic
from img2sdf.models.mlp import ShapeMLP, init_weights
from img2sdf.runs.configs import make_config
from img2sdf.train.fit import clamped_l1, lr_scale
from img2sdf.train.fit_mlps import Job, final_losses, run_job


def analytic_samples(k: int, n: int, seed: int = 0) -> torch.Tensor:
    """[k, n, 4] SDF samples (half near the surface, half uniform) of k varied analytic solids."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(k):
        kind = i % 3
        near = rng.uniform(-1, 1, size=(n // 2, 3))
        if kind == 0:
            r = rng.uniform(0.3, 0.8)
            near = r * near / np.linalg.norm(near, axis=1, keepdims=True)
            fn = lambda p, r=r: analytic.sphere_sdf(p, r)  # noqa: E731
        elif kind == 1:
            half = rng.uniform(0.2, 0.6, size=3)
            near = np.clip(near, -half, half)
            fn = lambda p, h=half: analytic.box_sdf(p, h)  # noqa: E731
        else:
            big, small = rng.uniform(0.4, 0.6), rng.uniform(0.1, 0.25)
            a = rng.uniform(0, 2 * np.pi, size=(2, n // 2))
            near = np.stack([(big + small * np.cos(a[1])) * np.cos(a[0]),
                             (big + small * np.cos(a[1])) * np.sin(a[0]), small * np.sin(a[1])], 1)
            fn = lambda p, R=big, r=small: analytic.torus_sdf(p, R, r)  # noqa: E731
        pts = np.concatenate([near + rng.normal(scale=0.02, size=near.shape),
                              rng.uniform(-1, 1, size=(n - len(near), 3))])
        out.append(np.concatenate([pts, fn(pts)[:, None]], 1))
    return torch.from_numpy(np.stack(out).astype(np.float32))


def fit_one_by_one(samples: torch.Tensor, init: torch.Tensor, steps: int, batch: int, lr: float,
                   delta: float, seed: int) -> torch.Tensor:
    """HyperDiffusion-style: for each shape, its own nn.Module and Adam, trained to the end."""
    fitted = []
    for m in range(len(samples)):
        mlp = ShapeMLP.from_flat(init[m])
        opt = torch.optim.Adam(mlp.parameters(), lr=lr)
        g = torch.Generator().manual_seed(seed + m)
        for step in range(steps):
            pick = samples[m, torch.randint(samples.shape[1], (batch,), generator=g)]
            loss = clamped_l1(mlp(pick[:, :3]), pick[:, 3], delta).mean()
            for group in opt.param_groups:
                group["lr"] = lr * lr_scale(step, steps, 0.0)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        fitted.append(mlp.to_flat())
    return torch.stack(fitted)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", type=int, default=16)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-points", type=int, default=1024, help="points per shape per step (tiny)")
    parser.add_argument("--samples", type=int, default=20_000, help="SDF samples per shape")
    parser.add_argument("--lr", type=float, default=1e-3, help="the tiny preset's")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()

    samples = analytic_samples(args.shapes, args.samples)
    init = init_weights(args.shapes, seeds=list(range(args.shapes)))
    obj_idx = list(range(args.shapes))
    per_epoch = 4
    cfg = make_config("fit-mlps", "tiny", [f"batch_points={args.batch_points}",
                               f"points_per_epoch={per_epoch * args.batch_points}",
                               f"epochs={math.ceil(args.steps / per_epoch)}", f"lr={args.lr}",
                               "ckpt_every=1000000", "eval_points=8192"])
    steps = cfg.epochs * per_epoch
    # the first torch.optim.Adam imports torch._dynamo (~3 s): pay it before either side is timed
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        job = Job("bench", obj_idx, init, cfg.epochs, cfg.lr, Path(tmp))
        batched, batched_losses = run_job(job, samples, cfg)
        t_batched = time.perf_counter() - t
    t = time.perf_counter()
    looped = fit_one_by_one(samples, init, steps, args.batch_points, args.lr, cfg.clamp_delta, cfg.seed)
    loop_losses = final_losses(looped, samples, obj_idx, cfg)  # run_job's time includes the same evaluation
    t_loop = time.perf_counter() - t

    per_hour = {"batched": 3600 * args.shapes / t_batched, "one_by_one": 3600 * args.shapes / t_loop}
    print(json.dumps({
        "shapes": args.shapes, "steps_per_shape": steps, "points_per_step": args.batch_points,
        "params_per_shape": int(init.shape[1]),
        "seconds": {"batched": round(t_batched, 2), "one_by_one": round(t_loop, 2)},
        "shapes_per_hour": {k: round(v, 1) for k, v in per_hour.items()},
        "ratio_batched_over_one_by_one": round(per_hour["batched"] / per_hour["one_by_one"], 3),
        "final_loss_mean": {"batched": float(np.mean(batched_losses)),
                            "one_by_one": float(np.mean(loop_losses))},
        "threads": torch.get_num_threads(),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }, indent=2))


if __name__ == "__main__":
    main()
