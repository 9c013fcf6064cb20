"""Offline image encoders that need no downloaded weights (the default for CI and the demo).

Each stands in for DINOv2 (paper §2.3) when weights are unavailable. They were compared by
nearest-neighbour category retrieval of held-out synthetic views (``benchmarks/select_encoder.py``); the
winner is :data:`img2sdf.encoders.DEFAULT_ENCODER`. All are deterministic and run at thousands of images
per minute on one CPU core.

* ``hog``        multi-scale histograms of oriented gradients (1, 2×2, 4×4, 8×8 cells, 9 unsigned bins).
* ``silhouette`` the object mask centred and scaled to its own size: a 16×16 occupancy grid plus a polar
  occupancy histogram (8 radii × 16 angles) around the mask centroid.
* ``shading``    foreground intensity and colour histograms plus a global gradient-orientation histogram.
* ``randconv``   a fixed-seed random convolutional network (3 layers, ReLU) with pyramid average pooling.
* ``gray``       colour-free shading: normalised gray-level histogram + gradient orientations (photos of
  objects of any colour; see :func:`gray_shading_features`).
* ``hog+shading``, ``hog+silhouette``, ``hog+silhouette+shading``, ``hog+gray``, ``hog+silhouette+gray``
  blocks L2-normalised, concatenated.
"""

from __future__ import annotations

import numpy as np

from ..errors import UserError
from .base import ImageEncoder, register

WORK_SIZE = 112  # every handcrafted feature is computed on a 2× downsampled copy of the 224² view
MASK_LEVEL = 0.02  # gray level (0-1) above which a pixel belongs to the object (the background is black)


def _downsample(images: np.ndarray) -> np.ndarray:
    """float32 [B, 112, 112, 3] in [0, 1] by area averaging (any square input size)."""
    x = images.astype(np.float32) / 255.0
    b, h, w, c = x.shape
    if h != w:
        raise ValueError(f"expected square images, got {h}x{w}")
    if h % WORK_SIZE == 0:
        f = h // WORK_SIZE
        return x.reshape(b, WORK_SIZE, f, WORK_SIZE, f, c).mean((2, 4))
    from PIL import Image

    size = (WORK_SIZE, WORK_SIZE)
    return np.stack([np.asarray(Image.fromarray(im).resize(size, Image.Resampling.BOX), np.float32) / 255.0
                     for im in images])


def _l2(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=axis, keepdims=True), 1e-6)


def _histograms(idx: np.ndarray, weights: np.ndarray, n: int) -> np.ndarray:
    """Per-row weighted histograms float32 [B, n] of integer bins idx [B, ...] (one bincount call)."""
    b = len(idx)
    flat = (idx.reshape(b, -1) + np.arange(b)[:, None] * n).ravel()
    return np.bincount(flat, weights.reshape(-1), minlength=b * n).reshape(b, n).astype(np.float32)


