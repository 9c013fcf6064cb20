"""The shared DeepSDF decoder f_φ(z, γ(p)) → s (paper §5.2) and loading a fitted auto-decoder run.

Input is concat(latent z ∈ ℝ⁶⁴, γ(p) ∈ ℝ³⁹) = 103 dims; ``layers`` hidden ReLU layers of width ``hidden``;
the input vector is re-injected (DeepSDF skip) into hidden layer ``skip_layer``; one linear SDF output.
The ``paper`` preset (512 × 8, skip at layer 4) has 1,945,089 parameters — the paper's "~1.95 M".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

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


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@dataclass
class DecoderRun:
    """A fitted auto-decoder: decoder in eval mode, latents [N, D] (row i ↔ manifest ``obj_idx[i]``)."""

    run_dir: Path
    decoder: SDFDecoder
    latents: torch.Tensor
    obj_idx: list[int]
    config: object  # img2sdf.train.fit.FitConfig
    data_root: Path


def load_decoder_run(run_dir: str | Path) -> DecoderRun:
    """Load ``RUN/decoder.safetensors`` + ``RUN/latents.safetensors`` (or the newest checkpoint of an
    unfinished run) with the resolved ``RUN/config.json``."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    from ..config import from_dict
    from ..io import read_json
    from ..train.checkpoint import load_checkpoint, model_state
    from ..train.fit import FitConfig

    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.json"
    if not cfg_path.is_file():
        raise UserError(f"{run_dir}: not a decoder run (no config.json); create one with `img2sdf fit DATA "
                        f"--out {run_dir}`")
    saved = read_json(cfg_path)
    config = from_dict(FitConfig, saved["fit"])
    decoder = SDFDecoder(config.decoder)
    obj_idx = [int(i) for i in saved["obj_idx"]]
    final_dec, final_lat = run_dir / "decoder.safetensors", run_dir / "latents.safetensors"
    if final_dec.is_file() and final_lat.is_file():
        decoder.load_state_dict(load_file(final_dec))
        latents = load_file(final_lat)["latents"]
        with safe_open(final_lat, "pt") as f:
            obj_idx = [int(i) for i in f.metadata()["obj_idx"].split(",")]
    else:
        ckpt = load_checkpoint(run_dir)
        if ckpt is None:
            raise UserError(f"{run_dir}: no decoder.safetensors and no checkpoint; run or resume img2sdf fit")
        state = model_state(ckpt, "model")
        decoder.load_state_dict({k[8:]: v for k, v in state.items() if k.startswith("decoder.")})
        latents = state["latents.weight"]
    decoder.eval().requires_grad_(False)
    return DecoderRun(run_dir=run_dir, decoder=decoder, latents=latents.float(), obj_idx=obj_idx,
                      config=config, data_root=Path(saved["data_root"]))
