"""The procedural synthetic source: closed solids, thin parts that survive a 128^3 grid, the wagon wheel's
and mug's topology measured from the mesh, determinism, and the catalog's splits and stable prefixes."""

from __future__ import annotations

import dataclasses

import igl
import numpy as np
import pytest
import trimesh
from scipy.spatial import cKDTree

from img2sdf.data.synthetic import (
    OOD_CATEGORIES,
    TRAIN_CATEGORIES,
    SyntheticSpec,
    build,
    build_category,
    catalog,
)
from img2sdf.data.synthetic.curves import self_clearance
from img2sdf.data.synthetic.primitives import sweep, to_trimesh
from img2sdf.errors import UserError

ALL = TRAIN_CATEGORIES + OOD_CATEGORIES
SEEDS = (0, 1, 2)


def _shape(category: str, seed: int) -> trimesh.Trimesh:
    return build_category(category, np.random.default_rng(seed))


def _bounding_radius(mesh: trimesh.Trimesh) -> float:
    return float(np.linalg.norm(mesh.vertices - mesh.bounds.mean(axis=0), axis=1).max())


def _inward_thickness(mesh: trimesh.Trimesh, n: int = 2000) -> np.ndarray:
    """Local thickness at random surface points: the distance a ray travels inwards along -normal before
    it leaves the solid (embree), as a fraction of the bounding radius."""
    points, face = trimesh.sample.sample_surface(mesh, n, seed=0)
    inward = -mesh.face_normals[face]
    radius = _bounding_radius(mesh)
    origins = points + inward * 1e-5 * radius
    hits, ray, _ = mesh.ray.intersects_location(origins, inward, multiple_hits=False)
    depth = np.full(n, np.inf)
    depth[ray] = np.linalg.norm(hits - origins[ray], axis=1)
    return depth / radius


def _max_winding(mesh: trimesh.Trimesh, n: int = 20000) -> float:
    """Largest generalised winding number over random points of the bounding box: 1 inside a simple
    solid, 2 or more where the surface overlaps itself (which watertightness checks cannot see)."""
    query = np.random.default_rng(0).uniform(mesh.bounds[0], mesh.bounds[1], (n, 3))
    return float(
        igl.fast_winding_number(mesh.vertices.astype(np.float64), mesh.faces.astype(np.int64), query).max()
    )


@pytest.mark.parametrize("category", ALL)
def test_every_category_builds_one_closed_outward_solid(category):
    for seed in SEEDS:
        mesh = _shape(category, seed)
        label = f"{category} seed {seed}"
        assert mesh.is_watertight and mesh.is_winding_consistent, label
        assert mesh.volume > 0, label  # outward orientation
        assert mesh.body_count == 1, label  # no floating parts, no internal voids
        assert 2000 <= len(mesh.faces) <= 60000, label
        # Centred on its bounding box, Y up: the pipeline normalises it later.
        np.testing.assert_allclose(mesh.bounds.mean(axis=0), 0.0, atol=1e-6)


@pytest.mark.parametrize("category", ALL)
def test_thin_parts_are_at_least_five_percent_of_the_radius_thick(category):
    """Thin parts need a radius >= 2.5 % of the bounding radius (a 5 % diameter, >= 3 voxels at 128^3
    over [-1, 1]); the few samples below that sit next to edges and corners, never on a whole part."""
    for seed in SEEDS[:2]:
        thickness = _inward_thickness(_shape(category, seed))
        assert np.mean(thickness < 0.05) < 0.01, f"{category} seed {seed}"


def test_swept_tubes_do_not_overlap_themselves():
    """Booleans and hulls cannot self-intersect, but a swept tube can if its radius exceeds the curve's
    clearance: the generalised winding number reaches 2 inside any overlap."""
    for category in ("torus_knot", "helix_spring"):
        for seed in range(6):
            assert _max_winding(_shape(category, seed)) < 1.5, f"{category} seed {seed}"


def test_winding_check_flags_a_self_intersecting_tube():
    """Control for the overlap check above: a tube fatter than the knot's clearance overlaps itself."""
    phi = np.linspace(0, 2 * np.pi, 300, endpoint=False)
    radius = 1 + 0.4 * np.cos(3 * phi)
    knot = np.stack([radius * np.cos(2 * phi), radius * np.sin(2 * phi), 0.4 * np.sin(3 * phi)], 1)
    clearance = self_clearance(knot, True, 1.0)
    assert _max_winding(to_trimesh(sweep(knot, 0.3 * clearance, closed=True))) < 1.5
    assert _max_winding(to_trimesh(sweep(knot, 0.8 * clearance, closed=True))) > 1.5


def _genus(mesh: trimesh.Trimesh) -> int:
    return (2 - mesh.euler_number) // 2  # V - E + F = 2 - 2g for one closed orientable surface


