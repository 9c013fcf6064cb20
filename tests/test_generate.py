"""`img2sdf generate` end to end on a tiny store, decoder run and DiT run built here (paper §6).

:func:`tiny_runs` (also used by ``test_eval_gen.py``) writes a 9-shape store of analytic solids — 6 training
shapes of 3 categories, 2 held-out ``test`` shapes, 1 ``ood`` cylinder — with real renders and encoder
features (the renders and the photo pool the DiT trains on), fits a small auto-decoder and trains a small
DiT on it (≈ 30 s on one thread).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh
from PIL import Image

from img2sdf.cli.main import main
from img2sdf.data import analytic
from img2sdf.data.render import RenderConfig, render_shape
from img2sdf.data.sdf import sample_sdf
from img2sdf.data.store import Manifest, ShapeEntry, ShapeStore
from img2sdf.io import write_mesh, write_npz

SHAPES = [  # (category, split, mesh)
    ("sphere", "train", lambda: analytic.sphere_mesh(0.5, 3)),
    ("sphere", "train", lambda: analytic.sphere_mesh(0.8, 3)),
    ("box", "train", lambda: analytic.box_mesh((0.6, 0.3, 0.3))),
    ("box", "train", lambda: analytic.box_mesh((0.3, 0.6, 0.3))),
    ("torus", "train", lambda: analytic.torus_mesh(0.5, 0.15, 48, 16)),
    ("torus", "train", lambda: analytic.torus_mesh(0.6, 0.3, 48, 16)),
    ("sphere", "test", lambda: analytic.sphere_mesh(0.65, 3)),
    ("box", "test", lambda: analytic.box_mesh((0.45, 0.45, 0.3))),
    ("cylinder", "ood", lambda: trimesh.creation.cylinder(0.3, 1.2, sections=32)),
]


def build_tiny_runs(root: Path) -> dict[str, Path]:
    """Store → features → auto-decoder → DiT under ``root`` (reused when already built)."""
    from img2sdf.data.photo import PhotoPoolConfig
    from img2sdf.encoders import DEFAULT_ENCODER, get_encoder
    from img2sdf.encoders.cache import encode_store
    from img2sdf.models.dit import DIT_PRESETS
    from img2sdf.runs.configs import TRAIN_PRESETS, make_config
    from img2sdf.train.fit import fit
    from img2sdf.train.train_dit import load_training_pairs, train_dit

    paths = {"data": root / "data", "decoder": root / "decoder", "dit": root / "dit"}
    if (paths["dit"] / "dit.safetensors").is_file():
        return paths
    torch.set_num_threads(1)
    store = ShapeStore(paths["data"])
    entries = []
    for i, (category, split, make) in enumerate(SHAPES):
        mesh = make()
        write_mesh(store.mesh_path(i), mesh)
        points, sdf = sample_sdf(mesh, 16_000, seed=i)
        write_npz(store.sdf_path(i), points=points, sdf=sdf)
        entries.append(ShapeEntry(i, f"test-{category}-{i}", category, split, "test", status="ok"))
    store.save_manifest(Manifest(entries, source="test"))
    for i in range(len(SHAPES)):
        render_shape(store, i, RenderConfig(views=8, resolution=96))
    encoder = get_encoder(DEFAULT_ENCODER)
    encode_store(store, encoder)
    encode_store(store, encoder, views="photo", pool=PhotoPoolConfig(jitter_copies=2, random_views=24))
    fit_cfg = make_config("fit", "tiny", ["epochs=60", "threads=1", "points_per_shape=1024"])
    fit(store.root, paths["decoder"], fit_cfg, progress=False)
    pairs = load_training_pairs(store.root, paths["decoder"], DEFAULT_ENCODER, views="photo")
    cfg = dataclasses.replace(TRAIN_PRESETS["tiny"], steps=400, batch_size=16, ckpt_every=10**9,
                              model=dataclasses.replace(DIT_PRESETS["tiny"], d_model=64, heads=4))
    train_dit(pairs, cfg, paths["dit"], progress=False,
              provenance={"data_root": str(store.root), "decoder_run": str(paths["decoder"]),
                          "encoder": DEFAULT_ENCODER, "views": "photo"})
    return paths


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory):
    return build_tiny_runs(tmp_path_factory.getbasetemp() / "tiny_runs")


def test_generate_from_renders_with_known_poses_recalls_the_shape(tiny_runs, tmp_path, capsys):
    renders = tiny_runs["data"] / "renders" / "obj_0002"
    out = tmp_path / "box.obj"
    rc = main(["generate", str(renders / "view_03.png"), str(renders / "view_06.png"), "--poses",
               str(renders / "cameras.json"), "--model", str(tiny_runs["dit"]), "-o", str(out),
               "--resolution", "32", "--steps", "20", "--preview", str(tmp_path / "box.png")])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    mesh = trimesh.load(out, force="mesh")
    assert len(mesh.faces) > 100 and mesh.bounds[1].max() <= 1.05
    assert "timings: encode" in printed and "sample" in printed and "mesh" in printed
    neighbours = [line.split() for line in printed.splitlines() if line.strip()[:2] in {f"{k}." for k in
                                                                                         range(1, 6)}]
    assert len(neighbours) == 5
    assert neighbours[0][1:3] == ["obj_0002", "box"]  # training render → its own latent is the top-1
    assert float(neighbours[0][-1]) > 0.9
    preview = np.asarray(Image.open(tmp_path / "box.png"))
    assert preview.ndim == 3 and preview.std() > 0


def test_generate_from_a_photo_without_pose(tiny_runs, tmp_path, capsys):
    """User photos: opaque, on a white studio background, unknown pose → the null pose token path. A photo of
    a sphere and one of a held-out box give different meshes, each resembling what was photographed."""
    from img2sdf.encoders.cache import load_render_views
    from img2sdf.eval.metrics import surface_metrics

    store = ShapeStore(tiny_runs["data"])
    meshes = {}
    for obj in (0, 7):  # a training sphere, the held-out box
        views, _ = load_render_views(store, obj)
        photo = np.where(views[2].sum(-1, keepdims=True) > 0, views[2], 255).astype(np.uint8)
        Image.fromarray(photo).convert("RGB").resize((300, 300)).save(tmp_path / f"photo{obj}.jpg")
        rc = main(["generate", str(tmp_path / f"photo{obj}.jpg"), "--model", str(tiny_runs["dit"]), "-o",
                   str(tmp_path / f"photo{obj}.stl"), "--resolution", "32", "--steps", "10", "--seed", "3",
                   "--device", "cpu"])
        assert rc == 0, capsys.readouterr()
        meshes[obj] = trimesh.load(tmp_path / f"photo{obj}.stl", force="mesh")
        assert len(meshes[obj].faces) > 0

    def chamfer(mesh, other):
        return surface_metrics(mesh, other, n_points=5000)["chamfer_l1"]

    assert chamfer(meshes[0], meshes[7]) > 0.1  # the same seed, different photos: different shapes
    # the sphere photo's mesh is nearest to the store's spheres (a photo shows no size, so any of them)
    to = {s.obj_idx: chamfer(meshes[0], store.load_mesh(s.obj_idx)) for s in store.load_manifest().shapes}
    spheres = [i for i, (category, _, _) in enumerate(SHAPES) if category == "sphere"]
    assert min(to[i] for i in spheres) < 0.5 * min(d for i, d in to.items() if i not in spheres), to
    # the box photo's mesh fits the held-out box far better than the sphere photo's mesh does
    box = store.load_mesh(7)
    assert chamfer(meshes[7], box) < 0.5 * chamfer(meshes[0], box)


def test_generate_rejects_bad_arguments(tiny_runs, tmp_path, capsys):
    image = str(tiny_runs["data"] / "renders" / "obj_0000" / "view_00.png")
    model = str(tiny_runs["dit"])
    assert main(["generate", image, "--model", model, "-o", str(tmp_path / "x.xyz")]) == 2
    assert "unknown mesh format" in capsys.readouterr().err
    assert main(["generate", *[image] * 9, "--model", model, "-o", str(tmp_path / "x.glb")]) == 2
    assert "1 to 8 images" in capsys.readouterr().err
    assert main(["generate", image, "--model", str(tmp_path / "nope"), "-o", str(tmp_path / "x.glb")]) == 2
    assert "not a DiT run" in capsys.readouterr().err
    missing = str(tmp_path / "missing.png")
    assert main(["generate", missing, "--model", model, "-o", str(tmp_path / "x.glb")]) == 2
    assert "no such image" in capsys.readouterr().err
    assert main(["generate", image, "--model", model, "-o", str(tmp_path / "x.glb"), "--samples", "0"]) == 2
    assert "samples: 0 is out of range" in capsys.readouterr().err


def test_samples_pick_the_mean_or_the_medoid_of_ddim_samples_from_consecutive_noise(tiny_runs):
    """``samples=S`` runs S DDIM samples whose starting noise is the seed's draw of S × B rows, sample-major
    (so the first is the one-sample result); ``mean`` averages them, ``medoid`` returns the one nearest that
    mean in the DiT's standardised space."""
    from img2sdf.generate.predict import sample_targets
    from img2sdf.runs.load import load_dit_run

    run = load_dit_run(tiny_runs["dit"])
    feats, _, _ = ShapeStore(tiny_runs["data"]).load_features(run.info["encoder"] + "@photo")
    views = torch.as_tensor(np.asarray(feats[[0, 2, 4], :2], dtype=np.float32))  # B = 3 inputs, 2 views
    noise = torch.randn(4 * 3, 64, generator=torch.Generator().manual_seed(5)).view(4, 3, 64)
    singles = torch.stack([sample_targets(run, views, steps=8, noise=noise[s]) for s in range(4)])
    mean = sample_targets(run, views, seed=5, steps=8, samples=4, pick="mean")
    assert torch.allclose(mean, singles.mean(0), atol=1e-5)
    assert torch.allclose(sample_targets(run, views, seed=5, steps=8), singles[0], atol=1e-6)
    assert (mean - singles[0]).abs().max() > 1e-3  # the samples differ: the choice matters
    medoid = sample_targets(run, views, seed=5, steps=8, samples=4, pick="medoid")
    standardised = run.model.standardise(singles)
    nearest = (standardised - standardised.mean(0)).pow(2).sum(-1).argmin(0)
    assert torch.allclose(medoid, singles[nearest, torch.arange(3)], atol=1e-5)
    for bad in ({"samples": 0}, {"pick": "mode"}):
        with pytest.raises(ValueError):
            sample_targets(run, views, **bad)
