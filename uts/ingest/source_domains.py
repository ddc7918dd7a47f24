"""The domain of a clip whose manifest names only the dataset it came from.

The released UTS/CaptionStew manifests carry no `domain`: `recording.sources[0].source` is the
name of the source dataset (e.g. `audioset`). CaptionStew pools caption corpora of speech, music and
environmental sound, so the dataset name says which of our domains a clip belongs to. Names are
compared without case and without separators (`AudioSet_SL`, `audioset-sl` and `audiosetsl` are
one name); a name that starts with a listed name of four or more letters counts as it
(`wavcaps_freesound` is `wavcaps`, `commonvoice_en` is `commonvoice`). A source that looks like a
path or a file is not a dataset name and gets no domain from this table.
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = ["SOURCE_DOMAINS", "domain_of_source"]

_ENVIRONMENT = (
    "audioset audiocaps clotho wavcaps freesound soundbible bbcsoundeffects vggsound fsd50k "
    "fsdkaggle esc50 urbansound macs autoacd sounddescs tacos epidemicsound"
)
_SPEECH = (
    "librispeech libritts commonvoice voxceleb gigaspeech paraspeechcaps speechcraft textrolspeech "
    "capspeech speechcaps vctk mls multilinguallibrispeech tedlium peoplesspeech voxpopuli "
    "wenetspeech spgispeech emilia expresso iemocap meld cremad ravdess esd msppodcast dailytalk "
    "switchboard fisher aishell fleurs voxlingua"
)
_MUSIC = (
    "musiccaps songdescriber jamendo mtgjamendo mtg fma musicbench lpmusiccaps magnatagatune mtt "
    "musdb gtzan nsynth musicnet maestro medleydb"
)

# Dataset name (lower case, letters and digits only) -> one of uts.data.DOMAINS.
SOURCE_DOMAINS: dict[str, str] = {
    **dict.fromkeys(_ENVIRONMENT.split(), "environment"),
    **dict.fromkeys(_SPEECH.split(), "speech"),
    **dict.fromkeys(_MUSIC.split(), "music"),
}
_PREFIXES = sorted((k for k in SOURCE_DOMAINS if len(k) >= 4), key=len, reverse=True)
_PATH_LIKE = re.compile(r"[/\\]|\.[A-Za-z0-9]{2,4}$")


@lru_cache(maxsize=1024)  # a manifest names a few datasets, over and over
def domain_of_source(name: str) -> str | None:
    """The domain of the dataset called `name`, or None when the table does not know it."""
    if not name or _PATH_LIKE.search(name):
        return None
    key = re.sub(r"[^a-z0-9]", "", name.lower())
    if key in SOURCE_DOMAINS:
        return SOURCE_DOMAINS[key]
    for prefix in _PREFIXES:
        if key.startswith(prefix):
            return SOURCE_DOMAINS[prefix]
    return None
