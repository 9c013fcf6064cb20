"""A DiT run's prediction for a training shape from that shape's own cached views (paper §3.3, §6.2).

Both DiTs (latent §6.1, weight space §3.2) are sampled the same way: the first K cached views of the shape
with their known poses, DDIM from seeded noise, unstandardised back to the target's raw space. This is what
``mesh WRUN --shape I`` meshes and what ``diagnose ranking`` ranks.
"""

from __future__ import annotations

import torch

from ..train.train_dit import DiTRun, PairedViews


def predict_from_views(run: DiTRun, pairs: PairedViews, rows: list[int], views: int = 8, seed: int = 0,
                       steps: int | None = None, batch: int = 16) -> torch.Tensor:
    """Raw predictions [len(rows), L] for training rows ``rows`` of ``pairs`` (row = index into obj_idx)."""
    k = min(views, pairs.features.shape[1])
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn(len(rows), pairs.latents.shape[1], generator=gen)  # independent of the batching
    out = []
    for s in range(0, len(rows), batch):
        r = torch.as_tensor(rows[s:s + batch])
        feats, poses = pairs.features[r, :k].float(), pairs.poses[r, :k].float()
        with torch.no_grad():
            x = run.diffusion.ddim_sample(run.model.denoiser(feats, poses), tuple(noise[s:s + batch].shape),
                                          steps=steps or run.config.sample_steps, noise=noise[s:s + batch])
            out.append(run.model.unstandardise(x))
    return torch.cat(out)
