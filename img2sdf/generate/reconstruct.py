"""Auto-decoder inference: fit a latent to an unseen shape's SDF samples with the decoder frozen (§5.1).

The same objective as training (eq. 5) is minimised over z alone: clamped L1 on random batches of the
shape's samples plus a latent-norm penalty, Adam with a cosine-decayed learning rate. The start latent is
N(0, init_std²) as in training (or a given one); the penalty keeps z where the decoder was trained.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError


def reconstruct_latent(decoder: torch.nn.Module, points, sdf, steps: int = 600, lr: float = 5e-3,
                       n_points: int = 8192, clamp_delta: float = 0.1, latent_reg: float = 1e-5,
                       init: torch.Tensor | None = None, init_std: float = 0.01, seed: int = 0,
                       progress: bool = False) -> torch.Tensor:
    """Return the latent [D] that best explains ``sdf`` [N] at ``points`` [N, 3] under the frozen decoder.

    ``clamp_delta``, ``latent_reg`` and ``init_std`` should be the decoder run's own (fit's defaults here):
    pass ``**DecoderRun.reconstruct_settings()``."""
    from tqdm import tqdm

    device = next(decoder.parameters()).device
    pts = torch.as_tensor(np.asarray(points), dtype=torch.float32, device=device)
    sdf = torch.as_tensor(np.asarray(sdf), dtype=torch.float32, device=device)
    if pts.ndim != 2 or pts.shape[1] != 3 or sdf.shape != pts.shape[:1] or len(pts) == 0:
        raise UserError(f"reconstruct needs points [N, 3] and sdf [N]; got {tuple(pts.shape)} and "
                        f"{tuple(sdf.shape)}")
    gen = torch.Generator().manual_seed(seed)
    dim = decoder.config.latent_dim
    z0 = torch.randn(dim, generator=gen) * init_std if init is None else init.detach().reshape(dim).clone()
    z = z0.to(device).requires_grad_(True)
    opt = torch.optim.Adam([z], lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.1 + 0.45 * (1 + math.cos(math.pi * s / steps)))
    flags = [p.requires_grad for p in decoder.parameters()]
    decoder.requires_grad_(False)  # frozen: gradients flow to z only
    try:
        for _ in tqdm(range(steps), desc="reconstruct", disable=not progress, leave=False):
            idx = torch.randint(len(pts), (min(n_points, len(pts)),), generator=gen).to(device)
            pred = decoder(z.expand(len(idx), -1), pts[idx])
            d = clamp_delta
            l1 = (pred.clamp(-d, d) - sdf[idx].clamp(-d, d)).abs().mean()
            loss = l1 + latent_reg * z.pow(2).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    finally:
        for p, flag in zip(decoder.parameters(), flags, strict=True):
            p.requires_grad_(flag)
    return z.detach().cpu()


def load_target(path: str | Path, n_points: int = 200_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """SDF samples of a shape to reconstruct: an ``.npz`` from a store (points, sdf) or a mesh file, which is
    normalised to the unit sphere and sampled as in ``img2sdf prepare`` (§2.2; it should be watertight)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file; pass a mesh (.obj/.ply/.glb/.stl/.off) or an SDF .npz")
    if path.suffix.lower() == ".npz":
        with np.load(path) as z:
            if "points" not in z or "sdf" not in z:
                raise UserError(f"{path}: an SDF .npz needs arrays 'points' [N, 3] and 'sdf' [N]")
            return z["points"].astype(np.float32), z["sdf"].astype(np.float32)
    from ..data.sdf import sample_sdf
    from ..data.sources import load_mesh_file
    from ..data.watertight import ShapeError, normalise

    try:
        mesh = load_mesh_file(path)
    except ShapeError as e:
        raise UserError(f"{path}: {e}") from e
    mesh, _ = normalise(mesh)
    return sample_sdf(mesh, n_points=n_points, seed=seed)
