"""Turning a decoded recording into a stored clip: mono, 16 kHz, trimmed, cropped/padded, peak-normalised."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from uts.audio.io import SAMPLE_RATE, AudioError, Wave, resample, to_mono

__all__ = ["ClipPolicy", "prepare_clip"]


@dataclass(frozen=True, kw_only=True)
class ClipPolicy:
    """How an ingest shapes every clip. Durations in seconds."""

    min_s: float = 1.0  # shorter clips are padded with silence to this
    max_s: float = 10.0  # longer clips are cropped to this (from the start, after trimming)
    max_source_s: float = 3600.0  # a longer source is refused as absurd
    trim_db: float | None = -50.0  # trim leading/trailing audio this far below the peak; None: keep
    silence_db: float = -60.0  # a recording whose peak is below this is refused as silent
    peak_normalize: bool = True  # scale to a peak of 0.9 (loudness cannot reveal the source)
    pad_short: bool = True

    def fingerprint(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _db_to_amplitude(db: float) -> float:
    return float(10.0 ** (db / 20.0))


def prepare_clip(wave: Wave, rate: int, policy: ClipPolicy) -> Wave:
    """(channels, samples) at `rate` -> (samples,) at 16 kHz, shaped by `policy`.

    Raises:
        AudioError: silent, or absurdly long.
    """
    seconds = wave.shape[-1] / rate
    if seconds > policy.max_source_s:
        raise AudioError(
            f"duration {seconds:.0f} s exceeds the limit of {policy.max_source_s:.0f} s"
        )
    mono = resample(to_mono(wave), rate, SAMPLE_RATE)
    peak = float(np.max(np.abs(mono))) if mono.size else 0.0
    if peak < _db_to_amplitude(policy.silence_db):
        raise AudioError(f"silent (peak {20 * np.log10(max(peak, 1e-12)):.0f} dBFS)")
    if policy.trim_db is not None:
        # Trim whole 10 ms blocks whose peak is far below the clip's, never single samples.
        block = SAMPLE_RATE // 100
        padded = np.pad(np.abs(mono), (0, -mono.size % block))
        loud = np.flatnonzero(
            padded.reshape(-1, block).max(axis=1) >= _db_to_amplitude(policy.trim_db) * peak
        )
        mono = mono[loud[0] * block : (loud[-1] + 1) * block]
    mono = mono[: int(policy.max_s * SAMPLE_RATE)]
    shortfall = int(policy.min_s * SAMPLE_RATE) - mono.size
    if shortfall > 0 and policy.pad_short:
        mono = np.pad(mono, (0, shortfall))
    if policy.peak_normalize:
        mono = mono * (0.9 / float(np.max(np.abs(mono))))
    out: Wave = mono.astype(np.float32)
    return out
