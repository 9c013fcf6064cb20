"""The photo path: a user's photo (new camera, own background, JPEG) → load_view → unknown-pose DiT → mesh.

The recall test renders a training shape with trimesh's own ray casting and a camera model written here —
nothing of ``img2sdf/data/render.py`` — so a DiT that only memorised its 64 fixed renders fails it.
"""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from PIL import Image
from test_generate import tiny_runs  # noqa: F401  (the shared tiny store + decoder + DiT fixture)

from img2sdf.data.cameras import fibonacci_directions
from img2sdf.data.images import load_view
from img2sdf.data.photo import PhotoConfig, jitter_view, photo_bytes, random_cameras
from img2sdf.data.store import ShapeStore


def independent_photo(mesh: trimesh.Trimesh, azimuth: float, elevation: float, distance: float,
                      size: int = 160, fov_deg: float = 38.0, background=(255, 255, 255),
                      colour=(0.85, 0.55, 0.35)) -> np.ndarray:
    """An opaque RGB photo of ``mesh`` by trimesh ray casting: pinhole camera looking at the origin,
    Lambert shading of a warm colour (not the renders' gray-blue), a plain background."""
    az, el = np.radians(azimuth), np.radians(elevation)
    eye = distance * np.array([np.cos(el) * np.sin(az), np.sin(el), np.cos(el) * np.cos(az)])
    forward = -eye / np.linalg.norm(eye)
    right = np.cross(forward, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    t = np.tan(np.radians(fov_deg) / 2) * ((np.arange(size) + 0.5) / size * 2 - 1)
    u, v = np.meshgrid(t, -t)
    dirs = forward + u[..., None] * right + v[..., None] * up
    dirs = (dirs / np.linalg.norm(dirs, axis=-1, keepdims=True)).reshape(-1, 3)
    origins = np.broadcast_to(eye, dirs.shape)
    _, rays, tris = mesh.ray.intersects_location(origins, dirs, multiple_hits=False)
    image = np.tile(np.asarray(background, np.float64), (size * size, 1))
    lambert = np.abs((mesh.face_normals[tris] * dirs[rays]).sum(1))
    image[rays] = 255 * (0.25 + 0.75 * lambert)[:, None] * np.asarray(colour)
    return np.clip(image, 0, 255).astype(np.uint8).reshape(size, size, 3)


@pytest.mark.parametrize("obj_idx, camera", [(3, (100.0, 35.0, 3.4)), (5, (-60.0, 25.0, 3.2)),
                                            (2, (200.0, 40.0, 3.6))])
def test_a_new_photo_of_a_training_shape_recalls_it(tiny_runs, tmp_path, obj_idx, camera):  # noqa: F811
    """A training shape, photographed from a camera no render used, on white, JPEG-compressed, comes back
    as its own latent through ImageToShape.generate (load_view + unknown-pose token)."""
    from img2sdf.generate.pipeline import ImageToShape

    store = ShapeStore(tiny_runs["data"])
    photo = independent_photo(store.load_mesh(obj_idx), *camera)
    Image.fromarray(photo).save(tmp_path / "photo.jpg", quality=80)
    model = ImageToShape.load(tiny_runs["dit"])
    result = model.generate(load_view(tmp_path / "photo.jpg")[None], None, steps=20, resolution=32)
    assert result.neighbours[0]["obj_idx"] == obj_idx, result.neighbours


def test_photo_cameras_are_new_and_keep_the_object_in_view():
    cfg = PhotoConfig()
    c2w, fov = random_cameras(200, np.random.default_rng(0), cfg)
    centre = c2w[:, :3, 3]
    dist = np.linalg.norm(centre, axis=1)
    # the unit bounding sphere stays in view: inside the FOV up to what the small look-at offset moves it
    axis = -c2w[:, :3, 2]
    off_axis = np.degrees(np.arccos(np.clip((axis * -centre).sum(1) / dist, -1, 1)))
    assert np.all(off_axis < 7.0)
    assert np.all(np.degrees(np.arcsin(1.0 / dist)) < fov / 2 + off_axis + 1e-3)
    assert cfg.fov_y_deg[0] <= fov.min() and fov.max() <= cfg.fov_y_deg[1]
    # no camera direction coincides with one of the 64 training views (all > 1 degree away)
    cos = (centre / dist[:, None]) @ fibonacci_directions(64).T
    assert np.degrees(np.arccos(np.clip(cos.max(1), -1, 1))).min() > 1.0
    # cameras look (roughly) at the object: the optical axis passes within the look-at jitter of the origin
    miss = np.linalg.norm(np.cross(axis, -centre), axis=1)
    assert miss.max() < np.sqrt(3) * cfg.target_jitter + 1e-4


def test_photo_bytes_composite_the_background_and_load_view_cuts_it_out_again():
    rgba = np.zeros((128, 128, 4), np.uint8)
    rgba[40:90, 30:100] = (150, 160, 200, 255)
    cfg = PhotoConfig(backgrounds=("white",), jpeg_probability=1.0)
    data, suffix, record = photo_bytes(rgba, np.random.default_rng(0), cfg)
    assert suffix == ".jpg" and record["background"] == "white" and record["jpeg_quality"] is not None
    import io

    photo = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    assert photo[0, 0].min() > 240 and abs(photo[60, 60].astype(int) - (150, 160, 200)).max() < 20


def test_jitter_view_reframes_to_the_requested_size():
    view = np.zeros((224, 224, 3), np.uint8)
    side = int(0.8 * 224)
    view[112 - side // 2:112 + side // 2, 112 - side // 4:112 + side // 4] = 180  # a tall object at 0.80
    cfg = PhotoConfig(frame=(0.65, 0.65), shift_px=0.0, brightness=(1, 1), contrast=(1, 1), colour=(1, 1))
    out = jitter_view(view, np.random.default_rng(0), cfg)
    rows = np.nonzero(out.max(-1).max(1) > 0)[0]
    assert abs((rows.max() - rows.min() + 1) / 224 - 0.65) < 0.02
    assert out.max() == 180 and out[0, 0].max() == 0  # lighting kept with unit gains, background black
    bright = jitter_view(view, np.random.default_rng(0), PhotoConfig(frame=(0.8, 0.8), shift_px=0.0,
                                                                     brightness=(1.2, 1.2), contrast=(1, 1),
                                                                     colour=(1, 1)))
    assert bright.max() == 216


def test_photo_pool_cache_records_its_config_and_never_mixes_two(tiny_runs):  # noqa: F811
    from img2sdf.encoders import DEFAULT_ENCODER
    from img2sdf.io import read_json

    store = ShapeStore(tiny_runs["data"])
    meta = read_json(store.features_meta_path(f"{DEFAULT_ENCODER}@photo"))
    assert meta["view_source"] == "photo" and meta["pool"]["jitter_copies"] == 2
    assert meta["views"] == 8 * 3 + 24  # renders + 2 jittered copies of each + 24 random-camera photos
    feats, poses, _ = store.load_features(f"{DEFAULT_ENCODER}@photo")
    train = [s.obj_idx for s in store.load_manifest().shapes if s.split == "train"]
    assert all(np.any(feats[i]) for i in train)
    assert not np.any(feats[6]) and not np.any(feats[8])  # held-out shapes are not training data
    # the jittered copies are not the framed renders, and the random cameras are not the render cameras
    assert not np.allclose(feats[0, :8], feats[0, 8:16])
    assert not np.allclose(poses[0, 24:], poses[0, :1])


def test_load_view_keeps_background_seen_through_a_hole_but_fills_pinholes(tmp_path):
    """A ring on white: its hole shows the background and must come out black (not white, as filling every
    enclosed region made it); a 3×3 white speck on the ring's body is a pinhole and is filled."""
    yy, xx = np.mgrid[:256, :256]
    r = np.hypot(yy - 128, xx - 128)
    photo = np.full((256, 256, 3), 255, np.uint8)
    photo[(r < 90) & (r > 40)] = (150, 160, 200)
    photo[128 - 1:128 + 2, 128 + 63:128 + 66] = 255  # pinhole in the ring's body
    Image.fromarray(photo).save(tmp_path / "ring.png")
    view = load_view(tmp_path / "ring.png")
    assert view[112, 112].max() == 0  # the hole's centre: background → black
    ring_body = view[112, 112 + int(64 * 0.8 * 224 / 180)]  # the pinhole, mapped into the framed view
    assert ring_body.min() > 100
