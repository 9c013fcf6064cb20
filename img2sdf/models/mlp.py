"""The per-shape ReLU+PE MLP f_θ : ℝ³ → ℝ of Family A (paper §3.1, eq. 1-2), flat and batched.

    f_θ(p) = W₅ σ(W₄ σ(W₃ σ(W₂ σ(W₁ γ(p) + b₁) + b₂) + b₃) + b₄) + b₅,   σ = ReLU

γ is the 6-band positional encoding (39 dims, :func:`~img2sdf.models.decoder.positional_encoding`); widths
39 → 128 → 128 → 128 → 128 → 1: five linear layers, 54,785 parameters. (Eq. 1 prints four W's, but the
text's "Linear(39,128) → three Linear(128,128) → Linear(128,1)" and its 54,785 parameters need five.)

A shape's θ is one flat float32 vector in the fixed order **W₁, b₁, W₂, b₂, …, W₅, b₅**, each Wᵢ row-major
``[out, in]`` as in ``nn.Linear`` (so it matches ``ShapeMLP.state_dict()`` order). :func:`batched_forward`
evaluates M such vectors at once with batched matmuls: weights [M, D] and points [M, P, 3] → sdf [M, P].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .decoder import positional_encoding


@dataclass(frozen=True)
class MLPConfig:
    pe_bands: int = 6  # eq. (2): 6 bands → 39 dims
    hidden: int = 128  # §3.1: width 128
    hidden_layers: int = 4  # §3.1: Linear(39,128) + three Linear(128,128), each followed by ReLU

    @property
    def in_dim(self) -> int:
        return 3 + 6 * self.pe_bands

    def layer_dims(self) -> list[tuple[int, int]]:
        """(in, out) of every linear layer, first to last."""
        dims = [self.in_dim] + [self.hidden] * self.hidden_layers + [1]
        return list(zip(dims[:-1], dims[1:], strict=True))

    @property
    def n_params(self) -> int:
        return sum(i * o + o for i, o in self.layer_dims())


PAPER_MLP = MLPConfig()  # 54,785 parameters


def unflatten(flat: torch.Tensor, config: MLPConfig = PAPER_MLP) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Views (W [..., out, in], b [..., out]) per layer of flat vectors [..., D] (no copy)."""
    if flat.shape[-1] != config.n_params:
        raise ValueError(f"expected {config.n_params} parameters in the last dim, got {flat.shape[-1]}")
    layers, offset = [], 0
    lead = flat.shape[:-1]
    for i, o in config.layer_dims():
        w = flat[..., offset:offset + i * o].reshape(*lead, o, i)
        offset += i * o
        b = flat[..., offset:offset + o]
        offset += o
        layers.append((w, b))
    return layers


def flatten(layers: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """Inverse of :func:`unflatten`: [(W [..., out, in], b [..., out])] → [..., D]."""
    parts = []
    for w, b in layers:
        parts += [w.reshape(*w.shape[:-2], -1), b]
    return torch.cat(parts, dim=-1)


def batched_forward(weights: torch.Tensor, points: torch.Tensor,
                    config: MLPConfig = PAPER_MLP) -> torch.Tensor:
    """f_θₘ(pₘ,ₚ) for M flat weight vectors [M, D] and points [M, P, 3] → sdf [M, P]."""
    x = positional_encoding(points, config.pe_bands)  # [M, P, 39]
    layers = unflatten(weights, config)
    for k, (w, b) in enumerate(layers):
        x = torch.baddbmm(b[:, None, :], x, w.transpose(1, 2))  # [M, P, out]
        if k < len(layers) - 1:
            x = x.relu_()  # in place: baddbmm's backward does not need its output
    return x.squeeze(-1)


def init_weights(n: int, seeds: list[int] | None = None, config: MLPConfig = PAPER_MLP) -> torch.Tensor:
    """``n`` flat vectors [n, D] with ``nn.Linear``'s default init (W, b ~ U(±1/√fan_in)); vector k is drawn
    from a generator seeded with ``seeds[k]`` (default k), so a shape's init does not depend on its batch."""
    seeds = list(range(n)) if seeds is None else seeds
    out = torch.empty(n, config.n_params)
    for k, seed in enumerate(seeds):
        g = torch.Generator().manual_seed(int(seed))
        parts = []
        for i, o in config.layer_dims():
            bound = 1.0 / math.sqrt(i)
            parts.append(torch.empty(o * i + o).uniform_(-bound, bound, generator=g))
        out[k] = torch.cat(parts)
    return out


class StackedMLPs(nn.Module):
    """M shapes' θ as one parameter [M, D] (Adam is per-element, so one optimiser over the stack is M
    independent Adams); ``forward(points [M, P, 3]) → sdf [M, P]``."""

    def __init__(self, weights: torch.Tensor, config: MLPConfig = PAPER_MLP):
        super().__init__()
        self.config = config
        self.weights = nn.Parameter(weights.detach().clone().float())

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        return batched_forward(self.weights, points, self.config)


class ShapeMLP(nn.Module):
    """The same network as a standard ``nn.Module`` (one shape; what HyperDiffusion-style loops train)."""

    def __init__(self, config: MLPConfig = PAPER_MLP):
        super().__init__()
        self.config = config
        self.layers = nn.ModuleList(nn.Linear(i, o) for i, o in config.layer_dims())

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        x = positional_encoding(points, self.config.pe_bands)
        for layer in self.layers[:-1]:
            x = torch.relu(layer(x))
        return self.layers[-1](x).squeeze(-1)

    def to_flat(self) -> torch.Tensor:
        return flatten([(layer.weight, layer.bias) for layer in self.layers]).detach().clone()

    @classmethod
    def from_flat(cls, flat: torch.Tensor, config: MLPConfig = PAPER_MLP) -> ShapeMLP:
        mlp = cls(config)
        with torch.no_grad():
            for layer, (w, b) in zip(mlp.layers, unflatten(flat.detach().float(), config), strict=True):
                layer.weight.copy_(w)
                layer.bias.copy_(b)
        return mlp


def mlp_sdf_fn(flat: torch.Tensor, config: MLPConfig = PAPER_MLP, chunk: int = 65536):
    """One shape's θ [D] as a numpy SDF function (points [N, 3] float32 → sdf [N]) for meshing, evaluated
    on the device θ lives on."""
    weights = flat.detach().float().reshape(1, -1)

    def fn(points: np.ndarray) -> np.ndarray:
        out = np.empty(len(points), dtype=np.float32)
        with torch.inference_mode():
            for s in range(0, len(points), chunk):
                p = torch.from_numpy(np.ascontiguousarray(points[s:s + chunk], dtype=np.float32))
                pred = batched_forward(weights, p[None].to(weights.device), config)[0]
                out[s:s + len(p)] = pred.cpu().numpy()
        return out

    return fn
