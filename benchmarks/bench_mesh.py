"""Coarse-to-fine marching cubes vs the dense grid (DeepSDF's ``create_mesh``), in the same run.

For each field — a thin analytic torus and, with ``--run``, a fitted decoder's shape — both grids are built
at ``--resolution`` and meshed with the same marching cubes. Reported: SDF evaluations and wall time of
each, their ratios, and the Chamfer-L1 / F-score@1 % between the two meshes (the surface-metrics protocol).
With ``--run`` also the decoder's points/s by evaluation chunk (``decoder_sdf_fn(chunk=...)``), interleaved
repeats in the same run: its default chunk against the others.

    python benchmarks/bench_mesh.py [--run RUN --shape K] [--resolution 256] [--threads 2]

Prints one JSON object per field and a summary object last.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from img2sdf.data import analytic
from img2sdf.eval.metrics import surface_metrics
from img2sdf.generate.mesh import dense_grid, grid_to_mesh, sparse_grid
from img2sdf.models.decoder import decoder_sdf_fn


def compare(name: str, sdf_fn, resolution: int) -> dict:
    t = time.perf_counter()
    sparse = sparse_grid(sdf_fn, resolution)
    ours = grid_to_mesh(sparse)
    t_ours = time.perf_counter() - t
    t = time.perf_counter()
    dense = dense_grid(sdf_fn, resolution)
    ref = grid_to_mesh(dense)
    t_ref = time.perf_counter() - t
    m = surface_metrics(ours, ref, n_points=100_000)
    return {"field": name, "resolution": resolution,
            "evaluations_ours": sparse.evaluations, "evaluations_dense": dense.evaluations,
            "evaluation_ratio_dense_over_ours": dense.evaluations / sparse.evaluations,
            "seconds_ours": t_ours, "seconds_dense": t_ref, "speedup": t_ref / t_ours,
            "chamfer_l1_vs_dense": m["chamfer_l1"], "fscore_1pct_vs_dense": m["fscore_1pct"],
            "identical_faces": bool(np.array_equal(ours.faces, ref.faces)),
            "watertight": bool(ours.is_watertight)}


def chunk_throughput(decoder, latent, chunks=(2048, 8192, 65536), points: int = 131072, repeats: int = 3
                     ) -> dict:
    """Median decoder points/s per evaluation chunk, repeats interleaved so load drifts hit every chunk."""
    pts = (np.random.default_rng(0).random((points, 3), dtype=np.float32) * 2 - 1)
    rates: dict[int, list[float]] = {c: [] for c in chunks}
    for _ in range(repeats):
        for c in chunks:
            fn = decoder_sdf_fn(decoder, latent, chunk=c)
            t = time.perf_counter()
            fn(pts)
            rates[c].append(points / (time.perf_counter() - t))
    return {c: float(np.median(r)) for c, r in rates.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", help="decoder run folder; adds its shape --shape to the comparison")
    parser.add_argument("--shape", type=int, help="manifest obj_idx (default: the run's first shape)")
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    fields = [("analytic_thin_torus",
               lambda p: analytic.torus_sdf(p.astype(np.float64), 0.6, 0.03).astype(np.float32))]
    if args.run:
        from img2sdf.runs import load_decoder_run

        run = load_decoder_run(args.run)
        obj = run.obj_idx[0] if args.shape is None else args.shape
        latent = run.latents[run.obj_idx.index(obj)]
        fields.append((f"decoder_{run.config.preset}_obj_{obj:04d}", decoder_sdf_fn(run.decoder, latent)))
    results = [compare(name, fn, args.resolution) for name, fn in fields]
    if args.run:
        rates = chunk_throughput(run.decoder, latent)
        default = decoder_sdf_fn.__defaults__[0]
        print(json.dumps({"decoder_points_per_s_by_chunk": {str(c): round(r) for c, r in rates.items()},
                          "default_chunk": default,
                          "default_over_65536": round(rates.get(default, float("nan")) / rates[65536], 2)}))
    for r in results:
        print(json.dumps(r))
    print(json.dumps({"benchmark": "mesh", "resolution": args.resolution, "threads": args.threads,
                      **{f"{r['field']}_evaluation_ratio": round(r["evaluation_ratio_dense_over_ours"], 1)
                         for r in results},
                      **{f"{r['field']}_chamfer_l1_vs_dense": r["chamfer_l1_vs_dense"] for r in results},
                      **{f"{r['field']}_speedup": round(r["speedup"], 2) for r in results}}))


if __name__ == "__main__":
    main()
