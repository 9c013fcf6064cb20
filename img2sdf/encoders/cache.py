"""The per-view feature cache (paper §2.3: one DINOv2 CLS token per (shape, view), 192 MB for 976 shapes).

``features/NAME.npy`` float16 [N_shapes, V, D] (row = obj_idx), ``features/NAME.poses.npy`` float32
[N_shapes, V, 4, 4] camera-to-world, ``features/NAME.json`` meta: encoder, dim, views, ``filled`` (one
bool per row) and ``failed`` reasons. Rows of failed or unrendered shapes stay zero and unfilled.

Resume: work goes into ``NAME.partial.npy`` / ``NAME.poses.partial.npy`` (memory-mapped) and
``NAME.partial.json`` (the row mask), flushed and saved atomically every :data:`CHECKPOINT_EVERY` shapes.
A killed run restarts from the last mask; finished files are moved into place at the end, meta last.

``views="photo"`` encodes the *photo pool* of :class:`~img2sdf.data.photo.PhotoPoolConfig` instead (renders
framed by ``load_view``, photo-style jittered copies, extra random-camera renders) into the feature set
``NAME@photo``: what the DiT trains on so that a user's photo looks like its training data. Its meta records
the pool config; a different config starts afresh rather than mixing two pools.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..data.cameras import load_cameras
from ..data.store import ShapeStore
from ..errors import UserError
from ..io import read_json, write_json
from .base import ImageEncoder

CHECKPOINT_EVERY = 8
VIEW_SOURCES = ("renders", "photo")


def feature_set(encoder: str, views: str = "renders") -> str:
    """The cache name of an encoder's features of a view source: ``hog+shading`` or ``hog+shading@photo``."""
    if views not in VIEW_SOURCES:
        raise UserError(f"views {views!r}: choose one of {', '.join(VIEW_SOURCES)}")
    return encoder if views == "renders" else f"{encoder}@{views}"


def resolve_encoder(store: ShapeStore, name: str | None) -> str:
    """The encoder whose features to use: the one named, else the default, else the only one cached."""
    from . import DEFAULT_ENCODER

    if name:
        return name
    if store.features_path(DEFAULT_ENCODER).is_file():
        return DEFAULT_ENCODER
    cached = sorted(p.stem for p in (store.root / "features").glob("*.json") if "@" not in p.stem)
    if len(cached) == 1:
        return cached[0]
    raise UserError(f"{store.root}/features: {'no' if not cached else 'several'} encoded feature sets "
                    f"({', '.join(cached) or 'none'}); run `img2sdf encode {store.root}` or pass --encoder")


def resolve_views(store: ShapeStore, encoder: str, views: str = "auto", command: str = "train-dit") -> str:
    """``auto`` → ``photo`` when the photo pool of ``encoder`` is encoded, else ``renders`` (with a note:
    photos through load_view do not resemble renders as rendered)."""
    if views != "auto":
        return views
    if store.features_path(feature_set(encoder, "photo")).is_file():
        return "photo"
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"{command}: note: no photo pool for {encoder}; training on the renders as rendered, which "
              f"photos through load_view do not resemble (run `img2sdf encode {store.root} --views photo`)")
    return "renders"


def _partial(path: Path) -> Path:
    return path.with_name(path.name.replace(".", ".partial.", 1))


POOL_GROUPS = ("framed", "jittered", "random")


def pool_indices(meta: dict, groups: tuple[str, ...] = POOL_GROUPS) -> np.ndarray:
    """Indices into a photo pool's view axis of the chosen groups (an ablation trains on a subset):
    ``framed`` renders, ``jittered`` photo-style copies of them, ``random``-camera photos."""
    if meta.get("view_source") != "photo":
        return np.arange(meta["views"])
    unknown = set(groups) - set(POOL_GROUPS)
    if unknown or not groups:
        raise UserError(f"pool groups {','.join(groups)!r}: choose from {', '.join(POOL_GROUPS)}")
    jitter, random_views = meta["pool"]["jitter_copies"], meta["pool"]["random_views"]
    n_renders = (meta["views"] - random_views) // (1 + jitter)
    spans = {"framed": (0, n_renders), "jittered": (n_renders, n_renders * (1 + jitter)),
             "random": (n_renders * (1 + jitter), meta["views"])}
    idx = np.concatenate([np.arange(*spans[g]) for g in POOL_GROUPS if g in groups])
    if not len(idx):
        raise UserError(f"pool groups {','.join(groups)!r} select no views of this pool "
                        f"({jitter} jittered copies, {random_views} random views)")
    return idx


