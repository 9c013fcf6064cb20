"""Camera conventions: Fibonacci poses on the sphere, OpenGL camera-to-world looking at the origin."""

import numpy as np
import pytest

from img2sdf.data.cameras import (
    FOV_Y_DEG,
    azimuth_elevation,
    camera_rays,
    fibonacci_views,
    focal_pixels,
    look_at,
)
from img2sdf.errors import UserError


def test_fibonacci_poses_lie_on_the_sphere_and_look_at_the_origin():
    c2w = fibonacci_views(64, 2.5)
    assert c2w.shape == (64, 4, 4) and c2w.dtype == np.float32
    centres = c2w[:, :3, 3].astype(np.float64)
    np.testing.assert_allclose(np.linalg.norm(centres, axis=1), 2.5, rtol=1e-6)
    # OpenGL: the camera looks down its -Z axis, so -Z (world) points from the centre to the origin.
    forward = -c2w[:, :3, 2]
    np.testing.assert_allclose(forward, -centres / 2.5, atol=1e-6)
    rot = c2w[:, :3, :3].astype(np.float64)
    np.testing.assert_allclose(rot @ rot.transpose(0, 2, 1), np.broadcast_to(np.eye(3), rot.shape), atol=1e-6)
    np.testing.assert_allclose(np.linalg.det(rot), 1.0, atol=1e-6)
    np.testing.assert_allclose(c2w[:, 3], np.broadcast_to([0, 0, 0, 1], (64, 4)))
    # Near-uniform coverage: the centroid is near the origin, no two views nearly coincide.
    assert np.linalg.norm(centres.mean(0)) < 0.05
    d = np.linalg.norm(centres[:, None] - centres[None], axis=-1) + np.eye(64) * 10
    assert d.min() > 0.5


def test_image_up_is_world_up_for_a_horizontal_camera_and_poles_are_finite():
    c2w = look_at(np.array([[0.0, 0.0, 2.5], [2.5, 0.0, 0.0], [0.0, 2.5, 0.0], [0.0, -2.5, 0.0]]))
    np.testing.assert_allclose(c2w[0, :3, :3], np.eye(3), atol=1e-12)  # at +Z the camera frame is the world's
    np.testing.assert_allclose(c2w[1, :3, 1], [0, 1, 0], atol=1e-12)
    np.testing.assert_allclose(c2w[1, :3, 0], [0, 0, -1], atol=1e-12)  # from +X, image-right is world -Z
    assert np.isfinite(c2w).all()
    poles = c2w[2:, :3, :3]
    np.testing.assert_allclose(poles @ poles.transpose(0, 2, 1), np.stack([np.eye(3)] * 2), atol=1e-12)
    az, el = azimuth_elevation(c2w)
    np.testing.assert_allclose(az[:2], [0.0, 90.0], atol=1e-9)
    np.testing.assert_allclose(el, [0.0, 0.0, 90.0, -90.0], atol=1e-9)


def test_rays_project_a_point_to_its_analytic_pixel():
    res = 64
    c2w = look_at(np.array([[0.0, 0.0, 2.5]]))
    origins, dirs = camera_rays(c2w, res)
    f = focal_pixels(res, FOV_Y_DEG)
    # A point at camera-frame (x, y, -z) lands at column cx + f x / z and row cy - f y / z.
    row, col = 10, 50
    ray = dirs[0, row * res + col].astype(np.float64)
    t = 2.5 / -ray[2]
    p = origins[0, 0] + t * ray
    np.testing.assert_allclose(res / 2 + f * p[0] / 2.5, col + 0.5, atol=1e-4)
    np.testing.assert_allclose(res / 2 - f * p[1] / 2.5, row + 0.5, atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(dirs, axis=-1), 1.0, atol=1e-6)


def test_the_documented_fov_frames_the_unit_sphere_with_a_margin():
    """Every view of fibonacci_views at distance 2.5 sees the whole unit sphere, filling most of the frame:
    the rays that hit it form a disc that touches no image border and spans > 85 % of the width."""
    res = 64
    origins, dirs = camera_rays(fibonacci_views(6, 2.5), res, FOV_Y_DEG)
    o, d = origins.astype(np.float64), dirs.astype(np.float64)
    b = (o * d).sum(-1)
    hits = (b**2 - ((o * o).sum(-1) - 1.0) >= 0) & (b < 0)  # ray meets |p| = 1 in front of the camera
    for view in hits.reshape(-1, res, res):
        assert not (view[0].any() or view[-1].any() or view[:, 0].any() or view[:, -1].any())
        assert view[res // 2].sum() > 0.85 * res  # not a small blob in a wide frame either


def test_bad_arguments_are_user_errors():
    with pytest.raises(UserError, match="views"):
        fibonacci_views(0, 2.5)
    with pytest.raises(UserError, match="distance"):
        fibonacci_views(8, 0.5)
