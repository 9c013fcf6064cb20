"""Surface metrics against analytic truth (protocol in img2sdf.eval.metrics)."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from img2sdf.data import analytic
from img2sdf.eval.metrics import METRIC_PROTOCOL, surface_metrics


def test_identical_meshes_are_perfect():
    m = surface_metrics(analytic.torus_mesh(0.5, 0.2), analytic.torus_mesh(0.5, 0.2), n_points=20_000)
    assert m["chamfer_l1"] == 0 and m["chamfer_l2"] == 0
    assert m["fscore_1pct"] == 1 and m["fscore_2pct"] == 1 and m["iou"] == 1
    assert m["normal_consistency"] == pytest.approx(1.0)


def test_concentric_spheres_match_closed_form():
    r, R = 0.5, 0.56  # every point of one sphere is exactly R - r from the other
    m = surface_metrics(analytic.sphere_mesh(r), analytic.sphere_mesh(R), n_points=50_000)
    assert m["chamfer_l1"] == pytest.approx(R - r, abs=2e-3)
    assert m["chamfer_l2"] == pytest.approx((R - r) ** 2, rel=0.05)
    assert m["iou"] == pytest.approx((r / R) ** 3, abs=0.01)
    assert m["normal_consistency"] == pytest.approx(1.0, abs=1e-3)
    diag = 2 * R * np.sqrt(3)  # bbox diagonal of the GT sphere: τ(2 %) = 0.039 < R - r
    assert 0.02 * diag < R - r and m["fscore_1pct"] == 0 and m["fscore_2pct"] == 0
    close = surface_metrics(analytic.sphere_mesh(0.55), analytic.sphere_mesh(0.56), n_points=50_000)
    assert close["fscore_2pct"] == 1.0  # 0.01 < τ(2 %) = 0.039


def test_box_against_shifted_box():
    a = analytic.box_mesh(0.4)
    b = analytic.box_mesh(0.4).apply_translation((0.2, 0, 0))
    m = surface_metrics(a, b, n_points=50_000)
    # overlap 0.6 × 0.8 × 0.8 of two 0.8³ cubes: IoU = 0.6 / 1.0
    assert m["iou"] == pytest.approx(0.6 / 1.0, abs=0.01)
    assert 0 < m["fscore_1pct"] < 1


def test_concentric_spheres_follow_the_stated_protocol():
    """Spheres of radius 0.5 (pred) and 0.52 (gt) are 0.02 apart everywhere: Chamfer-L1 = 0.02 and
    Chamfer-L2 = 0.02² as the protocol states (mean, and mean squared, distances), and the F-score switches
    from 0 to 1 between its thresholds, 1 % (0.018) and 2 % (0.036) of the gt bounding-box diagonal."""
    pred, gt = trimesh.creation.icosphere(6, 0.5), trimesh.creation.icosphere(6, 0.52)
    m = surface_metrics(pred, gt, n_points=20_000)
    assert m["chamfer_l1"] == pytest.approx(0.02, rel=0.02)
    assert m["chamfer_l2"] == pytest.approx(0.02**2, rel=0.04)
    assert m["fscore_1pct"] < 0.01 and m["fscore_2pct"] > 0.99
    assert m["iou"] == pytest.approx((0.5 / 0.52) ** 3, abs=0.02)
    assert m["normal_consistency"] > 0.99
    # every reported score is one the protocol (written into each metrics.json) defines
    reported = set(m) - set(METRIC_PROTOCOL["fscore_thresholds"])
    assert reported <= set(METRIC_PROTOCOL) and set(METRIC_PROTOCOL["fscore_thresholds"]) <= set(m)
