"""Choose the offline default image encoder by measurement (stands in for DINOv2, paper §2.3).

Two protocols; the default is chosen by the first, the path users take:

* ``photo``: gallery = the training shapes' renders framed by ``load_view`` (what the DiT's photo pool
  starts from); queries = 16 photos per test shape from new random cameras (other FOVs, distances, look-at
  offsets and roll), half of them with a repainted object, on black, white or coloured backgrounds, half
  JPEG-compressed, read back through ``load_view`` (``img2sdf.data.photo``).
* ``renders`` (the first selection): synthetic catalog (seed 0), 4 training and 2 held-out test instances of
  each of the 16 training categories, normalised like `prepare` (unit bounding sphere about the bounding-box
  centre) and rendered like `prepare` (Fibonacci sphere, distance 2.5, 224², FOV 50°). Gallery: views 0, 4,
  8, ... of the 64 of every training shape; queries: views 2, 6, 10, ... of every test shape (unseen
  instances *and* unseen viewpoints). Score: top-1 category accuracy of cosine nearest-neighbour retrieval,
  query → gallery view, plus per-category mean. Also reports encoder throughput and the object's framing in
  the renders (median larger bounding-box side / image side), which `img2sdf.data.images.FRAME_FRACTION`
  copies. DINOv2 candidates are included when their weights are in the local Hugging Face cache. Last line:
  one JSON object.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
from tqdm import tqdm

from img2sdf.data.cameras import fibonacci_views
from img2sdf.data.photo import PhotoConfig, photo_views, random_cameras, render_photos
from img2sdf.data.render import render_views
from img2sdf.data.synthetic import TRAIN_CATEGORIES, build, catalog
from img2sdf.data.watertight import normalise
from img2sdf.encoders import DEFAULT_ENCODER, available, get_encoder
from img2sdf.errors import UserError

N_TRAIN_PER_CAT, N_TEST_PER_CAT, VIEWS, STRIDE = 4, 2, 64, 4


def render_set(specs, offset: int) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """RGB views [n * VIEWS / STRIDE, 224, 224, 3], their category labels, and per-view bbox fractions."""
    cams = fibonacci_views(VIEWS, 2.5)[offset::STRIDE]
    images, labels, fractions = [], [], []
    for spec in tqdm(specs, desc=f"render (views {offset}::{STRIDE})", unit="shape", file=sys.stderr):
        mesh, _ = normalise(build(spec))
        rgba = render_views(mesh, cams, 224)
        for alpha in rgba[..., 3] > 0:
            rows, cols = np.nonzero(alpha)
            fractions.append(max(np.ptp(rows) + 1, np.ptp(cols) + 1) / alpha.shape[0])
        images.append(rgba[..., :3])
        labels += [TRAIN_CATEGORIES.index(spec.category)] * len(cams)
    return np.concatenate(images), np.array(labels), fractions


def photo_set(specs, framed: bool, n: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """``framed``: renders 0::STRIDE through load_view (the gallery); else ``n`` photos per shape from new
    cameras through load_view (the queries). Returns views [m, 224, 224, 3] and labels."""
    import tempfile
    from pathlib import Path

    from PIL import Image

    from img2sdf.data.images import load_view

    cfg = PhotoConfig()
    images, labels = [], []
    with tempfile.TemporaryDirectory() as work:
        for k, spec in enumerate(tqdm(specs, desc="photos" if not framed else "framed renders", unit="shape",
                                      file=sys.stderr)):
            mesh, _ = normalise(build(spec))
            rng = np.random.default_rng([1, k])
            if framed:
                views = []
                for j, image in enumerate(render_views(mesh, fibonacci_views(VIEWS, 2.5)[::STRIDE], 224)):
                    Image.fromarray(image).save(Path(work) / f"{j}.png")
                    views.append(load_view(Path(work) / f"{j}.png"))
                views = np.stack(views)
            else:
                c2w, fovs = random_cameras(n, rng, cfg)
                views = photo_views(render_photos(mesh, c2w, fovs, cfg.resolution), rng, cfg, Path(work))
            images.append(views)
            labels += [TRAIN_CATEGORIES.index(spec.category)] * len(views)
    return np.concatenate(images), np.array(labels)


def retrieval_accuracy(gallery: np.ndarray, g_labels, queries: np.ndarray, q_labels) -> tuple[float, dict]:
    g = gallery / np.maximum(np.linalg.norm(gallery, axis=1, keepdims=True), 1e-12)
    q = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
    hit = g_labels[(q @ g.T).argmax(1)] == q_labels
    per_cat = {TRAIN_CATEGORIES[c]: round(float(hit[q_labels == c].mean()), 3) for c in np.unique(q_labels)}
    return float(hit.mean()), per_cat


def main() -> int:
    specs = catalog(16 * N_TRAIN_PER_CAT, 16 * N_TEST_PER_CAT, 0, seed=0)
    train = [s for s in specs if s.split == "train"]
    test = [s for s in specs if s.split == "test"]
    g_images, g_labels, fractions = render_set(train, offset=0)
    q_images, q_labels, _ = render_set(test, offset=2)
    pg_images, pg_labels = photo_set(train, framed=True)
    pq_images, pq_labels = photo_set(test, framed=False)
    results = {}
    for name in available():
        try:
            encoder = get_encoder(name)
        except UserError as e:  # DINOv2 without local weights
            print(f"skip {name}: {e}", file=sys.stderr)
            continue
        start = time.perf_counter()
        g = encoder.encode(g_images)
        seconds = time.perf_counter() - start
        acc, per_cat = retrieval_accuracy(g, g_labels, encoder.encode(q_images), q_labels)
        photo_acc, photo_cat = retrieval_accuracy(encoder.encode(pg_images), pg_labels,
                                                  encoder.encode(pq_images), pq_labels)
        results[name] = {"photo_accuracy": round(photo_acc, 4), "accuracy": round(acc, 4), "dim": encoder.dim,
                         "images_per_minute": round(60 * len(g_images) / seconds),
                         "photo_per_category": photo_cat, "per_category": per_cat}
        print(json.dumps({name: results[name]}), file=sys.stderr)
    offline = {k: v for k, v in results.items() if not k.startswith("dinov2")}
    best = max(offline, key=lambda k: offline[k]["photo_accuracy"])
    print(json.dumps({
        "protocol": {
            "photo": f"1-NN cosine, {len(pq_images)} photos (new cameras, backgrounds, repaint, JPEG, "
                     f"load_view) of {len(test)} unseen test shapes vs {len(pg_images)} framed renders of "
                     f"{len(train)} training shapes, 16 categories",
            "renders": f"1-NN cosine, {len(q_images)} query views of {len(test)} unseen test shapes vs "
                       f"{len(g_images)} gallery views of {len(train)} training shapes, 16 categories",
        },
        "chance": round(1 / 16, 4),
        "photo_accuracy": {k: v["photo_accuracy"] for k, v in results.items()},
        "accuracy": {k: v["accuracy"] for k, v in results.items()},
        "dim": {k: v["dim"] for k, v in results.items()},
        "images_per_minute": {k: v["images_per_minute"] for k, v in results.items()},
        "best_offline_for_photos": best,
        "default_encoder": DEFAULT_ENCODER,
        "default_is_best": DEFAULT_ENCODER == best,
        "frame_fraction_median": round(float(np.median(fractions)), 3),
        "frame_fraction_p10_p90": [round(float(np.percentile(fractions, p)), 3) for p in (10, 90)],
        "load": [round(x, 2) for x in __import__("os").getloadavg()],
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
