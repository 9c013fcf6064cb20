"""Photo-like views of a stored shape: what a user's photo of it looks like, and what ``load_view`` makes
of it.

A user gives ``generate`` a photo from a camera no training render used (any azimuth, elevation, distance
and field of view), framed their way, on their own background, often JPEG-compressed. Two consumers:

* eval-gen's *photo protocol*: held-out (and, for recall, training) shapes rendered from
  :func:`random_cameras`, turned into photo files by :func:`write_photo` (black, white or coloured
  background, some JPEG) and read back through :func:`~img2sdf.data.images.load_view` — byte for byte the
  path ``generate`` takes;
* the DiT's training views (``img2sdf encode --views photo``): the same recipe plus :func:`jitter_view`
  (framing scale and offset, brightness/contrast/colour), so the DiT learns from what ``load_view`` produces
  rather than memorising the 64 fixed renders.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .cameras import look_at
from .images import FRAME_FRACTION

BACKGROUNDS = ("black", "white", "colour")


@dataclass
class PhotoConfig:
    """How photos are simulated. Ranges are (low, high), drawn uniformly per photo."""

    resolution: int = 256  # rendered photo size (not the 224² of the training renders)
    fov_y_deg: tuple = (30.0, 65.0)
    elevation_deg: tuple = (-20.0, 65.0)
    extra_distance: tuple = (0.05, 1.2)  # beyond the distance at which the unit sphere just fills the view
    target_jitter: float = 0.15  # the camera looks at a point this far (max, per axis) from the origin
    roll_deg: float = 8.0
    backgrounds: tuple = BACKGROUNDS  # chosen uniformly
    tint_probability: float = 0.5  # the object gets a random colour (users' objects are not gray-blue)
    jpeg_probability: float = 0.5
    jpeg_quality: tuple = (55, 92)
    # jitter of a framed view (training only; eval photos get none)
    frame: tuple = (0.65, 0.92)  # object's larger bbox side / image side (load_view frames at 0.80)
    shift_px: float = 10.0
    brightness: tuple = (0.75, 1.25)
    contrast: tuple = (0.8, 1.2)
    colour: tuple = (0.9, 1.1)  # per-channel gain


def random_cameras(n: int, rng: np.random.Generator, cfg: PhotoConfig) -> tuple[np.ndarray, np.ndarray]:
    """``n`` photo cameras: camera-to-world float32 [n, 4, 4] and vertical FOVs [n] (degrees).

    Azimuth is uniform, elevation uniform in ``cfg.elevation_deg``; the distance keeps the unit bounding
    sphere in view at that FOV plus a random margin; a small look-at offset and roll mimic hand framing.
    """
    fov = rng.uniform(*cfg.fov_y_deg, n)
    az = rng.uniform(0.0, 2 * np.pi, n)
    el = np.radians(rng.uniform(*cfg.elevation_deg, n))
    dist = 1.0 / np.sin(np.radians(fov) / 2) + rng.uniform(*cfg.extra_distance, n)
    direction = np.stack([np.cos(el) * np.sin(az), np.sin(el), np.cos(el) * np.cos(az)], axis=1)
    target = rng.uniform(-cfg.target_jitter, cfg.target_jitter, (n, 3))
    c2w = np.stack([look_at(target[i] + direction[i] * dist[i], target[i]) for i in range(n)])
    roll = np.radians(rng.uniform(-cfg.roll_deg, cfg.roll_deg, n))
    c, s = np.cos(roll), np.sin(roll)
    spin = np.zeros((n, 3, 3))
    spin[:, 0, 0], spin[:, 0, 1], spin[:, 1, 0], spin[:, 1, 1], spin[:, 2, 2] = c, -s, s, c, 1.0
    c2w[:, :3, :3] = c2w[:, :3, :3] @ spin  # rotate about the camera's own viewing axis
    return c2w.astype(np.float32), fov.astype(np.float32)


FOV_STEP_DEG = 2.5  # photo FOVs are rendered in bins this wide: one batched Embree call per bin


def render_photos(mesh, c2w: np.ndarray, fovs: np.ndarray, resolution: int) -> np.ndarray:
    """uint8 RGBA [n, H, W, 4] of ``mesh`` from each camera at its own FOV, rounded to
    :data:`FOV_STEP_DEG` (one Embree scene, one call per FOV bin)."""
    from .render import RayRenderer

    renderer = RayRenderer(mesh)
    binned = np.round(np.asarray(fovs) / FOV_STEP_DEG) * FOV_STEP_DEG
    out = np.zeros((len(c2w), resolution, resolution, 4), np.uint8)
    for fov in np.unique(binned):
        sel = np.flatnonzero(binned == fov)
        out[sel] = renderer.render(c2w[sel], resolution, float(fov))
    return out


def background_colour(kind: str, rng: np.random.Generator) -> np.ndarray:
    if kind == "black":
        return np.zeros(3)
    if kind == "white":
        return np.full(3, 255.0)
    return rng.uniform(40, 230, 3)  # a plain coloured studio backdrop


def photo_bytes(rgba: np.ndarray, rng: np.random.Generator, cfg: PhotoConfig) -> tuple[bytes, str, dict]:
    """An RGBA render → the encoded bytes of an opaque photo, its suffix and what was done to it: a
    background, perhaps a new object colour (``tint_probability``), perhaps JPEG."""
    from PIL import Image

    kind = str(rng.choice(cfg.backgrounds))
    bg = background_colour(kind, rng)
    alpha = rgba[..., 3:4].astype(np.float32) / 255.0
    obj = rgba[..., :3].astype(np.float32)
    tint = None
    if rng.random() < cfg.tint_probability:  # repaint: keep the shading, change the material colour
        tint = rng.uniform(0.2, 1.0, 3)
        tint /= tint.max()
        obj = np.clip(obj.mean(-1, keepdims=True) * tint * 1.25, 0, 255)
    rgb = (obj * alpha + bg * (1 - alpha) + 0.5).astype(np.uint8)
    buf = io.BytesIO()
    if rng.random() < cfg.jpeg_probability:
        quality = int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1))
        Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
        return buf.getvalue(), ".jpg", {"background": kind, "tint": _rounded(tint), "jpeg_quality": quality}
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue(), ".png", {"background": kind, "tint": _rounded(tint), "jpeg_quality": None}


def _rounded(tint) -> list | None:
    return None if tint is None else np.round(tint, 3).tolist()


def write_photo(rgba: np.ndarray, stem: Path, rng: np.random.Generator,
                cfg: PhotoConfig) -> tuple[Path, dict]:
    """Write the photo of :func:`photo_bytes` to ``stem`` + its suffix; returns the path and its record."""
    from ..io import write_bytes

    data, suffix, record = photo_bytes(rgba, rng, cfg)
    path = Path(stem).with_suffix(suffix)
    write_bytes(path, data)
    return path, record


def photo_views(rgba: np.ndarray, rng: np.random.Generator, cfg: PhotoConfig, workdir: Path) -> np.ndarray:
    """RGBA renders [n, H, W, 4] → what ``load_view`` makes of their photo files: uint8 [n, 224, 224, 3]."""
    import warnings

    from .images import BusyBackgroundWarning, load_view

    out = []
    for k, image in enumerate(rgba):
        path, _ = write_photo(image, Path(workdir) / f"photo_{k}", rng, cfg)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", BusyBackgroundWarning)
            out.append(load_view(path))
        path.unlink()
    return np.stack(out)


def jitter_view(view: np.ndarray, rng: np.random.Generator, cfg: PhotoConfig) -> np.ndarray:
    """A framed view (object on black, as ``load_view`` returns it) re-framed and re-lit at random:
    the object's size becomes ``cfg.frame`` of the image instead of 0.80, it moves by up to
    ``cfg.shift_px`` pixels, and its pixels get brightness, contrast and per-channel colour gains."""
    from PIL import Image

    size = view.shape[0]
    scale = rng.uniform(*cfg.frame) / FRAME_FRACTION
    dx, dy = rng.uniform(-cfg.shift_px, cfg.shift_px, 2)
    c = size / 2.0
    # output pixel (x, y) samples input (c + (x - c - dx) / scale, ...): PIL's affine maps output → input
    coeffs = (1 / scale, 0, c - (c + dx) / scale, 0, 1 / scale, c - (c + dy) / scale)
    moved = np.asarray(Image.fromarray(view).transform((size, size), Image.Transform.AFFINE, coeffs,
                                                       resample=Image.Resampling.BILINEAR))
    x = moved.astype(np.float32)
    mask = x.max(-1, keepdims=True) > 0
    mean = x[mask[..., 0]].mean(0) if mask.any() else np.zeros(3)
    x = (x - mean) * rng.uniform(*cfg.contrast) + mean
    x = x * rng.uniform(*cfg.brightness) * rng.uniform(*cfg.colour, 3)
    return np.where(mask, np.clip(x + 0.5, 0, 255), 0).astype(np.uint8)


@dataclass
class PhotoPoolConfig:
    """The training views of one shape for the photo path (``encode --views photo``), in this order:
    its renders framed by ``load_view``; ``jitter_copies`` photo-style copies of each render (background,
    JPEG, cut out again, :func:`jitter_view`); ``random_views`` renders from :func:`random_cameras`, treated
    the same way. Poses: the render's camera, or the random camera."""

    jitter_copies: int = 2
    random_views: int = 64
    seed: int = 0
    photo: PhotoConfig = field(default_factory=PhotoConfig)

    def size(self, n_renders: int) -> int:
        return n_renders * (1 + self.jitter_copies) + self.random_views


