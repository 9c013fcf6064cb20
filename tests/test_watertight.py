"""Watertight conversion (paper §2.2): closed output from broken input, thin parts kept, bad input refused."""

import igl
import numpy as np
import pytest
import trimesh

from img2sdf.data import analytic
from img2sdf.data.sdf import signed_distance
from img2sdf.data.watertight import (
    ShapeError,
    WatertightConfig,
    check_mesh,
    grid_spacing,
    is_clean_solid,
    make_watertight,
)

OFFSET = 0.5 * grid_spacing(128)  # the default level set: half a voxel outside the input surface


def _truth_in_normalised(truth, transform):
    center, scale = np.asarray(transform["center"]), transform["scale"]
    return lambda p: truth(p / scale + center) * scale


def _assert_closed(mesh):
    assert mesh.is_watertight and mesh.is_winding_consistent and mesh.volume > 0


def test_clean_solid_is_kept_exactly():
    mesh = analytic.torus_mesh(0.6, 0.2, 64, 24)
    out, transform, info = make_watertight(mesh)
    assert info["method"] == "kept"
    assert transform["scale"] == pytest.approx(1 / 0.8)
    assert np.allclose(np.linalg.norm(out.vertices, axis=1).max(), 1.0)
    _assert_closed(out)
    assert len(out.faces) == len(mesh.faces)


def test_overlapping_parts_are_remeshed_into_one_solid():
    parts = [analytic.sphere_mesh(0.5, 4), analytic.torus_mesh(0.6, 0.15, 96, 32)]
    union = trimesh.util.concatenate(parts)
    assert union.is_watertight and union.is_winding_consistent  # trimesh alone would keep it
    assert not is_clean_solid(union)
    out, transform, info = make_watertight(union)
    assert info["method"] == "remeshed"
    _assert_closed(out)
    assert len(out.split(only_watertight=False)) == 1
    truth = _truth_in_normalised(
        lambda p: np.minimum(analytic.sphere_sdf(p, 0.5), analytic.torus_sdf(p, 0.6, 0.15)), transform)
    # The surface sits at the offset level set of the true union, within a fraction of a voxel.
    surface = out.sample(5000, seed=0)
    assert np.abs(truth(surface) - OFFSET).mean() < 0.002
    p = np.random.default_rng(0).uniform(-1, 1, (20_000, 3))
    exact, d = truth(p), signed_distance(out, p, solid=True)
    far = np.abs(exact) > 2 * OFFSET
    assert np.mean(np.sign(d[far]) == np.sign(exact[far])) > 0.999


def test_holed_and_inverted_inputs_become_closed_outward_solids():
    sphere = analytic.sphere_mesh(0.7, 4)
    holed = trimesh.Trimesh(sphere.vertices, sphere.faces[40:], process=False)  # a cap of faces removed
    inverted = trimesh.Trimesh(sphere.vertices, sphere.faces[:, ::-1], process=False)
    cfg = WatertightConfig(resolution=64)
    offset = 0.5 * grid_spacing(64)
    for mesh, closed_by_a_cap in ((holed, True), (inverted, False)):
        out, transform, info = make_watertight(mesh, cfg)
        assert info["method"] == "remeshed"
        _assert_closed(out)
        error = np.abs(np.linalg.norm(out.vertices, axis=1) - 1 - offset)  # the unit sphere, offset outwards
        assert np.median(error) < 0.003
        # The hole is spanned by a cap near its rim plane: the only place far from the sphere.
        assert (np.mean(error > 0.01) < 0.05) if closed_by_a_cap else (error.max() < 0.01)


def test_thin_spokes_survive():
    """A wheel whose spokes (radius 0.22 voxel after normalisation) fall between grid vertices."""
    parts, axes = [analytic.torus_mesh(0.8, 0.03, 96, 12), analytic.sphere_mesh(0.1, 3)], []
    for a in np.linspace(0, 2 * np.pi, 8, endpoint=False):
        d = np.array([np.cos(a), np.sin(a), 0.0])
        parts.append(trimesh.creation.cylinder(radius=0.003, segment=[0.05 * d, 0.82 * d], sections=8))
        axes.append(np.linspace(0.12, 0.76, 40)[:, None] * d)
    out, transform, _ = make_watertight(trimesh.util.concatenate(parts))
    _assert_closed(out)
    assert len(out.split(only_watertight=False)) == 1
    axis_points = (np.concatenate(axes) - transform["center"]) * transform["scale"]
    w = igl.fast_winding_number(np.asarray(out.vertices, float), np.asarray(out.faces, np.int64), axis_points)
    assert (w > 0.5).all()


