"""Seconds from a loaded model to a written mesh (issue 5 target: ≤ 2 s at 128³ with the tiny presets).

Stages: encode (image → features), sample (DDIM, 50 steps), mesh (coarse-to-fine marching cubes + GLB
write). The reference in the same run is the same pipeline with DeepSDF's own meshing — every vertex of the
dense 128³ grid through the decoder (``create_mesh`` in the original code) — reported as a ratio.

Usage: ``python benchmarks/bench_generate.py [--model runs/demo/dit]``; without a trained run it builds a
small one first (prepare 8 synthetic shapes → encode → fit → train-dit; a few minutes, not timed).
Prints JSON lines; the last line is the summary object.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def build_small_run(root: Path) -> Path:
    """A throw-away DiT run on 8 synthetic shapes (quality is irrelevant here, timings are not)."""
    from img2sdf.cli.main import main as cli

    data, dec, dit = root / "data", root / "decoder", root / "dit"
    for argv in (
        ["prepare", str(data), "--source", "synthetic", "--n", "8", "--n-test", "1", "--n-ood", "1",
         "--views", "8", "--points", "20000", "--workers", "2"],
        ["encode", str(data)],
        ["fit", str(data), "--out", str(dec), "--preset", "tiny", "--set", "epochs=60", "--no-progress"],
        ["train-dit", str(data), "--decoder", str(dec), "--out", str(dit), "--preset", "tiny",
         "--steps", "200", "--no-progress"],
    ):
        if cli(argv) != 0:
            raise SystemExit(f"bench_generate: `img2sdf {argv[0]}` failed while building a small run")
    return dit


def held_out_view(model) -> np.ndarray:
    """One render of a test (else any) shape of the run's store, as the encoder's input."""
    from img2sdf.data.images import load_view
    from img2sdf.data.store import ShapeStore

    store = ShapeStore(model.dit.info["data"])
    manifest = store.load_manifest()
    shape = (manifest.select(split="test") or manifest.select())[0]
    return load_view(sorted(store.render_dir(shape.obj_idx).glob("view_*.png"))[0])[None]


def _rounded(timings: dict) -> dict:
    return {k: round(v, 4) for k, v in timings.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("runs/demo/dit"), help="DiT run folder")
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import torch

    from img2sdf.generate.mesh import dense_grid, grid_to_mesh
    from img2sdf.generate.pipeline import ImageToShape
    from img2sdf.io import write_mesh
    from img2sdf.models.decoder import decoder_sdf_fn

    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model if (args.model / "dit.safetensors").is_file() else build_small_run(Path(tmp))
        t = time.perf_counter()
        model = ImageToShape.load(model_dir)
        load_s = time.perf_counter() - t
        image = held_out_view(model)
        ours, ref = [], []
        for r in range(args.repeats):
            t = time.perf_counter()
            result = model.generate(image, seed=r, resolution=args.resolution)
            t_write = time.perf_counter()
            write_mesh(Path(tmp) / "out.glb", result.mesh)
            result.timings["mesh"] += time.perf_counter() - t_write
            total = time.perf_counter() - t
            ours.append({**result.timings, "total": total})
            print(json.dumps({"run": r, "pipeline": "img2sdf", **_rounded(ours[-1]),
                              "sdf_evaluations": result.mesh.metadata.get("sdf_evaluations")}))

            t = time.perf_counter()
            features = model.encode(image)
            t_enc = time.perf_counter()
            latent = model.sample_latents(features[None], seed=r)[0]
            t_smp = time.perf_counter()
            grid = dense_grid(decoder_sdf_fn(model.decoder, torch.from_numpy(latent)), args.resolution)
            write_mesh(Path(tmp) / "ref.glb", grid_to_mesh(grid))
            t_end = time.perf_counter()
            ref.append({"encode": t_enc - t, "sample": t_smp - t_enc, "mesh": t_end - t_smp,
                        "total": t_end - t})
            print(json.dumps({"run": r, "pipeline": "dense-grid reference", **_rounded(ref[-1]),
                              "sdf_evaluations": grid.evaluations}))

    def median(rows, key):
        return float(np.median([row[key] for row in rows]))

    summary = {
        "benchmark": "generate",
        "resolution": args.resolution,
        "ddim_steps": model.dit.config.sample_steps,
        "model": str(args.model) if model_dir == args.model else "small throw-away run",
        "load_seconds": round(load_s, 3),
        **{f"{k}_seconds": round(median(ours, k), 4) for k in ("encode", "sample", "mesh", "total")},
        "reference_total_seconds": round(median(ref, "total"), 4),
        "reference_mesh_seconds": round(median(ref, "mesh"), 4),
        "speedup_vs_dense_reference": round(median(ref, "total") / median(ours, "total"), 2),
        "target_total_seconds": 2.0,
        "meets_target": median(ours, "total") <= 2.0,
        "threads": torch.get_num_threads(),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
