"""Score a weight-autoencoder run (Family B) the two ways the paper does: by the numbers an AE optimises
(§4.1: raw-weight MSE, cos(rec, true), latent vs weight pairwise cosine) and by the meshes of the
reconstructed MLPs (§4.2), beside the fitted MLPs' own meshes. Writes ``ARUN/metrics.json``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..data.store import ShapeStore
from ..io import write_json
from ..runs.load import load_wae_run
from .decoder_eval import latent_pairwise_cosine
from .metrics import METRIC_PROTOCOL
from .weight_meshes import score_weight_meshes, summarise

# §4.1 (976 anchor-initialised MLPs), latent 128 / 256
PAPER_AE = {
    "128": {"weight_mse": 2.28e-5, "cos_rec_true_mean": 0.9965, "cos_rec_true_min": 0.9921,
            "latent_pairwise_cos": 0.07, "weight_pairwise_cos": 0.96},
    "256": {"weight_mse": 2.24e-5, "cos_rec_true_mean": 0.9966, "cos_rec_true_min": 0.9920,
            "latent_pairwise_cos": 0.07, "weight_pairwise_cos": 0.96},
}


def evaluate_wae(run_dir: str | Path, meshes: bool = True, progress: bool = True) -> dict:
    """§4.1's numbers for every training shape and, with ``meshes``, §4.2's: each reconstruction (and each
    fitted MLP, for reference) meshed at the run's ``mesh_resolution`` and scored against the ground truth."""
    run = load_wae_run(run_dir)
    true = run.mlps.weights.float()
    with torch.no_grad():
        z = run.model.encode(true)
        rec = run.model.decode(z)
    cos = torch.nn.functional.cosine_similarity(rec.double(), true.double(), dim=1)
    cfg = run.config
    metrics: dict = {
        "run": str(run.run_dir), "preset": cfg.preset, "latent_dim": cfg.model.latent_dim,
        "n_shapes": len(run.obj_idx),
        "weight_mse": float((rec - true).pow(2).mean()),
        "cos_rec_true_mean": float(cos.mean()), "cos_rec_true_min": float(cos.min()),
        "latent_pairwise_cos": latent_pairwise_cosine(z),
        "weight_pairwise_cos": latent_pairwise_cosine(true),
        "paper": PAPER_AE.get(str(cfg.model.latent_dim)),
        "per_shape": [{"obj_idx": i, "cos_rec_true": float(c)}
                      for i, c in zip(run.obj_idx, cos, strict=True)],
    }
    if meshes:
        store = ShapeStore(run.mlps.data_root)
        res, pts, mlp = cfg.mesh_resolution, cfg.mesh_points, cfg.model.mlp
        recon = score_weight_meshes(rec, run.obj_idx, store, mlp, res, pts, run.run_dir / "meshes", progress,
                                    "mesh reconstructions")
        fitted = score_weight_meshes(true, run.obj_idx, store, mlp, res, pts, None, progress,
                                     "mesh fitted MLPs")
        for row, r, f in zip(metrics["per_shape"], recon, fitted, strict=True):
            row["reconstructed"] = {k: v for k, v in r.items() if k != "obj_idx"}
            row["fitted"] = {k: v for k, v in f.items() if k != "obj_idx"}
        metrics["meshes"] = {"reconstructed": summarise(recon), "fitted": summarise(fitted)}
        metrics["protocol"] = {**METRIC_PROTOCOL, "surface_points_per_mesh": pts, "iou_points": pts,
                               "mesh_resolution": res}
    write_json(run.run_dir / "metrics.json", metrics)
    return metrics
