"""The demo corpus's probe tasks, built from its probe partition only (see shared DEMO_DATA.md)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from uts.probe.tasks import Task

__all__ = ["demo_tasks"]


def _task(name: str, rows: list[dict[str, Any]], label: str, group: str, **options: Any) -> Task:
    return Task(
        name=name,
        labels={r["clip_id"]: (str(r["labels"][label]),) for r in rows},
        groups={r["clip_id"]: str(r[group] if group in r else r["labels"][group]) for r in rows},
        **{"prediction_type": "multiclass", "metric": "accuracy", **options},
    )


def demo_tasks(rows: Iterable[Mapping[str, Any]], corpus: str) -> list[Task]:
    """Tasks over the probe partition of a demo corpus (rows: clip_id, domain, labels, group, partition)."""
    probe = [
        {
            **row,
            "labels": json.loads(row["labels"])
            if isinstance(row["labels"], str)
            else row["labels"],
        }
        for row in rows
        if row["partition"] == "probe"
    ]
    audio = {"corpus": corpus}
    voices = [r for r in probe if "speaker" in r["labels"]]
    hedgewars = [r for r in voices if r["labels"]["set"] == "hedgewars"]
    notes = [r for r in probe if r["labels"].get("set") == "gm"]
    seen = [r for r in notes if r["labels"]["soundfont"] == "fluidr3"]
    environment = [r for r in probe if r["domain"] == "environment"]
    # Unseen programs: per family, the last probe program rendered with the second soundfont is
    # the test set; training sees the family's other programs, first soundfont only.
    programs: dict[str, set[int]] = defaultdict(set)
    for r in notes:
        programs[r["labels"]["family"]].add(r["labels"]["program"])
    held_out = {max(p) for p in programs.values() if len(p) > 1}
    unseen = [
        r for r in notes if r["labels"]["family"] in {f for f, p in programs.items() if len(p) > 1}
    ]
    unseen = [
        r for r in unseen
        if (r["labels"]["program"] in held_out) == (r["labels"]["soundfont"] == "timgm6mb")
    ]  # fmt: skip
    test_unseen = frozenset(r["clip_id"] for r in unseen if r["labels"]["program"] in held_out)
    attributes = [*voices, *notes, *environment]
    return [
        _task("speaker_id", voices, "speaker", "group", audio=audio, domain="speech",
              notes="every probe voice; splits keep a phrase, stamp or game level on one side"),
        _task("speaker_id_hedgewars", hedgewars, "speaker", "group", audio=audio, domain="speech",
              notes="Hedgewars voice packs only: every voice says the same phrases (parallel text)"),
        _task("expression", hedgewars, "expression", "speaker", audio=audio, weak_labels=True, domain="speech",
              notes="pain/taunt/positive/alarm/neutral from the phrase; test voices are unseen in training"),
        _task("instrument_family_seen", seen, "family", "clip_id", audio=audio, domain="music",
              notes="probe programs appear on both sides (different notes); first soundfont"),
        Task(name="instrument_family_unseen", prediction_type="multiclass", metric="accuracy",
             labels={r["clip_id"]: (r["labels"]["family"],) for r in unseen},
             groups={r["clip_id"]: str(r["labels"]["program"]) for r in unseen},
             fixed_test=test_unseen, audio=audio, domain="music",
             notes="test: a program never seen in training, rendered with the second soundfont"),
        _task("pitch", [r for r in notes], "pitch", "group", audio=audio, extra_metrics=("chroma_accuracy",), domain="music",
              notes="MIDI pitch of single notes; test programs unseen in training"),
        _task("environment_category", environment, "category", "group", audio=audio, domain="environment",
              notes="a sound and its variants or windows stay on one side"),
        Task(name="sound_attributes", prediction_type="multilabel", metric="mAP",
             labels={r["clip_id"]: _attributes(r) for r in attributes},
             groups={r["clip_id"]: r["group"] for r in attributes}, audio=audio, domain="mixed",
             notes="multi-label: domain plus language, instrument family and register, or sound category"),
    ]  # fmt: skip


def _attributes(row: Mapping[str, Any]) -> tuple[str, ...]:
    labels = row["labels"]
    if row["domain"] == "speech":
        return ("speech", f"language:{labels['language']}")
    if row["domain"] == "music":
        pitch = int(labels["pitch"])
        register = "low" if pitch < 55 else "high" if pitch > 76 else "middle"
        return ("music", f"family:{labels['family']}", f"register:{register}")
    return ("environment", f"category:{labels['category']}")
