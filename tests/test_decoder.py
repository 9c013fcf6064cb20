"""Shared SDF decoder (paper §5.2): parameter count, positional encoding, batched form, run loading errors."""

from __future__ import annotations

import math

import pytest
import torch

from img2sdf.errors import UserError
from img2sdf.models.blocks import count_parameters
from img2sdf.models.decoder import (
    DECODER_PRESETS,
    DecoderConfig,
    SDFDecoder,
    positional_encoding,
    training_flops_per_point,
)
from img2sdf.runs import load_decoder_run
from img2sdf.runs.configs import make_config


def test_paper_decoder_has_the_papers_parameter_count():
    dec = SDFDecoder(DECODER_PRESETS["paper"])
    assert dec.in_dim == 103  # concat(latent 64, PE 39)
    assert count_parameters(dec) == 1_945_089  # "~1.95 M parameters"
    assert len(dec.hidden) == 8 and dec.hidden[4].in_features == 512 + 103  # skip at the middle layer
    assert count_parameters(SDFDecoder(DECODER_PRESETS["pilot"])) < 300_000


def test_positional_encoding_matches_eq2():
    p = torch.tensor([[0.25, -0.5, 1.0]])
    enc = positional_encoding(p, 6)
    assert enc.shape == (1, 39)
    assert torch.equal(enc[0, :3], p[0])
    k, axis = 3, 1  # band 3, y coordinate: sin(2^3 π y) then cos(2^3 π y)
    assert enc[0, 3 + 6 * k + axis].item() == pytest.approx(math.sin(8 * math.pi * -0.5), abs=1e-6)
    assert enc[0, 3 + 6 * k + 3 + axis].item() == pytest.approx(math.cos(8 * math.pi * -0.5), abs=1e-6)
    assert positional_encoding(torch.zeros(2, 5, 3), 4).shape == (2, 5, 27)


def test_batched_form_equals_flat_form():
    torch.manual_seed(0)
    dec = SDFDecoder(DecoderConfig(hidden=32, layers=4, skip_layer=2))
    z, pts = torch.randn(3, 64), torch.rand(3, 7, 3)
    batched = dec(z, pts)
    flat = dec(z.repeat_interleave(7, 0), pts.reshape(-1, 3)).reshape(3, 7)
    assert batched.shape == (3, 7)
    assert torch.allclose(batched, flat, atol=1e-6)
    # the latent matters: different latents give different fields at the same points
    assert not torch.allclose(dec(z[:1].expand(3, -1), pts), batched)


def test_forward_is_the_concat_mlp_of_section_5_2():
    """The per-shape latent shortcut equals the textbook f(concat(z, γ(p))) with the skip re-injection."""
    torch.manual_seed(1)
    cfg = DecoderConfig(hidden=48, layers=5, skip_layer=3)
    dec = SDFDecoder(cfg)
    z, pts = torch.randn(4, 64), torch.rand(4, 9, 3) * 2 - 1
    inp = torch.cat([z[:, None].expand(-1, 9, -1), positional_encoding(pts, cfg.pe_bands)], dim=-1)
    x = inp
    for i, layer in enumerate(dec.hidden):
        x = torch.relu(layer(torch.cat([x, inp], -1) if i == cfg.skip_layer else x))
    assert torch.allclose(dec(z, pts), dec.out(x).squeeze(-1), atol=1e-5)


def test_bad_config_and_missing_run(tmp_path):
    with pytest.raises(UserError, match="skip_layer"):
        SDFDecoder(DecoderConfig(layers=4, skip_layer=4))
    with pytest.raises(UserError, match="not a decoder run"):
        load_decoder_run(tmp_path)


def test_cpu_preset_spends_the_tiny_976_budget_per_shape_on_more_steps():
    """README, quality per compute: `cpu` = the FLOPs per shape of 40 tiny epochs, 3.5× the steps."""
    tiny, cpu = make_config("fit", "tiny"), make_config("fit", "cpu")
    budget = 40 * tiny.points_per_shape * training_flops_per_point(tiny.decoder)
    spent = cpu.epochs * cpu.points_per_shape * training_flops_per_point(cpu.decoder)
    assert spent == pytest.approx(budget, rel=0.01)
    assert cpu.shapes_per_step == tiny.shapes_per_step and cpu.epochs / 40 > 3.5
