"""The demo source on a miniature of its packages: labels, groups, whole-identity probe partition."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from jobs import ingest, tasks
from uts.ingest.demo import demo_items
from uts.ingest.demo.environment import category_of
from uts.ingest.demo.midi import Note, note_name, write_midi
from uts.ingest.items import Item
from uts.probe.tasks import read_task


def test_demo_items_labels_and_partitions(demo_cache: Path) -> None:
    items = demo_items(demo_cache, seed=3, programs_per_family=2)
    by_id = {i.clip_id: i for i in items}
    assert len(by_id) == len(items)
    # Speech: every voice is wholly in one partition, transcripts are real, no text names a voice.
    partitions: dict[str, set[str]] = defaultdict(set)
    for item in items:
        if item.domain == "speech":
            partitions[item.labels["speaker"]].add(item.partition)
            assert item.labels["speaker"].split("-")[-1] not in item.text.lower()
    assert (
        len(partitions) == 3 + 2 + 4 + 1
    )  # hedgewars packs, tuxpaint languages, fillets, asterisk
    assert all(len(p) == 1 for p in partitions.values())
    ow = by_id["speech/hedgewars/Pirate/Ow2"]
    assert (
        ow.labels["expression"] == "pain" and ow.text == "ow" and ow.group == "hedgewars-phrase-ow"
    )
    cow = by_id["speech/tuxpaint/bg/animals/mammals/cow_desc_bg"]
    assert cow.text == "Крава." and cow.text_kind == "transcript" and cow.labels["language"] == "bg"
    # Voices without a transcript get a templated line: the language (and the telephone prompt
    # setting), never the speaker; no speech clip is left without a description.
    speech = [i for i in items if i.domain == "speech"]
    assert all(i.text for i in speech)
    fillets = {i.text for i in speech if i.labels["set"] == "fillets"}
    assert fillets == {"Speech in Czech.", "Speech in Dutch."}
    assert {i.text for i in speech if i.labels["set"] == "asterisk"} == {
        "A telephone prompt spoken in English."
    }
    # Music: notes cut from one render per program; silent pitches are left out; probe programs
    # are rendered with both soundfonts, pretraining programs with FluidR3 only.
    notes = [i for i in items if i.labels.get("set") == "gm"]
    assert notes and all(i.labels["pitch"] <= 90 and i.duration_s == 4.0 for i in notes)
    for item in notes:
        octave = item.labels["pitch"] // 12 - 1  # C4 = 60: the register word follows the octave
        register = {2: "deep", 3: "low", 4: "middle", 5: "high", 6: "shrill"}[octave]
        assert item.text.startswith(
            f"A single {note_name(item.labels['pitch'])} note, {register} in pitch,"
        )
        fonts = {
            n.labels["soundfont"] for n in notes if n.labels["program"] == item.labels["program"]
        }
        assert fonts == ({"fluidr3", "timgm6mb"} if item.partition == "probe" else {"fluidr3"})
    assert by_id["music/hydrogen/Kit/kick"].labels == {
        "drum": "kick",
        "kit": "Kit",
        "set": "hydrogen",
    }
    # Environment: categories from names, long files windowed within one group, voices left out.
    env = {i.clip_id: i for i in items if i.domain == "environment"}
    windows = [i for i in env.values() if "env_sounds_water" in i.clip_id]
    assert [w.start_s for w in windows] == [0.0, 4.0, 8.0] and len({w.group for w in windows}) == 1
    steps = [i for i in env.values() if "footstep" in i.clip_id]
    assert len({s.group for s in steps}) == 1 and len({s.partition for s in steps}) == 1
    assert not any("orc-hit" in c for c in env)
    assert env["environment/tuxpaint-stamps-default/animals/mammals/cow.ogg"].text == "A cow."
    # Sounds without a description get a templated line naming only their category.
    assert {w.text for w in windows} == {"A water sound effect."}
    assert {w.text_kind for w in windows} == {"templated"}


def test_demo_is_deterministic_for_a_seed(demo_cache: Path) -> None:
    assert demo_items(demo_cache, seed=1, programs_per_family=1) == demo_items(
        demo_cache, seed=1, programs_per_family=1
    )


def test_extra_pretraining_material_leaves_the_probe_partition_alone(demo_cache: Path) -> None:
    base = demo_items(demo_cache, seed=2, per_speaker=1, programs_per_family=2)
    grown = demo_items(
        demo_cache,
        seed=2,
        per_speaker=1,
        programs_per_family=2,
        extra_per_speaker=2,
        extra_programs=2,
    )
    probe = [i for i in base if i.partition == "probe"]
    assert probe and probe == [i for i in grown if i.partition == "probe"]
    assert {i.clip_id for i in base} < {i.clip_id for i in grown}
    added = [i for i in grown if i.clip_id not in {b.clip_id for b in base}]
    assert {i.partition for i in added} == {"pretrain"}
    # Extra speech comes from pretraining voices; extra notes from programs nobody else has.
    pretrain_voices = {
        i.labels["speaker"] for i in base if i.domain == "speech" and i.partition == "pretrain"
    }
    extra_voices = {i.labels["speaker"] for i in added if i.domain == "speech"}
    assert extra_voices and extra_voices <= pretrain_voices
    programs = {i.labels["program"] for i in base if i.labels.get("set") == "gm"}
    extra_programs = {i.labels["program"] for i in added if i.labels.get("set") == "gm"}
    assert (
        len(extra_programs) == 2 * 11 - 1 and not extra_programs & programs
    )  # vocal has 3 programs


def test_a_cached_render_is_only_reused_for_the_same_notes(demo_cache: Path) -> None:
    """Seeds draw different pitches for a program: the second seed must not read the first's render."""
    import soundfile as sf

    def gm(seed: int) -> list[Item]:
        return [i for i in demo_items(demo_cache, seed=seed) if i.labels.get("set") == "gm"]

    first, second = gm(1), gm(2)
    programs = {i.labels["program"] for i in first} & {i.labels["program"] for i in second}
    assert programs  # both seeds render some of the same programs (with other pitches)
    for item in (i for i in second if i.labels["program"] in programs):
        wave, rate = sf.read(item.uri, dtype="float32")
        slot = wave[int(item.start_s * rate) : int((item.start_s + 3.0) * rate)]
        peak = np.argmax(np.abs(np.fft.rfft(slot))) * rate / len(slot)
        expected = 440 * 2 ** ((item.labels["pitch"] - 69) / 12)
        assert abs(peak - expected) < 0.02 * expected, (item.clip_id, peak, expected)


