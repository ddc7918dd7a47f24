"""The `rules` tagger: tags from a description with no model (the paper's "POS-style" baseline).

Tokenise (words in any script), keep known two-word sound terms whole and note names with their
octave (`c4`, `d#4`), drop stopwords and function words, keep content words, normalise
(uts.tags.normalize). Deterministic and fast.
"""

from __future__ import annotations

import re

from uts.tags.normalize import normalize_tags

__all__ = ["RULES_VERSION", "rules_tags"]

RULES_VERSION = "2"  # 2: words in any script, note names (C4, D#4) kept
_WORD = re.compile(r"[^\W\d_][\w#\-']*")  # starts with a letter (any script)
_NOTE = re.compile(r"[a-g][#b]?\d")  # a pitch with its octave: short, but a real sound term
STOPWORDS = frozenset(
    """
    a about above after again against all also am an and any are as at be because been before being
    below between both but by can could did do does doing down during each either every few for from
    further had has have having he her here hers herself him himself his how i if in into is it its
    itself just like made make makes many may me might more most much must my myself near no nor not
    now of off on once one only or other our ours ourselves out over own perhaps quite rather same she
    should so some such than that the their theirs them themselves then there these they this those
    through to too under until up upon us very via was we were what when where which while who whom
    why will with within without would you your yours yourself yourselves
    sound sounds audio clip recording heard hear hears can listen listener seems seem appears appear
    throughout overall while single several various another background foreground possibly likely
    """.split()
)  # fmt: skip
# Two-word sound terms kept as one tag (written by us; extend freely).
TERMS = frozenset(
    """
    bass-drum hi-hat snare-drum kick-drum electric-guitar acoustic-guitar bass-guitar drum-machine
    sound-effect background-noise white-noise field-recording video-game male-voice female-voice
    church-bell door-bell car-horn dog-bark bird-song sine-wave square-wave room-tone tape-hiss
    string-section brass-section sub-bass synth-pad rain-fall water-drop foot-step
    """.split()
)  # fmt: skip


def rules_tags(description: str, *, limit: int = 10) -> list[str]:
    """Up to `limit` tags from a description, in order of first appearance."""
    words = _WORD.findall(description.lower())
    picked: list[str] = []
    i = 0
    while i < len(words):
        pair = f"{words[i]}-{words[i + 1]}" if i + 1 < len(words) else ""
        if pair in TERMS:
            picked.append(pair)
            i += 2
            continue
        word = words[i].strip("'-")
        if _NOTE.fullmatch(word) or (
            len(word) > 2 and word not in STOPWORDS and not word.endswith("ly")
        ):
            picked.append(word)
        i += 1
    return normalize_tags(picked)[:limit]
