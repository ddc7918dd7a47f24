"""Audio: decode, resample, shape clips, encode FLAC. Features: `uts.audio.fbank`.

The fbank extractor (torch + lhotse) is not imported here, so decode-only workers start fast.
"""

from uts.audio.clip import ClipPolicy, prepare_clip
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
    "SAMPLE_RATE",
    "AudioError",
    "ClipPolicy",
    "Wave",
    "decode",
    "decode_flac",
    "encode_flac",
    "prepare_clip",
    "resample",
    "to_mono",
]
