"""Atomic writes, typed configs and exact-resume checkpoints."""

import dataclasses
import os

import numpy as np
import pytest
import torch

from img2sdf import io
from img2sdf.config import apply_overrides, from_dict, preset, to_dict
from img2sdf.errors import UserError
from img2sdf.runs.checkpoint import list_checkpoints, load_checkpoint, restore, save_checkpoint


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.npz"
    with pytest.raises(RuntimeError):
        with io.atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("killed")
    assert not target.exists()
    assert os.listdir(tmp_path) == []
    io.write_npz(target, a=np.arange(3))
    assert np.load(target)["a"].tolist() == [0, 1, 2]
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's private 0600


@dataclasses.dataclass
class Inner:
    hidden: int = 8
    dims: tuple = (1, 2)


@dataclasses.dataclass
class Outer:
    lr: float = 1e-3
    name: str = "a"
    amp: bool = False
    inner: Inner = dataclasses.field(default_factory=Inner)


def test_config_overrides_and_round_trip():
    cfg = apply_overrides(Outer(), ["lr=5e-4", "inner.hidden=512", "amp=true", "inner.dims=[3, 4]"])
    assert (cfg.lr, cfg.inner.hidden, cfg.amp, cfg.inner.dims) == (5e-4, 512, True, (3, 4))
    assert from_dict(Outer, to_dict(cfg)) == cfg
    with pytest.raises(UserError, match="no field 'nope'"):
        apply_overrides(Outer(), ["nope=1"])
    with pytest.raises(UserError, match="cannot read"):
        apply_overrides(Outer(), ["lr=fast"])
    with pytest.raises(UserError, match="unknown preset"):
        preset({"tiny": Outer()}, "huge")


def _train(model, opt, gen, steps):
    for _ in range(steps):
        x = torch.randn(16, 4, generator=gen) + torch.randn(16, 4)  # both RNGs matter
        loss = model(x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


def test_checkpoint_resume_is_exact(tmp_path):
    def fresh():
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
        return model, torch.optim.Adam(model.parameters(), lr=1e-2), torch.Generator().manual_seed(1)

    model, opt, gen = fresh()
    _train(model, opt, gen, 10)
    ref = [p.detach().clone() for p in model.parameters()]

    model, opt, gen = fresh()
    _train(model, opt, gen, 4)
    for step in (2, 3, 4):
        save_checkpoint(tmp_path, step, {"net": model}, {"adam": opt}, {"data": gen}, meta={"k": step})
    assert len(list_checkpoints(tmp_path)) == 2  # keep=2
    _train(model, opt, gen, 3)  # work lost by the "kill"

    model, opt, gen = fresh()
    ckpt = load_checkpoint(tmp_path)
    assert ckpt.step == 4 and restore(ckpt, {"net": model}, {"adam": opt}, {"data": gen}) == {"k": 4}
    _train(model, opt, gen, 6)
    for a, b in zip(ref, model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_incomplete_checkpoint_is_ignored(tmp_path):
    model = torch.nn.Linear(2, 2)
    save_checkpoint(tmp_path, 1, {"net": model})
    (tmp_path / "ckpt" / "step_00000002.safetensors").write_bytes(b"partial")  # no JSON: not complete
    assert load_checkpoint(tmp_path).step == 1
