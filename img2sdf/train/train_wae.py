"""Family B (paper §4): train the weight autoencoder on a fit-mlps run, then score it the two ways §4 does —
by the numbers an AE optimises (§4.1) and by the meshes of the reconstructed MLPs (§4.2).

Run folder ``ARUN/``: ``config.json`` (kind "weight-ae", the resolved config, the MLP run, obj_idx),
``ckpt/`` (exact resume), ``wae.safetensors`` (weights incl. mean and scale), ``latents.safetensors``
(z [N, latent], row i ↔ obj_idx[i]: the targets of B's image-conditioned stage), ``log.csv``, ``loss.png``,
``metrics.json`` (§4.1's numbers beside the paper's; per shape the Chamfer of the fitted MLP's mesh and of the
reconstruction's), ``meshes/`` (reconstructions).
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..config import apply_overrides, from_dict, preset, to_dict
from ..errors import UserError
from ..io import read_json, write_bytes, write_json
from ..models.weight_ae import WeightAE, WeightAEConfig
from .checkpoint import load_checkpoint, restore, save_checkpoint

RUN_KIND = "weight-ae"

# §4.1 (976 anchor-initialised MLPs), latent 128 / 256
PAPER_AE = {
    "128": {"weight_mse": 2.28e-5, "cos_rec_true_mean": 0.9965, "cos_rec_true_min": 0.9921,
            "latent_pairwise_cos": 0.07, "weight_pairwise_cos": 0.96},
    "256": {"weight_mse": 2.24e-5, "cos_rec_true_mean": 0.9966, "cos_rec_true_min": 0.9920,
            "latent_pairwise_cos": 0.07, "weight_pairwise_cos": 0.96},
}


@dataclass
class WAETrainConfig:
    preset: str = "paper"
    model: WeightAEConfig = field(default_factory=WeightAEConfig)
    epochs: int = 2000  # §4.1
    lr: float = 3e-4  # §4.1 (constant: no schedule is given)
    batch_size: int = 32  # not given
    seed: int = 0
    log_every: int = 10  # epochs
    ckpt_every: int = 200  # epochs
    mesh_resolution: int = 256  # marching-cubes cells per axis for §4.2's meshes
    mesh_points: int = 100_000  # surface points per mesh (eval/metrics.py protocol)
    threads: int = 0


WAE_PRESETS = {
    # CPU: 32 shapes in a few minutes; narrower layers than §4.1's 1024 (the first layer alone is 56 M there)
    "tiny": WAETrainConfig(preset="tiny", model=WeightAEConfig(hidden=(256, 256, 256)), epochs=300, lr=1e-3,
                           batch_size=16, log_every=5, ckpt_every=100, mesh_resolution=64, mesh_points=20_000,
                           threads=1),
    "paper": WAETrainConfig(),
}


def make_config(name: str, overrides: list[str] | None = None) -> WAETrainConfig:
    cfg = apply_overrides(preset(WAE_PRESETS, name), overrides)
    if min(cfg.epochs, cfg.batch_size, cfg.model.latent_dim) < 1:
        raise UserError("epochs, batch_size and model.latent_dim must be >= 1")
    return cfg


def train_wae_on_run(mlp_run: str | Path, cfg: WAETrainConfig, out: str | Path, resume: bool = False,
                     progress: bool = True) -> WeightAE:
    """:func:`train_wae` on a fit-mlps run's weights.safetensors (its MLP config and provenance)."""
    from .fit_mlps import load_mlp_run

    run = load_mlp_run(mlp_run)
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, mlp=run.config.mlp))
    return train_wae(run.weights.float(), run.obj_idx, cfg, out, resume, progress,
                     provenance={"mlp_run": str(Path(mlp_run).resolve()), "data": str(run.data_root)})


