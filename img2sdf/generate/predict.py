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
from . import PICKS


def target_dim(run: DiTRun) -> int:
    """Length of the DiT's target: MLP weights (§3.2) or a latent (§6.1, or an AE latent for Family B)."""
    return run.model.weight_mean.shape[0] if hasattr(run.model, "weight_mean") else run.model.cfg.latent_dim


@torch.no_grad()
def sample_targets(run: DiTRun, features, poses=None, seed: int = 0, steps: int | None = None,
                   noise: torch.Tensor | None = None, view_mask=None, eta: float = 0.0,
                   guidance: float = 0.0, samples: int = 1, pick: str = "medoid") -> torch.Tensor:
    """DDIM for a batch of inputs, either DiT: features [B, K, D] (+ poses [B, K, 4, 4] or None: unknown
    pose, the photo path; ``view_mask`` [B, K] marks real views) → raw targets [B, L] on the CPU (latents
    §6.1, MLP weights §3.2, AE latents §4); the starting noise is ``noise`` [B, L] if given, else drawn from
    ``seed``; ``eta`` > 0 is stochastic DDIM, ``guidance`` > 0 classifier-free guidance (the paper: 0, 0).

    ``samples`` > 1 draws that many samples per input in one batched DDIM run (the first is the
    ``samples=1`` result) and returns, by ``pick``, the ``mean`` (a Monte-Carlo posterior mean: the best
    Chamfer on average, but when the views leave the shape ambiguous it blends unlike shapes into a broken
    one) or the ``medoid``, the sample nearest that mean in the DiT's standardised space: a real sample,
    most of the mean's gain (README, measured)."""
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    if pick not in PICKS:
        raise ValueError(f"pick {pick!r}: choose one of {', '.join(PICKS)}")
    if noise is not None and samples != 1:
        raise ValueError("pass either noise or samples > 1, not both")
    device = run.model.feature_mean.device

    def tensor(a, dtype):  # tensors on any device, arrays, or lists of arrays (np.asarray: one copy)
        if a is None:
            return None
        return torch.as_tensor(a if isinstance(a, torch.Tensor) else np.asarray(a), dtype=dtype).to(device)

    def repeat(a):  # [B, ...] → [S * B, ...], sample-major: rows s * B .. s * B + B - 1 are sample s
        return None if a is None else a.repeat(samples, *([1] * (a.dim() - 1)))

    features, poses, view_mask = (tensor(features, torch.float32), tensor(poses, torch.float32),
                                  tensor(view_mask, torch.bool))
    batch = features.shape[0]
    denoise = run.model.denoiser(repeat(features), repeat(poses), repeat(view_mask), guidance=guidance)
    x = run.diffusion.ddim_sample(denoise, (samples * batch, target_dim(run)),
                                  steps=steps or run.config.sample_steps, eta=eta,
                                  generator=torch.Generator().manual_seed(seed),
                                  noise=None if noise is None else noise.to(device), device=device)
    x = x.view(samples, batch, -1)
    mean = x.mean(0)
    if pick == "mean":
        x = mean
    else:
        nearest = (x - mean).pow(2).sum(-1).argmin(0)  # [B]: which sample
        x = x[nearest, torch.arange(batch, device=x.device)]
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
