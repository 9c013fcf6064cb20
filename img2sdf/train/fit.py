"""Auto-decoder training (paper §5.2, eq. 5): a shared decoder f_φ and one latent zᵢ per shape, jointly.

    min_{φ,{zᵢ}}  mean_{i,p} |clamp(f_φ(zᵢ, γ(p)), δ) − clamp(sᵢ,ₚ, δ)| + λ · mean_i ‖zᵢ‖²,  δ = 0.1, λ = 1e-5

(eq. 5 with sums replaced by means, so the loss scale does not depend on the batch size). Per step,
``shapes_per_step`` shapes (each epoch visits every shape once, in a seeded random order) and
``points_per_shape`` random SDF samples each. All samples stay resident as one tensor [N, P, 4] and a step
gathers its batch with a single indexing op, so the loop has no per-shape Python work.

Under torchrun the global batch of shapes is split evenly over ranks; the latents live inside the DDP module
(an ``nn.Embedding``), so their gradients are all-reduced like the decoder's and every rank keeps the same
latent table. Shape order and point indices come from generators seeded identically on every rank.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..data.store import ShapeStore
from ..devices import autocast, grad_scaler, set_threads, to_device
from ..errors import UserError
from ..models.decoder import SDFDecoder
from ..runs.checkpoint import list_checkpoints, load_checkpoint, restore, save_checkpoint
from ..runs.configs import FitConfig, make_config
from ..runs.run import Run, plot_loss, write_log
from . import distributed

LOG_FIELDS = ("step", "epoch", "loss", "sdf_l1", "latent_norm", "seconds")


class AutoDecoder(nn.Module):
    """Shared decoder + latent table, one module so that DDP all-reduces both."""

    def __init__(self, config: FitConfig, n_shapes: int):
        super().__init__()
        self.decoder = SDFDecoder(config.decoder)
        self.latents = nn.Embedding(n_shapes, config.decoder.latent_dim)
        nn.init.normal_(self.latents.weight, 0.0, config.latent_init_std)

    def forward(self, shape_idx: torch.Tensor, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.latents(shape_idx)  # [S, D]
        return self.decoder(z, points), z  # [S, M], [S, D]


def select_shapes(data_root: Path, split: str, max_shapes: int = 0) -> list[int]:
    """obj_idx of the ok shapes of ``split`` (the first ``max_shapes`` if > 0) that a trainer fits."""
    shapes = ShapeStore(data_root).load_manifest().select(split=split)
    if max_shapes:
        shapes = shapes[:max_shapes]
    if not shapes:
        raise UserError(f"{data_root}: no shapes with status ok in split {split!r}; run `img2sdf "
                        f"prepare {data_root}` first or choose another split")
    return [s.obj_idx for s in shapes]


def clamped_l1(pred: torch.Tensor, sdf: torch.Tensor, delta: float) -> torch.Tensor:
    """Per-point |clamp(pred, δ) − clamp(sdf, δ)| of eq. (5)."""
    return (pred.clamp(-delta, delta) - sdf.clamp(-delta, delta)).abs()


def load_samples(store: ShapeStore, obj_idx: list[int], progress: bool = True) -> torch.Tensor:
    """All SDF samples as one resident tensor [N, P, 4] (xyz, sdf); P = the smallest per-shape count."""
    from tqdm import tqdm

    arrays = []
    for i in tqdm(obj_idx, desc="load sdf", disable=not progress, leave=False):
        pts, sdf = store.load_sdf(i)
        arrays.append(np.concatenate([pts, sdf[:, None]], axis=1))
    p = min(len(a) for a in arrays)
    return torch.from_numpy(np.stack([a[:p] for a in arrays]))


def epoch_order(n_shapes: int, batch: int, seed: int, epoch: int) -> torch.Tensor:
    """Seeded shape order of one epoch, wrapped around to whole batches (stateless, so resume is exact)."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    perm = torch.randperm(n_shapes, generator=g)
    steps = math.ceil(n_shapes / batch)
    return perm.repeat(math.ceil(steps * batch / n_shapes))[: steps * batch]


def lr_scale(step: int, total: int, final: float) -> float:
    """Cosine from 1 at step 0 to ``final`` at ``total`` (a pure function of the step: resume stays exact)."""
    return final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * step / max(total, 1)))


def fit(data_root: str | Path, out: str | Path, config: FitConfig | None = None, resume: bool = False,
        device: str | None = None, progress: bool = True) -> Path:
    """Train an auto-decoder on ``data_root``'s ``config.split`` shapes into run folder ``out``.

    With ``resume``, ``config`` None continues with the run's own settings; a given one is held to the
    resume rule (:meth:`img2sdf.runs.run.Run.start`)."""
    info = distributed.init_distributed(device)
    try:
        run = _start_run(Path(data_root), Path(out), config, resume, info)
        _train(run, resume, info, progress)
    finally:
        distributed.cleanup()
    return Path(out)


def _start_run(data_root: Path, out: Path, config: FitConfig | None, resume: bool,
               info: distributed.DistInfo) -> Run:
    if not resume:
        config = config or make_config("fit", "paper")
    obj_idx = [] if resume else select_shapes(data_root, config.split, config.max_shapes)
    run = Run.start(out, "fit", config, data_root, obj_idx, resume, {"world_size": info.world_size},
                    announce=info.is_main)
    batch = run.config.shapes_per_step
    if batch % info.world_size:
        # every step's global batch is split evenly; a remainder would drop shapes from every step
        raise UserError(f"shapes_per_step={batch} must be divisible by the {info.world_size} torchrun "
                        f"processes (use a process count that divides it, or a new run)")
    if info.is_main and info.world_size > 1:
        print(f"fit: {info.world_size} processes share each step's {batch} shapes "
              f"({batch // info.world_size} each); the global batch and the LRs are the run's own")
    distributed.barrier()  # every rank has checked before rank 0 writes
    if info.is_main:
        run.save()
    distributed.barrier()
    return run


