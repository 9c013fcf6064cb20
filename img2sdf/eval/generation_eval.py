"""Held-out evaluation of image → shape generation, the study §7.4 asks for and the paper did not run.

Two protocols, both over the ``test`` split (held-out shapes of seen categories) and the ``ood`` split
(held-out categories), from 1 and from 4 views (the 1-view input is the first of the 4):

- ``photo`` (the headline: what a user gets): every shape is rendered from *new* cameras
  (:func:`~img2sdf.data.photo.random_cameras`: azimuth, elevation, distance, FOV, look-at offset and roll
  that no training render used), turned into photo files — black, white or coloured background, half of
  them JPEG-compressed — written to ``OUT/photos/`` and read back by ``load_view``; the DiT gets them with
  the unknown-pose token: exactly the path of ``img2sdf generate photo.jpg``.
- ``known_pose`` (second, for comparison with the paper's setting): the shape's own renders from the 64
  training cameras (a seeded choice) with their true poses, prepared the way the DiT's training views were
  (framed by ``load_view`` for a photo-pool run, as rendered for a renders run).

Methods scored against the ground-truth mesh with the project's surface metrics:

- ``generated``: the latent DiT (DDIM) → shared decoder → mesh; ``guarded``: the same with
  ``--guard project`` (an off-range latent pulled back to the training range, see ``generate/guard.py``);
- ``retrieval``: the training shape whose image features are nearest (mean over the query views of the best
  cosine to any of its training views, on features standardised like the DiT's input), decoded by the same
  decoder — what a pure nearest-neighbour model (§6.2's 20-shape pilot) would give;
- ``reconstruct``: the auto-decoder's own latent fit to the true shape's SDF samples — the ceiling;
- ``sphere``: a fixed sphere of radius 0.6, the floor any method must beat.

Every output counts in every mean: a decode with no surface is scored as the [-1, 1]³ cube (the box-filling
output), and ``n_failed`` counts those. Meshes flagged by :func:`~img2sdf.generate.guard.mesh_flags` or
decoded from off-range latents keep their score and are counted in ``n_flagged``. ``metrics.json`` holds
per protocol split → views → method the means, per-category means, a paired bootstrap 95 % interval of
generated − retrieval Chamfer-L1, the share of meshes worse than the sphere, and the cosine-ranking
diagnostic (§1.2 ii): recall of training shapes (from one new photo under ``photo``) and collapse.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..data.store import shape_name
from ..errors import UserError
from ..generate import DEFAULT_PICK, DEFAULT_SAMPLES
from ..generate.neighbours import top_k
from ..io import write_json
from .diagnostics import collapse_stats, recall_stats

METHODS = ("generated", "guarded", "retrieval", "reconstruct", "sphere")
REPORTED = ("chamfer_l1", "fscore_1pct", "iou")
STATS = ("aspect", "genus", "volume")  # eval.metrics.shape_statistics
PROTOCOLS = ("photo", "known_pose")
SPHERE_RADIUS = 0.6
FAILED_STAND_IN = "the [-1, 1]^3 cube (a box-filling output)"


@dataclass
class EvalGenConfig:
    splits: tuple = ("test", "ood")
    views: tuple = (1, 4)
    protocols: tuple = PROTOCOLS
    max_shapes: int = 0  # per split; 0 = all
    resolution: int = 64  # marching cubes for every decoded mesh
    n_points: int = 20_000  # surface / volume samples per metric
    steps: int = 0  # DDIM steps; 0 = the run's own (50)
    samples: int = DEFAULT_SAMPLES  # DDIM samples per input, reduced by ``pick``, as `generate` does
    pick: str = DEFAULT_PICK
    known_poses: bool = True  # known_pose protocol: condition on the true poses (False: unknown-pose token)
    reconstruct_steps: int = 600  # latent-fitting iterations of the reconstruct reference
    reconstruct_points: int = 2048  # SDF samples per latent-fitting iteration
    recall_shapes: int = 32  # training shapes used for the recall diagnostic (0 = all)
    pictures: int = 6  # shapes per split whose meshes are kept for the report
    bootstrap: int = 2000  # resamples of the paired generated − retrieval interval
    seed: int = 0


def choose_views(obj_idx: int, n_views_total: int, seed: int, k: int = 4) -> np.ndarray:
    """The seeded view choice of one shape: k distinct view indices; the 1-view input is the first."""
    rng = np.random.default_rng([seed, obj_idx])
    return rng.permutation(n_views_total)[:k]


class _Meshes:
    """Decode latents to meshes and score them against a ground truth, caching what repeats."""

    def __init__(self, model, store, cfg: EvalGenConfig):
        import trimesh

        self.model, self.store, self.cfg = model, store, cfg
        self._gt: dict[int, object] = {}
        self._gt_stats: dict[int, dict] = {}
        self._train: dict[int, object] = {}
        self._fixed: dict[tuple[str, int], dict] = {}
        self.cube = trimesh.creation.box(extents=(2.0, 2.0, 2.0))
        self.sphere = trimesh.creation.icosphere(4, SPHERE_RADIUS)

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

    def score(self, mesh, obj_idx: int, off_range: bool = False) -> dict:
        from ..generate.guard import mesh_flags
        from .metrics import shape_statistics, surface_metrics

        stand_in = mesh is None
        scored = self.cube if stand_in else mesh
        m = surface_metrics(scored, self.gt(obj_idx), n_points=self.cfg.n_points, seed=self.cfg.seed)
        flags = [] if stand_in else mesh_flags(mesh)
        if off_range:
            flags.append("off-range latent")
        if obj_idx not in self._gt_stats:
            self._gt_stats[obj_idx] = shape_statistics(self.gt(obj_idx))
        return {k: float(m[k]) for k in REPORTED} | {"failed": stand_in, "flags": flags,
                                                     "stats": shape_statistics(scored),
                                                     "gt_stats": self._gt_stats[obj_idx]}

    def fixed(self, name: str, obj_idx: int, make) -> dict:
        """Scores that do not depend on the views or the protocol (reconstruct, sphere), computed once."""
        if (name, obj_idx) not in self._fixed:
            mesh = make()
            self._fixed[(name, obj_idx)] = {"mesh": mesh, "scores": self.score(mesh, obj_idx)}
        return self._fixed[(name, obj_idx)]


def _aggregate(rows: list[dict], sphere: list[dict]) -> dict:
    chamfer = [r["chamfer_l1"] for r in rows]
    worse = [r["chamfer_l1"] > s["chamfer_l1"] for r, s in zip(rows, sphere, strict=True)]
    return {
        "chamfer_l1": float(np.mean(chamfer)) if rows else float("nan"),
        "fscore_1pct": float(np.mean([r["fscore_1pct"] for r in rows])) if rows else float("nan"),
        "iou": float(np.mean([r["iou"] for r in rows])) if rows else float("nan"),
        "n": len(rows),
        "n_failed": sum(r["failed"] for r in rows),
        "n_flagged": sum(bool(r["flags"]) for r in rows),
        "worse_than_sphere": float(np.mean(worse)) if rows else float("nan"),
    }


def paired_interval(a: np.ndarray, b: np.ndarray, resamples: int, seed: int) -> dict:
    """Mean of a − b over paired items and its percentile-bootstrap 95 % interval."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if len(d) == 0:
        return {"mean": float("nan"), "lo": float("nan"), "hi": float("nan"), "n": 0}
    idx = np.random.default_rng(seed).integers(0, len(d), size=(resamples, len(d)))
    means = d[idx].mean(axis=1)
    return {"mean": float(d.mean()), "lo": float(np.percentile(means, 2.5)),
            "hi": float(np.percentile(means, 97.5)), "n": int(len(d))}