def test_demo_ingest_end_to_end(demo_cache: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    args = [
        "--store",
        str(store),
        "--corpus",
        "demo",
        "--source",
        "demo",
        "--cache",
        str(demo_cache),
        "--workers",
        "0",
        "--programs-per-family",
        "1",
    ]
    assert ingest.main(args) == 0
    rows = pq.read_table(store / "corpora/demo/shards").to_pylist()
    assert {r["domain"] for r in rows} == {"speech", "music", "environment"}
    assert {r["partition"] for r in rows} == {"pretrain", "probe"}
    meta = json.loads((store / "corpora/demo/corpus.json").read_text())
    assert meta["source"] == "demo" and meta["clips"] == len(rows) and meta["rejects"] == 0
    assert ingest.main(args) == 0  # cached and up to date
    # Probe tasks from the probe partition, with baselines (the miniature has too few groups for
    # some tasks: those are reported and left out).
    wanted = "speaker_id,sound_attributes"
    assert tasks.main(["--store", str(store), "--corpus", "demo", "--tasks", wanted]) == 0
    probe_clips = {r["clip_id"] for r in rows if r["partition"] == "probe"}
    for name in wanted.split(","):
        meta, _, splits = read_task(store / "tasks" / name)
        assert meta["audio"] == {"corpus": "demo"} and len(splits) == 3
        for parts in splits.values():
            assert set().union(*parts.values()) <= probe_clips  # never a pretraining clip
        baseline = json.loads((store / "tasks" / name / "baseline.json").read_text())
        assert set(baseline) >= {"per_seed", "fingerprint"}
    assert tasks.main(["--store", str(store), "--corpus", "nope"]) == 2


@pytest.mark.parametrize(
    ("name", "category"),
    [
        ("/default_water_footstep.1.ogg", "footsteps"),
        ("/tnt_gunpowder_burning.ogg", "fire"),
        ("/baseballbat.ogg", "weapon"),
        ("/vehicles/emergency/firetruck.ogg", "vehicle"),
        ("/animals/birds/drake.ogg", "bird"),
        ("/1.16/sounds/drake-hit-1.ogg", None),
        ("/magic-faeriefire.ogg", None),
        ("/audio-channel-front-left.oga", None),
        ("/bat_left.ogg", "mammal"),
    ],
)
def test_category_rules(name: str, category: str | None) -> None:
    assert category_of(name) == category


def test_midi_file_structure() -> None:
    data = write_midi(40, [Note(60, 100, 0.0, 3.0), Note(64, 50, 4.0, 3.0)])
    assert data[:4] == b"MThd" and data[14:18] == b"MTrk"
    assert int.from_bytes(data[18:22], "big") == len(data) - 22
    assert (
        bytes([0xC0, 40]) in data
        and bytes([0x90, 60, 100]) in data
        and bytes([0x80, 64, 0]) in data
    )
    assert data.endswith(b"\x00\xff\x2f\x00")
    assert note_name(60) == "C4" and note_name(69) == "A4"
    assert random.Random(0).random() == random.Random(0).random()


def test_demo_without_apt_get_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    import uts.ingest.demo.fetch as fetch

    monkeypatch.setattr(fetch.shutil, "which", lambda tool: None)
    args = [
        "--store",
        str(tmp_path / "s"),
        "--corpus",
        "demo",
        "--source",
        "demo",
        "--cache",
        str(tmp_path / "c"),
    ]
    assert ingest.main(args) == 2
    err = capsys.readouterr().err
    assert "needs apt-get" in err and "--source folder" in err
    assert not (tmp_path / "s").exists()
