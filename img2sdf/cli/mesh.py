"""Mesh a fitted run's shapes: coarse-to-fine SDF evaluation and marching cubes (paper §5.3).

RUN is an auto-decoder run (`img2sdf fit`: decoder + the shape's latent), a per-shape MLP run
(`img2sdf fit-mlps`: the shape's own MLP), a weight DiT run (`img2sdf train-wdit`: the MLP it predicts from
the shape's cached views) or a weight-AE run (`img2sdf train-wae`: the MLP it reconstructs); the kind is read
from RUN/config.json.

``img2sdf mesh RUN --shape K -o out.glb`` meshes the shape with manifest obj_idx K; ``--all`` writes every
training shape to RUN/meshes/obj_NNNN.<format>. The output keeps the largest connected component (one
watertight mesh); the format follows the file extension (glb, obj, ply, stl, off).
"""

from __future__ import annotations

import argparse

HELP = "extract meshes from a run of any family (marching cubes, coarse-to-fine)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="run folder (`img2sdf fit`, `fit-mlps`, `train-wdit` or `train-wae`)")
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
    from ..generate.mesh import extract_mesh, mlp_mesh
    from ..generate.weight_runs import weight_source
    from ..io import write_mesh
    from ..models.decoder import load_decoder_run
    from ..train.distributed import set_threads

    set_threads(args.threads)

    source = weight_source(args.run)
    if source is not None:  # per-shape MLP weights: fitted, DiT-predicted or AE-reconstructed
        obj_idx, preset = source.obj_idx, source.preset

        def shape_mesh(i: int):
            return mlp_mesh(source.weights(i), resolution, args.keep)
    else:
        dec_run = load_decoder_run(args.run)
        obj_idx, preset = dec_run.obj_idx, dec_run.config.preset

        def shape_mesh(i: int):
            latent = dec_run.latents[dec_run.obj_idx.index(i)]
            return extract_mesh(dec_run.decoder, latent, resolution=resolution, keep=args.keep)
    resolution = args.resolution or default_resolution(preset)
    if args.shape is not None:
        if not args.output:
            raise UserError("--shape needs -o/--output FILE (e.g. -o out.glb)")
        if args.shape not in obj_idx:
            raise UserError(f"--shape {args.shape}: not a training shape of {args.run} (obj_idx "
                            f"{min(obj_idx)}..{max(obj_idx)}, {len(obj_idx)} shapes)")
        jobs = [(args.shape, Path(args.output))]
    else:
        ext = args.format.lstrip(".")
        jobs = [(i, Path(args.run) / "meshes" / f"{shape_name(i)}.{ext}") for i in obj_idx]
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

