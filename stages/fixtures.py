"""A small tagged corpus made on the spot, run through the real stages (ingest, caption with the
corpus backend, tag with rules, vocabulary): for tests and benchmarks that need a store a real run
would have made. It lives here, not in uts.testing, because it calls the stages (and they call
cluster/), which uts must not import."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

from stages import caption, ingest, tag, vocab
from stages.base import StageError
from uts.store import Store
from uts.testing.corpus import write_tone_folder

__all__ = ["make_tagged_store"]


def make_tagged_store(root: Path, *, clips: int = 40, seconds: tuple[float, ...] = (1.0, 1.5, 2.0, 2.5, 3.0),
                      seed: int = 0) -> Path:  # fmt: skip
    """Write `clips` clips under root/audio and the store root/store with corpus `c` and vocabulary
    `v`; returns the store path. Raises RuntimeError when a stage fails."""
    audio, meta = write_tone_folder(root, clips=clips, seconds=seconds, seed=seed)
    path = root / "store"
    store = Store(str(path))
    # workers=0: everything in this process, no Ray, so the fixture is fast and needs no cluster.
    steps = [
        (ingest, ingest.IngestSpec(corpus="c", source="folder", path=str(audio), metadata=str(meta),
                                   workers=0, batch_size=10)),
        (caption, caption.CaptionSpec(corpus="c", workers=0)),
        (tag, tag.TagSpec(corpus="c", workers=0)),
    ]  # fmt: skip
    for stage, spec in steps:
        _run(stage, spec, store)
    (tags_dir,) = (path / "tags" / "c").iterdir()
    _run(vocab, vocab.VocabSpec(tags=(str(tags_dir),), name="v"), store)
    return path


def _run(stage: ModuleType, spec: Any, store: Store) -> None:
    """Run one stage; a refusal or a failed exit code becomes RuntimeError naming the spec."""
    try:
        result = stage.run(spec, store)
    except StageError as exc:
        raise RuntimeError(f"{stage.__name__} failed: {spec}: {exc}") from exc
    if result.exit_code != 0:
        raise RuntimeError(f"{stage.__name__} failed (exit code {result.exit_code}): {spec}")
