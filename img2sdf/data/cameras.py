"""Render cameras: Fibonacci-sphere viewpoints looking at the origin (paper §2.3).

Conventions (shared by the renders, ``cameras.json`` and the DiT's pose embedding):

* World: +Y up, objects face +Z (the store's normalised meshes).
* A pose is a 4x4 **camera-to-world** matrix in the OpenGL convention: the camera looks down its own -Z
  axis, +Y is image-up and +X image-right; the last column is the camera centre.
* Azimuth is measured in the XZ plane from +Z towards +X, elevation from the XZ plane towards +Y (degrees).
* Intrinsics are a pinhole with vertical field of view :data:`FOV_Y_DEG` and square pixels. The paper does
  not state its FOV; 50 degrees frames the unit bounding sphere seen from distance 2.5 (angular radius
  asin(1/2.5) = 23.6 degrees) with a ~6 % margin, so no shape is ever cropped.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..io import read_json

FOV_Y_DEG = 50.0
GOLDEN_ANGLE = np.pi * (3.0 - np.sqrt(5.0))


def look_at(eye: np.ndarray, target: np.ndarray | None = None, up: np.ndarray | None = None) -> np.ndarray:
    """Camera-to-world matrices (OpenGL) for cameras at ``eye`` [..., 3] looking at ``target``."""
    eye = np.asarray(eye, dtype=np.float64)
    target = np.zeros(3) if target is None else np.asarray(target, dtype=np.float64)
    up = np.array([0.0, 1.0, 0.0]) if up is None else np.asarray(up, dtype=np.float64)
    z = eye - target  # the camera's +Z points away from what it looks at
    z = z / np.linalg.norm(z, axis=-1, keepdims=True)
    x = np.cross(np.broadcast_to(up, z.shape), z)
    # At the poles up is parallel to the view direction; any horizontal right vector will do there.
    degenerate = np.linalg.norm(x, axis=-1) < 1e-8
    x = np.where(degenerate[..., None], np.cross(np.array([0.0, 0.0, -1.0]), z), x)
    x = x / np.linalg.norm(x, axis=-1, keepdims=True)
    y = np.cross(z, x)
    c2w = np.zeros(eye.shape[:-1] + (4, 4))
    c2w[..., :3, 0], c2w[..., :3, 1], c2w[..., :3, 2], c2w[..., :3, 3] = x, y, z, eye
    c2w[..., 3, 3] = 1.0
    return c2w


def fibonacci_directions(n: int) -> np.ndarray:
    """``n`` near-uniform unit vectors [n, 3] on a Fibonacci spiral from the top (+Y) to the bottom."""
    if n < 1:
        raise UserError(f"views must be >= 1, got {n}")
    i = np.arange(n, dtype=np.float64)
    y = 1.0 - 2.0 * (i + 0.5) / n
    r = np.sqrt(1.0 - y * y)
    phi = i * GOLDEN_ANGLE
    return np.stack([r * np.sin(phi), y, r * np.cos(phi)], axis=1)


def fibonacci_views(n: int, distance: float) -> np.ndarray:
    """float32 [n, 4, 4] camera-to-world poses on a Fibonacci sphere of radius ``distance`` (paper §2.3)."""
    if distance <= 1.0:
        raise UserError(f"distance must exceed the unit bounding sphere's radius 1, got {distance}")
    return look_at(fibonacci_directions(n) * distance).astype(np.float32)


def azimuth_elevation(c2w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Azimuth and elevation in degrees of the camera centres of poses [..., 4, 4]."""
    p = np.asarray(c2w, dtype=np.float64)[..., :3, 3]
    az = np.degrees(np.arctan2(p[..., 0], p[..., 2]))
    el = np.degrees(np.arcsin(np.clip(p[..., 1] / np.linalg.norm(p, axis=-1), -1.0, 1.0)))
    return az, el


def focal_pixels(resolution: int, fov_y_deg: float = FOV_Y_DEG) -> float:
    """Pinhole focal length in pixels for a square image of ``resolution`` pixels."""
    return 0.5 * resolution / np.tan(np.radians(fov_y_deg) / 2.0)


@functools.lru_cache(maxsize=8)
def pixel_directions(resolution: int, fov_y_deg: float = FOV_Y_DEG) -> np.ndarray:
    """float32 [H*W, 3] unit ray directions in the camera frame through pixel centres, row 0 at the top."""
    f = focal_pixels(resolution, fov_y_deg)
    c = (np.arange(resolution) + 0.5 - resolution / 2.0) / f
    xs, ys = np.meshgrid(c, -c)  # image rows go down, camera +Y goes up
    d_cam = np.stack([xs, ys, -np.ones_like(xs)], axis=-1).reshape(-1, 3)
    d_cam /= np.linalg.norm(d_cam, axis=1, keepdims=True)
    d_cam = d_cam.astype(np.float32)
    d_cam.flags.writeable = False
    return d_cam


def camera_rays(
    c2w: np.ndarray, resolution: int, fov_y_deg: float = FOV_Y_DEG
) -> tuple[np.ndarray, np.ndarray]:
    """float32 ray origins and unit directions [V, H*W, 3] in world space (see :func:`pixel_directions`)."""
    c2w = np.asarray(c2w, dtype=np.float64).reshape(-1, 4, 4)
    rotations_t = c2w[:, :3, :3].transpose(0, 2, 1).astype(np.float32)
    dirs = pixel_directions(resolution, float(fov_y_deg)) @ rotations_t
    origins = np.broadcast_to(c2w[:, None, :3, 3].astype(np.float32), dirs.shape)
    return origins, dirs


def cameras_record(c2w: np.ndarray, resolution: int, fov_y_deg: float, distance: float) -> dict:
    """The ``cameras.json`` payload for poses [V, 4, 4]: intrinsics plus one entry per view."""
    az, el = azimuth_elevation(c2w)
    f = focal_pixels(resolution, fov_y_deg)
    return {
        "convention": "camera-to-world, OpenGL (camera looks down -Z, +Y up); world +Y up, front +Z",
        "resolution": [resolution, resolution],
        "fov_y_deg": fov_y_deg,
        "distance": distance,
        "intrinsics": {"fx": f, "fy": f, "cx": resolution / 2.0, "cy": resolution / 2.0},
        "views": [
            {
                "file": view_filename(k),
                "c2w": np.asarray(c2w[k], dtype=np.float64).round(7).tolist(),
                "fov_y_deg": fov_y_deg,
                "azimuth_deg": round(float(az[k]), 5),
                "elevation_deg": round(float(el[k]), 5),
            }
            for k in range(len(c2w))
        ],
    }


def view_filename(k: int) -> str:
    return f"view_{k:02d}.png"


def load_cameras(path: str | Path) -> tuple[np.ndarray, dict]:
    """Read ``cameras.json``: (float32 camera-to-world [V, 4, 4], the whole record)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: missing; run `img2sdf prepare DATA --stages render`")
    record = read_json(path)
    c2w = np.array([v["c2w"] for v in record["views"]], dtype=np.float32).reshape(-1, 4, 4)
    return c2w, record
