"""The metadata -> AudioSet class table of the `labels` backend (uts.tags.audioset): one row per
mapping, every class name a class of the ontology (tests check it).

Rows name what the corpus metadata says, not what a listener might guess: no gender from a voice
pack, no species beyond the file name. General MIDI programs are 0-based (the corpus's `program`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["RULES", "Rule", "rules_digest"]


@dataclass(frozen=True)
class Rule:
    """One row of the mapping: clips of `source` (the metadata's `set`; `*`: any) whose `field`
    holds one of `words` get `classes`, unless the field also holds one of `unless`.

    Fields are keys of the `labels` JSON, `domain`, or `name` (the clip's file name). A word
    matches the whole value or one of its letter runs (`carts_cart_moving.1` holds `cart`); `a+b`
    needs both."""

    source: str
    field: str
    words: tuple[str, ...]
    classes: tuple[str, ...]
    unless: tuple[str, ...] = ()


def _r(source: str, field: str, words: str, classes: str, unless: str = "") -> Rule:
    return Rule(
        source, field, tuple(words.split()), tuple(classes.split("|")), tuple(unless.split())
    )


def _programs(first: int, last: int) -> str:
    return " ".join(str(p) for p in range(first, last + 1))


WIND = "Wind instrument, woodwind instrument"
WHOOSH_AFTER = "bow crossbow sword axe mace club flail hatchet staff spear sling knife dart"
# fmt: off
RULES: tuple[Rule, ...] = (
    # every corpus: the domain's own class
    _r("*", "domain", "speech", "Speech"),
    _r("*", "domain", "music", "Music"),
    # Hedgewars phrases that are not words
    _r("hedgewars", "phrase", "laugh", "Laughter"),
    _r("hedgewars", "phrase", "poisoncough", "Cough"),
    _r("hedgewars", "phrase", "poisonmoan", "Wail, moan"),
    # General MIDI programs (0-based), rendered single notes
    _r("gm", "program", "0 1 2 3", "Piano"),
    _r("gm", "program", "4 5", "Electric piano"),
    _r("gm", "program", "6", "Harpsichord"),
    _r("gm", "program", "7 8", "Keyboard (musical)"),  # clavinet (blacklisted), celesta
    _r("gm", "program", "9", "Glockenspiel"),
    _r("gm", "program", "10 108", "Musical instrument"),  # music box, kalimba
    _r("gm", "program", "11", "Vibraphone"),
    _r("gm", "program", "12 13", "Marimba, xylophone"),
    _r("gm", "program", "14", "Tubular bells"),
    _r("gm", "program", "15 107", "Zither"),  # dulcimer, koto
    _r("gm", "program", "16 17 18", "Electronic organ"),  # drawbar, percussive, rock organ
    _r("gm", "program", "19 20", "Organ"),
    _r("gm", "program", "21 23", "Accordion"),
    _r("gm", "program", "22", "Harmonica"),
    _r("gm", "program", "24 25", "Acoustic guitar"),
    _r("gm", "program", _programs(26, 30), "Electric guitar"),
    _r("gm", "program", "31 120", "Guitar"),  # harmonics, fret noise
    _r("gm", "program", "32 43", "Double bass"),  # acoustic bass, contrabass
    _r("gm", "program", _programs(33, 37), "Bass guitar"),
    _r("gm", "program", f"38 39 50 51 62 63 {_programs(80, 103)} 118", "Synthesizer"),
    _r("gm", "program", "40 110", "Violin, fiddle"),
    _r("gm", "program", "41", "Bowed string instrument"),
    _r("gm", "program", "42", "Cello"),
    _r("gm", "program", "44 45 48 49", "String section"),
    _r("gm", "program", "46", "Harp"),
    _r("gm", "program", "47", "Timpani"),
    _r("gm", "program", "52", "Choir"),
    _r("gm", "program", "53", "Singing"),
    _r("gm", "program", "54", "Synthetic singing|Synthesizer"),
    _r("gm", "program", "55", "Orchestra"),
    _r("gm", "program", "56 59", "Trumpet"),
    _r("gm", "program", "57", "Trombone"),
    _r("gm", "program", "58 61", "Brass instrument"),
    _r("gm", "program", "60", "French horn"),
    _r("gm", "program", "64 65 66 67", "Saxophone"),
    _r("gm", "program", "68", "Oboe"),
    _r("gm", "program", "69 76 111", WIND),  # english horn, blown bottle, shanai
    _r("gm", "program", "70", "Bassoon"),
    _r("gm", "program", "71", "Clarinet"),
    _r("gm", "program", "72 73 74 75 77 79", "Flute"),  # piccolo, recorder, pan flute, ...
    _r("gm", "program", "78", "Whistling"),
    _r("gm", "program", "104", "Sitar"),
    _r("gm", "program", "105", "Banjo"),
    _r("gm", "program", "106", "Plucked string instrument"),
    _r("gm", "program", "109", "Bagpipes"),
    _r("gm", "program", "112", "Bell"),
    _r("gm", "program", "113", "Percussion"),
    _r("gm", "program", "114", "Steelpan"),
    _r("gm", "program", "115", "Wood block"),
    _r("gm", "program", "116 117 118", "Drum"),
    _r("gm", "program", "119", "Cymbal"),
    _r("gm", "program", "121", "Breathing"),
    _r("gm", "program", "122", "Waves, surf"),
    _r("gm", "program", "123", "Chirp, tweet"),
    _r("gm", "program", "124", "Telephone bell ringing"),
    _r("gm", "program", "125", "Helicopter"),
    _r("gm", "program", "126", "Applause"),
    _r("gm", "program", "127", "Gunshot, gunfire"),
    # Hydrogen drum kit hits
    _r("hydrogen", "set", "hydrogen", "Drum kit"),
    _r("hydrogen", "drum", "hihat", "Hi-hat"),
    _r("hydrogen", "drum", "kick", "Bass drum"),
    _r("hydrogen", "drum", "snare", "Snare drum"),
    _r("hydrogen", "drum", "tom", "Drum"),
    _r("hydrogen", "drum", "cymbal", "Cymbal"),
    _r("hydrogen", "drum", "clap", "Clapping"),
    _r("hydrogen", "drum", "percussion", "Percussion"),
    # Sonic Pi samples: the kind (file name prefix), then words of the file name
    _r("sonic-pi", "sample_kind", "bd", "Bass drum"),
    _r("sonic-pi", "sample_kind", "sn", "Snare drum"),
    _r("sonic-pi", "sample_kind", "drum", "Drum kit"),
    _r("sonic-pi", "sample_kind", "tabla", "Tabla"),
    _r("sonic-pi", "sample_kind", "perc", "Percussion"),
    _r("sonic-pi", "sample_kind", "guit", "Guitar"),
    _r("sonic-pi", "name", "kick bass+drum", "Bass drum"),
    _r("sonic-pi", "name", "snare", "Snare drum"),
    _r("sonic-pi", "name", "tom", "Drum"),
    _r("sonic-pi", "name", "cymbal splash", "Cymbal"),
    _r("sonic-pi", "name", "cowbell", "Cowbell"),
    _r("sonic-pi", "name", "roll", "Drum roll"),
    _r("sonic-pi", "name", "amen breakbeat", "Drum kit"),
    _r("sonic-pi", "name", "tabla", "Tabla"),
    _r("sonic-pi", "name", "perc", "Percussion"),
    _r("sonic-pi", "name", "choir", "Choir"),
    _r("sonic-pi", "name", "piano", "Piano"),
    _r("sonic-pi", "name", "slide", "Steel guitar, slide guitar"),
    _r("sonic-pi", "name", "dnb", "Drum and bass"),
    _r("sonic-pi", "name", "trance", "Trance music"),
    _r("sonic-pi", "name", "bell", "Bell"),
    _r("sonic-pi", "name", "chime", "Chime"),
    _r("sonic-pi", "name", "beep", "Beep, bleep"),
    _r("sonic-pi", "name", "ping", "Ping"),
    _r("sonic-pi", "name", "twang", "Twang"),
    _r("sonic-pi", "name", "tick", "Tick"),
    _r("sonic-pi", "name", "wood", "Wood block"),
    _r("sonic-pi", "name", "hum", "Hum"),
    _r("sonic-pi", "name", "buzz", "Buzz"),
    _r("sonic-pi", "name", "swoosh woosh", "Whoosh, swoosh, swish"),
    _r("sonic-pi", "name", "scratch backspin rewind", "Scratching (performance technique)"),
    _r("sonic-pi", "name", "hiss", "Hiss"),
    _r("sonic-pi", "name", "printer", "Printer"),
    _r("sonic-pi", "name", "phone", "Telephone"),
    _r("sonic-pi", "name", "burp", "Burping, eructation"),
    _r("sonic-pi", "name", "cineboom", "Boom"),
    _r("sonic-pi", "name", "crow", "Crow"),
    _r("sonic-pi", "name", "door", "Door"),
    _r("sonic-pi", "name", "till", "Cash register"),
    _r("sonic-pi", "name", "snap", "Snap"),
    # environmental sounds: the category, then words of the sound's file name
    _r("*", "category", "bird", "Bird"),
    _r("*", "category", "insect", "Insect", unless="beep spider"),
    _r("*", "category", "mammal", "Animal"),
    _r("*", "category", "gunshot", "Gunshot, gunfire", unless="shotgunreload sniperreload"),
    _r("*", "category", "explosion", "Explosion"),
    _r("*", "category", "vehicle", "Vehicle"),
    _r("*", "category", "footsteps", "Walk, footsteps"),
    _r("*", "category", "water", "Water"),
    _r("*", "category", "fire", "Fire"),
    _r("*", "category", "door", "Door", unless="chest"),
    _r("*", "category", "glass", "Glass"),
    _r("*", "category", "tool", "Tools"),
    _r("*", "category", "alarm", "Alarm"),
    _r("*", "sound", "crow", "Crow"),
    _r("*", "sound", "owl", "Owl"),
    _r("*", "sound", "duck drake", "Duck"),
    _r("*", "sound", "gander", "Goose"),
    _r("*", "sound", "hen rooster", "Chicken, rooster"),
    _r("*", "sound", "turkey", "Turkey"),
    _r("*", "sound", "seagull", "Gull, seagull"),
    _r("*", "sound", "bee beewater hornet", "Bee, wasp, etc."),
    _r("*", "sound", "mosquito", "Mosquito"),
    _r("*", "sound", "spider", "Animal"),
    _r("*", "sound", "beep", "Beep, bleep"),
    _r("*", "sound", "dog", "Dog"),
    _r("*", "sound", "blackcat cat", "Cat"),
    _r("*", "sound", "cow bull bison", "Cattle, bovinae"),
    _r("*", "sound", "pig", "Pig"),
    _r("*", "sound", "goat mountaingoat", "Goat"),
    _r("*", "sound", "sheep ram", "Sheep"),
    _r("*", "sound", "horse", "Horse"),
    _r("*", "sound", "canter", "Clip-clop"),
    _r("*", "sound", "donkey", "Donkey, ass"),
    _r("*", "sound", "lion tiger", "Roaring cats (lions, tigers)", unless="sea"),
    _r("*", "sound", "wolf fox", "Canidae, dogs, wolves"),
    _r("*", "sound", "growl", "Growling"),
    _r("*", "sound", "mouse", "Mouse"),
    _r("*", "sound", "squirrel beaver", "Rodents, rats, mice"),
    _r("*", "sound", "whale orca", "Whale vocalization"),
    _r("*", "sound", "frog", "Frog"),
    _r("*", "sound", "flapping", "Flap"),
    _r("*", "sound", "minigun", "Machine gun"),
    _r("*", "sound", "fireworks", "Fireworks"),
    _r("*", "sound", "rumble", "Rumble"),
    _r("*", "sound", "cart", "Railroad car, train wagon"),
    _r("*", "sound", "ship", "Ship"),
    _r("*", "sound", "plane planewater", "Fixed-wing aircraft, airplane"),
    _r("*", "sound", "rcplane", "Aircraft"),
    _r("*", "sound", "firetruck", "Truck"),
    _r("*", "sound", "droplet", "Drip"),
    _r("*", "sound", "splash", "Splash, splatter"),
    _r("*", "sound", "steam", "Steam"),
    _r("*", "sound", "flamethrower", "Fire"),
    _r("*", "sound", "break+glass", "Shatter"),
    _r("*", "sound", "hammer mallet", "Hammer"),
    _r("*", "sound", "pickhammer", "Jackhammer"),
    _r("*", "sound", "saw", "Sawing"),
    _r("*", "sound", "drillgun", "Drill"),
    _r("*", "sound", "scissors", "Scissors"),
    _r("*", "sound", "tool+breaks", "Breaking"),
    _r("*", "sound", "camera shutter shutterclick", "Camera"),
    _r("*", "sound", "vacuum", "Vacuum cleaner"),
    _r("*", "sound", "toilet", "Toilet flush"),
    _r("*", "sound", "bell", "Bell"),
    _r("*", "sound", "whistle", "Whistle"),
    _r("*", "sound", "alarm+clock", "Alarm clock"),
    _r("*", "sound", "phone+incoming", "Ringtone"),
    _r("*", "sound", "phone+busy", "Busy signal"),
    _r("*", "sound", "phone+calling", "Telephone"),
    _r("*", "sound", "bow crossbow", "Arrow"),
    _r("*", "sound", "sword axe mace club flail hatchet staff spear knife dagger baseballbat",
       "Whack, thwack", unless="miss swish throwing"),
    _r("*", "sound", "swish throwpowerup throwrelease throw " + " ".join(
        f"miss+{w}" for w in WHOOSH_AFTER.split()), "Whoosh, swoosh, swish"),
)
# fmt: on


def rules_digest(rules: Iterable[Rule] = RULES) -> str:
    """Hash of the mapping table: the labels stage's fingerprint changes with any row."""
    text = json.dumps([[r.source, r.field, r.words, r.classes, r.unless] for r in rules])
    return hashlib.sha256(text.encode()).hexdigest()[:16]
