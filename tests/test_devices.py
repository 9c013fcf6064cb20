"""``--device``: one resolver (img2sdf.devices.choose_device) for every command, and ``--amp``; tested
without a GPU (CUDA monkeypatched where its presence matters)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from img2sdf.devices import choose_device
from img2sdf.errors import UserError


def fake_cuda(monkeypatch, count: int) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)


@pytest.mark.parametrize("spec, local_rank, count, expected", [
    (None, 0, 0, "cpu"), ("auto", 3, 0, "cpu"), ("cpu", 1, 4, "cpu"),
    ("auto", 0, 2, "cuda:0"), ("auto", 1, 2, "cuda:1"), ("auto", 3, 2, "cuda:1"),  # LOCAL_RANK picks the GPU
    ("cuda", 1, 2, "cuda:1"), ("CUDA", 0, 1, "cuda:0"), ("cuda:1", 0, 2, "cuda:1"),
])
def test_device_resolution_follows_local_rank(monkeypatch, spec, local_rank, count, expected):
    fake_cuda(monkeypatch, count)
    assert choose_device(local_rank, spec) == torch.device(expected)


@pytest.mark.parametrize("spec, count, message", [
    ("cuda", 0, "no CUDA device here"), ("cuda:0", 0, "no CUDA device here"),
    ("cuda:2", 2, "has 2 CUDA device(s)"), ("cuda:x", 1, "has 1 CUDA device(s)"),
    ("tpu", 0, "choose auto, cpu, cuda, cuda:N or mps"),
])
def test_unavailable_devices_are_one_line_errors(monkeypatch, spec, count, message):
    fake_cuda(monkeypatch, count)
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        choose_device(0, spec)


COMMANDS = {  # every command that runs a model, with arguments that parse (the paths need not exist)
    "fit": ["fit", "DATA", "--out", "RUN"],
    "fit-mlps": ["fit-mlps", "DATA", "--out", "RUN"],
    "train-dit": ["train-dit", "DATA", "--decoder", "RUN", "--out", "DIT"],
    "train-wdit": ["train-wdit", "DATA", "--mlps", "RUN", "--out", "DIT"],
    "train-wae": ["train-wae", "--mlps", "RUN", "--out", "ARUN"],
    "encode": ["encode", "DATA"],
    "mesh": ["mesh", "RUN", "--all"],
    "reconstruct": ["reconstruct", "RUN", "shape.obj", "-o", "out.ply"],
    "eval": ["eval", "RUN"],
    "generate": ["generate", "photo.jpg", "--model", "DIT", "-o", "out.glb"],
    "eval-gen": ["eval-gen", "--model", "DIT", "--out", "EVAL"],
    "serve": ["serve", "--model", "DIT"],
    "study": ["study", "scaling", "DATA", "--out", "STUDY"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_with_cuda_on_this_machine_is_a_one_line_error(command, tmp_path, capsys, monkeypatch):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    from img2sdf.cli.main import main

    monkeypatch.chdir(tmp_path)
    rc = main([*COMMANDS[command], "--device", "cuda"])
    err = capsys.readouterr().err
    assert rc == 2 and "--device cuda: no CUDA device here" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_every_command_that_runs_a_model_takes_device():
    from img2sdf.cli.main import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    with_device = {name for name, p in sub.choices.items()
                   if any("--device" in a.option_strings for a in p._actions)}
    assert with_device == set(COMMANDS)


def test_amp_contexts_on_the_cpu():
    from img2sdf.devices import autocast, grad_scaler

    cpu = torch.device("cpu")
    layer = torch.nn.Linear(4, 2)
    for mode, dtype in (("off", torch.float32), ("bf16", torch.bfloat16), ("fp16", torch.float16)):
        with autocast(cpu, mode):
            assert layer(torch.randn(3, 4)).dtype == dtype
        assert grad_scaler(cpu, mode).is_enabled() == (mode == "fp16")
    with pytest.raises(UserError, match="amp='fp8': choose one of off, bf16, fp16"):
        autocast(cpu, "fp8")


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_amp_trains_the_auto_decoder_on_the_cpu(tmp_path, amp):
    from test_fit import build_store

    from img2sdf.runs import read_log
    from img2sdf.runs.configs import make_config
    from img2sdf.train.fit import fit

    torch.set_num_threads(1)
    build_store(tmp_path / "data", [("sphere", "train"), ("box", "train")], n_points=2000)
    cfg = make_config("fit", "tiny", ["decoder.hidden=32", "decoder.layers=3", "decoder.skip_layer=1",
                                      "shapes_per_step=2", "points_per_shape=512", "epochs=60", "log_every=5",
                                      "threads=1", f"amp={amp}"])
    fit(tmp_path / "data", tmp_path / "run", cfg, device="cpu", progress=False)
    losses = [float(r["loss"]) for r in read_log(tmp_path / "run" / "log.csv")]
    assert len(losses) == 12 and all(np.isfinite(losses))
    assert losses[-1] < 0.6 * losses[0], losses


def test_amp_bf16_trains_the_dit_on_the_cpu(tmp_path):
    from test_dit import _cfg, _pairs

    from img2sdf.runs import read_log
    from img2sdf.train.train_dit import train_dit

    torch.set_num_threads(1)
    cfg = _cfg(120, ckpt_every=10**9, log_every=10, amp="bf16")
    train_dit(_pairs(n=8, v=4), cfg, tmp_path / "dit", progress=False, device="cpu")
    ema = [float(r["loss_ema"]) for r in read_log(tmp_path / "dit" / "log.csv")]
    assert len(ema) == 12 and ema[-1] < 0.5 * ema[0], ema
