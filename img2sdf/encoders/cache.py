"""The per-view feature cache (paper §2.3: one DINOv2 CLS token per (shape, view), 192 MB for 976 shapes).

``features/NAME.npy`` float16 [N_shapes, V, D] (row = obj_idx), ``features/NAME.poses.npy`` float32
[N_shapes, V, 4, 4] camera-to-world, ``features/NAME.json`` meta: encoder, dim, views, ``filled`` (one
bool per row) and ``failed`` reasons. Rows of failed or unrendered shapes stay zero and unfilled.

Resume: work goes into ``NAME.partial.npy`` / ``NAME.poses.partial.npy`` (memory-mapped) and
``NAME.partial.json`` (the row mask), flushed and saved atomically every :data:`CHECKPOINT_EVERY` shapes.
A killed run restarts from the last mask; finished files are moved into place at the end, meta last.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..data.cameras import load_cameras
from ..data.store import ShapeStore
from ..errors import UserError
from ..io import read_json, write_json
from .base import ImageEncoder

CHECKPOINT_EVERY = 8


def _partial(path: Path) -> Path:
    return path.with_name(path.name.replace(".", ".partial.", 1))


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


def encode_store(store: ShapeStore, encoder: ImageEncoder, batch_size: int = 64) -> None:
    """Encode every rendered view of every ok shape into the cache (resumable, with a progress bar)."""
    from tqdm import tqdm

    manifest = store.load_manifest()
    n = len(manifest.shapes)
    todo = [s.obj_idx for s in manifest.shapes
            if s.status == "ok" and (store.render_dir(s.obj_idx) / "cameras.json").is_file()]
    if not todo:
        raise UserError(f"{store.root}: no rendered shapes; run `img2sdf prepare DATA --stages render` first")
    views = len(load_cameras(store.render_dir(todo[0]) / "cameras.json")[0])
    encoder.batch_size = batch_size
    paths = [store.features_path(encoder.name), store.poses_path(encoder.name)]
    meta_path = store.features_meta_path(encoder.name)
    want = {"encoder": encoder.name, "dim": encoder.dim, "views": views, "n_shapes": n}
    if _matching_meta(meta_path, want) and not _partial(meta_path).exists():
        if all(read_json(meta_path)["filled"][i] for i in todo):
            return  # the cache is complete and up to date
    feats, poses, meta = _open_work(paths, meta_path, want)
    filled = np.array(meta["filled"], dtype=bool)
    pending = [i for i in todo if not filled[i]]
    for k, obj_idx in enumerate(tqdm(pending, desc=f"encode {encoder.name}", unit="shape")):
        try:
            images, c2w = load_render_views(store, obj_idx)
            if len(images) != views:
                raise ValueError(f"{len(images)} views, expected {views}")
            feats[obj_idx] = encoder.encode(images).astype(np.float16)
            poses[obj_idx] = c2w
            filled[obj_idx] = True
            meta["failed"].pop(str(obj_idx), None)
        except (OSError, ValueError, KeyError, UserError) as e:
            meta["failed"][str(obj_idx)] = f"{type(e).__name__}: {e}"
        if (k + 1) % CHECKPOINT_EVERY == 0:
            _checkpoint(feats, poses, meta, filled, _partial(meta_path))
    _checkpoint(feats, poses, meta, filled, _partial(meta_path))
    del feats, poses  # close the memory maps before moving the files
    for path in paths:
        os.replace(_partial(path), path)
    write_json(meta_path, meta)
    _partial(meta_path).unlink()


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
