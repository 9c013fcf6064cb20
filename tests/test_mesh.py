"""Coarse-to-fine marching cubes on analytic SDFs: same mesh as the dense grid, on the analytic surface."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from img2sdf.data import analytic
from img2sdf.errors import UserError
from img2sdf.generate.mesh import dense_grid, extract_mesh, grid_to_mesh, sparse_grid


def thin_torus(p: np.ndarray) -> np.ndarray:
    return analytic.torus_sdf(p.astype(np.float64), 0.6, 0.04).astype(np.float32)


def test_sparse_grid_reproduces_the_dense_mesh_with_far_fewer_evaluations():
    sparse, dense = sparse_grid(thin_torus, 128), dense_grid(thin_torus, 128)
    assert dense.evaluations == 129 ** 3
    assert sparse.evaluations * 5 < dense.evaluations
    a, b = grid_to_mesh(sparse), grid_to_mesh(dense)
    assert np.array_equal(a.faces, b.faces) and np.allclose(a.vertices, b.vertices, atol=1e-6)


def test_mesh_lies_on_the_analytic_surface():
    grid = sparse_grid(thin_torus, 128)
    mesh = grid_to_mesh(grid)
    assert mesh.is_watertight and mesh.is_winding_consistent and mesh.body_count == 1
    assert np.abs(thin_torus(mesh.vertices)).max() < 0.1 * grid.spacing
    true_volume = 2 * np.pi ** 2 * 0.6 * 0.04 ** 2
    # positive: normals face outward; marching cubes cuts corners of a tube only 2.5 cells thick (~3 % low)
    assert mesh.volume == pytest.approx(true_volume, rel=0.05)


def capsule_sdf(p: np.ndarray, a, b, r: float) -> np.ndarray:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    t = np.clip((p - a) @ (b - a) / ((b - a) @ (b - a)), 0.0, 1.0)
    return np.linalg.norm(p - (a + t[:, None] * (b - a)), axis=1) - r


def ball_with_a_wire(p: np.ndarray) -> np.ndarray:
    """A ball with a wire (radius 0.012, under half a 64³ cell) leaving it, plus a speck of the same radius
    centred in a 64³ cell: only 128³ vertices fall inside it."""
    p = p.astype(np.float64)
    ball = analytic.sphere_sdf(p - np.array([-0.4, 0.0, 0.0]), 0.3)
    wire = capsule_sdf(p, (-0.2, 0.01, 0.003), (0.8, 0.37, 0.23), 0.012)
    speck = analytic.sphere_sdf(p - np.array([-1 + 41.5 / 32, -1 + 12.5 / 32, -1 + 16.5 / 32]), 0.012)
    return np.minimum(np.minimum(ball, wire), speck).astype(np.float32)


def test_refinement_follows_a_wire_the_coarser_grids_miss():
    """The 64³ grid sees the wire only in pieces; the 128³ mesh must still have all of it (surface
    following), equal to the dense grid's mesh, and keep="all" must also find the speck."""
    sparse, dense = sparse_grid(ball_with_a_wire, 128), dense_grid(ball_with_a_wire, 128)
    assert sparse.evaluations * 8 < dense.evaluations
    a, b = grid_to_mesh(sparse), grid_to_mesh(dense)
    assert len(a.faces) == len(b.faces) and np.allclose(np.sort(a.vertices, 0), np.sort(b.vertices, 0))
    assert a.bounds[1, 0] > 0.8  # the wire's far end
    everything = sparse_grid(ball_with_a_wire, 128, thorough=True)
    c, d = grid_to_mesh(everything, keep="all"), grid_to_mesh(dense, keep="all")
    assert c.body_count == d.body_count == 2
    assert len(c.faces) == len(d.faces) and np.allclose(np.sort(c.vertices, 0), np.sort(d.vertices, 0))


class SphereField(torch.nn.Module):
    """An analytic field with the decoder's call signature: |p - c| - r with (c, r) read from the latent."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))

    def forward(self, latents, points):
        return self.scale * (torch.linalg.norm(points - latents[:, :3], dim=-1) - latents[:, 3])


def test_extract_mesh_from_a_field_module():
    latent = torch.tensor([0.1, -0.2, 0.0, 0.5])
    mesh = extract_mesh(SphereField(), latent, resolution=64)
    assert mesh.is_watertight
    assert np.allclose(mesh.vertices.mean(0), [0.1, -0.2, 0.0], atol=1e-3)
    assert np.abs(np.linalg.norm(mesh.vertices - [0.1, -0.2, 0.0], axis=1) - 0.5).max() < 3e-3
    assert mesh.metadata["sdf_evaluations"] < 65 ** 3 / 2


def test_touching_the_bound_still_closes_the_mesh():
    mesh = extract_mesh(SphereField(), torch.tensor([0.0, 0.0, 0.0, 1.2]), resolution=32)
    assert mesh.is_watertight and np.allclose(mesh.bounds, [[-1, -1, -1], [1, 1, 1]], atol=1e-5)


def test_components_largest_or_all():
    def two_spheres(p):
        a = analytic.sphere_sdf(p - np.array([-0.5, 0, 0]), 0.3)
        b = analytic.sphere_sdf(p - np.array([0.5, 0, 0]), 0.2)
        return np.minimum(a, b).astype(np.float32)

    grid = sparse_grid(two_spheres, 64)
    largest, both = grid_to_mesh(grid), grid_to_mesh(grid, keep="all")
    assert largest.body_count == 1 and both.body_count == 2
    assert largest.centroid[0] == pytest.approx(-0.5, abs=0.01)


def test_empty_fields_and_bad_resolution_are_clear_errors():
    with pytest.raises(UserError, match="no zero crossing"):
        extract_mesh(SphereField(), torch.tensor([0.0, 0.0, 0.0, -0.5]), resolution=32)  # all outside
    with pytest.raises(UserError, match="no zero crossing"):
        extract_mesh(SphereField(), torch.tensor([0.0, 0.0, 0.0, 3.0]), resolution=32)  # all inside
    with pytest.raises(UserError, match="power of 2"):
        sparse_grid(thin_torus, 96, coarse=40)
