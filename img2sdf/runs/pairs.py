"""A DiT's training pairs: each training shape's target vector with that shape's cached views and poses.

The target is the shape's auto-decoder latent (the latent DiT, §6.1) or its fitted MLP's flat weights (the
weight-space DiT, §3.2); the views are the store's encoded renders or photo pool (``encode --views``).
:func:`load_run_pairs` rebuilds the pairs a finished DiT run was trained on from its config.json, which is
what ``diagnose timesteps|ranking`` and ``mesh WRUN`` score.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError


@dataclass
class PairedViews:
    """Training pairs: target row i (``latents``: a latent or a weight vector) ↔ the cached views of shape
    ``obj_idx[i]``."""

    latents: torch.Tensor  # [N, L] float32: latents (L = 64) or flat MLP weights (L = 54,785)
    features: torch.Tensor  # [N, V, D] (float16 is fine: cast per batch)
    poses: torch.Tensor  # [N, V, 4, 4] camera-to-world
    obj_idx: list[int]

    def sample_batch(self, batch: int, min_views: int, max_views: int, gen: torch.Generator):
        """rows [B], features [B, K, D], poses [B, K, 4, 4], view_mask [B, K] (K = max_views)."""
        n, v = self.features.shape[:2]
        k = min(max_views, v)
        rows = torch.randint(0, n, (batch,), generator=gen)
        counts = torch.randint(min(min_views, k), k + 1, (batch,), generator=gen)
        views = torch.rand(batch, v, generator=gen).argsort(dim=1)[:, :k]  # distinct random views per item
        feats = self.features[rows[:, None], views].float()
        poses = self.poses[rows[:, None], views].float()
        mask = torch.arange(k)[None] < counts[:, None]
        return rows, feats, poses, mask

    def to(self, device: torch.device) -> PairedViews:
        """Resident on ``device``: a batch is gathered there, with no per-step host → device copy of data."""
        return dataclasses.replace(self, latents=self.latents.to(device), features=self.features.to(device),
                                   poses=self.poses.to(device))


def paired_views(data_root: str | Path, targets: torch.Tensor, obj_idx: list[int], encoder: str,
                 views: str = "renders", pool_groups: tuple[str, ...] | None = None) -> PairedViews:
    """Targets [N, L] (row i ↔ ``obj_idx[i]``) with the store's cached features and poses of those shapes;
    ``views="photo"``: the photo pool (``encode --views photo``), optionally only some of its groups
    (:func:`~img2sdf.encoders.cache.pool_indices`)."""
    from ..data.store import ShapeStore, shape_name
    from ..encoders.cache import POOL_GROUPS, feature_set, pool_indices

    store = ShapeStore(data_root)
    name = feature_set(encoder, views)
    if not store.features_path(name).is_file():
        flag = " --views photo" if views == "photo" else ""
        raise UserError(f"{store.features_path(name)}: missing; run `img2sdf encode {data_root} --encoder "
                        f"{encoder}{flag}`")
    features, poses, meta = store.load_features(name)
    obj_idx = [int(i) for i in obj_idx]
    filled = meta.get("filled") or [bool(np.any(row)) for row in features]
    missing = [i for i in obj_idx if i >= len(filled) or not filled[i]]
    if missing:
        raise UserError(f"{store.features_path(name)}: no features for {len(missing)} training shapes "
                        f"(e.g. {shape_name(missing[0])}); "
                        f"run `img2sdf encode {data_root} --encoder {encoder} --views {views}`")
    cols = pool_indices(meta, tuple(pool_groups or POOL_GROUPS))
    rows = np.asarray(obj_idx)[:, None]
    return PairedViews(
        latents=targets.detach().float().cpu(),
        features=torch.from_numpy(np.ascontiguousarray(features[rows, cols[None]])),
        poses=torch.from_numpy(np.ascontiguousarray(poses[rows, cols[None]])).float(),
        obj_idx=obj_idx,
    )


def load_training_pairs(data_root: str | Path, decoder_run: str | Path, encoder: str,
                        views: str = "renders", pool_groups: tuple[str, ...] | None = None) -> PairedViews:
    """The auto-decoder run's latents paired with the same shapes' cached views (§6.1)."""
    from .load import load_decoder_run

    run = load_decoder_run(decoder_run)
    return paired_views(data_root, torch.as_tensor(run.latents), run.obj_idx, encoder, views, pool_groups)


def load_weight_pairs(data_root: str | Path, mlp_run: str | Path, encoder: str,
                      views: str = "renders", pool_groups: tuple[str, ...] | None = None) -> PairedViews:
    """The fit-mlps run's flat MLP weights [N, 54,785] paired with the same shapes' cached views (§3.2)."""
    from .load import load_mlp_run

    run = load_mlp_run(mlp_run)
    return paired_views(data_root, run.weights, run.obj_idx, encoder, views, pool_groups)


def load_wae_pairs(data_root: str | Path, wae_run: str | Path, encoder: str,
                   views: str = "renders", pool_groups: tuple[str, ...] | None = None) -> PairedViews:
    """A weight-AE run's latents (Family B's image-conditioned stage, §4) paired with the shapes' views."""
    from safetensors import safe_open

    path = Path(wae_run) / "latents.safetensors"
    if not path.is_file():
        raise UserError(f"{wae_run}: no latents.safetensors; finish `img2sdf train-wae` first")
    with safe_open(path, "pt") as f:
        obj_idx = [int(i) for i in f.metadata()["obj_idx"].split(",")]
        latents = f.get_tensor("latents")
    return paired_views(data_root, latents, obj_idx, encoder, views, pool_groups)


def load_run_pairs(run) -> PairedViews:
    """The pairs a loaded :class:`~img2sdf.runs.load.DiTRun` was trained on, rebuilt from its config.json."""
    info = run.info
    groups = tuple(info.get("pool_groups") or ()) or None
    views = info.get("views", "renders")
    if "encoder" not in info:
        raise UserError(f"{run.path}/config.json: no encoder recorded; cannot rebuild its training pairs")
    if run.kind == "train-wdit":
        return load_weight_pairs(info["data_root"], info["mlp_run"], info["encoder"], views, groups)
    if "wae_run" in info:  # a latent DiT on a weight AE's latents (Family B)
        return load_wae_pairs(info["data_root"], info["wae_run"], info["encoder"], views, groups)
    return load_training_pairs(info["data_root"], info["decoder_run"], info["encoder"], views, groups)
