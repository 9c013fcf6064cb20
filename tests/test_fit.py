"""Auto-decoder fit (paper §5.2): a tiny fit recalls analytic shapes; resume after a kill is exact; CLI.

``build_store`` (also used by the other DeepSDF tests) writes a small prepared store of analytic solids
with exact SDF samples, so these tests do not depend on the data pipeline.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from img2sdf.data import analytic
from img2sdf.data.store import Manifest, ShapeEntry, ShapeStore
from img2sdf.errors import UserError
from img2sdf.io import write_mesh, write_npz

# name -> (exact SDF, mesh of the same surface); all inside the unit sphere
SOLIDS = {
    "sphere": (lambda p: analytic.sphere_sdf(p, 0.6), lambda: analytic.sphere_mesh(0.6)),
    "box": (lambda p: analytic.box_sdf(p, (0.5, 0.35, 0.25)), lambda: analytic.box_mesh((0.5, 0.35, 0.25))),
    "torus": (lambda p: analytic.torus_sdf(p, 0.5, 0.2), lambda: analytic.torus_mesh(0.5, 0.2)),
    "small_sphere": (lambda p: analytic.sphere_sdf(p, 0.45), lambda: analytic.sphere_mesh(0.45)),
}


def build_store(root: Path, shapes: list[tuple[str, str]], n_points: int = 20_000,
                seed: int = 0) -> ShapeStore:
    """Prepared store of (solid, split) pairs: half near-surface, half uniform samples, exact SDF (§2.2)."""
    store = ShapeStore(root)
    rng = np.random.default_rng(seed)
    entries = []
    for i, (name, split) in enumerate(shapes):
        sdf_fn, mesh_fn = SOLIDS[name]
        mesh = mesh_fn()
        surface = mesh.sample(n_points // 2, seed=seed + i)
        near = surface + rng.normal(scale=0.02, size=surface.shape)
        uniform = rng.uniform(-1, 1, size=(n_points - len(near), 3))
        pts = np.concatenate([near, uniform]).astype(np.float32)
        write_npz(store.sdf_path(i), points=pts, sdf=sdf_fn(pts.astype(np.float64)).astype(np.float32))
        write_mesh(store.mesh_path(i), mesh)
        entries.append(ShapeEntry(obj_idx=i, uid=f"analytic-{name}-{i}", category=name, split=split,
                                  source="analytic", status="ok"))
    store.save_manifest(Manifest(shapes=entries, source="analytic"))
    return store


def tiny_config(**changes):
    from img2sdf.runs.configs import make_config

    overrides = ["decoder.hidden=64", "decoder.layers=4", "decoder.skip_layer=2", "shapes_per_step=2",
                 "points_per_shape=1024", "epochs=100", "ckpt_every=25", "threads=1"]
    return make_config("fit", "tiny", overrides + [f"{k}={v}" for k, v in changes.items()])


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """A tiny decoder fitted on sphere / box / torus (shared by the tests below)."""
    from img2sdf.train.fit import fit

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("fit")
    build_store(root / "data", [("sphere", "train"), ("box", "train"), ("torus", "train"),
                                ("small_sphere", "test")])
    fit(root / "data", root / "run", tiny_config(epochs=400, ckpt_every=200), progress=False)
    return root


def test_fit_writes_run_folder_and_recalls_shapes(fitted):
    from img2sdf.eval.metrics import surface_metrics
    from img2sdf.generate.mesh import extract_mesh
    from img2sdf.runs import load_decoder_run

    run = fitted / "run"
    for name in ("config.json", "decoder.safetensors", "latents.safetensors", "log.csv", "loss.png"):
        assert (run / name).is_file(), name
    loaded = load_decoder_run(run)
    assert loaded.latents.shape == (3, 64) and loaded.obj_idx == [0, 1, 2]
    store = ShapeStore(loaded.data_root)
    for row, i in enumerate(loaded.obj_idx):
        mesh = extract_mesh(loaded.decoder, loaded.latents[row], resolution=64)
        m = surface_metrics(mesh, store.load_mesh(i), n_points=20_000)
        assert m["chamfer_l1"] < 0.02 and m["iou"] > 0.85, (i, m)
    # the latents really encode the shapes: decoding shape 0 with shape 2's latent gives the other solid
    swapped = extract_mesh(loaded.decoder, loaded.latents[2], resolution=64)
    assert surface_metrics(swapped, store.load_mesh(0), n_points=20_000)["chamfer_l1"] > 0.05


def _fit_cmd(data: Path, run: Path, *extra: str) -> list[str]:
    sets = ["decoder.hidden=64", "decoder.layers=4", "decoder.skip_layer=2", "shapes_per_step=2",
            "points_per_shape=512", "epochs=150", "ckpt_every=5", "threads=1"]
    cmd = [sys.executable, "-m", "img2sdf.cli.main", "fit", str(data), "--out", str(run), "--preset", "tiny",
           "--device", "cpu"]
    return cmd + [a for s in sets for a in ("--set", s)] + list(extra)


def test_resume_after_kill_is_exact(tmp_path):
    data = tmp_path / "data"
    build_store(data, [("sphere", "train"), ("box", "train")], n_points=4000)
    subprocess.run(_fit_cmd(data, tmp_path / "straight"), check=True, capture_output=True)

    proc = subprocess.Popen(_fit_cmd(data, tmp_path / "killed"), stderr=subprocess.DEVNULL)
    while not list((tmp_path / "killed" / "ckpt").glob("step_*.json")) and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (tmp_path / "killed" / "decoder.safetensors").exists()
    from img2sdf.runs import load_decoder_run

    assert load_decoder_run(tmp_path / "killed").latents.shape == (2, 64)  # an unfinished run loads its ckpt
    subprocess.run(_fit_cmd(data, tmp_path / "killed", "--resume"), check=True, capture_output=True)

    for name in ("decoder.safetensors", "latents.safetensors"):
        a, b = load_file(tmp_path / "straight" / name), load_file(tmp_path / "killed" / name)
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), (name, k)


def test_fit_errors(tmp_path):
    from img2sdf.cli.main import main
    from img2sdf.runs.configs import make_config
    from img2sdf.train.fit import fit

    with pytest.raises(UserError, match="no manifest.json"):
        fit(tmp_path / "missing", tmp_path / "run", tiny_config(), progress=False)
    build_store(tmp_path / "data", [("sphere", "test")], n_points=1000)
    with pytest.raises(UserError, match="no shapes with status ok in split 'train'"):
        fit(tmp_path / "data", tmp_path / "run", tiny_config(), progress=False)
    with pytest.raises(UserError, match="no field 'hiden'"):
        make_config("fit", "tiny", ["decoder.hiden=3"])
    assert main(["fit", str(tmp_path / "data"), "--out", str(tmp_path / "r2"), "--resume"]) == 2


def test_reconstruct_held_out_beats_mean_latent(fitted):
    from img2sdf.eval.decoder_eval import sdf_l1
    from img2sdf.generate.reconstruct import reconstruct_latent
    from img2sdf.runs import load_decoder_run

    run = load_decoder_run(fitted / "run")
    pts, sdf = ShapeStore(run.data_root).load_sdf(3)  # the held-out small sphere
    z = reconstruct_latent(run.decoder, pts, sdf, steps=200, n_points=2048)
    fitted_err = sdf_l1(run.decoder, z, pts, sdf, 0.1)
    mean_err = sdf_l1(run.decoder, run.latents.mean(0), pts, sdf, 0.1)
    assert fitted_err < 0.5 * mean_err, (fitted_err, mean_err)
    assert all(p.requires_grad is False for p in run.decoder.parameters())  # left frozen as loaded


def test_cli_mesh_reconstruct_eval(fitted, tmp_path):
    import json

    import trimesh

    from img2sdf.cli.main import main

    run = fitted / "run"
    box_glb = tmp_path / "box.glb"
    assert main(["mesh", str(run), "--shape", "1", "-o", str(box_glb), "--resolution", "64",
                 "--device", "cpu"]) == 0
    box = trimesh.load(box_glb, force="mesh")
    assert np.allclose(box.bounds[1], (0.5, 0.35, 0.25), atol=0.03)
    assert main(["mesh", str(run), "--all", "--resolution", "64"]) == 0
    assert sorted(p.name for p in (run / "meshes").iterdir()) == [f"obj_000{i}.ply" for i in range(3)]
    npz = fitted / "data" / "shapes" / "obj_0003.npz"
    assert main(["reconstruct", str(run), str(npz), "-o", str(tmp_path / "r.ply"), "--steps", "30",
                 "--points", "2048", "--resolution", "64", "--latent-out", str(tmp_path / "z.npy"),
                 "--device", "cpu"]) == 0
    assert trimesh.load(tmp_path / "r.ply").is_watertight
    # the CLI fits the run's own objective (eq. 5 with fit's λ = 1e-5; it once hardcoded 1e-4)
    from img2sdf.generate.reconstruct import load_target, reconstruct_latent
    from img2sdf.runs import load_decoder_run

    dec_run = load_decoder_run(run)
    assert dec_run.reconstruct_settings() == {"clamp_delta": 0.1, "latent_reg": 1e-5, "init_std": 0.01}
    points, sdf = load_target(npz)
    z = reconstruct_latent(dec_run.decoder, points, sdf, steps=30, n_points=2048,
                           **dec_run.reconstruct_settings())
    assert np.array_equal(np.load(tmp_path / "z.npy"), z.numpy())
    other = reconstruct_latent(dec_run.decoder, points, sdf, steps=30, n_points=2048,
                               **{**dec_run.reconstruct_settings(), "latent_reg": 1e-4})
    assert not np.allclose(other.numpy(), z.numpy(), atol=1e-5)

    assert main(["eval", str(run), "--points", "5000", "--reconstruct-steps", "100", "--resolution", "64",
                 "--pictures", "2", "--device", "cpu"]) == 0
    metrics = json.loads((run / "eval" / "metrics.json").read_text())
    assert metrics["protocol"]["chamfer_l1"].startswith("0.5 * (mean")
    assert [s["n"] for s in metrics["splits"].values()] == [3, 1]
    assert metrics["splits"]["train"]["mean"]["chamfer_l1"] < 0.02
    html = (run / "report.html").read_text()
    assert html.count("<img") == 1 + 2 + 1 and (run / "report.md").is_file()

    assert main(["mesh", str(run), "--shape", "3", "-o", str(tmp_path / "x.ply")]) == 2  # held-out, no latent
    assert main(["mesh", str(tmp_path / "nothing"), "--all"]) == 2
    assert main(["reconstruct", str(run), str(tmp_path / "missing.obj"), "-o", str(tmp_path / "y.ply")]) == 2


def test_cuda_rng_states_restore_in_device_order():
    from img2sdf.runs.checkpoint import cuda_rng_keys

    keys = {f"rng.cuda.{i}": i for i in (10, 2, 0, 11, 1)} | {"rng.cpu": -1, "model.w": -2}
    assert cuda_rng_keys(keys) == ["rng.cuda.0", "rng.cuda.1", "rng.cuda.2", "rng.cuda.10", "rng.cuda.11"]
