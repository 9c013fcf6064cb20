"""A run folder and its one resume rule.

``RUN/config.json`` has one schema for every trainer::

    {"kind": "fit" | "train-dit" | "fit-mlps", "config": {the trainer's resolved config},
     "data_root": "/abs/prepared/store", "obj_idx": [manifest rows, in row order], ...facts of the kind}

(facts: ``world_size``; a DiT run's ``decoder_run``, ``encoder``, ``views``, ``pool_groups``). ``log.csv``
and ``loss.png`` are written by :func:`write_log` and :func:`plot_loss`; checkpoints live in ``RUN/ckpt/``
(:mod:`img2sdf.runs.checkpoint`).

The resume rule (:meth:`Run.start`): a resume takes the run's own settings unless new ones are given; a
difference in a field the kind declares safe (``configs.KINDS[kind].safe_on_resume``: more epochs/steps,
log/checkpoint intervals, threads, amp) is applied with a printed note; any other difference stops with one
line listing exactly what differs.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import from_dict, to_dict
from ..errors import UserError
from ..io import atomic_path, read_json, write_json, write_text
from .configs import kind as run_kind


@dataclass
class Run:
    path: Path
    kind: str
    config: Any  # the kind's config dataclass
    data_root: Path
    obj_idx: list[int]
    facts: dict = field(default_factory=dict)  # world_size, provenance of the kind

    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    def to_json(self) -> dict:
        return {"kind": self.kind, "config": to_dict(self.config), "data_root": str(self.data_root),
                "obj_idx": list(self.obj_idx), **self.facts}

    def save(self) -> None:
        write_json(self.config_path, self.to_json())

    @classmethod
    def open(cls, path: str | Path, kind: str | None = None) -> Run:
        """Read ``path/config.json`` (of ``kind`` if given); a missing or foreign one is a one-line error."""
        path = Path(path)
        cfg_path = path / "config.json"
        if not cfg_path.is_file():
            raise UserError(f"{path}: not a run folder (no config.json)")
        saved = _upgrade(read_json(cfg_path))
        if kind is not None and saved.get("kind") != kind:
            raise UserError(f"{path}: a {saved.get('kind')!r} run, not a {kind!r} run")
        saved = dict(saved)
        name = saved.pop("kind")
        config = from_dict(run_kind(name).config, saved.pop("config"))
        return cls(path, name, config, Path(saved.pop("data_root")), [int(i) for i in saved.pop("obj_idx")],
                   saved)

    @classmethod
    def start(cls, path: str | Path, kind: str, config: Any, data_root: str | Path, obj_idx: list[int],
              resume: bool, facts: dict | None = None, announce: bool = True) -> Run:
        """A new run for ``path``, or with ``resume`` the run already there under the one resume rule;
        nothing is written (the caller saves it: under torchrun rank 0 only, once every rank has checked).

        ``config`` None on resume means "the run's own settings"; ``obj_idx`` of a resumed run are its own.
        ``announce`` prints the note on the changes a resume applies (False on other torchrun ranks)."""
        path = Path(path)
        new = cls(path, kind, config, Path(data_root).resolve(), list(obj_idx), dict(facts or {}))
        if not resume:
            if new.config_path.is_file():
                raise UserError(f"{path} already holds a run; pass --resume to continue it or choose "
                                f"another --out")
            return new
        if not new.config_path.is_file():
            raise UserError(f"--resume: {path} has no config.json; start the run without --resume")
        old = cls.open(path, kind)
        if config is None:
            new.config = old.config
        changed = resume_changes(old, new)
        unsafe = {k: v for k, v in changed.items() if k not in run_kind(kind).safe_on_resume}
        if unsafe:
            listed = "; ".join(f"{k}: {a!r} → {b!r}" for k, (a, b) in unsafe.items())
            raise UserError(f"--resume {path}: these settings differ from the run's and cannot change "
                            f"mid-run: {listed}; resume without them or start a new --out")
        if changed and announce:
            listed = ", ".join(f"{k} {a!r} → {b!r}" for k, (a, b) in changed.items())
            stretch = changed.keys() & {"epochs", "steps"}
            note = " (the cosine LR schedule stretches to the new length from here on)" if stretch else ""
            print(f"{kind}: resume: applying {listed}{note}", flush=True)
        new.obj_idx = old.obj_idx
        return new

    # log and plot -----------------------------------------------------------------------------
    def read_log(self, upto: int | None = None) -> list[dict]:
        return read_log(self.path / "log.csv", upto)

    def write_log(self, rows: list[dict], fields: tuple[str, ...]) -> None:
        write_log(self.path / "log.csv", rows, fields)


def resume_changes(old: Run, new: Run) -> dict[str, tuple[Any, Any]]:
    """Dotted key → (run's value, new value) for every setting and fact that differs."""
    a = {**_flatten(to_dict(old.config)), "data_root": str(old.data_root), **old.facts}
    b = {**_flatten(to_dict(new.config)), "data_root": str(new.data_root), **new.facts}
    keys = list(a) + [k for k in b if k not in a]
    return {k: (a.get(k), b.get(k)) for k in keys if _norm(a.get(k)) != _norm(b.get(k))}


def _norm(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _upgrade(saved: dict) -> dict:
    """config.json files written before the one schema: ``fit`` / ``train`` / ``fit_mlps`` keys, ``data``."""
    if "config" in saved:
        return saved
    saved = dict(saved)
    for key, name in (("fit", "fit"), ("train", "train-dit"), ("fit_mlps", "fit-mlps")):
        if key in saved:
            saved["kind"], saved["config"] = name, saved.pop(key)
            break
    else:
        raise UserError("config.json: not written by img2sdf fit, train-dit or fit-mlps")
    if "data" in saved:
        saved["data_root"] = saved.pop("data")
    if "preset" in saved:  # the preset's name lived beside the config, not in it
        saved["config"] = {"preset": saved["preset"], **saved["config"]}
    saved.pop("preset", None)
    saved.pop("n_shapes", None)
    saved.pop("params_per_shape", None)
    return saved


def read_log(path: Path, upto: int | None = None) -> list[dict]:
    """Rows of ``log.csv`` (values as strings) up to step ``upto``; later rows are work lost in a kill."""
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return rows if upto is None else [r for r in rows if float(r["step"]) <= upto]


def write_log(path: Path, rows: list[dict], fields: tuple[str, ...]) -> None:
    """The one CSV writer of training logs (floats with 6 significant digits)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    writer.writerows({k: f"{v:.6g}" if isinstance(v, float) else v for k, v in r.items()} for r in rows)
    write_text(path, buf.getvalue())


def plot_loss(path: Path, rows: list[dict], curves: dict[str, str], x: str = "step",
              group: str | None = None, ylabel: str = "loss", title: str = "") -> None:
    """The one loss plotter: ``curves`` maps a log column to its legend label, on a log y axis; with
    ``group``, one curve per distinct value of that column (e.g. every job of a fit-mlps run)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not rows:
        return
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(str(r[group]) if group else "", []).append(r)
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    for column, label in curves.items():
        for i, part in enumerate(groups.values()):
            ax.semilogy([float(r[x]) for r in part], [float(r[column]) for r in part], lw=0.9,
                        alpha=0.7 if group else 0.9, label=None if (group and i) else label)
    ax.set_xlabel(x)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if not group or len(curves) > 1:
        ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)

