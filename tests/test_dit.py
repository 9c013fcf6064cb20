"""Latent DiT (paper §6.1): size, pose embedding, recall of its training latents, exact resume."""

import dataclasses

import pytest
import torch

from img2sdf.errors import UserError
from img2sdf.models.diffusion import GaussianDiffusion
from img2sdf.models.dit import DIT_PRESETS, LatentDiT, count_parameters
from img2sdf.models.pose import POSE_DIM, PoseEmbedding, sinusoidal_pose
from img2sdf.runs import load_dit_run
from img2sdf.runs.checkpoint import list_checkpoints
from img2sdf.runs.configs import TRAIN_PRESETS
from img2sdf.train.train_dit import PairedViews, train_dit


def test_paper_preset_parameter_count():
    model = LatentDiT(dataclasses.replace(DIT_PRESETS["paper"], feature_dim=768))
    n = count_parameters(model)
    assert n == 11_558_144  # "~10 M" in §6.1: d_model 384, 4 layers, 6 heads, MLP ratio 2, AdaLN-Zero
    assert (model.cfg.d_model, model.cfg.layers, model.cfg.heads) == (384, 4, 6)


def _camera(direction, distance):
    pose = torch.eye(4)
    pose[:3, 3] = torch.nn.functional.normalize(torch.tensor(direction, dtype=torch.float32), dim=0)
    pose[:3, 3] *= distance
    return pose


def test_pose_embedding_and_null_token():
    a, b = _camera([0, 0, 1], 2.5), _camera([1, 0, 0], 2.5)
    emb = sinusoidal_pose(torch.stack([a, b, a]))
    assert emb.shape == (3, POSE_DIM)
    assert torch.allclose(emb[0], emb[2]) and not torch.allclose(emb[0], emb[1], atol=0.1)
    assert torch.all(emb.abs() <= 1)
    # the embedding depends on the camera position only, not on roll about the viewing axis
    rolled = a.clone()
    rolled[:3, :3] = torch.tensor([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])
    assert torch.allclose(sinusoidal_pose(rolled), emb[0])

    pe = PoseEmbedding()
    poses = torch.stack([a, b])[None]  # [1, 2, 4, 4]
    out = pe(poses, known=torch.tensor([[True, False]]))
    assert torch.allclose(out[0, 0], emb[0]) and torch.equal(out[0, 1], pe.null.detach())
    assert torch.equal(pe(None, shape=(2, 3)), pe.null.detach().expand(2, 3, POSE_DIM))
    out.sum().backward()  # the null token is learned
    assert pe.null.grad is not None and pe.null.grad.abs().sum() > 0


def _pairs(n=16, v=12, d=32, seed=0):
    """Latents and per-view features that carry them (a fixed random projection plus view noise)."""
    g = torch.Generator().manual_seed(seed)
    latents = torch.randn(n, 64, generator=g) * 0.3
    features = (latents @ torch.randn(64, d, generator=g))[:, None] + 0.3 * torch.randn(n, v, d, generator=g)
    poses = torch.eye(4).repeat(n, v, 1, 1)
    poses[..., :3, 3] = torch.nn.functional.normalize(torch.randn(n, v, 3, generator=g), dim=-1) * 2.5
    return PairedViews(latents, features.half(), poses, list(range(n)))


def _cfg(steps, **kw):
    model = dataclasses.replace(DIT_PRESETS["tiny"], d_model=64, heads=4)
    return dataclasses.replace(TRAIN_PRESETS["tiny"], model=model, steps=steps, batch_size=16,
                               warmup_steps=20, **kw)


def test_tiny_dit_recalls_its_training_latents(tmp_path):
    torch.set_num_threads(1)
    pairs = _pairs()
    model = train_dit(pairs, _cfg(300, ckpt_every=10**9), tmp_path / "run", progress=False)
    diffusion = GaussianDiffusion(500)
    n = len(pairs.obj_idx)
    for views, poses in ((pairs.features[:, :1], pairs.poses[:, :1]), (pairs.features[:, 3:7], None)):
        x = diffusion.ddim_sample(model.denoiser(views.float(), poses), (n, 64), steps=20,
                                  generator=torch.Generator().manual_seed(1))
        z = model.unstandardise(x)
        cos = torch.nn.functional.cosine_similarity(z[:, None], pairs.latents[None], dim=-1)
        assert cos.diag().mean() > 0.9
        assert torch.equal(cos.argmax(1), torch.arange(n))  # top-1 is the true latent for every shape
    run = load_dit_run(tmp_path / "run")
    assert torch.equal(run.model.latent_mean, pairs.latents.mean(0))
    assert (tmp_path / "run" / "loss.png").stat().st_size > 0
    rows = (tmp_path / "run" / "log.csv").read_text().splitlines()
    assert rows[0].startswith("step,loss") and len(rows) == 1 + 300 // 25
    first, last = float(rows[1].split(",")[2]), float(rows[-1].split(",")[2])
    assert last < 0.3 * first  # EMA of the loss went down


