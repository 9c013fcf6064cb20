"""The image-encoder interface and its registry (paper §2.3: one feature vector per rendered view)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

import numpy as np

from ..errors import UserError


class ImageEncoder(ABC):
    """uint8 images [B, H, W, 3] (object on black) → float32 features [B, dim]."""

    name: str
    dim: int
    batch_size: int = 64

    def encode(self, images: np.ndarray) -> np.ndarray:
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
            raise ValueError(f"{self.name}: expected uint8 [B, H, W, 3], got {images.dtype} {images.shape}")
        out = np.empty((len(images), self.dim), dtype=np.float32)
        for s in range(0, len(images), self.batch_size):
            out[s:s + self.batch_size] = self._encode_batch(images[s:s + self.batch_size])
        return out

    @abstractmethod
    def _encode_batch(self, images: np.ndarray) -> np.ndarray:
        """Features float32 [b, dim] of at most ``batch_size`` images."""


_REGISTRY: dict[str, Callable[..., ImageEncoder]] = {}


def register(name: str, factory: Callable[..., ImageEncoder]) -> None:
    """Make ``factory(weights=..., device=...)`` available as ``get_encoder(name)``."""
    _REGISTRY[name] = factory


def available() -> list[str]:
    return sorted(_REGISTRY)


def get_encoder(name: str, weights: str | None = None, device: str = "cpu") -> ImageEncoder:
    """Build the encoder registered as ``name`` (``--encoder``); unknown names are a UserError."""
    if name not in _REGISTRY:
        raise UserError(f"--encoder {name!r} is unknown; choose one of {', '.join(available())}")
    return _REGISTRY[name](weights=weights, device=device)
