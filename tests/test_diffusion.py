"""Cosine schedule, forward process and DDIM sampler (paper §3.2 eq. 3-4) against their definitions."""

import torch

from img2sdf.models.diffusion import GaussianDiffusion, cosine_alphas_cumprod


def test_cosine_schedule_properties():
    abar = cosine_alphas_cumprod(500)
    assert abar.shape == (500,)
    assert torch.all(abar[1:] < abar[:-1])  # strictly decreasing: every step adds noise
    assert abar[0] > 0.9999 and abar[-1] < 1e-4
    # the cosine schedule is ~linear in the middle of the log-SNR range: ᾱ at T/2 is close to 0.5
    assert abs(abar[249].item() - 0.5) < 0.03


def test_q_sample_statistics():
    diff = GaussianDiffusion(500)
    gen = torch.Generator().manual_seed(0)
    x0 = torch.full((20000, 4), 2.0)
    for t in (0, 100, 250, 499):
        tt = torch.full((x0.shape[0],), t)
        xt = diff.q_sample(x0, tt, torch.randn(x0.shape, generator=gen))
        abar = diff.alphas_cumprod[t].item()
        assert abs(xt.mean().item() - 2.0 * abar**0.5) < 0.02
        assert abs(xt.var().item() - (1 - abar)) < 0.02 + 0.02 * (1 - abar)


def test_ddim_with_perfect_predictor_returns_x0():
    diff = GaussianDiffusion(500)
    x0 = torch.randn(8, 64, generator=torch.Generator().manual_seed(1))
    for eta in (0.0, 1.0):
        out = diff.ddim_sample(lambda x, t: x0, x0.shape, steps=50, eta=eta,
                               generator=torch.Generator().manual_seed(2))
        assert torch.allclose(out, x0, atol=1e-5)
    assert diff.ddim_timesteps(50)[0] == 499 and diff.ddim_timesteps(50)[-1] == 0
    assert len(diff.ddim_timesteps(50)) == 50


def test_ddim_queries_the_model_once_per_timestep_from_noise_to_clean():
    diff = GaussianDiffusion(100)
    seen = []

    def predict(x, t):
        seen.append(int(t[0]))
        return 0.5 * x

    out = diff.ddim_sample(predict, (4, 3), steps=10, generator=torch.Generator().manual_seed(0))
    assert seen == diff.ddim_timesteps(10)
    assert torch.isfinite(out).all()


def test_training_loss_is_zero_for_the_oracle_and_positive_otherwise():
    diff = GaussianDiffusion(500)
    x0 = torch.randn(16, 64)
    assert diff.training_loss(lambda x, t: x0, x0).item() == 0.0
    assert diff.training_loss(lambda x, t: torch.zeros_like(x0), x0).item() > 0.5
