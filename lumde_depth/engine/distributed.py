"""Multi-process training under ``torchrun``: process group, device, sampler, rank-0-only writes.

``torchrun --nproc_per_node=N -m lumde_depth.cli.main train --config FILE`` sets ``RANK``,
``LOCAL_RANK`` and ``WORLD_SIZE``; without them everything runs in one process through the same
code path (a world of one). The backend is nccl on GPUs and gloo on CPUs.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.distributed as dist
from torch.utils.data import Dataset, DistributedSampler

from lumde_depth.config import ConfigError


@dataclass(frozen=True)
class World:
    rank: int
    local_rank: int
    size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Only the main process writes checkpoints, logs, model files and progress bars."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    """'auto' -> this process's GPU when there is one, else the CPU; 'cuda' without a GPU is an error."""
    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ConfigError("device 'cuda' requested but no GPU is visible; set device=cpu or device=auto")
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def init_world(device: str = "auto") -> World:
    """Join the torchrun process group when launched by torchrun, else a world of one."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    dev = pick_device(device, local_rank)
    if size > 1 and not dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return World(rank=rank, local_rank=local_rank, size=size, device=dev)


def shutdown(world: World) -> None:
    if world.distributed and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def barrier(world: World) -> None:
    if world.distributed:
        dist.barrier()


def reduce_mean(values: dict[str, float], world: World) -> dict[str, float]:
    """Average logged scalars over the processes (a no-op in a world of one)."""
    if not world.distributed or not values:
        return values
    keys = sorted(values)
    tensor = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=world.device)
    dist.all_reduce(tensor)
    return dict(zip(keys, (tensor / world.size).tolist()))


def weights_checksum(model: torch.nn.Module) -> float:
    """A float64 fingerprint of all parameters and buffers (equal weights give equal sums)."""
    with torch.no_grad():
        return float(sum(t.detach().double().abs().sum() + t.detach().double().sum()
                         for t in model.state_dict().values() if t.is_floating_point()))


def broadcast_buffers(model: torch.nn.Module, world: World) -> None:
    """Give every rank rank 0's buffers (BatchNorm running statistics): DistributedDataParallel
    broadcasts them before each forward, but the last forward leaves each rank with its own batch's
    update; rank 0's are the ones written to the model file."""
    if world.distributed:
        for buffer in model.buffers():
            dist.broadcast(buffer.data, src=0)


def check_same_weights(model: torch.nn.Module, world: World) -> list[float]:
    """Every rank's weights fingerprint; raises when the replicas drifted apart."""
    local = weights_checksum(model)
    if not world.distributed:
        return [local]
    gathered = [None] * world.size
    dist.all_gather_object(gathered, local)
    if len(set(gathered)) != 1:
        raise RuntimeError(f"DistributedDataParallel replicas differ after training: checksums {gathered}")
    return gathered


class ResumableSampler(torch.utils.data.Sampler[int]):
    """This rank's share of a seeded per-epoch permutation, starting ``skip`` samples in.

    The permutation depends only on (seed, epoch) (DistributedSampler's rule), so a resumed run
    sees exactly the batches the interrupted one would have seen.
    """

    def __init__(self, dataset: Dataset, world: World, seed: int, shuffle: bool = True) -> None:
        self.inner = DistributedSampler(dataset, num_replicas=world.size, rank=world.rank, shuffle=shuffle,
                                        seed=seed, drop_last=True)
        self.skip = 0

    def set_position(self, epoch: int, skip: int) -> None:
        self.inner.set_epoch(epoch)
        self.skip = skip

    def __iter__(self) -> Iterator[int]:
        return iter(list(self.inner)[self.skip:])

    def __len__(self) -> int:
        return len(self.inner) - self.skip
