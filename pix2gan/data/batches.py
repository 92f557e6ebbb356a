"""Batch order and augmentation randomness as pure functions of (seed, epoch, position), so a run can resume anywhere.

:class:`EpochBatchSampler` yields the batches of one epoch from any batch onwards. Every item comes with its own
augmentation seed, drawn with the permutation from a generator seeded by ``(seed, epoch)``; datasets build their crops
and flips from that seed instead of the global RNG. Which worker fetches an item, how many workers there are, and
where a run was interrupted therefore change nothing: batch ``k`` of epoch ``e`` is always the same.

Example:
    >>> sampler = EpochBatchSampler(10, batch_size=4, seed=0)
    >>> sampler.set_epoch(1)
    >>> full = list(sampler)
    >>> len(full), len(full[0])
    (2, 4)
    >>> sampler.set_epoch(1, start=1)  # resume at the second batch of epoch 1
    >>> list(sampler) == full[1:]
    True
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler

__all__ = ["EpochBatchSampler", "item_generator"]

_SEED_BOUND = 2**62


class EpochBatchSampler(Sampler[list[tuple[int, int]]]):
    """Shuffled batches of ``(index, augmentation_seed)`` pairs for one epoch at a time.

    Under DDP each rank takes every ``world``-th position of the epoch's permutation (DistributedSampler's
    sharding: the same number of items per rank, the rest dropped), with the same per-position seeds.

    Args:
        n: items in the data set.
        batch_size: items per batch (per rank).
        seed: run seed; together with the epoch it fixes the order and every item's augmentation seed.
        drop_last: drop the last incomplete batch (kept when the shard is smaller than one batch).
        rank, world: this process's rank and the number of ranks.
    """

    def __init__(
        self, n: int, batch_size: int, seed: int, *, drop_last: bool = True, rank: int = 0, world: int = 1
    ) -> None:
        super().__init__()
        if n < 1:
            raise ValueError("EpochBatchSampler needs at least one item")
        self.n = n
        self.batch_size = batch_size
        self.seed = seed
        self.rank, self.world = rank, world
        self.shard = n // world if world > 1 else n
        self.drop_last = drop_last and self.shard >= batch_size
        self.epoch = 1
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Iterate over epoch ``epoch`` (1-based) from batch ``start`` (0-based) on."""
        self.epoch, self.start = epoch, start

    def __len__(self) -> int:
        """Batches per epoch."""
        return self.shard // self.batch_size if self.drop_last else -(-self.shard // self.batch_size)

    def epoch_items(self, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The permutation of epoch ``epoch`` and the augmentation seed of each position."""
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        order = torch.randperm(self.n, generator=g)
        seeds = torch.randint(0, _SEED_BOUND, (self.n,), generator=g)
        return order, seeds

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        order, seeds = self.epoch_items(self.epoch)
        pairs = list(zip(order.tolist(), seeds.tolist(), strict=True))
        if self.world > 1:
            pairs = pairs[self.rank : self.shard * self.world : self.world]
        for b in range(self.start, len(self)):
            yield pairs[b * self.batch_size : (b + 1) * self.batch_size]


def item_generator(key: int | tuple[int, int]) -> tuple[int, torch.Generator | None]:
    """Split a data-set key into the index and a generator for its augmentation (None: use the global RNG)."""
    if isinstance(key, tuple):
        index, seed = key
        return int(index), torch.Generator().manual_seed(int(seed))
    return int(key), None
