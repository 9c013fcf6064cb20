"""SDF → mesh: coarse-to-fine grid evaluation and marching cubes (the paper's meshes, §5.3).

A dense 256³ grid costs 257³ ≈ 17 M decoder evaluations, nearly all far from the surface. Instead the
field is evaluated on a coarse grid and refined ×2 at a time, re-evaluating only the fine vertices of cells
that hold surface; every other fine vertex takes the trilinear interpolation of the coarse values, which
keeps its sign. Which cells are refined:

- the first refinement takes every cell with a sign change among its corners or a corner with
  |s| < ``margin`` × the cell diagonal. For a 1-Lipschitz field every point of a cell lies within half the
  diagonal of a corner, so ``margin`` = 0.5 finds every surface the first fine grid can show;
- later ones take the cells with a sign change, then **follow the surface**: a fine cell the surface
  crosses that still has an interpolated corner means the surface left the refined cells, so its coarse
  cell is refined too, until the surface closes. Every triangle therefore comes from evaluated vertices,
  and a part that the previous level already showed is never cut off. Only specks smaller than a cell of
  the first fine grid (1/32 of the box at 128³) that no coarser vertex saw can be missed, and only
  ``thorough=True`` (used by ``keep="all"``) keeps the margin at every level to find those too.

Marching cubes (scikit-image) then runs on the full fine grid, padded with a positive border so the
surface is closed even where it touches the bounding box. By default only the largest connected
component is kept (``keep="largest"``): the output is one watertight mesh and floaters of a learned field
are dropped; ``keep="all"`` keeps every component.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import trimesh

from ..errors import UserError
from ..models.decoder import decoder_sdf_fn

SDFFunction = Callable[[np.ndarray], np.ndarray]  # points [N, 3] float32 → sdf [N]


@dataclass
class SDFGrid:
    values: np.ndarray  # [R+1, R+1, R+1] float32; vertex (i, j, k) sits at -bound + (i, j, k) · spacing
    bound: float
    evaluations: int  # how many points the SDF function was asked for

    @property
    def resolution(self) -> int:
        return self.values.shape[0] - 1

    @property
    def spacing(self) -> float:
        return 2.0 * self.bound / self.resolution


def default_coarse(resolution: int, smallest: int = 32) -> int:
    """The coarsest grid reachable from ``resolution`` by halving while staying ≥ ``smallest`` cells."""
    coarse = resolution
    while coarse % 2 == 0 and coarse // 2 >= smallest:
        coarse //= 2
    return coarse


def _vertices(index: np.ndarray, spacing: float, bound: float) -> np.ndarray:
    return (index * spacing - bound).astype(np.float32)


def dense_grid(sdf_fn: SDFFunction, resolution: int, bound: float = 1.0) -> SDFGrid:
    """Evaluate every vertex (the reference, as in DeepSDF's ``create_mesh``)."""
    axis = np.linspace(-bound, bound, resolution + 1, dtype=np.float32)
    pts = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1).reshape(-1, 3)
    values = np.asarray(sdf_fn(pts), dtype=np.float32).reshape((resolution + 1,) * 3)
    return SDFGrid(values, bound, len(pts))


def sparse_grid(sdf_fn: SDFFunction, resolution: int, bound: float = 1.0, coarse: int | None = None,
                margin: float = 0.5, thorough: bool = False) -> SDFGrid:
    """Coarse-to-fine evaluation up to ``resolution`` cells per axis (see the module docstring)."""
    coarse = coarse or default_coarse(resolution)
    levels = resolution // coarse
    if resolution % coarse or levels & (levels - 1):
        raise UserError(f"resolution {resolution} must be the coarse resolution {coarse} times a power of 2")
    grid = dense_grid(sdf_fn, coarse, bound)
    values, evaluations = grid.values, grid.evaluations
    known = np.ones(values.shape, dtype=bool)  # vertices whose value is the field's, not interpolated
    r = coarse
    while r < resolution:
        lo, hi = _cell_range(values)
        cell_diag = np.sqrt(3.0) * 2.0 * bound / r
        near = (lo <= 0) & (hi >= 0)
        if r == coarse or thorough:  # also cells near the surface: parts the coarser grid did not show
            near |= np.minimum(np.abs(lo), np.abs(hi)) < margin * cell_diag
        fine = 2 * r
        values = torch.nn.functional.interpolate(torch.from_numpy(values)[None, None], size=(fine + 1,) * 3,
                                                 mode="trilinear", align_corners=True)[0, 0].numpy()
        fine_known = np.zeros(values.shape, dtype=bool)
        fine_known[::2, ::2, ::2] = known
        known, refined = fine_known, np.zeros_like(near)
        while near.any():  # refine, then follow the surface out of the refined cells until it closes
            refined |= near
            # work in the box of the cells to refine plus one cell around: the surface can only leave them
            # into a neighbour
            cells = np.argwhere(near)
            c0, c1 = np.maximum(cells.min(0) - 1, 0), np.minimum(cells.max(0) + 2, r)
            box = tuple(slice(a, b) for a, b in zip(c0, c1, strict=True))
            fine_box = tuple(slice(2 * a, 2 * b + 1) for a, b in zip(c0, c1, strict=True))
            n = c1 - c0
            need = np.zeros(2 * n + 1, dtype=bool)
            for a, b, c in itertools.product(range(3), repeat=3):  # the 3×3×3 fine vertices of each cell
                need[a:a + 2 * n[0]:2, b:b + 2 * n[1]:2, c:c + 2 * n[2]:2] |= near[box]
            box_values, box_known = values[fine_box], known[fine_box]  # views
            need &= ~box_known
            if need.any():
                pts = _vertices(np.argwhere(need) + 2 * c0, 2.0 * bound / fine, bound)
                box_values[need] = np.asarray(sdf_fn(pts), dtype=np.float32)
                evaluations += len(pts)
                box_known |= need
            # a fine cell that the surface crosses but that has an interpolated corner: the surface left
            lo, hi = _cell_range(box_values)
            escaped = (lo <= 0) & (hi >= 0) & ~_cell_all(box_known)
            near = np.zeros_like(refined)
            near[box] = escaped.reshape(n[0], 2, n[1], 2, n[2], 2).any(axis=(1, 3, 5)) & ~refined[box]
        r = fine
    return SDFGrid(values, bound, evaluations)


