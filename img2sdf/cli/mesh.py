"""Mesh a fitted run's shapes: coarse-to-fine SDF evaluation and marching cubes (paper §5.3).

RUN is an auto-decoder run (`img2sdf fit`: decoder + the shape's latent) or a per-shape MLP run
(`img2sdf fit-mlps`: the shape's own MLP); the kind is read from RUN/config.json.

``img2sdf mesh RUN --shape K -o out.glb`` meshes the shape with manifest obj_idx K; ``--all`` writes every
training shape to RUN/meshes/obj_NNNN.<format>. The output keeps the largest connected component (one
watertight mesh); the format follows the file extension (glb, obj, ply, stl, off).
"""

from __future__ import annotations

import argparse

from .options import add_device

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
    from ..io import write_mesh
    from ..runs.load import DecoderRun, MLPRun, load_run

    set_threads(args.threads)
    if not (Path(args.run) / "config.json").is_file():
        raise UserError(f"{args.run}: not a run folder (no config.json); make one with `img2sdf fit` or "
                        f"`img2sdf fit-mlps`")
    dec_run = load_run(args.run)
    if not isinstance(dec_run, DecoderRun | MLPRun):
        raise UserError(f"{args.run}: a DiT run has no shapes of its own; mesh its decoder run instead")
    dec_run.to(choose_device(0, args.device))
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
            mesh = mesh_sdf(dec_run.sdf_fn(obj_idx), resolution, keep=args.keep)
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
