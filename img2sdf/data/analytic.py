"""Analytic solids with exact signed distances: the ground truth for SDF and watertightness checks.

Each solid has an exact SDF (negative inside, Inigo Quilez's closed forms) and a trimesh builder of the
same surface. Mesh facets are inscribed in the true surface, so a mesh differs from its SDF by at most the
chordal error (< 1e-3 at the default tessellations for sizes around 1).
"""

from __future__ import annotations

import numpy as np
import trimesh


def sphere_sdf(p: np.ndarray, r: float) -> np.ndarray:
    return np.linalg.norm(p, axis=-1) - r


def box_sdf(p: np.ndarray, half) -> np.ndarray:
    """Axis-aligned box centred at the origin with half-extents ``half`` (scalar or [3])."""
    q = np.abs(p) - np.asarray(half, dtype=np.float64)
    outside = np.linalg.norm(np.maximum(q, 0.0), axis=-1)
    inside = np.minimum(q.max(axis=-1), 0.0)
    return outside + inside


def torus_sdf(p: np.ndarray, R: float, r: float) -> np.ndarray:
    """Torus around the z axis: ring radius ``R``, tube radius ``r``."""
    ring = np.hypot(p[..., 0], p[..., 1]) - R
    return np.hypot(ring, p[..., 2]) - r


def sphere_mesh(r: float, subdivisions: int = 5) -> trimesh.Trimesh:
    return trimesh.creation.icosphere(subdivisions=subdivisions, radius=r)


def box_mesh(half) -> trimesh.Trimesh:
    return trimesh.creation.box(extents=2.0 * np.broadcast_to(np.asarray(half, dtype=np.float64), (3,)))


def torus_mesh(R: float, r: float, major_sections: int = 128, minor_sections: int = 48) -> trimesh.Trimesh:
    return trimesh.creation.torus(R, r, major_sections=major_sections, minor_sections=minor_sections)
