"""Where ``mesh RUN --shape I`` gets a shape's SDF, for a run of any family (paper §3-§5):

- ``fit`` (Family C): the decoder with the shape's latent; ``fit-mlps`` (Family A, phase 1): its own MLP;
- ``train-wae`` (Family B, §4.2): the MLP decode(encode(θ_I)) reconstructs;
- ``train-wdit`` (Family A, §3.2): the MLP the DiT predicts from shape I's first 8 cached views (known poses);
- ``train-dit``: the latent the DiT predicts the same way, through its decoder run (or, for Family B's
  latent DiT on weight-AE latents, through the AE's decoder to an MLP).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import UserError


@dataclass
class ShapeSource:
    kind: str
    obj_idx: list[int]
    preset: str
    sdf_fn: Callable[[int], Callable]  # obj_idx → numpy SDF function


def target_sdf(run, device=None) -> Callable[[torch.Tensor], Callable]:
    """For a loaded DiT run, the map from one sampled target to a numpy SDF function: MLP weights (Family A),
    an AE latent decoded to MLP weights (Family B, the run names a ``wae_run``) or a latent through the
    decoder run (Family C). The AE or decoder is loaded once, here."""
    from ..models.decoder import decoder_sdf_fn
    from ..models.mlp import mlp_sdf_fn
    from ..runs.load import load_decoder_run, load_wae_run

    if run.kind == "train-wdit":
        return lambda target: mlp_sdf_fn(target, run.config.model.mlp)
    if "wae_run" in run.info:
        wae = load_wae_run(run.info["wae_run"])

        def decoded(target: torch.Tensor):
            with torch.no_grad():
                return mlp_sdf_fn(wae.model.decode(target[None].float())[0], wae.config.model.mlp)

        return decoded
    decoder = load_decoder_run(run.info["decoder_run"]).decoder
    if device is not None:
        decoder.to(device)
    return lambda target: decoder_sdf_fn(decoder, target)


def shape_source(run_dir: str | Path, device=None) -> ShapeSource:
    """The run's shapes as SDF functions, whatever kind of run ``run_dir`` holds."""
    from ..runs.load import DiTRun, load_run
    from ..runs.pairs import load_run_pairs
    from ..runs.run import Run
    from .predict import predict_from_views

    if not (Path(run_dir) / "config.json").is_file():
        raise UserError(f"{run_dir}: not a run folder (no config.json); make one with `img2sdf fit` or "
                        f"`img2sdf fit-mlps`")
    kind = Run.open(run_dir).kind
    run = load_run(run_dir)
    if device is not None:
        run.to(device)
    if not isinstance(run, DiTRun):
        return ShapeSource(kind, list(run.obj_idx), run.config.preset, run.sdf_fn)
    run.to("cpu")  # the cached views live on the CPU
    pairs = load_run_pairs(run)
    to_sdf = target_sdf(run)

    def predicted(i: int):
        if i not in pairs.obj_idx:
            raise UserError(f"shape {i}: not a training shape of {run_dir}")
        return to_sdf(predict_from_views(run, pairs, [pairs.obj_idx.index(i)])[0])

    return ShapeSource(run.kind, list(pairs.obj_idx), run.config.preset, predicted)
