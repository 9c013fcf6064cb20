"""Render throughput: our Embree ray caster vs pyrender on OSMesa (the paper's renderer, §2.3), same run.

A ~100k-face non-convex mesh made by code, 64 Fibonacci views at distance 2.5, 224², the same intrinsics
(vertical FOV 50°) and camera-to-world poses for both. Timed per shape as the prepare stage does it: scene
set-up (BVH build / GPU upload) plus all 64 views, PNG encoding excluded for both. The two are timed in
alternation, 5 rounds after a warm-up, and the speed-up is the median of the per-round ratios, so a load
change on this shared machine hits both alike. Silhouette agreement: mean IoU of our alpha mask and
pyrender's depth > 0 over the 64 views.
Needs `make bench-deps` (pyrender 0.1.45, PyOpenGL 3.1.10, Debian's libosmesa6). Last line: one JSON object.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time

os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")  # must precede any OpenGL import

import numpy as np
import trimesh

from img2sdf.data.cameras import FOV_Y_DEG, fibonacci_views
from img2sdf.data.render import MATERIAL_RGB, RIM_DIR_CAMERA, RayRenderer

VIEWS, RES, DISTANCE, ROUNDS = 64, 224, 2.5, 5


def bumpy_torus() -> trimesh.Trimesh:
    """A torus (400 × 125 segments = 100k faces) with radial bumps, normalised to the unit sphere."""
    mesh = trimesh.creation.torus(0.6, 0.28, major_sections=400, minor_sections=125)
    v = mesh.vertices
    theta = np.arctan2(v[:, 1], v[:, 0])
    bump = 1.0 + 0.12 * np.sin(7 * theta) * np.cos(3 * np.arctan2(v[:, 2], np.hypot(v[:, 0], v[:, 1]) - 0.6))
    ring = np.stack([np.cos(theta) * 0.6, np.sin(theta) * 0.6, np.zeros_like(theta)], axis=1)
    mesh.vertices = ring + (v - ring) * bump[:, None]
    mesh.apply_transform(trimesh.transformations.rotation_matrix(np.radians(60), [1, 0.3, 0]))
    mesh.apply_translation(-mesh.bounding_sphere.primitive.center)
    mesh.apply_scale(1.0 / np.linalg.norm(mesh.vertices, axis=1).max())
    return mesh


def ours(mesh, c2w) -> np.ndarray:
    return RayRenderer(mesh).render(c2w, RES, FOV_Y_DEG)


def pyrender_setup():
    import pyrender

    return pyrender, pyrender.OffscreenRenderer(RES, RES)


def pyrender_views(pyrender, renderer, mesh, c2w) -> np.ndarray:
    """The paper's set-up: PBR gray-blue material, a headlight and a rim light, black background."""
    material = pyrender.MetallicRoughnessMaterial(baseColorFactor=[*MATERIAL_RGB, 1.0], metallicFactor=0.0,
                                                  roughnessFactor=0.6)
    scene = pyrender.Scene(bg_color=[0, 0, 0, 0], ambient_light=[0.08] * 3)
    scene.add(pyrender.Mesh.from_trimesh(mesh, material=material, smooth=True))
    camera = scene.add(pyrender.PerspectiveCamera(yfov=np.radians(FOV_Y_DEG), aspectRatio=1.0))
    head = scene.add(pyrender.DirectionalLight(intensity=3.0))
    rim = scene.add(pyrender.DirectionalLight(intensity=2.0))
    masks = np.empty((len(c2w), RES, RES), bool)
    for k, pose in enumerate(c2w):
        scene.set_pose(camera, pose)
        scene.set_pose(head, pose)
        rim_pose = pose.copy()
        # A directional light shines down its -Z: point it from behind-above the object towards the camera.
        rim_pose[:3, :3] = trimesh.geometry.align_vectors([0, 0, 1], pose[:3, :3] @ RIM_DIR_CAMERA)[:3, :3]
        scene.set_pose(rim, rim_pose)
        _, depth = renderer.render(scene)
        masks[k] = depth > 0
    return masks


def timed(fn, *args) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out


def main() -> int:
    mesh = bumpy_torus()
    c2w = fibonacci_views(VIEWS, DISTANCE).astype(np.float64)
    try:
        pyrender, renderer = pyrender_setup()
    except Exception as e:  # noqa: BLE001 - report why the reference is missing instead of crashing
        print(f"pyrender unavailable ({type(e).__name__}: {e}); run `make bench-deps`", file=sys.stderr)
        pyrender = None
    ours(mesh, c2w)  # warm-up: lazy imports, thread pool, GL shader compilation
    if pyrender:
        pyrender_views(pyrender, renderer, mesh, c2w)
    t_ours, t_ref = [], []
    for _ in range(ROUNDS):
        t, images = timed(ours, mesh, c2w)
        t_ours.append(t)
        if pyrender:
            t, masks = timed(pyrender_views, pyrender, renderer, mesh, c2w)
            t_ref.append(t)
    median = statistics.median(t_ours)
    result = {
        "mesh_faces": len(mesh.faces), "views": VIEWS, "resolution": RES, "fov_y_deg": FOV_Y_DEG,
        "threads": os.cpu_count(), "load_average_1min": round(os.getloadavg()[0], 2),
        "seconds_ours": round(median, 3), "images_per_second": round(VIEWS / median, 1),
        "speedup_vs_pyrender": None, "silhouette_iou": None,
    }
    if not pyrender:
        print(json.dumps(result))
        return 1
    ours_mask = images[..., 3] > 0
    iou = (ours_mask & masks).sum((1, 2)) / np.maximum((ours_mask | masks).sum((1, 2)), 1)
    result.update(
        seconds_pyrender=round(statistics.median(t_ref), 3),
        pyrender_images_per_second=round(VIEWS / statistics.median(t_ref), 1),
        speedup_vs_pyrender=round(statistics.median([r / o for r, o in zip(t_ref, t_ours, strict=True)]), 2),
        silhouette_iou=round(float(iou.mean()), 4),
        silhouette_iou_min=round(float(iou.min()), 4),
        rounds_seconds={"ours": [round(t, 3) for t in t_ours], "pyrender": [round(t, 3) for t in t_ref]},
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
