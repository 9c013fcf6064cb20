"""SDF samples of a watertight, normalised mesh (paper §2.2; DeepSDF's sampling scheme).

Half of the points are near the surface: uniform surface samples plus isotropic Gaussian noise, half of
them with sigma 0.0025 and half with sigma 0.025 (normalised units; the unit bounding sphere has radius 1).
The small sigma resolves the zero level set, the large one the band DeepSDF clamps at 0.1. The other half
are uniform in [-1, 1]^3. Distances are exact point-to-triangle distances (libigl AABB tree). Signs come
from the fast generalised winding number, right even on holed or overlapping meshes; for a mesh known to
bound a solid without internal faces (``solid=True``: what make_watertight returns) the angle-weighted
pseudonormal of the closest feature is exact too and free with the distance, which saves ~40 % of the
time. (trimesh's is_watertight is not enough: overlapping closed parts pass it and get ~2 % wrong signs.)
Points are shuffled, so any prefix is an unbiased subsample.
"""

from __future__ import annotations

import igl
import numpy as np
import trimesh

NEAR_SIGMAS = (0.0025, 0.025)


def signed_distance(mesh: trimesh.Trimesh, points: np.ndarray, solid: bool = False) -> np.ndarray:
    """Exact distance to the surface, negative inside (float64 [N])."""
    sign = igl.SIGNED_DISTANCE_TYPE_PSEUDONORMAL if solid else igl.SIGNED_DISTANCE_TYPE_FAST_WINDING_NUMBER
    V = np.ascontiguousarray(mesh.vertices, dtype=np.float64)
    F = np.ascontiguousarray(mesh.faces, dtype=np.int64)
    return in_morton_order(lambda q: igl.signed_distance(q, V, F, sign_type=sign)[0], points)


def in_morton_order(query, points: np.ndarray) -> np.ndarray:
    """``query(points)`` evaluated along a Z-order curve: neighbouring queries then walk the same branches
    of libigl's trees while they are in cache, which halved the SDF time on the 95k-face benchmark mesh."""
    order = morton_order(points)
    out = np.empty(len(points))
    out[order] = query(np.ascontiguousarray(points[order], dtype=np.float64))
    return out


def morton_order(points: np.ndarray, bits: int = 10) -> np.ndarray:
    """Permutation that sorts points along a Z-order (Morton) curve."""
    lo, hi = points.min(axis=0), points.max(axis=0)
    q = ((points - lo) / np.maximum(hi - lo, 1e-12) * (2**bits - 1)).astype(np.int64)
    code = np.zeros(len(points), dtype=np.int64)
    for b in range(bits):
        for axis in range(3):
            code |= ((q[:, axis] >> b) & 1) << (3 * b + axis)
    return np.argsort(code, kind="stable")


def sample_points(mesh: trimesh.Trimesh, n_points: int = 200_000, near_fraction: float = 0.5,
                  sigmas: tuple[float, ...] = NEAR_SIGMAS, seed: int = 0) -> np.ndarray:
    """Query points: ``near_fraction`` near the surface (split evenly over ``sigmas``), the rest uniform."""
    rng = np.random.default_rng(seed)
    n_near = int(round(n_points * near_fraction))
    surface, _ = trimesh.sample.sample_surface(mesh, n_near, seed=rng)
    noise = np.repeat(np.asarray(sigmas), -(-n_near // len(sigmas)))[:n_near, None]
    near = surface + rng.standard_normal((n_near, 3)) * noise
    uniform = rng.uniform(-1.0, 1.0, size=(n_points - n_near, 3))
    points = np.concatenate([near, uniform])
    return points[rng.permutation(n_points)]


def sample_sdf(mesh: trimesh.Trimesh, n_points: int = 200_000, near_fraction: float = 0.5,
               sigmas: tuple[float, ...] = NEAR_SIGMAS, seed: int = 0, solid: bool = False
               ) -> tuple[np.ndarray, np.ndarray]:
    """Return (points float32 [N, 3], sdf float32 [N]) for a normalised mesh (see ``signed_distance``)."""
    points = sample_points(mesh, n_points, near_fraction, sigmas, seed)
    sdf = signed_distance(mesh, points, solid)
    return points.astype(np.float32), sdf.astype(np.float32)
