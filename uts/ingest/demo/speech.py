"""Speech clips of the demo corpus: 27 real voices from four game and telephony packages.

Speakers are the identity the speaker probes ask about, so whole speakers are reserved for the
probe partition (`probe_speakers`); pretraining never hears them. Transcripts are real where the
package has them (Hedgewars phrase, Tux Paint stamp text); no text ever names a speaker or pack.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

from uts.ingest.items import Item

__all__ = ["EXPRESSIONS", "speech_items"]

HEDGEWARS = "usr/share/games/hedgewars/Data/Sounds/voices"
TUXPAINT = "usr/share/tuxpaint/stamps"
FILLETS = "usr/share/games/fillets-ng/sound"
ASTERISK = "usr/share/asterisk/sounds/en_US_f_Allison"

# Tux Paint languages whose descriptions one named person recorded (upstream changelog).
TUX_LANGUAGES = ("be", "bg", "da", "el", "es", "ro", "ru")
# English names for templated lines ("Speech in Czech."): a language is an attribute a real
# caption gives; the speaker never is.
LANGUAGE_NAMES = {"be": "Belarusian", "bg": "Bulgarian", "cs": "Czech", "da": "Danish", "el": "Greek",
                  "en": "English", "es": "Spanish", "nl": "Dutch", "pl": "Polish", "ro": "Romanian",
                  "ru": "Russian", "uk": "Ukrainian"}  # fmt: skip
HEDGEWARS_LANGUAGE = {"Default_es": "es", "Default_pl": "pl", "Default_ru": "ru", "Default_uk": "uk",
                      "Russian": "ru", "Russian_pl": "pl"}  # fmt: skip

# Expression of a Hedgewars phrase (weak labels: actors perform them differently).
EXPRESSIONS = {
    "pain": "Ow Ooff Ouch PoisonCough PoisonMoan Nooo",
    "taunt": "Coward Stupid Nutter Traitor Illgetyou Gonnagetyou Justyouwait Youllregretthat Comeonthen "
    "Revenge Bugger Boring Thisoneismine Leavemealone",
    "positive": "Amazing Victory Laugh Brilliant Excellent Flawless Firstblood Enemydown Yessir",
    "alarm": "Incoming Takecover Runaway Hurry Watchit Uh-oh Whatthe Ohdear Oops Missed Drat",
}
_EXPRESSION_OF = {
    phrase.lower(): kind for kind, phrases in EXPRESSIONS.items() for phrase in phrases.split()
}


def _phrase(stem: str) -> str:
    return re.sub(r"\d+$", "", stem)


def _split(speakers: list[str], probe_share: float, rng: random.Random) -> set[str]:
    ordered = sorted(speakers)
    rng.shuffle(ordered)
    return set(ordered[: round(len(ordered) * probe_share)])


def speech_items(
    root: Path, rng: random.Random, *, per_speaker: int = 100, extra_per_speaker: int = 0,
    extra_rng: random.Random | None = None,
) -> list[Item]:  # fmt: skip
    """Items for every demo voice; at most `per_speaker` clips from the large packs, and up to
    `extra_per_speaker` more of each pretraining voice drawn from `extra_rng` (`rng` makes the
    same probe partition with or without them)."""
    more = extra_rng or random.Random("speech-extra")

    def pick(found: list[Path], partition: str) -> list[Path]:
        chosen = rng.sample(found, min(per_speaker, len(found)))
        if partition == "pretrain" and extra_per_speaker:
            rest = sorted(set(found) - set(chosen))
            chosen += more.sample(rest, min(extra_per_speaker, len(rest)))
        return chosen

    items: list[Item] = []
    packs = sorted(p.name for p in (root / HEDGEWARS).iterdir() if p.is_dir())
    probe_packs = _split(packs, 2 / 3, rng)
    for pack in packs:
        for path in sorted((root / HEDGEWARS / pack).glob("*.ogg")):
            phrase = _phrase(path.stem)
            items.append(
                Item(
                    uri=str(path),
                    clip_id=f"speech/hedgewars/{pack}/{path.stem}",
                    domain="speech",
                    source="hedgewars-data",
                    license="GFDL-1.3",
                    text=phrase.lower(),
                    text_kind="transcript",
                    labels={
                        "speaker": f"hedgewars-{pack.lower()}",
                        "language": HEDGEWARS_LANGUAGE.get(pack, "en"),
                        "expression": _EXPRESSION_OF.get(phrase.lower(), "neutral"),
                        "phrase": phrase.lower(),
                        "set": "hedgewars",
                    },
                    group=f"hedgewars-phrase-{phrase.lower()}",
                    partition="probe" if pack in probe_packs else "pretrain",
                )
            )
    probe_languages = _split(list(TUX_LANGUAGES), 4 / 7, rng)
    for language in TUX_LANGUAGES:
        found = sorted((root / TUXPAINT).rglob(f"*_desc_{language}.ogg"))
        partition = "probe" if language in probe_languages else "pretrain"
        for path in pick(found, partition):
            stamp = path.name.removesuffix(f"_desc_{language}.ogg")
            text = ""
            description = path.with_name(f"{stamp}.txt")
            if description.exists():
                for line in description.read_text(encoding="utf-8", errors="replace").splitlines():
                    if line.startswith(f"{language}.utf8="):
                        text = line.split("=", 1)[1].strip()
            items.append(
                Item(
                    uri=str(path),
                    clip_id=f"speech/tuxpaint/{language}/{path.relative_to(root / TUXPAINT).with_suffix('')}",
                    domain="speech",
                    source="tuxpaint-stamps-default",
                    license="GPL-2",
                    text=text or f"Speech in {LANGUAGE_NAMES[language]}.",
                    text_kind="transcript" if text else "templated",
                    labels={
                        "speaker": f"tuxpaint-{language}",
                        "language": language,
                        "set": "tuxpaint",
                    },
                    group=f"tuxpaint-stamp-{stamp}",
                    partition=partition,
                )
            )
    for language, partition in (("cs", "pretrain"), ("nl", "probe")):
        for role, character in (("m", "small fish"), ("v", "big fish")):
            found = sorted((root / FILLETS).glob(f"*/{language}/*-{role}-*.ogg"))
            for path in pick(found, partition):
                level = path.parent.parent.name
                items.append(
                    Item(
                        uri=str(path),
                        clip_id=f"speech/fillets/{language}/{level}/{path.stem}",
                        domain="speech",
                        source=f"fillets-ng-data-{language}",
                        license="GPL-2",
                        text=f"Speech in {LANGUAGE_NAMES[language]}.",
                        text_kind="templated",
                        labels={
                            "speaker": f"fillets-{language}-{role}",
                            "language": language,
                            "character": character,
                            "set": "fillets",
                        },
                        group=f"fillets-level-{level}",
                        partition=partition,
                    )
                )
    found = sorted((root / ASTERISK).glob("*.wav"))
    for path in pick(found, "pretrain"):
        items.append(
            Item(
                uri=str(path),
                clip_id=f"speech/asterisk/{path.stem}",
                domain="speech",
                source="asterisk-core-sounds-en-wav",
                license="CC-BY-SA-3.0",
                text="A telephone prompt spoken in English.",
                text_kind="templated",
                labels={
                    "speaker": "asterisk-allison",
                    "language": "en",
                    "set": "asterisk",
                    "telephone": True,
                },
                group=f"asterisk-{path.stem}",
                partition="pretrain",
            )
        )
    return items
