"""Image encoders by behaviour, the DINOv2 code path on a tiny random model, and the feature cache."""

import json

import numpy as np
import pytest
import torch
import trimesh

from img2sdf.cli.main import main
from img2sdf.data.cameras import fibonacci_views
from img2sdf.data.render import RenderConfig, render_shape, render_views
from img2sdf.data.store import Manifest, ShapeEntry, ShapeStore
from img2sdf.encoders import DEFAULT_ENCODER, available, get_encoder
from img2sdf.encoders import cache as cache_module
from img2sdf.encoders.cache import encode_store
from img2sdf.errors import UserError
from img2sdf.io import write_mesh

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def views():
    """Renders of two spheres and two boxes from 4 views each: uint8 [16, 224, 224, 3]."""
    shapes = [trimesh.creation.icosphere(3, radius=0.8), trimesh.creation.icosphere(3, radius=0.6),
              trimesh.creation.box((1.2, 0.5, 0.5)), trimesh.creation.box((1.0, 0.45, 0.4))]
    cams = fibonacci_views(4, 2.5)
    return np.concatenate([render_views(m, cams, 224)[..., :3] for m in shapes])


@pytest.mark.parametrize("name", [n for n in available() if not n.startswith("dinov2")])
def test_offline_encoders_are_deterministic_and_well_shaped(views, name):
    enc = get_encoder(name)
    f = enc.encode(views)
    assert f.shape == (16, enc.dim) and f.dtype == np.float32 and np.isfinite(f).all()
    np.testing.assert_array_equal(f, get_encoder(name).encode(views))
    np.testing.assert_array_equal(f[3:5], enc.encode(views[3:5]))  # independent of batch composition


@pytest.mark.parametrize("name", [n for n in available() if not n.startswith("dinov2")])
def test_every_offline_encoder_tells_spheres_from_boxes(views, name):
    """Features that ignored the image (or only its size/colour) could not retrieve a box for a box."""
    enc = get_encoder(name)
    assert name != DEFAULT_ENCODER or 200 <= enc.dim <= 1200
    f = enc.encode(views)
    f /= np.linalg.norm(f, axis=1, keepdims=True)
    sim = f @ f.T
    label = np.repeat([0, 0, 1, 1], 4)
    same_shape = np.repeat(np.arange(4), 4)
    sim[same_shape[:, None] == same_shape[None]] = -np.inf  # retrieve from the *other* instances only
    assert (label[sim.argmax(1)] == label).mean() >= 0.9


def test_unknown_encoder_is_a_user_error():
    with pytest.raises(UserError, match="unknown"):
        get_encoder("clip-giant")
    with pytest.raises(UserError, match="no weights"):
        get_encoder(DEFAULT_ENCODER, weights="/some/dir")


def test_dinov2_real_code_path_on_a_tiny_random_model(views, tiny_dinov2):
    from transformers import BitImageProcessorPil, Dinov2Model

    enc = get_encoder("dinov2-base", weights=str(tiny_dinov2))
    assert enc.dim == 32
    f = enc.encode(views[:3])
    # Reference: transformers' own DINOv2 preprocessing (resize 256, crop 224, ImageNet norm) + CLS token.
    proc = BitImageProcessorPil(size={"shortest_edge": 256}, crop_size={"height": 224, "width": 224},
                                image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225])
    pixels = torch.from_numpy(proc(list(views[:3]), return_tensors="np")["pixel_values"])
    ours = enc.preprocess(views[:3])
    assert ours.shape == pixels.shape
    assert (ours - pixels).abs().mean() < 0.03  # PIL vs torch bicubic differ only by rounding
    model = Dinov2Model.from_pretrained(tiny_dinov2).eval()
    with torch.no_grad():
        ref = model(pixel_values=ours).last_hidden_state[:, 0].numpy()
    np.testing.assert_allclose(f, ref, atol=1e-5)
    assert np.abs(f[0] - f[2]).max() > 1e-3  # different images, different features


