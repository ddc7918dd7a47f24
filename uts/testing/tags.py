"""Tag tables for tests, the demo and benchmarks.

`sample_tag_rows` writes tag lists from the metadata of the demo corpus's kinds of clips (game voice
packs, General MIDI notes, drum kits, game and stamp sound effects, see shared DEMO_DATA.md), the
way an LLM tagger words them: mostly one-word lowercase labels, with the spelling noise real taggers
produce (plurals, capitals, `_`/`-` variants, a trailing full stop) and a few failed rows. The
bundled `data/sample_tags.parquet` is exactly `sample_tag_rows()`; a test keeps them equal.

`zipf_tag_table` makes large synthetic tables (Zipf-distributed tags) for benchmarks.
"""

from __future__ import annotations

import random
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["SAMPLE_TAGS", "sample_tag_rows", "sample_tags_path", "tag_table", "zipf_tag_table"]

SAMPLE_TAGS = "sample_tags.parquet"

_VOICE_PACKS = {
    "british": ["male", "british", "accent"],
    "classic": ["male", "cartoonish"],
    "default": ["male", "cartoonish"],
    "default_es": ["male", "spanish"],
    "default_ru": ["male", "russian"],
    "hillbilly": ["male", "southern", "accent", "comedic"],
    "mobster": ["male", "gruff", "comedic"],
    "pirate": ["male", "gravelly", "theatrical"],
    "robot": ["robotic", "synthetic", "vocoder", "metallic"],
    "singer": ["female", "melodic", "sung"],
    "surfer": ["male", "laid-back", "casual"],
}
_PHRASES = {
    "incoming": ["alarm", "warning", "shouting", "urgent"],
    "takecover": ["alarm", "warning", "shouting"],
    "coward": ["taunt", "insult", "mocking"],
    "stupid": ["taunt", "insult"],
    "illgetyou": ["taunt", "threat", "aggressive"],
    "ow": ["pain", "grunt", "exclamation"],
    "ouch": ["pain", "exclamation"],
    "amazing": ["positive", "excited", "exclamation"],
    "victory": ["positive", "celebration", "cheering"],
    "laugh": ["laughter", "positive", "amused"],
    "hello": ["greeting", "neutral"],
    "watchthis": ["neutral", "confident"],
}
_GM_FAMILIES = {
    "piano": ["piano", "keyboard", "acoustic"],
    "organ": ["organ", "keyboard", "sustained"],
    "guitar": ["guitar", "plucked", "string"],
    "bass": ["bass", "low-frequency", "plucked"],
    "strings": ["violin", "strings", "bowed", "orchestral"],
    "brass": ["brass", "trumpet", "bright"],
    "reed": ["saxophone", "woodwind", "reed"],
    "flute": ["flute", "woodwind", "breathy"],
    "synth_lead": ["synth", "synthesizer", "electronic", "lead"],
    "synth_pad": ["synth", "pad", "ambient", "electronic"],
    "mallet": ["marimba", "mallet", "percussive"],
}
_DRUMS = {
    "kick": ["kick-drum", "bass_drum", "thump"],
    "snare": ["snare", "crack"],
    "hihat": ["hi-hat", "cymbal", "sizzle"],
    "crash": ["crash", "cymbal", "metallic"],
    "tom": ["tom", "drum"],
    "clap": ["clap", "handclap"],
}
_ENVIRONMENT = {
    "water": ["water", "splashing", "liquid", "outdoor"],
    "fire": ["fire", "crackling", "burning"],
    "explosion": ["explosion", "boom", "blast", "loud"],
    "footsteps_gravel": ["footsteps", "gravel", "walking", "outdoor"],
    "footsteps_wood": ["footsteps", "wooden", "walking", "indoor"],
    "door": ["door", "creak", "indoor", "mechanical"],
    "glass": ["glass", "shattering", "breaking", "impact"],
    "wolf": ["wolf", "howl", "animal", "wildlife"],
    "horse": ["horse", "neigh", "animal", "hooves"],
    "birds": ["birds", "chirping", "nature", "outdoor"],
    "cow": ["cow", "moo", "animal", "farm"],
    "bell": ["bell", "ringing", "chime", "metallic"],
    "phone": ["telephone", "ringtone", "electronic", "beep"],
    "gunshot": ["gunshot", "shot", "weapon", "loud"],
    "camera": ["camera", "shutter", "click", "mechanical"],
}
_PRODUCTION = [
    "studio",
    "clean",
    "dry",
    "reverb",
    "reverberant",
    "lo-fi",
    "high-fidelity",
    "compressed",
    "distortion",
    "hiss",
    "short",
    "close-mic",
    "mono",
    "game",
    "video-game",
    "8-bit",
]


