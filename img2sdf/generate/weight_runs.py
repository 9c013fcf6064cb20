"""Runs whose shapes are per-shape MLP weight vectors (paper §3.1): where ``mesh RUN --shape I`` gets θ.

- ``fit-mlps`` (Family A phase 1): the fitted row;
- ``weight-dit`` (Family A, §3.2): the DiT's prediction from shape I's first 8 cached views (known poses);
- ``weight-ae`` (Family B, §4.2): the AE's reconstruction decode(encode(θ_I)).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import UserError
from ..io import read_json


@dataclass
class WeightSource:
    kind: str
    obj_idx: list[int]
    preset: str
    weights: Callable[[int], torch.Tensor]  # obj_idx → θ [D]


def weight_source(run_dir: str | Path) -> WeightSource | None:
    """The run's θ per training shape, or None when RUN is not a weight-producing run."""
    cfg = Path(run_dir) / "config.json"
    kind = read_json(cfg).get("kind") if cfg.is_file() else None
    if kind == "fit-mlps":
        from ..train.fit_mlps import load_mlp_run

        run = load_mlp_run(run_dir)
        return WeightSource(kind, run.obj_idx, run.config.preset, run.row)
    if kind == "weight-dit":
        from ..train.train_dit import load_dit_run, load_run_pairs
        from .predict import predict_from_views

        dit = load_dit_run(run_dir)
        pairs = load_run_pairs(dit)

        def predicted(i: int) -> torch.Tensor:
            return predict_from_views(dit, pairs, [_row(pairs.obj_idx, i, run_dir)])[0]

        return WeightSource(kind, pairs.obj_idx, dit.info.get("preset", "paper"), predicted)
    if kind == "weight-ae":
        from ..train.fit_mlps import load_mlp_run
        from ..train.train_wae import load_wae_run

        ae = load_wae_run(run_dir)
        mlps = load_mlp_run(ae.info["mlp_run"])

        def reconstructed(i: int) -> torch.Tensor:
            with torch.no_grad():
                return ae.model(mlps.row(i)[None])[0]

        return WeightSource(kind, mlps.obj_idx, ae.config.preset, reconstructed)
    return None


def _row(obj_idx: list[int], i: int, run_dir) -> int:
    if i not in obj_idx:
        raise UserError(f"shape {i}: not a training shape of {run_dir}")
    return obj_idx.index(i)
