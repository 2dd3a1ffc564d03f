"""Data-parallel training of ``transition``'s network across processes (PyTorch DDP).

Every process (rank) runs the same fit: the classical half, the examples and the random draws
are identical everywhere (same seed). At each step every rank draws the cells of the whole
global batch, as a single process would, then runs the network on its own contiguous share of
the batch's examples only; :class:`torch.nn.parallel.DistributedDataParallel` averages the
gradients across ranks. Each rank's loss is the sum of its examples' losses times
``world / batch``, so the averaged gradient is the gradient of the global batch's mean loss:
the model equals a single process's with the same global batch and seed, up to the order in
which floating-point gradients are added. Validation (every 10 steps) and the per-view gate
run in full on every rank, so early stopping takes the same decisions everywhere; only rank 0
writes checkpoints and shows a progress bar.

The process group comes from ``torchrun`` (its ``RANK``/``WORLD_SIZE``/``MASTER_ADDR``
environment), or from the caller (``torch.distributed.init_process_group`` before ``fit``):
``nccl`` on GPUs (one GPU per process, ``cuda:LOCAL_RANK``), ``gloo`` on CPUs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor


@dataclass(frozen=True)
class Parallel:
    """Where this process stands among the ranks of a data-parallel fit."""

    rank: int = 0
    world: int = 1
    #: Whether the fit created the process group (and so destroys it at the end).
    owned: bool = False

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        """Rank 0: the process that writes files and shows progress."""
        return self.rank == 0

    def share(self, n: int) -> slice:
        """This rank's contiguous share of ``n`` examples (sizes differ by at most one)."""
        base, extra = divmod(n, self.world)
        start = self.rank * base + min(self.rank, extra)
        return slice(start, start + base + (self.rank < extra))

    def any(self, flag: bool) -> bool:
        """``flag`` of any rank (a collective: every rank must call it)."""
        if not self.active:
            return flag
        value = torch.tensor([float(flag)], device=_collective_device())
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item() > 0)

    def from_main(self, value: float) -> float:
        """Rank 0's ``value`` on every rank (a collective)."""
        if not self.active:
            return value
        tensor = torch.tensor([float(value)], dtype=torch.float64, device=_collective_device())
        dist.broadcast(tensor, src=0)
        return float(tensor.item())

    def wrap(self, module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        """``module`` wrapped for gradient averaging across ranks (itself in one process)."""
        if not self.active:
            return module
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=ids)

    def close(self) -> None:
        """Destroy the process group if this fit created it."""
        if self.owned and dist.is_initialized():
            dist.destroy_process_group()


def join(distributed: bool | None, device: torch.device) -> tuple[Parallel, torch.device]:
    """The ranks of this fit and the device of this process.

    ``distributed``: ``None`` joins a process group when there is one (created by the caller,
    or from ``torchrun``'s environment with ``WORLD_SIZE`` > 1), ``True`` requires one,
    ``False`` trains in this process alone.
    """
    if distributed is not None and not isinstance(distributed, bool):
        raise ValueError(
            f"transition.fit: 'distributed' must be True, False or None (got {distributed!r})."
        )
    if distributed is False:
        return Parallel(), device
    owned = False
    if not (dist.is_available() and dist.is_initialized()):
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1 or not dist.is_available():
            if distributed:
                raise ValueError(
                    "transition.fit: distributed=True but this process is not one of several "
                    "(WORLD_SIZE is not set above 1 and no process group is initialised). "
                    "Fix: launch with `torchrun --nproc_per_node=N script.py`, or call "
                    "torch.distributed.init_process_group(...) before fit."
                )
            return Parallel(), device
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        owned = True
    parallel = Parallel(dist.get_rank(), dist.get_world_size(), owned)
    if parallel.active and device.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", parallel.rank % torch.cuda.device_count()))
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    return parallel, device


def _collective_device() -> torch.device:
    """Tensors of collectives live on the GPU with nccl, on the CPU with gloo."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def scale_shared(losses: Tensor, total: int, parallel: Parallel) -> Tensor:
    """The loss whose rank-averaged gradient is that of the mean over ``total`` examples."""
    if not parallel.active:
        return losses.mean()
    return losses.sum() * (parallel.world / total)
