"""Several processes (GPUs or CPU workers) extracting one run's features, on HF accelerate.

``accelerate launch --num_processes N -m avsync_bench.cli score|extract …`` starts N processes;
:meth:`Distributed.from_environment` joins them (accelerate's ``PartialState``: NCCL on GPUs,
gloo with ``--cpu``). Clip i (in evaluation order) goes to rank ``i mod N``, without padding (no
clip is extracted twice, unlike a padding ``DistributedSampler``); each rank extracts its share,
the features are gathered to rank 0 and put back in order, and rank 0 alone writes the cache and
the results. Every clip's features are computed with the same network batch shape whatever N
(:func:`avsync_bench.features.base.forward_fixed`), so the values do not depend on N.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

__all__ = ["Distributed", "shard_indices", "merge_shards"]


@dataclass
class Distributed:
    """This process's place in the run: ``rank`` in ``0..world_size-1``; ``local_rank`` picks
    the GPU on a multi-GPU machine."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """True on rank 0 (the process that writes the cache and the results)."""
        return self.rank == 0

    @classmethod
    def from_environment(cls) -> Distributed:
        """The single-process default, or the launched group when ``WORLD_SIZE`` > 1 (set by
        ``accelerate launch`` / ``torchrun``) or a process group already exists."""
        if int(os.environ.get("WORLD_SIZE", "1")) <= 1 and not _initialized():
            return cls()
        if _initialized():
            rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
            return cls(rank, world, int(os.environ.get("LOCAL_RANK", rank)))
        from accelerate import PartialState

        state = PartialState()
        return cls(state.process_index, state.num_processes, state.local_process_index)

    def device(self, device: str) -> str:
        """``cuda`` becomes this rank's GPU (``cuda:<local_rank>``) in a multi-process run."""
        if self.world_size > 1 and device == "cuda":
            return f"cuda:{self.local_rank}"
        return device

    def gather(self, obj) -> list | None:
        """Every rank's ``obj`` (picklable) as a list on rank 0, in rank order; None elsewhere."""
        if self.world_size == 1:
            return [obj]
        out = [None] * self.world_size if self.is_main else None
        torch.distributed.gather_object(obj, out, dst=0)
        return out

    def broadcast(self, obj):
        """Rank 0's ``obj`` on every rank."""
        if self.world_size == 1:
            return obj
        box = [obj if self.is_main else None]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]


def _initialized() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def shard_indices(n: int, rank: int, world_size: int) -> list[int]:
    """Global indices of the ``n`` clips that ``rank`` extracts: ``i`` with ``i mod N = rank``."""
    return list(range(rank, n, world_size))


def merge_shards(parts: list[dict[int, object]], n: int) -> list:
    """Rank results ``{global index: value}`` → the ``n`` values in index order.

    Raises:
        RuntimeError: an index missing or present more than once (never expected; a bug).
    """
    seen: dict[int, object] = {}
    duplicated = []
    for part in parts:
        for index, value in part.items():
            if index in seen:
                duplicated.append(index)
            seen[index] = value
    missing = sorted(set(range(n)) - set(seen))
    extra = sorted(set(seen) - set(range(n)))
    if duplicated or missing or extra:
        raise RuntimeError(
            f"gathered clip indices are wrong: duplicated {duplicated[:10]}, missing "
            f"{missing[:10]}, out of range {extra[:10]}"
        )
    return [seen[i] for i in range(n)]
