"""Decoding and encoding audio with soundfile (libsndfile: wav, flac, ogg/vorbis, opus, mp3)."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import IO, Literal

import numpy as np
import numpy.typing as npt
import soundfile as sf
from scipy.signal import resample_poly

__all__ = [
    "SAMPLE_RATE",
    "AudioError",
    "decode",
    "decode_flac",
    "encode_flac",
    "resample",
    "to_mono",
]

SAMPLE_RATE = 16_000  # everything in the store is 16 kHz mono
Wave = npt.NDArray[np.float32]


class AudioError(ValueError):
    """Audio that cannot be used; the message says why (it becomes a reject reason)."""


def decode(source: str | Path | bytes | IO[bytes]) -> tuple[Wave, int]:
    """Decode a file, bytes or file object to float32 (channels, samples) in [-1, 1] and its rate.

    Raises:
        AudioError: unreadable, unknown format, truncated, or zero-length.
    """
    handle = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        with sf.SoundFile(handle) as audio:
            declared, rate = audio.frames, audio.samplerate
            data = audio.read(dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, EOFError) as exc:
        reason = re.sub(r"^Error opening [^:]*: ", "", str(exc))  # drop '<BytesIO at 0x..>'
        raise AudioError(f"cannot decode: {reason}") from exc
    if data.shape[0] == 0:
        raise AudioError("zero-length audio")
    if isinstance(source, bytes) and (missing := _riff_missing_bytes(source)):
        raise AudioError(f"truncated: the WAV data chunk is {missing} bytes short")
    if data.shape[0] < declared:
        raise AudioError(
            f"truncated: header declares {declared} frames, only {data.shape[0]} present"
        )
    wave: Wave = np.ascontiguousarray(data.T)
    if not np.isfinite(wave).all():
        raise AudioError("audio contains NaN or infinite samples")
    return wave, int(rate)


def _riff_missing_bytes(data: bytes) -> int:
    """Bytes missing from a WAV's data chunk (libsndfile silently reads what is there), else 0."""
    if len(data) < 12 or data[:4] not in (b"RIFF", b"RIFX") or data[8:12] != b"WAVE":
        return 0
    order: Literal["little", "big"] = "little" if data[:4] == b"RIFF" else "big"
    offset = 12
    while offset + 8 <= len(data):
        chunk, size = (
            data[offset : offset + 4],
            int.from_bytes(data[offset + 4 : offset + 8], order),
        )
        if chunk == b"data":
            if size == 0xFFFFFFFF:  # streamed WAV with unknown length
                return 0
            return max(0, offset + 8 + size - len(data))
        offset += 8 + size + (size & 1)
    return 0


def to_mono(wave: Wave) -> Wave:
    """(channels, samples) -> (samples,), the channel mean."""
    mono: Wave = wave.mean(axis=0, dtype=np.float32) if wave.ndim == 2 else wave
    return mono


def resample(wave: Wave, rate: int, target: int = SAMPLE_RATE) -> Wave:
    """Polyphase resampling (scipy), exact for rational rate ratios: (samples,) -> (samples',)."""
    if rate == target:
        return wave
    if rate <= 0:
        raise AudioError(f"invalid sample rate {rate}")
    divisor = np.gcd(rate, target)
    out: Wave = resample_poly(wave, target // divisor, rate // divisor).astype(np.float32)
    return out


def encode_flac(wave: Wave, rate: int = SAMPLE_RATE) -> bytes:
    """(samples,) float in [-1, 1] -> FLAC bytes, PCM 16-bit."""
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(wave, -1.0, 1.0), rate, format="FLAC", subtype="PCM_16")
    return buffer.getvalue()


def decode_flac(data: bytes) -> Wave:
    """FLAC bytes from a shard -> (samples,) float32 at 16 kHz."""
    wave, rate = decode(data)
    if rate != SAMPLE_RATE:
        raise AudioError(f"stored audio is {rate} Hz, expected {SAMPLE_RATE}")
    return to_mono(wave)
