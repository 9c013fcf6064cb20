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
import fcntl
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..data.store import ShapeStore, shape_name
from ..devices import choose_device, set_threads
from ..errors import UserError
from ..io import write_bytes, write_json
from ..models.mlp import StackedMLPs, batched_forward, init_weights
from ..runs.checkpoint import load_checkpoint, restore, save_checkpoint
from ..runs.configs import FitMLPsConfig, make_config
from ..runs.load import finished_rows, stack_rows
from ..runs.run import Run, plot_loss, read_log, write_log
from .fit import clamped_l1, load_samples, lr_scale, select_shapes

LOG_FIELDS = ("job", "step", "epoch", "lr", "loss", "loss_max", "seconds")


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
            write_log(job.work / "log.csv", rows, LOG_FIELDS)
    weights = model.weights.detach()
    return weights.cpu(), final_losses(weights, samples, job.obj_idx, cfg)


# ---------------------------------------------------------------------------------------------- the run


def fit_mlps(data_root: str | Path, out: str | Path, config: FitMLPsConfig | None = None,
             resume: bool = False, shard: tuple[int, int] = (0, 1), device: str | None = None,
             progress: bool = True) -> Path:
    """Fit one MLP per ``config.split`` shape of ``data_root`` (this shard's share) into run ``out``;
    merges the shards into weights.safetensors once all are done."""
    out = Path(out)
    run = _start_run(Path(data_root), out, config, resume, shard)
    config, obj_idx = run.config, run.obj_idx
    set_threads(config.threads)
    dev = choose_device(0, device)
    store = ShapeStore(run.data_root)
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
        write_log(work / "log.csv", rows, LOG_FIELDS)
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
            write_log(job.work / "log.csv", rows, LOG_FIELDS)
            save_rows(path, weights, [anchor], losses)
    from safetensors.torch import load_file

    return load_file(path)["weights"][0]


def _start_run(data_root: Path, out: Path, config: FitMLPsConfig | None, resume: bool,
               shard: tuple[int, int]) -> Run:
    i, n = shard
    if not 0 <= i < n:
        raise UserError(f"--shard {i}/{n}: need 0 <= i < n")
    # the shards of one run share its config.json: a later shard joins it under the resume rule
    resume = resume or (n > 1 and (out / "config.json").is_file())
    if not resume:
        config = config or make_config("fit-mlps", "paper")
    obj_idx = [] if resume else select_shapes(data_root, config.split, config.max_shapes)
    run = Run.start(out, "fit-mlps", config, data_root, obj_idx, resume)
    cfg = run.config
    if cfg.init == "anchor" and cfg.anchor_shape >= 0 and cfg.anchor_shape not in run.obj_idx:
        raise UserError(f"anchor_shape={cfg.anchor_shape} is not an ok {cfg.split!r} shape")
    run.save()
    return run


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


def complete(out: Path) -> bool:
    return set(Run.open(out, "fit-mlps").obj_idx) <= set(finished_rows(out))


def merge(out: str | Path) -> Path:
    """Write RUN/weights.safetensors [N, D] (rows in config.json's obj_idx order), losses.json, log.csv and
    loss.png from the finished chunks of every shard."""
    from safetensors.torch import save

    out = Path(out)
    run = Run.open(out, "fit-mlps")
    cfg, obj_idx = run.config, run.obj_idx
    with _locked(out / ".merge.lock"):
        weights = stack_rows(out, obj_idx)
        found = finished_rows(out)
        write_bytes(out / "weights.safetensors",
                    save({"weights": weights}, metadata={"obj_idx": ",".join(map(str, obj_idx))}))
        write_json(out / "losses.json", loss_summary(out, cfg, obj_idx, [found[i][2] for i in obj_idx]))
        logs = []
        for log in sorted((out / "shards").glob("*/log.csv")):
            logs += [{"shard": log.parent.name, **r} for r in read_log(log)]
        write_log(out / "log.csv", logs, ("shard",) + LOG_FIELDS)
        for r in logs:
            r["curve"] = f"{r['shard']}/{r['job']}"
        plot_loss(out / "loss.png", logs, {"loss": "mean over a chunk"}, x="epoch", group="curve",
                  ylabel="clamped L1 (mean over a chunk)")
    return out / "weights.safetensors"


def loss_summary(out: Path, cfg: FitMLPsConfig, obj_idx: list[int], losses: list[float]) -> dict:
    categories = {}
    with contextlib.suppress(UserError, OSError):
        store = ShapeStore(Run.open(out, "fit-mlps").data_root)
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
