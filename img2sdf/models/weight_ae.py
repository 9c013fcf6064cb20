"""The weight-space autoencoder of Family B (paper §4.1): flat MLP weights ↔ a 128- or 256-dim latent.

It encodes the residual θ − θ̄ from the population mean: 54,785 → 1024 → 1024 → 1024 → latent, and the
decoder mirrors it (latent → 1024 → 1024 → 1024 → 54,785); ReLU between layers (the paper names no
activation). The residuals of a warm-started population are tiny (per-dimension std ≈ 1e-3, §3.6), so they are
divided by one global scale (their RMS over the training set) — a single scalar, not a per-dimension
standardisation, which would amplify the near-constant dimensions (§3.5). Mean and scale are buffers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from .mlp import PAPER_MLP, MLPConfig


@dataclass
class WeightAEConfig:
    mlp: MLPConfig = field(default_factory=lambda: PAPER_MLP)  # the MLP whose θ is encoded (§3.1)
    hidden: tuple[int, ...] = (1024, 1024, 1024)  # §4.1
    latent_dim: int = 128  # §4.1: 128 or 256


def _mlp(dims: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for k, (i, o) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
        layers.append(nn.Linear(i, o))
        if k < len(dims) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class WeightAE(nn.Module):
    """encode(θ [B, D]) → z [B, latent]; decode(z) → θ̂ [B, D] (raw weights, mean added back)."""

    def __init__(self, cfg: WeightAEConfig):
        super().__init__()
        self.cfg = cfg
        dims = [cfg.mlp.n_params, *cfg.hidden, cfg.latent_dim]
        self.encoder = _mlp(dims)
        self.decoder = _mlp(dims[::-1])
        self.register_buffer("weight_mean", torch.zeros(cfg.mlp.n_params))
        self.register_buffer("residual_scale", torch.ones(()))

    def set_statistics(self, weights: torch.Tensor) -> None:
        """Population mean [D] and the RMS of the residuals of the training weights [N, D]."""
        self.weight_mean.copy_(weights.mean(0))
        self.residual_scale.copy_((weights - self.weight_mean).pow(2).mean().sqrt().clamp_min(1e-12))

    def encode(self, weights: torch.Tensor) -> torch.Tensor:
        return self.encoder((weights - self.weight_mean) / self.residual_scale)

    def decode_residual(self, z: torch.Tensor) -> torch.Tensor:
        """The reconstructed residual in scaled units (what the loss compares)."""
        return self.decoder(z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z) * self.residual_scale + self.weight_mean

    def forward(self, weights: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(weights))
