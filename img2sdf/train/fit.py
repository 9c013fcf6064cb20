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

import csv
import io
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..config import apply_overrides, from_dict, preset, to_dict
from ..data.store import ShapeStore
from ..errors import UserError
from ..io import atomic_path, read_json, write_json, write_text
from ..models.decoder import DECODER_PRESETS, DecoderConfig, SDFDecoder
from . import distributed
from .checkpoint import list_checkpoints, load_checkpoint, restore, save_checkpoint

LOG_FIELDS = ("step", "epoch", "loss", "sdf_l1", "latent_norm", "seconds")


@dataclass
class FitConfig:
    preset: str = "paper"
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    epochs: int = 1500  # §5.3 Table 3: 1500 epochs for 976 shapes (4000 for the 20-shape 512×8 pilot)
    shapes_per_step: int = 4  # §5.2: 4 shapes per step
    points_per_shape: int = 8192  # §5.2: 8,192 random points per shape per step
    lr_decoder: float = 5e-4  # §5.2
    lr_latent: float = 1e-3  # §5.2: latents need a higher LR to escape their initialisation
    lr_final_scale: float = 1.0  # cosine decay of both LRs to this fraction at the last step (1 = constant)
    clamp_delta: float = 0.1  # eq. (5): δ
    latent_reg: float = 1e-5  # eq. (5): weight of the latent-norm regulariser
    latent_init_std: float = 0.01  # §5.2: zᵢ ~ N(0, 0.01²)
    split: str = "train"
    max_shapes: int = 0  # 0 = every ok shape of the split
    seed: int = 0
    ckpt_every: int = 500  # steps between checkpoints
    log_every: int = 10  # steps between log rows
    threads: int = 0  # torch intra-op threads per rank; 0 = cores / ranks


FIT_PRESETS: dict[str, FitConfig] = {
    # CPU: 64 synthetic shapes in a few minutes; more, smaller steps than the paper (README for timings).
    # Short runs: 3x the paper's LRs with a cosine decay reach a 2x lower loss in 300 steps (README).
    "tiny": FitConfig(preset="tiny", decoder=DECODER_PRESETS["tiny"], epochs=150, shapes_per_step=8,
                      points_per_shape=2048, lr_decoder=1.5e-3, lr_latent=3e-3, lr_final_scale=0.1,
                      ckpt_every=200),
    # §5.3 initial pilot: 256 × 4, 800 epochs.
    "pilot": FitConfig(preset="pilot", decoder=DECODER_PRESETS["pilot"], epochs=800),
    # §5.2: 512 × 8, 1500 epochs.
    "paper": FitConfig(),
}


def make_config(name: str, overrides: list[str] | None = None) -> FitConfig:
    cfg = apply_overrides(preset(FIT_PRESETS, name), overrides)
    if cfg.shapes_per_step < 1 or cfg.points_per_shape < 1 or cfg.epochs < 1:
        raise UserError("shapes_per_step, points_per_shape and epochs must all be >= 1")
    return cfg


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
    """Train an auto-decoder on ``data_root``'s ``config.split`` shapes into run folder ``out``."""
    info = distributed.init_distributed(device)
    out = Path(out)
    try:
        config, obj_idx = _prepare_run(Path(data_root), out, config, resume, info)
        _train(Path(data_root), out, config, obj_idx, resume, info, progress)
    finally:
        distributed.cleanup()
    return out


def _prepare_run(data_root: Path, out: Path, config: FitConfig | None, resume: bool,
                 info: distributed.DistInfo) -> tuple[FitConfig, list[int]]:
    cfg_path = out / "config.json"
    if resume:
        if not cfg_path.is_file():
            raise UserError(f"--resume: {out} has no config.json; start the run without --resume")
        saved = read_json(cfg_path)
        return from_dict(FitConfig, saved["fit"]), [int(i) for i in saved["obj_idx"]]
    if cfg_path.is_file():
        raise UserError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    config = config or make_config("paper")
    if config.shapes_per_step % info.world_size:
        raise UserError(f"shapes_per_step={config.shapes_per_step} must be divisible by the "
                        f"{info.world_size} torchrun processes")
    obj_idx = select_shapes(data_root, config.split, config.max_shapes)
    if info.is_main:
        write_json(cfg_path, {"fit": to_dict(config), "data_root": str(data_root.resolve()),
                              "obj_idx": obj_idx, "world_size": info.world_size})
    distributed.barrier()
    return config, obj_idx


