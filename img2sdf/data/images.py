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

Memory: an image whose longer side is at least ``2 * WORK * size`` is never copied at full size in floating
point. JPEGs are decoded at a reduced scale (``Image.draft``); the object is found on a box-reduced copy,
its bounding box refined on a reduced crop around it, and only the final square is reduced to at least
``WORK * size`` pixels a side before the LANCZOS resize, so the working copies are a few MB whatever the
input. Smaller images take the direct path (full-resolution float32), with the same framing.
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
PINHOLE_FRACTION = 0.001  # enclosed background regions up to this share of the image are filled as object
WORK = 4  # large images are box-reduced to at least WORK * size px before framing (LANCZOS from there)
BAND_PX = 256  # rows per band when reducing a decoded image
DRAFT_SIDE = 2048  # JPEGs decode at the smallest DCT scale (1/2, 1/4, 1/8) keeping this longer side


class BusyBackgroundWarning(UserWarning):
    """The image has no alpha and a non-uniform border, so the object could not be cut out."""


def load_view(path: str | Path, size: int = 224) -> np.ndarray:
    """Load a user image as uint8 [size, size, 3]: object on black, framed like the training renders."""
    im = open_image(path, draft_side=DRAFT_SIDE)
    w, h = im.size
    if _factor(max(h, w), size) == 1:
        rgb, alpha = _split_alpha(np.asarray(im), None)
        return _frame_direct(rgb, alpha, size, str(path))
    return _frame_large(_Pixels(im), size, str(path))


def frame_view(rgb: np.ndarray, mask: np.ndarray | None, size: int = 224, *,
               name: str = "image") -> np.ndarray:
    """Frame an in-memory image as :func:`load_view` frames a file: uint8 [size, size, 3], object on black.

    ``rgb``: uint8 [H, W, 3] or [H, W, 4] (RGBA: a non-trivial alpha is the mask when ``mask`` is None).
    ``mask``: the object's alpha, float in [0, 1], bool or uint8 0-255 [H, W]; None finds it from alpha or
    the border colour. ``name`` labels warnings and errors.
    """
    rgb, alpha = _split_alpha(rgb, mask)
    h, w = rgb.shape[:2]
    if min(h, w) < 1:
        raise UserError(f"{name}: empty image")
    if _factor(max(h, w), size) == 1:
        return _frame_direct(rgb, alpha, size, name)
    return _frame_large(_Pixels(rgb, alpha), size, name)


def open_image(path: str | Path, draft_side: int | None = None):
    """Decode ``path`` to a loaded PIL image in mode RGB (opaque) or RGBA, EXIF orientation applied.

    Refuses images over :data:`MAX_PIXELS` before decoding; an animated image costs only its first frame.
    ``draft_side``: JPEGs may decode at a reduced scale whose longer side stays at least this.
    """
    from PIL import Image, UnidentifiedImageError

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
            # is_animated looks for a second frame only; n_frames would walk every frame of a GIF.
            if getattr(im, "is_animated", False):
                warnings.warn(f"{path}: animated; using the first frame", stacklevel=3)
                im.seek(0)
            if draft_side and im.format == "JPEG" and max(w, h) > draft_side:
                k = max(w, h) / draft_side
                im.draft("RGB", (max(1, int(w / k)), max(1, int(h / k))))
            im.load()
            out = _rgb_or_rgba(im)
            orientation = im.getexif().get(0x0112)
        if orientation in _TRANSPOSE:
            out = out.transpose(getattr(Image.Transpose, _TRANSPOSE[orientation]))
        return out
    except UserError:
        raise
    except Image.DecompressionBombError as e:  # PIL refuses > 2 x its own limit already at open time
        raise UserError(f"{path}: exceeds the {MAX_MPX} Mpx limit ({e}); downscale it first") from e
    except UnidentifiedImageError as e:
        raise UserError(f"{path}: not an image PIL can read (PNG, JPEG, WebP, ...)") from e
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise UserError(f"{path}: cannot decode the image ({e}); the file may be truncated or corrupt") from e


_TRANSPOSE = {2: "FLIP_LEFT_RIGHT", 3: "ROTATE_180", 4: "FLIP_TOP_BOTTOM", 5: "TRANSPOSE", 6: "ROTATE_270",
              7: "TRANSVERSE", 8: "ROTATE_90"}  # EXIF orientation → PIL transpose (ImageOps.exif_transpose)


