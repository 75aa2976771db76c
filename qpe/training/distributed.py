"""Data-parallel training across processes started by ``torchrun`` (DDP; gloo on CPU, NCCL on GPU).

``torchrun --nproc_per_node 2 -m qpe train CONFIG.yaml`` starts two processes; each reads ``RANK``,
``WORLD_SIZE`` and ``LOCAL_RANK`` from its environment. A single ``qpe train`` is the world of one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from qpe.inference.device import resolve_device


@dataclass(frozen=True)
class Processes:
    """This process's place among the data-parallel processes."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> Processes:
        return cls(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                   int(os.environ.get("LOCAL_RANK", 0)))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def device(self, name: str = "auto") -> torch.device:
        """The device of this process: its own GPU (by local rank) when there are GPUs, else the CPU."""
        device = resolve_device(name)
        if device.type == "cuda" and self.distributed:
            device = torch.device("cuda", self.local_rank)
            torch.cuda.set_device(device)
        return device

    def start(self, device: torch.device) -> None:
        if self.distributed and not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def global_mean(self, loss: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Rescale this process's loss (a mean over its valid pixels) so that DDP's averaged gradient is
        that of the mean over all processes' valid pixels, as in a single process with the whole batch.

        ``loss_r = S_r / n_r`` becomes ``S_r W / N`` with ``N`` the valid pixels of all W processes;
        DDP averages over W, giving ``sum_r S_r / N``.
        """
        if not self.distributed:
            return loss
        valid = mask.sum().to(loss.dtype)
        total = valid.detach().clone()
        dist.all_reduce(total)
        return loss * valid * self.world / total.clamp(min=1.0)

    def stop(self) -> None:
        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()
