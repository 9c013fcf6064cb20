"""Choose the offline default image encoder by measurement (issue 3; stands in for DINOv2, paper §2.3).

Protocol: synthetic catalog (seed 0), 4 training and 2 held-out test instances of each of the 16 training
categories, normalised like `prepare` (unit bounding sphere about the bounding-box centre) and rendered
like `prepare` (Fibonacci sphere, distance 2.5, 224², FOV 50°). Gallery: views 0, 4, 8, ... of the 64 of
every training shape; queries: views 2, 6, 10, ... of every test shape (unseen instances *and* unseen
viewpoints). Score: top-1 category accuracy of cosine nearest-neighbour retrieval, query → gallery view,
plus per-category mean. Also reports encoder throughput and the object's framing in the renders (median
larger bounding-box side / image side), which `img2sdf.data.images.FRAME_FRACTION` copies.
DINOv2 candidates are included when their weights are in the local Hugging Face cache.
Last line: one JSON object.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
from tqdm import tqdm

from img2sdf.data.cameras import fibonacci_views
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
        results[name] = {"accuracy": round(acc, 4), "dim": encoder.dim,
                         "images_per_minute": round(60 * len(g_images) / seconds), "per_category": per_cat}
        print(json.dumps({name: results[name]}), file=sys.stderr)
    offline = {k: v for k, v in results.items() if not k.startswith("dinov2")}
    best = max(offline, key=lambda k: offline[k]["accuracy"])
    print(json.dumps({
        "protocol": f"1-NN cosine, {len(q_images)} query views of {len(test)} unseen test shapes vs "
                    f"{len(g_images)} gallery views of {len(train)} training shapes, 16 categories",
        "chance": round(1 / 16, 4),
        "accuracy": {k: v["accuracy"] for k, v in results.items()},
        "dim": {k: v["dim"] for k, v in results.items()},
        "images_per_minute": {k: v["images_per_minute"] for k, v in results.items()},
        "best_offline": best,
        "default_encoder": DEFAULT_ENCODER,
        "default_is_best": DEFAULT_ENCODER == best,
        "frame_fraction_median": round(float(np.median(fractions)), 3),
        "frame_fraction_p10_p90": [round(float(np.percentile(fractions, p)), 3) for p in (10, 90)],
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
