"""A minimal Standard MIDI File writer: one track of single notes, for rendering with fluidsynth."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Note", "note_name", "write_midi"]

TICKS_PER_BEAT = 480
TEMPO_US_PER_BEAT = 500_000  # 120 bpm: one beat = 0.5 s, so one second = 960 ticks
NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


@dataclass(frozen=True)
class Note:
    pitch: int  # MIDI 0..127
    velocity: int  # 1..127
    start_s: float
    length_s: float


def note_name(pitch: int) -> str:
    """MIDI pitch -> scientific name: 60 -> 'C4'."""
    return f"{NAMES[pitch % 12]}{pitch // 12 - 1}"


def _varlen(value: int) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def _ticks(seconds: float) -> int:
    return round(seconds * TICKS_PER_BEAT * 1_000_000 / TEMPO_US_PER_BEAT)


def write_midi(program: int, notes: Sequence[Note], *, channel: int = 0) -> bytes:
    """A format-0 MIDI file playing `notes` with General MIDI `program` (0-based)."""
    events: list[tuple[int, bytes]] = [(0, bytes([0xC0 | channel, program]))]
    for note in notes:
        events.append((_ticks(note.start_s), bytes([0x90 | channel, note.pitch, note.velocity])))
        events.append(
            (_ticks(note.start_s + note.length_s), bytes([0x80 | channel, note.pitch, 0]))
        )
    events.sort(key=lambda e: (e[0], e[1][0] & 0xF0 == 0x90))  # note-offs before note-ons at a tick
    track = bytearray(b"\x00\xff\x51\x03" + TEMPO_US_PER_BEAT.to_bytes(3, "big"))
    now = 0
    for tick, message in events:
        track += _varlen(tick - now) + message
        now = tick
    track += b"\x00\xff\x2f\x00"
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, TICKS_PER_BEAT)
    return header + b"MTrk" + struct.pack(">I", len(track)) + bytes(track)
