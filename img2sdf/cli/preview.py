"""Contact sheet of a prepared store's meshes: one 3/4-view thumbnail per shape, labelled with its index,
category and split (failed shapes show their reason on an empty tile)."""

from __future__ import annotations

HELP = "write a labelled contact sheet (PNG) of a prepared store's meshes"


def add_arguments(parser) -> None:
    parser.add_argument("data", help="prepared data folder (with manifest.json and meshes/)")
    parser.add_argument("-o", "--output", required=True, help="output image (.png, .jpg, .webp)")
    parser.add_argument("--size", type=int, default=160, help="thumbnail side in pixels")
    parser.add_argument("--cols", type=int, default=None, help="grid columns (default: about square)")
    parser.add_argument("--split", default=None, help="only this split (train, test, ood)")
    parser.add_argument("--limit", type=int, default=None, help="at most this many shapes")


def run(args) -> int:
    from pathlib import Path

    from PIL import Image
    from tqdm import tqdm

    from ..data.store import SPLITS, ShapeStore
    from ..errors import UserError
    from ..eval.gallery import contact_sheet, thumbnail
    from ..io import write_image

    if args.size < 16:
        raise UserError(f"--size must be >= 16, got {args.size}")
    if Path(args.output).suffix.lower() not in Image.registered_extensions():
        raise UserError(f"--output {args.output}: unknown image extension; use .png, .jpg or .webp")
    store = ShapeStore(args.data)
    entries = store.load_manifest().select(split=args.split, status=None)
    order = {split: k for k, split in enumerate(SPLITS)}
    entries = sorted(entries, key=lambda e: (order.get(e.split, len(order)), e.category, e.obj_idx))
    entries = entries[: args.limit]
    if not entries:
        raise UserError(f"{args.data}: no shapes" + (f" in split {args.split!r}" if args.split else ""))
    images, labels = [], []
    for entry in tqdm(entries, desc="preview", unit="shape"):
        mesh = store.load_mesh(entry.obj_idx) if store.mesh_path(entry.obj_idx).is_file() else None
        images.append(thumbnail(mesh, args.size))
        status = "" if entry.status == "ok" else f" · {entry.status}: {entry.reason}"
        labels.append(f"{entry.obj_idx} {entry.category} ({entry.split}){status}")
    write_image(args.output, contact_sheet(images, labels, cols=args.cols))
    print(f"{args.output}: {len(entries)} shapes")
    return 0
