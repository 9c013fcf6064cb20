"""load_view: every input kind the tests can make, framed like the training renders."""

import struct
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image

from img2sdf.data import images
from img2sdf.data.images import FRAME_FRACTION, BusyBackgroundWarning, frame_view, load_view
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


def test_frame_view_frames_an_array_as_load_view_frames_its_file(tmp_path):
    rgba = np.zeros((300, 200, 4), np.uint8)
    rgba[10:70, 20:140] = (30, 220, 90, 255)
    Image.fromarray(rgba).save(tmp_path / "a.png")
    assert np.array_equal(frame_view(rgba, None), load_view(tmp_path / "a.png"))
    im = scene()
    Image.fromarray(im).save(tmp_path / "b.png")
    assert np.array_equal(frame_view(im, None), load_view(tmp_path / "b.png"))
    mask = np.zeros(im.shape[:2], bool)
    mask[:150] = True  # an explicit mask wins over the border colour: the top half is the object
    h, w = assert_framed(frame_view(im, mask, size=S))
    assert abs(w / h - 400 / 150) < 0.1


@pytest.mark.parametrize("kind", ["border colour", "alpha"])
def test_large_images_are_framed_like_the_direct_path(kind):
    """Above 2 * WORK * size px the object is found on reduced copies; the view matches the full-size path."""
    im = scene(h=2000, w=2600, box=(500, 1700, 700, 1300), fg=(200, 60, 40))
    im[800:900, 900:1100] = (40, 60, 200)  # detail that a misplaced crop would move
    alpha = None
    if kind == "alpha":
        alpha = (np.abs(im.astype(int) - 255).sum(-1) > 0).astype(np.float32)
        im[alpha == 0] = (0, 255, 0)  # colour under zero alpha must not bleed in when reducing
    assert max(im.shape) >= 2 * images.WORK * S
    large = frame_view(im, alpha)
    rgb, a = images._split_alpha(im, alpha)
    direct = images._frame_direct(rgb, a, S, "x")
    assert_framed(large, fg=(200, 60, 40))
    diff = np.abs(large.astype(int) - direct.astype(int))
    assert diff.mean() < 1.0 and np.quantile(diff, 0.99) < 40


def test_large_jpeg_decodes_at_a_reduced_scale_and_is_framed(tmp_path):
    Image.fromarray(scene(h=3000, w=5000, box=(600, 2400, 1000, 2000))).save(tmp_path / "big.jpg", quality=90)
    im = images.open_image(tmp_path / "big.jpg", draft_side=images.DRAFT_SIDE)
    assert max(im.size) < 5000 and max(im.size) >= images.DRAFT_SIDE  # the DCT did the reduction
    h, w = assert_framed(load_view(tmp_path / "big.jpg"), fg=(200, 60, 40))
    assert abs(h / w - 1.8) < 0.1


MEMORY_PROBE = """
import sys, warnings
import numpy as np
from PIL import Image
from img2sdf.data.images import load_view
path = sys.argv[1]
a = np.full((7000, 7000, 3), 255, np.uint8)
a[2000:4500, 1500:5000] = (200, 60, 40)
Image.fromarray(a).save(path, compress_level=1)
del a
def rss():
    return int([l for l in open("/proc/self/status") if l.startswith("VmRSS")][0].split()[1])
def hwm():
    return int([l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1])
open("/proc/self/clear_refs", "w").write("5")  # reset VmHWM to the current RSS
before = rss()
out = load_view(path)
print((hwm() - before) / 1024, int(out[112, 112, 0]))
"""


def test_a_huge_mostly_white_png_costs_about_its_decoded_size(tmp_path):
    """49 Mpx (147 MB as RGB): the float32 copies of the whole image took ~1.8 GB; now the decoded image
    (PIL keeps 4 bytes a pixel: 196 MB) plus a few reduced copies."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(tmp_path / "huge.png")],
                         capture_output=True, text=True, check=True).stdout.split()
    extra_mb, centre = float(out[0]), int(out[1])
    assert centre > 150  # the object (red 200) is in the middle of the view
    assert extra_mb < 350, f"load_view of a 7000² PNG raised the peak by {extra_mb:.0f} MB"


def test_a_many_frame_gif_costs_its_first_frame(tmp_path, monkeypatch):
    from PIL import GifImagePlugin

    frames = [Image.fromarray(scene(h=64, w=64, box=(10, 50, 20, 40), fg=(255, 0, 0), bg=(0, 0, 0)))]
    frames += [Image.fromarray(np.full((64, 64, 3), k, np.uint8)) for k in range(1, 200)]
    frames[0].save(tmp_path / "many.gif", save_all=True, append_images=frames[1:], duration=10)
    seeks = []
    real_seek = GifImagePlugin.GifImageFile._seek

    def counting_seek(self, frame, *args, **kwargs):
        seeks.append(frame)
        return real_seek(self, frame, *args, **kwargs)

    monkeypatch.setattr(GifImagePlugin.GifImageFile, "_seek", counting_seek)
    with pytest.warns(UserWarning, match="animated; using the first frame"):
        out = load_view(tmp_path / "many.gif")
    assert max(seeks) <= 1, f"frames decoded or skipped: {sorted(set(seeks))}"
    assert out[S // 2, S // 2, 0] > 200
