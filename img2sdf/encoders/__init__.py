"""Image encoders: DINOv2 (paper §2.3) and offline handcrafted ones; the per-view feature cache.

``DEFAULT_ENCODER`` is the offline encoder that won the nearest-neighbour category retrieval comparison
of ``benchmarks/select_encoder.py`` under its photo protocol (README, "Renders and image encoders").
"""

from . import dinov2, handcrafted  # noqa: F401  (importing registers the encoders)
from .base import ImageEncoder, available, get_encoder, register

DEFAULT_ENCODER = "hog"  # photo protocol (select_encoder.py): 0.645 top-1; hog+gray 0.607, hog+shading 0.594

__all__ = ["DEFAULT_ENCODER", "ImageEncoder", "available", "get_encoder", "register"]
