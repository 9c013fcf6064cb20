"""Image encoders: DINOv2 (paper §2.3) and offline handcrafted ones; the per-view feature cache.

``DEFAULT_ENCODER`` is the offline encoder that won the nearest-neighbour category retrieval comparison
of ``benchmarks/select_encoder.py`` (README, "Renders and image encoders").
"""

from . import dinov2, handcrafted  # noqa: F401  (importing registers the encoders)
from .base import ImageEncoder, available, get_encoder, register

DEFAULT_ENCODER = "hog+shading"  # 0.588 top-1 vs hog 0.572, hog+silhouette+shading 0.568, randconv 0.449

__all__ = ["DEFAULT_ENCODER", "ImageEncoder", "available", "get_encoder", "register"]
