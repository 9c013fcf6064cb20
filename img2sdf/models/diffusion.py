"""Gaussian diffusion maths for x0-prediction models (paper §3.2 eq. 3-4, §6.1), kept apart from any network.

A model is seen only as a callable ``predict_x0(x_t, t) -> x0_hat``; the same schedule, loss and DDIM sampler
serve every denoiser (the latent DiT here, a weight-space DiT later).

Indexing: ``t`` runs over ``0 .. T-1``; ``alphas_cumprod[t]`` is ᾱ_t after ``t + 1`` noising steps, so ᾱ_0 ≈ 1
(almost clean) and ᾱ_{T-1} ≈ 0 (pure noise).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def cosine_alphas_cumprod(timesteps: int, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """ᾱ_t of the cosine schedule (Nichol & Dhariwal 2021), float64 [T]; betas clipped at ``max_beta``."""
    steps = torch.arange(timesteps + 1, dtype=torch.float64)
    f = torch.cos((steps / timesteps + s) / (1 + s) * math.pi / 2) ** 2
    betas = (1 - f[1:] / f[:-1]).clamp(max=max_beta)
    return torch.cumprod(1 - betas, dim=0)


class GaussianDiffusion:
    """Cosine-schedule forward process q(x_t | x_0) (eq. 3), x0 MSE objective (eq. 4), DDIM sampling."""

    def __init__(self, timesteps: int = 500):
        self.timesteps = timesteps
        self.alphas_cumprod = cosine_alphas_cumprod(timesteps)
        self._on_device: dict[torch.device, torch.Tensor] = {}

    def schedule(self, device: torch.device) -> torch.Tensor:
        """ᾱ on ``device``, copied there once (MPS has no float64: float32 there)."""
        device = torch.device(device)
        if device not in self._on_device:
            dtype = torch.float32 if device.type == "mps" else torch.float64
            self._on_device[device] = self.alphas_cumprod.to(device, dtype)
        return self._on_device[device]

    def _abar(self, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """ᾱ_t gathered for a batch of timesteps, shaped to broadcast against ``like`` [B, ...]."""
        abar = self.schedule(like.device)[t].to(like.dtype)
        return abar.view(-1, *([1] * (like.dim() - 1)))

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = √ᾱ_t · x_0 + √(1 − ᾱ_t) · ε  (eq. 3)."""
        abar = self._abar(t, x0)
        return abar.sqrt() * x0 + (1 - abar).sqrt() * noise

    def sample_timesteps(self, batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randint(0, self.timesteps, (batch,), generator=generator)

    def training_loss(
        self, predict_x0: Denoiser, x0: torch.Tensor, generator: torch.Generator | None = None,
        t: torch.Tensor | None = None, noise: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """ℒ = E ‖x_0 − f(x_t, t, c)‖² with t ~ U{0..T-1}, ε ~ N(0, I)  (eq. 4); mean over batch and dims.
        ``t`` and ``noise`` are drawn here unless given (DDP ranks pass their slice of a global draw)."""
        if t is None:
            t = self.sample_timesteps(x0.shape[0], generator)
        if noise is None:
            noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype)
        t, noise = t.to(x0.device), noise.to(x0.device)
        return (predict_x0(self.q_sample(x0, t, noise), t) - x0).pow(2).mean()

    def ddim_timesteps(self, steps: int) -> list[int]:
        """``steps`` timesteps evenly spaced from T-1 down to 0 (always starts at pure noise, ends at 0)."""
        if not 1 <= steps <= self.timesteps:
            raise ValueError(f"DDIM steps must be in [1, {self.timesteps}], got {steps}")
        return sorted({round(x) for x in torch.linspace(0, self.timesteps - 1, steps).tolist()}, reverse=True)

    @torch.no_grad()
    def ddim_sample(
        self,
        predict_x0: Denoiser,
        shape: tuple[int, ...],
        steps: int = 50,
        eta: float = 0.0,
        generator: torch.Generator | None = None,
        noise: torch.Tensor | None = None,
        device: torch.device | str | None = None,
    ) -> torch.Tensor:
        """DDIM (Song et al. 2021) from x_{T-1} ~ N(0, I) to x_0; η = 0 is deterministic given the noise.

        The noise is drawn on the CPU from ``generator`` and moved to ``device`` (default: the noise's own or
        the CPU), so a seed gives the same sample on every device; the step coefficients are host scalars.

        At each step ε̂ = (x_t − √ᾱ_t x̂_0) / √(1 − ᾱ_t) and
        x_prev = √ᾱ_prev x̂_0 + √(1 − ᾱ_prev − σ²) ε̂ + σ z, σ = η √((1 − ᾱ_prev)/(1 − ᾱ_t)) √(1 − ᾱ_t/ᾱ_prev).
        The last step uses ᾱ_prev = 1, so the result is the model's final x̂_0.
        """
        x = torch.randn(shape, generator=generator) if noise is None else noise.clone()
        x = x.to(device if device is not None else x.device)
        ts = self.ddim_timesteps(steps)
        abar_all = self.alphas_cumprod
        for i, t in enumerate(ts):
            abar = abar_all[t].item()
            abar_prev = abar_all[ts[i + 1]].item() if i + 1 < len(ts) else 1.0
            x0_hat = predict_x0(x, torch.full((shape[0],), t, dtype=torch.long, device=x.device))
            eps = (x - math.sqrt(abar) * x0_hat) / math.sqrt(1 - abar)
            sigma = eta * math.sqrt((1 - abar_prev) / (1 - abar) * (1 - abar / abar_prev))
            x = math.sqrt(abar_prev) * x0_hat + math.sqrt(max(1 - abar_prev - sigma**2, 0.0)) * eps
            if sigma > 0:
                x = x + sigma * torch.randn(shape, generator=generator).to(x)
        return x
