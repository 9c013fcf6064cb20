"""The transformer trunk shared by both image-conditioned DiTs (latent §6.1, weight space §3.2).

Each :class:`DiTBlock` runs self-attention among the model's tokens, cross-attention to the view tokens and a
feed-forward layer; self-attention and feed-forward are AdaLN-Zero modulated by the timestep embedding (DiT,
Peebles & Xie 2023). A view token is concat(encoder feature, 64-dim sinusoidal pose) → Linear → d_model; 1-8
views per item with a key-padding mask; a learned null view is the "no image" condition of cfg dropout.
:class:`ViewConditionedDiT` holds everything but the tokeniser: a subclass maps its target to tokens
[B, T, d] and back, and calls :meth:`~ViewConditionedDiT.trunk` in between.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .diffusion import Denoiser
from .pose import POSE_DIM, PoseEmbedding


def timestep_features(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal features of integer timesteps [B] → [B, dim] (Transformer / DiT convention)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs
    return torch.cat([args.cos(), args.sin()], dim=-1)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
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
        # x [B, T, d] target tokens; c [B, d] timestep embedding; views [B, K, d];
        # pad_mask [B, K] True = pad, or None (no padding)
        shift1, scale1, gate1, shift2, scale2, gate2 = self.ada(c).chunk(6, dim=-1)
        h = modulate(self.norm1(x), shift1, scale1)
        x = x + gate1[:, None] * self.self_attn(h, h, h, need_weights=False)[0]
        h = self.norm2(x)
        x = x + self.cross_attn(h, views, views, key_padding_mask=pad_mask, need_weights=False)[0]
        return x + gate2[:, None] * self.mlp(modulate(self.norm3(x), shift2, scale2))


class ViewConditionedDiT(nn.Module):
    """f(x_t, t, c) → x̂_0 with c = {features_k, pose_k}, k = 1..K (eq. 4); the tokeniser is the subclass's.

    A subclass calls :meth:`build_trunk` from its ``__init__`` (between its input and output projections, so
    parameter initialisation order, and with it a seeded model, does not change) and implements
    :meth:`forward` as tokens → :meth:`trunk` → target. Both keep their target's per-dimension standardisation
    as buffers (``standardise`` / ``unstandardise``); the view-feature mean/std buffers are here.
    """

    def build_trunk(self, cfg) -> None:
        """cfg: d_model, layers, heads, mlp_ratio, time_freq_dim, feature_dim."""
        d = cfg.d_model
        self.time_mlp = nn.Sequential(nn.Linear(cfg.time_freq_dim, d), nn.SiLU(), nn.Linear(d, d))
        self.pose = PoseEmbedding()
        self.view_in = nn.Linear(cfg.feature_dim + POSE_DIM, d)
        self.null_view = nn.Parameter(torch.randn(d) * 0.02)  # the "no image" condition for cfg dropout
        self.blocks = nn.ModuleList(DiTBlock(d, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.layers))
        self.final_norm = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.final_ada = nn.Sequential(nn.SiLU(), nn.Linear(d, 2 * d))
        nn.init.zeros_(self.final_ada[1].weight)
        nn.init.zeros_(self.final_ada[1].bias)
        self.register_buffer("feature_mean", torch.zeros(cfg.feature_dim))
        self.register_buffer("feature_std", torch.ones(cfg.feature_dim))

    def set_feature_statistics(self, features: torch.Tensor) -> None:
        """Per-dimension mean/std of the training view features [M, D]."""
        self.feature_mean.copy_(features.mean(0))
        self.feature_std.copy_(features.std(0).clamp_min(1e-6))

    def view_tokens(self, features, poses=None, view_mask=None, pose_known=None, drop_cond=None):
        """features [B, K, D] (raw encoder output), poses [B, K, 4, 4] or None (unknown) → tokens [B, K, d]
        and the padding mask [B, K] (True = pad; None when every view is real)."""
        b, k, _ = features.shape
        all_views = view_mask is None and drop_cond is None  # no padding: attention needs no mask
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
        # key_padding_mask=None also skips torch's mask check, whose first call imports sympy
        # (0.6 s of a cold start here)
        return tokens, None if all_views else ~view_mask

    def trunk(self, x, t, features, poses=None, view_mask=None, pose_known=None, drop_cond=None):
        """Target tokens x [B, T, d] at timesteps t [B] → output tokens [B, T, d] (final AdaLN applied)."""
        views, pad_mask = self.view_tokens(features, poses, view_mask, pose_known, drop_cond)
        c = self.time_mlp(timestep_features(t, self.cfg.time_freq_dim))
        for block in self.blocks:
            x = block(x, c, views, pad_mask)
        shift, scale = self.final_ada(c).chunk(2, dim=-1)
        return modulate(self.final_norm(x), shift, scale)

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
    """Number of parameters (the paper's "~1.95 M", "~132 M" checks)."""
    return sum(p.numel() for p in model.parameters())