def _train(run: Run, resume: bool, info: distributed.DistInfo, progress: bool) -> None:
    from tqdm import tqdm

    config, out, obj_idx, dev = run.config, run.path, run.obj_idx, info.device
    set_threads(config.threads, info.world_size)
    data = load_samples(ShapeStore(run.data_root), obj_idx, progress and info.is_main).to(dev)  # resident
    n_shapes, n_points = data.shape[0], data.shape[1]
    torch.manual_seed(config.seed)  # identical initialisation on every rank
    model = AutoDecoder(config, n_shapes).to(dev)
    opt = torch.optim.Adam([
        {"params": model.decoder.parameters(), "lr": config.lr_decoder},
        {"params": model.latents.parameters(), "lr": config.lr_latent},
    ])
    scaler = grad_scaler(dev, config.amp)
    points_gen = torch.Generator().manual_seed(config.seed + 1)
    step, rows = 0, []
    if resume and list_checkpoints(out):
        ckpt = load_checkpoint(out)
        meta = restore(ckpt, {"model": model}, {"adam": opt}, {"points": points_gen})
        if meta.get("grad_scaler"):
            scaler.load_state_dict(meta["grad_scaler"])
        step = ckpt.step
        rows = run.read_log(step)
    ddp_model = distributed.wrap_ddp(model, info)

    batch = config.shapes_per_step
    local = batch // info.world_size
    steps_per_epoch = math.ceil(n_shapes / batch)
    total = config.epochs * steps_per_epoch
    t0 = time.perf_counter() - (float(rows[-1]["seconds"]) if rows else 0.0)
    order_epoch, order = -1, None
    sums = torch.zeros(3, device=dev)  # loss, sdf_l1, latent norm summed on the device since the last log row
    since = 0
    bar = tqdm(total=total, initial=step, desc="fit", unit="step", disable=not (progress and info.is_main))
    while step < total:
        epoch = step // steps_per_epoch
        if epoch != order_epoch:
            order_epoch, order = epoch, epoch_order(n_shapes, batch, config.seed, epoch)
        k = step % steps_per_epoch
        shape_idx = order[k * batch:(k + 1) * batch]
        point_idx = torch.randint(n_points, (batch, config.points_per_shape), generator=points_gen)
        mine = slice(info.rank * local, (info.rank + 1) * local)  # this rank's share of the global batch
        shape_idx, point_idx = to_device(shape_idx[mine], dev), to_device(point_idx[mine], dev)
        samples = data[shape_idx[:, None], point_idx]  # [local, M, 4]

        with autocast(dev, config.amp):
            pred, z = ddp_model(shape_idx, samples[..., :3])
        sdf_l1 = clamped_l1(pred.float(), samples[..., 3], config.clamp_delta).mean()
        latent_sq = z.float().pow(2).sum(-1).mean()
        loss = sdf_l1 + config.latent_reg * latent_sq
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scale = lr_scale(step, total, config.lr_final_scale)
        for group, base in zip(opt.param_groups, (config.lr_decoder, config.lr_latent), strict=True):
            group["lr"] = base * scale
        scaler.step(opt)
        scaler.update()
        step += 1
        bar.update(1)
        sums += torch.stack([loss, sdf_l1, latent_sq.sqrt()]).detach()
        since += 1

        if step % config.log_every == 0 or step == total:
            stats = distributed.all_reduce_mean(sums / since).tolist()  # the loop's only host sync
            rows.append({"step": step, "epoch": step / steps_per_epoch, "loss": stats[0], "sdf_l1": stats[1],
                         "latent_norm": stats[2], "seconds": time.perf_counter() - t0})
            sums.zero_()
            since = 0
            bar.set_postfix(loss=f"{rows[-1]['loss']:.5f}", epoch=epoch)
        if step % config.ckpt_every == 0 or step == total:
            if info.is_main:
                save_checkpoint(out, step, {"model": model}, {"adam": opt}, {"points": points_gen},
                                meta={"epoch": step / steps_per_epoch, "grad_scaler": scaler.state_dict()})
                write_log(out / "log.csv", rows, LOG_FIELDS)
            distributed.barrier()
    bar.close()
    if info.is_main:
        save_final(out, model, obj_idx)
        write_log(out / "log.csv", rows, LOG_FIELDS)
        plot_loss(out / "loss.png", rows, {"loss": "loss (eq. 5)", "sdf_l1": "clamped SDF L1"},
                  ylabel="mean over the log interval")


def save_final(out: Path, model: AutoDecoder, obj_idx: list[int]) -> None:
    """``decoder.safetensors`` and ``latents.safetensors`` (metadata ``obj_idx``: latent row → manifest)."""
    from safetensors.torch import save

    from ..io import write_bytes

    dec = {k: v.detach().cpu().contiguous() for k, v in model.decoder.state_dict().items()}
    write_bytes(out / "decoder.safetensors", save(dec))
    lat = {"latents": model.latents.weight.detach().cpu().contiguous()}
    write_bytes(out / "latents.safetensors", save(lat, metadata={"obj_idx": ",".join(map(str, obj_idx))}))
