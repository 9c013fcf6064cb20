"""The networks of Families A and B (paper §3.2, §4.1) at model level: the weight-space DiT's size and
tokenisers, the weight autoencoder's shape, and the AE reconstructing its training vectors. Their trainers,
commands and diagnostics are not in this tree yet (see the issue)."""

import dataclasses

import pytest
import torch

from img2sdf.models.blocks import count_parameters
from img2sdf.models.mlp import PAPER_MLP, MLPConfig
from img2sdf.models.weight_ae import WeightAE, WeightAEConfig
from img2sdf.models.weight_dit import WDIT_PRESETS, WeightDiT

SMALL_MLP = MLPConfig(hidden=16)  # 1,473 parameters: the same layout, cheap to diffuse


def test_paper_weight_dit_parameter_count():
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
    x.requires_grad_(True)  # every coordinate reaches a token
    model.tokenise(x).pow(2).sum().backward()
    assert (x.grad.abs() > 0).all()


def test_paper_autoencoder_shape():
    with torch.device("meta"):
        ae = WeightAE(WeightAEConfig(latent_dim=256))
    dims = [m.in_features for m in ae.encoder if isinstance(m, torch.nn.Linear)] + [ae.cfg.latent_dim]
    assert dims == [54_785, 1024, 1024, 1024, 256]  # §4.1; the decoder mirrors it
    outs = [m.out_features for m in ae.decoder if isinstance(m, torch.nn.Linear)]
    assert outs == [1024, 1024, 1024, 54_785]


def test_autoencoder_reconstructs_anchor_like_vectors_beyond_their_mean():
    """Vectors 1 % apart around a shared one (cosines ≈ 0.99, like anchor-started MLPs): the AE must get the
    offsets right, not only the mean that every vector shares."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    base = torch.randn(SMALL_MLP.n_params, generator=g)
    w = base + 0.01 * torch.randn(8, SMALL_MLP.n_params, generator=g)
    ae = WeightAE(WeightAEConfig(mlp=SMALL_MLP, hidden=(64, 64, 64), latent_dim=16))
    ae.set_statistics(w)
    opt = torch.optim.Adam(ae.parameters(), lr=1e-3)
    target = (w - ae.weight_mean) / ae.residual_scale
    for _ in range(400):
        loss = (ae.decode_residual(ae.encode(w)) - target).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        offsets_true, offsets_rec = w - w.mean(0), ae(w) - w.mean(0)
    cos = torch.nn.functional.cosine_similarity(offsets_rec, offsets_true, dim=1)
    assert cos.min() > 0.95, cos
