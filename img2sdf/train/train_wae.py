"""Family B (paper §4.1): train the weight autoencoder on a fit-mlps run's per-shape MLP weights.

Run folder ``ARUN/`` (kind ``train-wae``): ``config.json`` (the resolved config, the MLP run, obj_idx),
``ckpt/`` (exact resume), ``wae.safetensors`` (weights incl. the population mean and residual scale),
``latents.safetensors`` (z [N, latent], row i ↔ obj_idx[i]: the targets of B's image-conditioned stage),
``log.csv``, ``loss.png``. Its scoring (§4.1's numbers, §4.2's meshes) is :mod:`img2sdf.eval.weight_ae_eval`.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import torch

from ..devices import choose_device, set_threads
from ..errors import UserError
from ..io import write_bytes
from ..models.weight_ae import WeightAE
from ..runs.checkpoint import load_checkpoint, restore, save_checkpoint
from ..runs.configs import WAETrainConfig
from ..runs.run import Run, plot_loss, write_log

LOG_FIELDS = ("step", "loss", "loss_ema", "lr", "seconds")


def train_wae_on_run(mlp_run: str | Path, cfg: WAETrainConfig | None, out: str | Path, resume: bool = False,
                     progress: bool = True, device: str | None = None) -> WeightAE:
    """:func:`train_wae` on a fit-mlps run's weights (its MLP layout, data root and provenance)."""
    from ..runs.load import load_mlp_run

    run = load_mlp_run(mlp_run)
    if cfg is not None:
        cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, mlp=run.config.mlp))
    return train_wae(run.weights.float(), run.obj_idx, cfg, out, resume, progress, run.data_root,
                     {"mlp_run": str(Path(mlp_run).resolve())}, device)


def train_wae(weights: torch.Tensor, obj_idx: list[int], cfg: WAETrainConfig | None, out: str | Path,
              resume: bool = False, progress: bool = True, data_root: str | Path = ".",
              facts: dict | None = None, device: str | None = None) -> WeightAE:
    """Train (or resume) §4.1's AE on flat weights [N, D] (row i ↔ ``obj_idx[i]``): MSE on the scaled
    residuals from the population mean, Adam at a constant lr; returns the model in eval mode, on the CPU."""
    from tqdm import tqdm

    run = Run.start(out, "train-wae", cfg, data_root, list(obj_idx), resume, facts)
    if resume and run.obj_idx != list(obj_idx):
        raise UserError(f"--resume {out}: the MLP run's shapes are not the ones this run trains on")
    cfg, out = run.config, run.path
    if weights.shape[1] != cfg.model.mlp.n_params:
        raise UserError(f"weights have {weights.shape[1]} dims, the AE config's MLP {cfg.model.mlp.n_params}")
    run.save()
    set_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    dev = choose_device(0, device)
    model = WeightAE(cfg.model)
    model.set_statistics(weights)
    model.to(dev)
    weights = weights.to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(cfg.seed)
    epoch, ema = 0, None
    ckpt = load_checkpoint(out) if resume else None
    if ckpt is not None:
        meta = restore(ckpt, {"wae": model}, {"adam": opt}, {"data": gen})
        epoch, ema = ckpt.step, meta.get("loss_ema")
    log_rows = run.read_log(epoch)
    n = len(weights)
    bar = tqdm(total=cfg.epochs, initial=epoch, desc="train-wae", disable=not progress, dynamic_ncols=True)
    t0 = time.perf_counter() - (float(log_rows[-1]["seconds"]) if log_rows else 0.0)
    model.train()
    while epoch < cfg.epochs:
        total = torch.zeros((), device=dev)
        for rows in torch.randperm(n, generator=gen).split(cfg.batch_size):
            batch = weights[rows.to(dev)]
            target = (batch - model.weight_mean) / model.residual_scale
            loss = (model.decode_residual(model.encode(batch)) - target).pow(2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach() * len(rows)
        epoch += 1
        value = float(total) / n
        ema = value if ema is None else 0.9 * ema + 0.1 * value
        bar.update(1)
        if epoch % cfg.log_every == 0 or epoch == cfg.epochs:
            bar.set_postfix(loss=f"{value:.4g}")
            log_rows.append({"step": epoch, "loss": value, "loss_ema": ema, "lr": cfg.lr,
                             "seconds": time.perf_counter() - t0})
            write_log(out / "log.csv", log_rows, LOG_FIELDS)
        if epoch % cfg.ckpt_every == 0 or epoch == cfg.epochs:
            save_checkpoint(out, epoch, {"wae": model}, {"adam": opt}, {"data": gen}, meta={"loss_ema": ema})
    bar.close()
    from safetensors.torch import save

    model.eval().cpu()
    write_bytes(out / "wae.safetensors", save({k: v.contiguous() for k, v in model.state_dict().items()}))
    with torch.no_grad():
        z = model.encode(weights.cpu())
    write_bytes(out / "latents.safetensors",
                save({"latents": z.contiguous()}, metadata={"obj_idx": ",".join(map(str, obj_idx))}))
    plot_loss(out / "loss.png", log_rows, {"loss": "loss", "loss_ema": "EMA"}, x="step",
              ylabel="MSE (scaled residuals)", title="weight autoencoder training loss (§4.1), per epoch")
    return model
