from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from uts.tags import normalize_tag, normalize_tags, tag_key
from uts.tags.normalize import fold_plural


@pytest.mark.parametrize(
    ("raw", "form"),
    [
        ("Drums", "drum"),
        ("birds", "bird"),
        ("  Hi_Hats. ", "hi-hat"),
        ("sound effects", "sound-effect"),
        ("High_Fidelity", "high-fidelity"),
        ('"Rock"', "rock"),
        ("#chill", "chill"),
        ("(guitar)", "guitar"),
        ("wolves", "wolf"),
        ("melodies", "melody"),
        ("movies", "movie"),
        ("beaches", "beach"),
        ("glasses", "glass"),
        ("boxes", "box"),
        ("buzzes", "buzz"),
        ("switches", "switch"),
        ("headaches", "headache"),
        ("pies", "pie"),
        ("waves", "wave"),
        ("Spanish", "spanish"),
        ("a  cappella", "a-cappella"),
        ("c#", "c#"),
        ("r&b", "r&b"),
        ("4/4", "4/4"),
        ("1980s", "1980s"),
    ],
)
def test_forms(raw: str, form: str) -> None:
    assert normalize_tag(raw) == form


@pytest.mark.parametrize(
    "word",
    [
        "bass",
        "glass",
        "chorus",
        "news",
        "series",
        "jazz",
        "bus",
        "species",
        "famous",
        "analysis",
        "acoustics",
        "lens",
        "chaos",
        "always",
        "gas",
        "hiss",
        "brass",
        "canvas",
    ],
)
def test_words_that_are_not_plurals_stay(word: str) -> None:
    assert fold_plural(word) == word
    assert normalize_tag(word) == word


@pytest.mark.parametrize("raw", ["", "   ", "...", "-_-", "42", "1990", "5.1", "3-2-1", "#"])
def test_empty_and_numeric_tags_are_dropped(raw: str) -> None:
    assert normalize_tag(raw) is None


@pytest.mark.parametrize(
    "variants",
    [
        ["8-bit", "8_bit", "8bit", "8 bit"],
        ["high-fidelity", "high_fidelity", "highfidelity", "High Fidelity"],
        ["hip-hop", "hiphop", "Hip_Hop"],
        ["drum", "drums", "Drums."],
    ],
)
def test_variants_share_one_identity(variants: list[str]) -> None:
    keys = {tag_key(f) for f in map(normalize_tag, variants) if f is not None}
    assert len(keys) == 1


def test_normalize_tags_dedups_by_identity_keeping_first_spelling() -> None:
    assert normalize_tags(["Drums", "drum", None, "8-bit", "8bit", "", "42", "bass"]) == [
        "drum",
        "8-bit",
        "bass",
    ]


@given(st.text(max_size=30))
def test_normalize_is_idempotent(raw: str) -> None:
    form = normalize_tag(raw)
    if form is not None:
        assert normalize_tag(form) == form
        assert form == form.lower().strip()
        assert not form.startswith("-") and not form.endswith("-")
