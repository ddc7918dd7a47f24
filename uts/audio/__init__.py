"""Audio: decode, resample, shape clips, encode FLAC, and compute fbank features."""

from uts.audio.clip import ClipPolicy, prepare_clip
from uts.audio.fbank import NUM_MEL_BINS, Fbank, num_frames
from uts.audio.io import (
    SAMPLE_RATE,
    AudioError,
    Wave,
    decode,
    decode_flac,
    encode_flac,
    resample,
    to_mono,
)

__all__ = [
    "NUM_MEL_BINS",
    "SAMPLE_RATE",
    "AudioError",
    "ClipPolicy",
    "Fbank",
    "Wave",
    "decode",
    "decode_flac",
    "encode_flac",
    "num_frames",
    "prepare_clip",
    "resample",
    "to_mono",
]
