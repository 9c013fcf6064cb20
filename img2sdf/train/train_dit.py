"""Train an image-conditioned DiT on (views, poses) → target pairs: the latent DiT (paper §6.1) on
auto-decoder latents, or the weight-space DiT (§3.2, Family A) on fit-mlps weights. One loop; the model
(its tokeniser) follows the config: :func:`build_model`.

Run folder ``DITRUN/``: ``config.json`` (resolved config + the data, decoder run and encoder it was trained
on, so ``generate --model DITRUN`` needs nothing else), ``ckpt/`` (exact resume), ``dit.safetensors`` (final
weights incl. latent/feature standardisation), ``log.csv`` and ``loss.png``.
Every batch item sees K ~ U{min_views..max_views} of its shape's cached views (key-padding mask).
"""

from __future__ import annotations

import csv
import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..config import from_dict, preset, to_dict
from ..errors import UserError
from ..io import read_json, write_bytes, write_json, write_text
from ..models.diffusion import GaussianDiffusion
from ..models.dit import DIT_PRESETS, DiTConfig, LatentDiT
from ..models.weight_dit import WDIT_PRESETS, WeightDiT, WeightDiTConfig
from .checkpoint import load_checkpoint, restore, save_checkpoint


@dataclass
class DiTTrainConfig:
    model: DiTConfig = field(default_factory=DiTConfig)
    steps: int = 15_000  # §6.1
    batch_size: int = 32  # §6.1
    lr: float = 3e-4  # §6.1, cosine decay
    warmup_steps: int = 200
    grad_clip: float = 1.0
    timesteps: int = 500  # cosine T = 500 (§3.2, §6.1)
    sample_steps: int = 50  # DDIM steps used by generate / eval
    min_views: int = 1  # K ∈ [1, 8] (§3.2)
    max_views: int = 8
    pose_dropout: float = 0.0  # §6.1 disables it; > 0 trains the null "unknown pose" token for photos
    cfg_dropout: float = 0.0  # §6.1 disables it; > 0 enables classifier-free guidance at sampling
    seed: int = 0
    log_every: int = 25
    ckpt_every: int = 500
    # torch intra-op threads per process; 0 = torch's default. The tiny model is too small to gain from
    # more: on this shared 2-core CPU 50 steps took 3.2 s with 1 thread and 58 s with 2 (oversubscribed).
    threads: int = 0


TRAIN_PRESETS = {
    # pose_dropout 0.5: photos come without a pose, so the null pose token must be trained as much as poses
    "tiny": DiTTrainConfig(model=DIT_PRESETS["tiny"], steps=3000, batch_size=32, lr=1e-3, warmup_steps=100,
                           pose_dropout=0.5, ckpt_every=500, threads=1),
    "paper": DiTTrainConfig(model=DIT_PRESETS["paper"]),
}


@dataclass
class WeightDiTTrainConfig(DiTTrainConfig):
    """The weight-space DiT of §3.2 (Phases 6-9): same loop, 54,785-dim targets."""

    model: WeightDiTConfig = field(default_factory=WeightDiTConfig)
    steps: int = 30_000  # §3.2: the loss plateaus around 15 K and does not improve through 30 K
    lr: float = 1e-4  # not given in §3.2; lower than the latent DiT's for a 132 M network
    cfg_dropout: float = 0.1  # §3.2 (0 for Phase 9)
    pose_dropout: float = 0.2  # §3.2 (0 for Phase 9)


WDIT_TRAIN_PRESETS = {
    "tiny": WeightDiTTrainConfig(model=WDIT_PRESETS["tiny"], steps=2000, batch_size=16, lr=1e-3,
                                 warmup_steps=100, ckpt_every=500, threads=1),
    "paper": WeightDiTTrainConfig(model=WDIT_PRESETS["paper"]),
}

RUN_KINDS = {"latent-dit": DiTTrainConfig, "weight-dit": WeightDiTTrainConfig}


def run_kind(cfg: DiTTrainConfig) -> str:
    return "weight-dit" if isinstance(cfg.model, WeightDiTConfig) else "latent-dit"


