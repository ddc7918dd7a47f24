"""The AudioSet-label baseline: the shipped ontology, the mapping table, the tag form, and the rows
the `labels` backend writes for a corpus shard."""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from uts.ingest.demo.environment import CATEGORIES
from uts.ingest.demo.music import DRUM_PIECES, FAMILIES
from uts.llm.backends import TAG_SCHEMA
from uts.tags.audioset import (
    RULES,
    clip_classes,
    clip_labels,
    labels_tags_table,
    load_ontology,
    parse_ontology,
    tag_form,
)
from uts.tags.audioset_rules import Rule, rules_digest
from uts.tags.normalize import normalize_tag, tag_key

# sha256 of github.com/audioset/ontology's ontology.json as reduced in ../shared/reference (v1).
ONTOLOGY_SHA256 = "ff1837075181a0d1ec188ae76df0d6885a5e6353c7eb586bf362897303a8bc0b"


def test_the_shipped_ontology_is_the_reference_file() -> None:
    onto = load_ontology()
    assert onto.sha256 == ONTOLOGY_SHA256
    assert len(onto.parents) == 632 and len(onto.restricted) == 89  # 22+1 abstract, 66 blacklist
    assert onto.parents["Speech"] == ("Human voice",) and "Human voice" in onto.restricted
    assert set(onto.parents["Bell"]) == {"Musical instrument", "Sounds of things"}  # a DAG
    assert onto.parents["Music"] == () and "Music" not in onto.restricted


def test_ancestors_follow_child_ids_to_the_roots() -> None:
    onto = load_ontology()
    assert onto.ancestors("Flute") == [
        "Wind instrument, woodwind instrument",
        "Musical instrument",
        "Music",
    ]
    assert onto.ancestors("Hi-hat") == ["Cymbal", "Percussion", "Musical instrument", "Music"]
    assert onto.ancestors("Male speech, man speaking") == ["Speech", "Human voice", "Human sounds"]
    with pytest.raises(KeyError):
        onto.ancestors("Kazoo")


def test_every_class_in_the_table_is_a_usable_label_of_the_ontology() -> None:
    onto = load_ontology()
    named = {c for rule in RULES for c in rule.classes}
    assert named - set(onto.parents) == set()  # spelled as in the ontology
    assert named & onto.restricted == set()  # a restricted class would never be a label
    assert all(rule.words and rule.classes for rule in RULES)
    assert len(named) > 100


def test_every_ontology_name_has_a_stable_distinct_tag() -> None:
    names = list(load_ontology().parents)
    forms = [tag_form(n) for n in names]
    assert all(normalize_tag(f) == f for f in forms)  # the vocabulary keeps the form as written
    assert len({tag_key(f) for f in forms}) == len(names)  # no two classes merge
    assert all("," not in f and " " not in f for f in forms)  # canonical strings join with ", "
    assert tag_form("Male speech, man speaking") == "male-speech-man-speaking"
    assert tag_form("Keyboard (musical)") == "keyboard-musical"
    assert tag_form("Roaring cats (lions, tigers)") == "roaring-cats-lions-tiger"


@pytest.mark.parametrize(
    ("labels", "domain", "clip_id", "expected"),
    [
        ({"family": "flute", "pitch": 52, "program": 75, "set": "gm"}, "music", "music/gm/f/075/052",
         ["Music", "Flute", "Wind instrument, woodwind instrument", "Musical instrument"]),
        ({"expression": "taunt", "phrase": "coward", "set": "hedgewars", "speaker": "hedgewars-pirate"},
         "speech", "speech/hedgewars/Pirate/Coward", ["Speech"]),
        ({"expression": "positive", "phrase": "laugh", "set": "hedgewars"}, "speech", "s/Laugh",
         ["Speech", "Laughter"]),
        ({"category": "mammal", "sound": "dog", "set": "tuxpaint-stamps-default"}, "environment",
         "environment/tuxpaint-stamps-default/animals/dog.ogg", ["Animal", "Dog", "Domestic animals, pets"]),
        ({"drum": "hihat", "kit": "K", "set": "hydrogen"}, "music", "music/hydrogen/K/hh",
         ["Music", "Drum kit", "Percussion", "Musical instrument", "Hi-hat", "Cymbal"]),
        ({"sample_kind": "drum", "set": "sonic-pi"}, "music", "music/sonic-pi/drum_cymbal_open",
         ["Music", "Drum kit", "Percussion", "Musical instrument", "Cymbal"]),
        ({"category": "glass", "sound": "default_break_glass.2", "set": "minetest-data"}, "environment",
         "e/default_break_glass.2.ogg", ["Glass", "Shatter"]),
        ({"language": "en", "set": "asterisk", "speaker": "asterisk-allison", "telephone": True},
         "speech", "speech/asterisk/vm-goodbye", ["Speech"]),  # no gender from a speaker id
    ],
)  # fmt: skip
def test_metadata_gives_the_coarse_human_labels(
    labels: dict[str, Any], domain: str, clip_id: str, expected: list[str]
) -> None:
    assert clip_labels(labels, domain, clip_id) == expected