def test_dinov2_without_weights_fails_at_once_saying_how_to_get_them(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError, match=r"facebook/dinov2-base.*hf download facebook/dinov2-base"):
        get_encoder("dinov2-base")
    with pytest.raises(UserError, match="no config.json"):
        get_encoder("dinov2-small", weights=str(tmp_path))


@pytest.fixture()
def store(tmp_path):
    """Three shapes: two rendered (4 views, 56 px), one failed in an earlier stage."""
    store = ShapeStore(tmp_path / "data")
    entries = [ShapeEntry(0, "a", "ball", "train", "test", status="ok"),
               ShapeEntry(1, "b", "box", "train", "test", status="failed", reason="not watertight"),
               ShapeEntry(2, "c", "box", "test", "test", status="ok")]
    store.save_manifest(Manifest(entries))
    write_mesh(store.mesh_path(0), trimesh.creation.icosphere(3, radius=0.8))
    write_mesh(store.mesh_path(2), trimesh.creation.box((1.0, 0.5, 0.5)))
    for i in (0, 2):
        render_shape(store, i, RenderConfig(views=4, resolution=56))
    return store


def test_encode_store_fills_ok_rows_and_zeros_failed_ones(store):
    enc = get_encoder("hog")
    encode_store(store, enc, batch_size=3)
    feats, poses, meta = store.load_features("hog")
    assert feats.shape == (3, 4, enc.dim) and feats.dtype == np.float16
    assert meta["filled"] == [True, False, True] and meta["views"] == 4 and meta["dim"] == enc.dim
    assert not feats[1].any() and feats[0].any() and feats[2].any()
    np.testing.assert_allclose(poses[0], fibonacci_views(4, 2.5), atol=1e-6)
    images, _ = cache_module.load_render_views(store, 2)
    np.testing.assert_allclose(feats[2], enc.encode(images), atol=2e-3)
    assert not list(store.features_path("hog").parent.glob("*partial*"))


class CountingEncoder:
    """Wraps an encoder, counts calls and can simulate a kill after ``fail_after`` calls."""

    def __init__(self, inner, fail_after=None):
        self.inner, self.fail_after, self.calls = inner, fail_after, 0
        self.name, self.dim, self.batch_size = inner.name, inner.dim, inner.batch_size

    def encode(self, images):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt
        self.calls += 1
        return self.inner.encode(images)


def test_encode_store_resumes_after_an_interruption(store, monkeypatch):
    monkeypatch.setattr(cache_module, "CHECKPOINT_EVERY", 1)
    first = CountingEncoder(get_encoder("hog"), fail_after=1)
    with pytest.raises(KeyboardInterrupt):
        encode_store(store, first)
    partial = json.loads((store.root / "features" / "hog.partial.json").read_text())
    assert partial["filled"] == [True, False, False]
    assert not store.features_path("hog").exists()
    second = CountingEncoder(get_encoder("hog"))
    encode_store(store, second)
    assert second.calls == 1  # only the shape the killed run had not saved
    feats, _, meta = store.load_features("hog")
    assert meta["filled"] == [True, False, True]
    images, _ = cache_module.load_render_views(store, 0)
    np.testing.assert_allclose(feats[0], get_encoder("hog").encode(images), atol=2e-3)
    third = CountingEncoder(get_encoder("hog"))
    encode_store(store, third)
    assert third.calls == 0  # complete cache: nothing to do


def test_encode_cli(store, tmp_path, monkeypatch, capsys):
    assert main(["encode", str(store.root), "--encoder", "hog", "--batch-size", "2", "--device", "cpu"]) == 0
    assert "2 of 3 shapes" in capsys.readouterr().out
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    assert main(["encode", str(store.root), "--encoder", "dinov2-small"]) == 2
    assert "hf download facebook/dinov2-small" in capsys.readouterr().err


def test_dinov2_refuses_pickled_weights(tiny_dinov2, tmp_path):
    import shutil

    folder = tmp_path / "pickled"
    folder.mkdir()
    shutil.copy(tiny_dinov2 / "config.json", folder / "config.json")
    (folder / "pytorch_model.bin").write_bytes(b"a pickle is never loaded")
    with pytest.raises(UserError, match="no model.safetensors"):
        get_encoder("dinov2-small", weights=str(folder))
