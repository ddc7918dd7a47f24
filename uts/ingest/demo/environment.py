"""Environmental clips of the demo corpus: game, stamp and desktop sound effects, by category.

Categories come from file names and folders by ordered keyword rules (first match wins; names that
are voices, music or interface noises are left out). Long ambience files are cut into 4 s windows
that share a group. Sound files are what the environment probe asks about, so whole groups (a
sound and its numbered variants) are reserved for the probe partition.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from pathlib import Path

import soundfile as sf

from uts.ingest.items import Item

__all__ = ["CATEGORIES", "category_of", "environment_items"]

SOURCES = {  # package: (folder, license)
    "minetest-data": ("usr/share/games/minetest", "CC-BY-SA-3.0"),
    "wesnoth-1.16-data": ("usr/share/games/wesnoth", "GPL-2+"),
    "hedgewars-data": ("usr/share/games/hedgewars/Data/Sounds", "GFDL-1.3"),
    "tuxpaint-stamps-default": ("usr/share/tuxpaint/stamps", "GPL-2"),
    "sound-theme-freedesktop": ("usr/share/sounds/freedesktop", "GPL-2+"),
}
EXCLUDE = (
    "/voices/", "_desc", "symbols/", "audio-channel", "audio-test", "magic", "melee", "firepunch", "drake-",
    "human", "dwarf", "elf-", "orc-", "goblin", "troll", "ogre", "lich", "skeleton", "zombie", "naga",
    "mermaid", "mermen", "wose", "ghoul", "hell", "hog", "custom", "select", "button", "checkbox", "slider",
    "chat", "soundstuff", "player_damage", "yeti", "squishy", "witches", "wail", "groan", "ugg", "hobbies/music",
)  # fmt: skip
CATEGORIES = (
    ("bird", ("animals/birds", "birds", "birdy")),
    ("insect", ("animals/insects", "bee", "mosquito", "hornet", "spider")),
    ("weapon", ("sword", "axe", "mace", "dagger", "knife", "hatchet", "club", "flail", "spear", "staff", "bow",
                "sling", "dart", "throw", "baseballbat")),
    ("gunshot", ("gunshot", "shotgun", "minigun", "sniper", "thunderstick", "dragonstick", "/gun.")),
    ("explosion", ("explo", "fireworks", "cave-in", "grenade", "mortar", "airmine", "mineimpact", "rumble")),
    ("vehicle", ("cart", "plane", "ship", "lander", "jetpack", "truck")),
    ("footsteps", ("footstep", "steps", "canter")),
    ("water", ("water", "splash", "droplet", "bubble")),
    ("fire", ("fire", "flame", "torch", "lava", "burning", "steam", "ignite", "fuse", "smoke")),
    ("door", ("door", "gate", "chest")),
    ("glass", ("glass",)),
    ("tool", ("dig", "dug", "tool", "hammer", "drill", "saw", "scissors", "place_node", "mallet")),
    ("household", ("kettle", "toilet", "washing", "vacuum", "rubberduck", "camera", "shutter", "trash", "bottle")),
    ("alarm", ("bell", "alarm", "phone", "beep", "countdown", "timer", "whistle", "horn", "dialog", "message",
               "complete", "device", "power-", "network", "window-", "service", "suspend", "screen-capture",
               "audio-volume", "minetick")),
    ("mammal", ("animals/", "wolf", "horse", "bat-", "bat_", "tusker", "blackcat", "cow", "neigh")),
)  # fmt: skip
WINDOW_S, LONG_S, MAX_WINDOWS = 4.0, 6.0, 4
AUDIO = (".ogg", ".oga", ".wav", ".flac")


def category_of(name: str) -> str | None:
    """Category of a sound from its lowercase relative path, or None when it is not environmental."""
    if any(word in name for word in EXCLUDE):
        return None
    for category, words in CATEGORIES:
        if any(word in name for word in words):
            return category
    return None


def _object_text(path: Path) -> str:
    description = path.with_suffix(".txt")
    if not description.exists():
        return ""
    first = description.read_text(encoding="utf-8", errors="replace").splitlines()[:1]
    return first[0].strip() if first else ""


def environment_items(root: Path, rng: random.Random, *, probe_share: float = 0.4) -> list[Item]:
    """Items for every environmental sound found; groups of 40% per category reserved for probes."""
    found: list[tuple[str, str, str, Path, str]] = []  # (category, group, package, path, license)
    for package, (folder, license) in SOURCES.items():
        base = root / folder
        for path in sorted(p for p in base.rglob("*") if p.suffix.lower() in AUDIO):
            name = "/" + str(path.relative_to(base)).lower()
            category = category_of(name)
            if category is None:
                continue
            stem = re.sub(r"[._-]?\d+$", "", path.stem.lower())
            found.append((category, f"{package}-{stem}", package, path, license))
    by_category: dict[str, set[str]] = defaultdict(set)
    for category, group, *_ in found:
        by_category[category].add(group)
    probe: set[str] = set()
    for groups in by_category.values():
        ordered = sorted(groups)
        rng.shuffle(ordered)
        probe.update(ordered[: int(len(ordered) * probe_share)])
    items: list[Item] = []
    for category, group, package, path, license in found:
        seconds = sf.info(str(path)).duration
        windows = min(MAX_WINDOWS, int(seconds // WINDOW_S)) if seconds > LONG_S else 1
        # Tux Paint stamps carry a description of the object; other sounds get a templated line
        # naming only their category (an attribute a real caption would give, never the file).
        text = _object_text(path) if package == "tuxpaint-stamps-default" else ""
        kind = "object_text" if text else "templated"
        text = text or f"A {category} sound effect."
        for w in range(windows):
            suffix = f"@{int(w * WINDOW_S)}s" if windows > 1 else ""
            items.append(
                Item(
                    uri=str(path),
                    clip_id=f"environment/{package}/{path.relative_to(root / SOURCES[package][0])}{suffix}",
                    domain="environment",
                    source=package,
                    license=license,
                    text=text,
                    text_kind=kind,
                    labels={"category": category, "sound": path.stem.lower(), "set": package},
                    group=group,
                    partition="probe" if group in probe else "pretrain",
                    start_s=w * WINDOW_S if windows > 1 else 0.0,
                    duration_s=WINDOW_S if windows > 1 else None,
                )
            )
    return items
