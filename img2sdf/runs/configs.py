"""Every trainer's config and presets, one place: what a run folder's ``config.json`` holds.

A run kind is the command that makes it (``fit``, ``train-dit``, ``fit-mlps``, ``train-wdit``,
``train-wae``). Each has a dataclass (its fields are the ``--set`` keys), named presets, a validity check
and the set of fields that may change when a run is resumed (:data:`SAFE_ON_RESUME`; everything else must
match the run, see :mod:`img2sdf.runs.run`).
Kept below ``train/`` so that ``generate/`` and ``eval/`` read a run without importing a trainer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..config import apply_overrides, preset
from ..devices import check_amp
from ..errors import UserError
from ..models.decoder import DECODER_PRESETS, DecoderConfig
from ..models.dit import DIT_PRESETS, DiTConfig
from ..models.mlp import PAPER_MLP, MLPConfig
from ..models.weight_ae import WeightAEConfig
from ..models.weight_dit import WDIT_PRESETS, WeightDiTConfig


@dataclass
class FitConfig:
    """Auto-decoder training (paper §5.2, eq. 5)."""

    preset: str = "paper"
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    epochs: int = 1500  # §5.3 Table 3: 1500 epochs for 976 shapes (4000 for the 20-shape 512×8 pilot)
    shapes_per_step: int = 4  # §5.2: 4 shapes per step (the global batch, split over torchrun ranks)
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
    log_every: int = 10  # steps between log rows (and the only host syncs of the loop)
    threads: int = 0  # torch threads per process; 0 = torch's default (cores / processes under torchrun)
    amp: str = "off"  # off | bf16 | fp16 autocast of the forward pass (fp16 with a GradScaler)


FIT_PRESETS: dict[str, FitConfig] = {
    # CPU: 64 synthetic shapes in a few minutes; more, smaller steps than the paper (README for timings).
    # Short runs: 3x the paper's LRs with a cosine decay reach a 2x lower loss in 300 steps (README).
    "tiny": FitConfig(preset="tiny", decoder=DECODER_PRESETS["tiny"], epochs=150, shapes_per_step=8,
                      points_per_shape=2048, lr_decoder=1.5e-3, lr_latent=3e-3, lr_final_scale=0.1,
                      ckpt_every=200),
    # CPU at the paper's 976 shapes: the tiny preset's budget per shape (40 epochs × 2,048 points of the
    # 192 × 5) spent on more, cheaper steps, the best of 8 configurations at equal FLOPs (README).
    "cpu": FitConfig(preset="cpu", decoder=DECODER_PRESETS["cpu"], epochs=142, shapes_per_step=8,
                     points_per_shape=1024, lr_decoder=1.5e-3, lr_latent=3e-3, lr_final_scale=0.1,
                     ckpt_every=200),
    # §5.3 initial pilot: 256 × 4, 800 epochs.
    "pilot": FitConfig(preset="pilot", decoder=DECODER_PRESETS["pilot"], epochs=800),
    # §5.2: 512 × 8, 1500 epochs.
    "paper": FitConfig(),
}


@dataclass
class DiTTrainConfig:
    """Latent DiT training (paper §6.1)."""

    preset: str = "paper"
    model: DiTConfig = field(default_factory=DiTConfig)
    steps: int = 15_000  # §6.1
    batch_size: int = 32  # §6.1; per torchrun process (the global batch is batch_size × processes)
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
    log_every: int = 25  # steps between log rows (and the only host syncs of the loop)
    ckpt_every: int = 500
    # threads as in FitConfig. The tiny model is too small to gain from more than one: on this shared
    # 2-core CPU 50 steps took 3.2 s with 1 thread and 58 s with 2 (oversubscribed).
    threads: int = 0
    amp: str = "off"  # off | bf16 | fp16 autocast of the forward pass (fp16 with a GradScaler)


TRAIN_PRESETS: dict[str, DiTTrainConfig] = {
    # pose_dropout 0.5: photos come without a pose, so the null pose token must be trained as much as poses
    "tiny": DiTTrainConfig(preset="tiny", model=DIT_PRESETS["tiny"], steps=3000, batch_size=32, lr=1e-3,
                           warmup_steps=100, pose_dropout=0.5, ckpt_every=500, threads=1),
    "paper": DiTTrainConfig(model=DIT_PRESETS["paper"]),
}



@dataclass
class WeightDiTTrainConfig(DiTTrainConfig):
    """The weight-space DiT of §3.2 (Family A, Phases 6-9): train-dit's loop on 54,785-dim targets."""

    model: WeightDiTConfig = field(default_factory=WeightDiTConfig)
    steps: int = 30_000  # §3.2: the loss plateaus near 15 K steps and does not improve through 30 K
    lr: float = 1e-4  # not given in §3.2; below the latent DiT's for a 132 M network
    cfg_dropout: float = 0.1  # §3.2 (0 for Phase 9)
    pose_dropout: float = 0.2  # §3.2 (0 for Phase 9)


