"""Clip embeddings for the probes: what embeds (a checkpoint, the random-init encoder of a
configuration, or log-mel statistics), where a task's audio comes from, and a cache in the store.

An embedding is the masked mean of the frozen encoder's frame embeddings (eval mode). The paper's
linear protocol trains a per-frame linear layer and mean-pools its logits; a linear map commutes
with the mean, so at evaluation those logits equal the same layer applied to this pooled vector, and
the protocols train on pooled vectors (uts.probe.protocols).

Cache: `<store>/embeddings/<space>/<task>-<clips fingerprint>/` (embeddings.npy, ids.json, a
_SUCCESS marker), where `space` names the embedding space (the checkpoint's weights hash, the
random-init architecture and seed, or the log-mel settings; `-all-layers`, `-stem` or `-stackN`
appended when another depth than the output is read, see EncoderSource.with_layers). A second evaluation reads it back.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from uts.audio import Wave
from uts.probe.evaluate import TaskSpec
from uts.store import Store

__all__ = [
    "EmbeddingCache",
    "EncoderSource",
    "WaveBank",
    "checkpoint_source",
    "logmel_source",
    "random_init_source",
    "task_audio",
    "task_embeddings",
]

Matrix = npt.NDArray[np.float32]


@dataclass(frozen=True)
class EncoderSource:
    """What embeds clips. `space` identifies the embedding space (cache key; two sources with the
    same space give the same vectors); `label` is its name in reports."""

    kind: str  # checkpoint | random-init | logmel
    space: str
    label: str
    config: Any = None  # PretrainConfig of checkpoint and random-init sources
    checkpoint: str | None = None
    lineage: Any = None  # the checkpoint's lineage.json
    layers: str = "final"  # the depth read: uts.probe.encoder.LAYERS

    def embedder(self) -> Callable[[Sequence[Wave]], Matrix]:
        """A function from 16 kHz waves to (N, D) embeddings (loads the model once)."""
        if self.kind == "logmel":
            from uts.probe.baseline import logmel_stats

            return logmel_stats
        from uts.probe.encoder import embed
        from uts.train.model import build_model, load_checkpoint

        if self.kind == "checkpoint":
            assert self.checkpoint is not None
            encoder = load_checkpoint(self.checkpoint)[0].encoder
        else:
            encoder = build_model(self.config).encoder
        return lambda waves: embed(encoder, waves, layers=self.layers)

    def with_layers(self, layers: str) -> EncoderSource:
        """The same encoder read at depth `layers` (uts.probe.encoder.LAYERS), in a space of its
        own so caches never mix. Log-mel has no depths: it is returned as it is.

        Raises:
            ValueError: unknown `layers`.
        """
        from uts.probe.encoder import layer_suffix

        suffix = layer_suffix(layers)
        if self.kind == "logmel" or layers == self.layers:
            return self
        base = (
            self.space.removesuffix(layer_suffix(self.layers))
            if self.layers != "final"
            else self.space
        )
        return replace(self, layers=layers, space=base + suffix)


def checkpoint_source(uri: str, label: str | None = None) -> EncoderSource:
    """A trained checkpoint folder; its space is the hash of its weights file.

    Raises:
        FileNotFoundError: not a checkpoint folder (no model.pt or lineage.json).
    """
    from uts.train import checkpoint
    from uts.train.config import PretrainConfig

    lineage = checkpoint.read_lineage(uri)
    digest = checkpoint.weights_digest(uri)
    config = PretrainConfig(**lineage["config"])
    return EncoderSource("checkpoint", f"ckpt-{digest[:16]}", label or uri.rstrip("/"),
                         config=config, checkpoint=uri, lineage=lineage)  # fmt: skip


def random_init_source(config: Any) -> EncoderSource:
    """The untrained encoder a run with `config` starts from (same architecture and seed). Its
    space hashes the preset, overrides and seed and the encoder's initial weights, so that a
    store's cached random-init embeddings are not reused once the architecture or its
    initialisation changes."""
    body = json.dumps([config.encoder, config.encoder_overrides, config.seed], sort_keys=True)
    digest = hashlib.sha256(body.encode())
    digest.update(_initial_weights_digest(body).encode())
    space = f"random-init-{config.encoder}-{digest.hexdigest()[:12]}"
    return EncoderSource("random-init", space, "random-init", config=config)


@functools.lru_cache(maxsize=8)
def _initial_weights_digest(body: str) -> str:
    """SHA-256 of the names, shapes and values of a Zipformer's weights as built from the preset,
    overrides and seed in `body` (a few ms for xs, about a second for m)."""
    import torch

    from uts.models.zipformer import Zipformer, preset

    name, overrides, seed = json.loads(body)
    torch.manual_seed(seed)
    state = Zipformer(preset(name, **overrides)).state_dict()
    digest = hashlib.sha256()
    for key, tensor in state.items():
        digest.update(f"{key}{tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().float().numpy().tobytes())
    return digest.hexdigest()


def logmel_source() -> EncoderSource:
    """The baseline: 64-band log-mel mean and standard deviation (128 dims)."""
    return EncoderSource("logmel", "logmel-64-meanstd", "log-mel")


def task_audio(store: Store, task: TaskSpec, clips: Sequence[str]) -> tuple[list[str], list[Wave]]:
    """The 16 kHz mono waves of a task's clips: from a corpus in the store ({"corpus": NAME}) or
    from files under the task folder ({"folder": "audio"}, keys are paths relative to it).

    Raises:
        ValueError: task.json's `audio` names neither.
        FileNotFoundError: a clip is in neither the corpus nor the folder.
    """
    audio = task.meta.get("audio") or {}
    wanted = set(clips)
    if "corpus" in audio:
        from uts.data import load_waves

        ids, waves = load_waves(store.uri("corpora", str(audio["corpus"])), wanted)
        missing = wanted - set(ids)
        if missing:
            raise FileNotFoundError(f"task {task.name}: {len(missing)} clip(s) not in corpus "
                                    f"{audio['corpus']!r}, e.g. {sorted(missing)[0]!r}")  # fmt: skip
        return ids, waves
    if "folder" in audio:
        from uts.audio import decode, resample, to_mono

        root = task.folder / str(audio["folder"])
        ids, waves = [], []
        for clip in sorted(wanted):
            path = root / clip
            if not path.is_file():
                raise FileNotFoundError(f"task {task.name}: audio file {path} is missing")
            wave, rate = decode(path)
            ids.append(clip)
            waves.append(resample(to_mono(wave), rate))
        return ids, waves
    raise ValueError(f"{task.folder}/task.json: 'audio' must be {{\"corpus\": NAME}} or "
                     f"{{\"folder\": PATH}}, got {audio!r}")  # fmt: skip


class WaveBank:
    """Decoded audio shared by every task and encoder of one evaluation: a corpus is read once for
    the union of the clips its tasks need (`want` first), not once per (task, encoder)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.wanted: dict[str, set[str]] = {}  # corpus -> clips
        self.waves: dict[str, dict[str, Wave]] = {}  # corpus -> clip -> wave

    def want(self, task: TaskSpec) -> None:
        corpus = (task.meta.get("audio") or {}).get("corpus")
        if corpus is not None:
            self.wanted.setdefault(str(corpus), set()).update(task.clips())

    def __call__(self, task: TaskSpec, clips: list[str]) -> tuple[list[str], list[Wave]]:
        corpus = (task.meta.get("audio") or {}).get("corpus")
        if corpus is None:
            return task_audio(self.store, task, clips)
        corpus = str(corpus)
        if corpus not in self.waves or not set(clips) <= self.waves[corpus].keys():
            from uts.data import load_waves

            need = self.wanted.get(corpus, set()) | set(clips)
            ids, waves = load_waves(self.store.uri("corpora", corpus), need)
            self.waves[corpus] = dict(zip(ids, waves, strict=True))
        bank = self.waves[corpus]
        missing = [c for c in clips if c not in bank]
        if missing:
            raise FileNotFoundError(f"task {task.name}: {len(missing)} clip(s) not in corpus "
                                    f"{corpus!r}, e.g. {missing[0]!r}")  # fmt: skip
        return list(clips), [bank[c] for c in clips]