def load_render_views(store: ShapeStore, obj_idx: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 RGB [V, H, W, 3] renders (object on black) and float32 camera-to-world [V, 4, 4] of a shape."""
    from PIL import Image

    c2w, record = load_cameras(store.render_dir(obj_idx) / "cameras.json")
    images = []
    for view in record["views"]:
        with Image.open(store.render_dir(obj_idx) / view["file"]) as im:
            rgba = np.asarray(im.convert("RGBA"))
        # Premultiply so any renderer's background colour under alpha 0 becomes black.
        images.append((rgba[..., :3].astype(np.uint16) * rgba[..., 3:] // 255).astype(np.uint8))
    return np.stack(images), c2w


def encode_store(store: ShapeStore, encoder: ImageEncoder, batch_size: int = 64, views: str = "renders",
                 pool=None) -> str:
    """Encode every rendered view (or photo-pool view) of every ok shape into the cache (resumable, with a
    progress bar); returns the feature-set name."""
    import tempfile

    from tqdm import tqdm

    from ..config import to_dict
    from ..data.photo import PhotoPoolConfig, photo_pool

    manifest = store.load_manifest()
    n = len(manifest.shapes)
    todo = [s.obj_idx for s in manifest.shapes
            if s.status == "ok" and (store.render_dir(s.obj_idx) / "cameras.json").is_file()]
    if not todo:
        raise UserError(f"{store.root}: no rendered shapes; run `img2sdf prepare DATA --stages render` first")
    if views == "photo":  # the pool is training data: held-out shapes are evaluated from new photos instead
        todo = [i for i in todo if manifest.shapes[i].split == "train"]
    n_renders = len(load_cameras(store.render_dir(todo[0]) / "cameras.json")[0])
    name = feature_set(encoder.name, views)
    encoder.batch_size = batch_size
    paths = [store.features_path(name), store.poses_path(name)]
    meta_path = store.features_meta_path(name)
    want = {"encoder": encoder.name, "dim": encoder.dim, "views": n_renders, "n_shapes": n}
    if views == "photo":
        pool = pool or PhotoPoolConfig()
        want |= {"views": pool.size(n_renders), "view_source": "photo",
                 "pool": json.loads(json.dumps(to_dict(pool)))}  # as read back from the meta
    if _matching_meta(meta_path, want) and not _partial(meta_path).exists():
        if all(read_json(meta_path)["filled"][i] for i in todo):
            return name  # the cache is complete and up to date
    feats, poses, meta = _open_work(paths, meta_path, want)
    filled = np.array(meta["filled"], dtype=bool)
    pending = [i for i in todo if not filled[i]]
    workdir = tempfile.TemporaryDirectory(prefix="img2sdf-photo-")
    for k, obj_idx in enumerate(tqdm(pending, desc=f"encode {name}", unit="shape")):
        try:
            if views == "photo":
                c2w, record = load_cameras(store.render_dir(obj_idx) / "cameras.json")
                files = [store.render_dir(obj_idx) / v["file"] for v in record["views"]]
                images, c2w = photo_pool(store.load_mesh(obj_idx), files, c2w, obj_idx, pool,
                                         Path(workdir.name))
            else:
                images, c2w = load_render_views(store, obj_idx)
            if len(images) != want["views"]:
                raise ValueError(f"{len(images)} views, expected {want['views']}")
            feats[obj_idx] = encoder.encode(images).astype(np.float16)
            poses[obj_idx] = c2w
            filled[obj_idx] = True
            meta["failed"].pop(str(obj_idx), None)
        except (OSError, ValueError, KeyError, UserError) as e:
            meta["failed"][str(obj_idx)] = f"{type(e).__name__}: {e}"
        if (k + 1) % CHECKPOINT_EVERY == 0:
            _checkpoint(feats, poses, meta, filled, _partial(meta_path))
    workdir.cleanup()
    _checkpoint(feats, poses, meta, filled, _partial(meta_path))
    del feats, poses  # close the memory maps before moving the files
    for path in paths:
        os.replace(_partial(path), path)
    write_json(meta_path, meta)
    _partial(meta_path).unlink()
    return name


def _matching_meta(path: Path, want: dict) -> bool:
    """Whether ``path`` is the meta of a cache for the same encoder, dimension, views and shape count."""
    return path.is_file() and {k: read_json(path).get(k) for k in want} == want


def _open_work(paths: list[Path], meta_path: Path, want: dict):
    """Memory-mapped working arrays and meta: resumed from a partial run, else seeded from a finished
    cache of the same configuration (new shapes are added), else new and zero."""
    n, views, dim = want["n_shapes"], want["views"], want["dim"]
    meta_path.parent.mkdir(parents=True, exist_ok=True)
    for meta_file, arrays in ((_partial(meta_path), [_partial(p) for p in paths]), (meta_path, paths)):
        if not (_matching_meta(meta_file, want) and all(p.is_file() for p in arrays)):
            continue  # absent, or another configuration: start afresh
        meta = read_json(meta_file)
        if meta_file == meta_path:  # a finished cache: copy it to work files first
            for src in arrays:
                np.save(_partial(src), np.load(src))
        return *(np.lib.format.open_memmap(_partial(p), mode="r+") for p in paths), meta
    feats = np.lib.format.open_memmap(_partial(paths[0]), mode="w+", dtype=np.float16,
                                      shape=(n, views, dim))
    poses = np.lib.format.open_memmap(_partial(paths[1]), mode="w+", dtype=np.float32, shape=(n, views, 4, 4))
    return feats, poses, {**want, "filled": [False] * n, "failed": {}}


def _checkpoint(feats, poses, meta: dict, filled: np.ndarray, path: Path) -> None:
    feats.flush()
    poses.flush()
    meta["filled"] = filled.tolist()
    meta["n_filled"] = int(filled.sum())
    write_json(path, meta)
