"""load_view: every input kind the tests can make, framed like the training renders."""

import struct
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image

from img2sdf.data.images import FRAME_FRACTION, BusyBackgroundWarning, load_view
from img2sdf.errors import UserError

S = 224


def scene(h=300, w=400, box=(40, 160, 60, 120), fg=(200, 60, 40), bg=(255, 255, 255)):
    """An RGB image with a filled rectangle rows r0:r1, cols c0:c1 on a plain background."""
    im = np.empty((h, w, 3), np.uint8)
    im[:] = bg
    r0, r1, c0, c1 = box
    im[r0:r1, c0:c1] = fg
    return im


def assert_framed(out, fg=None):
    """Object on black, its bbox centred and its larger side FRAME_FRACTION of the image."""
    assert out.shape == (S, S, 3) and out.dtype == np.uint8
    mask = out.max(-1) > 60
    rows, cols = np.nonzero(mask)
    assert abs((rows.min() + rows.max() + 1) / 2 - S / 2) <= 2
    assert abs((cols.min() + cols.max() + 1) / 2 - S / 2) <= 2
    side = max(rows.max() + 1 - rows.min(), cols.max() + 1 - cols.min())
    assert abs(side - FRAME_FRACTION * S) <= 3
    assert out[:5].max() == 0 and out[:, -5:].max() == 0  # black background
    if fg is not None:
        centre = out[S // 2, S // 2].astype(int)
        assert np.abs(centre - np.array(fg)).max() <= 6
    return rows.max() + 1 - rows.min(), cols.max() + 1 - cols.min()


def test_rgba_png_uses_alpha_and_is_centred(tmp_path):
    rgba = np.zeros((300, 200, 4), np.uint8)
    rgba[10:70, 20:140] = (30, 220, 90, 255)
    rgba[100:, :, :3] = 255  # colour under zero alpha must not leak in
    Image.fromarray(rgba).save(tmp_path / "a.png")
    h, w = assert_framed(load_view(tmp_path / "a.png"), fg=(30, 220, 90))
    assert abs(w / h - 2.0) < 0.1


def test_rgb_jpeg_on_white_uses_the_border_colour(tmp_path):
    Image.fromarray(scene()).save(tmp_path / "b.jpg", quality=95)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = load_view(tmp_path / "b.jpg")
    h, w = assert_framed(out, fg=(200, 60, 40))
    assert abs(h / w - 2.0) < 0.1


@pytest.mark.parametrize("mode", ["L", "P", "PA-transparency"])
def test_grayscale_and_palette(tmp_path, mode):
    im = Image.fromarray(scene(fg=(90, 90, 90), bg=(250, 250, 250)))
    extra = {}
    if mode == "L":
        im = im.convert("L")
    else:
        im = im.convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
        if mode == "PA-transparency":  # the background's palette index is transparent
            extra["transparency"] = int(np.asarray(im)[0, 0])
    im.save(tmp_path / "c.png", **extra)
    assert_framed(load_view(tmp_path / "c.png"), fg=(90, 90, 90))


def test_16_bit_grayscale_is_rescaled_not_clipped(tmp_path):
    a = np.full((200, 200), 1000, np.uint16)
    a[50:150, 70:130] = 40000  # ~61 % of full scale
    Image.fromarray(a).save(tmp_path / "d.png")
    assert Image.open(tmp_path / "d.png").mode.startswith("I")
    out = load_view(tmp_path / "d.png")
    assert_framed(out)
    assert abs(int(out[S // 2, S // 2, 0]) - round(40000 / 65535 * 255)) <= 3


def test_exif_orientation_is_applied(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # stored image must be rotated 90° clockwise for display
    Image.fromarray(scene(box=(40, 200, 60, 100))).save(tmp_path / "e.jpg", exif=exif, quality=95)
    h, w = assert_framed(load_view(tmp_path / "e.jpg"))
    assert w > 3 * h  # a tall stored rectangle displays wide


def test_webp(tmp_path):
    rgba = np.zeros((120, 160, 4), np.uint8)
    rgba[30:90, 40:80] = (250, 200, 0, 255)
    Image.fromarray(rgba).save(tmp_path / "f.webp", lossless=True)
    assert_framed(load_view(tmp_path / "f.webp"), fg=(250, 200, 0))


def test_busy_background_warns_and_still_returns_a_view(tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, (180, 240, 3), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "g.png")
    with pytest.warns(BusyBackgroundWarning, match="busy background"):
        out = load_view(tmp_path / "g.png")
    assert out.shape == (S, S, 3)
    # The whole centre square is kept: nothing was blacked out.
    assert (out.max(-1) == 0).mean() < 0.01


def test_animated_gif_uses_the_first_frame_with_a_note(tmp_path):
    f1 = Image.fromarray(scene(fg=(255, 0, 0), bg=(0, 0, 0)))
    f2 = Image.fromarray(scene(fg=(0, 0, 255), bg=(0, 0, 0)))
    f1.save(tmp_path / "h.gif", save_all=True, append_images=[f2], duration=100, loop=0)
    with pytest.warns(UserWarning, match="first"):
        out = load_view(tmp_path / "h.gif")
    centre = out[S // 2, S // 2].astype(int)
    assert centre[0] > 200 and centre[2] < 50


def _png_header_claiming(w: int, h: int) -> bytes:
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" + b"\0" * 3 * 4)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_bad_inputs_are_one_line_user_errors(tmp_path):
    (tmp_path / "notes.png").write_text("this is not an image\n")
    Image.fromarray(scene()).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "trunc.png").write_bytes(data[: len(data) // 2])
    Image.new("RGB", (1, 1)).save(tmp_path / "one.png")
    (tmp_path / "huge.png").write_bytes(_png_header_claiming(20000, 20000))
    Image.new("RGB", (64, 64), (255, 255, 255)).save(tmp_path / "blank.png")
    cases = {
        "notes.png": "not an image",
        "trunc.png": "truncated",
        "one.png": "too small",
        "huge.png": "Mpx limit",
        "blank.png": "no object",
        "missing.png": "no such file",
    }
    for name, message in cases.items():
        with pytest.raises(UserError, match=message) as info:
            load_view(tmp_path / name)
        assert name in str(info.value) and "\n" not in str(info.value)
