"""Music clips of the demo corpus: rendered General MIDI notes, Sonic Pi samples, Hydrogen drum hits.

Notes are rendered with fluidsynth from two soundfonts (NSynth-style labels: family, program, pitch,
velocity). Programs are the identity the instrument probes ask about, so whole programs are
reserved for the probe partition; probe programs are also rendered with the second soundfont
(TimGM6mb) for the unseen-timbre probe. Pretraining only ever hears FluidR3 and its own programs.
"""

from __future__ import annotations

import hashlib
import random
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import soundfile as sf

from uts.ingest.demo.fetch import DemoError
from uts.ingest.demo.midi import Note, note_name, write_midi
from uts.ingest.items import Item

__all__ = ["FAMILIES", "music_items", "render_program"]

SOUNDFONTS = {
    "fluidr3": "usr/share/sounds/sf2/FluidR3_GM.sf2",
    "timgm6mb": "usr/share/sounds/sf2/TimGM6mb.sf2",
}
SONIC_PI = "usr/share/sonic-pi/samples"
HYDROGEN = "usr/share/hydrogen/data/drumkits"

# NSynth's instrument families over General MIDI programs (0-based).
FAMILIES = {
    "keyboard": range(0, 8),
    "mallet": range(8, 16),
    "organ": range(16, 24),
    "guitar": range(24, 32),
    "bass": range(32, 40),
    "string": range(40, 52),
    "vocal": range(52, 55),
    "brass": range(56, 64),
    "reed": range(64, 72),
    "flute": range(72, 80),
    "synth_lead": range(80, 88),
}
PITCHES = range(36, 96)  # C2..B6: 60 pitch classes
VELOCITIES = {"soft": 50, "medium": 80, "loud": 110}
# The register a listener would name, by octave (C2..B6): one word each, so every note carries a
# pitch tag shared with a fifth of the notes (the note names alone are each on ~1/60 of them).
REGISTER = {2: "deep", 3: "low", 4: "middle", 5: "high", 6: "shrill"}
NOTE_S, HOLD_S = 4.0, 3.0  # each note: 3 s held, 1 s release, cut into its own 4 s clip
DRUM_PIECES = (
    ("kick", ("kick", "bassdrum", "bass drum", "bd")),
    ("snare", ("snare", "rim", "stick", "sd")),
    ("hihat", ("hh", "hat", "hihat")),
    ("cymbal", ("crash", "ride", "cymbal", "splash", "china")),
    ("tom", ("tom",)),
    ("clap", ("clap",)),
    ("percussion", ("cowbell", "shaker", "tamb", "conga", "bongo", "perc", "clave", "block")),
)


