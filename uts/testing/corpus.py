"""Tiny audio made on the spot for tests and benchmarks: tones and noise captioned with one of a
few sounds (a `folder` source), and HEAR-style probe task folders. The tagged store built from the
tones by the real stages is stages.fixtures.make_tagged_store (it needs the stages, which uts
does not import)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf

__all__ = ["SOUNDS", "make_task_folder", "write_tone_folder"]

SOUNDS = ("dog barks", "rain falls", "bird chirps", "engine hums", "piano melody", "drum beats")


def write_tone_folder(root: Path, *, clips: int = 40, seconds: tuple[float, ...] = (1.0, 1.5, 2.0, 2.5, 3.0),
                      seed: int = 0) -> tuple[Path, Path]:  # fmt: skip
    """Write `clips` tones with noise under root/audio, each captioned with one of SOUNDS in
    root/meta.jsonl (the `folder` source's metadata); returns (audio folder, metadata file)."""
    audio = root / "audio"
    audio.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(clips):
        kind = i % len(SOUNDS)
        t = np.arange(int(16000 * seconds[i % len(seconds)])) / 16000
        wave = 0.3 * np.sin(2 * np.pi * (150 + 120 * kind) * t) + 0.05 * rng.standard_normal(len(t))
        sf.write(audio / f"c{i:04d}.wav", wave.astype(np.float32), 16000)
        rows.append(
            {"path": f"c{i:04d}.wav", "text": f"A {SOUNDS[kind]} loudly.", "domain": "environment"}
        )
    meta = root / "meta.jsonl"
    meta.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return audio, meta


def _tone(path: Path, freq: float, rate: int, seconds: float, rng: np.random.Generator) -> None:
    t = np.arange(int(rate * seconds)) / rate
    wave = 0.4 * np.sin(2 * np.pi * freq * t) + 0.02 * rng.standard_normal(len(t))
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, wave.astype(np.float32), rate)


def make_task_folder(root: Path, name: str, kind: str, metric: str, domain: str, classes: list[str],
                     *, clips: int = 36) -> Path:  # fmt: skip
    """A HEAR-style probe task folder root/name with its own audio/ (tones whose pitch is the
    class; wav and flac, 16 and 44.1 kHz), 3 seeded splits; returns the folder."""
    from uts.probe.tasks import Task, write_task

    rng = np.random.default_rng(len(name))
    labels, groups = {}, {}
    for i in range(clips):
        first = i % len(classes)
        chosen = (
            (classes[first], classes[(first + 1) % len(classes)])
            if kind == "multilabel" and i % 2
            else (classes[first],)
        )
        clip = f"clips/{name}_{i:03d}.{'flac' if i % 3 == 0 else 'wav'}"
        _tone(root / name / "audio" / clip, 200.0 * (1 + first), 44100 if i % 4 == 0 else 16000,
              1.0 + (i % 3) * 0.5, rng)  # fmt: skip
        labels[clip], groups[clip] = chosen, f"g{i // 2}"
    extra = ("chroma_accuracy",) if name == "nsynth_pitch" else ()
    task = Task(name=name, prediction_type=kind, metric=metric, labels=labels, groups=groups,
                audio={"folder": "audio"}, domain=domain, extra_metrics=extra)  # fmt: skip
    write_task(task, root / name, seeds=(0, 1, 2))
    return root / name
