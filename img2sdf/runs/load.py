"""Loading a finished (or interrupted) run for inference, whatever trainer made it: the one place that
reads a run's weights. :func:`load_run` dispatches on ``config.json``'s kind; every loaded run of a shape
family hands back ``sdf_fn(obj_idx)``, a numpy function from points to SDF for meshing."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import UserError
from ..models.decoder import SDFDecoder, decoder_sdf_fn
from ..models.diffusion import GaussianDiffusion
from ..models.dit import DiTConfig, LatentDiT
from ..models.mlp import mlp_sdf_fn
from ..models.weight_ae import WeightAE
from ..models.weight_dit import WeightDiT, WeightDiTConfig
from .checkpoint import load_checkpoint, model_state
from .configs import DiTTrainConfig, FitConfig, FitMLPsConfig, WAETrainConfig
from .run import Run

DIT_KINDS = ("train-dit", "train-wdit")  # the latent DiT (§6.1) and the weight-space DiT (§3.2)


def _row(run_dir: Path, obj_idx: list[int], i: int) -> int:
    if i not in obj_idx:
        raise UserError(f"shape {i}: not a fitted shape of {run_dir} (obj_idx "
                        f"{min(obj_idx)}..{max(obj_idx)}, {len(obj_idx)} shapes)")
    return obj_idx.index(i)


def final_or_checkpoint(run_dir: Path, final: str, name: str) -> dict[str, torch.Tensor]:
    """The state dict of a run's final weights file, or of model ``name`` in its newest checkpoint (an
    interrupted run); a one-line error when it has neither."""
    from safetensors.torch import load_file

    if (run_dir / final).is_file():
        return load_file(run_dir / final)
    ckpt = load_checkpoint(run_dir)
    if ckpt is None:
        raise UserError(f"{run_dir}: no {final} and no checkpoint; the training never saved (resume it)")
    return model_state(ckpt, name)


@dataclass
class DecoderRun:
    """A fitted auto-decoder: decoder in eval mode, latents [N, D] (row i ↔ manifest ``obj_idx[i]``)."""

    run_dir: Path
    decoder: SDFDecoder
    latents: torch.Tensor
    obj_idx: list[int]
    config: FitConfig
    data_root: Path

    def latent(self, obj_idx: int) -> torch.Tensor:
        return self.latents[_row(self.run_dir, self.obj_idx, obj_idx)]

    def sdf_fn(self, obj_idx: int):
        return decoder_sdf_fn(self.decoder, self.latent(obj_idx))

    def reconstruct_settings(self) -> dict:
        """``reconstruct_latent`` keywords that follow this run's own objective (eq. 5): δ, λ, init std."""
        c = self.config
        return {"clamp_delta": c.clamp_delta, "latent_reg": c.latent_reg, "init_std": c.latent_init_std}

    def to(self, device: torch.device) -> DecoderRun:
        self.decoder.to(device)
        return self


