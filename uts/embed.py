"""Embed audio (and text, and UTS tags) with a trained checkpoint: the library behind serve/.

Audio embeddings are the probes' clip embeddings (uts.probe.encoder.embed: the masked mean of the
frozen encoder's frames, eval mode). A clip longer than the model's window (10 s) is split into
consecutive 10-s chunks (a final piece shorter than 1 s joins the chunk before it, so no chunk is
a sliver); every chunk is embedded alone and the clip's embedding is the mean of its chunk
embeddings weighted by chunk duration. Clips up to the window give exactly the probes' vectors.

What a vector is depends on the checkpoint's objective:
- contrastive: the projected audio vector (the audio projection of the pooled encoder output),
  L2-normalised: the space the text tower's vectors live in, so text and audio compare by cosine.
  The projection is affine, so projecting the duration-weighted mean equals the weighted mean of
  the chunks' projected vectors; that mean is then normalised to unit length.
- every other objective: the pooled encoder output itself (not normalised).

Tags (mtc and multitask checkpoints) come from the MTC head: per-frame Linear(D -> K) with the
logits mean-pooled over frames. A linear map commutes with the mean, so in eval mode the clip's
logits are the head's linear layer applied to its pooled embedding (and, for a long clip, the
duration-weighted mean of its chunks' logits); probabilities are their sigmoid.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import soundfile as sf
import torch

from uts.audio.fbank import num_frames
from uts.audio.io import SAMPLE_RATE, AudioError, Wave, decode, resample, to_mono
from uts.models.heads import MTCHead
from uts.objectives import MTC, Contrastive, MultiTask, Pretrainer
from uts.store import Store
from uts.tags.vocab import Vocabulary, VocabularyError

__all__ = [
    "MIN_TAIL_S",
    "TAG_OBJECTIVES",
    "TEXT_OBJECTIVES",
    "WINDOW_S",
    "AudioLimitError",
    "Embedder",
    "NoTagHead",
    "NoTextTower",
    "audio_tokens",
    "chunk_bounds",
    "decode_audio",
]

Matrix = npt.NDArray[np.float32]

WINDOW_S = 10.0  # the longest clip embedded in one pass (the pretraining clips' length)
MIN_TAIL_S = 1.0  # a last chunk shorter than this joins the one before it
TAG_OBJECTIVES = ("mtc", "multitask")  # objectives with an MTC head
TEXT_OBJECTIVES = ("contrastive",)  # objectives with a text tower


class NoTagHead(ValueError):
    """The checkpoint has no MTC head (its objective is neither mtc nor multitask)."""


class NoTextTower(ValueError):
    """The checkpoint has no text tower (its objective is not contrastive)."""


class AudioLimitError(AudioError):
    """Audio outside a serving limit; `limit` names the setting and `value` is its value."""

    def __init__(self, message: str, *, limit: str, value: float) -> None:
        super().__init__(message)
        self.limit, self.value = limit, value


def decode_audio(
    data: bytes, *, min_rate: int = 8_000, max_rate: int = 96_000, max_seconds: float = 60.0,
    min_seconds: float = 0.1,
) -> Wave:  # fmt: skip
    """Encoded audio (wav, flac, ogg, ...) -> (samples,) float32 mono at 16 kHz.

    The header is read first, so a file over `max_seconds` is refused before it is decoded (a
    small FLAC of silence can hold hours).

    Raises:
        AudioLimitError: the sample rate is outside [min_rate, max_rate], or the duration outside
            [min_seconds, max_seconds]; the message names the limit and its value.
        AudioError: not decodable (unknown format, truncated, empty, NaN samples).
    """
    try:
        with sf.SoundFile(io.BytesIO(data)) as header:
            declared_rate, declared_frames = int(header.samplerate), int(header.frames)
    except (sf.LibsndfileError, RuntimeError, TypeError, EOFError):
        declared_rate = declared_frames = 0  # decode() below says why it is unreadable
    if declared_rate > 0:
        _check_rate(declared_rate, min_rate, max_rate)
        _check_duration(declared_frames / declared_rate, min_seconds, max_seconds, upper_only=True)
    wave, rate = decode(data)
    _check_rate(rate, min_rate, max_rate)
    _check_duration(wave.shape[-1] / rate, min_seconds, max_seconds)
    return resample(to_mono(wave), rate)


def _check_rate(rate: int, low: int, high: int) -> None:
    if rate < low:
        raise AudioLimitError(
            f"sample rate {rate} Hz is below the limit min_rate = {low} Hz",
            limit="min_rate",
            value=low,
        )
    if rate > high:
        raise AudioLimitError(
            f"sample rate {rate} Hz is above the limit max_rate = {high} Hz",
            limit="max_rate",
            value=high,
        )


def _check_duration(seconds: float, low: float, high: float, *, upper_only: bool = False) -> None:
    if seconds > high:
        raise AudioLimitError(
            f"audio is {seconds:.2f} s long; the limit max_seconds is {high:g} s",
            limit="max_seconds",
            value=high,
        )
    if not upper_only and seconds < low:
        raise AudioLimitError(
            f"audio is {seconds:.3f} s long; the limit min_seconds is {low:g} s",
            limit="min_seconds",
            value=low,
        )


def chunk_bounds(
    num_samples: int, *, window_s: float = WINDOW_S, min_tail_s: float = MIN_TAIL_S
) -> list[tuple[int, int]]:
    """[(start, end)] sample ranges of a 16 kHz clip's chunks: consecutive windows, the last one
    shorter; a last piece under `min_tail_s` is merged into the chunk before it."""
    window, tail = round(window_s * SAMPLE_RATE), round(min_tail_s * SAMPLE_RATE)
    starts = list(range(0, max(num_samples, 1), window))
    if len(starts) > 1 and num_samples - starts[-1] < tail:
        starts.pop()
    ends = [*starts[1:], num_samples]
    return list(zip(starts, ends, strict=True))


def audio_tokens(num_samples: int, *, window_s: float = WINDOW_S) -> int:
    """Encoder output frames (25 per second) of a 16 kHz clip, summed over its chunks: what the
    endpoint reports as usage."""
    total = 0
    for start, end in chunk_bounds(num_samples, window_s=window_s):
        # fbank 100 Hz -> stem 50 Hz -> output 25 Hz (uts.models.zipformer.Zipformer.forward)
        total += ((num_frames(end - start) + 1) // 2 + 1) // 2
    return total


class Embedder:
    """A trained checkpoint in eval mode on CPU, with what a client needs to trust its vectors.

    Attributes:
        model_id: the run's name (or the given label).
        embedding_space: `<checkpoint weights hash>-vocab-<vocabulary fingerprint>`; two vectors
            compare only when their spaces are equal.
        objective: the checkpoint's pretraining objective.
        dim: length of the vectors `embed` returns.
        vocab: the UTS vocabulary at the run's K (mtc and multitask checkpoints), else None.
    """

    window_s = WINDOW_S

    def __init__(
        self, model: Pretrainer, *, objective: str, model_id: str = "model",
        embedding_space: str = "unknown", vocab: Vocabulary | None = None, batch: int = 16,
    ) -> None:  # fmt: skip
        self.model = model.eval()
        self.objective, self.model_id, self.embedding_space = objective, model_id, embedding_space
        self.vocab, self.batch = vocab, batch
        head = self._tag_head()
        if head is not None:
            if vocab is None:
                raise VocabularyError(f"{model_id}: an {objective} checkpoint needs its vocabulary")
            if len(vocab) != head.linear.out_features:
                raise VocabularyError(
                    f"{model_id}: the MTC head has {head.linear.out_features} tags but vocabulary "
                    f"{vocab.name or '(unnamed)'} has {len(vocab)} at this K"
                )

    @classmethod
    def from_checkpoint(
        cls, uri: str, store: Store | None = None, *, model_id: str | None = None, batch: int = 16
    ) -> Embedder:
        """Load a checkpoint folder (local path or store URI) and, for mtc and multitask
        checkpoints, the vocabulary it was trained on at its K.

        Args:
            uri: a checkpoint folder (model.pt + lineage.json).
            store: the store holding the run's vocabulary; None: the store the checkpoint is in
                (`<store>/runs/<run>/<checkpoint>`).
            model_id: the name clients use; default the run's name (the checkpoint's folder).

        Raises:
            FileNotFoundError: not a checkpoint folder.
            VocabularyError: the vocabulary is missing, has too few tags, or is not the one the
                checkpoint was trained on (its fingerprint differs).
        """
        from uts.probe.embeddings import checkpoint_source
        from uts.tags import load_vocab
        from uts.train.checkpoint import run_of
        from uts.train.model import load_checkpoint

        parts = uri.rstrip("/").rsplit("/", 3)
        if model_id is None:
            run = run_of(uri)  # a run's checkpoint is served under the run's name
            model_id = run if run is not None else parts[-1]
        if store is None and len(parts) == 4 and parts[1] == "runs":
            store = Store(parts[0])
        source = checkpoint_source(uri, label=model_id)
        model, config, lineage = load_checkpoint(uri)
        vocab_info: dict[str, Any] = lineage.get("vocab") or {}
        trained_on = vocab_info.get("fingerprint")
        vocab = None
        if config.objective in TAG_OBJECTIVES:
            if store is None:
                raise VocabularyError(
                    f"{uri}: pass the store that holds vocabulary {vocab_info.get('name')!r} "
                    "(the checkpoint is not inside a store's runs/ folder)"
                )
            vocab = load_vocab(store.uri("vocab", str(vocab_info["name"])), k=int(config.k))
            found = vocab.meta.get("vocab_fingerprint")
            if trained_on and found and found != trained_on:
                raise VocabularyError(
                    f"{store.uri('vocab', vocab.name)} has fingerprint {found}, but {uri} was "
                    f"trained on {trained_on}: the vocabulary was rebuilt since"
                )
        space = f"{source.space}-vocab-{trained_on or 'none'}"
        return cls(model, objective=config.objective, model_id=model_id, embedding_space=space,
                   vocab=vocab, batch=batch)  # fmt: skip

    @property
    def device(self) -> torch.device:
        """Where the model runs (audio is decoded and featurised on the CPU either way)."""
        return next(self.model.parameters()).device

    def to(self, device: str | torch.device) -> Embedder:
        """Move the model to `device` (e.g. "cuda" in a GPU replica); returns self."""
        self.model.to(device)
        return self

    @property
    def dim(self) -> int:
        head = self._text_head()
        if head is not None:
            return int(head.audio_proj.out_features)
        return int(self.model.encoder.output_dim)

    def _text_head(self) -> Contrastive | None:
        objective = self.model.objective
        return objective if isinstance(objective, Contrastive) else None

    def _tag_head(self) -> MTCHead | None:
        objective = self.model.objective
        if isinstance(objective, MTC):
            return objective.head
        if isinstance(objective, MultiTask):
            return objective.mtc.head
        return None

    def pooled(self, waves: Sequence[Wave]) -> Matrix:
        """(N waves at 16 kHz) -> (N, D) pooled encoder outputs, long clips chunked (module doc)."""
        from uts.probe.encoder import embed

        bounds = [chunk_bounds(len(w), window_s=self.window_s) for w in waves]
        chunks = [w[s:e] for w, b in zip(waves, bounds, strict=True) for s, e in b]
        pooled = embed(self.model.encoder, chunks, batch=self.batch)  # (chunks, D)
        out = np.empty((len(waves), pooled.shape[1]), np.float32)
        row = 0
        for i, b in enumerate(bounds):
            if len(b) == 1:
                out[i] = pooled[row]  # exactly the probes' vector
            else:
                weights = np.array([e - s for s, e in b], np.float64)
                out[i] = (weights / weights.sum()) @ pooled[row : row + len(b)].astype(np.float64)
            row += len(b)
        return out

    @torch.no_grad()
    def embed(self, waves: Sequence[Wave]) -> Matrix:
        """(N waves at 16 kHz mono) -> (N, dim) float32 embeddings (module doc: chunking, and
        projected unit vectors for contrastive checkpoints)."""
        if not waves:
            return np.zeros((0, self.dim), np.float32)
        pooled = self.pooled(waves)
        head = self._text_head()
        if head is None:
            return pooled
        vectors = torch.from_numpy(pooled).to(self.device)
        projected = torch.nn.functional.normalize(head.audio_proj(vectors), dim=-1)
        out: Matrix = projected.cpu().numpy().astype(np.float32)
        return out

    @torch.no_grad()
    def tags(self, waves: Sequence[Wave], top_k: int = 10) -> list[list[tuple[str, float]]]:
        """The `top_k` most probable UTS tags per clip, [(tag, probability)] best first (at most K).

        Raises:
            NoTagHead: the checkpoint's objective has no MTC head.
            ValueError: top_k < 1.
        """
        head = self._tag_head()
        if head is None or self.vocab is None:
            raise NoTagHead(
                f"model {self.model_id} ({self.objective}) has no MTC head; tags need an mtc or "
                "multitask checkpoint"
            )
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        if not waves:
            return []
        pooled = torch.from_numpy(self.pooled(waves)).to(self.device)  # (N, D)
        logits = head.linear(pooled)  # (N, D) -> (N, K)
        probs, index = torch.sigmoid(logits).topk(min(top_k, len(self.vocab)), dim=-1)
        return [
            [(self.vocab.tags[j], float(p)) for p, j in zip(row_p, row_i, strict=True)]
            for row_p, row_i in zip(probs.tolist(), index.tolist(), strict=True)
        ]

    @torch.no_grad()
    def embed_texts(self, texts: Sequence[str], *, batch: int = 64) -> Matrix:
        """(N texts) -> (N, dim) unit vectors from the text tower and its projection, in the same
        space as `embed`'s audio vectors.

        Raises:
            NoTextTower: the checkpoint's objective is not contrastive.
        """
        head = self._text_head()
        if head is None:
            raise NoTextTower(
                f"model {self.model_id} ({self.objective}) has no text tower; text embeddings "
                "need a contrastive checkpoint"
            )
        out = np.zeros((len(texts), self.dim), np.float32)
        for start in range(0, len(texts), batch):
            tokens = head.text.tokenize(texts[start : start + batch])
            ids, mask = tokens["input_ids"], tokens["attention_mask"]
            pooled = head.text(ids.to(self.device), mask.to(self.device))  # (B, H)
            projected = torch.nn.functional.normalize(head.text_proj(pooled), dim=-1)
            out[start : start + len(projected)] = projected.cpu().numpy()
        return out