def _bad(kind):
    sphere = analytic.sphere_mesh(0.5, 2)
    if kind == "nan":
        v = sphere.vertices.copy()
        v[5] = [np.nan, 0, np.inf]
        return trimesh.Trimesh(v, sphere.faces, process=False), "NaN/Inf"
    if kind == "planar":
        square = trimesh.Trimesh([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0]], [[0, 1, 2], [1, 3, 2]])
        return square, "planar"
    if kind == "empty":
        return trimesh.Trimesh(), "empty"
    if kind == "zero area":  # vertices span 3-D, but every triangle is degenerate
        v = [[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]]
        return trimesh.Trimesh(v, [[0, 0, 1], [2, 3, 3]], process=False), "zero-area"
    return sphere, "faces >"


@pytest.mark.parametrize("kind", ["nan", "planar", "empty", "zero area", "too many faces"])
def test_bad_meshes_are_refused_with_a_reason(kind):
    mesh, reason = _bad(kind)
    cfg = WatertightConfig(max_faces=100 if kind == "too many faces" else 2_000_000, resolution=48)
    with pytest.raises(ShapeError, match=reason):
        make_watertight(mesh, cfg)


def test_check_mesh_accepts_good_meshes_at_its_limits_and_leaves_them_unchanged():
    thin = trimesh.creation.box(extents=(0.6, 0.6, 0.002))  # thin, but it encloses a volume
    for mesh in (analytic.box_mesh(0.3), thin, analytic.sphere_mesh(0.5)):
        before = mesh.vertices.copy(), mesh.faces.copy()
        check_mesh(mesh, max_faces=len(mesh.faces))  # exactly at the face limit is allowed
        assert np.array_equal(mesh.vertices, before[0]) and np.array_equal(mesh.faces, before[1])
    with pytest.raises(ShapeError, match="planar"):  # the same box 10⁶ times thinner is a plane
        check_mesh(trimesh.creation.box(extents=(0.6, 0.6, 2e-9)))
    with pytest.raises(ShapeError, match="faces >"):
        check_mesh(thin, max_faces=len(thin.faces) - 1)


def _box(lo, hi):
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    centre = trimesh.transformations.translation_matrix((lo + hi) / 2)
    return trimesh.creation.box(extents=hi - lo, transform=centre)


def _box_sdf(p, lo, hi):
    centre, half = (np.asarray(lo) + hi) / 2, (np.asarray(hi) - lo) / 2
    q = np.abs(p - centre) - half
    return np.linalg.norm(np.maximum(q, 0), axis=1) + np.minimum(q.max(axis=1), 0)


# Unions of axis-aligned boxes whose faces fall on the bounding-box centre plane or other half-voxel
# positions of the grid (before the fix: "remeshed: watertight=False"), plus a generic offset as control.
BOX_UNIONS = {
    "touching along a face": [((-1, -1, -1), (0, 1, 1)), ((0, -1, 0), (1, 1, 1))],
    "overlapping L": [((-1, -1, -1), (0.5, 1, 1)), ((-0.5, -1, 0), (1, 1, 1))],
    "overlapping step": [((-1, -1, -1), (1, 1, 0)), ((-0.5, -0.5, -0.5), (0.5, 0.5, 1))],
    "flush quarter sizes": [((-0.125, -0.375, -0.375), (0.125, 0.375, 0.375)),
                            ((0.125, -0.375, 0.125), (0.375, 0.375, 0.375))],
    "small box on a big one": [((-1, -1, -1), (1, 1, 0.5)), ((-0.25, -0.25, 0), (0.25, 0.25, 1))],
    "generic offsets": [((-0.61, -0.5, -0.43), (0.37, 0.52, 0.3)), ((0.05, -0.21, -0.12), (0.83, 0.4, 0.71))],
}


@pytest.mark.parametrize("grid", [64, 128])
@pytest.mark.parametrize("name", list(BOX_UNIONS))
def test_unions_of_axis_aligned_boxes_become_one_closed_solid(name, grid):
    boxes = BOX_UNIONS[name]
    out, transform, info = make_watertight(trimesh.util.concatenate([_box(*b) for b in boxes]),
                                           WatertightConfig(resolution=grid))
    assert info["method"] == "remeshed"
    _assert_closed(out)
    assert len(out.split(only_watertight=False)) == 1
    truth = _truth_in_normalised(lambda p: np.min([_box_sdf(p, *b) for b in boxes], axis=0), transform)
    error = np.abs(truth(out.sample(5000, seed=0)) - 0.5 * grid_spacing(grid))
    assert error.mean() < 0.1 * grid_spacing(grid) and np.quantile(error, 0.99) < grid_spacing(grid)
