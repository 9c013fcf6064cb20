"""Renders against analytic truth: a sphere projects to a disc, shading follows the normals."""

import numpy as np
import trimesh
from PIL import Image

from img2sdf.data.cameras import FOV_Y_DEG, fibonacci_views, focal_pixels, load_cameras, look_at
from img2sdf.data.render import RenderConfig, render_shape, render_views
from img2sdf.data.store import Manifest, ShapeEntry, ShapeStore
from img2sdf.io import write_mesh

RES = 96


def disc_mask(res: int, radius: float, distance: float, centre_px=(None, None)) -> np.ndarray:
    """Analytic silhouette of a sphere: a disc of pixel radius f tan(asin(r / D))."""
    r_px = focal_pixels(res, FOV_Y_DEG) * np.tan(np.arcsin(radius / distance))
    cy = res / 2 if centre_px[0] is None else centre_px[0]
    cx = res / 2 if centre_px[1] is None else centre_px[1]
    yy, xx = np.mgrid[:res, :res] + 0.5
    return (yy - cy) ** 2 + (xx - cx) ** 2 < r_px**2


def iou(a, b):
    return (a & b).sum() / (a | b).sum()


def test_sphere_renders_to_the_analytic_disc_from_every_view():
    sphere = trimesh.creation.icosphere(subdivisions=5, radius=0.8)
    images = render_views(sphere, fibonacci_views(6, 2.5), RES)
    assert images.shape == (6, RES, RES, 4) and images.dtype == np.uint8
    truth = disc_mask(RES, 0.8, 2.5)
    for im in images:
        assert iou(im[..., 3] > 0, truth) > 0.97


def test_alpha_is_the_mask_and_background_is_black():
    box = trimesh.creation.box((0.9, 0.6, 0.3))
    im = render_views(box, fibonacci_views(3, 2.5), RES)
    alpha = im[..., 3]
    assert set(np.unique(alpha)) <= {0, 255}
    assert (im[..., :3][alpha == 0] == 0).all()
    assert (im[..., :3][alpha == 255].max(axis=-1) > 0).all()  # the ambient term lights every visible pixel


def test_shading_follows_the_normals():
    sphere = trimesh.creation.icosphere(subdivisions=5, radius=0.8)
    im = render_views(sphere, look_at(np.array([[0.0, 0.0, 2.5]])), RES)[0].astype(float)
    gray = im[..., :3].mean(-1)
    c = RES // 2
    # With a headlight the point facing the camera is brightest and the limb darkest (Lambert, n.v).
    centre, limb = gray[c, c], gray[c, c + int(0.9 * (disc_mask(RES, 0.8, 2.5)[c].sum() / 2))]
    assert centre > limb + 60
    # Gray-blue material: blue exceeds red on lit pixels.
    lit = im[..., 3] > 0
    assert im[..., 2][lit].mean() > im[..., 0][lit].mean() + 10
    # Smooth shading: neighbouring pixels differ little on a finely tessellated sphere.
    assert np.abs(np.diff(gray[c, c - 10:c + 10])).max() < 12


def test_image_axes_follow_the_camera_convention():
    # A small sphere at world +X, +Y seen from +Z appears right and up of the centre.
    ball = trimesh.creation.icosphere(subdivisions=3, radius=0.2)
    ball.apply_translation([0.5, 0.4, 0.0])
    mask = render_views(ball, look_at(np.array([[0.0, 0.0, 2.5]])), RES)[0, ..., 3] > 0
    rows, cols = np.nonzero(mask)
    f = focal_pixels(RES, FOV_Y_DEG)
    assert abs(cols.mean() + 0.5 - (RES / 2 + f * 0.5 / 2.5)) < 1.5
    assert abs(rows.mean() + 0.5 - (RES / 2 - f * 0.4 / 2.5)) < 1.5


def test_render_shape_writes_pngs_then_cameras_json(tmp_path):
    store = ShapeStore(tmp_path)
    store.save_manifest(Manifest([ShapeEntry(0, "u0", "ball", "train", "test", status="ok")]))
    write_mesh(store.mesh_path(0), trimesh.creation.icosphere(subdivisions=3, radius=0.7))
    cfg = RenderConfig(views=5, resolution=40, distance=2.5)
    render_shape(store, 0, cfg)
    out = store.render_dir(0)
    assert sorted(p.name for p in out.glob("view_*.png")) == [f"view_{k:02d}.png" for k in range(5)]
    c2w, record = load_cameras(out / "cameras.json")
    np.testing.assert_allclose(c2w, fibonacci_views(5, 2.5), atol=1e-6)
    assert record["fov_y_deg"] == FOV_Y_DEG and record["resolution"] == [40, 40]
    assert {"azimuth_deg", "elevation_deg", "fov_y_deg", "c2w", "file"} <= set(record["views"][0])
    im = np.asarray(Image.open(out / "view_03.png"))
    assert im.shape == (40, 40, 4)
    np.testing.assert_array_equal(im, render_views(store.load_mesh(0), c2w[3:4], 40)[0])


def test_thumbnail_frames_any_mesh_and_contact_sheet_lays_out_a_grid(tmp_path):
    from img2sdf.eval.gallery import contact_sheet, thumbnail

    far_big = trimesh.creation.icosphere(subdivisions=3, radius=5.0)
    far_big.apply_translation([30.0, -4.0, 7.0])  # not normalised: the thumbnail frames it anyway
    thumb = thumbnail(far_big, size=64)
    assert thumb.shape == (64, 64, 3) and thumb.dtype == np.uint8
    assert iou(thumb.max(-1) > 0, disc_mask(64, 1.0, 2.5)) > 0.95
    assert not thumbnail(trimesh.Trimesh(), size=32).any()
    sheet = contact_sheet([thumb] * 5, [f"shape {k}" for k in range(5)], cols=3)
    cell_h = (sheet.size[1]) // 2
    assert sheet.size[0] == 3 * 64 and cell_h > 64  # 2 rows, each tile plus a caption strip
    caption = np.asarray(sheet)[64:cell_h, :64]
    assert (caption.max(-1) > 200).any()  # the label is drawn


def test_preview_cli_writes_a_labelled_sheet(tmp_path):
    from img2sdf.cli.main import main

    store = ShapeStore(tmp_path / "data")
    store.save_manifest(Manifest([ShapeEntry(0, "u0", "ball", "train", "test", status="ok"),
                                  ShapeEntry(1, "u1", "cup", "ood", "test", status="failed", reason="open")]))
    write_mesh(store.mesh_path(0), trimesh.creation.icosphere(subdivisions=2, radius=0.9))
    out = tmp_path / "preview.png"
    assert main(["preview", str(store.root), "-o", str(out), "--size", "48"]) == 0
    sheet = np.asarray(Image.open(out))
    assert sheet.shape[1] == 2 * 48 and sheet[:48, :48].max() > 0 and sheet[:48, 48:].max() < 30