def render_program(
    fluidsynth: str, soundfont: Path, program: int, notes: list[Note], folder: Path
) -> Path:
    """Render notes of one GM program to a 16 kHz mono WAV in `folder` (one fluidsynth call);
    returns it. The file is named by the program and a digest of what is played, so a render is
    reused only for the same notes (never one another seed or extra count drew)."""
    score = write_midi(program, notes)
    out = folder / f"program{program:03d}-{hashlib.sha256(score).hexdigest()[:12]}.wav"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    midi = out.with_suffix(".mid")
    midi.write_bytes(score)
    partial = out.with_suffix(".partial.wav")
    command = [
        fluidsynth,
        "-ni",
        "-q",
        "-g",
        "0.8",
        "-r",
        "16000",
        "-F",
        str(partial),
        str(soundfont),
        str(midi),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0 or not partial.exists():
        raise DemoError(f"fluidsynth failed on program {program}: {result.stderr.strip()[-300:]}")
    wave, rate = sf.read(partial, dtype="float32", always_2d=True)
    sf.write(out, wave.mean(axis=1), rate, subtype="PCM_16")
    partial.unlink()
    midi.unlink()
    return out


def _draw_notes(rng: random.Random, count: int) -> tuple[list[int], list[str]]:
    """`count` distinct pitches (ascending) and a dynamic for each."""
    pitches = sorted(rng.sample(list(PITCHES), count))
    return pitches, [rng.choice(list(VELOCITIES)) for _ in pitches]


def _audible_notes(rendered: Path, count: int) -> list[bool]:
    """Whether each 4 s note slot of a rendered file holds sound (peak above -60 dBFS)."""
    wave, rate = sf.read(rendered, dtype="float32")
    slot = int(NOTE_S * rate)
    return [
        bool(np.abs(wave[i * slot : (i + 1) * slot]).max(initial=0.0) > 1e-3) for i in range(count)
    ]


def _drum_piece(name: str) -> str | None:
    lowered = name.lower().replace("_", " ")
    for piece, words in DRUM_PIECES:
        if any(w in lowered for w in words):
            return piece
    return None


def music_items(
    root: Path, cache: Path, fluidsynth: str, rng: random.Random, *, programs_per_family: int = 4,
    notes_per_program: int = 14, drum_hits: int = 200, extra_programs: int = 0,
    extra_rng: random.Random | None = None,
) -> list[Item]:  # fmt: skip
    """Items for rendered notes (written under `cache/notes`), Sonic Pi samples and drum hits.

    `extra_programs` more programs per family (among those not chosen) are rendered for
    pretraining only, every draw of theirs from `extra_rng`: `rng` makes the same probe partition
    with or without them.
    """
    # (family, program, partition, pitches, dynamics), in the order `rng` has always drawn them.
    plan: list[tuple[str, int, str, list[int], list[str]]] = []
    chosen_of: dict[str, list[int]] = {}
    for family, programs in FAMILIES.items():
        chosen = sorted(rng.sample(list(programs), min(programs_per_family, len(programs))))
        chosen_of[family] = chosen
        # Half of each family's programs (at least one) are heard only by the probes.
        probe = set(rng.sample(chosen, max(1, len(chosen) // 2)))
        for program in chosen:
            pitches, dynamics = _draw_notes(rng, notes_per_program)
            plan.append(
                (family, program, "probe" if program in probe else "pretrain", pitches, dynamics)
            )
    more = extra_rng or random.Random("music-extra")
    for family, programs in FAMILIES.items() if extra_programs else ():
        rest = sorted(set(programs) - set(chosen_of[family]))
        for program in sorted(more.sample(rest, min(extra_programs, len(rest)))):
            plan.append((family, program, "pretrain", *_draw_notes(more, notes_per_program)))
    items: list[Item] = []
    for family, program, partition, pitches, dynamics in plan:
        notes = [
            Note(p, VELOCITIES[d], i * NOTE_S, HOLD_S)
            for i, (p, d) in enumerate(zip(pitches, dynamics, strict=True))
        ]
        fonts = ("fluidr3", "timgm6mb") if partition == "probe" else ("fluidr3",)
        for font in fonts:
            rendered = render_program(
                fluidsynth,
                root / SOUNDFONTS[font],
                program,
                notes,
                cache / "notes" / font,
            )
            audible = _audible_notes(rendered, len(notes))
            for i, (pitch, dynamic) in enumerate(zip(pitches, dynamics, strict=True)):
                if not audible[i]:  # the soundfont has no sample for this pitch: silence
                    continue
                name = note_name(pitch)
                items.append(
                    Item(
                        uri=str(rendered),
                        clip_id=f"music/gm/{font}/{program:03d}/{pitch:03d}",
                        domain="music",
                        source=f"rendered with fluidsynth from {Path(SOUNDFONTS[font]).name}",
                        license="MIT" if font == "fluidr3" else "GPL-2",
                        text=f"A single {name} note, {REGISTER[pitch // 12 - 1]} in pitch, played on a "
                        f"{family.replace('_', ' ')} instrument, {dynamic}.",
                        text_kind="templated",
                        labels={
                            "family": family,
                            "program": program,
                            "pitch": pitch,
                            "velocity": VELOCITIES[dynamic],
                            "soundfont": font,
                            "set": "gm",
                        },
                        group=f"gm-program-{program:03d}",
                        partition=partition,
                        start_s=i * NOTE_S,
                        duration_s=NOTE_S,
                    )
                )
    for path in sorted((root / SONIC_PI).glob("*.flac")):
        kind = path.stem.split("_")[0]
        items.append(
            Item(
                uri=str(path),
                clip_id=f"music/sonic-pi/{path.stem}",
                domain="music",
                source="sonic-pi-samples",
                license="CC0",
                text=f"A {kind} sample.",
                text_kind="templated",
                labels={"sample_kind": kind, "set": "sonic-pi"},
                group=f"sonic-pi-{path.stem}",
                partition="pretrain",
            )
        )
    hits: list[Item] = []
    for xml in sorted((root / HYDROGEN).glob("*/drumkit.xml")):
        kit = xml.parent.name
        for instrument in ET.parse(xml).getroot().iter("instrument"):
            piece = _drum_piece(instrument.findtext("name") or "")
            for filename in {f.text for f in instrument.iter("filename") if f.text}:
                path = xml.parent / filename
                if piece is None or not path.exists():
                    continue
                hits.append(
                    Item(
                        uri=str(path),
                        clip_id=f"music/hydrogen/{kit}/{Path(filename).stem}",
                        domain="music",
                        source="hydrogen-drumkits",
                        license="GPL-2+",
                        text=f"A single {piece} drum hit.",
                        text_kind="templated",
                        labels={"drum": piece, "kit": kit, "set": "hydrogen"},
                        group=f"hydrogen-kit-{kit}",
                        partition="pretrain",
                    )
                )
    hits = list({h.clip_id: h for h in sorted(hits, key=lambda h: h.clip_id)}.values())
    items += rng.sample(hits, min(drum_hits, len(hits)))
    return items
