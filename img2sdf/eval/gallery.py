"""Mesh thumbnails and labelled contact sheets, for ``img2sdf preview`` and the evaluation reports.

Thumbnails use the render pipeline's ray caster and shading (paper §2.3 look: gray-blue material,
headlight + rim light on black) from a 3/4 view, framed on the mesh's own bounding sphere, so meshes that
are not normalised (e.g. marching-cubes output) still fill the tile.
"""

from __future__ import annotations

import math

import numpy as np

from ..data.cameras import FOV_Y_DEG, look_at
from ..data.render import RayRenderer

THREE_QUARTER = (35.0, 25.0)  # azimuth, elevation in degrees: front-right, slightly from above
LABEL_COLOUR = (235, 235, 235)
SHEET_BACKGROUND = (18, 18, 22)


def view_pose(azimuth_deg: float, elevation_deg: float, distance: float, target=(0, 0, 0)) -> np.ndarray:
    """Camera-to-world [4, 4] (OpenGL) at the given azimuth/elevation (cameras.py convention)."""
    az, el = np.radians(azimuth_deg), np.radians(elevation_deg)
    direction = np.array([np.cos(el) * np.sin(az), np.sin(el), np.cos(el) * np.cos(az)])
    target = np.asarray(target, dtype=np.float64)
    return look_at(target + distance * direction, target)


def thumbnail(mesh, size: int = 256, view: tuple[float, float] | np.ndarray = THREE_QUARTER,
              background=(0, 0, 0)) -> np.ndarray:
    """RGB uint8 [size, size, 3] of ``mesh`` from ``view``: (azimuth, elevation) degrees around the mesh's
    bounding-sphere centre, or a camera-to-world [4, 4] used as is (then framing is the caller's)."""
    image = np.zeros((size, size, 3), np.uint8)
    image[:] = background
    if mesh is None or len(getattr(mesh, "faces", ())) == 0:
        return image
    if isinstance(view, np.ndarray):
        c2w = view
    else:
        vertices = np.asarray(mesh.vertices, dtype=np.float64)
        centre = vertices.min(0) / 2 + vertices.max(0) / 2
        radius = max(float(np.linalg.norm(vertices - centre, axis=1).max()), 1e-6)
        # At 2.5 radii the bounding sphere fills the FOV like the training renders do for unit shapes.
        c2w = view_pose(*view, distance=2.5 * radius, target=centre)
    rgba = RayRenderer(mesh).render(c2w[None], size, FOV_Y_DEG)[0]
    alpha = rgba[..., 3:].astype(np.float32) / 255.0
    return (rgba[..., :3] * alpha + image * (1 - alpha) + 0.5).astype(np.uint8)


def contact_sheet(images: list[np.ndarray], labels: list[str], cols: int | None = None):
    """A PIL image: ``images`` (RGB uint8, resized to the first one's size) in a grid, each captioned."""
    from PIL import Image, ImageDraw, ImageFont

    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    if not images:
        raise ValueError("contact_sheet needs at least one image")
    cols = cols or math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / cols)
    h, w = images[0].shape[:2]
    font_size = max(10, w // 14)
    font = ImageFont.load_default(size=font_size)
    caption = font_size + 8
    sheet = Image.new("RGB", (cols * w, rows * (h + caption)), SHEET_BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    for k, (image, label) in enumerate(zip(images, labels, strict=True)):
        tile = Image.fromarray(np.asarray(image, dtype=np.uint8)).convert("RGB")
        if tile.size != (w, h):
            tile = tile.resize((w, h), Image.Resampling.LANCZOS)
        x, y = (k % cols) * w, (k // cols) * (h + caption)
        sheet.paste(tile, (x, y))
        draw.text((x + 4, y + h + 3), _fit(draw, label, font, w - 8), fill=LABEL_COLOUR, font=font)
    return sheet


def _fit(draw, text: str, font, width: int) -> str:
    """``text`` shortened with an ellipsis to fit ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"
