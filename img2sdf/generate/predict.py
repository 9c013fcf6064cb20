"""A DiT run's prediction for its training shapes from their own cached views (paper §3.3, §6.2).

Both DiTs (latent §6.1, weight space §3.2) are sampled the same way here: the first K cached views of the
shape with their known poses, DDIM from seeded noise, unstandardised back to the target's raw space. This is
what ``mesh WRUN --shape I`` meshes and what ``diagnose timesteps|ranking`` scores.
"""

from __future__ import annotations

import torch

from ..runs.load import DiTRun
from ..runs.pairs import PairedViews


@torch.no_grad()
def sample_targets(run: DiTRun, features, poses=None, seed: int = 0, steps: int | None = None
                   ) -> torch.Tensor:
    """DDIM for a batch of inputs, either DiT: features [B, K, D] (+ poses [B, K, 4, 4] or None: unknown
    pose, the photo path) → raw targets [B, L] on the CPU (latents §6.1, MLP weights §3.2, AE latents §4)."""
    device = run.model.feature_mean.device
    features = torch.as_tensor(features, dtype=torch.float32).to(device)
    poses = None if poses is None else torch.as_tensor(poses, dtype=torch.float32).to(device)
    dim = run.model.weight_mean.shape[0] if hasattr(run.model, "weight_mean") else run.model.cfg.latent_dim
    x = run.diffusion.ddim_sample(run.model.denoiser(features, poses), (features.shape[0], dim),
                                  steps=steps or run.config.sample_steps,
                                  generator=torch.Generator().manual_seed(seed), device=device)
    return run.model.unstandardise(x).cpu()


def predict_from_views(run: DiTRun, pairs: PairedViews, rows: list[int], views: int = 8, seed: int = 0,
                       steps: int | None = None, batch: int = 16) -> torch.Tensor:
    """Raw predictions [len(rows), L] for rows ``rows`` of ``pairs`` (row = index into ``pairs.obj_idx``);
    the noise of a row does not depend on the batching. Runs where the model is; returns CPU tensors."""
    device = run.model.feature_mean.device
    k = min(views, pairs.features.shape[1])
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn(len(rows), pairs.latents.shape[1], generator=gen)
    out = []
    for s in range(0, len(rows), batch):
        r = torch.as_tensor(rows[s:s + batch])
        feats = pairs.features[r, :k].float().to(device)
        poses = pairs.poses[r, :k].float().to(device)
        with torch.no_grad():
            x = run.diffusion.ddim_sample(run.model.denoiser(feats, poses), tuple(noise[s:s + batch].shape),
                                          steps=steps or run.config.sample_steps,
                                          noise=noise[s:s + batch].to(device))
            out.append(run.model.unstandardise(x).cpu())
    return torch.cat(out)
