"""Image-conditioned weight-space diffusion transformer (paper §3.2, Family A): views + poses → the
54,785 weights of a per-shape ReLU+PE MLP (models/mlp.py).

The target x_0 is the flat weight vector θ, standardised per dimension (std clamped below at 1e-4, §3.5;
``standardise=False`` diffuses raw weights, Phase 8). Two tokenisers:

- ``chunk`` (the paper): θ padded to 8 × 6,849 and cut into 8 chunk tokens, each projected by one shared
  Linear(6,849 → d_model) plus a learned position embedding, and back by one shared Linear;
- ``layer`` (HyperDiffusion-style): one token per weight or bias tensor of the MLP (10 tokens), each with its
  own input and output Linear.

The tokens run through the trunk shared with the latent DiT (models/blocks.py): self-attention among the
weight tokens, cross-attention to the view tokens, AdaLN(-Zero) on t; the output is x̂_0 (eq. 4).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from .blocks import ViewConditionedDiT
from .mlp import PAPER_MLP, MLPConfig

TOKENISERS = ("chunk", "layer")


@dataclass
class WeightDiTConfig:
    mlp: MLPConfig = field(default_factory=lambda: PAPER_MLP)  # the MLP whose θ is generated (§3.1)
    tokens: str = "chunk"  # chunk (§3.2) | layer (one token per weight/bias tensor, HyperDiffusion)
    n_chunks: int = 8  # §3.2: 8 tokens of 6,849 (after padding)
    standardise: bool = True  # per-dimension standardisation (§3.2); False = raw weights (Phase 8)
    min_std: float = 1e-4  # §3.5: dimensions with std < 1e-4 are clamped before standardisation
    feature_dim: int = 768  # DINOv2-base CLS; set from the encoder at training time
    d_model: int = 768  # §3.2
    layers: int = 8  # §3.2
    heads: int = 12  # not given; 64 dims per head as in DiT
    # not given in the paper; 5.6 (hidden 4,300) lands the chunk tokeniser at the paper's ~132 M parameters
    # (§3.2, Figure 1); the layer tokeniser's ten own projections add ~74 M
    mlp_ratio: float = 5.6
    time_freq_dim: int = 256

    @property
    def n_params(self) -> int:
        return self.mlp.n_params

    def segments(self) -> list[int]:
        """Sizes of the tokens' slices of θ, in order (the last chunk includes the padding)."""
        if self.tokens == "chunk":
            size = math.ceil(self.n_params / self.n_chunks)
            return [size] * self.n_chunks
        if self.tokens == "layer":
            return [n for i, o in self.mlp.layer_dims() for n in (i * o, o)]
        raise ValueError(f"tokens={self.tokens!r}: choose one of {', '.join(TOKENISERS)}")


WDIT_PRESETS = {
    # CPU: a few thousand steps on ~32 shapes in minutes
    "tiny": WeightDiTConfig(d_model=128, layers=2, heads=4, mlp_ratio=2.0, time_freq_dim=64),
    "paper": WeightDiTConfig(),
}


class WeightDiT(ViewConditionedDiT):
    """f_DiT(x_t, t, c) → x̂_0 for standardised flat MLP weights [B, 54,785] (eq. 4)."""

    def __init__(self, cfg: WeightDiTConfig):
        super().__init__()
        self.cfg = cfg
        d, sizes = cfg.d_model, cfg.segments()
        self.padded = sum(sizes)
        if cfg.tokens == "chunk":  # one projection shared by the chunks
            self.token_in = nn.ModuleList([nn.Linear(sizes[0], d)])
        else:
            self.token_in = nn.ModuleList(nn.Linear(n, d) for n in sizes)
        self.token_pos = nn.Parameter(torch.randn(len(sizes), d) * 0.02)
        self.build_trunk(cfg)
        self.token_out = nn.ModuleList(nn.Linear(d, n) for n in sizes[:len(self.token_in)])
        for layer in self.token_out:  # start by predicting x̂_0 = 0, the population mean
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        self.register_buffer("weight_mean", torch.zeros(cfg.n_params))
        self.register_buffer("weight_std", torch.ones(cfg.n_params))

    # standardisation (§3.2, §3.5) ----------------------------------------------------------------
    def set_statistics(self, weights: torch.Tensor, features: torch.Tensor) -> None:
        """Per-dimension mean/std of the training weights [N, D] (identity when not standardising) and of
        the view features [M, F]."""
        if self.cfg.standardise:
            self.weight_mean.copy_(weights.mean(0))
            self.weight_std.copy_(weights.std(0).clamp_min(self.cfg.min_std))
        self.set_feature_statistics(features)

    def standardise(self, w: torch.Tensor) -> torch.Tensor:
        return (w - self.weight_mean) / self.weight_std

    def unstandardise(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight_std + self.weight_mean

    # tokeniser -----------------------------------------------------------------------------------
    def tokenise(self, x: torch.Tensor) -> torch.Tensor:
        """[B, D] → [B, T, d_model]."""
        x = nn.functional.pad(x, (0, self.padded - x.shape[-1]))
        if self.cfg.tokens == "chunk":
            tokens = self.token_in[0](x.reshape(x.shape[0], self.cfg.n_chunks, -1))
        else:
            parts = x.split(self.cfg.segments(), dim=-1)
            tokens = torch.stack([proj(p) for proj, p in zip(self.token_in, parts, strict=True)], dim=1)
        return tokens + self.token_pos

    def detokenise(self, h: torch.Tensor) -> torch.Tensor:
        """[B, T, d_model] → [B, D] (padding dropped)."""
        if self.cfg.tokens == "chunk":
            x = self.token_out[0](h).reshape(h.shape[0], -1)
        else:
            x = torch.cat([proj(h[:, k]) for k, proj in enumerate(self.token_out)], dim=-1)
        return x[:, :self.cfg.n_params]

    def forward(self, x_t, t, features, poses=None, view_mask=None, pose_known=None, drop_cond=None):
        """x_t [B, D] standardised noisy weights, t [B] long → x̂_0 [B, D] (standardised)."""
        h = self.trunk(self.tokenise(x_t), t, features, poses, view_mask, pose_known, drop_cond)
        return self.detokenise(h)
