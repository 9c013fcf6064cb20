"""Resumable checkpoints as safetensors + JSON: no pickle anywhere, atomic, exact resume.

``RUN/ckpt/step_00001234.safetensors`` holds every tensor (model weights, optimiser moments, RNG states);
``RUN/ckpt/step_00001234.json`` holds the rest (step, optimiser hyper-parameters, user metadata) and is
written last, so a checkpoint counts as complete only once its JSON exists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save

from ..errors import UserError
from ..io import read_json, write_bytes, write_json

_STEP_RE = re.compile(r"step_(\d{8})\.json$")


@dataclass
class Checkpoint:
    step: int
    tensors: dict[str, torch.Tensor]
    meta: dict[str, Any]


def save_checkpoint(
    run_dir: str | Path,
    step: int,
    modules: dict[str, torch.nn.Module | dict[str, torch.Tensor]],
    optimizers: dict[str, torch.optim.Optimizer] | None = None,
    generators: dict[str, torch.Generator] | None = None,
    meta: dict[str, Any] | None = None,
    keep: int = 2,
) -> Path:
    """Write checkpoint ``step``; keep the newest ``keep`` ones. Returns the JSON path."""
    ckpt_dir = Path(run_dir) / "ckpt"
    tensors: dict[str, torch.Tensor] = {}
    for name, module in modules.items():
        state = module.state_dict() if isinstance(module, torch.nn.Module) else module
        for key, value in state.items():
            tensors[f"model.{name}.{key}"] = value
    opt_meta = {}
    for name, opt in (optimizers or {}).items():
        sd = opt.state_dict()
        scalars: dict[str, dict[str, Any]] = {}
        for pid, pstate in sd["state"].items():
            for key, value in pstate.items():
                if torch.is_tensor(value):
                    tensors[f"optim.{name}.{pid}.{key}"] = value
                else:
                    scalars.setdefault(str(pid), {})[key] = value
        opt_meta[name] = {"param_groups": sd["param_groups"], "scalars": scalars}
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = state
    for name, gen in (generators or {}).items():
        tensors[f"rng.gen.{name}"] = gen.get_state()
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}

    stem = ckpt_dir / f"step_{step:08d}"
    write_bytes(stem.with_suffix(".safetensors"), save(tensors))
    write_json(stem.with_suffix(".json"), {"step": step, "optimizers": opt_meta, "meta": meta or {}})
    for old in list_checkpoints(run_dir)[:-keep] if keep > 0 else []:
        old.with_suffix(".safetensors").unlink(missing_ok=True)
        old.unlink(missing_ok=True)
    return stem.with_suffix(".json")


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Complete checkpoints (JSON present), oldest first."""
    ckpt_dir = Path(run_dir) / "ckpt"
    if not ckpt_dir.is_dir():
        return []
    found = [p for p in ckpt_dir.iterdir() if _STEP_RE.search(p.name)]
    return sorted(p for p in found if p.with_suffix(".safetensors").is_file())


def load_checkpoint(run_dir: str | Path, step: int | None = None) -> Checkpoint | None:
    """Load checkpoint ``step`` (default: the newest); None if the run has none."""
    paths = list_checkpoints(run_dir)
    if step is not None:
        paths = [p for p in paths if int(_STEP_RE.search(p.name).group(1)) == step]
    if not paths:
        return None
    path = paths[-1]
    info = read_json(path)
    try:
        tensors = load_file(path.with_suffix(".safetensors"))
    except Exception as e:  # safetensors raises its own error types
        raise UserError(f"{path.with_suffix('.safetensors')}: unreadable checkpoint ({e})") from e
    return Checkpoint(step=info["step"], tensors=tensors, meta=info)


def restore(
    ckpt: Checkpoint,
    modules: dict[str, torch.nn.Module],
    optimizers: dict[str, torch.optim.Optimizer] | None = None,
    generators: dict[str, torch.Generator] | None = None,
) -> dict[str, Any]:
    """Load weights, optimiser state and RNG states from ``ckpt`` in place; return the user metadata."""
    for name, module in modules.items():
        module.load_state_dict(model_state(ckpt, name))
    for name, opt in (optimizers or {}).items():
        info = ckpt.meta["optimizers"][name]
        state: dict[int, dict[str, Any]] = {}
        prefix = f"optim.{name}."
        for key, value in ckpt.tensors.items():
            if key.startswith(prefix):
                pid, field = key[len(prefix):].split(".", 1)
                state.setdefault(int(pid), {})[field] = value
        for pid, scalars in info["scalars"].items():
            state.setdefault(int(pid), {}).update(scalars)
        opt.load_state_dict({"state": state, "param_groups": info["param_groups"]})
    torch.set_rng_state(ckpt.tensors["rng.torch"])
    if torch.cuda.is_available():
        cuda_states = [ckpt.tensors[k] for k in cuda_rng_keys(ckpt.tensors)]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)
    for name, gen in (generators or {}).items():
        gen.set_state(ckpt.tensors[f"rng.gen.{name}"])
    return ckpt.meta["meta"]


def model_state(ckpt: Checkpoint, name: str) -> dict[str, torch.Tensor]:
    """The state dict saved for module ``name`` (for inference without optimisers)."""
    prefix = f"model.{name}."
    state = {k[len(prefix):]: v for k, v in ckpt.tensors.items() if k.startswith(prefix)}
    if not state:
        raise UserError(f"checkpoint step {ckpt.step} has no module {name!r}")
    return state


def cuda_rng_keys(tensors) -> list[str]:
    """The ``rng.cuda.N`` keys of a checkpoint in device order (numeric: ``rng.cuda.2`` before ``.10``)."""
    return sorted((k for k in tensors if k.startswith("rng.cuda.")), key=lambda k: int(k.rsplit(".", 1)[1]))
