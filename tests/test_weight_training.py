"""Families A and B trained (paper §3.2, §4.1): a tiny weight DiT recalls its 4 training vectors from their
own views; the weight AE reconstructs its training vectors and an interrupted run resumes to the same
weights. The networks' sizes are pinned in test_weight_models.py."""

import dataclasses
import shutil

import torch

from img2sdf.models.diffusion import GaussianDiffusion
from img2sdf.models.mlp import MLPConfig
from img2sdf.models.weight_ae import WeightAEConfig
from img2sdf.models.weight_dit import WDIT_PRESETS, WeightDiT
from img2sdf.runs import Run, load_dit_run
from img2sdf.runs.configs import WAE_PRESETS, WDIT_TRAIN_PRESETS
from img2sdf.runs.pairs import PairedViews
from img2sdf.train.train_dit import train_dit
from img2sdf.train.train_wae import train_wae

SMALL_MLP = MLPConfig(hidden=16)  # 1,473 parameters: the paper's layout, cheap to diffuse


def _shell_pairs(n=4, v=8, d=16, seed=0):
    """Anchor-like weight vectors (a shared vector plus small per-shape offsets) and views that carry them."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(SMALL_MLP.n_params, generator=g) * 0.1
    weights = base + 0.01 * torch.randn(n, SMALL_MLP.n_params, generator=g)
    codes = torch.randn(n, d, generator=g)
    features = codes[:, None] + 0.2 * torch.randn(n, v, d, generator=g)
    poses = torch.eye(4).repeat(n, v, 1, 1)
    poses[..., :3, 3] = torch.nn.functional.normalize(torch.randn(n, v, 3, generator=g), dim=-1) * 2.5
    return PairedViews(weights, features, poses, list(range(n)))


def test_tiny_weight_dit_recalls_its_4_training_vectors(tmp_path):
    """Each vector's own views pick it out: top-1 by cosine of the predicted offset from the population mean
    is the true vector, by a margin (raw cosines are all ≈ 1 in the thin shell, so offsets are compared)."""
    torch.set_num_threads(1)
    pairs = _shell_pairs()
    cfg = dataclasses.replace(
        WDIT_TRAIN_PRESETS["tiny"], steps=600, batch_size=16, warmup_steps=20, ckpt_every=10**9,
        model=dataclasses.replace(WDIT_PRESETS["tiny"], mlp=SMALL_MLP))
    model = train_dit(pairs, cfg, tmp_path / "run", progress=False)
    x = GaussianDiffusion(500).ddim_sample(model.denoiser(pairs.features[:, :3], pairs.poses[:, :3]),
                                           (4, SMALL_MLP.n_params), steps=20,
                                           generator=torch.Generator().manual_seed(1))
    w = model.unstandardise(x)
    residual = w - pairs.latents.mean(0)
    truth = pairs.latents - pairs.latents.mean(0)
    cos = torch.nn.functional.cosine_similarity(residual[:, None], truth[None], dim=-1)
    assert torch.equal(cos.argmax(1), torch.arange(4)), cos
    others = cos.masked_fill(torch.eye(4, dtype=torch.bool), -1).max(1).values
    assert (cos.diag() - others).min() > 0.05, cos
    run = load_dit_run(tmp_path / "run")
    assert run.kind == "train-wdit" and isinstance(run.model, WeightDiT)
    assert Run.open(tmp_path / "run").config.model.mlp == SMALL_MLP
    assert torch.allclose(run.model.weight_mean, pairs.latents.mean(0))
    assert run.model.weight_std.min() >= 1e-4  # §3.5's clamp


def _shell(n=8, seed=0):
    """Anchor-like vectors: a shared vector plus per-shape offsets 1 % of its scale (cosines ≈ 0.99)."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(SMALL_MLP.n_params, generator=g)
    return base + 0.01 * torch.randn(n, SMALL_MLP.n_params, generator=g)


def _cfg(**kw):
    model = WeightAEConfig(mlp=SMALL_MLP, hidden=(64, 64, 64), latent_dim=16)
    return dataclasses.replace(WAE_PRESETS["tiny"], model=model, batch_size=8, ckpt_every=100, **kw)


def test_autoencoder_reconstructs_its_training_vectors_and_resumes(tmp_path):
    torch.set_num_threads(1)
    w = _shell()
    model = train_wae(w, list(range(8)), _cfg(epochs=300, lr=1e-3), tmp_path / "a", progress=False)
    with torch.no_grad():
        rec = model(w)
    residual, err = w - w.mean(0), rec - w
    assert (err.norm(dim=1) / residual.norm(dim=1)).max() < 0.1  # the per-shape offsets, not only the mean
    assert torch.nn.functional.cosine_similarity(rec, w, dim=1).min() > 0.9999
    # a run killed after epoch 200 and resumed from that checkpoint ends where the uninterrupted one did
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    for path in (tmp_path / "b" / "ckpt").glob("step_00000300*"):
        path.unlink()
    assert [p.name for p in (tmp_path / "b" / "ckpt").glob("*.json")] == ["step_00000200.json"]
    resumed = train_wae(w, list(range(8)), None, tmp_path / "b", resume=True, progress=False)
    for a, b in zip(model.state_dict().values(), resumed.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
