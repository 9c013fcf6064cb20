"""SDF samples against analytic truth (paper §2.2): values, signs and the sampling distribution."""

import numpy as np
import pytest

from img2sdf.data import analytic
from img2sdf.data.sdf import NEAR_SIGMAS, sample_points, sample_sdf, signed_distance

SOLIDS = {
    "sphere": (analytic.sphere_mesh(0.7), lambda p: analytic.sphere_sdf(p, 0.7)),
    "box": (analytic.box_mesh([0.5, 0.3, 0.4]), lambda p: analytic.box_sdf(p, [0.5, 0.3, 0.4])),
    "torus": (analytic.torus_mesh(0.6, 0.2), lambda p: analytic.torus_sdf(p, 0.6, 0.2)),
}


@pytest.mark.parametrize("solid", [True, False], ids=["pseudonormal", "winding"])
@pytest.mark.parametrize("name", sorted(SOLIDS))
def test_sdf_matches_analytic_truth(name, solid):
    mesh, truth = SOLIDS[name]
    points, sdf = sample_sdf(mesh, 20_000, seed=1, solid=solid)
    assert points.dtype == np.float32 and sdf.dtype == np.float32 and points.shape == (20_000, 3)
    exact = truth(points.astype(np.float64))
    # Facets are inscribed in the analytic surface: the only error is the chordal one (< 1e-3 here).
    assert np.abs(sdf - exact).mean() < 5e-4
    assert np.abs(sdf - exact).max() < 3e-3
    far = np.abs(exact) > 0.01
    assert np.mean(np.sign(sdf[far]) == np.sign(exact[far])) == 1.0
    assert 0.05 < np.mean(sdf < 0) < 0.6  # both sides are sampled


def test_winding_number_sign_on_overlapping_parts():
    """Two overlapping closed parts (not watertight as a union): signs stay right inside the overlap."""
    import trimesh

    union = trimesh.util.concatenate([analytic.sphere_mesh(0.5), analytic.box_mesh(0.35)])
    p = np.random.default_rng(0).uniform(-0.8, 0.8, (5000, 3))
    exact = np.minimum(analytic.sphere_sdf(p, 0.5), analytic.box_sdf(p, 0.35))
    d = signed_distance(union, p)
    far = np.abs(exact) > 0.01
    assert np.mean(np.sign(d[far]) == np.sign(exact[far])) == 1.0


def test_sampling_distribution():
    mesh = analytic.sphere_mesh(0.5)
    p = sample_points(mesh, 40_000, seed=3)
    r = np.linalg.norm(p, axis=1)
    near = np.abs(r - 0.5) < 4 * NEAR_SIGMAS[1]
    uniform_share = np.mean(np.abs(p).max(axis=1) <= 1.0)
    assert uniform_share > 0.5  # the uniform half plus the near points inside the cube
    # Near half: a quarter of all points within ~3 small sigmas of the surface, another quarter wider.
    tight = np.mean(np.abs(r - 0.5) < 3 * NEAR_SIGMAS[0])
    assert 0.24 < tight < 0.32
    assert 0.5 < near.mean() < 0.6
    assert np.array_equal(p, sample_points(mesh, 40_000, seed=3))  # deterministic by seed