def photo_pool(mesh, render_files: list[Path], render_c2w: np.ndarray, obj_idx: int, cfg: PhotoPoolConfig,
               workdir: Path) -> tuple[np.ndarray, np.ndarray]:
    """uint8 views [A, 224, 224, 3] and camera-to-world [A, 4, 4] of :class:`PhotoPoolConfig` for one shape;
    deterministic in (``cfg.seed``, ``obj_idx``), so an interrupted encode resumes to the same pool."""
    from PIL import Image

    from .images import load_view

    rng = np.random.default_rng([cfg.seed, obj_idx])
    framed = [load_view(f) for f in render_files]
    rgba = []
    for f in render_files:
        with Image.open(f) as im:
            rgba.append(np.asarray(im.convert("RGBA")))
    rgba = np.stack(rgba)
    views, poses = [np.stack(framed)], [render_c2w]
    for _ in range(cfg.jitter_copies):
        copies = photo_views(rgba, rng, cfg.photo, workdir)
        views.append(np.stack([jitter_view(v, rng, cfg.photo) for v in copies]))
        poses.append(render_c2w)
    if cfg.random_views:
        c2w, fovs = random_cameras(cfg.random_views, rng, cfg.photo)
        shots = photo_views(render_photos(mesh, c2w, fovs, cfg.photo.resolution), rng, cfg.photo, workdir)
        views.append(np.stack([jitter_view(v, rng, cfg.photo) for v in shots]))
        poses.append(c2w)
    return np.concatenate(views), np.concatenate(poses).astype(np.float32)