def hog_features(gray: np.ndarray, grids=(1, 2, 4, 8), bins: int = 9) -> np.ndarray:
    """Multi-scale HOG [B, bins * sum(g²)]: per cell, magnitude-weighted unsigned orientation histograms,
    soft-binned between the two nearest bins, each cell L2-normalised then clipped at 0.2 (Dalal-Triggs)."""
    gy, gx = np.gradient(gray, axis=(1, 2))
    mag = np.hypot(gx, gy)
    pos = (np.arctan2(gy, gx) % np.pi) / np.pi * bins - 0.5
    lo = np.floor(pos).astype(np.int64)
    frac = (pos - lo).astype(np.float32)
    lo %= bins
    hi = (lo + 1) % bins
    b, h, w = gray.shape
    planes = np.stack([mag * np.where(lo == k, 1 - frac, 0) + mag * np.where(hi == k, frac, 0)
                       for k in range(bins)], axis=1)  # [B, bins, H, W]
    blocks = []
    for g in grids:
        cells = planes.reshape(b, bins, g, h // g, g, w // g).sum((3, 5))  # [B, bins, g, g]
        cells = _l2(cells, axis=1)
        cells = _l2(np.minimum(cells, 0.2), axis=1)
        blocks.append(cells.reshape(b, -1))
    return np.concatenate(blocks, axis=1)


def silhouette_features(mask: np.ndarray, grid: int = 16, radii: int = 8, angles: int = 16) -> np.ndarray:
    """Translation/scale-normalised silhouette [B, grid² + radii * angles] (see module docstring)."""
    b, h, w = mask.shape
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    area = np.maximum(mask.sum((1, 2)), 1.0)
    cy = (mask * yy).sum((1, 2)) / area
    cx = (mask * xx).sum((1, 2)) / area
    dy, dx = yy - cy[:, None, None], xx - cx[:, None, None]
    r = np.hypot(dy, dx)
    scale = np.maximum(np.sqrt((mask * r**2).sum((1, 2)) / area), 1.0)  # radius of gyration
    rn = r / scale[:, None, None]
    # Polar occupancy: rings up to 2.5 radii of gyration; fraction of each ring sector that is object.
    ring = np.minimum((rn / 2.5 * radii).astype(np.int64), radii)
    sector = ((np.arctan2(dy, dx) + np.pi) / (2 * np.pi) * angles).astype(np.int64) % angles
    idx = ring * angles + sector
    polar = _histograms(idx, mask, (radii + 1) * angles)
    count = _histograms(idx, np.ones_like(mask), (radii + 1) * angles)
    polar = (polar / np.maximum(count, 1.0))[:, : radii * angles]
    # Occupancy grid of the window of ±2.5 radii of gyration around the centroid.
    t = (np.arange(grid, dtype=np.float32) + 0.5) / grid * 5.0 - 2.5
    gy = np.clip(np.rint(cy[:, None] + t[None] * scale[:, None]), 0, h - 1).astype(np.int64)
    gx = np.clip(np.rint(cx[:, None] + t[None] * scale[:, None]), 0, w - 1).astype(np.int64)
    occ = mask[np.arange(b)[:, None, None], gy[:, :, None], gx[:, None, :]].reshape(b, -1)
    return np.concatenate([_l2(occ), _l2(polar)], axis=1) / np.sqrt(2.0)


def shading_features(rgb: np.ndarray, mask: np.ndarray, bins: int = 32) -> np.ndarray:
    """Foreground gray histogram, per-channel colour histograms (8 bins) and a global 18-bin gradient
    orientation histogram, each L2-normalised."""
    gray = rgb.mean(-1)
    hist = _histograms(np.minimum((gray * bins).astype(np.int64), bins - 1), mask, bins)
    colour = [_histograms(np.minimum((rgb[..., c] * 8).astype(np.int64), 7), mask, 8) for c in range(3)]
    gy, gx = np.gradient(gray, axis=(1, 2))
    ori = np.minimum(((np.arctan2(gy, gx) + np.pi) / (2 * np.pi) * 18).astype(np.int64), 17)
    ohist = _histograms(ori, np.hypot(gx, gy), 18)
    blocks = [_l2(hist), _l2(np.concatenate(colour, 1)), _l2(ohist)]
    return np.concatenate(blocks, axis=1) / np.sqrt(len(blocks))


def gray_shading_features(rgb: np.ndarray, mask: np.ndarray, bins: int = 32) -> np.ndarray:
    """Colour-free shading: a histogram of the object's gray levels after normalising them to zero mean and
    unit spread per image (so an object's paint and the exposure drop out, the shading pattern stays), and
    the global 18-bin gradient-orientation histogram; each L2-normalised."""
    gray = rgb.mean(-1)
    area = np.maximum(mask.sum((1, 2)), 1.0)
    mu = (gray * mask).sum((1, 2)) / area
    sd = np.sqrt((((gray - mu[:, None, None]) ** 2) * mask).sum((1, 2)) / area) + 1e-3
    z = (gray - mu[:, None, None]) / sd[:, None, None]  # ±3 spreads → bins
    idx = np.clip(((z + 3.0) / 6.0 * bins).astype(np.int64), 0, bins - 1)
    hist = _histograms(idx, mask, bins)
    gy, gx = np.gradient(gray / np.maximum(mu, 1e-3)[:, None, None], axis=(1, 2))
    ori = np.minimum(((np.arctan2(gy, gx) + np.pi) / (2 * np.pi) * 18).astype(np.int64), 17)
    ohist = _histograms(ori, np.hypot(gx, gy), 18)
    return np.concatenate([_l2(hist), _l2(ohist)], axis=1) / np.sqrt(2.0)


class HandcraftedEncoder(ImageEncoder):
    """One or more of the feature blocks above, each L2-normalised, concatenated."""

    BLOCKS = ("hog", "silhouette", "shading", "gray")

    def __init__(self, name: str, blocks: tuple[str, ...]):
        self.name = name
        self.blocks = blocks
        self.dim = int(self._encode_batch(np.zeros((1, WORK_SIZE, WORK_SIZE, 3), np.uint8)).shape[1])

    def _encode_batch(self, images: np.ndarray) -> np.ndarray:
        rgb = _downsample(images)
        mask = (rgb.mean(-1) > MASK_LEVEL).astype(np.float32)
        parts = []
        for block in self.blocks:
            if block == "hog":
                parts.append(_l2(hog_features(rgb.mean(-1))))
            elif block == "silhouette":
                parts.append(_l2(silhouette_features(mask)))
            elif block == "gray":
                parts.append(_l2(gray_shading_features(rgb, mask)))
            else:
                parts.append(_l2(shading_features(rgb, mask)))
        return (np.concatenate(parts, axis=1) / np.sqrt(len(parts))).astype(np.float32)


class RandomConvEncoder(ImageEncoder):
    """A random-feature CNN: fixed-seed He-initialised convolutions, ReLU, 1×1 + 2×2 average pooling."""

    name = "randconv"
    SEED = 0
    CHANNELS = (3, 32, 64, 128)

    def __init__(self, device: str = "cpu"):
        import torch

        gen = torch.Generator().manual_seed(self.SEED)
        self.device = torch.device(device)
        self.weights = []
        for cin, cout in zip(self.CHANNELS[:-1], self.CHANNELS[1:], strict=True):
            w = torch.randn(cout, cin, 5, 5, generator=gen) * np.sqrt(2.0 / (cin * 25))
            self.weights.append(w.to(self.device))
        self.dim = self.CHANNELS[-1] * 5

    def _encode_batch(self, images: np.ndarray) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        x = torch.from_numpy(_downsample(images)).to(self.device).permute(0, 3, 1, 2)
        with torch.inference_mode():
            for w in self.weights:
                x = F.relu(F.conv2d(x, w, stride=2, padding=2))
            pooled = torch.cat([F.adaptive_avg_pool2d(x, s).flatten(1) for s in (1, 2)], 1)
        return _l2(pooled.cpu().numpy().astype(np.float32))


def _offline(factory):
    """Registry factory of an encoder that has no weights: ``--weights`` is a mistake, not ignored."""

    def build(weights=None, device="cpu"):
        if weights is not None:
            raise UserError(f"--weights {weights}: offline encoders have no weights; drop the option")
        return factory(device)

    return build


for _name, _blocks in {
    "hog": ("hog",),
    "silhouette": ("silhouette",),
    "shading": ("shading",),
    "hog+shading": ("hog", "shading"),
    "hog+silhouette": ("hog", "silhouette"),
    "hog+silhouette+shading": ("hog", "silhouette", "shading"),
    "hog+gray": ("hog", "gray"),
    "hog+silhouette+gray": ("hog", "silhouette", "gray"),
}.items():
    register(_name, _offline(lambda device, _n=_name, _b=_blocks: HandcraftedEncoder(_n, _b)))
register("randconv", _offline(RandomConvEncoder))