def test_a_shared_sound_word_does_not_borrow_another_animals_parents() -> None:
    """Growling is a child of Dog, Cat, Roaring cats and Canidae; Cowbell of Cattle and
    Percussion; Bell of Musical instrument and Sounds of things."""
    wolf = clip_labels(
        {"category": "mammal", "sound": "wolf-growl-2", "set": "w"}, "environment", "w"
    )
    assert wolf == ["Animal", "Canidae, dogs, wolves", "Wild animals", "Growling"]
    cowbell = clip_labels({"sample_kind": "drum", "set": "sonic-pi"}, "music", "m/drum_cowbell")
    assert "Cowbell" in cowbell and "Cattle, bovinae" not in cowbell and "Animal" not in cowbell
    bell = clip_labels({"category": "alarm", "sound": "bell", "set": "s"}, "environment", "e/bell")
    assert bell == ["Alarm", "Bell"]  # not Music: its other class supports "Sounds of things"
    hiss = clip_labels({"sample_kind": "vinyl", "set": "sonic-pi"}, "music", "m/vinyl_hiss")
    assert hiss == ["Music", "Hiss"]  # no support: only the generic (abstract) parent, no Cat


def test_every_demo_program_drum_and_category_maps() -> None:
    """The demo corpus's own vocabularies (uts.ingest.demo) all reach a class beyond the domain."""
    for program in [p for programs in FAMILIES.values() for p in programs]:
        got = clip_classes({"program": program, "set": "gm"}, "music", "x")
        assert got[0] == "Music" and got[1:], (program, got)  # and the instrument
    for piece, _ in DRUM_PIECES:
        assert clip_classes({"drum": piece, "set": "hydrogen"}, "music", "x")[2:], piece
    for category, _ in CATEGORIES:
        if category not in ("weapon", "household"):  # no AudioSet class for the whole category
            assert clip_classes(
                {"category": category, "sound": "x", "set": "s"}, "environment", "x"
            )


def test_unless_and_both_words() -> None:
    rules = (Rule("*", "sound", ("sword",), ("Whack, thwack",), ("miss",)),
             Rule("*", "sound", ("miss+sword",), ("Whoosh, swoosh, swish",)))  # fmt: skip
    assert clip_classes({"sound": "sword-1"}, "environment", "x", rules) == ["Whack, thwack"]
    assert clip_classes({"sound": "sword-miss"}, "environment", "x", rules) == ["Whoosh, swoosh, swish"]  # fmt: skip
    assert clip_classes({"sound": "miss"}, "environment", "x", rules) == []
    assert rules_digest(rules) != rules_digest(rules[:1]) and rules_digest() == rules_digest(RULES)


def test_a_broken_ontology_is_refused() -> None:
    good = [{"id": "a", "name": "A", "child_ids": ["b"], "restrictions": []},
            {"id": "b", "name": "B", "child_ids": [], "restrictions": ["abstract"]}]  # fmt: skip
    onto = parse_ontology(json.dumps(good).encode())
    assert onto.labels(["B"]) == ["A"] and onto.restricted == {"B"}
    with pytest.raises(ValueError, match="unknown child"):
        parse_ontology(json.dumps([{**good[0], "child_ids": ["zz"]}]).encode())
    with pytest.raises(ValueError, match="repeats"):
        parse_ontology(json.dumps([good[0], {**good[1], "name": "A"}]).encode())
    with pytest.raises(ValueError, match="JSON list"):
        parse_ontology(b'{"id": "a"}')