def _spell(tag: str, rng: random.Random) -> str:
    """Write a tag the way a tagger sometimes does: plural, capitalised, another separator, a '.'."""
    roll = rng.random()
    if roll < 0.08 and not tag.endswith("s"):
        return tag + "s"
    if roll < 0.13:
        return tag.capitalize()
    if roll < 0.19 and "-" in tag:
        return tag.replace("-", rng.choice(["_", " ", ""]))
    if roll < 0.22:
        return tag + "."
    return tag


def _clip(rng: random.Random, base: list[str], extra: int) -> list[str]:
    tags = list(base) + rng.sample(_PRODUCTION, extra)
    rng.shuffle(tags)
    return [_spell(t, rng) for t in tags]


def sample_tag_rows(seed: int = 0) -> list[dict[str, Any]]:
    """About 400 clips of tag rows (clip_id, tags, domain, status, error), deterministic in `seed`."""
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []

    def add(clip_id: str, domain: str, tags: list[str]) -> None:
        rows.append(
            {"clip_id": clip_id, "tags": tags, "domain": domain, "status": "ok", "error": None}
        )

    for pack, voice in _VOICE_PACKS.items():
        for phrase, meaning in _PHRASES.items():
            add(
                f"hedgewars/{pack}/{phrase}",
                "speech",
                _clip(rng, ["speech", "voice", *voice, *meaning], 3),
            )
    for family, timbre in _GM_FAMILIES.items():
        for pitch in range(48, 84, 3):
            register = "low" if pitch < 60 else "high" if pitch > 72 else "mid-range"
            add(
                f"gm/{family}/{pitch}",
                "music",
                _clip(rng, ["music", "note", "instrumental", register, *timbre], 2),
            )
    for kit in range(6):
        for piece, sound in _DRUMS.items():
            add(
                f"drumkit{kit}/{piece}",
                "music",
                _clip(rng, ["drum", "percussion", "one-shot", *sound], 2),
            )
    for source, sound in _ENVIRONMENT.items():
        for take in range(7):
            add(f"sfx/{source}/{take}", "environment", _clip(rng, sound, 3))
    for i in range(0, len(rows), 37):  # the tagger failed on some clips: they must not count
        rows[i] = {**rows[i], "tags": [], "status": "failed", "error": "model output was not JSON"}
    return rows


def tag_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Rows -> the tag table schema (clip_id, tags, domain, status, error)."""
    schema = pa.schema(
        [
            ("clip_id", pa.string()),
            ("tags", pa.list_(pa.string())),
            ("domain", pa.string()),
            ("status", pa.string()),
            ("error", pa.string()),
        ]
    )
    columns = {name: [row.get(name) for row in rows] for name in schema.names}
    return pa.table(columns, schema=schema)


def sample_tags_path() -> Path:
    """Path of the bundled sample tag table."""
    return Path(str(resources.files("uts.testing") / "data" / SAMPLE_TAGS))


def zipf_tag_table(
    n_clips: int,
    *,
    n_distinct: int = 50_000,
    tags_per_clip: int = 10,
    exponent: float = 1.1,
    seed: int = 0,
) -> pa.Table:
    """A large synthetic tag table: each clip draws ~`tags_per_clip` tags Zipf-distributed over
    `n_distinct` strings, some of which are spelling variants of one another (plurals, capitals)."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, n_distinct + 1) ** exponent
    weights /= weights.sum()
    counts = rng.integers(tags_per_clip - 3, tags_per_clip + 4, size=n_clips)
    flat = rng.choice(n_distinct, size=int(counts.sum()), p=weights)
    base = np.asarray([f"tag{i:05d}" for i in range(n_distinct)], dtype=object)
    variant = rng.random(n_distinct)
    names = np.where(
        variant < 0.05, base + "s", np.where(variant < 0.08, np.char.upper(base.astype(str)), base)
    )
    values = pa.DictionaryArray.from_arrays(
        pa.array(flat, pa.int32()), pa.array(names.tolist(), pa.string())
    ).dictionary_decode()
    offsets = pa.array(np.concatenate([[0], np.cumsum(counts)]).astype(np.int32))
    domains = np.asarray(["speech", "music", "environment"], dtype=object)[
        rng.integers(0, 3, n_clips)
    ]
    return pa.table(
        {
            "clip_id": pa.array([f"clip{i:08d}" for i in range(n_clips)], pa.string()),
            "tags": pa.ListArray.from_arrays(offsets, values),
            "domain": pa.array(domains.tolist(), pa.string()),
        }
    )


def write_sample(path: Path | None = None) -> None:
    """Regenerate the bundled sample after changing `sample_tag_rows`."""
    pq.write_table(tag_table(sample_tag_rows()), path or sample_tags_path())
