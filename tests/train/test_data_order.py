"""Data order across epochs and ranks (issue 21, item 7): the train set's blocks come in a new
order every epoch, through the streaming split Ray Train gives its workers, and every rank draws
its own seeds."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from cluster.train_data import _shuffled
from cluster.train_loop import _seed


def _epochs(ds: Any, ranks: int, epochs: int) -> list[list[list[int]]]:
    """[epoch][rank] -> the ids that rank read, in order, through one streaming split used for
    every epoch (as Ray Train's get_dataset_shard hands it out; all ranks read at once)."""
    splits = ds.streaming_split(ranks, equal=True)
    seen: list[list[list[int]]] = [[[] for _ in range(ranks)] for _ in range(epochs)]

    def read(rank: int) -> None:
        for epoch in range(epochs):
            for batch in splits[rank].iter_batches(batch_size=10, batch_format="numpy"):
                seen[epoch][rank].extend(int(i) for i in batch["id"])

    threads = [threading.Thread(target=read, args=(r,)) for r in range(ranks)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "the split readers did not finish"
    return seen


@pytest.mark.ray
def test_each_epoch_reads_every_block_once_in_a_new_order(ray_session: Any) -> None:
    import ray.data

    ds = _shuffled(ray.data.range(400, override_num_blocks=40).materialize())
    seen = _epochs(ds, ranks=2, epochs=3)
    orders = []
    for epoch in seen:
        ids = sorted(i for rank in epoch for i in rank)
        assert ids == list(range(400))  # nothing lost, nothing twice (400 splits evenly)
        orders.append(tuple(epoch[0] + epoch[1]))
    assert len(set(orders)) == 3  # 40 blocks: a repeated order is a 1 in 40! event
    # a rank's clips change from epoch to epoch, not only their order
    assert set(seen[0][0]) != set(seen[1][0]) or set(seen[1][0]) != set(seen[2][0])


def test_rank_and_count_seeds_are_distinct_and_stable() -> None:
    seeds = {(rank, count): _seed(0, rank, count) for rank in range(8) for count in range(50)}
    assert len(set(seeds.values())) == len(seeds)
    assert _seed(0, 3, 7) == seeds[(3, 7)]  # the same inputs, the same seed (resume is exact)
    assert _seed(1, 3, 7) != seeds[(3, 7)]


def test_epoch_shares_are_disjoint_cover_every_clip_and_ignore_arrival_order() -> None:
    from cluster.train_data import epoch_share

    rows = [{"clip_id": f"clip{i:03d}", "frames": i} for i in range(101)]
    shares = [epoch_share(rows, rank=r, world=3, seed=7) for r in range(3)]
    ids = [[row["clip_id"] for row in share] for share in shares]
    assert sorted(i for share in ids for i in share) == [r["clip_id"] for r in rows]  # each once
    assert sorted(len(share) for share in ids) == [33, 34, 34]
    arrived = list(reversed(rows[50:])) + rows[:50]  # blocks in another order
    assert [row["clip_id"] for row in epoch_share(arrived, rank=1, world=3, seed=7)] == ids[1]
    assert [row["clip_id"] for row in epoch_share(rows, rank=1, world=3, seed=8)] != ids[1]
    assert ids[0] != sorted(ids[0])  # shuffled, not clip-id ranges (buckets mix the corpus)


def test_reproducible_needs_cached_features() -> None:
    from uts.train.config import PretrainConfig, preset

    assert preset("smoke", reproducible=True).reproducible
    with pytest.raises(ValueError, match="cache_features"):
        PretrainConfig(reproducible=True)
