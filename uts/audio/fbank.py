"""80-dim log-mel filterbank features, 25 ms window, 10 ms shift (100 frames/s).

Kaldi-compatible (lhotse's pure-torch extractor: no dither, DC offset removed, pre-emphasis 0.97,
povey window, 512-point FFT, mel bins from 20 Hz to 7600 Hz, `snip_edges=False`), as the paper's
Zipformer recipes use. A clip of n samples gives (n + 80) // 160 frames.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from lhotse.features.kaldi.layers import Wav2LogFilterBank

from uts.audio.io import SAMPLE_RATE, Wave

__all__ = ["FRAME_SHIFT", "NUM_MEL_BINS", "Fbank", "num_frames"]

NUM_MEL_BINS = 80
FRAME_SHIFT = SAMPLE_RATE // 100  # samples per 10 ms
_TAIL = 4 * 400  # samples re-read to recompute the end frames of a padded clip (several windows)
_WINDOW_END = (
    FRAME_SHIFT // 2 + 200
)  # frame i (snip_edges=False) reads samples up to i * shift + this


def num_frames(num_samples: int) -> int:
    """Frames for a clip of `num_samples` samples (Kaldi, snip_edges=False)."""
    return (num_samples + FRAME_SHIFT // 2) // FRAME_SHIFT


class Fbank:
    """Batched fbank extraction on CPU (or any torch device)."""

    def __init__(
        self, device: str | torch.device = "cpu", *, num_mel_bins: int = NUM_MEL_BINS
    ) -> None:
        self.device = torch.device(device)
        self._layer = Wav2LogFilterBank(sampling_rate=SAMPLE_RATE, num_filters=num_mel_bins).to(
            self.device
        )
        self._layer.eval()

    @torch.no_grad()
    def __call__(self, waves: Sequence[Wave]) -> tuple[torch.Tensor, torch.Tensor]:
        """B waveforms (samples,) at 16 kHz -> features (B, T, 80) float32 and lengths (B,) int64.

        Clips are zero-padded to the longest; rows past a clip's length are zeros. A shorter clip's
        last frame would see the padding instead of Kaldi's reflection at the end, so it is
        recomputed from the clip's own tail: every clip's features are exactly those of the clip
        extracted alone, whatever it is batched with.
        """
        lengths = torch.tensor([num_frames(len(w)) for w in waves], dtype=torch.int64)
        longest = max(len(w) for w in waves)
        batch = np.zeros((len(waves), longest), dtype=np.float32)
        for row, wave in enumerate(waves):
            batch[row, : len(wave)] = wave
        feats = self._layer(torch.from_numpy(batch).to(self.device)).float()
        steps = torch.arange(feats.shape[1], device=feats.device)
        feats = feats.masked_fill(
            (steps[None, :] >= lengths.to(feats.device)[:, None])[..., None], 0.0
        )
        for row, wave in enumerate(waves):
            if len(wave) < longest and lengths[row] > 0:
                # A tail starting on a frame boundary ends in the same frames as the clip.
                start = max(0, (len(wave) - _TAIL) // FRAME_SHIFT * FRAME_SHIFT)
                tail = torch.from_numpy(np.ascontiguousarray(wave[start:], dtype=np.float32))
                n = int(lengths[row])
                # frames whose 25 ms window reaches past the clip's end (one or two)
                edge = sum(
                    1 for i in range(max(0, n - 3), n) if i * FRAME_SHIFT + _WINDOW_END > len(wave)
                )
                if edge:
                    redo = self._layer(tail[None].to(self.device)).float()[0]
                    feats[row, n - edge : n] = redo[-edge:]
        return feats, lengths