def read_rgba(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode ``path`` to (uint8 RGB [H, W, 3], alpha in [0, 1] [H, W] or None if opaque)."""
    rgb, alpha = _split_alpha(np.asarray(open_image(path)), None)
    return np.ascontiguousarray(rgb), alpha


def _rgb_or_rgba(im):
    """A loaded PIL image in mode RGB or RGBA (an all-opaque alpha is dropped); converts only if needed."""
    if im.mode.startswith("I") or im.mode == "F":  # 16/32-bit grayscale: rescale, PIL's convert would clip
        wide = im if im.mode in ("I", "F") else im.convert("I")
        scale = 255.0 / (65535.0 if wide.getextrema()[1] > 255 else 255.0)
        return wide.point(lambda v: v * scale + 0.5).convert("L").convert("RGB")
    has_alpha = im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info
    mode = "RGBA" if has_alpha else "RGB"
    out = im if im.mode == mode else im.convert(mode)
    if has_alpha and out.getextrema()[3][0] == 255:
        return out.convert("RGB")
    return out


def _split_alpha(rgb: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """(uint8 RGB [H, W, 3], float32 alpha in [0, 1] or None if opaque or absent)."""
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] not in (3, 4):
        raise ValueError(f"expected uint8 [H, W, 3|4], got {rgb.dtype} {list(rgb.shape)}")
    if mask is None and rgb.shape[2] == 4 and rgb[..., 3].min() < 255:
        mask = rgb[..., 3]
    rgb = rgb[..., :3]
    if mask is None:
        return rgb, None
    mask = np.asarray(mask)
    if mask.shape != rgb.shape[:2]:
        raise ValueError(f"mask {list(mask.shape)} does not match the image {list(rgb.shape[:2])}")
    if mask.dtype == np.uint8:
        return rgb, mask.astype(np.float32) / 255.0
    return rgb, mask.astype(np.float32)


def _frame_direct(rgb: np.ndarray, alpha: np.ndarray | None, size: int, name: str) -> np.ndarray:
    """Images below 2 * WORK * size px: the object found and framed at full resolution."""
    mask = alpha
    if mask is None:
        mask = border_mask(rgb, name)
    h, w = rgb.shape[:2]
    if mask is None:  # busy background: the centre square of the whole image
        return _resize(_square_crop(rgb.astype(np.float32), h / 2, w / 2, min(h, w)), size)
    if mask.max() < 0.5:
        raise UserError(f"{name}: found no object (the image is all background); crop or cut it out first")
    premultiplied = rgb.astype(np.float32) * mask[..., None]
    r0, r1, c0, c1 = _bbox(mask)
    side = max(r1 - r0, c1 - c0) / FRAME_FRACTION
    return _resize(_square_crop(premultiplied, (r0 + r1) / 2, (c0 + c1) / 2, side), size)


class _Pixels:
    """Box-reduced uint8 crops of a large image (a PIL image, or an array + optional alpha), never a float
    copy of the whole. RGBA is averaged premultiplied (PIL's reduce), so colour under zero alpha stays out."""

    def __init__(self, image, alpha: np.ndarray | None = None):
        self.image, self.alpha = image, alpha
        if isinstance(image, np.ndarray):
            self.shape, self.has_alpha = image.shape[:2], alpha is not None
        else:
            self.shape, self.has_alpha = (image.size[1], image.size[0]), image.mode == "RGBA"

    def crop(self, r0: int, r1: int, c0: int, c1: int, factor: int) -> np.ndarray:
        """Rows r0:r1, cols c0:c1 reduced by ``factor``: uint8 [h, w, 3], or [h, w, 4] with alpha."""
        from PIL import Image

        if isinstance(self.image, np.ndarray):
            part = self.image[r0:r1, c0:c1]
            if self.alpha is not None:
                a = (np.clip(self.alpha[r0:r1, c0:c1], 0, 1) * 255 + 0.5).astype(np.uint8)
                im = Image.fromarray(np.dstack([part, a]), "RGBA")
            else:
                im = Image.fromarray(np.ascontiguousarray(part), "RGB")
            return np.asarray(im.reduce(factor) if factor > 1 else im)
        # In bands of rows: a crop (and PIL's premultiplied RGBa copy) of the whole image would double it.
        step = factor * max(1, BAND_PX // factor)
        bands = []
        for top in range(r0, r1, step):
            band = self.image.crop((c0, top, c1, min(top + step, r1)))
            bands.append(np.asarray(band.reduce(factor) if factor > 1 else band))
        return np.concatenate(bands)


def _frame_large(pixels: _Pixels, size: int, name: str) -> np.ndarray:
    """Images of at least 2 * WORK * size px: found on a reduced copy, refined on a reduced crop."""
    h, w = pixels.shape
    f = _factor(max(h, w), size)
    small = pixels.crop(0, h, 0, w, f)
    colour = None
    if not pixels.has_alpha:
        colour = _border_colour(small, name)
        if colour is None:  # busy background: the centre square of the whole image
            return _frame_square(pixels, None, h / 2, w / 2, min(h, w), size)
    r0, r1, c0, c1 = (int(v) * f for v in _bbox(_object_mask(small, colour, name)))
    # The coarse box is exact to f px; refine it on a reduced crop of the full image around it.
    r0, c0, r1, c1 = max(r0 - f, 0), max(c0 - f, 0), min(r1 + f, h), min(c1 + f, w)
    g = _factor(max(r1 - r0, c1 - c0), size)
    fr0, fr1, fc0, fc1 = _bbox(_object_mask(pixels.crop(r0, r1, c0, c1, g), colour, name))
    r0, r1, c0, c1 = r0 + fr0 * g, min(r0 + fr1 * g, r1), c0 + fc0 * g, min(c0 + fc1 * g, c1)
    side = max(r1 - r0, c1 - c0) / FRAME_FRACTION
    return _frame_square(pixels, colour, (r0 + r1) / 2, (c0 + c1) / 2, side, size)


def _frame_square(pixels: _Pixels, colour: np.ndarray | None, centre_row: float, centre_col: float,
                  side: float, size: int) -> np.ndarray:
    """The ``side``-px square around a centre, reduced, object premultiplied, black outside the image."""
    side = max(int(round(side)), 1)
    top, left = int(round(centre_row - side / 2)), int(round(centre_col - side / 2))
    h, w = pixels.shape
    sr0, sc0, sr1, sc1 = max(top, 0), max(left, 0), min(top + side, h), min(left + side, w)
    g = _factor(side, size)
    part = pixels.crop(sr0, sr1, sc0, sc1, g)
    if part.shape[2] == 4:
        img = part[..., :3].astype(np.float32) * (part[..., 3:] / np.float32(255))
    elif colour is not None:
        img = part.astype(np.float32) * border_mask_for(part, colour)[..., None]
    else:
        img = part.astype(np.float32)
    n = -(-side // g)
    out = np.zeros((n, n, 3), np.float32)
    r, c = (sr0 - top) // g, (sc0 - left) // g
    hh, ww = min(img.shape[0], n - r), min(img.shape[1], n - c)
    out[r:r + hh, c:c + ww] = img[:hh, :ww]
    return _resize(out, size)


def _factor(side: int, size: int) -> int:
    """The integer reduction that keeps ``side`` at least WORK * size px (1: none)."""
    return max(1, int(side) // (WORK * size))


def _object_mask(img: np.ndarray, colour: np.ndarray | None, name: str) -> np.ndarray:
    """float32 mask of a reduced copy: its alpha, or the border-colour mask; refuses an empty one."""
    mask = img[..., 3] / np.float32(255) if img.shape[2] == 4 else border_mask_for(img, colour)
    if mask.max() < 0.5:
        raise UserError(f"{name}: found no object (the image is all background); crop or cut it out first")
    return mask


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.nonzero(mask >= 0.5)
    return rows.min(), rows.max() + 1, cols.min(), cols.max() + 1


def _border_colour(rgb: np.ndarray, name) -> np.ndarray | None:
    """The median border colour if the border is uniform (module docstring); None (with a warning) if busy."""
    b = BORDER_PX
    border = np.concatenate([rgb[:b].reshape(-1, 3), rgb[-b:].reshape(-1, 3),
                             rgb[:, :b].reshape(-1, 3), rgb[:, -b:].reshape(-1, 3)]).astype(np.float32)
    colour = np.median(border, axis=0)
    if (np.linalg.norm(border - colour, axis=1) < BACKGROUND_TOL).mean() < BORDER_UNIFORM:
        warnings.warn(
            f"{name}: busy background (no alpha, non-uniform border); using the whole image. "
            "For best results cut the object out (transparent PNG) or shoot it on a plain background",
            BusyBackgroundWarning, stacklevel=4,
        )
        return None
    return colour


def border_mask(rgb: np.ndarray, path) -> np.ndarray | None:
    """Object mask from the border-colour heuristic (module docstring), or None for a busy background."""
    colour = _border_colour(rgb, path)
    return None if colour is None else border_mask_for(rgb, colour)


def border_mask_for(rgb: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """float32 mask of the pixels farther than BACKGROUND_TOL from the background ``colour``."""
    from scipy import ndimage

    mask = np.linalg.norm(rgb.astype(np.float32) - colour, axis=2) > BACKGROUND_TOL
    # Close pinholes where the object's colour matches the background, drop isolated speckle. Only small
    # holes are filled: a larger enclosed region is background seen through the object (a torus's hole, the
    # gaps between a wheel's spokes or a chair's slats) and stays background.
    mask = ndimage.binary_opening(mask, iterations=1)
    holes, n = ndimage.label(ndimage.binary_fill_holes(mask) & ~mask)
    if n:
        area = np.bincount(holes.ravel())
        small = np.flatnonzero(area <= PINHOLE_FRACTION * mask.size)
        mask |= np.isin(holes, small[small > 0])
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
