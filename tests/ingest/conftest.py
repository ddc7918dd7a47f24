"""A folder of real-looking audio with every kind of broken file, and what ingest should make of it."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf


def tone(
    seconds: float, rate: int, freq: float = 440.0, channels: int = 1, amp: float = 0.3
) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    wave = amp * np.sin(2 * np.pi * freq * t)
    return np.stack([wave] * channels, axis=1) if channels > 1 else wave


def write(
    path: Path, wave: np.ndarray, rate: int, fmt: str | None = None, subtype: str | None = None
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, wave, rate, format=fmt, subtype=subtype)


# (relative path, expected duration in seconds) of the inputs that must become clips.
GOOD = {
    "speech/a.wav": 2.0,
    "speech/b.flac": 3.0,
    "music/stereo44k.ogg": 1.5,
    "music/long.wav": 10.0,  # 12 s, cropped to --max-s
    "env/short.opus": 1.0,  # 0.3 s, padded to --min-s
    "env/c.mp3": None,  # mp3 frames round the length: checked loosely
}
# relative path -> a fragment of the reject reason
BAD = {
    "broken/empty.wav": "empty file (0 bytes)",
    "broken/truncated.wav": "truncated",
    "broken/zero_frames.wav": "zero-length audio",
    "broken/silent.flac": "silent",
    "broken/not_audio.flac": "cannot decode",
    "broken/dangling.wav": "unreadable",
    "broken/absurd.wav": "exceeds the limit",
    "ghost.wav": "metadata row has no file",
    "speech/bad_domain.wav": "metadata domain 'podcast'",
}


@pytest.fixture
def messy_folder(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "audio"
    write(root / "speech/a.wav", tone(2.0, 16000), 16000)
    write(root / "speech/b.flac", tone(3.0, 22050, 220), 22050)
    write(root / "music/stereo44k.ogg", tone(1.5, 44100, 330, channels=2), 44100)
    write(root / "music/long.wav", tone(12.0, 16000, 550), 16000)
    write(root / "env/short.opus", tone(0.3, 48000, 660), 48000, "OGG", "OPUS")
    write(root / "env/c.mp3", tone(2.0, 16000, 770), 16000, "MP3")
    write(root / "speech/bad_domain.wav", tone(1.0, 16000), 16000)
    (root / "broken").mkdir()
    (root / "broken/empty.wav").write_bytes(b"")
    buffer = io.BytesIO()
    sf.write(buffer, tone(2.0, 16000), 16000, format="WAV")
    (root / "broken/truncated.wav").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    write(root / "broken/zero_frames.wav", np.zeros(0), 16000, "WAV")
    write(root / "broken/silent.flac", np.zeros(16000), 16000)
    (root / "broken/not_audio.flac").write_text("this is a text file with an audio extension")
    (root / "broken/dangling.wav").symlink_to(root / "does-not-exist.wav")
    write(root / "broken/absurd.wav", tone(30.0, 8000), 8000)  # over --max-source-s 20 in the tests
    (root / "notes.txt").write_text("not audio: skipped, not rejected")
    metadata = tmp_path / "meta.jsonl"
    rows = [
        {
            "path": "speech/a.wav",
            "domain": "speech",
            "text": "hello there",
            "text_kind": "transcript",
            "labels": {"speaker": "s1"},
            "group": "s1",
        },
        {"path": "speech/b.flac", "domain": "speech", "labels": "s2"},
        {
            "path": "music/stereo44k.ogg",
            "domain": "music",
            "labels": json.dumps({"family": "guitar"}),
        },
        {"path": "music/long.wav", "domain": "music"},
        {"path": "ghost.wav", "domain": "speech"},
        {"path": "speech/bad_domain.wav", "domain": "podcast"},
    ]
    metadata.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root, metadata