def _cell_range(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Min and max over the 8 corners of every cell of a vertex grid [A+1, B+1, C+1] → two [A, B, C]."""
    return _over_corners(values, np.minimum, np.maximum)


def _cell_all(mask: np.ndarray) -> np.ndarray:
    """Whether all 8 corners of every cell of a boolean vertex grid [A+1, B+1, C+1] are set → [A, B, C]."""
    return _over_corners(mask, np.logical_and)[0]


def _over_corners(values: np.ndarray, *ufuncs: np.ufunc) -> tuple[np.ndarray, ...]:
    """Each binary ufunc folded over the 8 corners of every cell, in one pass over the corners."""
    a, b, c = (n - 1 for n in values.shape)
    out = tuple(values[:a, :b, :c].copy() for _ in ufuncs)
    for i, j, k in itertools.product((0, 1), repeat=3):
        corner = values[i:i + a, j:j + b, k:k + c]
        for ufunc, acc in zip(ufuncs, out, strict=True):
            ufunc(acc, corner, out=acc)
    return out


def grid_to_mesh(grid: SDFGrid, keep: str = "largest") -> trimesh.Trimesh:
    """Marching cubes at level 0 on a positively padded grid; outward-facing, watertight."""
    from skimage.measure import marching_cubes

    lo, hi = float(grid.values.min()), float(grid.values.max())
    if not lo < 0 < hi:
        raise UserError(f"the SDF has no zero crossing in [-{grid.bound}, {grid.bound}]³ (min {lo:.4f}, "
                        f"max {hi:.4f}): this latent does not decode to a surface")
    padded = np.pad(grid.values, 1, constant_values=1e6)  # caps the surface on the bounding box itself
    h = grid.spacing
    verts, faces, _, _ = marching_cubes(padded, level=0.0, spacing=(h, h, h))
    # with spacing > 0 and values rising outward, scikit-image's winding already gives outward normals
    mesh = trimesh.Trimesh(verts - h - grid.bound, faces, process=True)
    if keep == "largest":
        parts = mesh.split(only_watertight=False)
        total = mesh.area
        mesh = max(parts, key=lambda m: m.area) if len(parts) > 1 else mesh
        mesh.metadata["kept_area_share"] = float(mesh.area / total) if total > 0 else 1.0
    elif keep != "all":
        raise UserError(f"keep={keep!r}: choose 'largest' or 'all'")
    return mesh


def extract_mesh(decoder: torch.nn.Module, latent: torch.Tensor, resolution: int = 128, bound: float = 1.0,
                 coarse: int | None = None, keep: str = "largest") -> trimesh.Trimesh:
    """Mesh the zero level set of f_φ(latent, ·) in [-bound, bound]³ at ``resolution`` cells per axis.

    ``mesh.metadata["sdf_evaluations"]`` records the decoder evaluations spent. Raises ``UserError`` when the
    field has no zero crossing (empty or all-inside).
    """
    return mesh_sdf(decoder_sdf_fn(decoder, latent), resolution, bound, coarse, keep)


def mesh_sdf(sdf_fn: SDFFunction, resolution: int = 128, bound: float = 1.0, coarse: int | None = None,
             keep: str = "largest") -> trimesh.Trimesh:
    """Mesh the zero level set of any SDF function (a decoder's shape, a per-shape MLP) like
    :func:`extract_mesh`."""
    grid = sparse_grid(sdf_fn, resolution, bound, coarse, thorough=keep == "all")
    mesh = grid_to_mesh(grid, keep)
    mesh.metadata["sdf_evaluations"] = grid.evaluations
    return mesh