WDIT_TRAIN_PRESETS: dict[str, WeightDiTTrainConfig] = {
    "tiny": WeightDiTTrainConfig(preset="tiny", model=WDIT_PRESETS["tiny"], steps=2000, batch_size=16,
                                 lr=1e-3, warmup_steps=100, ckpt_every=500, threads=1),
    "paper": WeightDiTTrainConfig(model=WDIT_PRESETS["paper"]),
}


@dataclass
class WAETrainConfig:
    """Family B's weight autoencoder (paper §4.1)."""

    preset: str = "paper"
    model: WeightAEConfig = field(default_factory=WeightAEConfig)
    epochs: int = 2000  # §4.1
    lr: float = 3e-4  # §4.1 (constant: no schedule is given)
    batch_size: int = 32  # not given
    seed: int = 0
    log_every: int = 10  # epochs
    ckpt_every: int = 200  # epochs
    mesh_resolution: int = 256  # marching-cubes cells per axis of §4.2's meshes
    mesh_points: int = 100_000  # surface points per mesh (eval/metrics.py's protocol)
    threads: int = 0


WAE_PRESETS: dict[str, WAETrainConfig] = {
    # CPU: 32 shapes in minutes; narrower than §4.1's 1024 (whose first layer alone holds 56 M weights)
    "tiny": WAETrainConfig(preset="tiny", model=WeightAEConfig(hidden=(256, 256, 256)), epochs=300, lr=1e-3,
                           batch_size=16, log_every=5, ckpt_every=100, mesh_resolution=64,
                           mesh_points=20_000, threads=1),
    "paper": WAETrainConfig(),
}

INITS = ("anchor", "random", "same")


@dataclass
class FitMLPsConfig:
    """Family A phase 1 (paper §3.1): one ReLU+PE MLP per shape."""

    preset: str = "paper"
    mlp: MLPConfig = field(default_factory=lambda: PAPER_MLP)
    init: str = "anchor"  # §3.1: every MLP starts from the anchor
    epochs: int = 200  # §3.1: 200 epochs per shape
    lr: float = 1e-4  # §3.1: learning rate 1e-4 ...
    lr_final_scale: float = 0.0  # ... with cosine decay (to 0 at the last step)
    # §3.1 gives no batch size; 8,192 points per shape per step is the paper's only stated point batch
    # (§5.2): 25 steps per 200k-sample epoch, 5,000 steps per shape.
    batch_points: int = 8192
    points_per_epoch: int = 0  # 0 = every sample of the shape (§3.1: the shape's 200k samples)
    anchor_shape: int = -1  # obj_idx of the anchor shape; -1 = the first training shape (obj_0000, §3.1)
    anchor_epochs: int = 200  # the paper gives no anchor schedule; we use the per-shape one from scratch
    anchor_lr: float = 1e-4
    clamp_delta: float = 0.1  # δ of the clamped L1 (as in fit.py / eq. 5)
    chunk: int = 32  # shapes fitted together in one batched step; a finished chunk is saved at once
    split: str = "train"
    max_shapes: int = 0  # 0 = every ok shape of the split
    eval_points: int = 32768  # seeded samples per shape for the final loss
    outlier_loss: float = 0.01  # §3.1: "11/976 outliers above 0.01"
    seed: int = 0
    ckpt_every: int = 500  # steps between checkpoints inside a chunk
    log_every: int = 10
    threads: int = 0  # as in FitConfig


