"""The rules tagger's lemmas and fillers (issue 23): one tag per word however a caption inflects it."""

from __future__ import annotations

import pytest

from uts.llm.rules import FILLERS, RULES_VERSION, lemma, rules_tags
from uts.tags.normalize import normalize_tag


@pytest.mark.parametrize(
    ("forms", "tag"),
    [
        (["speak", "speaks", "speaking"], "speak"),
        (["bark", "barks", "barking", "barked"], "bark"),
        (["vehicle", "vehicles"], "vehicle"),
        (["hum", "hums", "humming", "hummed"], "hum"),
        (["rev", "revs", "revving", "revved"], "rev"),
        (["type", "types", "typing", "typed"], "type"),
        (["whoosh", "whooshes", "whooshing"], "whoosh"),  # -ing unknown to the lexicon: by rule
        (["meow", "meows", "meowing"], "meow"),  # the lexicon knows meowing only as a noun
        (["loud", "louder", "loudest"], "loud"),
        (["fly", "flies", "flying"], "fly"),
    ],
)
def test_inflections_become_one_tag(forms: list[str], tag: str) -> None:
    assert {tuple(rules_tags(f"A {form} here.")) for form in forms} == {(tag,)}


@pytest.mark.parametrize(
    "word",
    ["distorted", "reverberant", "metallic", "muffled", "compressed", "soothing", "piercing",
     "speech", "bass", "glass", "morning", "ceiling", "building", "thing", "earring", "hi-hat"],
)  # fmt: skip
def test_qualities_and_nouns_stay_as_written(word: str) -> None:
    assert lemma(word) == word


def test_words_the_lexicon_lacks_follow_the_suffix_rule() -> None:
    assert [lemma(w) for w in ("baaing", "clopping", "chuffing", "pulsating", "oinking")] == [
        "baa", "clop", "chuff", "pulsate", "oink"
    ]  # fmt: skip
    assert rules_tags("sheep baa and baaing, a horse clops and clopping") == [
        "sheep",
        "baa",
        "horse",
        "clop",
    ]
    assert lemma("unmodulated") == "unmodulated"  # unknown -ed words are mostly adjectives
    assert lemma("storytelling") == "storytell"  # ll is not undoubled: tell, hiss, buzz


def test_plurals_are_left_to_the_normaliser() -> None:
    for word in ("drums", "drum", "glasses", "lyrics", "series", "bass"):
        assert rules_tags(f"the {word}") == [normalize_tag(word)] or word in FILLERS
    assert rules_tags("drums and a drum") == ["drum"]
    assert lemma("goes") == "go"  # the normaliser alone would say "goe"


def test_fillers_are_dropped() -> None:
    text = ("Someone speaks nearby, followed by two dogs barking; something occurs then the engine "
            "starts and continues for a long time.")  # fmt: skip
    assert rules_tags(text) == ["speak", "dog", "bark", "engine", "long"]
    for word in ("followed", "nearby", "someone", "something", "time", "times", "occur", "occurs",
                 "two", "then", "starting"):  # fmt: skip
        assert rules_tags(word) == [], word


def test_adverbs_in_ly_are_dropped_but_not_nouns_or_adjectives() -> None:
    assert rules_tags("quietly repeatedly briefly") == []
    assert rules_tags("a fly near the family, an elderly man") == [
        "fly",
        "family",
        "elderly",
        "man",
    ]


def test_same_caption_in_other_tenses_gives_the_same_tags() -> None:
    present = rules_tags("A dog barks and a man speaks while an engine idles")
    progressive = rules_tags("A dog is barking and a man is speaking while an engine is idling")
    assert present == progressive == ["dog", "bark", "man", "speak", "engine", "idle"]


def test_version_is_bumped() -> None:
    assert RULES_VERSION == "3"
