"""Fixtures shared by several test modules."""

import pytest
import torch


@pytest.fixture(scope="session")
def tiny_dinov2(tmp_path_factory):
    """A randomly initialised tiny DINOv2 saved with ``save_pretrained`` (safetensors): the real
    ``Dinov2Model`` code path without downloading weights."""
    from transformers import Dinov2Config, Dinov2Model

    torch.manual_seed(0)
    cfg = Dinov2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                       image_size=224, patch_size=14)
    path = tmp_path_factory.mktemp("dinov2-tiny")
    Dinov2Model(cfg).eval().save_pretrained(path, safe_serialization=True)
    return path