def _spokes_crossing_circle(mesh: trimesh.Trimesh) -> int:
    """Spokes counted independently of the generator: runs of inside points on a circle between hub and
    rim, in the rim's mid-plane (the hub reaches at most 0.35 and the rim at least 0.88 of the radius)."""
    radial = np.linalg.norm(mesh.vertices[:, :2], axis=1)
    wheel_r = radial.max()
    rim_z = mesh.vertices[radial > 0.9 * wheel_r, 2]
    a = np.linspace(0, 2 * np.pi, 1440, endpoint=False)
    circle = np.stack(
        [0.6 * wheel_r * np.cos(a), 0.6 * wheel_r * np.sin(a), np.full_like(a, rim_z.mean())], 1
    )
    inside = (
        igl.fast_winding_number(mesh.vertices.astype(np.float64), mesh.faces.astype(np.int64), circle) > 0.5
    )
    return int(np.sum(inside & ~np.roll(inside, 1)))


def test_wagon_wheel_genus_equals_its_spoke_count():
    counts = []
    for seed in range(6):
        mesh = _shape("wagon_wheel", seed)
        spokes = _spokes_crossing_circle(mesh)
        assert 6 <= spokes <= 16
        assert _genus(mesh) == spokes, f"seed {seed}: hub + rim + {spokes} spokes must have genus {spokes}"
        counts.append(spokes)
    assert len(set(counts)) > 2  # the spoke count really varies


def test_mug_has_genus_one():
    for seed in range(4):
        assert _genus(_shape("mug", seed)) == 1


def test_build_is_deterministic_and_seeds_differ():
    for category in ("humanoid", "torus_knot", "shelf"):
        a, b = _shape(category, 7), _shape(category, 7)
        np.testing.assert_array_equal(a.vertices, b.vertices)
        np.testing.assert_array_equal(a.faces, b.faces)
        c = _shape(category, 8)
        assert a.vertices.shape != c.vertices.shape or not np.allclose(a.vertices, c.vertices)


def _normalised_samples(mesh: trimesh.Trimesh, n: int = 1500) -> np.ndarray:
    points, _ = trimesh.sample.sample_surface(mesh, n, seed=0)
    return (points - mesh.bounds.mean(axis=0)) / _bounding_radius(mesh)


def _chamfer(a: np.ndarray, b: np.ndarray) -> float:
    return float(cKDTree(b).query(a)[0].mean() + cKDTree(a).query(b)[0].mean()) / 2


@pytest.mark.parametrize("category", ALL)
def test_instances_within_a_category_differ(category):
    """Two instances differ after normalising to the unit sphere (L1 Chamfer over 1500 surface points)."""
    a, b = (_normalised_samples(_shape(category, s)) for s in (0, 1))
    assert _chamfer(a, b) > 0.02


def test_catalog_splits_round_robin_and_stable_prefixes():
    specs = catalog(20, 3, 5, seed=0)
    by_split = {s: [x for x in specs if x.split == s] for s in ("train", "test", "ood")}
    assert [len(by_split[s]) for s in ("train", "test", "ood")] == [20, 3, 5]
    assert {x.category for x in by_split["train"]} == set(TRAIN_CATEGORIES)  # the pilot covers all 16
    assert [x.category for x in by_split["test"]] == list(TRAIN_CATEGORIES[:3])
    assert [x.category for x in by_split["ood"]] == [*OOD_CATEGORIES, OOD_CATEGORIES[0]][:5]
    assert len({x.uid for x in specs}) == len({x.seed for x in specs}) == len(specs)
    assert all(x.uid == f"synthetic-{x.category}-{x.seed}" for x in specs)
    bigger = catalog(976, 122, 61, seed=0)  # the paper's scale with the CLI's default test/OOD counts
    big_train = [x for x in bigger if x.split == "train"]
    assert big_train[:20] == by_split["train"]
    assert [x for x in bigger if x.split == "test"][:3] == by_split["test"]
    assert len(bigger) == 976 + 122 + 61 and len({x.seed for x in bigger}) == len(bigger)
    other = catalog(20, 3, 5, seed=1)
    assert not {x.seed for x in other} & {x.seed for x in specs}
    assert len(TRAIN_CATEGORIES) >= 16 and len(OOD_CATEGORIES) >= 3
    assert not set(TRAIN_CATEGORIES) & set(OOD_CATEGORIES)


def test_build_follows_the_spec_and_rejects_bad_input():
    spec = catalog(1, 0, 0, seed=3)[0]
    np.testing.assert_array_equal(build(spec).vertices, _shape(spec.category, spec.seed).vertices)
    with pytest.raises(UserError, match="unknown synthetic category 'teapot'"):
        build_category("teapot", np.random.default_rng(0))
    with pytest.raises(UserError, match="is not in the ood split"):
        build(dataclasses.replace(spec, split="ood"))
    with pytest.raises(UserError, match="unknown split"):
        build(SyntheticSpec("x", "mug", "validation", 0))
    with pytest.raises(UserError, match="n_train=-1"):
        catalog(-1, 0, 0)
    with pytest.raises(UserError, match="seed=-2"):
        catalog(1, 1, 1, seed=-2)
