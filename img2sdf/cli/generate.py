"""Generate a mesh from 1-8 photos or renders of an object with a trained latent DiT (paper §6).

Example: ``img2sdf generate photo.jpg -o chair.glb --preview chair.png`` (the bundled model) or with
``--model DITRUN``.
Photos have no known camera pose, so the DiT's learned "unknown pose" token is used and each photo is cut
out and framed like the training renders; for renders made by ``img2sdf prepare`` pass
``--poses renders/obj_NNNN/cameras.json`` to condition on their true poses (a run trained on the photo pool
frames them like photos; one trained on the renders as rendered takes them as rendered).
Prints the time of each stage, the five training shapes whose latents are nearest to the result, and a
warning when the sampled latent is off the training range or the mesh is degenerate (box-filling, tiny,
fragmented); ``--guard project`` pulls an off-range latent back to the range first.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .options import add_device, add_samples

HELP = "image(s) → mesh with a trained latent DiT (GLB/OBJ/PLY/STL by extension)"
MESH_FORMATS = (".glb", ".obj", ".ply", ".stl")


def add_arguments(parser) -> None:
    parser.add_argument("images", type=Path, nargs="+", help="1 to 8 images (PNG/JPEG/WebP) of one object")
    parser.add_argument("--model", type=Path, default=None,
                        help="DiT run folder (from train-dit) or a bundle (default: the model bundled with "
                             "img2sdf, trained on 976 synthetic shapes)")
    parser.add_argument("-o", "--out", type=Path, required=True,
                        help=f"output mesh; the format follows the extension ({', '.join(MESH_FORMATS)})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the diffusion noise")
    parser.add_argument("--steps", type=int, default=None, help="DDIM steps (default: the run's, 50)")
    add_samples(parser)
    parser.add_argument("--resolution", type=int, default=128, help="marching-cubes grid resolution")
    parser.add_argument("--guidance", type=float, default=0.0,
                        help="classifier-free guidance scale (needs a run trained with cfg_dropout > 0)")
    parser.add_argument("--poses", type=Path, default=None,
                        help="cameras.json of the renders (images named view_KK.png pick their view's pose)")
    parser.add_argument("--guard", default="none", choices=("none", "project"),
                        help="project: pull a sampled latent that lies off the training range back to it "
                             "before meshing (a warning is printed either way)")
    parser.add_argument("--preview", type=Path, default=None, help="also write a PNG render of the result")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1 is fastest for the tiny model on a busy shared CPU)")
    add_device(parser, "the encoder, DiT and decoder")


def load_poses(cameras_json: Path, images: list[Path]) -> np.ndarray:
    """Camera-to-world [K, 4, 4] for each image from a render folder's cameras.json."""
    from ..data.cameras import load_cameras
    from ..errors import UserError

    poses, _ = load_cameras(cameras_json)
    out = []
    for i, image in enumerate(images):
        m = re.search(r"view_(\d+)", image.stem)
        view = int(m.group(1)) if m else i
        if view >= len(poses):
            raise UserError(f"{cameras_json}: has {len(poses)} views, no pose for {image} (view {view})")
        out.append(poses[view])
    return np.stack(out).astype(np.float32)


def load_render(path: Path) -> np.ndarray:
    """A render as the feature cache saw it: RGB premultiplied by alpha (object on black), not re-framed."""
    from ..data.images import read_rgba

    rgb, alpha = read_rgba(path)
    if alpha is None:
        return rgb
    return (rgb.astype(np.float32) * alpha[..., None] + 0.5).astype(np.uint8)


def run(args) -> int:
    import torch

    from ..data.images import load_view
    from ..data.store import shape_name
    from ..errors import UserError
    from ..generate.pipeline import ImageToShape
    from ..io import write_image, write_mesh

    if args.out.suffix.lower() not in MESH_FORMATS:
        raise UserError(f"-o {args.out}: unknown mesh format; use one of {', '.join(MESH_FORMATS)}")
    if not 1 <= len(args.images) <= 8:
        raise UserError(f"give 1 to 8 images, got {len(args.images)}")
    for path in args.images:
        if not path.is_file():
            raise UserError(f"{path}: no such image")
    torch.set_num_threads(max(1, args.threads))
    model = ImageToShape.load(args.model, device=args.device)
    if args.poses is None and model.dit.config.pose_dropout == 0:
        print("generate: note: this run never trained its unknown-pose token (pose_dropout = 0); "
              "pass --poses for renders with known cameras")
    as_rendered = args.poses is not None and model.dit.info.get("views", "renders") == "renders"
    images = np.stack([load_render(p) if as_rendered else load_view(p) for p in args.images])
    poses = load_poses(args.poses, args.images) if args.poses else None
    result = model.generate(images, poses, seed=args.seed, steps=args.steps, resolution=args.resolution,
                            guidance=args.guidance, guard=args.guard, samples=args.samples,
                            pick=args.pick)
    write_mesh(args.out, result.mesh)
    if args.preview:
        from ..eval.gallery import thumbnail

        write_image(args.preview, thumbnail(result.mesh, 512))
    t = result.timings
    print(f"generate: {len(images)} view(s) → {args.out} ({len(result.mesh.vertices)} vertices, "
          f"{len(result.mesh.faces)} faces)")
    print(f"  timings: encode {t['encode']:.2f} s, sample {t['sample']:.2f} s, mesh {t['mesh']:.2f} s, "
          f"total {sum(t.values()):.2f} s")
    print("  nearest training shapes by latent cosine (§1.2 ii):")
    for rank, n in enumerate(result.neighbours, 1):
        print(f"    {rank}. {shape_name(n['obj_idx'])}  {n['category']:<14s} cos {n['cos']:.4f}")
    if args.preview:
        print(f"  preview: {args.preview}")
    for warning in result.warnings:
        print(f"generate: warning: {warning}")
    return 0
