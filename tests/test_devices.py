"""``--device``: one resolver for every trainer (train/distributed.choose_device), tested without a GPU."""

from __future__ import annotations

import pytest
import torch

from img2sdf.errors import UserError
from img2sdf.train.distributed import choose_device


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


def test_fit_with_cuda_on_this_machine_is_a_one_line_error(tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    from img2sdf.cli.main import main

    rc = main(["fit", str(tmp_path / "data"), "--out", str(tmp_path / "run"), "--device", "cuda"])
    err = capsys.readouterr().err
    assert rc == 2 and "no CUDA device here" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
