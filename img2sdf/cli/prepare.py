"""Build a prepared dataset: shape source -> watertight meshes -> SDF samples -> renders (paper §2).

Writes OUT/manifest.json, OUT/meshes/obj_NNNN.ply, OUT/shapes/obj_NNNN.npz, OUT/renders/obj_NNNN/ and
per-shape OUT/status/obj_NNNN.json. Re-running the same command resumes; --shard i/n splits a job (e.g. a
SLURM array: --shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT). Exit status 1 if no shape of this
shard succeeded, or with --strict if any failed.
"""

from __future__ import annotations

import os

HELP = "build a dataset: watertight meshes, SDF samples and renders from a shape source"


def add_arguments(p) -> None:
    p.add_argument("out", help="output folder (created; re-run to resume)")
    p.add_argument("--source", choices=("synthetic", "folder", "objaverse-lvis"), default="synthetic",
                   help="where the shapes come from")
    g = p.add_argument_group("synthetic source")
    g.add_argument("--n", type=int, default=32, help="training shapes (976: the paper's scale)")
    g.add_argument("--n-test", type=int, default=None, help="held-out instances of training categories "
                   "(None: max(2, N/8))")
    g.add_argument("--n-ood", type=int, default=None, help="held-out-category shapes (None: max(3, N/16))")
    g.add_argument("--seed", type=int, default=0, help="seed of the shape parameters and of the SDF samples")
    g = p.add_argument_group("folder and objaverse-lvis sources")
    g.add_argument("--input", help="folder of OBJ/PLY/STL/OFF/GLB/GLTF files; category = first sub-folder")
    g.add_argument("--test-fraction", type=float, default=0.1, help="share hashed into the test split")
    g.add_argument("--splits", help="JSON {key or category: split} overriding the hashed split "
                   "(None: INPUT/splits.json if present)")
    g.add_argument("--categories", help="comma-separated LVIS categories (None: all)")
    g.add_argument("--per-category", type=int, default=None, help="objects per category at most (None: all)")
    g.add_argument("--download-dir", help="Objaverse cache root (None: ~/.objaverse)")
    g = p.add_argument_group("stages")
    g.add_argument("--stages", default="watertight,sdf,render", help="comma-separated stages to run")
    g.add_argument("--points", type=int, default=200_000, help="SDF samples per shape (half near)")
    g.add_argument("--grid", type=int, default=128, help="re-meshing grid resolution for broken meshes")
    g.add_argument("--max-faces", type=int, default=2_000_000, help="refuse input meshes with more faces")
    g.add_argument("--views", type=int, default=64, help="render views per shape (Fibonacci sphere)")
    g.add_argument("--resolution", type=int, default=224, help="render size in pixels")
    g.add_argument("--distance", type=float, default=2.5, help="camera distance from the origin")
    g = p.add_argument_group("execution")
    g.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1), help="worker processes")
    g.add_argument("--shard", default="0/1", help="run shard i of n (shapes with obj_idx %% n == i)")
    g.add_argument("--retry-failed", action="store_true", help="retry shapes that failed in an earlier run")
    g.add_argument("--strict", action="store_true", help="exit non-zero if any shape failed")


def run(args) -> int:
    from ..data.prepare import PrepareConfig, parse_shard, parse_stages, prepare
    from ..data.sources import SourceConfig, make_source
    from ..data.watertight import WatertightConfig
    from ..errors import UserError

    if args.points < 1 or args.grid < 16 or args.workers < 1:
        raise UserError("--points and --workers must be >= 1 and --grid >= 16")
    cfg = PrepareConfig(
        stages=parse_stages(args.stages),
        points=args.points,
        seed=args.seed,
        watertight=WatertightConfig(resolution=args.grid, max_faces=args.max_faces),
        render={"views": args.views, "resolution": args.resolution, "distance": args.distance},
        workers=args.workers,
        shard=parse_shard(args.shard),
        retry_failed=args.retry_failed,
    )
    source = SourceConfig(args.source, args.n, args.n_test, args.n_ood, args.seed, args.input,
                          args.test_fraction, args.splits,
                          tuple(c for c in (args.categories or "").split(",") if c), args.per_category,
                          args.download_dir)
    manifest, mine = prepare(args.out, make_source(source), cfg)
    n_ok = sum(s.status == "ok" for s in mine)
    n_failed = sum(s.status == "failed" for s in mine)
    n_pending = len(mine) - n_ok - n_failed
    total = f"{manifest.to_json()['n_ok']} ok of {len(manifest.shapes)} in {args.out}/manifest.json"
    print(f"prepare: {n_ok} ok, {n_failed} failed, {n_pending} pending of {len(mine)} shapes in shard "
          f"{args.shard} ({total})")
    return 1 if n_ok == 0 or (args.strict and n_failed) else 0
