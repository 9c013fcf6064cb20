"""torchrun / DDP helpers shared by every training loop.

``torchrun --nproc_per_node K -m img2sdf.cli.main fit ...`` sets RANK / WORLD_SIZE / LOCAL_RANK /
MASTER_ADDR / MASTER_PORT; :func:`init_distributed` reads them (a plain ``python`` run is world size 1 and
never touches ``torch.distributed``). Backend: NCCL on CUDA, gloo on CPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def choose_device(local_rank: int = 0, device: str | None = None) -> torch.device:
    """Resolve ``--device auto|cpu|cuda|cuda:N|mps`` for this process.

    ``auto`` (or None) is this rank's GPU (``cuda:LOCAL_RANK``) when CUDA is available, else the CPU; a bare
    ``cuda`` also takes the rank's GPU, so torchrun ranks never share one. Asking for a device this machine
    lacks is a one-line :class:`UserError` naming what is missing."""
    from ..errors import UserError

    spec = (device or "auto").strip().lower()
    if spec == "auto":
        return torch.device("cuda", local_rank % torch.cuda.device_count()) if torch.cuda.is_available() \
            else torch.device("cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "mps":
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise UserError("--device mps: Apple's MPS backend is not available in this torch build/machine")
        return torch.device("mps")
    if spec == "cuda" or spec.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise UserError(f"--device {spec}: no CUDA device here (torch {torch.__version__} "
                            f"{'has no CUDA support' if torch.version.cuda is None else 'sees no GPU'}); "
                            "use --device cpu, or install a CUDA build of torch on a GPU machine")
        count = torch.cuda.device_count()
        index = local_rank % count if spec == "cuda" else int(spec[5:]) if spec[5:].isdigit() else -1
        if not 0 <= index < count:
            raise UserError(f"--device {spec}: this machine has {count} CUDA device(s), "
                            f"cuda:0 to cuda:{count - 1}")
        return torch.device("cuda", index)
    raise UserError(f"--device {device!r}: choose auto, cpu, cuda, cuda:N or mps")


def set_threads(threads: int) -> None:
    """Set torch's intra-op threads if ``threads`` > 0. On a loaded machine, fewer threads than cores avoid
    OpenMP spin-waiting (measured here: a 2-thread fit ran 20x slower than a 1-thread one under load)."""
    if threads > 0:
        torch.set_num_threads(threads)


def init_distributed(device: str | None = None) -> DistInfo:
    """Join the process group described by the torchrun environment (no-op for a single process)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = choose_device(local_rank, device)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo", rank=rank,
                                world_size=world_size)
    return DistInfo(rank=rank, world_size=world_size, local_rank=local_rank, device=dev)


def is_main() -> bool:
    return not dist.is_initialized() or dist.get_rank() == 0


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def all_reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """Average ``tensor`` over ranks (a copy; the input is left alone)."""
    out = tensor.detach().clone()
    if dist.is_initialized():
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        out /= dist.get_world_size()
    return out


def wrap_ddp(module: torch.nn.Module, info: DistInfo) -> torch.nn.Module:
    """DDP-wrap ``module`` when running distributed; gradients of every parameter are all-reduced."""
    if not info.distributed:
        return module
    from torch.nn.parallel import DistributedDataParallel

    ids = [info.device.index] if info.device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids)


def cleanup() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
