"""The few collectives the train loop needs across its ranks, as plain values on one process (so
the loop's arithmetic is the same with one worker and without torch.distributed set up)."""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["Collective"]


class Collective:
    """All-reduces and gathers over `world` ranks on `device`; identity when world is 1."""

    def __init__(self, world: int, device: torch.device) -> None:
        self.world, self.device = world, device

    def _reduce(self, value: float, op: Any) -> float:
        if self.world == 1:
            return value
        import torch.distributed as dist

        tensor = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor, op=op)
        return float(tensor.item())

    def all_true(self, flag: bool) -> bool:
        import torch.distributed as dist

        return self._reduce(1.0 if flag else 0.0, dist.ReduceOp.MIN if self.world > 1 else None) > 0

    def sum(self, value: float) -> float:
        import torch.distributed as dist

        return self._reduce(value, dist.ReduceOp.SUM if self.world > 1 else None)

    def each(self, value: float) -> list[float]:
        """Every rank's value, in rank order."""
        if self.world == 1:
            return [value]
        import torch.distributed as dist

        slots = torch.zeros(self.world, dtype=torch.float64, device=self.device)
        slots[dist.get_rank()] = value
        dist.all_reduce(slots, op=dist.ReduceOp.SUM)
        return [float(v) for v in slots.tolist()]

    def concat_lists(self, *lists: list[Any]) -> list[list[Any]]:
        """Each list joined over the ranks, in rank order (one all_gather_object for all)."""
        if self.world == 1:
            return [list(items) for items in lists]
        import torch.distributed as dist

        gathered: list[Any] = [None] * self.world
        dist.all_gather_object(gathered, lists)
        return [[item for part in gathered for item in part[i]] for i in range(len(lists))]

    def gather_padded(self, x: torch.Tensor) -> torch.Tensor:
        """All ranks' rows (each padded with zero rows to the largest batch); this rank's rows
        keep their gradient. (B, D) -> (B_max * world, D)."""
        if self.world == 1:
            return x
        import torch.distributed as dist

        size = int(self._reduce(float(x.shape[0]), dist.ReduceOp.MAX))
        padded = torch.cat([x, x.new_zeros(size - x.shape[0], *x.shape[1:])])
        parts = [torch.zeros_like(padded) for _ in range(self.world)]
        dist.all_gather(parts, padded.detach().contiguous())
        parts[dist.get_rank()] = padded
        return torch.cat(parts)
