"""A miniature of the demo's unpacked Debian packages (same layout, tiny generated audio), and a
stand-in fluidsynth that renders sine tones, so the demo source is tested without downloads."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from uts.ingest.demo.fetch import PACKAGES

FAKE_FLUIDSYNTH = r'''#!{python}
"""Stand-in for fluidsynth -ni -q -g G -r RATE -F OUT SF2 MIDI: one sine tone per note-on."""
import sys
import numpy as np
import soundfile as sf
args = sys.argv[1:]
rate, out, sf2, midi = int(args[args.index("-r") + 1]), args[args.index("-F") + 1], args[-2], args[-1]
data = open(midi, "rb").read()
track, i, now, notes = data[22:], 0, 0, []
while i < len(track):
    delta = 0
    while True:
        byte = track[i]; i += 1; delta = (delta << 7) | (byte & 0x7F)
        if byte < 0x80: break
    now += delta
    status = track[i]
    if status == 0xFF:
        i += 3 + track[i + 2]
    elif status & 0xF0 == 0xC0:
        i += 2
    else:
        if status & 0xF0 == 0x90: notes.append((now / 960, track[i + 1]))
        i += 3
length = int((max(t for t, _ in notes) + 4) * rate)
wave = np.zeros(length)
for start, pitch in notes:
    if "silent" in sf2 or pitch > 90:  # like a soundfont without samples up there
        continue
    t = np.arange(3 * rate) / rate
    first = int(start * rate)
    wave[first:first + t.size] += 0.3 * np.sin(2 * np.pi * 440 * 2 ** ((pitch - 69) / 12) * t)
sf.write(out, np.stack([wave, wave], axis=1), rate)
'''


def _audio(path: Path, seconds: float = 1.0, freq: float = 300.0, rate: int = 16000) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * rate)) / rate
    fmt = {".ogg": "OGG", ".oga": "OGG", ".wav": "WAV", ".flac": "FLAC"}[path.suffix]
    sf.write(path, 0.3 * np.sin(2 * np.pi * freq * t), rate, format=fmt)


@pytest.fixture
def demo_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    root = cache / "root"
    (cache / "debs").mkdir(parents=True)
    for package in PACKAGES:  # as if downloaded and unpacked before: nothing is fetched
        (cache / "debs" / f"{package.name}_1.0_all.deb").write_bytes(b"")
        root.mkdir(exist_ok=True)
        (root / f".{package.name}.unpacked").touch()
    voices = root / "usr/share/games/hedgewars/Data/Sounds/voices"
    for k, pack in enumerate(("Classic", "Pirate", "Robot")):
        for phrase in ("Ow1", "Ow2", "Coward", "Amazing", "Hello"):
            _audio(voices / pack / f"{phrase}.ogg", freq=200 + 50 * k)
    _audio(root / "usr/share/games/hedgewars/Data/Sounds/explosion.ogg", 1.0, 80)
    stamps = root / "usr/share/tuxpaint/stamps/animals/mammals"
    stamps.mkdir(parents=True)
    (stamps / "cow.txt").write_text("A cow.\nbg.utf8=Крава.\nru.utf8=Корова.\n", encoding="utf-8")
    for language in ("bg", "ru"):
        _audio(stamps / f"cow_desc_{language}.ogg")
    _audio(stamps / "cow.ogg", 2.0, 120)
    for language in ("cs", "nl"):
        for role in ("m", "v"):
            for line in range(3):
                _audio(
                    root / f"usr/share/games/fillets-ng/sound/city/{language}/vit-{role}-{line}.ogg"
                )
    for prompt in ("hello", "goodbye"):
        _audio(root / f"usr/share/asterisk/sounds/en_US_f_Allison/{prompt}.wav", rate=8000)
    _audio(root / "usr/share/sonic-pi/samples/bd_808.flac")
    kit = root / "usr/share/hydrogen/data/drumkits/Kit"
    _audio(kit / "kick.wav")
    (kit / "drumkit.xml").write_text(
        "<drumkit_info><name>Kit</name><instrumentList><instrument><name>Kick</name>"
        "<layer><filename>kick.wav</filename></layer></instrument></instrumentList></drumkit_info>"
    )
    _audio(root / "usr/share/games/minetest/sounds/default_grass_footstep.1.ogg")
    _audio(root / "usr/share/games/minetest/sounds/default_grass_footstep.2.ogg")
    _audio(
        root / "usr/share/games/minetest/sounds/env_sounds_water.ogg", 13.0, 500
    )  # long: windows
    _audio(root / "usr/share/games/wesnoth/1.16/sounds/wolf-growl-1.ogg")
    _audio(root / "usr/share/games/wesnoth/1.16/sounds/orc-hit-1.ogg")  # a voice: left out
    _audio(root / "usr/share/sounds/freedesktop/stereo/bell.oga")
    for font in ("FluidR3_GM.sf2", "TimGM6mb.sf2"):
        (root / "usr/share/sounds/sf2").mkdir(parents=True, exist_ok=True)
        (root / "usr/share/sounds/sf2" / font).write_bytes(b"")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "fluidsynth"
    script.write_text(FAKE_FLUIDSYNTH.replace("{python}", sys.executable))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return cache