def test_resume_is_exact_and_follows_the_resume_rule(tmp_path, capsys):
    torch.set_num_threads(1)
    pairs = _pairs(n=6, v=4)
    cfg = _cfg(20, ckpt_every=10, log_every=5, pose_dropout=0.3)
    ref = train_dit(pairs, cfg, tmp_path / "a", progress=False).state_dict()
    train_dit(pairs, cfg, tmp_path / "b", progress=False)
    last = list_checkpoints(tmp_path / "b")[-1]  # "kill" after step 10: drop everything later
    last.with_suffix(".safetensors").unlink()
    last.unlink()
    (tmp_path / "b" / "dit.safetensors").unlink()
    with pytest.raises(UserError, match="--resume"):
        train_dit(pairs, cfg, tmp_path / "b", progress=False)
    # a setting that cannot change mid-run: one line naming it, old → new
    with pytest.raises(UserError, match="cannot change mid-run: lr: 0.001 → 1.0; resume without"):
        train_dit(pairs, dataclasses.replace(cfg, lr=1.0), tmp_path / "b", resume=True, progress=False)
    resumed = train_dit(pairs, None, tmp_path / "b", resume=True, progress=False).state_dict()  # its own
    for key, value in ref.items():
        assert torch.equal(value, resumed[key]), key
    steps = [int(r.split(",")[0]) for r in (tmp_path / "b" / "log.csv").read_text().splitlines()[1:]]
    assert steps == [5, 10, 15, 20]  # the log keeps the rows before the kill, none twice
    # a safe change (more steps) is applied, with a note, and the run continues from its last step
    capsys.readouterr()
    train_dit(pairs, dataclasses.replace(cfg, steps=30), tmp_path / "b", resume=True, progress=False)
    assert "resume: applying steps 20 → 30" in capsys.readouterr().out
    steps = [int(r.split(",")[0]) for r in (tmp_path / "b" / "log.csv").read_text().splitlines()[1:]]
    assert steps == [5, 10, 15, 20, 25, 30]
    assert load_dit_run(tmp_path / "b").config.steps == 30


def _ddp_worker(rank, world, port, out, cfg):
    import os

    from img2sdf.train import distributed

    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    try:
        train_dit(_pairs(n=8, v=4), cfg, out, progress=False)
    finally:
        distributed.cleanup()


def test_ddp_two_processes_match_one_with_the_same_global_batch(tmp_path):
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = _cfg(8, ckpt_every=10**9, pose_dropout=0.3)
    mp.spawn(_ddp_worker, args=(2, port, tmp_path / "ddp", dataclasses.replace(cfg, batch_size=8)), nprocs=2)
    single = train_dit(_pairs(n=8, v=4), dataclasses.replace(cfg, batch_size=16), tmp_path / "one",
                       progress=False).state_dict()
    ddp = load_dit_run(tmp_path / "ddp").model.state_dict()
    for key, value in single.items():
        assert torch.allclose(value, ddp[key], atol=1e-5), key
    assert not torch.equal(single["latent_out.weight"], torch.zeros_like(single["latent_out.weight"]))


def test_the_dit_samples_both_modes_of_a_bimodal_target(tmp_path):
    """Two shapes share one condition (identical views) with opposite latents ±v. The best regressor of
    the condition alone predicts their mean, 0; the diffusion model must instead sample ±v, both of them —
    which needs x_t and t, not only the views."""
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    v = torch.randn(64, generator=g)
    views = torch.randn(2, 1, 32, generator=g)  # condition A for shapes 0-1, condition B for shapes 2-3
    features = torch.cat([views[:1], views[:1], views[1:], views[1:]]).repeat(1, 4, 1).half()
    poses = torch.eye(4).repeat(4, 4, 1, 1)
    poses[..., 2, 3] = 2.5
    pairs = PairedViews(torch.stack([v, -v, v, -v]), features, poses, [0, 1, 2, 3])
    model = train_dit(pairs, _cfg(300, ckpt_every=10**9, pose_dropout=0.0), tmp_path / "run", progress=False)
    n = 64
    denoise = model.denoiser(features[:1].float().expand(n, -1, -1), poses[:1].expand(n, -1, -1, -1))
    x = GaussianDiffusion(500).ddim_sample(denoise, (n, 64), steps=20,
                                           generator=torch.Generator().manual_seed(1))
    z = model.unstandardise(x)
    cos = torch.nn.functional.cosine_similarity(z, v[None], dim=-1)
    assert (cos.abs() > 0.9).all(), cos  # every sample is one of the two latents, none their mean
    assert ((z.norm(dim=1) / v.norm() - 1).abs() < 0.2).all()
    assert 0.2 < (cos > 0).float().mean() < 0.8  # and both are sampled
