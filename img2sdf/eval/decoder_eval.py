"""Evaluate a fitted auto-decoder (``img2sdf eval``): paper Table 3 numbers plus surface metrics.

- train recall: each training latent is decoded and meshed (RUN/meshes/obj_NNNN.ply);
- test: each held-out shape gets a latent fitted with the decoder frozen (``reconstruct``), then meshed
  (RUN/eval/meshes/obj_NNNN.ply).

Per shape: the clamped SDF L1 of eq. (5) on a fixed seeded subset of its samples (Table 3's "SDF L1"), and
:func:`~img2sdf.eval.metrics.surface_metrics` against the ground-truth mesh. Per run: the mean pairwise
cosine of the training latents (Table 3). Writes RUN/eval/metrics.json (with the protocol) and
RUN/report.md|html (tables and thumbnails, worst shapes first).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..data.store import ShapeStore, shape_name
from ..errors import UserError
from ..io import write_json, write_mesh
from .metrics import METRIC_PROTOCOL, surface_metrics

SURFACE_KEYS = ("chamfer_l1", "chamfer_l2", "fscore_1pct", "fscore_2pct", "iou", "normal_consistency")


@dataclass
class EvalConfig:
    splits: tuple[str, ...] = ("train", "test")
    resolution: int = 0  # marching-cubes cells per axis; 0 = 128 for the tiny preset, 256 otherwise
    n_points: int = 100_000  # surface points per mesh and IoU points (METRIC_PROTOCOL)
    sdf_points: int = 32_768  # SDF samples per shape for the SDF L1
    max_shapes: int = 0  # per split; 0 = all
    # reconstruct's own default; 300 left held-out latents under-fitted (the bundled decoder's test
    # Chamfer-L1: 0.032 at 300 steps, 0.023 at 600; README)
    reconstruct_steps: int = 600
    reconstruct_points: int = 2048  # SDF samples per latent-fit step
    pictures: int = 12  # thumbnails per split, worst first
    thumb_size: int = 160
    seed: int = 0


def default_resolution(preset: str) -> int:
    return 128 if preset == "tiny" else 256


def latent_pairwise_cosine(latents: torch.Tensor) -> float:
    """Mean cosine similarity over distinct pairs of latents (Table 3)."""
    z = torch.nn.functional.normalize(latents.double(), dim=1)
    n = len(z)
    if n < 2:
        return float("nan")
    sim = z @ z.T
    return float((sim.sum() - sim.diagonal().sum()) / (n * (n - 1)))


def sdf_l1(decoder, latent: torch.Tensor, points: np.ndarray, sdf: np.ndarray, delta: float) -> float:
    """Clamped L1 of eq. (5) at the given samples."""
    from ..models.decoder import decoder_sdf_fn

    pred = decoder_sdf_fn(decoder, latent)(points)
    return float(np.abs(np.clip(pred, -delta, delta) - np.clip(sdf, -delta, delta)).mean())


def evaluate_run(run_dir: str | Path, cfg: EvalConfig | None = None, progress: bool = True,
                 device: str | None = None) -> dict:
    """Evaluate ``run_dir`` on ``cfg.splits`` with the decoder on ``device``; returns the dict also written
    to RUN/eval/metrics.json."""
    from tqdm import tqdm

    from ..devices import choose_device
    from ..generate.mesh import extract_mesh
    from ..generate.reconstruct import reconstruct_latent
    from ..runs.load import load_decoder_run

    cfg = cfg or EvalConfig()
    run = load_decoder_run(run_dir).to(choose_device(0, device))
    store = ShapeStore(run.data_root)
    manifest = store.load_manifest()
    resolution = cfg.resolution or default_resolution(run.config.preset)
    delta = run.config.clamp_delta
    row_of = {obj: row for row, obj in enumerate(run.obj_idx)}
    results: dict = {}
    for split in cfg.splits:
        if split == "train":
            entries = [manifest.shapes[i] for i in run.obj_idx]
        else:
            entries = manifest.select(split=split)
        entries = entries[: cfg.max_shapes] if cfg.max_shapes else entries
        if not entries:
            raise UserError(f"{run.data_root}: no ok shapes in split {split!r} to evaluate; choose --splits")
        mesh_dir = run.run_dir / ("meshes" if split == "train" else "eval/meshes")
        shapes, times = [], {"reconstruct": 0.0, "mesh": 0.0, "metrics": 0.0}
        for entry in tqdm(entries, desc=f"eval {split}", disable=not progress):
            points, sdf = store.load_sdf(entry.obj_idx)
            pick = np.random.default_rng(cfg.seed + entry.obj_idx).permutation(len(points))[: cfg.sdf_points]
            t = time.perf_counter()
            if split == "train":
                z = run.latents[row_of[entry.obj_idx]]
            else:
                z = reconstruct_latent(run.decoder, points, sdf, steps=cfg.reconstruct_steps,
                                       n_points=cfg.reconstruct_points, seed=cfg.seed,
                                       **run.reconstruct_settings())
            times["reconstruct"] += time.perf_counter() - t
            row = {"obj_idx": entry.obj_idx, "uid": entry.uid, "category": entry.category,
                   "sdf_l1": sdf_l1(run.decoder, z, points[pick], sdf[pick], delta)}
            t = time.perf_counter()
            try:
                mesh = extract_mesh(run.decoder, z, resolution=resolution)
            except UserError as e:
                shapes.append({**row, "error": str(e)})
                continue
            path = mesh_dir / f"{entry.name}.ply"
            write_mesh(path, mesh)
            times["mesh"] += time.perf_counter() - t
            t = time.perf_counter()
            row.update(surface_metrics(mesh, store.load_mesh(entry.obj_idx), cfg.n_points, cfg.seed))
            times["metrics"] += time.perf_counter() - t
            shapes.append({**row, "mesh": str(path.relative_to(run.run_dir))})
        results[split] = _summarise(shapes, times)
    metrics = {
        "run": str(run.run_dir), "preset": run.config.preset, "n_train_latents": len(run.obj_idx),
        "latent_pairwise_cosine": latent_pairwise_cosine(run.latents),
        "fit_seconds": _fit_seconds(run.run_dir),
        "protocol": {**METRIC_PROTOCOL, "surface_points_per_mesh": cfg.n_points, "iou_points": cfg.n_points,
                     "mesh_resolution": resolution, "mesh_bound": 1.0,
                     "sdf_l1": f"clamped L1 (delta={delta}) of eq. (5) on {cfg.sdf_points} seeded SDF "
                               "samples per shape; mean and max over shapes",
                     "test_latents": f"reconstruct_latent, {cfg.reconstruct_steps} steps x "
                                     f"{cfg.reconstruct_points} points, decoder frozen"},
        "splits": results,
    }
    write_json(run.run_dir / "eval" / "metrics.json", metrics)
    write_decoder_report(run.run_dir, metrics, cfg, store)
    return metrics


def _summarise(shapes: list[dict], times: dict) -> dict:
    ok = [s for s in shapes if "error" not in s]
    l1 = [s["sdf_l1"] for s in shapes]
    return {
        "n": len(shapes), "n_failed": len(shapes) - len(ok),
        "sdf_l1_mean": float(np.mean(l1)), "sdf_l1_max": float(np.max(l1)),
        "mean": {k: float(np.mean([s[k] for s in ok])) if ok else float("nan") for k in SURFACE_KEYS},
        "seconds": times, "shapes": shapes,
    }


def _fit_seconds(run_dir: Path) -> float:
    import csv

    log = run_dir / "log.csv"
    if not log.is_file():
        return float("nan")
    with open(log, newline="") as f:
        rows = list(csv.DictReader(f))
    return float(rows[-1]["seconds"]) if rows else float("nan")


def write_decoder_report(run_dir: Path, metrics: dict, cfg: EvalConfig,
                         store: ShapeStore) -> tuple[Path, Path]:
    """RUN/report.md|html: the Table 3 summary, then per split a table and thumbnails, worst first."""
    import trimesh

    from .gallery import contact_sheet, thumbnail
    from .report import Figure, Section, Table, sorted_rows, write_report

    summary = [f"preset {metrics['preset']}, {metrics['n_train_latents']} training latents, fit "
               f"{metrics['fit_seconds']:.0f} s; latent pairwise cosine "
               f"{metrics['latent_pairwise_cosine']:.3f}"]
    for split, res in metrics["splits"].items():
        m = res["mean"]
        summary.append(f"{split}: {res['n']} shapes ({res['n_failed']} without a surface); SDF L1 mean "
                       f"{res['sdf_l1_mean']:.5f} max {res['sdf_l1_max']:.5f}; "
                       f"Chamfer-L1 {m['chamfer_l1']:.4f}, "
                       f"F@1% {m['fscore_1pct']:.3f}, F@2% {m['fscore_2pct']:.3f}, IoU {m['iou']:.3f}, "
                       f"normal consistency {m['normal_consistency']:.3f}")
    loss = [Figure(run_dir / "loss.png", "training loss")] if (run_dir / "loss.png").is_file() else []
    sections = [Section("Summary (paper Table 3 and surface metrics)", "\n".join(summary), figures=loss)]
    columns = ["obj_idx", "category", "sdf_l1", *SURFACE_KEYS, "error"]
    for split, res in metrics["splits"].items():
        table = Table(columns, res["shapes"], sort_by="chamfer_l1")
        figures = []
        for row in sorted_rows(table)[: cfg.pictures]:
            gt = thumbnail(store.load_mesh(row["obj_idx"]), cfg.thumb_size)
            pred = (thumbnail(trimesh.load(run_dir / row["mesh"], force="mesh"), cfg.thumb_size)
                    if "mesh" in row else np.zeros_like(gt))
            caption = f"{shape_name(row['obj_idx'])} {row['category']}: " + (
                f"Chamfer-L1 {row['chamfer_l1']:.4f}, F@1% {row['fscore_1pct']:.2f}" if "mesh" in row
                else "no surface")
            figures.append(Figure(contact_sheet([pred, gt], ["decoded", "ground truth"]), caption))
        title = "Train recall" if split == "train" else f"{split} (reconstructed, decoder frozen)"
        sections.append(Section(f"{title}: worst Chamfer-L1 first", table=table, figures=figures))
    return write_report(run_dir, f"DeepSDF auto-decoder: {run_dir.name}", sections)
