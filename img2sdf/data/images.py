"""User images → views framed like the training renders (paper §2.3: object on black, 224 × 224).

:func:`load_view` accepts PNG/JPEG/WebP/GIF/... in any PIL mode (RGB(A), grayscale, palette, 16-bit),
applies the EXIF orientation, separates the object from its background, composites it on black, and
centres and scales it so its larger bounding-box side covers :data:`FRAME_FRACTION` of the image, the
median measured over the training renders (``benchmarks/select_encoder.py`` reports it).

Background: the alpha channel when the image has a non-trivial one. Otherwise the *border-colour
heuristic*: the median colour of the outermost pixels is the background if at least
:data:`BORDER_UNIFORM` of them lie within :data:`BACKGROUND_TOL` of it (a studio or product shot); pixels
farther than that from it are the object. A non-uniform border means a busy background (a photo): the
image is kept whole (centre-cropped) and a warning says to cut the object out for best results.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ..errors import UserError

FRAME_FRACTION = 0.80  # median larger bbox side / image side over training renders (select_encoder.py: 0.799)
MAX_PIXELS = 64_000_000  # refuse larger images before decoding them (a 20000² image is 400 Mpx)
MAX_MPX = MAX_PIXELS // 10**6
MIN_SIDE = 8
BACKGROUND_TOL = 40.0  # RGB distance (0-255 scale) from the border colour that still counts as background
BORDER_UNIFORM = 0.9
BORDER_PX = 2


class BusyBackgroundWarning(UserWarning):
    """The image has no alpha and a non-uniform border, so the object could not be cut out."""


def load_view(path: str | Path, size: int = 224) -> np.ndarray:
    """Load a user image as uint8 [size, size, 3]: object on black, framed like the training renders."""
    rgb, mask = read_rgba(path)
    if mask is None:
        mask = border_mask(rgb, path)
    h, w = rgb.shape[:2]
    if mask is None:  # busy background: the centre square of the whole image
        return _resize(_square_crop(rgb.astype(np.float32), h / 2, w / 2, min(h, w)), size)
    if mask.max() < 0.5:
        raise UserError(f"{path}: found no object (the image is all background); crop or cut it out first")
    premultiplied = rgb.astype(np.float32) * mask[..., None]
    rows, cols = np.nonzero(mask >= 0.5)
    r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    side = max(r1 - r0, c1 - c0) / FRAME_FRACTION
    return _resize(_square_crop(premultiplied, (r0 + r1) / 2, (c0 + c1) / 2, side), size)


def read_rgba(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode ``path`` to (uint8 RGB [H, W, 3], alpha in [0, 1] [H, W] or None if opaque)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    try:
        with Image.open(path) as im:
            w, h = im.size
            if w * h > MAX_PIXELS:
                raise UserError(f"{path}: {w}x{h} exceeds the {MAX_MPX} Mpx limit; downscale it first")
            if min(w, h) < MIN_SIDE:
                raise UserError(f"{path}: {w}x{h} is too small (need at least {MIN_SIDE} px a side)")
            if getattr(im, "n_frames", 1) > 1:
                warnings.warn(f"{path}: animated, {im.n_frames} frames; using the first", stacklevel=3)
                im.seek(0)
            im = ImageOps.exif_transpose(im)
            im.load()
            return _to_rgba(im)
    except UserError:
        raise
    except Image.DecompressionBombError as e:  # PIL refuses > 2 x its own limit already at open time
        raise UserError(f"{path}: exceeds the {MAX_MPX} Mpx limit ({e}); downscale it first") from e
    except UnidentifiedImageError as e:
        raise UserError(f"{path}: not an image PIL can read (PNG, JPEG, WebP, ...)") from e
    except (OSError, SyntaxError, ValueError) as e:
        raise UserError(f"{path}: cannot decode the image ({e}); the file may be truncated or corrupt") from e


def _to_rgba(im) -> tuple[np.ndarray, np.ndarray | None]:
    if im.mode.startswith("I") or im.mode == "F":  # 16/32-bit grayscale: rescale, PIL's convert would clip
        a = np.asarray(im, dtype=np.float64)
        a = a / (65535.0 if a.max() > 255 else 255.0)
        gray = (np.clip(a, 0, 1) * 255 + 0.5).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2), None
    has_alpha = im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info
    arr = np.asarray(im.convert("RGBA" if has_alpha else "RGB"))
    if not has_alpha or arr[..., 3].min() == 255:
        return np.ascontiguousarray(arr[..., :3]), None
    return np.ascontiguousarray(arr[..., :3]), arr[..., 3].astype(np.float32) / 255.0


def border_mask(rgb: np.ndarray, path) -> np.ndarray | None:
    """Object mask from the border-colour heuristic (module docstring), or None for a busy background."""
    from scipy import ndimage

    b = BORDER_PX
    border = np.concatenate([rgb[:b].reshape(-1, 3), rgb[-b:].reshape(-1, 3),
                             rgb[:, :b].reshape(-1, 3), rgb[:, -b:].reshape(-1, 3)]).astype(np.float32)
    colour = np.median(border, axis=0)
    if (np.linalg.norm(border - colour, axis=1) < BACKGROUND_TOL).mean() < BORDER_UNIFORM:
        warnings.warn(
            f"{path}: busy background (no alpha, non-uniform border); using the whole image. "
            "For best results cut the object out (transparent PNG) or shoot it on a plain background",
            BusyBackgroundWarning, stacklevel=3,
        )
        return None
    mask = np.linalg.norm(rgb.astype(np.float32) - colour, axis=2) > BACKGROUND_TOL
    # Close pinholes where the object's colour matches the background, drop isolated speckle.
    mask = ndimage.binary_fill_holes(ndimage.binary_opening(mask, iterations=1))
    return mask.astype(np.float32)


def _square_crop(img: np.ndarray, centre_row: float, centre_col: float, side: float) -> np.ndarray:
    """The ``side``-pixel square around a centre, black where it leaves the image."""
    side = max(int(round(side)), 1)
    top, left = int(round(centre_row - side / 2)), int(round(centre_col - side / 2))
    out = np.zeros((side, side, img.shape[2]), dtype=img.dtype)
    sr0, sc0 = max(top, 0), max(left, 0)
    sr1, sc1 = min(top + side, img.shape[0]), min(left + side, img.shape[1])
    out[sr0 - top:sr1 - top, sc0 - left:sc1 - left] = img[sr0:sr1, sc0:sc1]
    return out


def _resize(img: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    channels = [
        np.asarray(Image.fromarray(img[..., c]).resize((size, size), Image.Resampling.LANCZOS))
        for c in range(img.shape[2])
    ]
    return (np.clip(np.stack(channels, axis=-1), 0, 255) + 0.5).astype(np.uint8)
