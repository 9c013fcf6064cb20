"""Stage orchestration for ``img2sdf prepare`` (paper §2.1-2.2): workers, shards, resume, manifest.

Per shape, the stages run in the order of :data:`STAGES`; each writes its output atomically, then the
shape's status file ``status/obj_NNNN.json`` (a :class:`ShapeEntry`: a stage is recorded in ``timings``
only once its output is complete). A stage counts as done when both its output and its timing exist, so a
kill -9 at any moment costs at most the stage in flight. Re-running a stage invalidates the later ones.

Sharding: ``--shard i/n`` takes the shapes with ``obj_idx % n == i`` (interleaved, so every shard gets a
mix of categories and of slow and fast shapes). Every shard writes the full catalogue into manifest.json
first (same order for all) and, when done, re-assembles manifest.json from all status files under a file
lock, so the last shard to finish leaves a complete manifest; a plain re-run also rebuilds it.
Shapes that failed are not retried unless ``--retry-failed``. A worker process that dies (segfault, out of
memory) costs its shape a strike; crash suspects are retried one at a time, and a second death marks the
shape failed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import time
import zlib
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

from ..errors import UserError
from ..io import read_json, write_json
from .sources import ShapeRecord, load_shape
from .store import Manifest, ShapeEntry, ShapeStore, shape_name
from .watertight import ShapeError, WatertightConfig, make_watertight

STAGES = ("watertight", "sdf", "render")
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass(frozen=True)
class PrepareConfig:
    stages: tuple[str, ...] = STAGES
    points: int = 200_000
    seed: int = 0
    watertight: WatertightConfig = WatertightConfig()
    render: dict = field(default_factory=dict)  # RenderConfig fields (views, resolution, distance)
    workers: int = 1
    shard: tuple[int, int] = (0, 1)
    retry_failed: bool = False


@dataclass(frozen=True)
class ShapeTask:
    root: str
    obj_idx: int
    record: ShapeRecord
    cfg: PrepareConfig
    fetch_error: str = ""


def parse_stages(text: str) -> tuple[str, ...]:
    names = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in names if s not in STAGES]
    if unknown or not names:
        raise UserError(f"--stages {text!r}: unknown stage(s) {unknown}; choose from {','.join(STAGES)}")
    return tuple(s for s in STAGES if s in names)  # always in dependency order


def parse_shard(text: str) -> tuple[int, int]:
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        i, n = -1, 0
    if not 0 <= i < n:
        raise UserError(f"--shard {text!r}: expected i/n with 0 <= i < n, e.g. 0/4")
    return i, n


def status_path(store: ShapeStore, obj_idx: int) -> Path:
    return store.root / "status" / f"{shape_name(obj_idx)}.json"


def prepare(root: str | Path, source, cfg: PrepareConfig) -> tuple[Manifest, list[ShapeEntry]]:
    """Run the stages over this shard's shapes. Returns (assembled manifest, this shard's entries)."""
    store = ShapeStore(root)
    records = source.records()
    _init_manifest(store, records, source.name, cfg)
    i, n = cfg.shard
    mine = list(range(i, len(records), n))
    todo = [k for k in mine if not _finished(store, k, cfg)]
    fetched, errors = source.fetch([records[k] for k in todo])
    tasks = [ShapeTask(str(store.root), k, rec, cfg, errors.get(rec.uid, ""))
             for k, rec in zip(todo, fetched, strict=True)]
    skipped = len(mine) - len(todo)
    if skipped:
        _log(store, f"resume: {skipped} of {len(mine)} shapes of shard {i}/{n} already done")
    _run(store, tasks, cfg.workers)
    manifest = assemble_manifest(store, records, source.name, cfg)
    return manifest, [manifest.shapes[k] for k in mine]


def process_shape(task: ShapeTask) -> ShapeEntry:
    """Run the pending stages of one shape; never raises for a bad shape (it is recorded as failed)."""
    store = ShapeStore(task.root)
    entry = _load_entry(store, task)
    if entry.status == "failed":
        if not task.cfg.retry_failed:
            return entry
        entry.status, entry.reason = "pending", ""
    _remove_stale_tmp(store, task.obj_idx)
    rerun = False
    for stage in task.cfg.stages:
        if not rerun and _stage_done(store, entry, stage):
            continue
        if stage != STAGES[0] and not _stage_done(store, entry, STAGES[0]):
            # Not a failure of the shape: it stays pending until the watertight stage has run.
            entry.reason = f"{stage}: needs the {STAGES[0]} stage first"
            write_json(status_path(store, task.obj_idx), dataclasses.asdict(entry))
            return entry
        rerun = True
        for later in STAGES[STAGES.index(stage):]:
            entry.timings.pop(later, None)
        t0 = time.perf_counter()
        try:
            _STAGE_FUNCS[stage](store, entry, task)
        except Exception as e:  # a bad shape (or a bug it triggers) must never stop the batch
            kind = "" if isinstance(e, ShapeError | UserError) else f"{type(e).__name__}: "
            entry.status, entry.reason = "failed", f"{stage}: {kind}{' '.join(str(e).split())[:300]}"
            write_json(status_path(store, task.obj_idx), dataclasses.asdict(entry))
            return entry
        entry.timings[stage] = round(time.perf_counter() - t0, 3)
        entry.status, entry.reason = "ok", ""
        write_json(status_path(store, task.obj_idx), dataclasses.asdict(entry))
    return entry


def assemble_manifest(store: ShapeStore, records: list[ShapeRecord], source_name: str,
                      cfg: PrepareConfig) -> Manifest:
    """manifest.json from the catalogue plus every status file, under a lock (shards may finish together)."""
    store.root.mkdir(parents=True, exist_ok=True)
    with open(store.root / ".manifest.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        shapes = []
        for k, rec in enumerate(records):
            path = status_path(store, k)
            shapes.append(ShapeEntry(**read_json(path)) if path.is_file() else _new_entry(k, rec))
        manifest = Manifest(shapes=shapes, source=source_name, info=_info(cfg))
        store.save_manifest(manifest)
    return manifest


def _init_manifest(store: ShapeStore, records: list[ShapeRecord], source_name: str,
                   cfg: PrepareConfig) -> None:
    if store.exists():
        old = store.load_manifest()
        if [s.uid for s in old.shapes] != [r.uid for r in records]:
            raise UserError(
                f"{store.root}: holds a different dataset ({len(old.shapes)} shapes from {old.source!r}); "
                "use a new output folder, or the same source arguments as before"
            )
        return
    assemble_manifest(store, records, source_name, cfg)


def _info(cfg: PrepareConfig) -> dict:
    from .sdf import NEAR_SIGMAS

    return {
        "stages_requested": list(cfg.stages),
        "sdf": {"points": cfg.points, "near_fraction": 0.5, "near_sigmas": list(NEAR_SIGMAS),
                "uniform_box": [-1.0, 1.0]},
        "watertight": dataclasses.asdict(cfg.watertight),
        "normalisation": "unit bounding sphere about the bounding-box centre: v' = (v - center) * scale",
        "sharding": "shard i/n holds obj_idx % n == i",
    }


def _new_entry(obj_idx: int, rec: ShapeRecord) -> ShapeEntry:
    return ShapeEntry(obj_idx=obj_idx, uid=rec.uid, category=rec.category, split=rec.split, source=rec.source)


def _load_entry(store: ShapeStore, task: ShapeTask) -> ShapeEntry:
    path = status_path(store, task.obj_idx)
    entry = ShapeEntry(**read_json(path)) if path.is_file() else _new_entry(task.obj_idx, task.record)
    entry.source = task.record.source
    return entry


def _finished(store: ShapeStore, obj_idx: int, cfg: PrepareConfig) -> bool:
    path = status_path(store, obj_idx)
    if not path.is_file():
        return False
    entry = ShapeEntry(**read_json(path))
    if entry.status == "failed":
        return not cfg.retry_failed
    return all(_stage_done(store, entry, s) for s in cfg.stages)


def _stage_done(store: ShapeStore, entry: ShapeEntry, stage: str) -> bool:
    outputs = {
        "watertight": store.mesh_path(entry.obj_idx),
        "sdf": store.sdf_path(entry.obj_idx),
        "render": store.render_dir(entry.obj_idx) / "cameras.json",
    }
    return stage in entry.timings and outputs[stage].is_file()


def _remove_stale_tmp(store: ShapeStore, obj_idx: int) -> None:
    """Delete temporaries a killed run left for this shape (only this shard touches this shape's files)."""
    name = shape_name(obj_idx)
    patterns = [(store.root / d, f".{name}.*.tmp-*") for d in ("meshes", "shapes", "status")]
    patterns.append((store.render_dir(obj_idx), ".*.tmp-*"))
    for folder, pattern in patterns:
        for tmp in folder.glob(pattern) if folder.is_dir() else ():
            tmp.unlink(missing_ok=True)


def _stage_watertight(store: ShapeStore, entry: ShapeEntry, task: ShapeTask) -> None:
    from ..io import write_mesh

    if task.fetch_error:
        raise ShapeError(task.fetch_error)
    mesh, transform, info = make_watertight(load_shape(task.record), task.cfg.watertight)
    write_mesh(store.mesh_path(task.obj_idx), mesh)
    entry.transform = transform
    entry.extra["watertight"] = info


def _stage_sdf(store: ShapeStore, entry: ShapeEntry, task: ShapeTask) -> None:
    from ..io import write_npz
    from .sdf import sample_sdf

    mesh = store.load_mesh(task.obj_idx)
    seed = zlib.crc32(f"{task.cfg.seed}:{entry.uid}".encode())  # per shape, independent of shard and order
    points, sdf = sample_sdf(mesh, task.cfg.points, seed=seed, solid=True)  # make_watertight's output
    write_npz(store.sdf_path(task.obj_idx), points=points, sdf=sdf)
    entry.extra["sdf"] = {"points": len(points), "seed": seed,
                          "inside_fraction": round(float((sdf < 0).mean()), 4)}


def _stage_render(store: ShapeStore, entry: ShapeEntry, task: ShapeTask) -> None:
    from .render import RenderConfig, render_shape

    render_shape(store, task.obj_idx, RenderConfig(**task.cfg.render))


_STAGE_FUNCS = {"watertight": _stage_watertight, "sdf": _stage_sdf, "render": _stage_render}


def _run(store: ShapeStore, tasks: list[ShapeTask], workers: int) -> None:
    from tqdm import tqdm

    bar = tqdm(total=len(tasks), desc="prepare", unit="shape", dynamic_ncols=True)
    counts = {"ok": 0, "failed": 0, "pending": 0}

    def report(entry: ShapeEntry) -> None:
        counts[entry.status] += 1
        if entry.status == "failed":
            _log(store, f"{entry.name} {entry.uid}: failed: {entry.reason}", echo=bar.write)
        bar.set_postfix(counts)
        bar.update()

    if workers <= 1:
        for task in tasks:
            report(process_shape(task))
    else:
        _run_pool(store, tasks, workers, report)
    bar.close()


def _run_pool(store: ShapeStore, tasks: list[ShapeTask], workers: int, report, work=process_shape) -> None:
    """Run ``work`` over the tasks in ``workers`` spawned processes, surviving workers that die."""
    queue, suspects, strikes, n = list(reversed(tasks)), [], {}, workers
    while queue or suspects:
        spawn = get_context("spawn")  # fork would copy the parent's BLAS thread pools
        with _single_threaded_children(), ProcessPoolExecutor(workers, mp_context=spawn) as pool:
            running = {}
            try:
                while queue or suspects or running:
                    while (suspects or queue) and len(running) < _capacity(running, suspects, strikes, n):
                        source = suspects or queue
                        running[pool.submit(work, source[-1])] = source[-1]
                        source.pop()  # only after a successful submit: a broken pool must not lose it
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    for fut in done:
                        report(fut.result())
                        running.pop(fut)
            except BrokenProcessPool:
                for t in running.values():
                    strikes[t.obj_idx] = strikes.get(t.obj_idx, 0) + 1
                    if strikes[t.obj_idx] >= 2:
                        report(_mark_crashed(store, t))
                    else:
                        suspects.append(t)


def _capacity(running: dict, suspects: list, strikes: dict, n: int) -> int:
    """Crash suspects run alone, so that a second death is surely theirs."""
    if suspects or any(strikes.get(t.obj_idx) for t in running.values()):
        return 1
    return n


def _mark_crashed(store: ShapeStore, task: ShapeTask) -> ShapeEntry:
    entry = _load_entry(store, task)
    entry.status, entry.reason = "failed", "worker process died twice on this shape (crash or out of memory)"
    write_json(status_path(store, task.obj_idx), dataclasses.asdict(entry))
    return entry


@contextlib.contextmanager
def _single_threaded_children():
    """Workers inherit one BLAS/OpenMP/torch thread each: N workers on N cores, no oversubscription."""
    saved = {k: os.environ.get(k) for k in THREAD_ENV}
    os.environ.update({k: "1" for k in THREAD_ENV})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _log(store: ShapeStore, line: str, echo=print) -> None:
    echo(line)
    store.root.mkdir(parents=True, exist_ok=True)
    with open(store.root / "prepare.log", "a", encoding="utf-8") as f:
        f.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {line}\n")
