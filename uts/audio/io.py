"""Decoding and encoding audio with soundfile (libsndfile: wav, flac, ogg/vorbis, opus, mp3)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import IO

import numpy as np
import numpy.typing as npt
import soundfile as sf
from scipy.signal import resample_poly

__all__ = ["SAMPLE_RATE", "AudioError", "decode", "decode_flac", "encode_flac", "resample", "to_mono"]

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
        data, rate = sf.read(handle, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, EOFError) as exc:
        raise AudioError(f"cannot decode: {exc}") from exc
    if data.shape[0] == 0:
        raise AudioError("zero-length audio")
    wave: Wave = np.ascontiguousarray(data.T)
    if not np.isfinite(wave).all():
        raise AudioError("audio contains NaN or infinite samples")
    return wave, int(rate)


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
