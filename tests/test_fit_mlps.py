"""Family A phase 1 (paper §3.1): the 54,785-parameter MLP, its flat layout and batched forward, fitting an
analytic sphere, anchor vs random inits, and ``img2sdf fit-mlps`` end to end (resume, shards + merge, mesh).
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from test_fit import build_store

from img2sdf.cli.main import main
from img2sdf.data import analytic
from img2sdf.models.mlp import (
    PAPER_MLP,
    ShapeMLP,
    StackedMLPs,
    batched_forward,
    flatten,
    init_weights,
    unflatten,
)
from img2sdf.train.fit import clamped_l1


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


def test_parameter_count_is_the_papers():
    assert PAPER_MLP.n_params == 54_785
    assert PAPER_MLP.in_dim == 39
    assert sum(p.numel() for p in ShapeMLP().parameters()) == 54_785


def test_flatten_round_trip_and_batched_forward_match_nn_module():
    flat = init_weights(3, seeds=[1, 2, 3])
    assert flat.shape == (3, 54_785)
    assert torch.equal(flatten(unflatten(flat)), flat)
    w1, b1 = unflatten(flat)[0]
    assert w1.shape == (3, 128, 39) and b1.shape == (3, 128)
    assert torch.equal(w1[1].reshape(-1), flat[1, :128 * 39])  # W1 first, row-major [out, in]
    points = torch.rand(3, 500, 3) * 2 - 1
    batched = batched_forward(flat, points)
    for m in range(3):
        mlp = ShapeMLP.from_flat(flat[m])
        assert torch.equal(mlp.to_flat(), flat[m])
        torch.testing.assert_close(batched[m], mlp(points[m]), rtol=1e-5, atol=1e-6)
    # different vectors give different functions (the batch dimension is not mixed up)
    assert (batched[0] - batched[1]).abs().max() > 1e-3


def _sphere_samples(n: int, seed: int, radius: float = 0.5) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    surface = rng.normal(size=(n // 2, 3))
    surface = radius * surface / np.linalg.norm(surface, axis=1, keepdims=True)
    pts = np.concatenate([surface + rng.normal(scale=0.03, size=surface.shape),
                          rng.uniform(-1, 1, size=(n - len(surface), 3))])
    sdf = analytic.sphere_sdf(pts, radius)[:, None]
    return torch.from_numpy(np.concatenate([pts, sdf], 1).astype(np.float32))


def _fit(init: torch.Tensor, samples: torch.Tensor, steps: int, lr: float, seed: int = 0) -> torch.Tensor:
    """Plain batched Adam on the clamped L1 (the loop of train/fit_mlps.py without its bookkeeping)."""
    model = StackedMLPs(init)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    m = torch.arange(len(init))[:, None]
    for _ in range(steps):
        batch = samples[m, torch.randint(samples.shape[1], (len(init), 1024), generator=g)]
        loss = clamped_l1(model(batch[..., :3]), batch[..., 3], 0.1).mean(1).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.weights.detach()


def test_an_mlp_fits_an_analytic_sphere():
    train, held_out = _sphere_samples(20_000, 0)[None], _sphere_samples(5_000, 1)
    init = init_weights(1, seeds=[0])
    fitted = _fit(init, train, steps=300, lr=1e-3)

    def error(w):
        pred = batched_forward(w, held_out[None, :, :3])[0]
        return clamped_l1(pred, held_out[:, 3], 0.1).mean().item(), pred

    err_init, _ = error(init)
    err, pred = error(fitted)
    assert err_init > 0.03  # an untrained MLP is far from the sphere
    assert err < 0.006
    near = held_out[:, 3].abs() > 0.02
    assert ((pred[near] < 0) == (held_out[near, 3] < 0)).float().mean() > 0.99


def test_anchor_started_mlps_are_more_alike_than_random_ones():
    shapes = [_sphere_samples(8_000, s, radius=r) for s, r in ((1, 0.3), (2, 0.7))]
    samples = torch.stack(shapes)
    anchor = _fit(init_weights(1, seeds=[9]), _sphere_samples(8_000, 3)[None], steps=100, lr=1e-3)
    from_anchor = _fit(anchor.expand(2, -1), samples, steps=60, lr=1e-3)
    from_random = _fit(init_weights(2, seeds=[4, 5]), samples, steps=60, lr=1e-3)

    def cos(w):
        return torch.nn.functional.cosine_similarity(w[0], w[1], dim=0).item()

    assert not torch.equal(from_anchor[0], from_anchor[1])
    assert cos(from_anchor) > 0.9
    assert abs(cos(from_random)) < 0.2


def _args(data, out, *extra):
    return ["fit-mlps", str(data), "--out", str(out), "--preset", "tiny", "--no-progress", "--threads", "1",
            "--device", "cpu",
            "--epochs", "10", "--set", "anchor_epochs=30", "--set", "chunk=2", "--set", "ckpt_every=5",
            "--set", "eval_points=2000", *extra]


@pytest.fixture(scope="module")
def mlp_runs(tmp_path_factory):
    """The tiny analytic store; an unsharded anchor run A and the same run in two shards C."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("fit_mlps")
    build_store(root / "data", [("sphere", "train"), ("box", "train"), ("torus", "train"),
                                ("small_sphere", "train"), ("sphere", "test")], n_points=6000)
    assert main(_args(root / "data", root / "A")) == 0
    assert main(_args(root / "data", root / "C", "--shard", "0/2")) == 0
    assert not (root / "C" / "weights.safetensors").exists()  # shard 1/2 still missing
    assert main(_args(root / "data", root / "C", "--shard", "1/2")) == 0  # the last shard merges
    return root


