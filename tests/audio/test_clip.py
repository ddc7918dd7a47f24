from __future__ import annotations

import numpy as np
import pytest

from uts.audio import (
    SAMPLE_RATE,
    AudioError,
    ClipPolicy,
    decode_flac,
    encode_flac,
    prepare_clip,
    resample,
)


def test_resample_keeps_duration_and_frequency() -> None:
    t = np.arange(44100) / 44100
    wave = np.sin(2 * np.pi * 1000 * t).astype(np.float32)
    out = resample(wave, 44100)
    assert len(out) == SAMPLE_RATE
    spectrum = np.abs(np.fft.rfft(out))
    assert np.argmax(spectrum) == pytest.approx(1000, abs=1)  # 1 Hz bins over 1 s


def test_policy_mixes_trims_crops_pads_and_normalises() -> None:
    rate = 8000
    loud = 0.5 * np.sin(2 * np.pi * 300 * np.arange(rate * 2) / rate)
    stereo = np.stack([np.r_[np.zeros(rate), loud], np.r_[np.zeros(rate), loud]]).astype(np.float32)
    out = prepare_clip(stereo, rate, ClipPolicy(max_s=10.0))
    assert len(out) == pytest.approx(
        2 * SAMPLE_RATE, abs=SAMPLE_RATE // 100
    )  # leading second trimmed
    assert np.abs(out).max() == pytest.approx(0.9)
    cropped = prepare_clip(stereo, rate, ClipPolicy(max_s=1.5, trim_db=None))
    assert len(cropped) == int(1.5 * SAMPLE_RATE)
    short = prepare_clip(loud[None, :800].astype(np.float32), rate, ClipPolicy(min_s=1.0))
    assert len(short) == SAMPLE_RATE and np.all(short[int(0.1 * SAMPLE_RATE) + 1 :] == 0)


@pytest.mark.parametrize(
    ("wave", "policy", "reason"),
    [
        (np.zeros((1, 16000), np.float32), ClipPolicy(), "silent"),
        (np.full((1, 16000), 1e-4, np.float32), ClipPolicy(), "silent"),
        (
            np.ones((1, 16000 * 30), np.float32),
            ClipPolicy(max_source_s=20),
            "exceeds the limit of 20 s",
        ),
    ],
)
def test_policy_refusals(wave: np.ndarray, policy: ClipPolicy, reason: str) -> None:
    with pytest.raises(AudioError, match=reason):
        prepare_clip(wave, 16000, policy)


def test_flac_round_trip_is_16_bit_exact() -> None:
    wave = (np.round(np.sin(np.arange(16000) / 10) * 20000) / 32768).astype(np.float32)
    assert np.array_equal(decode_flac(encode_flac(wave)), wave)
