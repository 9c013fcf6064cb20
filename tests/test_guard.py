"""Off-range latents and degenerate meshes are named, not handed over silently (generate/guard.py)."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from test_generate import tiny_runs  # noqa: F401  (the shared tiny store + decoder + DiT fixture)

from img2sdf.errors import UserError
from img2sdf.generate.guard import LatentGuard, mesh_flags
from img2sdf.generate.mesh import dense_grid, grid_to_mesh


def test_latent_guard_calibrates_on_the_training_latents_and_projects_back():
    rng = np.random.default_rng(0)
    scales = np.linspace(0.2, 2.0, 16)  # anisotropic: Mahalanobis, not Euclidean, distance matters
    train = rng.normal(size=(40, 16)) * scales
    guard = LatentGuard(train)
    assert np.all(guard.distance(train) <= guard.limit)  # no training latent is off its own range
    typical = rng.normal(size=(200, 16)) * scales  # new draws from the same distribution
    assert np.mean(guard.distance(typical) > guard.limit) < 0.1
    far = train.mean(0) + 8.0 * scales * rng.normal(size=16)
    check = guard.check(far)
    assert check.off_range and "off the training range" in check.message()
    back = guard.project(far)
    assert abs(guard.distance(back)[0] - guard.limit) < 1e-3 * guard.limit
    cos = far - guard.mean, back - guard.mean  # along the same ray from the training mean
    assert np.dot(*cos) / np.linalg.norm(cos[0]) / np.linalg.norm(cos[1]) > 0.9999
    assert np.allclose(guard.project(train[3]), train[3], atol=1e-5)  # in range: unchanged
    # a small step along the largest-variance axis is in range, the same step along the smallest is not
    step = np.zeros(16)
    step[-1] = 3 * scales[-1]
    assert not guard.check(guard.mean + step).off_range
    step = np.zeros(16)
    step[0] = 3 * scales[-1]
    assert guard.check(guard.mean + step).off_range


def test_leave_one_out_limit_is_the_farthest_held_out_latent():
    """The closed-form, batched leave-one-out equals refitting the guard without each latent in turn."""
    rng = np.random.default_rng(1)
    train = rng.normal(size=(30, 8)) * np.linspace(0.3, 3.0, 8) + 5.0
    guard = LatentGuard(train)
    explicit = 0.0
    for i in range(len(train)):
        rest = LatentGuard(np.delete(train, i, axis=0), shrinkage=guard.shrinkage)
        explicit = max(explicit, float(rest.distance(train[i])[0]))
    assert guard.limit == pytest.approx(explicit, rel=1e-9)
    assert guard._leave_one_out(train, batch=7) == pytest.approx(explicit, rel=1e-9)  # across batches


def test_mesh_flags_name_box_filling_tiny_and_fragmented_meshes():
    def cube_field(p):  # negative almost everywhere: the surface hugs the box
        return np.abs(p).max(1) - 0.995

    box_filling = grid_to_mesh(dense_grid(cube_field, 32))
    assert any("box-filling" in f for f in mesh_flags(box_filling))
    speck = trimesh.creation.icosphere(2, 0.03)
    assert any("tiny" in f for f in mesh_flags(speck))
    ball = grid_to_mesh(dense_grid(lambda p: np.linalg.norm(p, axis=1) - 0.5, 32))
    assert mesh_flags(ball) == []

    def three_parts(p):  # three similar balls: keeping the largest drops two thirds of the surface
        centres = np.array([[0.55, 0, 0], [-0.55, 0, 0], [0, 0.6, 0]])
        radii = np.array([0.3, 0.29, 0.28])
        return (np.linalg.norm(p[:, None] - centres, axis=2) - radii).min(1)

    kept = grid_to_mesh(dense_grid(three_parts, 48))
    assert 0.3 < kept.metadata["kept_area_share"] < 0.45
    assert any("fragmented" in f for f in mesh_flags(kept))
    whole = grid_to_mesh(dense_grid(three_parts, 48), keep="all")
    assert "kept_area_share" not in whole.metadata


def test_generate_warns_about_an_off_range_latent_and_guard_pulls_it_back(tiny_runs, monkeypatch):  # noqa: F811
    from img2sdf.data.store import ShapeStore
    from img2sdf.encoders.cache import load_render_views
    from img2sdf.generate.pipeline import ImageToShape

    model = ImageToShape.load(tiny_runs["dit"])
    views, _ = load_render_views(ShapeStore(tiny_runs["data"]), 1)
    plain = model.generate(views[:1], None, steps=10, resolution=32)
    assert not any("off the training range" in w for w in plain.warnings)
    far = model.guard.mean + 6.0 * (model.train_latents[0] - model.guard.mean)
    monkeypatch.setattr(model, "sample_latents", lambda *a, **k: far[None].astype(np.float32))
    try:
        warned = model.generate(views[:1], None, steps=10, resolution=32)
        assert any("off the training range" in w for w in warned.warnings)
        assert np.allclose(warned.latent, far, atol=1e-5)
    except UserError as e:  # the extrapolated field may have no surface at all: the error says why
        assert "off the training range" in str(e)
    guarded = model.generate(views[:1], None, steps=10, resolution=32, guard="project")
    assert model.guard.distance(guarded.latent)[0] <= model.guard.limit * (1 + 1e-4)
    assert any("--guard project" in w for w in guarded.warnings)


def test_the_web_demo_shows_the_off_range_warning(tiny_runs, tmp_path, monkeypatch):  # noqa: F811
    import io

    from PIL import Image
    from starlette.testclient import TestClient

    from img2sdf.app.server import create_app
    from img2sdf.data.store import ShapeStore
    from img2sdf.encoders.cache import load_render_views
    from img2sdf.generate.pipeline import ImageToShape

    model = ImageToShape.load(tiny_runs["dit"])
    z0 = model.train_latents[2]
    far = model.guard.mean + (z0 - model.guard.mean) * 1.5 * model.guard.limit / model.guard.distance(z0)[0]
    monkeypatch.setattr(model, "sample_latents", lambda *a, **k: far[None].astype(np.float32))
    views, _ = load_render_views(ShapeStore(tiny_runs["data"]), 2)
    buf = io.BytesIO()
    Image.fromarray(views[1]).save(buf, format="PNG")
    with TestClient(create_app(model, tmp_path / "results", max_results=4)) as client:
        r = client.post("/api/generate", files=[("images", ("box.png", buf.getvalue(), "image/png"))],
                        data={"steps": "10", "resolution": "32"})
    text = r.text if r.status_code != 200 else " ".join(r.json()["warnings"])
    assert "off the training range" in text, (r.status_code, text)
