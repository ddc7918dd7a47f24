"""Tag normalisation: one spelling per tag, so document frequencies are not split.

The released paper vocabulary counts `drum` and `drums`, `8-bit`, `8_bit` and `8bit`, `Spanish` and
`spanish` as different tags (114 singular/plural pairs alone). Two functions fix that:

- `normalize_tag(raw)` gives a tag's *form*: lowercase, NFC, surrounding punctuation stripped, runs
  of `-`, `_` and whitespace collapsed to one `-`, the last word's plural folded conservatively.
  Empty and purely numeric tags give `None`.
- `tag_key(form)` gives its *identity*: the form without separators, so `8-bit` and `8bit`, or
  `hip-hop` and `hiphop`, are one tag. The vocabulary builder counts keys and shows each key by its
  most frequent form (readable `high-fidelity`, not `highfidelity`).

Bump NORMALIZER_VERSION whenever a rule changes: vocabularies record it and stage fingerprints
include it, so outputs made with different rules never mix.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

__all__ = ["NORMALIZER_VERSION", "fold_plural", "normalize_tag", "normalize_tags", "tag_key"]

NORMALIZER_VERSION = "1"

# Characters stripped from both ends of a tag. `#`, `+`, `&` and `%` are kept: `c#`, `r&b`, `100%`.
_EDGE_PUNCTUATION = (
    ".,;:!?\"'`()[]{}<>*/\\|~^=-_\u00ab\u00bb\u201c\u201d\u2018\u2019\u201e\u2026\u2013\u2014"
)
_SEPARATORS = re.compile(r"[\s_\-\u2010\u2011\u2012\u2013\u2014]+")
_NUMERIC = re.compile(r"[0-9]+(?:[.,][0-9]+)*")

# Words ending in s that are not plurals (or whose plural reading we must not fold).
_NOT_PLURAL = frozenset(
    """
    alias always atlas bias billiards canvas chaos christmas cosmos diabetes ethos kudos lens
    means measles mumps news pathos paris perhaps physics rabies series sideways species thanks
    texas thermos vegas wales athens jeans mathematics economics politics lyrics electronics
    acoustics dynamics mechanics graphics ethics statistics aerobics gymnastics linguistics
    phonetics harmonics chassis corps
    """.split()
)

# Plurals whose singular the suffix rules below would get wrong.
_IRREGULAR = {
    "aches": "ache",
    "avalanches": "avalanche",
    "biases": "bias",
    "buses": "bus",
    "caches": "cache",
    "calves": "calf",
    "campuses": "campus",
    "canvases": "canvas",
    "children": "child",
    "choruses": "chorus",
    "cliches": "cliche",
    "dominoes": "domino",
    "echoes": "echo",
    "elves": "elf",
    "feet": "foot",
    "gases": "gas",
    "geese": "goose",
    "halves": "half",
    "headaches": "headache",
    "heroes": "hero",
    "hooves": "hoof",
    "knives": "knife",
    "leaves": "leaf",
    "lenses": "lens",
    "lives": "life",
    "loaves": "loaf",
    "men": "man",
    "mice": "mouse",
    "mosquitoes": "mosquito",
    "moustaches": "moustache",
    "mustaches": "mustache",
    "niches": "niche",
    "potatoes": "potato",
    "shelves": "shelf",
    "teeth": "tooth",
    "thieves": "thief",
    "tomatoes": "tomato",
    "tornadoes": "tornado",
    "viruses": "virus",
    "volcanoes": "volcano",
    "wives": "wife",
    "wolves": "wolf",
    "women": "woman",
}

# Nouns in -ie whose plural -ies must not become -y (movies -> movie, not movy).
_IE_NOUNS = frozenset(
    """
    auntie boogie brownie budgie calorie cookie genie goalie hippie hoodie movie pixie rookie
    selfie smoothie techie yuppie zombie walkie talkie
    """.split()
)

# Endings after which a final s is part of the word, not a plural: bass, chorus, analysis,
# famous, plus the adjective-forming -ous.
_KEEP_S_ENDINGS = ("ss", "us", "is", "ous", "ics")


def fold_plural(word: str) -> str:
    """Return the singular of one lowercase word when it is plainly a plural, else the word.

    Conservative by design: a missed fold only splits a tag's count, a wrong fold merges two
    different tags (bass/bas), which is worse.
    """
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    if len(word) < 4 or not word.endswith("s") or word in _NOT_PLURAL:
        return word
    if word.endswith(_KEEP_S_ENDINGS) or word[-2].isdigit():  # 1980s is a decade
        return word
    if word.endswith("ies") and len(word) > 4:
        stem = word[:-3]
        return stem + "ie" if stem + "ie" in _IE_NOUNS else stem + "y"
    if word.endswith(("sses", "shes", "ches", "xes", "zzes")):
        return word[:-2]  # glasses, crashes, beaches (not aches: see _IRREGULAR), boxes, buzzes
    return word[:-1]


def normalize_tag(raw: str) -> str | None:
    """Return the normalised form of one tag, or None when nothing usable is left.

    >>> normalize_tag("  Hi_Hats. ")
    'hi-hat'
    >>> normalize_tag("1990") is None
    True
    """
    text = unicodedata.normalize("NFC", raw.lower())
    text = _SEPARATORS.sub("-", text)  # whitespace, _ and dashes -> one hyphen
    while True:  # to a fixed point, so normalize_tag(form) == form (folding can expose a '.')
        before = text
        text = text.strip(_EDGE_PUNCTUATION).lstrip("#" + _EDGE_PUNCTUATION)  # '#': hashtags
        head, _, last = text.rpartition("-")
        text = f"{head}-{fold_plural(last)}" if head else fold_plural(last)
        if text == before:
            break
    if not text or _NUMERIC.fullmatch(text.replace("-", "")):
        return None
    return text


def tag_key(form: str) -> str:
    """Return the identity of a normalised form: separators removed (`8-bit` -> `8bit`)."""
    return form.replace("-", "")


def normalize_tags(raw_tags: Iterable[str | None]) -> list[str]:
    """Normalise one clip's tags: drop empty/numeric ones, keep first-seen order, one per identity.

    This is what the tagging stage stores per clip.
    """
    seen: set[str] = set()
    out: list[str] = []
    for raw in raw_tags:
        if raw is None:
            continue
        form = normalize_tag(raw)
        if form is None:
            continue
        key = tag_key(form)
        if key not in seen:
            seen.add(key)
            out.append(form)
    return out
