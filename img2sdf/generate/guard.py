"""Never hand a user a blob without saying so: checks on a sampled latent and on the mesh it decodes to.

*Off the training range.* A DDIM sample can land far from every training latent (an input unlike the
training views); the decoder then extrapolates, typically to a field that is negative almost everywhere
(a box-filling blob) or has no surface. :class:`LatentGuard` measures the Mahalanobis distance of a latent
to the training latents (covariance shrunk towards its diagonal: there are often fewer shapes than the 64
dimensions) and calibrates it on the training latents themselves, leave-one-out: a latent farther than the
farthest held-out training latent is *off the training range*. ``project`` pulls such a latent back along
the ray from the training mean to that boundary (the guarded option of ``generate --guard``).

*Degenerate meshes.* :func:`mesh_flags` names meshes that fill the box (touching most of its six sides),
that are tiny, or whose largest part holds little of the surface the field had (fragments).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BOX_TOUCH_SIDES = 4  # a mesh reaching this many of the 6 box faces fills the box
BOX_TOUCH_MARGIN = 0.03  # within this of the bound counts as touching
TINY_EXTENT = 0.1  # a largest side below this (of the 2.0 box) is a speck
FRAGMENT_SHARE = 0.5  # the kept component holds less than this share of the surface area


@dataclass
class LatentCheck:
    distance: float  # Mahalanobis distance to the training latents
    limit: float  # the farthest leave-one-out distance of a training latent
    nearest_cos: float  # cosine to the nearest training latent

    @property
    def off_range(self) -> bool:
        return self.distance > self.limit

    def message(self) -> str:
        return (f"the sampled latent lies off the training range (Mahalanobis distance {self.distance:.1f} > "
                f"{self.limit:.1f}, the farthest training shape; nearest training latent at cos "
                f"{self.nearest_cos:.2f}): the mesh is an extrapolation, likely a blob; try other photos, "
                f"or --guard project")


class LatentGuard:
    """Mahalanobis distance to a set of training latents [N, L], calibrated leave-one-out."""

    def __init__(self, latents: np.ndarray, shrinkage: float | None = None):
        z = np.asarray(latents, dtype=np.float64)
        n, d = z.shape
        self.latents = z
        self.mean = z.mean(0)
        # Ledoit-Wolf-style fixed shrinkage: half towards the diagonal when N ~ d, less with more shapes
        self.shrinkage = min(1.0, d / max(n, 1) * 0.5) if shrinkage is None else shrinkage
        self.precision = np.linalg.inv(self._covariance(z))
        self.limit = self._leave_one_out(z) if n > 2 else float("inf")

    def _covariance(self, z: np.ndarray) -> np.ndarray:
        c = np.cov(z, rowvar=False) if len(z) > 1 else np.eye(z.shape[1])
        return self._shrink(c)

    def _shrink(self, c: np.ndarray) -> np.ndarray:
        """(1 − λ) C + λ diag(C) for one covariance [d, d] or a batch [B, d, d]."""
        d = c.shape[-1]
        diag = np.diagonal(c, axis1=-2, axis2=-1)[..., None] * np.eye(d) + 1e-8 * np.eye(d)
        return (1 - self.shrinkage) * c + self.shrinkage * diag

    def _leave_one_out(self, z: np.ndarray, batch: int = 256) -> float:
        """The largest distance of a training latent to the other N − 1 (their mean and shrunk covariance).

        Without latent i, with u = zᵢ − mean: the mean moves by −u/(N−1), so zᵢ sits N/(N−1)·u from it,
        and the scatter matrix loses N/(N−1)·u uᵀ; the N covariances are then shrunk and solved in batches
        (one matrix inverse per shape, in one LAPACK call per batch)."""
        n = len(z)
        u = z - z.mean(0)
        scatter = u.T @ u
        far = 0.0
        for s in range(0, n, batch):
            ub = u[s:s + batch]
            cov = (scatter - n / (n - 1) * ub[:, :, None] * ub[:, None, :]) / (n - 2)
            delta = n / (n - 1) * ub
            sol = np.linalg.solve(self._shrink(cov), delta[..., None])[..., 0]
            far = max(far, float(np.sqrt(np.max(np.einsum("bi,bi->b", delta, sol)))))
        return far

    def distance(self, latent: np.ndarray) -> np.ndarray:
        delta = np.atleast_2d(np.asarray(latent, dtype=np.float64)) - self.mean
        return np.sqrt(np.einsum("bi,ij,bj->b", delta, self.precision, delta))

    def check(self, latent: np.ndarray) -> LatentCheck:
        z = np.asarray(latent, dtype=np.float64).ravel()
        unit = self.latents / np.maximum(np.linalg.norm(self.latents, axis=1, keepdims=True), 1e-12)
        cos = float((unit @ (z / max(np.linalg.norm(z), 1e-12))).max())
        return LatentCheck(float(self.distance(z)[0]), self.limit, cos)

    def project(self, latent: np.ndarray) -> np.ndarray:
        """The latent itself when within range, else the point at the range's boundary on the ray from the
        training mean through it."""
        z = np.asarray(latent, dtype=np.float64)
        d = self.distance(z).reshape(z.shape[:-1] + (1,)) if z.ndim > 1 else self.distance(z)[0]
        scale = np.minimum(1.0, self.limit / np.maximum(d, 1e-12))
        return (self.mean + (z - self.mean) * scale).astype(np.float32)


def mesh_flags(mesh, bound: float = 1.0) -> list[str]:
    """Names of what is wrong with a decoded mesh (empty when it looks like an object)."""
    lo, hi = mesh.bounds
    touching = int((lo <= -bound + BOX_TOUCH_MARGIN).sum() + (hi >= bound - BOX_TOUCH_MARGIN).sum())
    flags = []
    if touching >= BOX_TOUCH_SIDES:
        flags.append(f"box-filling (touches {touching} of the 6 sides of the [-{bound:g}, {bound:g}]³ box)")
    if float((hi - lo).max()) < TINY_EXTENT:
        flags.append(f"tiny (largest side {float((hi - lo).max()):.3f})")
    share = mesh.metadata.get("kept_area_share")
    if share is not None and share < FRAGMENT_SHARE:
        flags.append(f"fragmented (the kept part has {share:.0%} of the surface)")
    return flags