def test_cli_writes_weights_anchor_and_losses(mlp_runs):
    run = mlp_runs / "A"
    config = json.loads((run / "config.json").read_text())
    assert config["kind"] == "fit-mlps" and config["obj_idx"] == [0, 1, 2, 3]  # train split only
    weights = load_file(run / "weights.safetensors")["weights"]
    assert weights.shape == (4, 54_785) and weights.dtype == torch.float32
    anchor = load_file(run / "anchor.safetensors")["weights"][0]
    cos = torch.nn.functional.cosine_similarity(weights, anchor[None], dim=1)
    assert (cos > 0.9).all() and (cos < 1.0).all()  # started from the anchor, then moved
    losses = json.loads((run / "losses.json").read_text())
    assert [s["obj_idx"] for s in losses["per_shape"]] == [0, 1, 2, 3]
    assert losses["anchor"]["obj_idx"] == 0 and losses["outlier_threshold"] == 0.01
    assert losses["n_outliers"] == sum(s["loss"] > 0.01 for s in losses["per_shape"])
    assert all(0 < s["loss"] < 0.1 for s in losses["per_shape"])
    assert (run / "log.csv").is_file() and (run / "loss.png").stat().st_size > 0
    assert np.median([s["loss"] for s in losses["per_shape"]]) == pytest.approx(losses["median"])
    # the fit moved each non-anchor shape's loss well below the anchor's loss on that shape
    from img2sdf.data.store import ShapeStore
    from img2sdf.runs import Run
    from img2sdf.train.fit import load_samples
    from img2sdf.train.fit_mlps import final_losses

    cfg = Run.open(run, "fit-mlps").config
    samples = load_samples(ShapeStore(mlp_runs / "data"), [1, 2, 3], progress=False)
    before = final_losses(anchor.expand(3, -1), samples, [1, 2, 3], cfg)
    after = [s["loss"] for s in losses["per_shape"][1:]]
    assert all(x < 0.7 * y for x, y in zip(after, before, strict=True)), (after, before)


def test_shards_and_merge_reproduce_the_unsharded_run(mlp_runs):
    a, c = mlp_runs / "A", mlp_runs / "C"
    assert torch.equal(load_file(a / "anchor.safetensors")["weights"],
                       load_file(c / "anchor.safetensors")["weights"])
    wa, wc = load_file(a / "weights.safetensors")["weights"], load_file(c / "weights.safetensors")["weights"]
    torch.testing.assert_close(wc, wa, rtol=0, atol=1e-5)  # a shape's fit does not depend on its batch
    (c / "weights.safetensors").unlink()
    assert main(["fit-mlps", str(c), "--merge"]) == 0
    assert torch.equal(load_file(c / "weights.safetensors")["weights"], wc)


def test_resume_continues_a_chunk_from_its_checkpoint(mlp_runs, tmp_path):
    a, b = mlp_runs / "A", tmp_path / "B"
    shutil.copytree(a, b)
    # the state of a run killed inside its second chunk: chunk 0 saved, chunk 1 only in the checkpoint
    for name in ("weights.safetensors", "losses.json", "shards/0-of-1/chunk_0001.safetensors"):
        (b / name).unlink()
    ckpts = sorted((b / "shards/0-of-1/ckpt").glob("*.json"))
    assert json.loads(ckpts[-1].read_text())["meta"] == {"job": "chunk_0001", "job_step": 35}
    assert main(_args(mlp_runs / "data", b)) == 2  # a run is never overwritten without --resume
    assert main(["fit-mlps", str(mlp_runs / "data"), "--out", str(b), "--resume", "--no-progress"]) == 0
    torch.testing.assert_close(load_file(b / "weights.safetensors")["weights"],
                               load_file(a / "weights.safetensors")["weights"], rtol=0, atol=0)


def test_random_init_run_has_unrelated_rows(mlp_runs):
    out = mlp_runs / "R"
    assert main(_args(mlp_runs / "data", out, "--init", "random", "--epochs", "2", "--set", "chunk=4")) == 0
    w = load_file(out / "weights.safetensors")["weights"]
    assert not (out / "anchor.safetensors").exists()
    cos = torch.nn.functional.cosine_similarity(w[:, None], w[None], dim=2)
    assert cos[~torch.eye(4, dtype=torch.bool)].abs().max() < 0.2


def test_mesh_command_meshes_a_fit_mlps_shape(mlp_runs, tmp_path, capsys):
    out = tmp_path / "sphere.ply"
    assert main(["mesh", str(mlp_runs / "A"), "--shape", "0", "-o", str(out), "--resolution", "64"]) == 0
    import trimesh

    mesh = trimesh.load(out, force="mesh")
    assert len(mesh.faces) > 100 and mesh.is_watertight
    # shape 0 is the radius-0.6 sphere: the mesh lies near it
    radii = np.linalg.norm(mesh.vertices, axis=1)
    assert abs(np.median(radii) - 0.6) < 0.1
    assert main(["mesh", str(mlp_runs / "A"), "--shape", "4", "-o", str(out)]) == 2  # a test shape
