"""Auto-decoder training throughput (SDF points per second) for the tiny and paper presets.

Our step: all samples resident as one tensor [N, P, 4], the batch gathered with one indexing op, latents
broadcast per shape. Reference step, as in the original DeepSDF ``train_deep_sdf.py``: per shape in the
batch a Python-level ``unpack_sdf_samples_from_ram`` (half the points from the positive samples, half from
the negative ones, ``index_select`` each), ``torch.cat`` of the pieces, then one latent lookup per point.
Both run the same decoder, loss (eq. 5) and Adam update in the same process; the ratio is ours / reference.
Each preset's achieved GFLOPS (``training_flops_per_point`` × points/s) is reported as a fraction of a dense
matmul peak measured right before and after it at the same thread count, for 1 and 2 threads, and for the
tiny preset as 2 single-thread DDP processes (gloo), the layout ``torchrun --nproc_per_node 2`` gives.

    python benchmarks/bench_fit.py [--data DATA] [--threads 1,2] [--steps-tiny 30 --steps-paper 4]

Without ``--data`` the samples come from analytic solids (sphere / box / torus of random sizes), 200k per
shape like ``img2sdf prepare``. Prints one JSON object per preset and a summary object last.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch

from img2sdf.data import analytic
from img2sdf.models.decoder import training_flops_per_point
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


def matmul_peak(reps: int = 3) -> float:
    """GFLOPS of a dense fp32 4096×512 @ 512×512 product (best of ``reps`` runs of 10), at the current
    thread count: the machine's attainable peak, measured next to each preset so load shifts both."""
    a, b = torch.randn(4096, 512), torch.randn(512, 512)
    a @ b
    best = 0.0
    for _ in range(reps):
        t = time.perf_counter()
        for _ in range(10):
            a @ b
        best = max(best, 10 * 2 * 4096 * 512 * 512 / (time.perf_counter() - t) / 1e9)
    return best


def build(name: str, n_shapes: int):
    cfg = make_config("fit", name)
    torch.manual_seed(0)
    model = AutoDecoder(cfg, n_shapes)
    opt = torch.optim.Adam([{"params": model.decoder.parameters(), "lr": cfg.lr_decoder},
                            {"params": model.latents.parameters(), "lr": cfg.lr_latent}])
    return cfg, model, opt


def bench_preset(name: str, data: torch.Tensor, steps: int, reference: bool = True) -> dict:
    cfg, model, opt = build(name, data.shape[0])
    pos_neg = [(d[d[:, 3] >= 0], d[d[:, 3] < 0]) for d in data]
    gen = torch.Generator().manual_seed(0)
    order = torch.randint(data.shape[0], (10_000, cfg.shapes_per_step), generator=gen)
    counter = iter(range(10_000))
    peak = matmul_peak()
    ours = measure(lambda: our_step(model, opt, data, cfg, order[next(counter)], gen), steps)
    peak = (peak + matmul_peak()) / 2
    points = cfg.shapes_per_step * cfg.points_per_shape
    flops = training_flops_per_point(cfg.decoder)
    row = {"preset": name, "decoder": f"{cfg.decoder.hidden}x{cfg.decoder.layers}",
           "threads": torch.get_num_threads(), "points_per_step": points, "steps_timed": steps,
           "training_flops_per_point": flops, "ours_s_per_step": ours, "ours_points_per_s": points / ours,
           "achieved_gflops": flops * points / ours / 1e9, "matmul_peak_gflops": peak,
           "fraction_of_peak": flops * points / ours / 1e9 / peak}
    if reference:
        ref = measure(lambda: reference_step(model, opt, pos_neg, cfg, order[next(counter)], gen), steps)
        row.update(reference_s_per_step=ref, reference_points_per_s=points / ref,
                   ratio_ours_over_reference=ref / ours)
    return row


def _ddp_worker(rank: int, world: int, port: int, name: str, data: torch.Tensor, steps: int, out) -> None:
    """One of ``world`` single-thread DDP (gloo) processes running the same global batch as the preset."""
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    cfg, model, opt = build(name, data.shape[0])
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    gen = torch.Generator().manual_seed(rank)
    local = cfg.shapes_per_step // world

    def step():
        shape_idx = torch.randint(data.shape[0], (local,), generator=gen)
        point_idx = torch.randint(data.shape[1], (local, cfg.points_per_shape), generator=gen)
        samples = data[shape_idx[:, None], point_idx]
        pred, z = ddp(shape_idx, samples[..., :3])
        update(opt, cfg, pred, samples[..., 3], z)

    dist.barrier()
    seconds = measure(step, steps)
    if rank == 0:
        out.put(seconds)
    dist.destroy_process_group()


def bench_ddp(name: str, data: torch.Tensor, steps: int, world: int = 2) -> dict:
    """The same preset as ``world`` single-thread DDP processes (``torchrun --nproc_per_node 2``)."""
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    mp.start_processes(_ddp_worker, args=(world, port, name, data, steps, out), nprocs=world, join=True,
                       start_method="spawn")
    seconds = out.get()
    cfg = make_config("fit", name)
    points = cfg.shapes_per_step * cfg.points_per_shape
    torch.set_num_threads(world)
    peak = matmul_peak()
    flops = training_flops_per_point(cfg.decoder)
    return {"preset": name, "layout": f"{world} DDP processes x 1 thread",
            "ours_points_per_s": points / seconds,
            "achieved_gflops": flops * points / seconds / 1e9, "matmul_peak_gflops_2_threads": peak,
            "fraction_of_peak": flops * points / seconds / 1e9 / peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="prepared store (default: analytic solids)")
    parser.add_argument("--shapes", type=int, default=16)
    parser.add_argument("--threads", default="1,2", help="comma-separated torch thread counts")
    parser.add_argument("--steps-tiny", type=int, default=30)
    parser.add_argument("--steps-paper", type=int, default=4)
    parser.add_argument("--no-ddp", action="store_true", help="skip the 2-process DDP measurement")
    args = parser.parse_args()
    if args.data:
        from img2sdf.data.store import ShapeStore

        store = ShapeStore(args.data)
        ids = [s.obj_idx for s in store.load_manifest().select(split="train")][: args.shapes]
        data = load_samples(store, ids, progress=False)
    else:
        data = analytic_samples(args.shapes, 200_000)
    results = []
    for threads in [int(t) for t in args.threads.split(",")]:
        torch.set_num_threads(threads)
        for name, steps in (("tiny", args.steps_tiny), ("paper", args.steps_paper)):
            results.append(bench_preset(name, data, steps))
            print(json.dumps(results[-1]), flush=True)
    if not args.no_ddp:
        results.append(bench_ddp("tiny", data, args.steps_tiny))
        print(json.dumps(results[-1]), flush=True)
    key = [f"{r['preset']}_{r['threads']}t" if "threads" in r else f"{r['preset']}_ddp2" for r in results]
    print(json.dumps({"benchmark": "fit", "shapes": data.shape[0], "samples_per_shape": data.shape[1],
                      "data": args.data or "analytic", "load_average": os.getloadavg()[0],
                      **{f"{k}_fraction_of_peak": round(r["fraction_of_peak"], 3)
                         for k, r in zip(key, results, strict=True)},
                      **{f"{k}_points_per_s": round(r["ours_points_per_s"])
                         for k, r in zip(key, results, strict=True)}}))


if __name__ == "__main__":
    main()
