"""The embedded default's corpus: real recordings from Debian packages, three domains, two partitions.

See shared DEMO_DATA.md for the facts behind it. `demo_items` fetches (or reuses) the packages,
renders the music notes, and lists every input with its labels, group and partition.
"""

from __future__ import annotations

import random
from pathlib import Path

from uts.ingest.demo.environment import environment_items
from uts.ingest.demo.fetch import PACKAGES, DemoError, ensure_fluidsynth, fetch_packages
from uts.ingest.demo.music import music_items
from uts.ingest.demo.speech import speech_items
from uts.ingest.items import Item

__all__ = ["PACKAGES", "DemoError", "demo_items"]


def demo_items(
    cache: Path, *, seed: int = 0, per_speaker: int = 60, programs_per_family: int = 4,
    extra_per_speaker: int = 0, extra_programs: int = 0,
) -> list[Item]:  # fmt: skip
    """Every input of the demo corpus, deterministic for `seed`. `extra_per_speaker` clips per
    pretraining voice and `extra_programs` GM programs per family are added to pretraining only,
    from random streams of their own: the probe partition and its tasks are the same with any.

    Raises:
        DemoError: the packages or fluidsynth cannot be had on this machine.
    """
    root = fetch_packages(cache)
    fluidsynth = ensure_fluidsynth()
    return [
        *speech_items(
            root,
            random.Random(f"{seed}-speech"),
            per_speaker=per_speaker,
            extra_per_speaker=extra_per_speaker,
            extra_rng=random.Random(f"{seed}-speech-extra"),
        ),
        *music_items(
            root,
            cache,
            fluidsynth,
            random.Random(f"{seed}-music"),
            programs_per_family=programs_per_family,
            extra_programs=extra_programs,
            extra_rng=random.Random(f"{seed}-music-extra"),
        ),
        *environment_items(root, random.Random(f"{seed}-environment")),
    ]
