"""Fit a latent to an unseen shape with the decoder frozen, then mesh it (DeepSDF inference, paper §5.1).

The input is a mesh file (normalised to the unit sphere and SDF-sampled like `img2sdf prepare`; it should be
watertight) or an SDF .npz with arrays points [N, 3] and sdf [N] (e.g. DATA/shapes/obj_NNNN.npz).
"""

from __future__ import annotations

import argparse

from .options import add_device

HELP = "fit a latent for a new shape (decoder frozen) and mesh it"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="decoder run folder (from `img2sdf fit`)")
    parser.add_argument("target", help="mesh file or SDF .npz of the shape to reconstruct")
    parser.add_argument("-o", "--output", required=True, help="output mesh (glb/obj/ply/stl/off)")
    parser.add_argument("--steps", type=int, default=600, help="optimisation steps")
    parser.add_argument("--points", type=int, default=8192, help="SDF samples per step")
    parser.add_argument("--resolution", type=int, default=0, help="0 = 128 for tiny, 256 otherwise")
    parser.add_argument("--latent-out", help="also save the latent as .npy")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads (0 = torch's default; 1 is faster on a busy shared machine)")
    add_device(parser, "the decoder")


def run(args: argparse.Namespace) -> int:
    import time

    from ..devices import choose_device, set_threads
    from ..eval.decoder_eval import default_resolution, sdf_l1
    from ..generate.mesh import extract_mesh
    from ..generate.reconstruct import load_target, reconstruct_latent
    from ..io import write_mesh, write_npy
    from ..runs.load import load_decoder_run

    set_threads(args.threads)

    dec_run = load_decoder_run(args.run).to(choose_device(0, args.device))
    points, sdf = load_target(args.target, seed=args.seed)
    t = time.perf_counter()
    z = reconstruct_latent(dec_run.decoder, points, sdf, steps=args.steps, n_points=args.points,
                           seed=args.seed, progress=True, **dec_run.reconstruct_settings())
    t_fit = time.perf_counter() - t
    err = sdf_l1(dec_run.decoder, z, points[:32768], sdf[:32768], dec_run.config.clamp_delta)
    t = time.perf_counter()
    resolution = args.resolution or default_resolution(dec_run.config.preset)
    mesh = extract_mesh(dec_run.decoder, z, resolution=resolution)
    write_mesh(args.output, mesh)
    if args.latent_out:
        write_npy(args.latent_out, z.numpy())
    print(f"latent fit {t_fit:.1f} s (clamped SDF L1 {err:.5f}); mesh {time.perf_counter() - t:.1f} s, "
          f"{len(mesh.faces)} faces → {args.output}")
    return 0
