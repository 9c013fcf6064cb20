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


def test_one_ddim_step_is_the_closed_form_under_a_non_ideal_predictor():
    """x_prev = √ᾱ_prev x̂₀ + √(1 − ᾱ_prev − σ²) ε̂ + σ z with ε̂ = (x_t − √ᾱ_t x̂₀) / √(1 − ᾱ_t), for a
    predictor far from any data's x0 (an ideal one would make every update rule return x0)."""
    diff = GaussianDiffusion(100)
    abar = diff.alphas_cumprod.double()
    x_start = torch.randn(5, 3, generator=torch.Generator().manual_seed(0)).double()
    seen = []

    def predict(x, t):
        seen.append(x.clone())
        return 0.3 * x + 0.1

    for eta in (0.0, 0.7):
        seen.clear()
        gen = torch.Generator().manual_seed(4)
        diff.ddim_sample(predict, x_start.shape, steps=4, eta=eta, noise=x_start, generator=gen)
        t, t_prev = diff.ddim_timesteps(4)[:2]
        a, a_prev = abar[t], abar[t_prev]
        x0_hat = 0.3 * x_start + 0.1
        eps = (x_start - a.sqrt() * x0_hat) / (1 - a).sqrt()
        sigma = eta * ((1 - a_prev) / (1 - a) * (1 - a / a_prev)).sqrt()
        z = torch.randn(x_start.shape, generator=torch.Generator().manual_seed(4)).double()
        expected = a_prev.sqrt() * x0_hat + (1 - a_prev - sigma**2).sqrt() * eps + sigma * z
        assert torch.allclose(seen[1], expected, atol=1e-10), eta  # the input of the second model call


def test_ddim_with_the_exact_posterior_mean_samples_gaussian_data():
    """Data x0 ~ N(μ, s²): E[x0 | x_t] = μ + s²√ᾱ (x_t − √ᾱ μ) / (ᾱ s² + 1 − ᾱ) is the ideal x0 predictor, and
    DDIM driven by it must produce samples with the data's mean and std (deterministic and stochastic)."""
    diff = GaussianDiffusion(500)
    mu = torch.tensor([1.5, -0.5, 0.0, 3.0], dtype=torch.float64)
    s = torch.tensor([0.5, 2.0, 1.0, 0.25], dtype=torch.float64)

    def posterior_mean(x, t):
        a = diff.alphas_cumprod[t][:, None]
        return mu + s**2 * a.sqrt() * (x - a.sqrt() * mu) / (a * s**2 + 1 - a)

    for eta in (0.0, 1.0):
        gen = torch.Generator().manual_seed(7)
        noise = torch.randn(20_000, 4, generator=gen, dtype=torch.float64)
        out = diff.ddim_sample(posterior_mean, noise.shape, steps=250, eta=eta, noise=noise, generator=gen)
        assert ((out.mean(0) - mu).abs() < 0.03 * s + 0.01).all(), (eta, out.mean(0))
        assert torch.allclose(out.std(0), s, rtol=0.04), (eta, out.std(0))  # Euler error ~1-3 % at 250 steps


def test_ddim_samples_on_the_requested_device_and_caches_the_schedule():
    diff = GaussianDiffusion(50)
    out = diff.ddim_sample(lambda x, t: 0.5 * x, (3, 2), steps=5, generator=torch.Generator().manual_seed(0),
                           device="cpu")
    ref = diff.ddim_sample(lambda x, t: 0.5 * x, (3, 2), steps=5, generator=torch.Generator().manual_seed(0))
    assert out.device.type == "cpu" and torch.equal(out, ref)  # the CPU generator's noise, on any device
    assert diff.schedule(torch.device("cpu")) is diff.schedule("cpu")  # copied to a device once