def _train(data_root: Path, out: Path, config: FitConfig, obj_idx: list[int], resume: bool,
           info: distributed.DistInfo, progress: bool) -> None:
    from tqdm import tqdm

    torch.set_num_threads(config.threads or max(1, (os.cpu_count() or 1) // info.world_size))
    data = load_samples(ShapeStore(data_root), obj_idx, progress and info.is_main).to(info.device)
    n_shapes, n_points = data.shape[0], data.shape[1]
    torch.manual_seed(config.seed)  # identical initialisation on every rank
    model = AutoDecoder(config, n_shapes).to(info.device)
    opt = torch.optim.Adam([
        {"params": model.decoder.parameters(), "lr": config.lr_decoder},
        {"params": model.latents.parameters(), "lr": config.lr_latent},
    ])
    points_gen = torch.Generator().manual_seed(config.seed + 1)
    step, rows = 0, []
    if resume and list_checkpoints(out):
        ckpt = load_checkpoint(out)
        restore(ckpt, {"model": model}, {"adam": opt}, {"points": points_gen})
        step = ckpt.step
        rows = [r for r in _read_log(out) if int(r["step"]) <= step]
    ddp_model = distributed.wrap_ddp(model, info)

    batch = config.shapes_per_step
    local = batch // info.world_size
    steps_per_epoch = math.ceil(n_shapes / batch)
    total = config.epochs * steps_per_epoch
    elapsed = float(rows[-1]["seconds"]) if rows else 0.0
    t0 = time.perf_counter() - elapsed
    order_epoch, order = -1, None
    bar = tqdm(total=total, initial=step, desc="fit", unit="step", disable=not (progress and info.is_main))
    while step < total:
        epoch = step // steps_per_epoch
        if epoch != order_epoch:
            order_epoch, order = epoch, epoch_order(n_shapes, batch, config.seed, epoch)
        k = step % steps_per_epoch
        shape_idx = order[k * batch:(k + 1) * batch]
        point_idx = torch.randint(n_points, (batch, config.points_per_shape), generator=points_gen)
        mine = slice(info.rank * local, (info.rank + 1) * local)  # this rank's share of the global batch
        shape_idx, point_idx = shape_idx[mine].to(info.device), point_idx[mine].to(info.device)
        samples = data[shape_idx[:, None], point_idx]  # [local, M, 4]

        pred, z = ddp_model(shape_idx, samples[..., :3])
        sdf_l1 = clamped_l1(pred, samples[..., 3], config.clamp_delta).mean()
        latent_sq = z.pow(2).sum(-1).mean()
        loss = sdf_l1 + config.latent_reg * latent_sq
        opt.zero_grad(set_to_none=True)
        loss.backward()
        scale = lr_scale(step, total, config.lr_final_scale)
        for group, base in zip(opt.param_groups, (config.lr_decoder, config.lr_latent), strict=True):
            group["lr"] = base * scale
        opt.step()
        step += 1
        bar.update(1)

        if step % config.log_every == 0 or step == total:
            stats = distributed.all_reduce_mean(torch.stack([loss, sdf_l1, latent_sq.sqrt()]).detach())
            rows.append({"step": step, "epoch": step / steps_per_epoch, "loss": stats[0].item(),
                         "sdf_l1": stats[1].item(), "latent_norm": stats[2].item(),
                         "seconds": time.perf_counter() - t0})
            bar.set_postfix(loss=f"{rows[-1]['loss']:.5f}", epoch=epoch)
        if step % config.ckpt_every == 0 or step == total:
            if info.is_main:
                save_checkpoint(out, step, {"model": model}, {"adam": opt}, {"points": points_gen},
                                meta={"epoch": step / steps_per_epoch})
                _write_log(out, rows)
            distributed.barrier()
    bar.close()
    if info.is_main:
        save_final(out, model, obj_idx)
        _write_log(out, rows)
        plot_loss(rows, out / "loss.png")


def save_final(out: Path, model: AutoDecoder, obj_idx: list[int]) -> None:
    """``decoder.safetensors`` and ``latents.safetensors`` (metadata ``obj_idx``: latent row → manifest)."""
    from safetensors.torch import save

    from ..io import write_bytes

    dec = {k: v.detach().cpu().contiguous() for k, v in model.decoder.state_dict().items()}
    write_bytes(out / "decoder.safetensors", save(dec))
    lat = {"latents": model.latents.weight.detach().cpu().contiguous()}
    write_bytes(out / "latents.safetensors", save(lat, metadata={"obj_idx": ",".join(map(str, obj_idx))}))


def _read_log(out: Path) -> list[dict]:
    path = out / "log.csv"
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _write_log(out: Path, rows: list[dict]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=LOG_FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    write_text(out / "log.csv", buf.getvalue())


def plot_loss(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not rows:
        return
    steps = [int(r["step"]) for r in rows]
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    ax.semilogy(steps, [float(r["loss"]) for r in rows], label="loss (eq. 5)")
    ax.semilogy(steps, [float(r["sdf_l1"]) for r in rows], label="clamped SDF L1", alpha=0.7)
    ax.set_xlabel("step")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