def build_model(model_cfg: DiTConfig | WeightDiTConfig) -> LatentDiT | WeightDiT:
    """The tokeniser seam: one latent token (§6.1) or weight tokens (§3.2) around the shared trunk."""
    return WeightDiT(model_cfg) if isinstance(model_cfg, WeightDiTConfig) else LatentDiT(model_cfg)


@dataclass
class PairedViews:
    """Training pairs: latent row i ↔ the cached views of shape ``obj_idx[i]``."""

    latents: torch.Tensor  # [N, 64] float32
    features: torch.Tensor  # [N, V, D] (float16 is fine: cast per batch)
    poses: torch.Tensor  # [N, V, 4, 4] camera-to-world
    obj_idx: list[int]

    def sample_batch(self, batch: int, min_views: int, max_views: int, gen: torch.Generator):
        """rows [B], features [B, K, D], poses [B, K, 4, 4], view_mask [B, K] (K = max_views)."""
        n, v = self.features.shape[:2]
        k = min(max_views, v)
        rows = torch.randint(0, n, (batch,), generator=gen)
        counts = torch.randint(min(min_views, k), k + 1, (batch,), generator=gen)
        views = torch.rand(batch, v, generator=gen).argsort(dim=1)[:, :k]  # distinct random views per item
        feats = self.features[rows[:, None], views].float()
        poses = self.poses[rows[:, None], views].float()
        mask = torch.arange(k)[None] < counts[:, None]
        return rows, feats, poses, mask


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
        x[mine].to(device) for x in (feats, poses, mask, pose_known, drop, t, noise))
    x0 = net.standardise(pairs.latents[rows[mine]].to(device))
    return diffusion.training_loss(lambda x, tt: model(x, tt, feats, poses, mask, pose_known, drop), x0,
                                   t=t, noise=noise)


def train_dit(
    pairs: PairedViews,
    cfg: DiTTrainConfig,
    out: str | Path,
    provenance: dict | None = None,
    resume: bool = False,
    progress: bool = True,
) -> LatentDiT | WeightDiT:
    """Train (or resume) a DiT run in ``out``; returns the trained model (eval mode).

    Under ``torchrun`` ``batch_size`` is per process: the global batch is ``batch_size × world_size``, each
    rank computes its slice and DDP averages the gradients.
    """
    from tqdm import tqdm

    from . import distributed

    out = Path(out)
    dist_info = distributed.init_distributed()
    rank, world, is_main = dist_info.rank, dist_info.world_size, dist_info.is_main
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, feature_dim=pairs.features.shape[-1]))
    config = {"kind": run_kind(cfg), "train": to_dict(cfg), "n_shapes": len(pairs.obj_idx),
              "obj_idx": list(pairs.obj_idx), **(provenance or {})}
    if (out / "config.json").is_file() and not resume:
        raise UserError(f"{out}: already holds a DiT run; pass --resume to continue it or choose a new --out")
    if resume and (out / "config.json").is_file():
        saved = read_json(out / "config.json")
        if saved.get("train") != config["train"]:
            raise UserError(f"{out}/config.json: the run was started with a different config; "
                            "resume with the same preset/overrides or choose a new --out")
    distributed.barrier()  # every rank has checked before rank 0 writes
    if is_main:
        write_json(out / "config.json", config)

    distributed.set_threads(cfg.threads)
    torch.manual_seed(cfg.seed)  # identical initial weights on every rank
    model = build_model(cfg.model)
    model.set_statistics(pairs.latents, pairs.features.reshape(-1, pairs.features.shape[-1]).float())
    model.to(dist_info.device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(cfg.seed)  # the same on every rank (see dit_loss)
    diffusion = GaussianDiffusion(cfg.timesteps)
    step, ema = 0, None
    ckpt = load_checkpoint(out) if resume else None
    if ckpt is not None:
        meta = restore(ckpt, {"dit": model}, {"adamw": opt}, {"data": gen})
        step, ema = ckpt.step, meta.get("loss_ema")
    log_rows = _read_log(out / "log.csv", step) if is_main else []
    ddp_model = distributed.wrap_ddp(model, dist_info)

    bar = tqdm(total=cfg.steps, initial=step, desc="train-dit", disable=not (progress and is_main),
               dynamic_ncols=True)
    t0 = time.perf_counter()
    model.train()
    while step < cfg.steps:
        for group in opt.param_groups:
            group["lr"] = lr_at(cfg, step)
        loss = dit_loss(ddp_model, diffusion, pairs, cfg, gen, rank, world)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        step += 1
        value = distributed.all_reduce_mean(loss).item()
        ema = value if ema is None else 0.98 * ema + 0.02 * value
        bar.update(1)
        if step % cfg.log_every == 0 or step == cfg.steps:
            bar.set_postfix(loss=f"{value:.4f}", ema=f"{ema:.4f}")
            if is_main:
                log_rows.append({"step": step, "loss": value, "loss_ema": ema, "lr": lr_at(cfg, step - 1),
                                 "seconds": round(time.perf_counter() - t0, 3)})
                _write_log(out / "log.csv", log_rows)
        if is_main and (step % cfg.ckpt_every == 0 or step == cfg.steps):
            save_checkpoint(out, step, {"dit": model}, {"adamw": opt}, {"data": gen}, meta={"loss_ema": ema})
    bar.close()
    if is_main:
        from safetensors.torch import save

        state = {k: v.cpu().contiguous() for k, v in model.state_dict().items()}
        write_bytes(out / "dit.safetensors", save(state))
        family = "weight-space" if config["kind"] == "weight-dit" else "latent"
        _plot_loss(out / "loss.png", log_rows, f"{family} DiT training loss (eq. 4)")
    distributed.barrier()
    return model.cpu().eval()


def _read_log(path: Path, upto: int) -> list[dict]:
    """Rows of an earlier (interrupted) run up to the resumed step; later rows belong to lost work."""
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f) if float(r["step"]) <= upto]


