"""Held-out evaluation of image → shape generation, the study §7.4 asks for and the paper did not run.

For every shape of the ``test`` split (held-out shapes of seen categories) and the ``ood`` split (held-out
categories), from 1 and from 4 of its rendered views (a fixed, seeded choice; the 1-view input is the first
of the 4), three methods are scored against the ground-truth mesh with the project's surface metrics:

- ``generated``: the latent DiT (DDIM) → shared decoder → mesh;
- ``retrieval``: the training shape whose image features are nearest (mean over the query views of the best
  cosine to any of its cached views, on features standardised like the DiT's input), decoded by the same
  decoder — what a pure nearest-neighbour model (§6.2's 20-shape pilot) would give;
- ``reconstruct``: the auto-decoder's own latent fit to the true shape's SDF samples — the ceiling of the
  representation (independent of the views, so the same under ``1`` and ``4``).

``metrics.json`` nests split → views → method → metric (means over shapes), plus the metric protocol and
the cosine-ranking diagnostic (§1.2 ii): recall on training shapes and collapse across held-out inputs.
A method whose decoded field has no surface scores F-score 0 and IoU 0 and is left out of the Chamfer mean;
``n_failed`` counts those cases.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..data.store import shape_name
from ..errors import UserError
from ..io import write_json
from .diagnostics import collapse_stats, recall_stats, top_k

METHODS = ("generated", "retrieval", "reconstruct")
REPORTED = ("chamfer_l1", "fscore_1pct", "iou")


@dataclass
class EvalGenConfig:
    splits: tuple = ("test", "ood")
    views: tuple = (1, 4)
    max_shapes: int = 0  # per split; 0 = all
    resolution: int = 64  # marching cubes for every decoded mesh
    n_points: int = 20_000  # surface / volume samples per metric
    steps: int = 0  # DDIM steps; 0 = the run's own (50)
    known_poses: bool = True  # condition on the renders' true poses (False: the unknown-pose token)
    reconstruct_steps: int = 600  # latent-fitting iterations of the reconstruct reference
    reconstruct_points: int = 2048  # SDF samples per latent-fitting iteration
    recall_shapes: int = 32  # training shapes used for the recall diagnostic
    pictures: int = 6  # shapes per split whose meshes are kept for the report
    seed: int = 0


def choose_views(obj_idx: int, n_views_total: int, seed: int, k: int = 4) -> np.ndarray:
    """The seeded view choice of one shape: k distinct view indices; the 1-view input is the first."""
    rng = np.random.default_rng([seed, obj_idx])
    return rng.permutation(n_views_total)[:k]


class _Meshes:
    """Decode latents to meshes and score them against a ground truth, caching what repeats."""

    def __init__(self, model, store, cfg: EvalGenConfig):
        self.model, self.store, self.cfg = model, store, cfg
        self._gt: dict[int, object] = {}
        self._train: dict[int, object] = {}

    def gt(self, obj_idx: int):
        if obj_idx not in self._gt:
            self._gt[obj_idx] = self.store.load_mesh(obj_idx)
        return self._gt[obj_idx]

    def decode(self, latent: np.ndarray):
        try:
            return self.model.mesh(latent, self.cfg.resolution)
        except UserError:  # the decoded field has no surface
            return None

    def train_mesh(self, row: int):
        if row not in self._train:
            self._train[row] = self.decode(self.model.train_latents[row])
        return self._train[row]

    def score(self, mesh, obj_idx: int) -> dict:
        from .metrics import surface_metrics

        if mesh is None:
            return {"chamfer_l1": float("nan"), "fscore_1pct": 0.0, "iou": 0.0, "failed": True}
        m = surface_metrics(mesh, self.gt(obj_idx), n_points=self.cfg.n_points, seed=self.cfg.seed)
        return {k: float(m[k]) for k in REPORTED} | {"failed": False}


def _aggregate(rows: list[dict]) -> dict:
    chamfer = [r["chamfer_l1"] for r in rows if not r["failed"]]
    return {
        "chamfer_l1": float(np.mean(chamfer)) if chamfer else float("nan"),
        "fscore_1pct": float(np.mean([r["fscore_1pct"] for r in rows])) if rows else float("nan"),
        "iou": float(np.mean([r["iou"] for r in rows])) if rows else float("nan"),
        "n": len(rows),
        "n_failed": sum(r["failed"] for r in rows),
    }


def evaluate_generation(model, store, cfg: EvalGenConfig, encoder_name: str, progress: bool = True) -> dict:
    """Run the evaluation with a loaded :class:`~img2sdf.generate.pipeline.ImageToShape`; returns
    ``{"metrics": ..., "shapes": per-shape rows, "pictures": {(split, obj_idx): {label: mesh}}}``."""
    from tqdm import tqdm

    from ..generate.reconstruct import reconstruct_latent
    from .metrics import METRIC_PROTOCOL

    features, poses, _ = store.load_features(encoder_name)
    manifest = store.load_manifest()
    net = model.dit.model
    mean, std = net.feature_mean.numpy(), net.feature_std.numpy()
    train_rows = model.train_obj_idx
    train_feats = _unit((np.asarray(features[train_rows], dtype=np.float32) - mean) / std)  # [N, V, D]
    n_total_views = features.shape[1]
    meshes = _Meshes(model, store, cfg)
    t0 = time.perf_counter()

    metrics: dict = {}
    shape_rows: list[dict] = []
    pictures: dict[tuple[str, int], dict] = {}
    collapse: dict = {}
    recon_cache: dict[int, dict] = {}
    for split in cfg.splits:
        shapes = [s for s in manifest.select(split=split) if np.any(features[s.obj_idx])]
        if cfg.max_shapes:
            shapes = shapes[: cfg.max_shapes]
        if not shapes:
            raise UserError(f"{store.root}: no encoded shapes in split {split!r}; prepare with "
                            f"--n-{split} > 0 and run `img2sdf encode`")
        metrics[split] = {}
        collapse[split] = {}
        ids = [s.obj_idx for s in shapes]
        chosen = {i: choose_views(i, n_total_views, cfg.seed) for i in ids}
        for n_views in cfg.views:
            view_idx = np.stack([chosen[i][:n_views] for i in ids])  # [B, k]
            q_feats = np.asarray(features[np.array(ids)[:, None], view_idx], dtype=np.float32)
            q_poses = poses[np.array(ids)[:, None], view_idx] if cfg.known_poses else None
            latents = model.sample_latents(q_feats, q_poses, seed=cfg.seed, steps=cfg.steps or None)
            top1 = top_k(latents, model.train_latents, 1)[0][:, 0]
            collapse[split][str(n_views)] = collapse_stats(np.asarray(train_rows)[top1], len(train_rows))
            retrieved = _retrieve(_unit((q_feats - mean) / std), train_feats)
            rows = {m: [] for m in METHODS}
            bar = tqdm(shapes, desc=f"eval-gen {split} {n_views} view(s)", disable=not progress)
            for b, shape in enumerate(bar):
                i = shape.obj_idx
                if i not in recon_cache:
                    points, sdf = store.load_sdf(i)
                    z = reconstruct_latent(model.decoder, torch.from_numpy(points), torch.from_numpy(sdf),
                                           steps=cfg.reconstruct_steps, n_points=cfg.reconstruct_points,
                                           seed=cfg.seed)
                    mesh = meshes.decode(z.detach().numpy())
                    recon_cache[i] = {"mesh": mesh, "scores": meshes.score(mesh, i)}
                generated = meshes.decode(latents[b])
                scored = {
                    "generated": meshes.score(generated, i),
                    "retrieval": meshes.score(meshes.train_mesh(int(retrieved[b])), i),
                    "reconstruct": recon_cache[i]["scores"],
                }
                if b < cfg.pictures:
                    kept = pictures.setdefault((split, i), {"input_view": int(view_idx[b][0]),
                                                            "ground truth": meshes.gt(i)})
                    kept[f"generated, {n_views} view(s)"] = generated
                    kept["retrieval"] = meshes.train_mesh(int(retrieved[b]))
                    kept["reconstruct"] = recon_cache[i]["mesh"]
                for m in METHODS:
                    rows[m].append(scored[m])
                shape_rows.append({
                    "split": split, "views": n_views, "obj_idx": i, "category": shape.category,
                    "input_views": view_idx[b].tolist(),
                    "retrieved_obj_idx": train_rows[int(retrieved[b])],
                    "top1_obj_idx": train_rows[int(top1[b])],
                    **{f"{m}.{k}": scored[m][k] for m in METHODS for k in (*REPORTED, "failed")},
                })
            metrics[split][str(n_views)] = {m: _aggregate(rows[m]) for m in METHODS}

    recall = _recall(model, features, poses, cfg)
    return {
        "metrics": {
            **metrics,
            "protocol": {
                **METRIC_PROTOCOL,
                "surface_points_per_mesh": cfg.n_points,  # what surface_metrics was given here
                "iou_points": cfg.n_points,
                "n_points": cfg.n_points,
                "mesh_resolution": cfg.resolution,
                "aggregation": "mean over shapes; a method with no surface scores F=0, IoU=0 and is left out "
                               "of the Chamfer mean (n_failed counts it)",
                "view_choice": f"seeded per shape (seed {cfg.seed}); the 1-view input is the first of the 4",
                "poses": "true render poses" if cfg.known_poses else "unknown-pose token",
                "retrieval": "training shape maximising the mean over query views of the best cosine to its "
                             "views (features standardised with the DiT's training statistics)",
                "ddim_steps": cfg.steps or model.dit.config.sample_steps,
                "reconstruct": {"steps": cfg.reconstruct_steps, "points_per_step": cfg.reconstruct_points},
                "encoder": encoder_name,
                "n_train_shapes": len(train_rows),
            },
            "diagnostics": {"recall": recall, "collapse": collapse},
            "seconds": round(time.perf_counter() - t0, 1),
        },
        "shapes": shape_rows,
        "pictures": pictures,
    }


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _retrieve(query: np.ndarray, train: np.ndarray) -> np.ndarray:
    """query [B, k, D], train [N, V, D] (unit rows) → training row per query."""
    cos = np.einsum("bkd,nvd->bknv", query, train)  # [B, k, N, V]
    return cos.max(axis=3).mean(axis=1).argmax(axis=1)


def _recall(model, features, poses, cfg: EvalGenConfig) -> dict:
    """§6.2's recall check: 1 seeded view of up to ``recall_shapes`` training shapes → top-1 == own latent?"""
    rows = np.arange(min(cfg.recall_shapes, len(model.train_obj_idx)))
    ids = np.array(model.train_obj_idx)[rows]
    view = np.array([choose_views(int(i), features.shape[1], cfg.seed)[0] for i in ids])
    feats = np.asarray(features[ids, view], dtype=np.float32)[:, None]
    pose = poses[ids, view][:, None] if cfg.known_poses else None
    latents = model.sample_latents(feats, pose, seed=cfg.seed, steps=cfg.steps or None)
    return recall_stats(latents, model.train_latents, rows) | {"views": 1}


