"""Mesh a fitted run's shapes: coarse-to-fine SDF evaluation and marching cubes (paper §5.3).

RUN is an auto-decoder run (`img2sdf fit`: decoder + the shape's latent) or a per-shape MLP run
(`img2sdf fit-mlps`: the shape's own MLP); the kind is read from RUN/config.json.

``img2sdf mesh RUN --shape K -o out.glb`` meshes the shape with manifest obj_idx K; ``--all`` writes every
training shape to RUN/meshes/obj_NNNN.<format>. The output keeps the largest connected component (one
watertight mesh); the format follows the file extension (glb, obj, ply, stl, off).
"""

from __future__ import annotations

import argparse

HELP = "extract meshes from a fitted decoder run (marching cubes, coarse-to-fine)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="run folder (from `img2sdf fit` or `img2sdf fit-mlps`)")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--shape", type=int, metavar="K", help="manifest obj_idx of a training shape")
    which.add_argument("--all", action="store_true", help="every training shape, into RUN/meshes/")
    parser.add_argument("-o", "--output", help="output mesh file for --shape (glb/obj/ply/stl/off)")
    parser.add_argument("--format", default="ply", help="file format for --all")
    parser.add_argument("--resolution", type=int, default=0,
                        help="cells per axis (a power-of-2 multiple of 32); 0 = 128 for tiny, 256 otherwise")
    parser.add_argument("--keep", default="largest", choices=["largest", "all"],
                        help="connected components to keep")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads (0 = torch's default; 1 is faster on a busy shared machine)")


def run(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    from tqdm import tqdm

    from ..data.store import shape_name
    from ..errors import UserError
    from ..eval.decoder_eval import default_resolution
    from ..generate.mesh import extract_mesh
    from ..io import write_mesh
    from ..models.decoder import load_decoder_run
    from ..train.distributed import set_threads

    set_threads(args.threads)

    if _is_mlp_run(Path(args.run)):
        from ..train.fit_mlps import load_mlp_run

        dec_run = load_mlp_run(args.run)

        def shape_mesh(obj_idx: int):
            return _mlp_mesh(dec_run.row(obj_idx), resolution, args.keep)
    else:
        dec_run = load_decoder_run(args.run)

        def shape_mesh(obj_idx: int):
            latent = dec_run.latents[dec_run.obj_idx.index(obj_idx)]
            return extract_mesh(dec_run.decoder, latent, resolution=resolution, keep=args.keep)
    resolution = args.resolution or default_resolution(dec_run.config.preset)
    if args.shape is not None:
        if not args.output:
            raise UserError("--shape needs -o/--output FILE (e.g. -o out.glb)")
        if args.shape not in dec_run.obj_idx:
            raise UserError(f"--shape {args.shape}: not a training shape of {args.run} (obj_idx "
                            f"{min(dec_run.obj_idx)}..{max(dec_run.obj_idx)}, {len(dec_run.obj_idx)} shapes)")
        jobs = [(args.shape, Path(args.output))]
    else:
        ext = args.format.lstrip(".")
        jobs = [(i, Path(args.run) / "meshes" / f"{shape_name(i)}.{ext}") for i in dec_run.obj_idx]
    failed = 0
    for obj_idx, path in tqdm(jobs, desc="mesh", disable=len(jobs) == 1):
        t = time.perf_counter()
        try:
            mesh = shape_mesh(obj_idx)
        except UserError as e:
            if len(jobs) == 1:
                raise
            failed += 1
            tqdm.write(f"{shape_name(obj_idx)}: {e}")
            continue
        write_mesh(path, mesh)
        if len(jobs) == 1:
            print(f"{path}: {len(mesh.faces)} faces, watertight={mesh.is_watertight}, "
                  f"{mesh.metadata['sdf_evaluations']} decoder evaluations, {time.perf_counter() - t:.1f} s")
    if len(jobs) > 1:
        print(f"{len(jobs) - failed} meshes in {Path(args.run) / 'meshes'} ({failed} without a surface)")
    return 0


def _is_mlp_run(run) -> bool:
    from ..io import read_json
    from ..train.fit_mlps import RUN_KIND

    cfg = run / "config.json"
    return cfg.is_file() and read_json(cfg).get("kind") == RUN_KIND


def _mlp_mesh(weights, resolution: int, keep: str):
    """One shape's own MLP (fit-mlps) through the same coarse-to-fine marching cubes."""
    from ..generate.mesh import grid_to_mesh, sparse_grid
    from ..models.mlp import mlp_sdf_fn

    grid = sparse_grid(mlp_sdf_fn(weights), resolution)
    mesh = grid_to_mesh(grid, keep)
    mesh.metadata["sdf_evaluations"] = grid.evaluations
    return mesh
