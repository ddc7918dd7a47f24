"""Tag-set scores against hand-computed values, tag-string parsing, and the COCO caption metrics.

The caption test runs Java (the PTB tokenizer and METEOR, about 10 s); it is skipped with a reason
when pycocoevalcap or a `java` binary is missing.
"""

from __future__ import annotations

import shutil

import pytest

from uts.probe import captioning
from uts.probe.captioning import caption_metrics, parse_tag_string, tag_set_scores


def test_tag_set_scores_by_hand() -> None:
    predicted = [
        ["Dogs", "bark", "bark", "Piano"],  # {dog, bark, piano}: duplicates collapse, "Dogs" = dog
        ["rain"],
        [],  # empty prediction, non-empty reference
        [],  # empty / empty
        ["Hi_Hats", "8-bit", "1990"],  # {hi-hat, 8-bit}: "1990" normalises to nothing
    ]
    reference = [
        ["dog", "barking", "Bark "],  # {dog, bark, barking}
        ["rain", "thunder", "wind", "Rain"],  # {rain, thunder, wind}
        ["birds"],
        [],
        ["hi-hat", "8bit"],  # "8bit" and "8-bit" are one identity
    ]
    # per clip (hits, |pred|, |ref|): (2, 3, 3), (1, 1, 3), (0, 0, 1), (0, 0, 0), (2, 2, 2)
    precisions = [2 / 3, 1.0, 0.0, 1.0, 1.0]
    recalls = [2 / 3, 1 / 3, 0.0, 1.0, 1.0]
    f1s = [2 / 3, 0.5, 0.0, 1.0, 1.0]
    scores = tag_set_scores(predicted, reference)
    assert scores["precision"] == pytest.approx(sum(precisions) / 5)
    assert scores["recall"] == pytest.approx(sum(recalls) / 5)
    assert scores["f1"] == pytest.approx(sum(f1s) / 5)
    # summed: 5 hits, 6 predicted, 9 reference
    assert scores["micro_precision"] == pytest.approx(5 / 6)
    assert scores["micro_recall"] == pytest.approx(5 / 9)
    assert scores["micro_f1"] == pytest.approx(2 * 5 / (6 + 9))


def test_tag_set_scores_empty_conventions() -> None:
    assert tag_set_scores([[]], [[]]) == {
        "precision": 1.0,
        "recall": 1.0,
        "f1": 1.0,
        "micro_precision": 1.0,
        "micro_recall": 1.0,
        "micro_f1": 1.0,
    }
    assert tag_set_scores([[]], [["dog"]]) == dict.fromkeys(
        ["precision", "recall", "f1", "micro_precision", "micro_recall", "micro_f1"], 0.0
    )
    # a prediction for a clip with no reference tags: precision 0, recall 0
    assert tag_set_scores([["dog"]], [[]])["precision"] == 0.0
    assert tag_set_scores([["dog"]], [[]])["recall"] == 0.0
    # nothing but unusable tags is an empty set
    assert tag_set_scores([["", "1990"]], [["  "]])["f1"] == 1.0


def test_tag_set_scores_bad_inputs() -> None:
    with pytest.raises(ValueError, match="predicted has 2 clips but reference has 1"):
        tag_set_scores([["a"], ["b"]], [["a"]])
    with pytest.raises(ValueError, match="no clips"):
        tag_set_scores([], [])
    with pytest.raises(ValueError, match=r"predicted\[0\] is a string"):
        tag_set_scores(["dog, bark"], [["dog"]])


@pytest.mark.parametrize(
    ("text", "tags"),
    [
        ("tag_a, tag_d, tag_k", ["tag_a", "tag_d", "tag_k"]),
        ("  Dog ,bark,,  ,rain  ", ["Dog", "bark", "rain"]),
        ("single", ["single"]),
        ("", []),
        (" , ,", []),
        ("hi hat, 8-bit", ["hi hat", "8-bit"]),
    ],
)
def test_parse_tag_string(text: str, tags: list[str]) -> None:
    assert parse_tag_string(text) == tags