def write_metrics(out_dir: str | Path, result: dict) -> Path:
    path = Path(out_dir) / "metrics.json"
    write_json(path, result["metrics"])
    write_json(Path(out_dir) / "shapes.json", result["shapes"])
    return path


def write_report_html(out_dir: str | Path, model, store, result: dict, thumb: int = 160) -> Path:
    """``report.html`` (+ ``report.md``): the metrics table, the diagnostic, and per held-out shape a row of
    pictures — input view, generated (1 and 4 views), retrieval, reconstruct, ground truth."""
    from ..encoders.cache import load_render_views
    from .gallery import contact_sheet, thumbnail
    from .report import Figure, Section, Table, write_report

    m = result["metrics"]
    splits = [s for s in m if s not in ("protocol", "diagnostics", "seconds")]
    summary = [{"split": s, "views": v, "method": method, **m[s][v][method]}
               for s in splits for v in m[s] for method in m[s][v]]
    sections = [Section("Held-out metrics (mean over shapes)",
                        "Chamfer-L1 lower is better; F-score@1 % and IoU higher is better. "
                        "reconstruct = the auto-decoder's own fit of the true shape (the ceiling).",
                        Table(["split", "views", "method", *REPORTED, "n", "n_failed"], summary))]
    diag = m["diagnostics"]
    rec = diag["recall"]
    lines = [f"recall on {rec['n']} training shapes from 1 view: top-1 = true latent for "
             f"{rec['recall_top1']:.0%}, mean cos(pred, true) {rec['cos_true_mean']:.3f}, "
             f"margin to the runner-up {rec['margin_mean']:.3f}"]
    for s, per_views in diag["collapse"].items():
        for v, c in per_views.items():
            lines.append(f"{s}, {v} view(s): {c['distinct_top1']} distinct top-1 training shapes for "
                         f"{c['n_predictions']} inputs; the 3 most frequent take {c['top3_share']:.0%}")
    sections.append(Section("Cosine-ranking diagnostic (paper §1.2 ii)", "\n".join(lines)))
    columns = [f"generated, {v} view(s)" for v in sorted(int(v) for v in m[splits[0]])] if splits else []
    columns += ["retrieval", "reconstruct", "ground truth"]
    blank = np.zeros((thumb, thumb, 3), np.uint8)
    for split in splits:
        images, labels = [], []
        for (s, obj_idx), kept in result["pictures"].items():
            if s != split:
                continue
            views, _ = load_render_views(store, obj_idx)
            images.append(_fit(views[kept["input_view"]], thumb))
            labels.append(f"{shape_name(obj_idx)} input")
            for label in columns:
                mesh = kept.get(label)
                images.append(blank if mesh is None else thumbnail(mesh, thumb))
                labels.append(label if mesh is not None else f"{label}: no surface")
        if images:
            sheet = contact_sheet(images, labels, cols=1 + len(columns))
            sections.append(Section(f"{split}: input, generated, references, ground truth",
                                    figures=[Figure(sheet, f"{split} split: one held-out shape per row")]))
    rows = [{"split": r["split"], "views": r["views"], "shape": shape_name(r['obj_idx']),
             "category": r["category"], **{f"{k}.chamfer_l1": r[f"{k}.chamfer_l1"] for k in METHODS},
             "nearest training": shape_name(r['top1_obj_idx'])} for r in result["shapes"]]
    sections.append(Section("Per shape (worst generated Chamfer first)",
                            table=Table(list(rows[0]) if rows else [], rows, sort_by="generated.chamfer_l1")))
    sections.append(Section("Protocol (as written into metrics.json)",
                            table=Table(["item", "value"], _flatten(m["protocol"]))))
    _, page = write_report(out_dir, "Image → shape: held-out evaluation", sections,
                           intro=f"model: {model.dit.path}")
    return page


def _flatten(tree: dict, prefix: str = "") -> list[dict]:
    """Nested protocol dict → rows of {item: dotted key, value}."""
    rows = []
    for key, value in tree.items():
        if isinstance(value, dict):
            rows += _flatten(value, f"{prefix}{key}.")
        else:
            rows.append({"item": f"{prefix}{key}", "value": value})
    return rows


def _fit(image: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR))
