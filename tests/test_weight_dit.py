"""Family A's weight-space DiT (paper §3.2): size, tokenisers, and recall of 4 training vectors."""

import dataclasses

import pytest
import torch

from img2sdf.models.blocks import count_parameters
from img2sdf.models.diffusion import GaussianDiffusion
from img2sdf.models.mlp import PAPER_MLP, MLPConfig
from img2sdf.models.weight_dit import WDIT_PRESETS, WeightDiT
from img2sdf.train.train_dit import WDIT_TRAIN_PRESETS, PairedViews, load_dit_run, train_dit

SMALL_MLP = MLPConfig(hidden=16)  # 1,473 parameters: the same layout, cheap to diffuse


def test_paper_preset_parameter_count():
    with torch.device("meta"):  # 132 M parameters without allocating them
        model = WeightDiT(WDIT_PRESETS["paper"])
        layer = WeightDiT(dataclasses.replace(WDIT_PRESETS["paper"], tokens="layer"))
    assert count_parameters(model) == 132_181_089  # "~132 M" (§3.2, Figure 1)
    assert (model.cfg.d_model, model.cfg.layers, model.cfg.n_chunks) == (768, 8, 8)
    assert model.cfg.segments() == [6_849] * 8 and model.padded == 54_792  # 8 tokens of 6,849 after padding
    assert count_parameters(layer) == 205_867_169  # ten own projections in and out
    assert sum(layer.cfg.segments()) == PAPER_MLP.n_params == 54_785


@pytest.mark.parametrize("tokens", ["chunk", "layer"])
def test_tokenisers_cover_the_vector_and_start_at_the_mean(tokens):
    cfg = dataclasses.replace(WDIT_PRESETS["tiny"], mlp=SMALL_MLP, tokens=tokens, feature_dim=8, d_model=32)
    model = WeightDiT(cfg)
    n_tokens = 8 if tokens == "chunk" else 10  # W1, b1, ..., W5, b5
    x = torch.randn(3, SMALL_MLP.n_params)
    assert model.tokenise(x).shape == (3, n_tokens, 32)
    out = model(x, torch.tensor([0, 10, 499]), torch.randn(3, 2, 8))
    assert out.shape == x.shape and torch.equal(out, torch.zeros_like(out))  # zero-initialised output
    # every coordinate reaches a token: the gradient of the tokens wrt the input touches all of them
    x.requires_grad_(True)
    model.tokenise(x).pow(2).sum().backward()
    assert (x.grad.abs() > 0).all()


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
    is the true vector, by a margin. (The offset's cosine is still only 0.1-0.4 after these 600 steps — the
    prediction stays near the mean — and reaches 0.9999 after 1,500; the latent DiT recalls 16 latents at
    cos > 0.9 in 300 steps, test_dit.py.)"""
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
    residual = w - pairs.latents.mean(0)  # raw cosines are all ≈ 1 in a thin shell: compare offsets
    truth = pairs.latents - pairs.latents.mean(0)
    cos = torch.nn.functional.cosine_similarity(residual[:, None], truth[None], dim=-1)
    assert torch.equal(cos.argmax(1), torch.arange(4)), cos
    others = cos.masked_fill(torch.eye(4, dtype=torch.bool), -1).max(1).values
    assert (cos.diag() - others).min() > 0.05, cos
    run = load_dit_run(tmp_path / "run")
    assert run.kind == "weight-dit" and isinstance(run.model, WeightDiT)
    assert torch.allclose(run.model.weight_mean, pairs.latents.mean(0))
    assert run.model.weight_std.min() >= 1e-4  # §3.5's clamp