def _write_log(path: Path, rows: list[dict]) -> None:
    lines = ["step,loss,loss_ema,lr,seconds"]
    lines += [f"{int(r['step'])},{r['loss']:.6g},{r['loss_ema']:.6g},{r['lr']:.6g},{r['seconds']:.3f}"
              for r in rows]
    write_text(path, "\n".join(lines) + "\n")


def _plot_loss(path: Path, rows: list[dict], title: str, ylabel: str = "x0 MSE (standardised)") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..io import atomic_path

    fig, ax = plt.subplots(figsize=(6, 3.5))
    if rows:
        steps = [r["step"] for r in rows]
        ax.plot(steps, [r["loss"] for r in rows], lw=0.8, alpha=0.5, label="loss")
        ax.plot(steps, [r["loss_ema"] for r in rows], lw=1.5, label="EMA")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


# loading a finished run -----------------------------------------------------------------------------
@dataclass
class DiTRun:
    model: LatentDiT | WeightDiT
    config: DiTTrainConfig
    diffusion: GaussianDiffusion
    info: dict  # config.json: data root, decoder (or MLP) run, encoder, obj_idx of the training targets
    path: Path

    @property
    def kind(self) -> str:
        return self.info.get("kind", "latent-dit")


def load_dit_run(run_dir: str | Path) -> DiTRun:
    """Load ``DITRUN/dit.safetensors`` (or the newest checkpoint of an unfinished run) for inference."""
    from safetensors.torch import load_file

    from .checkpoint import model_state

    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file():
        raise UserError(f"{run_dir}: not a DiT run (no config.json); train one with `img2sdf train-dit`")
    info = read_json(run_dir / "config.json")
    kind = info.get("kind", "latent-dit")
    if kind not in RUN_KINDS or "train" not in info:
        raise UserError(f"{run_dir}: a {kind} run, not a DiT run (train-dit or train-wdit)")
    cfg = from_dict(RUN_KINDS[kind], info["train"])
    model = build_model(cfg.model)
    if (run_dir / "dit.safetensors").is_file():
        state = load_file(run_dir / "dit.safetensors")
    else:
        ckpt = load_checkpoint(run_dir)
        if ckpt is None:
            raise UserError(f"{run_dir}: no dit.safetensors and no checkpoint; the training never saved")
        state = model_state(ckpt, "dit")
    model.load_state_dict(state)
    return DiTRun(model.eval(), cfg, GaussianDiffusion(cfg.timesteps), info, run_dir)