def test_caption_metrics_skips_without_java(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pycocoevalcap.bleu.bleu", reason="pycocoevalcap is not installed")
    monkeypatch.setattr(captioning.shutil, "which", lambda name: None)
    result = caption_metrics({"a": "a dog barks"}, {"a": ["a dog barks"]})
    assert list(result) == ["skipped"]
    assert "java" in result["skipped"]


def test_caption_metrics_skips_on_java_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pycocoevalcap.bleu.bleu", reason="pycocoevalcap is not installed")
    false = shutil.which("false")
    if false is None:
        pytest.skip("no `false` binary to stand in for a failing java")
    monkeypatch.setattr(captioning.shutil, "which", lambda name: false)
    result = caption_metrics({"a": "a dog barks"}, {"a": ["a dog barks"]})
    assert list(result) == ["skipped"]
    assert "PTB tokenizer exited with status 1" in result["skipped"]


@pytest.mark.skipif(shutil.which("java") is None, reason="java not found on PATH")
def test_caption_metrics_times_out_into_a_skip() -> None:
    pytest.importorskip("pycocoevalcap.bleu.bleu", reason="pycocoevalcap is not installed")
    result = caption_metrics({"a": "a dog barks"}, {"a": ["a dog barks"]}, timeout_s=0.05)
    assert list(result) == ["skipped"]
    assert "timed out" in result["skipped"]


def lower_case_tokenizer(
    java: str, jar: object, sentences: list[str], punctuation: object, deadline: float
) -> list[str]:
    """Stands in for the PTB tokenizer so that a test reaches METEOR at once."""
    return [s.lower() for s in sentences]


def test_caption_metrics_meteor_failure_is_a_skip(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pycocoevalcap.bleu.bleu", reason="pycocoevalcap is not installed")
    false = shutil.which("false")
    if false is None:
        pytest.skip("no `false` binary to stand in for a failing java")
    monkeypatch.setattr(captioning, "_ptb_tokenize", lower_case_tokenizer)
    monkeypatch.setattr(captioning.shutil, "which", lambda name: false)
    result = caption_metrics({"a": "a dog barks"}, {"a": ["a dog barks"]})
    assert list(result) == ["skipped"]
    assert "METEOR failed" in result["skipped"]


@pytest.mark.skipif(shutil.which("java") is None, reason="java not found on PATH")
def test_caption_metrics_kills_a_slow_meteor(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pycocoevalcap.bleu.bleu", reason="pycocoevalcap is not installed")
    monkeypatch.setattr(captioning, "_ptb_tokenize", lower_case_tokenizer)
    # METEOR spends several seconds loading its paraphrase table before it answers
    result = caption_metrics({"a": "a dog barks"}, {"a": ["a dog barks"]}, timeout_s=1.0)
    assert result == {"skipped": "Java run timed out (timeout_s=1): METEOR"}


def test_caption_metrics_bad_inputs() -> None:
    with pytest.raises(ValueError, match=r"1 candidates have no references \(first: \['b'\]\)"):
        caption_metrics({"a": "x", "b": "y"}, {"a": ["x"]})
    with pytest.raises(ValueError, match="references for clip 'a' must be a non-empty list"):
        caption_metrics({"a": "x"}, {"a": []})
    with pytest.raises(ValueError, match="references for clip 'a' must be a non-empty list"):
        caption_metrics({"a": "x"}, {"a": "x"})
    with pytest.raises(ValueError, match="no candidates"):
        caption_metrics({}, {})


@pytest.mark.skipif(shutil.which("java") is None, reason="java not found on PATH")
def test_caption_metrics_with_java() -> None:
    pytest.importorskip("pycocoevalcap.bleu.bleu", reason="pycocoevalcap is not installed")
    same = "A dog barks loudly in the distance while cars drive past."
    candidates = {
        "same": same,
        "unrelated": "Gentle piano melody with soft strings.",
        "close": "Birds chirp while a man is talking.",
    }
    references = {
        "same": [same],
        "unrelated": ["Heavy rain falls on a metal roof during a storm.", "Thunder rumbles."],
        "close": ["A man talks as birds are chirping.", "Birds sing and a person speaks outdoors."],
    }
    result = caption_metrics(candidates, references)
    assert "skipped" not in result, result.get("skipped")
    metrics = ["BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr"]
    assert set(result) == {*metrics, "n_clips", "per_clip"}
    assert result["n_clips"] == 3
    clips = result["per_clip"]
    assert clips["same"]["BLEU-4"] >= 0.99
    assert clips["same"]["ROUGE-L"] == pytest.approx(1.0)
    assert clips["same"]["METEOR"] > 0.9
    assert clips["unrelated"]["BLEU-1"] < 0.2
    assert clips["unrelated"]["METEOR"] < 0.2
    # a paraphrase sits in between, and the corpus scores lie within the per-clip range
    assert clips["unrelated"]["METEOR"] < clips["close"]["METEOR"] < clips["same"]["METEOR"]
    for name in ("METEOR", "ROUGE-L"):
        values = [clip[name] for clip in clips.values()]
        assert min(values) <= result[name] <= max(values)