FIT_MLPS_PRESETS: dict[str, FitMLPsConfig] = {
    # CPU: 32 shapes in a few minutes. 100 epochs of 4,096 random samples in batches of 1,024 (400 steps);
    # 10x the paper's LR, because 400 steps at 1e-4 leave the MLPs near the anchor (README, measured).
    "tiny": FitMLPsConfig(preset="tiny", epochs=100, lr=1e-3, batch_points=1024, points_per_epoch=4096,
                          anchor_epochs=300, anchor_lr=1e-3, chunk=32, ckpt_every=100),
    "paper": FitMLPsConfig(),
}


def _check_fit(cfg: FitConfig) -> None:
    if cfg.shapes_per_step < 1 or cfg.points_per_shape < 1 or cfg.epochs < 1:
        raise UserError("shapes_per_step, points_per_shape and epochs must all be >= 1")
    check_amp(cfg.amp)


def _check_dit(cfg: DiTTrainConfig) -> None:
    if cfg.steps < 1 or cfg.batch_size < 1 or not 1 <= cfg.sample_steps <= cfg.timesteps:
        raise UserError("steps and batch_size must be >= 1 and sample_steps in 1..timesteps")
    check_amp(cfg.amp)


def _check_fit_mlps(cfg: FitMLPsConfig) -> None:
    if cfg.init not in INITS:
        raise UserError(f"init={cfg.init!r}: choose one of {', '.join(INITS)}")
    if min(cfg.epochs, cfg.batch_points, cfg.chunk, cfg.anchor_epochs, cfg.eval_points) < 1:
        raise UserError("epochs, batch_points, chunk, anchor_epochs and eval_points must all be >= 1")


def _check_wae(cfg: WAETrainConfig) -> None:
    if min(cfg.epochs, cfg.batch_size, cfg.model.latent_dim, cfg.mesh_resolution, cfg.mesh_points) < 1:
        raise UserError("epochs, batch_size, model.latent_dim, mesh_resolution and mesh_points must be >= 1")


@dataclass(frozen=True)
class Kind:
    config: type
    presets: dict[str, Any]
    check: Any
    safe_on_resume: frozenset[str]  # dotted config keys (and run facts) a resume may change


_SCHEDULE = frozenset({"log_every", "ckpt_every", "threads", "amp"})
KINDS: dict[str, Kind] = {
    # more epochs/steps stretch the cosine LR schedule from the resumed step on (printed when applied)
    "fit": Kind(FitConfig, FIT_PRESETS, _check_fit, _SCHEDULE | {"epochs", "world_size"}),
    "train-dit": Kind(DiTTrainConfig, TRAIN_PRESETS, _check_dit, _SCHEDULE | {"steps", "sample_steps"}),
    # finished chunks were fitted with the old schedule, so fit-mlps keeps its epochs
    "fit-mlps": Kind(FitMLPsConfig, FIT_MLPS_PRESETS, _check_fit_mlps, _SCHEDULE - {"amp"}),
    "train-wdit": Kind(WeightDiTTrainConfig, WDIT_TRAIN_PRESETS, _check_dit,
                       _SCHEDULE | {"steps", "sample_steps"}),
    # a constant LR: more epochs simply continue; the meshing settings only affect the evaluation after it
    "train-wae": Kind(WAETrainConfig, WAE_PRESETS, _check_wae,
                      _SCHEDULE - {"amp"} | {"epochs", "mesh_resolution", "mesh_points"}),
}


def kind(name: str) -> Kind:
    if name not in KINDS:
        raise UserError(f"unknown run kind {name!r}; one of {', '.join(KINDS)}")
    return KINDS[name]


def make_config(kind_name: str, preset_name: str = "tiny", overrides: list[str] | None = None,
                base: Any = None) -> Any:
    """``kind_name``'s config from a preset (or from ``base``, e.g. a resumed run's) with ``key=value``
    overrides applied and checked."""
    k = kind(kind_name)
    cfg = apply_overrides(base if base is not None else preset(k.presets, preset_name), overrides)
    k.check(cfg)
    return cfg
