"""Nearest training latents by cosine: what ``generate`` reports beside a mesh and what the cosine-ranking
diagnostic (``eval.diagnostics``, paper §1.2 ii) is built on."""

from __future__ import annotations

import numpy as np


def cosine_matrix(pred: np.ndarray, train: np.ndarray) -> np.ndarray:
    """cos(pred_i, train_j) for pred [M, L] and train [N, L] → [M, N]."""
    a = np.asarray(pred, dtype=np.float64)
    b = np.asarray(train, dtype=np.float64)
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return a @ b.T


def top_k(pred: np.ndarray, train: np.ndarray, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Rows [M, k] of the k nearest training latents by cosine, best first, and their cosines [M, k]."""
    cos = cosine_matrix(np.atleast_2d(pred), train)
    order = np.argsort(-cos, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(cos, order, axis=1)
