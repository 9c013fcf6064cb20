"""Bundles (``generate.pretrained``): a DiT run + its decoder exported into one hash-checked folder that
``generate`` and ``serve`` use with no data store."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import trimesh
from test_generate import tiny_runs  # noqa: F401  (the shared tiny store + decoder + DiT fixture)

from img2sdf.cli.main import main
from img2sdf.errors import UserError
from img2sdf.generate.pipeline import ImageToShape
from img2sdf.generate.pretrained import export_bundle, verify_bundle
from img2sdf.io import read_json


@pytest.fixture
def bundle(tiny_runs, tmp_path):  # noqa: F811
    out = tmp_path / "bundle"
    assert main(["bundle", str(tiny_runs["dit"]), "--out", str(out), "--note", "test"]) == 0
    assert read_json(out / "manifest.json")["provenance"]["note"] == "test"
    return out


def test_a_bundle_generates_without_its_data_store(tiny_runs, bundle, tmp_path, capsys):  # noqa: F811
    manifest = verify_bundle(bundle)
    assert set(manifest["files"]) >= {"dit/dit.safetensors", "dit/config.json", "decoder/decoder.safetensors",
                                      "decoder/latents.safetensors", "decoder/config.json", "shapes.json"}
    assert manifest["total_bytes"] == sum(f.stat().st_size for f in bundle.rglob("*")
                                          if f.is_file() and f.name != "manifest.json")
    # the bundle must not point back at the store or the run folders it came from
    moved = tmp_path / "moved"
    shutil.move(bundle, moved)
    shutil.move(tiny_runs["data"], tmp_path / "store_gone")
    try:
        image = tmp_path / "store_gone" / "renders" / "obj_0002" / "view_03.png"
        rc = main(["generate", str(image), "--model", str(moved), "-o", str(tmp_path / "box.glb"),
                   "--resolution", "32", "--steps", "20"])
        printed = capsys.readouterr().out
        assert rc == 0, printed
        mesh = trimesh.load(tmp_path / "box.glb", force="mesh")
        assert mesh.is_watertight and len(mesh.faces) > 100
        model = ImageToShape.load(moved)
        assert model.categories == {i: c for i, (c, s) in enumerate(
            [("sphere", "train"), ("sphere", "train"), ("box", "train"), ("box", "train"),
             ("torus", "train"), ("torus", "train")])}
        assert not tiny_runs["data"].exists()  # the store really is gone while the bundle loads
        assert np.allclose(model.train_latents, read_latents(moved))
    finally:
        shutil.move(tmp_path / "store_gone", tiny_runs["data"])


def read_latents(bundle):
    from safetensors.torch import load_file

    return load_file(bundle / "decoder" / "latents.safetensors")["latents"].numpy()


def test_a_corrupted_bundle_is_a_one_line_error(tiny_runs, bundle, tmp_path, capsys):  # noqa: F811
    weights = bundle / "dit" / "dit.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(UserError, match="SHA-256 does not match"):
        ImageToShape.load(bundle)
    with pytest.raises(UserError, match="SHA-256 does not match"):
        ImageToShape.load(bundle / "dit")  # the run inside the bundle is checked too
    image = tiny_runs["data"] / "renders" / "obj_0002" / "view_03.png"
    assert main(["generate", str(image), "--model", str(bundle), "-o", str(tmp_path / "x.glb")]) == 2
    err = capsys.readouterr().err.strip()
    assert "SHA-256 does not match" in err and len(err.splitlines()) == 1
    (bundle / "decoder" / "latents.safetensors").unlink()
    with pytest.raises(UserError, match="missing"):
        verify_bundle(bundle)


def test_export_refuses_an_unfinished_run(tiny_runs, tmp_path):  # noqa: F811
    partial = tmp_path / "dit"
    partial.mkdir()
    shutil.copyfile(tiny_runs["dit"] / "config.json", partial / "config.json")
    with pytest.raises(UserError, match="finish the run"):
        export_bundle(partial, tmp_path / "bundle")
    assert not read_json(partial / "config.json")["decoder_run"].startswith("..")


def test_the_bundled_model_loads_and_generates_a_watertight_mesh(tmp_path, capsys):
    """The model inside the package (``make pretrained``): hashes match, and ``generate`` without --model
    turns photos of shapes no training render showed into closed meshes whose nearest training shapes
    follow the photo: a ring → a ring-like category, an elongated rocket → an elongated vehicle."""
    from PIL import Image

    from img2sdf.data.watertight import normalise
    from img2sdf.eval.gallery import thumbnail
    from img2sdf.generate.pretrained import BUNDLE_DIR, MAX_BYTES

    manifest = verify_bundle(BUNDLE_DIR)
    assert manifest["total_bytes"] <= MAX_BYTES
    model = ImageToShape.load()
    assert len(model.train_obj_idx) == 976 and len(set(model.categories.values())) == 16
    cone = trimesh.creation.cone(0.3, 0.5, sections=48).apply_translation((0, 0, 0.5))
    shapes = {"ring": (trimesh.creation.annulus(0.3, 0.5, 0.25, sections=64), {"torus_knot", "wagon_wheel"}),
              "rocket": (trimesh.util.concatenate([trimesh.creation.cylinder(0.2, 1.0, sections=48), cone]),
                         {"airplane", "car"})}
    for name, (mesh, expected) in shapes.items():
        photo = tmp_path / f"{name}.png"
        Image.fromarray(thumbnail(normalise(mesh)[0], 256, background=(255, 255, 255))).save(photo)
        out = tmp_path / f"{name}.glb"
        rc = main(["generate", str(photo), "-o", str(out), "--resolution", "32", "--steps", "20"])
        printed = capsys.readouterr().out
        assert rc == 0, printed
        top1 = next(line.split() for line in printed.splitlines() if line.strip().startswith("1."))
        assert top1[2] in expected, printed
        generated = trimesh.load(out, force="mesh")
        assert generated.is_watertight and len(generated.faces) > 100
