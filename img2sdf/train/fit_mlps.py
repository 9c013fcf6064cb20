"""Family A phase 1 (paper §3.1): fit one ReLU+PE MLP (54,785 parameters) per training shape.

Initialisation (``init``):
- ``anchor`` (the paper): an anchor MLP is first fitted on obj_0000 (``anchor_shape``) from a random init;
  every shape's MLP, obj_0000's included, then starts from it;
- ``random``: an independent random init per shape (seeded by the shape's obj_idx);
- ``same``: one shared random init, not trained first (a baseline between the two).

Loss: the project's clamped L1 |clamp(f_θ(p), δ) − clamp(s, δ)|, δ = 0.1 (eq. 5's data term; §3.1 names no
loss). Each shape's loss is the mean over its points; the objective of a batch of shapes is the *sum* of the
per-shape losses, so every shape sees the same gradients as if it were fitted alone. Adam is per-element,
so one Adam over the stacked [M, 54785] tensor is M independent Adams; the cosine learning-rate decay is
shared by construction (all shapes take the same steps).

Epochs: one epoch is ``points_per_epoch`` of the shape's samples (0 = all of them, the paper's 200k; a
random permutation per epoch) in batches of ``batch_points``; with ``points_per_epoch`` < the sample count
an epoch draws that many samples at random. Every draw comes from a generator seeded by (seed, obj_idx,
epoch), so a shape's fit does not depend on which other shapes share its batch, chunk or shard.

Run folder::

    config.json                       kind "fit-mlps", the resolved config, data_root, obj_idx (row order)
    anchor.safetensors                init=anchor: {"weights": [1, 54785]}, metadata obj_idx, final_loss
    anchor/ckpt/, anchor/log.csv      the anchor's own checkpoints and log
    shards/I-of-N/chunk_CCCC.safetensors   finished chunks: {"weights": [m, 54785]}, metadata obj_idx, losses
    shards/I-of-N/ckpt/, log.csv      the running chunk's checkpoint (safetensors + JSON) and log
    weights.safetensors               float32 [N, 54785], row i ↔ config.json obj_idx[i] (after the merge)
    losses.json, log.csv, loss.png    per-shape final losses and outliers (> 0.01, §3.1); all logs

A shard (``shard=(i, n)``) fits the shapes with obj_idx % n == i; the merge (automatic when the last shard
finishes, or :func:`merge`) writes weights.safetensors and losses.json once every shape has a row.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..config import apply_overrides, from_dict, preset, to_dict
from ..data.store import ShapeStore, shape_name
from ..errors import UserError
from ..io import atomic_path, read_json, write_bytes, write_json, write_text
from ..models.mlp import PAPER_MLP, MLPConfig, StackedMLPs, batched_forward, init_weights
from . import distributed
from .checkpoint import load_checkpoint, restore, save_checkpoint
from .fit import clamped_l1, load_samples, lr_scale, select_shapes

RUN_KIND = "fit-mlps"
INITS = ("anchor", "random", "same")
LOG_FIELDS = ("job", "step", "epoch", "lr", "loss", "loss_max", "seconds")


@dataclass
class FitMLPsConfig:
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
    threads: int = 0  # torch intra-op threads; 0 = torch's default


FIT_MLPS_PRESETS: dict[str, FitMLPsConfig] = {
    # CPU: 32 shapes in a few minutes. 100 epochs of 4,096 random samples in batches of 1,024 (400 steps);
    # 10x the paper's LR, because 400 steps at 1e-4 leave the MLPs near the anchor (README, measured).
    "tiny": FitMLPsConfig(preset="tiny", epochs=100, lr=1e-3, batch_points=1024, points_per_epoch=4096,
                          anchor_epochs=300, anchor_lr=1e-3, chunk=32, ckpt_every=100),
    "paper": FitMLPsConfig(),
}


def make_config(name: str, overrides: list[str] | None = None) -> FitMLPsConfig:
    cfg = apply_overrides(preset(FIT_MLPS_PRESETS, name), overrides)
    if cfg.init not in INITS:
        raise UserError(f"init={cfg.init!r}: choose one of {', '.join(INITS)}")
    if min(cfg.epochs, cfg.batch_points, cfg.chunk, cfg.anchor_epochs, cfg.eval_points) < 1:
        raise UserError("epochs, batch_points, chunk, anchor_epochs and eval_points must all be >= 1")
    return cfg


def shape_seed(seed: int, obj_idx: int, tag: int) -> int:
    """A generator seed for (run seed, shape, purpose): tag ≥ 0 is an epoch, < 0 a fixed purpose."""
    return int(np.random.SeedSequence([seed, obj_idx + 1, tag + 1000]).generate_state(1)[0])


INIT_TAG, EVAL_TAG, SAME_TAG = -1, -2, -3


# ------------------------------------------------------------------------------------------------ fitting


@dataclass
class Job:
    """M shapes fitted together: samples [M, P, 4], initial weights [M, D], a schedule, a work folder."""

    name: str
    obj_idx: list[int]
    init: torch.Tensor
    epochs: int
    lr: float
    work: Path
    step_base: int = 0  # checkpoint numbering stays monotone over the jobs of one work folder


def steps_per_epoch(cfg: FitMLPsConfig, n_samples: int) -> int:
    per_epoch = min(cfg.points_per_epoch or n_samples, n_samples)
    return math.ceil(per_epoch / cfg.batch_points)


def epoch_indices(cfg: FitMLPsConfig, obj_idx: list[int], n_samples: int, epoch: int) -> torch.Tensor:
    """Sample indices [M, points of the epoch] (a permutation of all samples, or a random subset)."""
    rows = []
    for i in obj_idx:
        g = torch.Generator().manual_seed(shape_seed(cfg.seed, i, epoch))
        if cfg.points_per_epoch and cfg.points_per_epoch < n_samples:
            rows.append(torch.randint(n_samples, (cfg.points_per_epoch,), generator=g))
        else:
            rows.append(torch.randperm(n_samples, generator=g))
    return torch.stack(rows)


def final_losses(weights: torch.Tensor, samples: torch.Tensor, obj_idx: list[int], cfg: FitMLPsConfig,
                 block: int = 8192) -> list[float]:
    """Clamped L1 per shape on ``eval_points`` seeded samples (the same samples for every init)."""
    n = samples.shape[1]
    k = min(cfg.eval_points, n)
    idx = torch.stack([torch.randperm(n, generator=torch.Generator().manual_seed(
        shape_seed(cfg.seed, i, EVAL_TAG)))[:k] for i in obj_idx]).to(samples.device)
    picked = torch.gather(samples, 1, idx[..., None].expand(-1, -1, 4))
    total = torch.zeros(len(obj_idx), dtype=torch.float64, device=samples.device)
    with torch.no_grad():
        for s in range(0, k, block):
            part = picked[:, s:s + block]
            pred = batched_forward(weights, part[..., :3], cfg.mlp)
            total += clamped_l1(pred, part[..., 3], cfg.clamp_delta).double().sum(1)
    return (total / k).tolist()


def run_job(job: Job, samples: torch.Tensor, cfg: FitMLPsConfig, bar=None,
            rows: list[dict] | None = None) -> tuple[torch.Tensor, list[float]]:
    """Fit ``job``'s shapes together, continuing from ``job.work``'s newest checkpoint if it belongs to this
    job; checkpoints every ``ckpt_every`` steps. Returns (weights [M, D], final losses)."""
    device = samples.device
    model = StackedMLPs(job.init, cfg.mlp).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=job.lr)
    n_samples = samples.shape[1]
    per_epoch = steps_per_epoch(cfg, n_samples)
    total = job.epochs * per_epoch
    rows = [] if rows is None else rows
    step = 0
    ckpt = load_checkpoint(job.work)
    if ckpt is not None and ckpt.meta["meta"].get("job") == job.name:
        restore(ckpt, {"job": model}, {"adam": opt})
        step = ckpt.meta["meta"]["job_step"]
        rows[:] = [r for r in rows if r["job"] != job.name or int(r["step"]) <= step]
    if bar is not None:
        bar.update(step)
    done = [r for r in rows if r["job"] == job.name]
    t0 = time.perf_counter() - (float(done[-1]["seconds"]) if done else 0.0)
    arange = torch.arange(len(job.obj_idx), device=device)[:, None]
    epoch_idx, indices = -1, None
    while step < total:
        epoch, k = divmod(step, per_epoch)
        if epoch != epoch_idx:
            epoch_idx, indices = epoch, epoch_indices(cfg, job.obj_idx, n_samples, epoch).to(device)
        batch = samples[arange, indices[:, k * cfg.batch_points:(k + 1) * cfg.batch_points]]  # [M, B, 4]
        per_shape = clamped_l1(model(batch[..., :3]), batch[..., 3], cfg.clamp_delta).mean(1)  # [M]
        lr = job.lr * lr_scale(step, total, cfg.lr_final_scale)
        for group in opt.param_groups:
            group["lr"] = lr
        opt.zero_grad(set_to_none=True)
        per_shape.sum().backward()
        opt.step()
        step += 1
        if bar is not None:
            bar.update(1)
        if step % cfg.log_every == 0 or step == total:
            loss = per_shape.detach()
            rows.append({"job": job.name, "step": step, "epoch": step / per_epoch, "lr": lr,
                         "loss": loss.mean().item(), "loss_max": loss.max().item(),
                         "seconds": time.perf_counter() - t0})
            if bar is not None:
                bar.set_postfix(job=job.name, loss=f"{rows[-1]['loss']:.5f}")
        if step % cfg.ckpt_every == 0 and step < total:
            save_checkpoint(job.work, job.step_base + step, {"job": model}, {"adam": opt},
                            meta={"job": job.name, "job_step": step})
            write_log(job.work / "log.csv", rows)
    weights = model.weights.detach()
    return weights.cpu(), final_losses(weights, samples, job.obj_idx, cfg)


# ---------------------------------------------------------------------------------------------- the run


def fit_mlps(data_root: str | Path, out: str | Path, config: FitMLPsConfig | None = None,
             resume: bool = False, shard: tuple[int, int] = (0, 1), device: str | None = None,
             threads: int = 0, progress: bool = True) -> Path:
    """Fit one MLP per ``config.split`` shape of ``data_root`` (this shard's share) into run ``out``;
    merges the shards into weights.safetensors once all are done. ``threads`` > 0 overrides the config's."""
    out = Path(out)
    config, obj_idx = _prepare_run(Path(data_root), out, config, resume, shard)
    distributed.set_threads(threads or config.threads)
    dev = distributed.choose_device(0, device)
    store = ShapeStore(read_json(out / "config.json")["data_root"])
    work = shard_dir(out, shard)
    if work.exists() and any(work.iterdir()) and not resume:
        raise UserError(f"{work} already holds this shard's work; pass --resume to continue it")
    init = None
    if config.init == "anchor":
        init = fit_anchor(out, store, config, obj_idx, dev, progress)
    elif config.init == "same":
        init = init_weights(1, [shape_seed(config.seed, 0, SAME_TAG)], config.mlp)[0]

    i, n = shard
    mine = [j for j in obj_idx if j % n == i]
    chunks = [mine[s:s + config.chunk] for s in range(0, len(mine), config.chunk)]
    rows = read_log(work / "log.csv") if resume else []
    from tqdm import tqdm

    n_samples = _sample_count(store, mine[0]) if mine else 0
    per_chunk = config.epochs * steps_per_epoch(config, n_samples) if mine else 0
    bar = tqdm(total=per_chunk * len(chunks), desc=f"fit-mlps {i}/{n}", unit="step", disable=not progress)
    for c, chunk in enumerate(chunks):
        path = work / f"chunk_{c:04d}.safetensors"
        if path.is_file():
            bar.update(per_chunk)
            continue
        t = time.perf_counter()
        samples = load_samples(store, chunk, progress=False).to(dev)
        if samples.shape[1] != n_samples:
            raise UserError(f"{store.root}: shapes hold different SDF sample counts ({samples.shape[1]} vs "
                            f"{n_samples}); prepare them with the same --points")
        if config.init == "anchor" or config.init == "same":
            start = init.expand(len(chunk), -1)
        else:
            seeds = [shape_seed(config.seed, j, INIT_TAG) for j in chunk]
            start = init_weights(len(chunk), seeds, config.mlp)
        job = Job(f"chunk_{c:04d}", chunk, start, config.epochs, config.lr, work, step_base=c * per_chunk)
        weights, losses = run_job(job, samples, config, bar, rows)
        save_rows(path, weights, chunk, losses, seconds=time.perf_counter() - t)
        write_log(work / "log.csv", rows)
    bar.close()
    if complete(out):
        merge(out)
    return out


def fit_anchor(out: Path, store: ShapeStore, cfg: FitMLPsConfig, obj_idx: list[int], device: torch.device,
               progress: bool) -> torch.Tensor:
    """RUN/anchor.safetensors, fitted once under a lock (shards started together wait for the first one)."""
    path = out / "anchor.safetensors"
    anchor = cfg.anchor_shape if cfg.anchor_shape >= 0 else min(obj_idx)
    with _locked(out / ".anchor.lock"):
        if not path.is_file():
            from tqdm import tqdm

            samples = load_samples(store, [anchor], progress=False).to(device)
            init = init_weights(1, [shape_seed(cfg.seed, anchor, INIT_TAG)], cfg.mlp)
            job = Job("anchor", [anchor], init, cfg.anchor_epochs, cfg.anchor_lr, out / "anchor")
            total = cfg.anchor_epochs * steps_per_epoch(cfg, samples.shape[1])
            rows = read_log(job.work / "log.csv")
            desc = f"anchor {shape_name(anchor)}"
            with tqdm(total=total, desc=desc, unit="step", disable=not progress) as bar:
                weights, losses = run_job(job, samples, cfg, bar, rows)
            write_log(job.work / "log.csv", rows)
            save_rows(path, weights, [anchor], losses)
    from safetensors.torch import load_file

    return load_file(path)["weights"][0]


def _prepare_run(data_root: Path, out: Path, config: FitMLPsConfig | None, resume: bool,
                 shard: tuple[int, int]) -> tuple[FitMLPsConfig, list[int]]:
    cfg_path = out / "config.json"
    i, n = shard
    if not 0 <= i < n:
        raise UserError(f"--shard {i}/{n}: need 0 <= i < n")
    if resume:
        if not cfg_path.is_file():
            raise UserError(f"--resume: {out} has no config.json; start the run without --resume")
        return load_config(out)
    config = config or make_config("paper")
    obj_idx = select_shapes(data_root, config.split, config.max_shapes)
    if config.init == "anchor" and config.anchor_shape >= 0 and config.anchor_shape not in obj_idx:
        raise UserError(f"anchor_shape={config.anchor_shape} is not an ok {config.split!r} shape")
    saved = {"kind": RUN_KIND, "fit_mlps": to_dict(config), "data_root": str(data_root.resolve()),
             "obj_idx": obj_idx, "params_per_shape": config.mlp.n_params}
    if cfg_path.is_file():
        # shards of one run share its config.json; anything else must not overwrite a run
        if n == 1 or json.dumps(read_json(cfg_path), sort_keys=True) != json.dumps(saved, sort_keys=True):
            raise UserError(f"{out} already holds a run; pass --resume to continue it or choose another "
                            "--out")
    else:
        write_json(cfg_path, saved)
    return config, obj_idx


def load_config(run_dir: str | Path) -> tuple[FitMLPsConfig, list[int]]:
    if not (Path(run_dir) / "config.json").is_file():
        raise UserError(f"{run_dir}: not a fit-mlps run (no config.json); fit one with `img2sdf fit-mlps`")
    saved = read_json(Path(run_dir) / "config.json")
    if saved.get("kind") != RUN_KIND:
        raise UserError(f"{run_dir}: not a fit-mlps run (config.json kind {saved.get('kind')!r})")
    return from_dict(FitMLPsConfig, saved["fit_mlps"]), [int(i) for i in saved["obj_idx"]]


def shard_dir(out: Path, shard: tuple[int, int]) -> Path:
    return out / "shards" / f"{shard[0]}-of-{shard[1]}"


def _sample_count(store: ShapeStore, obj_idx: int) -> int:
    with np.load(store.sdf_path(obj_idx)) as z:
        return len(z["sdf"])


@contextlib.contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


# ---------------------------------------------------------------------------------- outputs and the merge


def save_rows(path: Path, weights: torch.Tensor, obj_idx: list[int], losses: list[float],
              seconds: float = 0.0) -> None:
    from safetensors.torch import save

    meta = {"obj_idx": ",".join(map(str, obj_idx)), "final_loss": json.dumps(losses),
            "seconds": f"{seconds:.3f}"}
    write_bytes(path, save({"weights": weights.float().contiguous()}, metadata=meta))


def _finished_rows(out: Path) -> dict[int, tuple[Path, int, float]]:
    """obj_idx → (chunk file, row, final loss) over every shard folder of the run."""
    from safetensors import safe_open

    found = {}
    for path in sorted((out / "shards").glob("*/chunk_*.safetensors")):
        with safe_open(path, "pt") as f:
            meta = f.metadata()
        for row, (i, loss) in enumerate(zip(meta["obj_idx"].split(","), json.loads(meta["final_loss"]),
                                            strict=True)):
            found[int(i)] = (path, row, float(loss))
    return found


def complete(out: Path) -> bool:
    _, obj_idx = load_config(out)
    return set(obj_idx) <= set(_finished_rows(out))


def merge(out: str | Path) -> Path:
    """Write RUN/weights.safetensors [N, D] (rows in config.json's obj_idx order), losses.json, log.csv and
    loss.png from the finished chunks of every shard."""
    from safetensors.torch import load_file, save

    out = Path(out)
    cfg, obj_idx = load_config(out)
    found = _finished_rows(out)
    missing = [i for i in obj_idx if i not in found]
    if missing:
        raise UserError(f"{out}: {len(missing)} of {len(obj_idx)} shapes are not fitted yet (e.g. "
                        f"{shape_name(missing[0])}); run the missing --shard i/n jobs (or --resume) first")
    with _locked(out / ".merge.lock"):
        cache: dict[Path, torch.Tensor] = {}
        rows = []
        for i in obj_idx:
            path, row, _ = found[i]
            if path not in cache:
                cache[path] = load_file(path)["weights"]
            rows.append(cache[path][row])
        weights = torch.stack(rows).contiguous()
        write_bytes(out / "weights.safetensors",
                    save({"weights": weights}, metadata={"obj_idx": ",".join(map(str, obj_idx))}))
        write_json(out / "losses.json", loss_summary(out, cfg, obj_idx, [found[i][2] for i in obj_idx]))
        logs = []
        for log in sorted((out / "shards").glob("*/log.csv")):
            logs += [{"shard": log.parent.name, **r} for r in read_log(log)]
        write_log(out / "log.csv", logs, ("shard",) + LOG_FIELDS)
        plot_losses(logs, out / "loss.png")
    return out / "weights.safetensors"


def loss_summary(out: Path, cfg: FitMLPsConfig, obj_idx: list[int], losses: list[float]) -> dict:
    categories = {}
    with contextlib.suppress(UserError, OSError):
        store = ShapeStore(read_json(out / "config.json")["data_root"])
        categories = {s.obj_idx: s.category for s in store.load_manifest().shapes}
    arr = np.asarray(losses)
    per_shape = [{"obj_idx": i, "name": shape_name(i), "category": categories.get(i, ""), "loss": loss}
                 for i, loss in zip(obj_idx, losses, strict=True)]
    outliers = sorted((s for s in per_shape if s["loss"] > cfg.outlier_loss), key=lambda s: -s["loss"])
    anchor = {}
    if (out / "anchor.safetensors").is_file():
        from safetensors import safe_open

        with safe_open(out / "anchor.safetensors", "pt") as f:
            meta = f.metadata()
        anchor = {"obj_idx": int(meta["obj_idx"]), "loss": json.loads(meta["final_loss"])[0]}
    return {
        "loss": f"clamped L1 (delta {cfg.clamp_delta}) after the last step, on {cfg.eval_points} seeded "
                f"SDF samples per shape (all samples if fewer)",
        "n_shapes": len(losses), "median": float(np.median(arr)), "p95": float(np.percentile(arr, 95)),
        "mean": float(arr.mean()), "max": float(arr.max()),
        "outlier_threshold": cfg.outlier_loss, "n_outliers": len(outliers), "outliers": outliers,
        "anchor": anchor, "per_shape": per_shape,
    }


def read_log(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def write_log(path: Path, rows: list[dict], fields: tuple[str, ...] = LOG_FIELDS) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buf.getvalue())


def plot_losses(rows: list[dict], path: Path) -> None:
    """One curve per job (the anchor and every chunk of every shard): mean loss of the job's shapes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    jobs: dict[str, list[dict]] = {}
    for r in rows:
        jobs.setdefault(f"{r['shard']}/{r['job']}", []).append(r)
    if not jobs:
        return
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    for rs in jobs.values():
        ax.semilogy([float(r["epoch"]) for r in rs], [float(r["loss"]) for r in rs], lw=0.8, alpha=0.7)
    ax.set_xlabel("epoch")
    ax.set_ylabel("clamped L1 (mean over a chunk)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


# ------------------------------------------------------------------------------------------------ loading


@dataclass
class MLPRun:
    """A finished fit-mlps run: weights [N, D] (row i ↔ ``obj_idx[i]``), config, data root."""

    run_dir: Path
    weights: torch.Tensor
    obj_idx: list[int]
    config: FitMLPsConfig
    data_root: Path

    def row(self, obj_idx: int) -> torch.Tensor:
        if obj_idx not in self.obj_idx:
            raise UserError(f"shape {obj_idx}: not a fitted shape of {self.run_dir} (obj_idx "
                            f"{min(self.obj_idx)}..{max(self.obj_idx)}, {len(self.obj_idx)} shapes)")
        return self.weights[self.obj_idx.index(obj_idx)]


def load_mlp_run(run_dir: str | Path) -> MLPRun:
    """Load RUN/weights.safetensors (merging finished shards first if needed)."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    run_dir = Path(run_dir)
    config, obj_idx = load_config(run_dir)
    path = run_dir / "weights.safetensors"
    if not path.is_file():
        merge(run_dir)
    with safe_open(path, "pt") as f:
        obj_idx = [int(i) for i in f.metadata()["obj_idx"].split(",")]
    return MLPRun(run_dir=run_dir, weights=load_file(path)["weights"], obj_idx=obj_idx, config=config,
                  data_root=Path(read_json(run_dir / "config.json")["data_root"]))
