"""Family B's weight autoencoder (paper §4.1): it reconstructs its training vectors, resumes, and reports
§4.1's numbers."""

import dataclasses
import shutil

import torch

from img2sdf.models.mlp import MLPConfig
from img2sdf.models.weight_ae import WeightAE, WeightAEConfig
from img2sdf.train.train_wae import WAE_PRESETS, train_wae

SMALL_MLP = MLPConfig(hidden=16)  # 1,473 parameters


def _shell(n=8, seed=0):
    """Anchor-like vectors: a shared vector plus per-shape offsets 1 % of its scale (cosines ≈ 0.99)."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(SMALL_MLP.n_params, generator=g)
    return base + 0.01 * torch.randn(n, SMALL_MLP.n_params, generator=g)


def _cfg(**kw):
    model = WeightAEConfig(mlp=SMALL_MLP, hidden=(64, 64, 64), latent_dim=16)
    return dataclasses.replace(WAE_PRESETS["tiny"], model=model, batch_size=8, ckpt_every=100, **kw)


def test_paper_autoencoder_shape():
    with torch.device("meta"):
        ae = WeightAE(WeightAEConfig(latent_dim=256))
    dims = [m.in_features for m in ae.encoder if isinstance(m, torch.nn.Linear)] + [ae.cfg.latent_dim]
    assert dims == [54_785, 1024, 1024, 1024, 256]  # §4.1; the decoder mirrors it
    outs = [m.out_features for m in ae.decoder if isinstance(m, torch.nn.Linear)]
    assert outs == [1024, 1024, 1024, 54_785]


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
    for path in (tmp_path / "b" / "ckpt").glob("step_00000300.*"):
        path.unlink()
    resumed = train_wae(w, list(range(8)), _cfg(epochs=300, lr=1e-3), tmp_path / "b", resume=True,
                        progress=False)
    for a, b in zip(model.state_dict().values(), resumed.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
