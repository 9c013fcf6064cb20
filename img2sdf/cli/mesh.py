"""Mesh a run's shapes, for any family: coarse-to-fine SDF evaluation and marching cubes (paper §5.3).

RUN is an auto-decoder run (`img2sdf fit`: decoder + the shape's latent), a per-shape MLP run
(`img2sdf fit-mlps`: the shape's own MLP), a weight-AE run (`img2sdf train-wae`: the MLP it reconstructs) or a
DiT run (`train-wdit` / `train-dit`: what it predicts from the shape's first 8 cached views, known poses);
the kind is read from RUN/config.json (generate/weight_runs.py), so one eval scores every family.

``img2sdf mesh RUN --shape K -o out.glb`` meshes the shape with manifest obj_idx K; ``--all`` writes every
training shape to RUN/meshes/obj_NNNN.<format>. The output keeps the largest connected component (one
watertight mesh); the format follows the file extension (glb, obj, ply, stl, off).
"""

from __future__ import annotations

import argparse

from .options import add_device

HELP = "extract meshes from a run of any family (marching cubes, coarse-to-fine)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="run folder (`img2sdf fit`, `fit-mlps`, `train-wae`, `train-wdit`, "
                        "`train-dit`)")
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
    add_device(parser, "the decoder or the MLPs")


def run(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    from tqdm import tqdm

    from ..data.store import shape_name
    from ..devices import choose_device, set_threads
    from ..errors import UserError
    from ..eval.decoder_eval import default_resolution
    from ..generate.mesh import mesh_sdf
    from ..generate.weight_runs import shape_source
    from ..io import write_mesh

    set_threads(args.threads)
    source = shape_source(args.run, choose_device(0, args.device))
    resolution = args.resolution or default_resolution(source.preset)

    if args.shape is not None:
        if not args.output:
            raise UserError("--shape needs -o/--output FILE (e.g. -o out.glb)")
        if args.shape not in source.obj_idx:
            raise UserError(f"--shape {args.shape}: not a training shape of {args.run} (obj_idx "
                            f"{min(source.obj_idx)}..{max(source.obj_idx)}, {len(source.obj_idx)} shapes)")
        jobs = [(args.shape, Path(args.output))]
    else:
        ext = args.format.lstrip(".")
        jobs = [(i, Path(args.run) / "meshes" / f"{shape_name(i)}.{ext}") for i in source.obj_idx]
    failed = 0
    for obj_idx, path in tqdm(jobs, desc="mesh", disable=len(jobs) == 1):
        t = time.perf_counter()
        try:
            mesh = mesh_sdf(source.sdf_fn(obj_idx), resolution, keep=args.keep)
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
