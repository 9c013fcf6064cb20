"""One device story for every command: ``--device auto|cpu|cuda|cuda:N|mps``, ``--amp``, threads.

:func:`choose_device` is the only resolver (trainers, encoders, generation, evaluation and the server all
use it); :func:`autocast` and :func:`grad_scaler` are the mixed-precision switches of the trainers.
"""

from __future__ import annotations

import contextlib

import torch

from .errors import UserError

AMP_MODES = ("off", "bf16", "fp16")


def choose_device(local_rank: int = 0, device: str | None = None) -> torch.device:
    """Resolve ``--device auto|cpu|cuda|cuda:N|mps`` for this process.

    ``auto`` (or None) is this rank's GPU (``cuda:LOCAL_RANK``) when CUDA is available, else the CPU; a bare
    ``cuda`` also takes the rank's GPU, so torchrun ranks never share one. Asking for a device this machine
    lacks is a one-line :class:`UserError` naming what is missing. On CUDA, TF32 matmuls are enabled."""
    spec = (str(device) if device is not None else "auto").strip().lower()
    if spec == "auto":
        dev = torch.device("cuda", local_rank % torch.cuda.device_count()) if torch.cuda.is_available() \
            else torch.device("cpu")
    elif spec == "cpu":
        dev = torch.device("cpu")
    elif spec == "mps":
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise UserError("--device mps: Apple's MPS backend is not available in this torch build/machine")
        dev = torch.device("mps")
    elif spec == "cuda" or spec.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise UserError(f"--device {spec}: no CUDA device here (torch {torch.__version__} "
                            f"{'has no CUDA support' if torch.version.cuda is None else 'sees no GPU'}); "
                            "use --device cpu, or install a CUDA build of torch on a GPU machine")
        count = torch.cuda.device_count()
        index = local_rank % count if spec == "cuda" else int(spec[5:]) if spec[5:].isdigit() else -1
        if not 0 <= index < count:
            raise UserError(f"--device {spec}: this machine has {count} CUDA device(s), "
                            f"cuda:0 to cuda:{count - 1}")
        dev = torch.device("cuda", index)
    else:
        raise UserError(f"--device {device!r}: choose auto, cpu, cuda, cuda:N or mps")
    if dev.type == "cuda":
        # TF32 tensor cores for float32 matmuls/convolutions: ~an order of magnitude faster on Ampere+
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return dev


def set_threads(threads: int, processes: int = 1) -> None:
    """torch's intra-op threads: ``threads`` if > 0, else the cores shared out over ``processes`` (torchrun
    ranks on one machine; one process keeps torch's default). The one meaning of every ``threads`` setting.
    On a loaded machine, fewer threads than cores avoid OpenMP spin-waiting (measured here: a 2-thread fit
    ran 20x slower than a 1-thread one under load)."""
    import os

    if threads > 0:
        torch.set_num_threads(threads)
    elif processes > 1:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // processes))


def check_amp(mode: str) -> str:
    if mode not in AMP_MODES:
        raise UserError(f"amp={mode!r}: choose one of {', '.join(AMP_MODES)}")
    return mode


def autocast(device: torch.device, mode: str):
    """The forward pass's mixed-precision context: bf16 or fp16 autocast, or nothing for ``off``."""
    if check_amp(mode) == "off":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if mode == "bf16" else torch.float16)


def grad_scaler(device: torch.device, mode: str) -> torch.amp.GradScaler:
    """Loss scaling for fp16 (its gradients underflow without it); a disabled pass-through otherwise."""
    return torch.amp.GradScaler(device.type, enabled=check_amp(mode) == "fp16")


def to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Host → device copy that does not block the host on CUDA (pinned source, ``non_blocking``)."""
    if device.type == "cuda" and tensor.device.type == "cpu":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)
