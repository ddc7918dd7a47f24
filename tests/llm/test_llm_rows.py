"""Row logic shared by every LLM backend: parsing, caption lint, the rules tagger, prompts."""

from __future__ import annotations

import pytest

from uts.llm import lint_caption, load_prompt, parse_labels, rules_tags
from uts.llm.chat import Reply, tag_row


@pytest.mark.parametrize(
    ("raw", "tags"),
    [
        ('{"labels": ["rain", "thunder", "Storm"]}', ("rain", "thunder", "storm")),
        (
            'Sure! ```json\n{"labels": ["Dogs", "bark", "dogs"]}\n``` Hope this helps.',
            ("dog", "bark"),
        ),
        ('Here you go: {"labels": ["car", "engine"]} -- done', ("car", "engine")),
        ('["piano", "melody"]', ("piano", "melody")),
        ('{"labels": ["hi_hat", "8-bit", "8bit"]}', ("hi-hat", "8-bit")),
    ],
)
def test_parse_labels_accepts(raw: str, tags: tuple[str, ...]) -> None:
    parsed = parse_labels(raw)
    assert parsed.error is None and parsed.tags == tags


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty output"),
        ("I cannot help with that.", "no JSON"),
        ('{"tags": ["rain"]}', 'expected {"labels"'),
        ('{"labels": ["rain", 3]}', "must all be strings"),
        ('{"labels": ["' + "x" * 60 + '"]}', "longer than 40"),
        ('{"labels": ["狗", "lluvia-ñ"]}', "every label is outside a-z"),
        ('{"labels": ["", "  "]}', "no usable label"),
    ],
)
def test_parse_labels_refuses_with_a_reason(raw: str, reason: str) -> None:
    parsed = parse_labels(raw)
    assert parsed.tags == () and parsed.error is not None and reason in parsed.error


def test_language_en_drops_the_labels_in_another_script_and_keeps_the_rest() -> None:
    parsed = parse_labels('{"labels": ["狗", "rain", "norteño", "dog-bark"]}')
    assert parsed.error is None
    assert parsed.tags == ("rain", "dog-bark") and parsed.dropped == ("狗", "norteño")
    row = tag_row(Reply(text='{"labels": ["狗", "rain"]}'), attempt=0)
    assert (row["status"], row["tags"], row["retry"]) == ("ok", ["rain"], False)
    assert row["error"] == "dropped 1 label(s) outside language en: 狗"
    assert tag_row(Reply(text='{"labels": ["rain"]}'), attempt=0)["error"] is None


def test_non_english_allowed_when_no_language_is_set() -> None:
    assert parse_labels('{"labels": ["norteño"]}', language=None).tags == ("norteño",)


@pytest.mark.parametrize(
    ("text", "truncated", "reason"),
    [
        ("", False, "empty"),
        ("A dog barks twice in a quiet yard.", True, "truncated"),
        ("the dog barks at the gate and " * 6, False, "repetition loop"),
        ("A dog barks. <|im_end|>", False, "leaked"),
        ("A dog barks (probability: 0.93).", False, "leaked"),
    ],
)
def test_caption_lint(text: str, truncated: bool, reason: str) -> None:
    problem = lint_caption(text, truncated=truncated)
    assert problem is not None and reason in problem


def test_clean_caption_passes_lint() -> None:
    assert (
        lint_caption("A dog barks twice in a quiet yard while a car passes by on wet asphalt.")
        is None
    )


def test_rules_tagger_keeps_content_words_and_sound_terms() -> None:
    text = "A man speaks quietly over a loud bass drum and a hi hat while birds chirp in the background."
    assert rules_tags(text) == ["man", "speak", "loud", "bass-drum", "hi-hat", "bird", "chirp"]
    assert rules_tags("the of and a") == []
    assert rules_tags("A single D#4 note played on a cello instrument, loud.") == [
        "d#4", "note", "play", "cello", "instrument", "loud"
    ]  # fmt: skip
    assert rules_tags("Halvmåne. Не равно, x1 42") == ["halvmåne", "равно"]  # noqa: RUF001
    assert len(rules_tags(" ".join(f"word{c}" for c in "abcdefghijklmnop"))) == 10


def test_tagging_prompt_is_versioned_and_rendered() -> None:
    prompt = load_prompt("tagging", 1)
    assert prompt.id == "tagging_v1"
    text = prompt.render(description="A cat meows.")
    assert text.endswith("A cat meows.\n") and '{"labels"' in text
    with pytest.raises(FileNotFoundError, match="tagging_v99"):
        load_prompt("tagging", 99)