def load_decoder_run(run_dir: str | Path) -> DecoderRun:
    """``RUN/decoder.safetensors`` + ``RUN/latents.safetensors`` (or the newest checkpoint of an unfinished
    run) with the resolved ``RUN/config.json``."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file():
        raise UserError(f"{run_dir}: not a decoder run (no config.json); create one with `img2sdf fit DATA "
                        f"--out {run_dir}`")
    run = Run.open(run_dir, "fit")
    decoder = SDFDecoder(run.config.decoder)
    obj_idx = run.obj_idx
    final_dec, final_lat = run_dir / "decoder.safetensors", run_dir / "latents.safetensors"
    if final_dec.is_file() and final_lat.is_file():
        decoder.load_state_dict(load_file(final_dec))
        latents = load_file(final_lat)["latents"]
        with safe_open(final_lat, "pt") as f:
            obj_idx = [int(i) for i in f.metadata()["obj_idx"].split(",")]
    else:
        ckpt = load_checkpoint(run_dir)
        if ckpt is None:
            raise UserError(f"{run_dir}: no decoder.safetensors and no checkpoint; run or resume img2sdf fit")
        state = model_state(ckpt, "model")
        decoder.load_state_dict({k[8:]: v for k, v in state.items() if k.startswith("decoder.")})
        latents = state["latents.weight"]
    decoder.eval().requires_grad_(False)
    return DecoderRun(run_dir=run_dir, decoder=decoder, latents=latents.float(), obj_idx=obj_idx,
                      config=run.config, data_root=run.data_root)


def build_dit(cfg: DiTConfig | WeightDiTConfig) -> LatentDiT | WeightDiT:
    """The tokeniser seam: one latent token (§6.1) or weight tokens (§3.2) around the shared trunk."""
    return WeightDiT(cfg) if isinstance(cfg, WeightDiTConfig) else LatentDiT(cfg)


@dataclass
class DiTRun:
    model: LatentDiT | WeightDiT
    config: DiTTrainConfig  # a WeightDiTTrainConfig for train-wdit
    diffusion: GaussianDiffusion
    info: dict  # config.json's facts: data_root, decoder_run or mlp_run, encoder, views, obj_idx of targets
    path: Path
    kind: str = "train-dit"

    def to(self, device: torch.device) -> DiTRun:
        self.model.to(device)
        return self


def load_dit_run(run_dir: str | Path) -> DiTRun:
    """``DITRUN/dit.safetensors`` (or the newest checkpoint of an unfinished run) for inference."""

    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file():
        raise UserError(f"{run_dir}: not a DiT run (no config.json); train one with `img2sdf train-dit`")
    run = Run.open(run_dir)
    if run.kind not in DIT_KINDS:
        raise UserError(f"{run_dir}: a {run.kind!r} run, not a DiT run (train-dit or train-wdit)")
    model = build_dit(run.config.model)
    model.load_state_dict(final_or_checkpoint(run_dir, "dit.safetensors", "dit"))
    info = {**run.facts, "data_root": str(run.data_root), "obj_idx": run.obj_idx}
    return DiTRun(model.eval(), run.config, GaussianDiffusion(run.config.timesteps), info, run_dir, run.kind)


@dataclass
class MLPRun:
    """A fit-mlps run: weights [N, D] (row i ↔ ``obj_idx[i]``), config, data root."""

    run_dir: Path
    weights: torch.Tensor
    obj_idx: list[int]
    config: FitMLPsConfig
    data_root: Path

    def row(self, obj_idx: int) -> torch.Tensor:
        return self.weights[_row(self.run_dir, self.obj_idx, obj_idx)]

    def sdf_fn(self, obj_idx: int):
        return mlp_sdf_fn(self.row(obj_idx), self.config.mlp)

    def to(self, device: torch.device) -> MLPRun:
        self.weights = self.weights.to(device)
        return self


def finished_rows(run_dir: Path) -> dict[int, tuple[Path, int, float]]:
    """obj_idx → (chunk file, row, final loss) over every shard folder of a fit-mlps run."""
    from safetensors import safe_open

    found = {}
    for path in sorted((Path(run_dir) / "shards").glob("*/chunk_*.safetensors")):
        with safe_open(path, "pt") as f:
            meta = f.metadata()
        for row, (i, loss) in enumerate(zip(meta["obj_idx"].split(","), json.loads(meta["final_loss"]),
                                            strict=True)):
            found[int(i)] = (path, row, float(loss))
    return found


def stack_rows(run_dir: Path, obj_idx: list[int]) -> torch.Tensor:
    """The finished chunks' weights as one [N, D] tensor in ``obj_idx`` order; a one-line error naming the
    first missing shape otherwise."""
    from safetensors.torch import load_file

    from ..data.store import shape_name

    found = finished_rows(run_dir)
    missing = [i for i in obj_idx if i not in found]
    if missing:
        raise UserError(f"{run_dir}: {len(missing)} of {len(obj_idx)} shapes are not fitted yet (e.g. "
                        f"{shape_name(missing[0])}); run the missing --shard i/n jobs (or --resume) first")
    cache: dict[Path, torch.Tensor] = {}
    rows = []
    for i in obj_idx:
        path, row, _ = found[i]
        if path not in cache:
            cache[path] = load_file(path)["weights"]
        rows.append(cache[path][row])
    return torch.stack(rows).contiguous()


def load_mlp_run(run_dir: str | Path) -> MLPRun:
    """``RUN/weights.safetensors``, or the finished shards' chunks if the run was not merged yet."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    run_dir = Path(run_dir)
    run = Run.open(run_dir, "fit-mlps")
    path = run_dir / "weights.safetensors"
    if path.is_file():
        with safe_open(path, "pt") as f:
            obj_idx = [int(i) for i in f.metadata()["obj_idx"].split(",")]
        weights = load_file(path)["weights"]
    else:
        obj_idx, weights = run.obj_idx, stack_rows(run_dir, run.obj_idx)
    return MLPRun(run_dir=run_dir, weights=weights, obj_idx=obj_idx, config=run.config,
                  data_root=run.data_root)


@dataclass
class WAERun:
    """A weight-autoencoder run (Family B, §4.1) with the fit-mlps run it encodes."""

    run_dir: Path
    model: WeightAE
    config: WAETrainConfig
    mlps: MLPRun
    facts: dict

    @property
    def obj_idx(self) -> list[int]:
        return self.mlps.obj_idx

    def reconstruction(self, obj_idx: int) -> torch.Tensor:
        """decode(encode(θ)) of the shape's fitted MLP (§4.2)."""
        with torch.no_grad():
            return self.model(self.mlps.row(obj_idx)[None].float())[0]

    def sdf_fn(self, obj_idx: int):
        return mlp_sdf_fn(self.reconstruction(obj_idx), self.config.model.mlp)

    def to(self, device: torch.device) -> WAERun:
        self.model.to(device)
        self.mlps.to(device)
        return self


def load_wae_run(run_dir: str | Path) -> WAERun:
    """``ARUN/wae.safetensors`` (or the newest checkpoint of an unfinished run) and its fit-mlps run."""

    run_dir = Path(run_dir)
    run = Run.open(run_dir, "train-wae")
    model = WeightAE(run.config.model)
    model.load_state_dict(final_or_checkpoint(run_dir, "wae.safetensors", "wae"))
    mlps = load_mlp_run(run.facts["mlp_run"])
    return WAERun(run_dir, model.eval().requires_grad_(False), run.config, mlps, run.facts)


LOADERS = {"fit": load_decoder_run, "train-dit": load_dit_run, "train-wdit": load_dit_run,
           "fit-mlps": load_mlp_run, "train-wae": load_wae_run}


def load_run(run_dir: str | Path):
    """Whatever ``run_dir`` holds, loaded by its kind's loader."""
    return LOADERS[Run.open(run_dir).kind](run_dir)