def train_wae(weights: torch.Tensor, obj_idx: list[int], cfg: WAETrainConfig, out: str | Path,
              resume: bool = False, progress: bool = True, provenance: dict | None = None) -> WeightAE:
    """Train (or resume) the AE of §4.1 on flat weights [N, D] (row i ↔ ``obj_idx[i]``): MSE on the scaled
    residuals, Adam at a constant lr."""
    from tqdm import tqdm

    from . import distributed
    from .train_dit import _plot_loss, _read_log, _write_log

    out = Path(out)
    if weights.shape[1] != cfg.model.mlp.n_params:
        raise UserError(f"weights have {weights.shape[1]} dims, the AE config's MLP {cfg.model.mlp.n_params}")
    config = {"kind": RUN_KIND, "train": to_dict(cfg), **(provenance or {}), "n_shapes": len(obj_idx),
              "obj_idx": list(obj_idx)}
    if (out / "config.json").is_file():
        if not resume:
            raise UserError(f"{out}: already holds a weight-AE run; pass --resume or choose a new --out")
        if read_json(out / "config.json").get("train") != json.loads(json.dumps(config["train"])):
            raise UserError(f"{out}/config.json: the run was started with a different config; "
                            "resume with the same preset/overrides or choose a new --out")
    write_json(out / "config.json", config)
    distributed.set_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    model = WeightAE(cfg.model)
    model.set_statistics(weights)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(cfg.seed)
    epoch, ema = 0, None
    ckpt = load_checkpoint(out) if resume else None
    if ckpt is not None:
        meta = restore(ckpt, {"wae": model}, {"adam": opt}, {"data": gen})
        epoch, ema = ckpt.step, meta.get("loss_ema")
    log_rows = _read_log(out / "log.csv", epoch)
    n = len(weights)
    bar = tqdm(total=cfg.epochs, initial=epoch, desc="train-wae", disable=not progress, dynamic_ncols=True)
    t0 = time.perf_counter()
    model.train()
    while epoch < cfg.epochs:
        total = 0.0
        for rows in torch.randperm(n, generator=gen).split(cfg.batch_size):
            batch = weights[rows]
            target = (batch - model.weight_mean) / model.residual_scale
            loss = (model.decode_residual(model.encode(batch)) - target).pow(2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(rows)
        epoch += 1
        value = total / n
        ema = value if ema is None else 0.9 * ema + 0.1 * value
        bar.update(1)
        if epoch % cfg.log_every == 0 or epoch == cfg.epochs:
            bar.set_postfix(loss=f"{value:.4g}")
            log_rows.append({"step": epoch, "loss": value, "loss_ema": ema, "lr": cfg.lr,
                             "seconds": round(time.perf_counter() - t0, 3)})
            _write_log(out / "log.csv", log_rows)
        if epoch % cfg.ckpt_every == 0 or epoch == cfg.epochs:
            save_checkpoint(out, epoch, {"wae": model}, {"adam": opt}, {"data": gen}, meta={"loss_ema": ema})
    bar.close()
    from safetensors.torch import save

    model.eval()
    write_bytes(out / "wae.safetensors", save({k: v.contiguous() for k, v in model.state_dict().items()}))
    with torch.no_grad():
        z = model.encode(weights)
    write_bytes(out / "latents.safetensors",
                save({"latents": z.contiguous()}, metadata={"obj_idx": ",".join(map(str, obj_idx))}))
    _plot_loss(out / "loss.png", log_rows, "weight AE training loss (§4.1)", "MSE (scaled residuals)")
    return model


@dataclass
class WAERun:
    model: WeightAE
    config: WAETrainConfig
    info: dict
    path: Path


def load_wae_run(run_dir: str | Path) -> WAERun:
    from safetensors.torch import load_file

    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.json"
    if not cfg_path.is_file() or read_json(cfg_path).get("kind") != RUN_KIND:
        raise UserError(f"{run_dir}: not a weight-AE run; train one with `img2sdf train-wae`")
    info = read_json(cfg_path)
    cfg = from_dict(WAETrainConfig, info["train"])
    if not (run_dir / "wae.safetensors").is_file():
        raise UserError(f"{run_dir}: no wae.safetensors; finish the run with `img2sdf train-wae --resume`")
    model = WeightAE(cfg.model)
    model.load_state_dict(load_file(run_dir / "wae.safetensors"))
    return WAERun(model.eval(), cfg, info, run_dir)


def evaluate_wae(run_dir: str | Path, meshes: bool = True, progress: bool = True) -> dict:
    """§4.1's numbers (raw-weight MSE, cos(rec, true) mean/min, latent vs weight pairwise cosine) and §4.2's
    meshes: every reconstruction (and, for reference, every fitted MLP) meshed and scored against the ground
    truth. Writes ARUN/metrics.json."""
    from ..data.store import ShapeStore
    from ..eval.decoder_eval import latent_pairwise_cosine
    from ..eval.metrics import METRIC_PROTOCOL
    from ..eval.weight_meshes import score_weight_meshes, summarise
    from .fit_mlps import load_mlp_run

    run = load_wae_run(run_dir)
    mlps = load_mlp_run(run.info["mlp_run"])
    true = mlps.weights.float()
    with torch.no_grad():
        z = run.model.encode(true)
        rec = run.model.decode(z)
    cos = torch.nn.functional.cosine_similarity(rec.double(), true.double(), dim=1)
    metrics: dict = {
        "run": str(run.path), "preset": run.config.preset, "latent_dim": run.config.model.latent_dim,
        "n_shapes": len(mlps.obj_idx),
        "weight_mse": float((rec - true).pow(2).mean()),
        "cos_rec_true_mean": float(cos.mean()), "cos_rec_true_min": float(cos.min()),
        "latent_pairwise_cos": latent_pairwise_cosine(z),
        "weight_pairwise_cos": latent_pairwise_cosine(true),
        "paper": PAPER_AE.get(str(run.config.model.latent_dim)),
        "per_shape": [{"obj_idx": i, "cos_rec_true": float(c)}
                      for i, c in zip(mlps.obj_idx, cos, strict=True)],
    }
    if meshes:
        store = ShapeStore(mlps.data_root)
        res, pts = run.config.mesh_resolution, run.config.mesh_points
        recon = score_weight_meshes(rec, mlps.obj_idx, store, res, pts, run.path / "meshes", progress,
                                    "mesh reconstructions")
        fitted = score_weight_meshes(true, mlps.obj_idx, store, res, pts, None, progress, "mesh fitted MLPs")
        for row, r, f in zip(metrics["per_shape"], recon, fitted, strict=True):
            row["reconstructed"] = {k: v for k, v in r.items() if k != "obj_idx"}
            row["fitted"] = {k: v for k, v in f.items() if k != "obj_idx"}
        metrics["meshes"] = {"reconstructed": summarise(recon), "fitted": summarise(fitted)}
        metrics["protocol"] = {**METRIC_PROTOCOL, "surface_points_per_mesh": pts, "iou_points": pts,
                               "mesh_resolution": res}
    write_json(run.path / "metrics.json", metrics)
    return metrics

