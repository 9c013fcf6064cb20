"""DDP: two gloo processes under torchrun reach the parameters of one process with the same global batch."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file
from test_fit import build_store

from img2sdf.io import read_json
from img2sdf.runs.configs import make_config
from img2sdf.train.fit import AutoDecoder

SETS = ["decoder.hidden=32", "decoder.layers=3", "decoder.skip_layer=1", "shapes_per_step=4",
        "points_per_shape=256", "epochs=4", "threads=1", "log_every=1"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _fit_args(data: Path, run: Path) -> list[str]:
    args = ["-m", "img2sdf.cli.main", "fit", str(data), "--out", str(run), "--no-progress"]
    return args + [a for s in SETS for a in ("--set", s)]


def test_two_processes_match_one(tmp_path):
    data = tmp_path / "data"
    build_store(data, [("sphere", "train"), ("box", "train"), ("torus", "train"), ("small_sphere", "train"),
                       ("box", "train")], n_points=2000)
    subprocess.run([sys.executable, *_fit_args(data, tmp_path / "one")], check=True, capture_output=True)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                "--master_addr", "127.0.0.1", "--master_port", str(_free_port())]
    proc = subprocess.run(torchrun + _fit_args(data, tmp_path / "two"), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert read_json(tmp_path / "two" / "config.json")["world_size"] == 2

    for name in ("decoder.safetensors", "latents.safetensors"):
        one, two = load_file(tmp_path / "one" / name), load_file(tmp_path / "two" / name)
        for key in one:
            assert torch.allclose(one[key], two[key], atol=2e-5, rtol=0), (name, key)
    # the comparison is meaningful: training moved the latents far beyond the tolerance
    torch.manual_seed(0)
    init = AutoDecoder(make_config("fit", "tiny", SETS), 5).latents.weight.detach()
    lat = load_file(tmp_path / "one" / "latents.safetensors")["latents"]
    assert (lat - init).abs().max() > 1e-3
