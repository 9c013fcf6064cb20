"""The shared DeepSDF decoder f_φ(z, γ(p)) → s (paper §5.2).

Input is concat(latent z ∈ ℝ⁶⁴, γ(p) ∈ ℝ³⁹) = 103 dims; ``layers`` hidden ReLU layers of width ``hidden``;
the input vector is re-injected (DeepSDF skip) into hidden layer ``skip_layer``; one linear SDF output.
The ``paper`` preset (512 × 8, skip at layer 4) has 1,945,089 parameters — the paper's "~1.95 M".
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..errors import UserError


@dataclass
class DecoderConfig:
    latent_dim: int = 64  # §5.2: 64-dim per-shape latent
    pe_bands: int = 6  # §3.1 eq. (2): 6 frequency bands → 3 + 3·2·6 = 39 dims
    hidden: int = 512  # §5.2: width 512
    layers: int = 8  # §5.2: 8 hidden ReLU layers
    skip_layer: int = 4  # §5.2: input re-injected at the middle layer


DECODER_PRESETS: dict[str, DecoderConfig] = {
    # CPU preset: 64 synthetic shapes in minutes (width/depth chosen by measurement, README).
    "tiny": DecoderConfig(hidden=192, layers=5, skip_layer=3),
    # CPU at 976 shapes: the best of 8 decoders at equal training FLOPs per shape (README)
    "cpu": DecoderConfig(hidden=128, layers=6, skip_layer=3),
    # §5.3 initial pilot: hidden 256 × 4 layers ("blob-quality meshes").
    "pilot": DecoderConfig(hidden=256, layers=4, skip_layer=2),
    # §5.2 final decoder: 512 × 8, ~1.95 M parameters.
    "paper": DecoderConfig(),
}


def positional_encoding(points: torch.Tensor, bands: int) -> torch.Tensor:
    """γ(p) = [p, sin(2ᵏπp), cos(2ᵏπp)]ₖ₌₀..bands-1 (eq. 2): [..., 3] → [..., 3 + 6·bands]."""
    freqs = (2.0 ** torch.arange(bands, dtype=points.dtype, device=points.device)) * math.pi
    angles = points[..., None, :] * freqs[:, None]  # [..., bands, 3]
    enc = torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1).flatten(-2)
    return torch.cat([points, enc], dim=-1)


class SDFDecoder(nn.Module):
    """f_φ(z, γ(p)) of eq. (5): latents [B, D] with points [B, 3] → sdf [B], or points [B, P, 3] → [B, P]."""

    def __init__(self, config: DecoderConfig):
        super().__init__()
        if not 0 < config.skip_layer < config.layers:
            raise UserError(f"decoder skip_layer={config.skip_layer} must lie in 1..{config.layers - 1}")
        self.config = config
        self.in_dim = config.latent_dim + 3 + 6 * config.pe_bands
        dims_in = [self.in_dim] + [config.hidden] * (config.layers - 1)
        dims_in[config.skip_layer] += self.in_dim  # the skip feeds concat(hidden, z, γ(p))
        self.hidden = nn.ModuleList(nn.Linear(d, config.hidden) for d in dims_in)
        self.out = nn.Linear(config.hidden, 1)

    def forward(self, latents: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        pe = positional_encoding(points, self.config.pe_bands)  # [B, 39] or [B, P, 39]
        x = None
        for i, layer in enumerate(self.hidden):
            if i == 0 or i == self.config.skip_layer:
                x = self._input_layer(layer, x, latents, pe)
            else:
                x = layer(x)
            x = torch.relu(x)
        return self.out(x).squeeze(-1)

    def _input_layer(self, layer: nn.Linear, x: torch.Tensor | None, z: torch.Tensor,
                     pe: torch.Tensor) -> torch.Tensor:
        """layer(concat(x, z, γ(p))) without materialising z for every point: the latent's share of the
        product is computed once per shape and broadcast over its points (same result, fewer FLOPs)."""
        w = layer.weight
        h = 0 if x is None else x.shape[-1]
        d = z.shape[-1]
        z_part = torch.nn.functional.linear(z, w[:, h:h + d])  # [B, H]
        out = torch.nn.functional.linear(pe, w[:, h + d:], layer.bias)
        out = out + (z_part[:, None, :] if pe.dim() == 3 else z_part)
        return out if x is None else out + torch.nn.functional.linear(x, w[:, :h])


def training_flops_per_point(config: DecoderConfig) -> int:
    """Matrix-product FLOPs of one training step per SDF point (forward, weight gradient and — where the
    input needs one — input gradient, 2 FLOPs per multiply-add). The latent's share of the input layers is
    computed once per shape (see ``SDFDecoder._input_layer``) and not counted; γ(p) needs no gradient."""
    h, pe = config.hidden, 3 + 6 * config.pe_bands
    macs = 2 * pe * h  # first layer: forward + weight gradient
    for i in range(1, config.layers):
        macs += 3 * h * h + (2 * pe * h if i == config.skip_layer else 0)
    macs += 3 * h  # output layer
    return 2 * macs


def decoder_sdf_fn(decoder: torch.nn.Module, latent: torch.Tensor,
                   chunk: int = 8192) -> Callable[[np.ndarray], np.ndarray]:
    """Wrap f_φ(z, ·) as a numpy SDF function (points [N, 3] → sdf [N]), in chunks without gradients.

    Points go in as one shape's [1, P, 3] batch, so the latent's share of the input layers is computed once
    per chunk, not once per point (1.15× the points/s of a per-point latent on this CPU)."""
    device = next(decoder.parameters()).device
    z = latent.detach().reshape(1, -1).to(device)

    def fn(points: np.ndarray) -> np.ndarray:
        out = np.empty(len(points), dtype=np.float32)
        with torch.inference_mode():
            for s in range(0, len(points), chunk):
                p = torch.from_numpy(np.ascontiguousarray(points[s:s + chunk])).to(device)
                out[s:s + len(p)] = decoder(z, p[None]).reshape(-1).float().cpu().numpy()
        return out

    return fn