class EmbeddingCache:
    """Embeddings of one space in the store, one published folder per task's clip set."""

    def __init__(self, store: Store, space: str) -> None:
        self.store, self.space = store, space

    def _parts(self, task: TaskSpec) -> tuple[str, ...]:
        return ("embeddings", self.space, f"{task.name}-{task.clips_fingerprint()}")

    def get(self, task: TaskSpec) -> dict[str, Matrix] | None:
        parts = self._parts(task)
        if not self.store.is_complete(*parts):
            return None
        ids = self.store.read_json(*parts, "ids.json")
        with self.store.open(*parts, "embeddings.npy") as f:
            matrix = np.load(f)
        return dict(zip(ids, matrix, strict=True))

    def put(self, task: TaskSpec, ids: Sequence[str], matrix: Matrix) -> None:
        with self.store.staging() as staged:
            np.save(staged / "embeddings.npy", np.asarray(matrix, np.float32))
            (staged / "ids.json").write_text(json.dumps(list(ids)), "utf-8")
            self.store.publish(staged, *self._parts(task), overwrite=True)


def task_embeddings(
    store: Store, task: TaskSpec, source: EncoderSource, *, cache: bool = True,
    compute: Callable[[TaskSpec, list[str]], tuple[list[str], Matrix]] | None = None,
) -> tuple[dict[str, Matrix], bool]:  # fmt: skip
    """(clip id -> embedding, whether it came from the cache). `compute` replaces extracting here
    (stages.evaluate: a model loaded once, shared audio and clips; or Ray Data on a cluster)."""
    store_cache = EmbeddingCache(store, source.space)
    if cache and (hit := store_cache.get(task)) is not None:
        return hit, True
    clips = task.clips()
    if compute is not None:
        ids, matrix = compute(task, clips)
    else:
        ids, waves = task_audio(store, task, clips)
        matrix = source.embedder()(waves)
    if cache:
        store_cache.put(task, ids, matrix)
    return dict(zip(ids, matrix, strict=True)), False
