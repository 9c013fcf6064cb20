"""Image-conditioned latent diffusion transformer (paper §6.1): views + poses → a 64-dim DeepSDF latent.

The noisy latent x_t is ONE token projected to d_model; the blocks (models/blocks.py, shared with the
weight-space DiT) run self-attention over that single token — effectively a learned linear map, kept as in
the paper —, cross-attention to the view tokens and a feed-forward layer, AdaLN-Zero on the timestep.
The network predicts x_0 (eq. 4) in standardised latent space;
the per-dimension latent mean/std and the feature mean/std are buffers, so they travel with the weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .blocks import ViewConditionedDiT, count_parameters

__all__ = ["DIT_PRESETS", "DiTConfig", "LatentDiT", "count_parameters"]


@dataclass
class DiTConfig:
    latent_dim: int = 64  # §5.2
    feature_dim: int = 768  # DINOv2-base CLS (§2.3); set from the encoder at training time
    d_model: int = 384  # §6.1
    layers: int = 4  # §6.1
    heads: int = 6  # §6.1
    mlp_ratio: float = 2.0  # not given in the paper; 2 lands the paper preset at ~10 M parameters
    time_freq_dim: int = 256  # sinusoidal timestep features before the MLP (DiT default)


DIT_PRESETS = {
    # CPU: trains on 64 shapes in a few minutes
    "tiny": DiTConfig(d_model=128, layers=2, heads=4, mlp_ratio=2.0, time_freq_dim=64),
    "paper": DiTConfig(),
}


class LatentDiT(ViewConditionedDiT):
    """f_DiT(x_t, t, c) → x̂_0 for standardised 64-dim latents, c = {features_k, pose_k}, k = 1..K (eq. 4);
    the tokeniser is one Linear in and one out around the shared trunk."""

    def __init__(self, cfg: DiTConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.latent_in = nn.Linear(cfg.latent_dim, d)
        self.build_trunk(cfg)
        self.latent_out = nn.Linear(d, cfg.latent_dim)
        nn.init.zeros_(self.latent_out.weight)  # start by predicting x̂_0 = 0, the latent mean
        nn.init.zeros_(self.latent_out.bias)
        self.register_buffer("latent_mean", torch.zeros(cfg.latent_dim))
        self.register_buffer("latent_std", torch.ones(cfg.latent_dim))

    # standardisation (§6.1) ----------------------------------------------------------------------
    def set_statistics(self, latents: torch.Tensor, features: torch.Tensor) -> None:
        """Per-dimension mean/std of the training latents [N, 64] and view features [M, D]."""
        self.latent_mean.copy_(latents.mean(0))
        self.latent_std.copy_(latents.std(0).clamp_min(1e-6))
        self.set_feature_statistics(features)

    def standardise(self, z: torch.Tensor) -> torch.Tensor:
        return (z - self.latent_mean) / self.latent_std

    def unstandardise(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.latent_std + self.latent_mean

    def forward(self, x_t, t, features, poses=None, view_mask=None, pose_known=None, drop_cond=None):
        """x_t [B, 64] standardised noisy latent, t [B] long → x̂_0 [B, 64] (standardised)."""
        x = self.latent_in(x_t)[:, None]  # [B, 1, d]
        return self.latent_out(self.trunk(x, t, features, poses, view_mask, pose_known, drop_cond))[:, 0]
