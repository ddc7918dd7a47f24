"""Batches bounded by total audio seconds, not by clip count (the paper: 640 audio-seconds per
step across the cluster), with clips of similar length together so padding stays small.

A window of clips is read, sorted by duration, cut into batches whose padded length x clips stays
within the budget, and the batches are yielded in a shuffled order (so a step does not always see
the shortest clips first). Padding is counted: a batch of n clips padded to the longest costs
n * longest seconds, which is what the encoder actually computes.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

__all__ = ["duration_batches", "is_validation"]

T = TypeVar("T")


def is_validation(clip_id: str, fraction: float) -> bool:
    """A fixed split by a hash of the clip id: the same clips are held out on every run (and the
    evaluation finds them again for retrieval and captioning)."""
    return zlib.crc32(clip_id.encode()) % 10_000 < fraction * 10_000


def duration_batches(
    items: Iterable[T],
    duration: Callable[[T], float],
    *,
    max_seconds: float,
    window: int = 1000,
    seed: int = 0,
) -> Iterator[list[T]]:
    """Group `items` into batches with `len(batch) * max(duration) <= max_seconds`.

    A clip longer than `max_seconds` on its own makes a batch of one (never dropped). Every item
    appears in exactly one batch; with the same input and seed the batches are the same.
    """
    if max_seconds <= 0:
        raise ValueError(f"max_seconds must be positive, got {max_seconds}")
    rng = random.Random(seed)
    buffer: list[T] = []
    for item in items:
        buffer.append(item)
        if len(buffer) >= window:
            yield from _cut(buffer, duration, max_seconds, rng)
            buffer = []
    if buffer:
        yield from _cut(buffer, duration, max_seconds, rng)


def _cut(
    window: list[T], duration: Callable[[T], float], max_seconds: float, rng: random.Random
) -> list[list[T]]:
    ordered = sorted(window, key=duration)
    batches: list[list[T]] = []
    current: list[T] = []
    for item in ordered:  # ascending: the newest item is the longest of its batch
        if current and (len(current) + 1) * duration(item) > max_seconds:
            batches.append(current)
            current = []
        current.append(item)
    if current:
        batches.append(current)
    rng.shuffle(batches)
    return batches
