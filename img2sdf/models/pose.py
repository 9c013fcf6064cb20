"""Camera-pose embedding of view tokens (paper §3.2 / §6.1): 64-dim sinusoidal, and a learned "unknown pose".

Renders look at the object centre (§2.3), so a view is identified by the camera's direction from the origin
and its distance; those 4 numbers are encoded with 8 octave frequencies each (4 × 8 × sin/cos = 64 dims).
Users' photos have no pose: :class:`PoseEmbedding` replaces them by a learned null token, which training
teaches with pose dropout.
"""

from __future__ import annotations

import math

import torch
from torch import nn

POSE_DIM = 64
_N_FREQS = POSE_DIM // 8  # 4 scalars × 2 (sin, cos) × 8 frequencies


def sinusoidal_pose(poses: torch.Tensor) -> torch.Tensor:
    """Camera-to-world [..., 4, 4] (OpenGL) → [..., 64]: sin/cos of (direction xyz, log distance) at 2^k π."""
    centre = poses[..., :3, 3]
    dist = centre.norm(dim=-1, keepdim=True).clamp_min(1e-6)
    scalars = torch.cat([centre / dist, torch.log(dist)], dim=-1)  # [..., 4]
    freqs = (2.0 ** torch.arange(_N_FREQS, dtype=poses.dtype, device=poses.device)) * math.pi
    angles = scalars[..., :, None] * freqs  # [..., 4, 8]
    return torch.cat([angles.sin(), angles.cos()], dim=-1).flatten(-2)


class PoseEmbedding(nn.Module):
    """Sinusoidal pose of each view, or the learned null token where the pose is unknown (or dropped)."""

    def __init__(self):
        super().__init__()
        self.null = nn.Parameter(torch.randn(POSE_DIM) * 0.02)

    def forward(self, poses: torch.Tensor | None, known: torch.Tensor | None = None,
                shape: tuple[int, int] | None = None) -> torch.Tensor:
        """poses [B, K, 4, 4] or None (all unknown; ``shape`` = (B, K) then); known [B, K] → [B, K, 64]."""
        if poses is None:
            return self.null.expand(*shape, POSE_DIM)
        emb = sinusoidal_pose(poses)
        if known is None:
            return emb
        return torch.where(known[..., None], emb, self.null.to(emb.dtype))
