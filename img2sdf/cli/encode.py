"""Encode every rendered view of a prepared store into the feature cache (paper §2.3).

Writes DATA/features/NAME.npy (float16 [N_shapes, V, D]), NAME.poses.npy and NAME.json. Resumable: rerun
the same command after an interruption. DINOv2 weights come from --weights DIR or the local Hugging Face
cache; nothing is downloaded unless --fetch asks for it (as `img2sdf fetch` would).
"""

from __future__ import annotations

from .options import add_device

HELP = "encode rendered views into the per-view feature cache (DINOv2 or an offline encoder)"


def add_arguments(parser) -> None:
    from ..encoders import DEFAULT_ENCODER, available

    parser.add_argument("data", help="prepared data folder (with renders/)")
    parser.add_argument("--encoder", default=DEFAULT_ENCODER, choices=available(),
                        help="image encoder; the default needs no downloaded weights")
    parser.add_argument("--weights", default=None,
                        help="folder with DINOv2 weights (config.json + model.safetensors), e.g. from "
                             "`img2sdf fetch dinov2-base --to DIR`; default: the HF cache")
    parser.add_argument("--fetch", action="store_true",
                        help="first download the DINOv2 weights, hash-checked (into --weights DIR or the HF "
                             "cache; does nothing if they are there and verified)")
    parser.add_argument("--views", default="renders", choices=("renders", "photo", "both"),
                        help="renders: the 64 renders as rendered (NAME); photo: the photo pool the DiT "
                             "trains on for photo input (NAME@photo: renders framed by load_view, jittered "
                             "photo-style copies, extra random-camera renders); both: one after the other")
    parser.add_argument("--jitter-copies", type=int, default=2,
                        help="photo pool: photo-style jittered copies of each render")
    parser.add_argument("--random-views", type=int, default=64,
                        help="photo pool: extra renders per shape from random new cameras")
    parser.add_argument("--batch-size", type=int, default=64, help="images per encoder call")
    add_device(parser, "a neural encoder")


def run(args) -> int:
    import time

    from ..data.store import ShapeStore
    from ..devices import choose_device
    from ..encoders import get_encoder
    from ..encoders.cache import encode_store
    from ..errors import UserError
    from ..io import read_json

    if args.batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {args.batch_size}")
    store = ShapeStore(args.data)
    store.load_manifest()  # fail early on a folder that is not a prepared store
    if args.fetch:
        if not args.encoder.startswith("dinov2"):
            raise UserError(f"--fetch: --encoder {args.encoder} needs no downloaded weights; drop --fetch")
        from ..encoders.weights import fetch_weights

        fetch_weights(args.encoder, to=args.weights)
    if args.jitter_copies < 0 or args.random_views < 0:
        raise UserError("--jitter-copies and --random-views must be >= 0")
    from ..data.photo import PhotoPoolConfig

    pool = PhotoPoolConfig(jitter_copies=args.jitter_copies, random_views=args.random_views)
    encoder = get_encoder(args.encoder, weights=args.weights, device=str(choose_device(0, args.device)))
    for views in ("renders", "photo") if args.views == "both" else (args.views,):
        start = time.perf_counter()
        name = encode_store(store, encoder, batch_size=args.batch_size, views=views, pool=pool)
        meta = read_json(store.features_meta_path(name))
        print(f"{store.features_path(name)}: {meta['n_filled']} of {meta['n_shapes']} shapes x "
              f"{meta['views']} views x {meta['dim']} dims ({len(meta['failed'])} failed) "
              f"in {time.perf_counter() - start:.1f} s")
    return 0
