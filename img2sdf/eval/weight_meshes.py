"""Score per-shape MLP weight vectors by their meshes (paper §4.2, §4.3): θ → MLP → marching cubes →
surface metrics against the ground-truth mesh (eval/metrics.py's protocol).

§4.3's lesson is that aggregate weight-space error is a poor proxy for shape quality, so every weight
vector a family produces (fitted: Family A phase 1; AE-reconstructed: B; DiT-predicted: A) is scored here
the same way; a field without a zero crossing is recorded as a failure, not dropped.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..data.store import ShapeStore, shape_name
from ..errors import UserError
from ..generate.mesh import mesh_sdf
from ..io import write_mesh
from ..models.mlp import PAPER_MLP, MLPConfig, mlp_sdf_fn
from .metrics import surface_metrics

KEYS = ("chamfer_l1", "fscore_1pct", "iou")


def score_weight_meshes(weights: torch.Tensor, obj_idx: list[int], store: ShapeStore,
                        mlp: MLPConfig = PAPER_MLP, resolution: int = 128, n_points: int = 100_000,
                        mesh_dir: Path | None = None, progress: bool = False, desc: str = "mesh"
                        ) -> list[dict]:
    """Per row of ``weights`` [N, D] (↔ ``obj_idx``): surface metrics of its mesh against the shape's
    ground truth, or ``{"error": ...}`` when its field has no surface; meshes go to ``mesh_dir`` if given."""
    from tqdm import tqdm

    rows = []
    for w, i in tqdm(list(zip(weights, obj_idx, strict=True)), desc=desc, disable=not progress):
        row: dict = {"obj_idx": int(i)}
        try:
            mesh = mesh_sdf(mlp_sdf_fn(w, mlp), resolution)
        except UserError as e:
            rows.append({**row, "error": str(e)})
            continue
        if mesh_dir is not None:
            write_mesh(Path(mesh_dir) / f"{shape_name(int(i))}.ply", mesh)
        row.update(surface_metrics(mesh, store.load_mesh(int(i)), n_points))
        rows.append(row)
    return rows


def summarise(rows: list[dict]) -> dict:
    """Means over the shapes that meshed, and how many did not."""
    ok = [r for r in rows if "error" not in r]
    return {"n": len(rows), "n_failed": len(rows) - len(ok),
            **{f"{k}_mean": float(np.mean([r[k] for r in ok])) if ok else float("nan") for k in KEYS},
            "chamfer_l1_max": float(np.max([r["chamfer_l1"] for r in ok])) if ok else float("nan")}
