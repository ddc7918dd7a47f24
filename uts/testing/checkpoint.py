"""Random-init checkpoints in a store, saved through uts.train.checkpoint as a training run saves
them (weights and lineage in a run's checkpoint folder, no optimiser state), with the vocabulary an
mtc checkpoint needs: for the serving tests and benchmarks/serve.py."""

from __future__ import annotations

import hashlib
from pathlib import Path

from uts.store import Store
from uts.tags.vocab import Vocabulary, write_vocab_files
from uts.train import checkpoint
from uts.train.config import PretrainConfig
from uts.train.model import build_model

__all__ = ["publish_vocab", "save_checkpoint"]

STAMP = "2026-01-01_00-00-00.000000"  # the checkpoint folder's time stamp


def publish_vocab(store: Store, name: str, tags: tuple[str, ...]) -> str:
    """Publish a vocabulary folder as jobs/build_vocab.py does (`tags` best first); returns its
    fingerprint."""
    fingerprint = hashlib.sha256("\n".join(tags).encode()).hexdigest()[:16]
    vocab = Vocabulary(tags=tags, df=tuple(range(len(tags), 0, -1)),
                       score=tuple(float(s) for s in range(len(tags), 0, -1)), n_clips=100, name=name)  # fmt: skip
    meta = {"name": name, "n_clips": 100, "normalize": True, "vocab_fingerprint": fingerprint}
    with store.staging() as staged:
        write_vocab_files(staged, vocab.to_table(), meta)
        store.publish(staged, "vocab", name)
    return fingerprint


def save_checkpoint(
    store: Store, run: str, config: PretrainConfig, vocab: str, fp: str, *, step: int | None = None
) -> Path:
    """The random-init model of `config` as checkpoint folder runs/<run>/checkpoint_<STAMP>, trained
    (says its lineage) on vocabulary `vocab` with fingerprint `fp`; with `step`, also the loop
    counters that mark a finished checkpoint (what `checkpoint.latest` looks for)."""
    folder = Path(checkpoint.folder_path(store, run, STAMP))
    folder.mkdir(parents=True)
    lineage = {"config": config.to_dict(), "corpus": {"name": "c", "fingerprint": "f"},
               "tags": {"fingerprint": "t"}, "vocab": {"name": vocab, "fingerprint": fp, "k": config.k}}  # fmt: skip
    checkpoint.save(folder, model_state=build_model(config).state_dict(), training_state=None,
                    state=None if step is None else {"step": step}, lineage=lineage)  # fmt: skip
    return folder
