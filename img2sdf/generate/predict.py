"""A DiT run's prediction for its training shapes from their own cached views (paper §3.3, §6.2).

Both DiTs (latent §6.1, weight space §3.2) are sampled the same way here: the first K cached views of the
shape with their known poses, DDIM from seeded noise, unstandardised back to the target's raw space. This is
what ``mesh WRUN --shape I`` meshes and what ``diagnose timesteps|ranking`` scores.
"""

from __future__ import annotations

import numpy as np
import torch

from ..runs.load import DiTRun
from ..runs.pairs import PairedViews


def target_dim(run: DiTRun) -> int:
    """Length of the DiT's target: MLP weights (§3.2) or a latent (§6.1, or an AE latent for Family B)."""
    return run.model.weight_mean.shape[0] if hasattr(run.model, "weight_mean") else run.model.cfg.latent_dim


@torch.no_grad()
def sample_targets(run: DiTRun, features, poses=None, seed: int = 0, steps: int | None = None,
                   noise: torch.Tensor | None = None, view_mask=None, eta: float = 0.0,
                   guidance: float = 0.0) -> torch.Tensor:
    """DDIM for a batch of inputs, either DiT: features [B, K, D] (+ poses [B, K, 4, 4] or None: unknown
    pose, the photo path; ``view_mask`` [B, K] marks real views) → raw targets [B, L] on the CPU (latents
    §6.1, MLP weights §3.2, AE latents §4); the starting noise is ``noise`` [B, L] if given, else drawn from
    ``seed``; ``eta`` > 0 is stochastic DDIM, ``guidance`` > 0 classifier-free guidance (the paper: 0, 0)."""
    device = run.model.feature_mean.device

    def tensor(a, dtype):  # tensors on any device, arrays, or lists of arrays (np.asarray: one copy)
        if a is None:
            return None
        return torch.as_tensor(a if isinstance(a, torch.Tensor) else np.asarray(a), dtype=dtype).to(device)

    features, poses, view_mask = (tensor(features, torch.float32), tensor(poses, torch.float32),
                                  tensor(view_mask, torch.bool))
    denoise = run.model.denoiser(features, poses, view_mask, guidance=guidance)
    x = run.diffusion.ddim_sample(denoise, (features.shape[0], target_dim(run)),
                                  steps=steps or run.config.sample_steps, eta=eta,
                                  generator=torch.Generator().manual_seed(seed),
                                  noise=None if noise is None else noise.to(device), device=device)
    return run.model.unstandardise(x).cpu()


def predict_from_views(run: DiTRun, pairs: PairedViews, rows: list[int], views: int = 8, seed: int = 0,
                       steps: int | None = None, batch: int = 16) -> torch.Tensor:
    """Raw predictions [len(rows), L] for rows ``rows`` of ``pairs`` (row = index into ``pairs.obj_idx``)
    from their first ``views`` cached views with known poses; a row's noise does not depend on batching."""
    k = min(views, pairs.features.shape[1])
    noise = torch.randn(len(rows), target_dim(run), generator=torch.Generator().manual_seed(seed))
    out = []
    for s in range(0, len(rows), batch):
        r = torch.as_tensor(rows[s:s + batch])
        out.append(sample_targets(run, pairs.features[r, :k], pairs.poses[r, :k], steps=steps,
                                  noise=noise[s:s + batch]))
    return torch.cat(out)
