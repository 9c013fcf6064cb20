"""Image-conditioned latent diffusion transformer (paper §6.1): views + poses → a 64-dim DeepSDF latent.

The noisy latent x_t is ONE token projected to d_model. Each block runs self-attention (over that single
token — effectively a learned linear map, kept as in the paper), cross-attention to the view tokens, and a
feed-forward layer; self-attention and feed-forward are AdaLN-Zero modulated by the timestep embedding
(DiT, Peebles & Xie 2023). A view token is concat(encoder CLS, 64-dim pose embedding) → Linear → d_model;
1-8 views per item with a key-padding mask. The network predicts x_0 (eq. 4) in standardised latent space;
the per-dimension latent mean/std and the feature mean/std are buffers, so they travel with the weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .diffusion import Denoiser
from .pose import POSE_DIM, PoseEmbedding


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


def timestep_features(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal features of integer timesteps [B] → [B, dim] (Transformer / DiT convention)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs
    return torch.cat([args.cos(), args.sin()], dim=-1)


def _modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale[:, None]) + shift[:, None]


class DiTBlock(nn.Module):
    """Self-attention, cross-attention to views, feed-forward; AdaLN-Zero on the first and last."""

    def __init__(self, d: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.self_attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(d, eps=1e-6)
        self.cross_attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.norm3 = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        hidden = int(d * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(d, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, d))
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(d, 6 * d))
        nn.init.zeros_(self.ada[1].weight)  # AdaLN-Zero: every block starts as the identity
        nn.init.zeros_(self.ada[1].bias)

    def forward(self, x, c, views, pad_mask):
        # x [B, 1, d] latent token; c [B, d] timestep embedding; views [B, K, d]; pad_mask [B, K] True = pad
        shift1, scale1, gate1, shift2, scale2, gate2 = self.ada(c).chunk(6, dim=-1)
        h = _modulate(self.norm1(x), shift1, scale1)
        x = x + gate1[:, None] * self.self_attn(h, h, h, need_weights=False)[0]
        h = self.norm2(x)
        x = x + self.cross_attn(h, views, views, key_padding_mask=pad_mask, need_weights=False)[0]
        return x + gate2[:, None] * self.mlp(_modulate(self.norm3(x), shift2, scale2))


class LatentDiT(nn.Module):
    """f_DiT(x_t, t, c) → x̂_0 for standardised 64-dim latents, c = {features_k, pose_k}, k = 1..K (eq. 4)."""

    def __init__(self, cfg: DiTConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.latent_in = nn.Linear(cfg.latent_dim, d)
        self.time_mlp = nn.Sequential(nn.Linear(cfg.time_freq_dim, d), nn.SiLU(), nn.Linear(d, d))
        self.pose = PoseEmbedding()
        self.view_in = nn.Linear(cfg.feature_dim + POSE_DIM, d)
        self.null_view = nn.Parameter(torch.randn(d) * 0.02)  # the "no image" condition for cfg dropout
        self.blocks = nn.ModuleList(DiTBlock(d, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.layers))
        self.final_norm = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.final_ada = nn.Sequential(nn.SiLU(), nn.Linear(d, 2 * d))
        self.latent_out = nn.Linear(d, cfg.latent_dim)
        for layer in (self.final_ada[1], self.latent_out):  # start by predicting x̂_0 = 0, the latent mean
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        self.register_buffer("latent_mean", torch.zeros(cfg.latent_dim))
        self.register_buffer("latent_std", torch.ones(cfg.latent_dim))
        self.register_buffer("feature_mean", torch.zeros(cfg.feature_dim))
        self.register_buffer("feature_std", torch.ones(cfg.feature_dim))

    # standardisation (§6.1) ----------------------------------------------------------------------
    def set_statistics(self, latents: torch.Tensor, features: torch.Tensor) -> None:
        """Per-dimension mean/std of the training latents [N, 64] and view features [M, D]."""
        self.latent_mean.copy_(latents.mean(0))
        self.latent_std.copy_(latents.std(0).clamp_min(1e-6))
        self.feature_mean.copy_(features.mean(0))
        self.feature_std.copy_(features.std(0).clamp_min(1e-6))

    def standardise(self, z: torch.Tensor) -> torch.Tensor:
        return (z - self.latent_mean) / self.latent_std

    def unstandardise(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.latent_std + self.latent_mean

    # network -------------------------------------------------------------------------------------
    def view_tokens(self, features, poses=None, view_mask=None, pose_known=None, drop_cond=None):
        """features [B, K, D] (raw encoder output), poses [B, K, 4, 4] or None (unknown) → tokens, pad."""
        b, k, _ = features.shape
        if view_mask is None:
            view_mask = torch.ones(b, k, dtype=torch.bool, device=features.device)
        feats = (features.float() - self.feature_mean) / self.feature_std
        pose = self.pose(poses.float() if poses is not None else None, pose_known, shape=(b, k))
        tokens = self.view_in(torch.cat([feats, pose], dim=-1))  # [B, K, d]
        if drop_cond is not None:
            # a dropped condition is the single null view token
            first = torch.zeros(k, dtype=torch.bool, device=features.device)
            first[0] = True
            tokens = torch.where(drop_cond[:, None, None], self.null_view.expand_as(tokens), tokens)
            view_mask = torch.where(drop_cond[:, None], first.expand(b, k), view_mask)
        return tokens, ~view_mask

    def forward(self, x_t, t, features, poses=None, view_mask=None, pose_known=None, drop_cond=None):
        """x_t [B, 64] standardised noisy latent, t [B] long → x̂_0 [B, 64] (standardised)."""
        views, pad_mask = self.view_tokens(features, poses, view_mask, pose_known, drop_cond)
        c = self.time_mlp(timestep_features(t, self.cfg.time_freq_dim))
        x = self.latent_in(x_t)[:, None]  # [B, 1, d]
        for block in self.blocks:
            x = block(x, c, views, pad_mask)
        shift, scale = self.final_ada(c).chunk(2, dim=-1)
        return self.latent_out(_modulate(self.final_norm(x), shift, scale))[:, 0]

    def denoiser(self, features, poses=None, view_mask=None, pose_known=None,
                 guidance: float = 0.0) -> Denoiser:
        """The callable the DDIM sampler needs; guidance w > 0 adds classifier-free guidance,
        x̂_0 = x̂_0(c) + w (x̂_0(c) − x̂_0(∅)) (the paper uses w = 0)."""

        def predict(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            cond = self(x_t, t, features, poses, view_mask, pose_known)
            if guidance == 0:
                return cond
            drop = torch.ones(x_t.shape[0], dtype=torch.bool, device=x_t.device)
            uncond = self(x_t, t, features, poses, view_mask, pose_known, drop_cond=drop)
            return cond + guidance * (cond - uncond)

        return predict


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
