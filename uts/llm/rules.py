"""The `rules` tagger: tags from a description with no model (the paper's "POS-style" baseline).

Tokenise (words in any script), keep known two-word sound terms whole and note names with their
octave (`c4`, `d#4`), drop stopwords and function words, bring each inflected word to one form
(`lemma`), drop fillers, normalise (uts.tags.normalize). Deterministic and fast.

`lemma` uses lemminflect's English lexicon (its data ships in the wheel): a verb form becomes the
verb (speaks, speaking -> `speak`; barking -> `bark`; revved -> `rev`), so one sound is one
tag however the caption conjugates it. Exceptions, all deliberate:

- participles that describe a sound rather than an action stay as written (`distorted`, `muffled`,
  `compressed`, `soothing`, `piercing`): KEEP_PARTICIPLES;
- nouns in -ing stay (`building`, `ceiling`, `morning`): KEEP_PARTICIPLES too;
- plural nouns are left to the normaliser, which folds them conservatively (`drums` -> `drum`,
  `bass` stays), so the tagger and the vocabulary builder agree;
- words in -ing the lexicon does not know (`whooshing`, `oinking`, `baaing`) lose -ing by a small
  rule (`whoosh`, `oink`, `baa`, `clopping` -> `clop`, `pulsating` -> `pulsate`), never leaving
  fewer than four letters (`earring` stays); unknown words in -ed stay (`unmodulated`);
- comparatives of adjectives become the adjective (louder -> `loud`); adverbs in -ly are dropped
  (`quietly`), nouns and adjectives in -ly are not (`fly`, `family`, `elderly`).
"""

from __future__ import annotations

import re
from functools import lru_cache

from lemminflect import getAllLemmas  # type: ignore[import-untyped]

from uts.tags.normalize import fold_plural, normalize_tags

__all__ = ["FILLERS", "RULES_VERSION", "lemma", "rules_tags"]

# 3: inflections merged (lemminflect), fillers dropped, adverbs in -ly told from nouns (fly, family)
RULES_VERSION = "3"
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
# Content words that say nothing about what is heard, compared after `lemma` (so `occurs`,
# `followed` and `starting` are caught by `occur`, `follow`, `start`). Chosen on real captions:
# the words that ranked high in AudioCaps without naming a source, an action or a quality.
FILLERS = frozenset(
    """
    follow nearby someone something somebody anyone anything everyone everything nothing thing
    time occur two three four five six seven eight nine ten twice multiple begin start continue
    give go come get take make put keep use accompany proceed become try include consist happen
    away along alongside around together back forth present way lot bit part kind sort area series
    """.split()
)  # fmt: skip
# Participles kept as written: they describe how something sounds (or are nouns), not an action.
KEEP_PARTICIPLES = frozenset(
    """
    distorted muffled compressed pitched synthesized amplified muted sustained processed filtered
    clipping controlled
    layered saturated detuned modulated dampened subdued clipped looped arpeggiated syncopated
    isolated enclosed crowded excited relaxed animated agitated frightened distressed annoyed
    surprised amused bored tired aged prolonged repeated mixed motorized pressurized reversed
    slowed accented scripted unscripted polished unpolished balanced focused garbled
    soothing piercing jarring uplifting haunting relaxing calming exciting interesting menacing
    striking daunting reassuring disgusting annoying ongoing oncoming outgoing deafening
    booming lingering amazing boring
    building ceiling clothing morning evening pudding wedding lightning railing during
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
# Forms the lexicon gets wrong (it knows `meowing` only as a noun and `meow` not at all).
LEXICON_GAPS = {"meowing": "meow", "meowed": "meow", "meows": "meow"}
_DOUBLED = re.compile(r"([bcdgkmnprt])\1$")  # doubled for -ing: clopp, chugg (not hiss, tell, buzz)
_E_DROPPED = re.compile(r"[aeiou][tzvcsgu]$")  # a base whose final e went: pulsat(e), synthesiz(e)


def _known(word: str) -> bool:
    return bool(getAllLemmas(word))


def _strip_suffix(word: str, suffix: str) -> str:
    """The base of an -ing/-ed word whose verb the lexicon lacks, by rule; else the word.

    A base shorter than four letters must be unknown to the lexicon too: earring is not ear + -ing,
    thing not the + -ing, but baaing is baa + -ing.
    """
    stem = word[: -len(suffix)]
    for base, rule in (
        (stem[:-1], bool(_DOUBLED.search(stem))),  # clopping -> clop, chugging -> chug
        (stem + "e", _known(stem + "e") and not _known(stem)),  # a known base in -e
        (stem + "e", not _known(stem) and bool(_E_DROPPED.search(stem))),
        (stem, True),  # whooshing -> whoosh, oinking -> oink, meowing -> meow
    ):
        if rule:
            return base if len(base) >= 4 or (len(base) == 3 and not _known(base)) else word
    return word


@lru_cache(maxsize=1 << 17)
def lemma(word: str) -> str | None:
    """One form for a lowercase word's inflections; None for an adverb in -ly (dropped).

    >>> [lemma(w) for w in ("speaks", "speaking", "barking", "revved", "distorted", "drums")]
    ['speak', 'speak', 'bark', 'rev', 'distorted', 'drums']
    """
    if word in KEEP_PARTICIPLES or "-" in word or "'" in word:
        return word
    if word in LEXICON_GAPS:
        return LEXICON_GAPS[word]
    lemmas: dict[str, tuple[str, ...]] = getAllLemmas(word)
    if word.endswith("ly"):
        if lemmas.keys() & {"NOUN", "ADJ", "VERB"}:
            return word  # fly, family, friendly, elderly
        return None  # quietly, repeatedly, and unknown -ly words
    verb = lemmas.get("VERB", ())
    if word.endswith(("ing", "ed")):
        if verb:
            return verb[0]
        if not lemmas:  # unknown to the lexicon: -ing by rule, -ed (mostly adjectives) as written
            return _strip_suffix(word, "ing") if word.endswith("ing") else word
        if word.endswith("ing") and "NOUN" in lemmas:  # meowing: the lexicon has only the noun
            base = _strip_suffix(word, "ing")
            return base if _known(base) else word
        return word
    adjective = lemmas.get("ADJ", (word,))[0]
    if adjective != word and "NOUN" not in lemmas:
        return adjective  # louder, closest -> loud, close
    if word.endswith("s") and verb:
        if "NOUN" not in lemmas:
            return verb[0]  # speaks, occurs: a verb only
        if not _known(fold_plural(word)):
            return lemmas["NOUN"][0]  # goes -> go, not goe; other plurals go to the normaliser
    return word


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
        i += 1
        if _NOTE.fullmatch(word):
            picked.append(word)
            continue
        if len(word) <= 2 or word in STOPWORDS:
            continue
        form = lemma(word)
        if form is not None and len(form) > 2:
            picked.append(form)
    return [tag for tag in normalize_tags(picked) if tag not in FILLERS][:limit]