def _shard(rows: list[dict[str, Any]]) -> pa.Table:
    full = [{"clip_id": f"c{i}", "text": "t", "partition": "pretrain", "domain": "environment", **r}
            for i, r in enumerate(rows)]  # fmt: skip
    return pa.Table.from_pylist(full)


def test_the_table_keeps_pretrain_clips_and_says_why_one_failed() -> None:
    shard = _shard([
        {"labels": json.dumps({"category": "bird", "sound": "owl", "set": "t"})},
        {"labels": json.dumps({"category": "bird", "sound": "owl", "set": "t"}), "partition": "probe"},
        {"labels": json.dumps({"category": "household", "sound": "kettle", "set": "t"})},
        {"labels": "not json"},
        {"labels": "[1, 2]"},
        {"labels": json.dumps({"x": 1}), "domain": "speech"},
    ])  # fmt: skip
    table = labels_tags_table(shard)
    assert table.schema == TAG_SCHEMA
    rows = {r["clip_id"]: r for r in table.to_pylist()}
    assert sorted(rows) == ["c0", "c2", "c3", "c4", "c5"]  # the probe clip never enters
    assert rows["c0"]["status"] == "ok" and rows["c0"]["tags"] == ["bird", "wild-animal", "animal", "owl"]  # fmt: skip
    assert json.loads(rows["c0"]["raw"])["classes"] == ["Bird", "Wild animals", "Animal", "Owl"]
    assert rows["c2"]["status"] == "failed" and rows["c2"]["tags"] == []
    assert "no AudioSet class" in rows["c2"]["error"] and "kettle" in rows["c2"]["error"]
    assert "not JSON" in rows["c3"]["error"] and "not a JSON object" in rows["c4"]["error"]
    assert rows["c5"]["status"] == "ok" and rows["c5"]["tags"] == ["speech"]


SOUNDFONT = Path("/usr/share/sounds/sf2/TimGM6mb.sf2")  # the demo's second soundfont (Debian)
# A word of a GM preset's name -> the class its program must reach (the table was written from
# the General MIDI program list; this checks it against a real soundfont's preset names).
PRESET_WORDS = {"Piano": "Piano", "Organ": "Organ", "Guitar": "Guitar", "Violin": "Violin, fiddle",
                "Cello": "Cello", "Trumpet": "Trumpet", "Trombone": "Trombone", "Sax": "Saxophone",
                "Oboe": "Oboe", "Clarinet": "Clarinet", "Flute": "Flute", "Piccolo": "Flute",
                "Bassoon": "Bassoon", "Choir": "Choir", "Synth": "Synthesizer", "Harp": "Harp",
                "Timpani": "Timpani", "Bass": "Musical instrument"}  # fmt: skip


@pytest.mark.skipif(not SOUNDFONT.is_file(), reason="timgm6mb-soundfont is not installed")
def test_gm_programs_agree_with_a_real_soundfonts_preset_names() -> None:
    data = SOUNDFONT.read_bytes()
    at = data.index(b"phdr")
    (size,) = struct.unpack("<I", data[at + 4 : at + 8])
    presets = {}
    for k in range(at + 8, at + 8 + size - 38, 38):  # 38-byte records; the last is the terminal one
        name, program, bank = struct.unpack("<20sHH", data[k : k + 24])
        if bank == 0:
            presets[program] = name.split(b"\0")[0].decode("latin-1")
    assert len(presets) == 128
    onto, checked = load_ontology(), 0
    for program, name in presets.items():
        reached = set(onto.labels(clip_classes({"program": program, "set": "gm"}, "music", "x")))
        for word, cls in PRESET_WORDS.items():
            if re.search(rf"{word}\b", name) and (word == "Sax" or re.search(rf"\b{word}", name)):
                assert cls in reached, (program, name, sorted(reached))
                checked += 1
    assert checked >= 40
