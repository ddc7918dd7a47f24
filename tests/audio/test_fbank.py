"""fbank against a straightforward STFT + mel-matrix computation.

Tolerance: 1e-3 absolute on log-mel values (float32 FFTs of 400-sample frames differ by ~1e-5
relative; the log of a mel energy is then within ~1e-4).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from lhotse.features.kaldi.layers import Wav2LogFilterBank

from uts.audio.fbank import Fbank, num_frames

RATE, WINDOW, SHIFT, NFFT, BINS = 16_000, 400, 160, 512, 80
TOLERANCE = 1e-3


def mel(f: torch.Tensor | float) -> torch.Tensor:
    return 1127.0 * torch.log1p(torch.as_tensor(f, dtype=torch.float64) / 700.0)


def mel_matrix(low: float = 20.0, high: float = RATE / 2 - 400.0) -> torch.Tensor:
    """(NFFT//2 + 1, BINS) triangular filters equally spaced on the mel scale (Kaldi's)."""
    fft_mel = mel(torch.arange(NFFT // 2 + 1, dtype=torch.float64) * RATE / NFFT)
    edges = torch.linspace(float(mel(low)), float(mel(high)), BINS + 2, dtype=torch.float64)
    left, centre, right = edges[:-2], edges[1:-1], edges[2:]
    up = (fft_mel[:, None] - left) / (centre - left)
    down = (right - fft_mel[:, None]) / (right - centre)
    weights = torch.clamp(torch.minimum(up, down), min=0.0)
    weights[-1] = 0.0  # Kaldi leaves out the Nyquist bin
    return weights


def povey(length: int = WINDOW) -> torch.Tensor:
    n = torch.arange(length, dtype=torch.float64)
    return (0.5 - 0.5 * torch.cos(2 * math.pi * n / (length - 1))) ** 0.85


def reflect_pad(wave: torch.Tensor) -> torch.Tensor:
    """Kaldi's snip_edges=False framing: frames centred every 10 ms, edges mirrored."""
    frames = num_frames(len(wave))
    left = (WINDOW - SHIFT) // 2
    right = (frames - 1) * SHIFT + WINDOW - len(wave) - left
    tail = torch.flip(wave[-right:], (0,)) if right > 0 else wave[:0]
    return torch.cat([torch.flip(wave[:left], (0,)), wave, tail])


def log_mel(power: torch.Tensor) -> torch.Tensor:
    energies = power @ mel_matrix()
    return torch.log(torch.clamp(energies, min=torch.finfo(torch.float32).eps))


@pytest.fixture
def wave() -> torch.Tensor:
    rng = np.random.default_rng(0)
    t = np.arange(RATE * 2 + 123) / RATE
    signal = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(t.size)
    return torch.from_numpy(signal.astype(np.float32))


def test_plain_configuration_matches_torch_stft(wave: torch.Tensor) -> None:
    layer = Wav2LogFilterBank(num_filters=BINS, remove_dc_offset=False, preemph_coeff=0.0)
    ours = layer(wave[None])[0].double()
    # torch.stft centres a 400-sample window in each 512-sample frame: shift the signal by 56.
    offset = (NFFT - WINDOW) // 2
    padded = torch.nn.functional.pad(reflect_pad(wave).double(), (offset, offset))
    spec = torch.stft(
        padded, NFFT, SHIFT, WINDOW, window=povey(), center=False, return_complex=True
    )
    reference = log_mel(spec.abs().T ** 2)
    assert ours.shape == reference.shape == (num_frames(len(wave)), BINS)
    assert (ours - reference).abs().max().item() < TOLERANCE


def test_production_fbank_matches_explicit_kaldi_steps(wave: torch.Tensor) -> None:
    feats, lengths = Fbank()([wave.numpy()])
    frames = reflect_pad(wave).double().unfold(0, WINDOW, SHIFT)  # (T, 400)
    frames = frames - frames.mean(dim=1, keepdim=True)  # DC offset
    previous = torch.cat([frames[:, :1], frames[:, :-1]], dim=1)
    frames = (frames - 0.97 * previous) * povey()  # pre-emphasis, window
    reference = log_mel(torch.fft.rfft(frames, n=NFFT).abs() ** 2)
    assert lengths.tolist() == [reference.shape[0]]
    assert (feats[0].double() - reference).abs().max().item() < TOLERANCE


def test_batch_of_different_lengths(wave: torch.Tensor) -> None:
    short = wave[: RATE // 2].numpy()
    feats, lengths = Fbank()([wave.numpy(), short])
    alone, _ = Fbank()([short])
    assert lengths.tolist() == [num_frames(len(wave)), 50]
    n = int(lengths[1])
    assert torch.allclose(feats[1, :n], alone[0, :n], atol=1e-5)  # the end frame too (recomputed)
    for cut in (RATE // 2 + 7, RATE // 3 + 160, 999, 400):  # any length, batched or alone
        batched, m = Fbank()([wave.numpy(), wave[:cut].numpy()])
        single, _ = Fbank()([wave[:cut].numpy()])
        assert torch.allclose(batched[1, : int(m[1])], single[0], atol=1e-5), cut
    assert feats[1, n:].abs().sum() == 0  # padding rows are zero
