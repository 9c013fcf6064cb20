"""Train an image-conditioned DiT on (views, poses) → target pairs: the latent DiT (paper §6.1) on
auto-decoder latents (run kind ``train-dit``), or the weight-space DiT (§3.2, Family A) on fit-mlps weights
(``train-wdit``). One loop; the model's tokeniser follows the config (:func:`~img2sdf.runs.load.build_dit`).

Run folder ``DITRUN/``: ``config.json`` (resolved config + the data, decoder run and encoder it was trained
on, so ``generate --model DITRUN`` needs nothing else), ``ckpt/`` (exact resume), ``dit.safetensors`` (final
weights incl. latent/feature standardisation), ``log.csv`` and ``loss.png``.
Every batch item sees K ~ U{min_views..max_views} of its shape's cached views (key-padding mask).
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import torch

from ..devices import autocast, grad_scaler, set_threads, to_device
from ..errors import UserError
from ..io import write_bytes
from ..models.diffusion import GaussianDiffusion
from ..models.dit import LatentDiT
from ..models.weight_dit import WeightDiT
from ..runs.checkpoint import load_checkpoint, restore, save_checkpoint
from ..runs.configs import DiTTrainConfig, WeightDiTTrainConfig
from ..runs.load import build_dit
from ..runs.pairs import PairedViews, load_training_pairs, load_weight_pairs
from ..runs.run import Run, plot_loss, write_log

__all__ = ["PairedViews", "dit_loss", "load_training_pairs", "load_weight_pairs", "lr_at", "run_kind",
           "train_dit", "train_dit_on_store", "train_wdit_on_store"]

LOG_FIELDS = ("step", "loss", "loss_ema", "lr", "seconds")


def lr_at(cfg: DiTTrainConfig, step: int) -> float:
    """Linear warm-up, then cosine decay to 0 over ``cfg.steps`` (§6.1)."""
    warm = min(1.0, (step + 1) / max(cfg.warmup_steps, 1))
    return cfg.lr * warm * 0.5 * (1 + math.cos(math.pi * min(step, cfg.steps) / cfg.steps))


def dit_loss(model, diffusion: GaussianDiffusion, pairs: PairedViews, cfg: DiTTrainConfig,
             gen: torch.Generator, rank: int = 0, world: int = 1) -> torch.Tensor:
    """One batch of eq. 4 with view sampling, pose dropout (→ null token) and cfg dropout.

    Every rank draws the same global batch of ``batch_size × world`` from the same generator and keeps its
    own slice, so a DDP run sees exactly the batches of one process with the global batch size.
    """
    net = model.module if hasattr(model, "module") else model
    device = net.feature_mean.device
    rows, feats, poses, mask = pairs.sample_batch(cfg.batch_size * world, cfg.min_views, cfg.max_views, gen)
    pose_known = torch.rand(mask.shape, generator=gen) >= cfg.pose_dropout
    # always a tensor (all False when cfg dropout is off) so the null view stays in the graph, as DDP needs
    drop = torch.rand(mask.shape[0], generator=gen) < cfg.cfg_dropout
    t = diffusion.sample_timesteps(mask.shape[0], gen)
    noise = torch.randn(mask.shape[0], pairs.latents.shape[1], generator=gen)
    mine = slice(rank * cfg.batch_size, (rank + 1) * cfg.batch_size)
    feats, poses, mask, pose_known, drop, t, noise = (
        to_device(x[mine], device) for x in (feats, poses, mask, pose_known, drop, t, noise))
    x0 = net.standardise(pairs.latents[rows[mine]].to(device))
    return diffusion.training_loss(lambda x, tt: model(x, tt, feats, poses, mask, pose_known, drop), x0,
                                   t=t, noise=noise)


def run_kind(cfg: DiTTrainConfig | None) -> str:
    return "train-wdit" if isinstance(cfg, WeightDiTTrainConfig) else "train-dit"


def train_dit(
    pairs: PairedViews,
    cfg: DiTTrainConfig | None,
    out: str | Path,
    provenance: dict | None = None,
    resume: bool = False,
    progress: bool = True,
    device: str | None = None,
    kind: str | None = None,
) -> LatentDiT | WeightDiT:
    """Train (or resume) a DiT run in ``out``; returns the trained model (eval mode, on the CPU).

    ``kind``: ``train-dit`` or ``train-wdit`` (default: from ``cfg``'s type; needed when resuming with
    ``cfg`` None).
    ``provenance``: ``data_root`` and the facts ``generate`` needs (decoder run, encoder, views). With
    ``resume``, ``cfg`` None continues with the run's own settings; a given one is held to the resume rule.
    Under ``torchrun`` ``batch_size`` is per process: the global batch is ``batch_size × world_size``, each
    rank computes its slice and DDP averages the gradients.
    """
    from tqdm import tqdm

    from . import distributed

    dist_info = distributed.init_distributed(device)
    world, is_main, dev = dist_info.world_size, dist_info.is_main, dist_info.device
    facts = dict(provenance or {})
    data_root = facts.pop("data_root", ".")
    if cfg is not None:
        model_cfg = dataclasses.replace(cfg.model, feature_dim=pairs.features.shape[-1])
        cfg = dataclasses.replace(cfg, model=model_cfg)
    kind = kind or run_kind(cfg)
    run = Run.start(out, kind, cfg, data_root, list(pairs.obj_idx), resume,
                    {**facts, "world_size": world}, announce=is_main)
    if resume and run.obj_idx != list(pairs.obj_idx):
        raise UserError(f"--resume {out}: the target run's shapes are not the ones this run trains on")
    cfg = run.config
    if is_main and world > 1:
        print(f"{kind}: global batch {cfg.batch_size} x {world} processes = {cfg.batch_size * world}; the "
              f"LR is not scaled with it (lr={cfg.lr}; set --set lr=... to scale it)")
    distributed.barrier()  # every rank has checked before rank 0 writes
    if is_main:
        run.save()
    out = run.path

    set_threads(cfg.threads, world)
    torch.manual_seed(cfg.seed)  # identical initial weights on every rank
    model = build_dit(cfg.model)
    model.set_statistics(pairs.latents, pairs.features.reshape(-1, pairs.features.shape[-1]).float())
    model.to(dev)
    pairs = pairs.to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.0)
    scaler = grad_scaler(dev, cfg.amp)
    gen = torch.Generator().manual_seed(cfg.seed)  # the same on every rank (see dit_loss)
    diffusion = GaussianDiffusion(cfg.timesteps)
    step, ema = 0, None
    ckpt = load_checkpoint(out) if resume else None
    if ckpt is not None:
        meta = restore(ckpt, {"dit": model}, {"adamw": opt}, {"data": gen})
        step, ema = ckpt.step, meta.get("loss_ema")
        if meta.get("grad_scaler"):
            scaler.load_state_dict(meta["grad_scaler"])
    log_rows = run.read_log(step) if is_main else []
    ddp_model = distributed.wrap_ddp(model, dist_info)

    bar = tqdm(total=cfg.steps, initial=step, desc=kind, disable=not (progress and is_main),
               dynamic_ncols=True)
    t0 = time.perf_counter() - (float(log_rows[-1]["seconds"]) if log_rows else 0.0)
    # the EMA is linear in the losses, so each rank keeps its own on the device and their mean is the EMA
    # of the mean loss: no host sync (.item()) per step, one all-reduce per log row
    ema_t = torch.tensor(ema if ema is not None else float("nan"), device=dev)
    window, since = torch.zeros((), device=dev), 0
    model.train()
    while step < cfg.steps:
        for group in opt.param_groups:
            group["lr"] = lr_at(cfg, step)
        with autocast(dev, cfg.amp):
            loss = dit_loss(ddp_model, diffusion, pairs, cfg, gen, dist_info.rank, world).float()
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        scaler.step(opt)
        scaler.update()
        step += 1
        value = loss.detach()
        ema_t = torch.where(ema_t.isnan(), value, 0.98 * ema_t + 0.02 * value)
        window += value
        since += 1
        bar.update(1)
        if step % cfg.log_every == 0 or step == cfg.steps:
            mean, ema = distributed.all_reduce_mean(torch.stack([window / since, ema_t])).tolist()
            window.zero_()
            since = 0
            bar.set_postfix(loss=f"{mean:.4f}", ema=f"{ema:.4f}")
            if is_main:
                log_rows.append({"step": step, "loss": mean, "loss_ema": ema, "lr": lr_at(cfg, step - 1),
                                 "seconds": time.perf_counter() - t0})
                write_log(out / "log.csv", log_rows, LOG_FIELDS)
        if step % cfg.ckpt_every == 0 or step == cfg.steps:
            ema = distributed.all_reduce_mean(ema_t).item()
            if is_main:
                save_checkpoint(out, step, {"dit": model}, {"adamw": opt}, {"data": gen},
                                meta={"loss_ema": ema, "grad_scaler": scaler.state_dict()})
    bar.close()
    if is_main:
        from safetensors.torch import save

        state = {k: v.cpu().contiguous() for k, v in model.state_dict().items()}
        write_bytes(out / "dit.safetensors", save(state))
        plot_loss(out / "loss.png", log_rows, {"loss": "loss", "loss_ema": "EMA"},
                  ylabel="x0 MSE (standardised)",
                  title=f"{'weight-space' if kind == 'train-wdit' else 'latent'} DiT training loss (eq. 4)")
    distributed.barrier()
    return model.cpu().eval()


def train_dit_on_store(data_root: str | Path, decoder_run: str | Path, out: str | Path,
                       cfg: DiTTrainConfig | None, encoder: str | None = None, views: str = "auto",
                       pool_groups: tuple[str, ...] | None = None, resume: bool = False,
                       progress: bool = True, device: str | None = None) -> tuple[LatentDiT, PairedViews]:
    """:func:`train_dit` on a store's cached features and a decoder run's latents, recording in the run
    what ``generate`` needs (data root, decoder run, encoder, views). ``encoder`` None: the default or the
    only one encoded; ``views="auto"``: the photo pool when encoded, else the renders."""
    return _train_on_store("train-dit", data_root, decoder_run, out, cfg, encoder, views, pool_groups,
                           resume, progress, device)


def train_wdit_on_store(data_root: str | Path, mlp_run: str | Path, out: str | Path,
                        cfg: WeightDiTTrainConfig | None, encoder: str | None = None, views: str = "auto",
                        pool_groups: tuple[str, ...] | None = None, resume: bool = False,
                        progress: bool = True, device: str | None = None) -> tuple[WeightDiT, PairedViews]:
    """The weight-space DiT (§3.2) on a store's cached features and a fit-mlps run's weights; as
    :func:`train_dit_on_store` otherwise (the run records ``mlp_run`` instead of ``decoder_run``)."""
    return _train_on_store("train-wdit", data_root, mlp_run, out, cfg, encoder, views, pool_groups, resume,
                           progress, device)


def _train_on_store(kind, data_root, target_run, out, cfg, encoder, views, pool_groups, resume, progress,
                    device):
    from ..data.store import ShapeStore
    from ..encoders.cache import POOL_GROUPS, resolve_encoder, resolve_views

    store = ShapeStore(data_root)
    encoder = resolve_encoder(store, encoder)
    views = resolve_views(store, encoder, views, command=kind)
    groups = tuple(pool_groups or POOL_GROUPS)
    wdit = kind == "train-wdit"
    load, key = (load_weight_pairs, "mlp_run") if wdit else (load_training_pairs, "decoder_run")
    pairs = load(data_root, target_run, encoder, views, groups)
    provenance = {"data_root": str(Path(data_root).resolve()), key: str(Path(target_run).resolve()),
                  "encoder": encoder, "views": views,
                  **({"pool_groups": list(groups)} if views == "photo" else {})}
    return train_dit(pairs, cfg, out, provenance, resume, progress, device, kind), pairs