def load_training_pairs(data_root: str | Path, decoder_run: str | Path, encoder: str,
                        views: str = "renders", pool_groups: tuple[str, ...] | None = None) -> PairedViews:
    """Latents of the auto-decoder run paired with the store's cached features/poses of the same shapes;
    ``views="photo"`` pairs them with the photo pool (``encode --views photo``) instead of the renders,
    optionally only some of its groups (:func:`~img2sdf.encoders.cache.pool_indices`)."""
    from ..models.decoder import load_decoder_run

    run = load_decoder_run(decoder_run)
    latents = torch.as_tensor(run.latents).detach().float().cpu()
    return paired_views(data_root, latents, [int(i) for i in run.obj_idx], encoder, views, pool_groups)


def load_weight_pairs(data_root: str | Path, mlp_run: str | Path, encoder: str,
                      views: str = "renders", pool_groups: tuple[str, ...] | None = None) -> PairedViews:
    """The fit-mlps run's flat MLP weights [N, 54785] paired with the same shapes' views (§3.2)."""
    from .fit_mlps import load_mlp_run

    run = load_mlp_run(mlp_run)
    return paired_views(data_root, run.weights.float(), run.obj_idx, encoder, views, pool_groups)


def paired_views(data_root: str | Path, targets: torch.Tensor, obj_idx: list[int], encoder: str,
                 views: str = "renders", pool_groups: tuple[str, ...] | None = None) -> PairedViews:
    """Targets [N, L] (row i ↔ ``obj_idx[i]``) with the store's cached features and poses of those shapes."""
    from ..data.store import ShapeStore, shape_name
    from ..encoders.cache import POOL_GROUPS, feature_set, pool_indices

    store = ShapeStore(data_root)
    name = feature_set(encoder, views)
    if not store.features_path(name).is_file():
        flag = " --views photo" if views == "photo" else ""
        raise UserError(f"{store.features_path(name)}: missing; run `img2sdf encode {data_root} --encoder "
                        f"{encoder}{flag}`")
    features, poses, meta = store.load_features(name)
    filled = meta.get("filled") or [bool(np.any(row)) for row in features]
    missing = [i for i in obj_idx if i >= len(filled) or not filled[i]]
    if missing:
        raise UserError(f"{store.features_path(name)}: no features for {len(missing)} training shapes "
                        f"(e.g. {shape_name(missing[0])}); "
                        f"run `img2sdf encode {data_root} --encoder {encoder} --views {views}`")
    cols = pool_indices(meta, tuple(pool_groups or POOL_GROUPS))
    rows = np.asarray(obj_idx)[:, None]
    return PairedViews(
        latents=targets,
        features=torch.from_numpy(np.ascontiguousarray(features[rows, cols[None]])),
        poses=torch.from_numpy(np.ascontiguousarray(poses[rows, cols[None]])).float(),
        obj_idx=list(obj_idx),
    )


def load_run_pairs(run: DiTRun) -> PairedViews:
    """The training pairs of a finished DiT run, rebuilt from its config.json provenance."""
    info = run.info
    missing = [k for k in ("data", "encoder") if k not in info]
    if missing:
        raise UserError(f"{run.path}/config.json: no {', '.join(missing)} recorded; cannot rebuild its data")
    groups = tuple(info.get("pool_groups") or ()) or None
    views = info.get("views", "renders")
    if run.kind == "weight-dit":
        return load_weight_pairs(info["data"], info["mlp_run"], info["encoder"], views, groups)
    return load_training_pairs(info["data"], info["decoder_run"], info["encoder"], views, groups)


def resolve_config(preset_name: str, overrides: list[str] | None, kind: str = "latent-dit") -> DiTTrainConfig:
    from ..config import apply_overrides

    presets = WDIT_TRAIN_PRESETS if kind == "weight-dit" else TRAIN_PRESETS
    return apply_overrides(preset(presets, preset_name), overrides)
