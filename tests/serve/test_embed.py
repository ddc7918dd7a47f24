"""uts.embed against references: the probes' embeddings (uts.probe.encoder.embed), the chunking
rule, the MTC head's own forward pass, the contrastive objective's training forward, and decoding
limits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.serve.conftest import encode, publish_vocab, save_checkpoint, tone
from uts.audio import AudioError
from uts.audio.fbank import Fbank
from uts.embed import (
    AudioLimitError,
    Embedder,
    NoTagHead,
    NoTextTower,
    audio_tokens,
    chunk_bounds,
    decode_audio,
)
from uts.objectives import Pretrainer
from uts.probe.embeddings import checkpoint_source
from uts.probe.encoder import embed as probe_embed
from uts.store import Store
from uts.tags import VocabularyError
from uts.train.config import preset

WAVES = [tone(1.0), tone(1.5, freq=300.0, seed=1), tone(0.4, freq=900.0, seed=2)]


def test_from_checkpoint_names_the_model_and_its_space(
    mtc_embedder: Embedder, mtc_checkpoint: str
) -> None:
    assert mtc_embedder.model_id == "serve-mtc"  # the run's folder
    assert mtc_embedder.objective == "mtc" and mtc_embedder.window_s == 10.0
    assert mtc_embedder.dim == mtc_embedder.model.encoder.output_dim
    assert mtc_embedder.vocab is not None and len(mtc_embedder.vocab) == 50  # K of the smoke preset
    space = checkpoint_source(mtc_checkpoint).space
    fingerprint = mtc_embedder.vocab.meta["vocab_fingerprint"]
    assert mtc_embedder.embedding_space == f"{space}-vocab-{fingerprint}"


def test_short_clips_are_exactly_the_probe_embeddings(mtc_embedder: Embedder) -> None:
    got = mtc_embedder.embed(WAVES)
    assert got.dtype == np.float32 and got.shape == (3, mtc_embedder.dim)
    assert np.array_equal(got, probe_embed(mtc_embedder.model.encoder, WAVES))
    alone = np.concatenate([mtc_embedder.embed([w]) for w in WAVES])  # batch-independent
    np.testing.assert_allclose(alone, got, atol=1e-5)


def test_long_clip_is_the_duration_weighted_mean_of_its_chunks(mtc_embedder: Embedder) -> None:
    wave = tone(25.0, freq=250.0, seed=5)
    step = 160_000  # 10 s
    chunks = [wave[:step], wave[step : 2 * step], wave[2 * step :]]
    per_chunk = probe_embed(mtc_embedder.model.encoder, chunks)
    expected = (np.array([10.0, 10.0, 5.0]) / 25.0) @ per_chunk.astype(np.float64)
    np.testing.assert_allclose(mtc_embedder.embed([wave])[0], expected, atol=1e-5)


def test_chunk_bounds_and_usage_tokens(mtc_embedder: Embedder) -> None:
    s = 16_000
    assert chunk_bounds(25 * s) == [(0, 10 * s), (10 * s, 20 * s), (20 * s, 25 * s)]
    assert chunk_bounds(10 * s) == [(0, 10 * s)]
    assert chunk_bounds(20 * s + s // 2) == [
        (0, 10 * s),
        (10 * s, 20 * s + s // 2),
    ]  # sliver merged
    assert chunk_bounds(11 * s) == [(0, 10 * s), (10 * s, 11 * s)]
    # usage = the encoder's output frame counts
    encoder = mtc_embedder.model.encoder
    for n in (1_600, 16_000, 16_123, 40_000):
        feats, lengths = Fbank()([np.zeros(n, np.float32)])
        with torch.no_grad():
            assert audio_tokens(n) == int(encoder(feats, lengths)[1][0])
    assert audio_tokens(25 * s) == 2 * audio_tokens(10 * s) + audio_tokens(5 * s)


def test_tags_are_the_sigmoid_of_the_mtc_head(mtc_embedder: Embedder) -> None:
    model = mtc_embedder.model
    feats, lengths = Fbank()(WAVES)
    with torch.no_grad():
        frames, frame_lengths = model.encoder(feats, lengths)
        probs = torch.sigmoid(model.objective.head(frames, frame_lengths)).numpy()  # (3, K)
    got = mtc_embedder.tags(WAVES, top_k=5)
    assert mtc_embedder.vocab is not None
    tags = mtc_embedder.vocab.tags
    for row, clip_probs in zip(got, probs, strict=True):
        assert len(row) == 5
        values = [p for _, p in row]
        assert values == sorted(values, reverse=True)
        best = np.argsort(-clip_probs)[:5]
        assert [t for t, _ in row] == [tags[i] for i in best]
        np.testing.assert_allclose(values, clip_probs[best], atol=1e-5)
    assert len(mtc_embedder.tags(WAVES[:1], top_k=500)[0]) == 50  # at most K
    with pytest.raises(NoTextTower, match="contrastive"):
        mtc_embedder.embed_texts(["dog barks"])


def test_a_rebuilt_vocabulary_is_refused(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "store"))
    publish_vocab(store, "v", tuple(f"other{i:02d}" for i in range(50)))
    folder = save_checkpoint(store, "r", preset("smoke"), "v", "0123456789abcdef")
    with pytest.raises(VocabularyError, match="rebuilt"):
        Embedder.from_checkpoint(str(folder))


def test_contrastive_vectors_are_the_training_forward_outputs(
    contrastive_model: Pretrainer,
) -> None:
    embedder = Embedder(contrastive_model, objective="contrastive")
    assert embedder.dim == 512
    head = embedder.model.objective
    texts = ["dog barks", "rain falls on a roof", "piano"]
    tokens = head.text.tokenize(texts)
    feats, lengths = Fbank()(WAVES)
    with torch.no_grad():
        frames, frame_lengths = embedder.model.encoder(feats, lengths)
        outputs = head(frames, frame_lengths,
                       {"text_ids": tokens["input_ids"], "text_mask": tokens["attention_mask"]})  # fmt: skip
    audio, text = embedder.embed(WAVES), embedder.embed_texts(texts)
    np.testing.assert_allclose(audio, outputs["audio"].numpy(), atol=1e-5)
    np.testing.assert_allclose(text, outputs["text"].numpy(), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(audio, axis=1), 1.0, atol=1e-5)
    with pytest.raises(NoTagHead, match="no MTC head"):
        embedder.tags(WAVES, top_k=3)


def test_decode_audio_formats_and_limits() -> None:
    wave = tone(1.0)
    assert np.array_equal(decode_audio(encode(wave)), wave)  # float WAV at 16 kHz: exact
    stereo = decode_audio(encode(tone(1.0, rate=44_100), rate=44_100, fmt="FLAC", channels=2))
    assert stereo.shape == (16_000,) and stereo.dtype == np.float32
    assert decode_audio(encode(tone(0.5, rate=8_000), rate=8_000, fmt="OGG")).shape == (8_000,)
    cases = [
        (encode(tone(1.0, rate=4_000), rate=4_000), "min_rate", "8000"),
        (encode(tone(0.2, rate=192_000), rate=192_000), "max_rate", "96000"),
        (encode(np.zeros(16_000 * 61, np.float32), fmt="FLAC"), "max_seconds", "60"),
        (encode(tone(0.05)), "min_seconds", "0.1"),
    ]
    for data, limit, value in cases:
        with pytest.raises(AudioLimitError) as caught:
            decode_audio(data)
        assert caught.value.limit == limit and limit in str(caught.value)
        assert value in str(caught.value)
    for junk in (b"not audio at all", encode(wave)[:2000]):  # garbage, truncated WAV
        with pytest.raises(AudioError) as error:
            decode_audio(junk)
        assert not isinstance(error.value, AudioLimitError)