class PhotoInputs:
    """The conditioning of both protocols: features [B, K, D] (+ poses or None) for shapes and views."""

    def __init__(self, model, store, cfg: EvalGenConfig, out_dir: Path | None):
        from ..encoders.cache import feature_set

        self.model, self.store, self.cfg = model, store, cfg
        self.views_kind = model.dit.info.get("views", "renders")
        self.photo_dir = Path(out_dir or ".") / "photos"
        self.photo_records: dict[int, list[dict]] = {}
        self.render_features, self.render_poses, _ = store.load_features(model.dit.info["encoder"])
        self.pool_name = feature_set(model.dit.info["encoder"], self.views_kind)

    def photos(self, obj_idx: int, n: int) -> tuple[np.ndarray, list[Path]]:
        """``n`` photos of a shape from new cameras, as files, and what ``load_view`` makes of them."""
        from ..data.images import load_view
        from ..data.photo import PhotoConfig, random_cameras, render_photos, write_photo

        pcfg = PhotoConfig()
        rng = np.random.default_rng([self.cfg.seed, obj_idx, 7])
        c2w, fovs = random_cameras(n, rng, pcfg)
        rgba = render_photos(self.store.load_mesh(obj_idx), c2w, fovs, pcfg.resolution)
        files, records = [], []
        for k in range(n):
            stem = self.photo_dir / shape_name(obj_idx) / f"photo_{k}"
            path, record = write_photo(rgba[k], stem, rng, pcfg)
            files.append(path)
            records.append({"file": str(path), "fov_y_deg": float(fovs[k]),
                            "camera": np.round(c2w[k, :3, 3], 4).tolist(), **record})
        self.photo_records[obj_idx] = records
        return np.stack([load_view(f) for f in files]), files

    def photo_features(self, ids: list[int], n: int) -> np.ndarray:
        return np.stack([self.model.encode(self.photos(i, n)[0]) for i in ids])  # [B, n, D]

    def known_pose(self, ids: list[int], view_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Features [B, k, D] and poses [B, k, 4, 4] of the chosen training-camera renders."""
        from ..data.cameras import view_filename
        from ..data.images import load_view

        ids_col = np.asarray(ids)[:, None]
        poses = np.asarray(self.render_poses[ids_col, view_idx], dtype=np.float32)
        if self.views_kind == "renders":
            return np.asarray(self.render_features[ids_col, view_idx], dtype=np.float32), poses
        feats = []
        for i, views in zip(ids, view_idx, strict=True):
            files = [self.store.render_dir(i) / view_filename(int(v)) for v in views]
            feats.append(self.model.encode(np.stack([load_view(f) for f in files])))
        return np.stack(feats), poses


def evaluate_generation(model, store, cfg: EvalGenConfig, encoder_name: str, progress: bool = True,
                        out_dir: str | Path | None = None) -> dict:
    """Run the evaluation with a loaded :class:`~img2sdf.generate.pipeline.ImageToShape`; returns
    ``{"metrics": ..., "shapes": per-shape rows, "pictures": {(split, obj_idx): {label: mesh}}}``.
    Photo-protocol input files go to ``out_dir/photos``."""
    from ..encoders.cache import POOL_GROUPS, pool_indices
    from .metrics import METRIC_PROTOCOL

    for p in cfg.protocols:
        if p not in PROTOCOLS:
            raise UserError(f"protocol {p!r}: choose from {', '.join(PROTOCOLS)}")
    inputs = PhotoInputs(model, store, cfg, Path(out_dir) if out_dir else None)
    pool, _, pool_meta = store.load_features(inputs.pool_name)
    cols = pool_indices(pool_meta, tuple(model.dit.info.get("pool_groups", POOL_GROUPS)))
    manifest = store.load_manifest()
    net = model.dit.model
    mean, std = net.feature_mean.numpy(), net.feature_std.numpy()
    train_rows = model.train_obj_idx
    train_feats = np.asarray(pool[np.asarray(train_rows)[:, None], cols[None]], dtype=np.float32)
    train_feats = unit_rows((train_feats - mean) / std)  # [N, A, D]: the views the DiT trained on
    n_render_views = inputs.render_features.shape[1]
    meshes = _Meshes(model, store, cfg)
    t0 = time.perf_counter()
    max_views = max(cfg.views)

    results: dict = {p: {} for p in cfg.protocols}
    diagnostics: dict = {p: {"collapse": {}} for p in cfg.protocols}
    shape_rows: list[dict] = []
    pictures: dict[tuple[str, int], dict] = {}
    for split in cfg.splits:
        shapes = [s for s in manifest.select(split=split) if np.any(inputs.render_features[s.obj_idx])]
        if cfg.max_shapes:
            shapes = shapes[: cfg.max_shapes]
        if not shapes:
            raise UserError(f"{store.root}: no encoded shapes in split {split!r}; prepare with "
                            f"--n-{split} > 0 and run `img2sdf encode`")
        ids = [s.obj_idx for s in shapes]
        chosen = np.stack([choose_views(i, n_render_views, cfg.seed, max_views) for i in ids])
        for protocol in cfg.protocols:
            if protocol == "photo":
                all_feats, all_poses = inputs.photo_features(ids, max_views), None
            else:
                all_feats, all_poses = inputs.known_pose(ids, chosen)
                all_poses = all_poses if cfg.known_poses else None
            results[protocol][split] = {}
            diagnostics[protocol]["collapse"][split] = {}
            for n_views in cfg.views:
                rows, collapse = _evaluate_views(model, meshes, shapes, all_feats[:, :n_views],
                                                 None if all_poses is None else all_poses[:, :n_views],
                                                 train_feats, mean, std, cfg, progress,
                                                 f"eval-gen {protocol} {split} {n_views} view(s)")
                diagnostics[protocol]["collapse"][split][str(n_views)] = collapse
                results[protocol][split][str(n_views)] = _summaries(rows, shapes, cfg)
                for b, shape in enumerate(shapes):
                    i = shape.obj_idx
                    if protocol == cfg.protocols[0] and b < cfg.pictures:  # the report shows the first
                        kept = pictures.setdefault((split, i), {"ground truth": meshes.gt(i)})
                        kept["input"] = str(inputs.photo_records[i][0]["file"]) if protocol == "photo" \
                            else int(chosen[b][0])
                        kept[f"generated, {n_views} view(s)"] = rows["generated"][b]["mesh"]
                        kept["retrieval"] = rows["retrieval"][b]["mesh"]
                        kept["reconstruct"] = rows["reconstruct"][b]["mesh"]
                    shape_rows.append({
                        "protocol": protocol, "split": split, "views": n_views, "obj_idx": i,
                        "category": shape.category,
                        "inputs": ([r["file"] for r in inputs.photo_records[i][:n_views]]
                                   if protocol == "photo" else chosen[b][:n_views].tolist()),
                        "retrieved_obj_idx": rows["retrieval"][b]["obj_idx"],
                        "top1_obj_idx": rows["generated"][b]["top1_obj_idx"],
                        "latent_distance": rows["generated"][b]["latent_distance"],
                        **{f"{m}.{k}": rows[m][b]["scores"][k] for m in METHODS
                           for k in (*REPORTED, "failed", "flags")},
                        **{f"{m}.{k}": rows[m][b]["scores"]["stats"][k] for m in ("generated", "retrieval")
                           for k in STATS},
                        **{f"ground_truth.{k}": rows["sphere"][b]["scores"]["gt_stats"][k] for k in STATS},
                    })
    for protocol in cfg.protocols:
        diagnostics[protocol]["recall"] = _recall(model, inputs, protocol, cfg, train_feats, mean, std)
    photo_cfg = None
    if "photo" in cfg.protocols:
        from ..config import to_dict
        from ..data.photo import PhotoConfig

        photo_cfg = {k: v for k, v in to_dict(PhotoConfig()).items()
                     if k not in ("frame", "shift_px", "brightness", "contrast", "colour")}
    return {
        "metrics": {
            **results,
            "protocol": {
                **METRIC_PROTOCOL,
                "surface_points_per_mesh": cfg.n_points,  # what surface_metrics was given here
                "iou_points": cfg.n_points,
                "n_points": cfg.n_points,
                "mesh_resolution": cfg.resolution,
                "headline": "photo",
                "photo": "held-out shapes rendered from new random cameras, photo files (black/white/"
                         "coloured background, some JPEG) read by load_view, unknown-pose token: the "
                         "generate path",
                "photo_cameras": photo_cfg,
                "known_pose": "renders from the 64 training cameras (seeded choice) with "
                              + ("their true poses" if cfg.known_poses else "the unknown-pose token")
                              + (", framed by load_view" if inputs.views_kind == "photo"
                                 else ", as rendered"),
                "aggregation": f"mean over shapes; every output counts: a decode with no surface is scored "
                               f"as {FAILED_STAND_IN} (n_failed counts it); flagged meshes keep their score "
                               f"(n_flagged)",
                "failed_penalty": FAILED_STAND_IN,
                "sphere_baseline_radius": SPHERE_RADIUS,
                "interval": f"paired percentile bootstrap over shapes, {cfg.bootstrap} resamples, 95 %",
                "view_choice": f"seeded per shape (seed {cfg.seed}); the 1-view input is the first of the "
                               f"{max_views}",
                "retrieval": "training shape maximising the mean over query views of the best cosine to its "
                             "training views (features standardised with the DiT's training statistics)",
                "dit_training_views": inputs.views_kind,
                "ddim_steps": cfg.steps or model.dit.config.sample_steps,
                "ddim_samples": f"{cfg.samples} per input, their {cfg.pick} decoded (1 = one sample)",
                "reconstruct": {"steps": cfg.reconstruct_steps, "points_per_step": cfg.reconstruct_points},
                "encoder": encoder_name,
                "n_train_shapes": len(train_rows),
            },
            "diagnostics": diagnostics,
            "seconds": round(time.perf_counter() - t0, 1),
        },
        "shapes": shape_rows,
        "photos": {shape_name(i): r for i, r in inputs.photo_records.items()},
        "pictures": pictures,
    }


def _evaluate_views(model, meshes: _Meshes, shapes, feats, poses, train_feats, mean, std, cfg, progress,
                    desc) -> tuple[dict, dict]:
    """Score every method for one protocol/split/views setting: per method a list (one per shape) of
    {"mesh", "scores", ...}; plus the collapse statistics of the generated latents."""
    from tqdm import tqdm

    from ..generate.reconstruct import reconstruct_latent

    train_rows = model.train_obj_idx
    latents = model.sample_latents(feats, poses, seed=cfg.seed, steps=cfg.steps or None, samples=cfg.samples,
                                   pick=cfg.pick)
    top1 = top_k(latents, model.train_latents, 1)[0][:, 0]
    collapse = collapse_stats(np.asarray(train_rows)[top1], len(train_rows))
    retrieved = retrieve_nearest(unit_rows((feats - mean) / std), train_feats)
    guard = model.guard
    rows: dict = {m: [] for m in METHODS}
    for b, shape in enumerate(tqdm(shapes, desc=desc, disable=not progress)):
        i = shape.obj_idx

        def reconstruct(i=i):
            points, sdf = meshes.store.load_sdf(i)
            z = reconstruct_latent(model.decoder, torch.from_numpy(points), torch.from_numpy(sdf),
                                   steps=cfg.reconstruct_steps, n_points=cfg.reconstruct_points,
                                   seed=cfg.seed, **model.decoder_run.reconstruct_settings())
            return meshes.decode(z.detach().numpy())

        check = guard.check(latents[b])
        generated = meshes.decode(latents[b])
        gen_scores = meshes.score(generated, i, check.off_range)
        rows["generated"].append({"mesh": generated, "scores": gen_scores, "latent_distance": check.distance,
                                  "top1_obj_idx": train_rows[int(top1[b])]})
        if check.off_range:
            guarded = meshes.decode(guard.project(latents[b]))
            rows["guarded"].append({"mesh": guarded, "scores": meshes.score(guarded, i)})
        else:
            rows["guarded"].append(rows["generated"][-1])
        retrieval = meshes.train_mesh(int(retrieved[b]))
        rows["retrieval"].append({"mesh": retrieval, "scores": meshes.score(retrieval, i),
                                  "obj_idx": train_rows[int(retrieved[b])]})
        rows["reconstruct"].append(meshes.fixed("reconstruct", i, reconstruct))
        rows["sphere"].append(meshes.fixed("sphere", i, lambda: meshes.sphere))
    return rows, collapse


def _summaries(rows: dict, shapes, cfg: EvalGenConfig) -> dict:
    """Means per method, per category, and the paired interval of generated − retrieval Chamfer-L1."""
    scores = {m: [r["scores"] for r in rows[m]] for m in METHODS}
    out = {m: _aggregate(scores[m], scores["sphere"]) for m in METHODS}
    by_cat: dict[str, list[int]] = defaultdict(list)
    for b, s in enumerate(shapes):
        by_cat[s.category].append(b)
    out["per_category"] = {
        cat: {m: {"chamfer_l1": float(np.mean([scores[m][b]["chamfer_l1"] for b in idx])), "n": len(idx)}
              for m in METHODS}
        for cat, idx in sorted(by_cat.items())
    }

    def mean_stats(items: list[dict]) -> dict:
        return {k: float(np.nanmean([d[k] for d in items])) if any(np.isfinite(d[k]) for d in items)
                else float("nan") for k in STATS}

    # §6.3's OOD observations ("elongated output for tunnel input") as numbers: aspect, genus, volume
    out["shape_stats"] = {
        cat: {"ground_truth": mean_stats([scores["sphere"][b]["gt_stats"] for b in idx]),
              **{m: mean_stats([scores[m][b]["stats"] for b in idx]) for m in ("generated", "retrieval")}}
        for cat, idx in sorted(by_cat.items())
    }
    chamfer = {m: np.array([r["chamfer_l1"] for r in scores[m]])
               for m in ("generated", "guarded", "retrieval")}
    out["generated_minus_retrieval"] = paired_interval(chamfer["generated"], chamfer["retrieval"],
                                                       cfg.bootstrap, cfg.seed)
    out["guarded_minus_generated"] = paired_interval(chamfer["guarded"], chamfer["generated"],
                                                     cfg.bootstrap, cfg.seed)
    return out


def unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def retrieve_nearest(query: np.ndarray, train: np.ndarray) -> np.ndarray:
    """query [B, k, D], train [N, V, D] (unit rows) → training row per query."""
    cos = np.einsum("bkd,nvd->bknv", query, train)  # [B, k, N, V]
    return cos.max(axis=3).mean(axis=1).argmax(axis=1)


def _recall(model, inputs: PhotoInputs, protocol: str, cfg: EvalGenConfig, train_feats: np.ndarray,
            mean: np.ndarray, std: np.ndarray) -> dict:
    """§6.2's recall check: 1 view of up to ``recall_shapes`` training shapes → top-1 == own latent?
    Under ``photo`` the view is a new photo (a camera no training render used) through load_view.

    ``retrieval_top1`` asks the same of the encoder alone: is the training shape with the nearest image
    features (retrieval's choice, over the views the DiT trained on) the photographed one? A DiT recall far
    below it is the DiT's shortfall; both low means the features cannot tell the shapes apart."""
    n = len(model.train_obj_idx)
    n = n if cfg.recall_shapes <= 0 else min(cfg.recall_shapes, n)
    rows = np.arange(n)
    ids = [int(i) for i in np.array(model.train_obj_idx)[rows]]
    if protocol == "photo":
        feats, pose = inputs.photo_features(ids, 1), None
    else:
        view = np.array([[choose_views(i, inputs.render_features.shape[1], cfg.seed)[0]] for i in ids])
        feats, pose = inputs.known_pose(ids, view)
        pose = pose if cfg.known_poses else None
    latents = model.sample_latents(feats, pose, seed=cfg.seed, steps=cfg.steps or None, samples=cfg.samples,
                                   pick=cfg.pick)
    retrieved = retrieve_nearest(unit_rows((feats - mean) / std), train_feats)
    return recall_stats(latents, model.train_latents, rows) | {
        "views": 1, "retrieval_top1": float(np.mean(retrieved == rows))}


def run_eval_gen(model_dir: str | Path, out: str | Path, cfg: EvalGenConfig, data: str | Path | None = None,
                 device: str | None = None, progress: bool = True) -> tuple[dict, Path, Path]:
    """Load a DiT run onto ``device``, evaluate it on ``data`` (default: the store it was trained on) and
    write ``out/metrics.json`` and ``out/report.html``; returns (result, metrics path, report path)."""
    from ..data.store import ShapeStore
    from ..generate.pipeline import ImageToShape

    model = ImageToShape.load(model_dir, device=device)
    store = ShapeStore(data or model.dit.info["data_root"])
    result = evaluate_generation(model, store, cfg, model.dit.info["encoder"], progress=progress, out_dir=out)
    return result, write_metrics(out, result), write_report_html(out, model, store, result)


def write_metrics(out_dir: str | Path, result: dict) -> Path:
    path = Path(out_dir) / "metrics.json"
    write_json(path, result["metrics"])
    write_json(Path(out_dir) / "shapes.json", result["shapes"])
    if result.get("photos"):
        write_json(Path(out_dir) / "photos" / "photos.json", result["photos"])
    return path


def settings(metrics: dict):
    """(row key {protocol, split, views}, results) for every setting a metrics.json holds."""
    for protocol in PROTOCOLS:
        for split, per_views in metrics.get(protocol, {}).items():
            for views, res in per_views.items():
                yield {"protocol": protocol, "split": split, "views": views}, res


def summary_rows(metrics: dict) -> list[dict]:
    """One row per protocol, split, views and method of the means (the report's first table)."""
    return [{**key, "method": method, **res[method]} for key, res in settings(metrics) for method in METHODS]


def interval_rows(metrics: dict) -> list[dict]:
    """One row per setting of the paired generated − retrieval Chamfer-L1 interval, with its verdict."""
    rows = []
    for key, res in settings(metrics):
        d = res["generated_minus_retrieval"]
        rows.append({**key, "mean": d["mean"], "95% lo": d["lo"], "95% hi": d["hi"], "n": d["n"],
                     "verdict": "generated better" if d["hi"] < 0 else
                     "retrieval better" if d["lo"] > 0 else "not separable"})
    return rows


def write_report_html(out_dir: str | Path, model, store, result: dict, thumb: int = 160) -> Path:
    """``report.html`` (+ ``report.md``): the metrics tables, the diagnostic, and per held-out shape a row of
    pictures — input photo, generated (1 and 4 views), retrieval, reconstruct, ground truth."""
    from PIL import Image

    from ..encoders.cache import load_render_views
    from .gallery import contact_sheet, thumbnail
    from .report import Figure, Section, Table, write_report

    m = result["metrics"]
    protocols = [p for p in PROTOCOLS if p in m]
    sections = [
        Section("Held-out metrics (mean over shapes)",
                "photo = new cameras, photo files through load_view, unknown pose (what a user gets; the "
                "headline); known_pose = the training cameras' renders with their poses. Chamfer-L1 lower is "
                "better; F-score@1 % and IoU higher. reconstruct = the auto-decoder's own fit (the ceiling); "
                f"sphere = a radius-{SPHERE_RADIUS} sphere (the floor); guarded = generated with off-range "
                f"latents projected back. A failed decode is scored as {FAILED_STAND_IN}.",
                Table(["protocol", "split", "views", "method", *REPORTED, "n", "n_failed", "n_flagged",
                       "worse_than_sphere"], summary_rows(m))),
        Section("Generated − retrieval Chamfer-L1 (paired bootstrap 95 % interval; < 0: generation wins)",
                table=Table(["protocol", "split", "views", "mean", "95% lo", "95% hi", "n", "verdict"],
                            interval_rows(m))),
    ]
    cat_rows = [{**key, "category": cat,
                 **{f"{k}.chamfer_l1": c[k]["chamfer_l1"] for k in ("generated", "retrieval", "reconstruct")},
                 "n": c["generated"]["n"]}
                for key, res in settings(m) for cat, c in res["per_category"].items()]
    sections.append(Section("Per category (Chamfer-L1)", table=Table(list(cat_rows[0]) if cat_rows else [],
                                                                      cat_rows)))
    stat_rows = [{**key, "category": cat, "mesh": who, **{k: v[k] for k in STATS}}
                 for key, res in settings(m) if key["split"] == "ood"
                 for cat, per in res.get("shape_stats", {}).items() for who, v in per.items()]
    if stat_rows:
        sections.append(Section(
            "OOD shape statistics (§6.3 judged these by eye)",
            "Per OOD category, means over shapes: aspect = longest / shortest bounding-box extent, genus "
            "(handles), volume; generated and retrieved meshes against the ground truth.",
            Table(list(stat_rows[0]), stat_rows)))
    lines = []
    for p in protocols:
        rec = m["diagnostics"][p]["recall"]
        lines.append(f"{p}: recall on {rec['n']} training shapes from 1 view: top-1 = true latent for "
                     f"{rec['recall_top1']:.0%}, mean cos(pred, true) {rec['cos_true_mean']:.3f}, "
                     f"margin to the runner-up {rec['margin_mean']:.3f}; the nearest image features "
                     f"(retrieval) name the true shape for {rec['retrieval_top1']:.0%}")
        for s, per_views in m["diagnostics"][p]["collapse"].items():
            for v, c in per_views.items():
                lines.append(f"{p}, {s}, {v} view(s): {c['distinct_top1']} distinct top-1 training shapes "
                             f"for {c['n_predictions']} inputs; the 3 most frequent take "
                             f"{c['top3_share']:.0%}")
    sections.append(Section("Cosine-ranking diagnostic (paper §1.2 ii)", "\n".join(lines)))
    splits = list(m[protocols[0]]) if protocols else []
    columns = [f"generated, {v} view(s)" for v in sorted(int(v) for v in m[protocols[0]][splits[0]])] \
        if splits else []
    columns += ["retrieval", "reconstruct", "ground truth"]
    blank = np.zeros((thumb, thumb, 3), np.uint8)
    for split in splits:
        images, labels = [], []
        for (s, obj_idx), kept in result["pictures"].items():
            if s != split:
                continue
            if isinstance(kept["input"], str):  # a photo file
                with Image.open(kept["input"]) as im:
                    images.append(_fit(np.asarray(im.convert("RGB")), thumb))
            else:
                images.append(_fit(load_render_views(store, obj_idx)[0][kept["input"]], thumb))
            labels.append(f"{shape_name(obj_idx)} input")
            for label in columns:
                mesh = kept.get(label)
                images.append(blank if mesh is None else thumbnail(mesh, thumb))
                labels.append(label if mesh is not None else f"{label}: no surface")
        if images:
            sheet = contact_sheet(images, labels, cols=1 + len(columns))
            sections.append(Section(f"{split} ({protocols[0]}): input, generated, references, ground truth",
                                    figures=[Figure(sheet, f"{split} split: one held-out shape per row")]))
    rows = [{"protocol": r["protocol"], "split": r["split"], "views": r["views"],
             "shape": shape_name(r['obj_idx']), "category": r["category"],
             **{f"{k}.chamfer_l1": r[f"{k}.chamfer_l1"] for k in ("generated", "retrieval", "reconstruct")},
             "flags": "; ".join(r["generated.flags"]) + (" (failed)" if r["generated.failed"] else ""),
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
