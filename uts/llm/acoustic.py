"""The `acoustic` captioner: a description of what is measurably heard, with no model.

Each clip is measured (uts.llm.acoustic_measure) and every row of THRESHOLDS whose test holds adds
its phrase; the phrases are written into one English sentence, with positive wording only (what is
there: "dry", never "no reverb", since a tagger would pick "reverb" out of it). The corpus's own
text joins the sentence where it exists (an instrument and note, a sound category, a transcript),
never its `labels` (speaker, kit and program identities are what probe tasks ask for). The
measurement table goes into the row's `raw` column as JSON so any description can be audited.

Each threshold was chosen on synthetic signals with known properties (tests/llm/test_acoustic.py)
and checked against the spread of the demo corpus; the `why` column says which.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, NamedTuple

import pyarrow as pa
import pyarrow.compute as pc

from uts.audio.io import AudioError, decode_flac
from uts.llm.acoustic_measure import MEASURE_UNITS, measure
from uts.llm.backends import CAPTION_SCHEMA

__all__ = [
    "ACOUSTIC_COLUMNS",
    "ACOUSTIC_VERSION",
    "THRESHOLDS",
    "Threshold",
    "acoustic_captions",
    "describe",
    "phrases_for",
]

ACOUSTIC_VERSION = "1"  # bump when a threshold, a measurement or the wording changes
ACOUSTIC_COLUMNS = ("clip_id", "audio", "text", "text_kind", "domain", "partition")


class Threshold(NamedTuple):
    """One row of the table: `attribute` compared (`op`) with `threshold` in `unit` gives `phrase`."""

    key: str
    attribute: str
    op: str  # "<" or ">="
    threshold: float
    unit: str
    phrase: str
    why: str


# fmt: off
THRESHOLDS: tuple[Threshold, ...] = (
    # pitch (only where the clip is periodic: voiced_fraction gates these)
    Threshold("pitched", "voiced_fraction", ">=", 0.5, "ratio", "", "tones and held notes are periodic in >= 90% of frames, noise in 0%; speech 30-70%"),
    Threshold("speech_voiced", "voiced_fraction", ">=", 0.2, "ratio", "", "speech is voiced in 30-70% of frames (consonants, pauses): a lower bar for a voice's pitch"),
    Threshold("steady_voiced", "voiced_fraction", ">=", 0.8, "ratio", "", "a clear tone is periodic almost throughout (tones 1.0, held notes >= 0.9)"),
    Threshold("very_low", "f0_median", "<", 90.0, "Hz", "very low-pitched", "below the lowest male speaking f0 (~85 Hz); deep bass notes"),
    Threshold("low", "f0_median", "<", 180.0, "Hz", "low-pitched", "a 100 Hz tone is low; adult male speech sits at 85-180 Hz"),
    Threshold("high", "f0_median", ">=", 700.0, "Hz", "high-pitched", "a 1.5 kHz tone is high; above the top of sung soprano f0 (~1 kHz) less a margin"),
    Threshold("bass", "f0_median", "<", 130.0, "Hz", "bass", "music below C3 (131 Hz) is the bass register"),
    Threshold("male", "f0_median", "<", 165.0, "Hz", "in the male range", "voiced speech f0 below 165 Hz: the typical adult male range (85-155 Hz)"),
    Threshold("female", "f0_median", "<", 255.0, "Hz", "in the female range", "voiced speech f0 165-255 Hz: the typical adult female range"),
    Threshold("voice_high", "f0_median", ">=", 255.0, "Hz", "high-pitched", "voiced speech above 255 Hz: above the adult female range (children, cartoon voices)"),
    # timbre
    Threshold("noisy", "flatness", ">=", 0.25, "ratio", "noisy", "white noise has spectral flatness 0.56, tones 0.0, speech < 0.05"),
    Threshold("breathy", "flatness", ">=", 0.08, "ratio", "airy", "between voiced sound (< 0.05) and noise (>= 0.25): mixed noise and tone"),
    Threshold("bright", "centroid", ">=", 3000.0, "Hz", "bright", "white noise's centroid is 4 kHz; the demo's speech sits below 1.7 kHz (95th percentile)"),
    Threshold("dark", "centroid", "<", 400.0, "Hz", "dark", "a 100-300 Hz tone or a bass drum: energy below 400 Hz"),
    Threshold("rumble", "flatness", ">=", 0.02, "ratio", "rumble", "dark (centroid < 400 Hz) and not a clean tone (flatness >= 0.02): rumbling noise"),
    Threshold("harmonic", "harmonicity", ">=", 0.9, "ratio", "clear", "periodicity (1 - YIN dip) of tones is 0.98-1.0, of speech 0.6-0.8"),
    Threshold("synthetic", "f0_spread", "<", 0.01, "semitones", "synthetic, electronic", "pitch steady within 1 cent: a pure oscillator spreads 0.000, the demo's sampled instruments 0.04 (median)"),
    Threshold("buzz_low", "f0_median", "<", 250.0, "Hz", "", "a buzz is low: the harmonics of a higher pitch are heard as a bright tone"),
    Threshold("buzz", "centroid", ">=", 8.0, "x f0", "buzz", "a low (f0 < 250 Hz) periodic sound with the centroid >= 8 harmonics up: sawtooth/square-like"),
    Threshold("metal_peaky", "flatness", "<", 0.02, "ratio", "", "a spectrum of sharp partials, far from noise (0.56)"),
    Threshold("metallic", "harmonicity", "<", 0.6, "ratio", "metallic ringing", "tonal peaks (flatness < 0.02) but not periodic (harmonicity < 0.6): inharmonic partials as in bells, cymbals"),
    Threshold("metal_bright", "centroid", ">=", 1000.0, "Hz", "", "metallic sounds are bright: kick drums (centroid < 500 Hz) are also peaky and aperiodic"),
    Threshold("ringing", "rt60", ">=", 0.3, "s", "", "a metallic sound rings on: its decay is slower than a dry hit's"),
    Threshold("melodic", "pitch_classes", ">=", 3.0, "count", "melodic line", "three or more semitone pitch classes held for >= 3 frames each"),
    Threshold("melody_moves", "f0_spread", ">=", 1.0, "semitones", "", "a melody's pitch moves; vibrato on one note spreads < 1 semitone"),
    Threshold("monophonic", "pitch_classes", "<", 3.0, "count", "monophonic, solo", "one periodic pitch track at a time, at most two notes"),
    Threshold("held", "sound_length", ">=", 0.5, "s", "", "a held note, not a drum's short pitched thump"),
    Threshold("neutral", "f0_spread", "<", 1.5, "semitones", "neutral intonation", "speech whose f0 interquartile range stays within 1.5 semitones"),
    Threshold("emotional", "f0_spread", ">=", 6.0, "semitones", "emotional, expressive intonation", "speech whose f0 interquartile range exceeds half an octave"),
    Threshold("vocal", "sound_length", "<", 1.2, "s", "short vocal", "voiced speech lasting under 1.2 s: an exclamation rather than a sentence"),
    # time structure
    Threshold("percussive", "attack", "<", 0.04, "s", "sudden, percussive hit", "level peaks within 40 ms of the onset and falls >= 20 dB in 300 ms (a burst or a drum hit)"),
    Threshold("decays", "decay_drop", ">=", 20.0, "dB", "", "the fall within 300 ms after a level peak that makes an attack percussive"),
    Threshold("thud", "centroid", "<", 600.0, "Hz", "thud, impact", "a percussive hit whose energy centroid is below 600 Hz"),
    Threshold("click", "sound_length", "<", 0.1, "s", "click", "a percussive sound whose loud part lasts under 100 ms"),
    Threshold("abrupt", "attack", "<", 0.02, "s", "abrupt", "the level reaches its peak within one 16 ms frame of the onset"),
    Threshold("rustling", "onset_rate", ">=", 5.0, "1/s", "rustling", "noisy (flatness >= 0.08) with >= 5 onsets per second"),
    Threshold("rhythmic", "ioi_cv", "<", 0.3, "ratio", "steady rhythm", ">= 4 onsets whose spacing varies by < 30%; the burst train has 0.02"),
    Threshold("rhythm_long", "sound_length", ">=", 2.0, "s", "", "a rhythm needs time: four onsets inside 1 s of speech are syllables"),
    Threshold("tempo_low", "tempo", ">=", 40.0, "BPM", "", "slower than 40 BPM is not heard as a beat"),
    Threshold("tempo_high", "tempo", "<", 240.0, "BPM", "", "faster than 240 BPM is a texture, not a beat"),
    Threshold("mechanical", "ioi_cv", "<", 0.08, "ratio", "mechanical repetition", "onsets spaced within 8% of each other over >= 2 s: machine-regular"),
    Threshold("dynamic", "rms_range", ">=", 40.0, "dB", "dynamic", "frame level spread (95th - 10th percentile) of 40 dB or more"),
    Threshold("compressed", "crest_factor", "<", 10.0, "dB", "compressed", "peak/RMS under 10 dB (noise is 12 dB, speech 15) with a level spread under 12 dB (next row)"),
    Threshold("compressed_steady", "rms_range", "<", 12.0, "dB", "", "a compressed sound keeps its level"),
    Threshold("ambient", "sound_length", ">=", 3.0, "s", "ambient texture", "3 s or more of noisy sound at < 1 onset per second with a level spread < 20 dB (the next rows)"),
    Threshold("ambient_noisy", "flatness", ">=", 0.05, "ratio", "", "an ambience is noise-like, not a held note"),
    Threshold("ambient_sparse", "onset_rate", "<", 1.0, "1/s", "", "an ambience has few distinct events"),
    Threshold("ambient_steady", "rms_range", "<", 20.0, "dB", "", "an ambience keeps its level"),
    Threshold("silence", "silent_fraction", ">=", 0.3, "ratio", "digital silence", "30% or more of the clip is digital silence (gaps, padding)"),
    Threshold("cut_off", "end_level", ">=", -10.0, "dB", "cut-off ending", "the last sounding frame is within 10 dB of the loudest: the sound stops abruptly"),
    Threshold("cut_off_len", "sound_length", ">=", 0.2, "s", "", "a sound shorter than 0.2 s is a hit, not a cut"),
    # degradation and channel
    Threshold("clipping", "clipped_fraction", ">=", 0.01, "ratio", "distorted, clipping", "1% or more of sounding samples sit in flat-topped runs at the peak; a sine has 0%"),
    Threshold("clipping_heavy", "clipped_fraction", ">=", 0.05, "ratio", "heavy clipping distortion", "5% or more flat-topped: a tone clipped at 1/3 of its amplitude has 80%"),
    Threshold("telephone", "low_edge", ">=", 250.0, "Hz", "band-limited telephone sound", "1% of energy lies below >= 250 Hz and 99% below <= 3800 Hz (300-3400 Hz noise)"),
    Threshold("tele_top", "high_edge", "<", 3800.0, "Hz", "", "upper edge of the telephone band test"),
    Threshold("tele_wide", "occupied_band", ">=", 1500.0, "Hz", "", "the 1-99% energy band spans >= 1.5 kHz: speech-band content, not one narrow tone"),
    Threshold("tele_no_f0", "low_edge", ">=", 1.5, "x f0", "", "a phone line removes a voice's fundamental; a high voice (f0 300 Hz) alone has low_edge near f0"),
    Threshold("lofi", "hf_share", "<", -45.0, "dB", "lo-fi", "energy above 4.3 kHz under -45 dB of the total while 1.5-3.8 kHz holds >= -35 dB: a low-pass cut (the demo's 8 kHz telephone prompts: -47..-69)"),
    Threshold("lofi_mid", "mid_share", ">=", -35.0, "dB", "", "enough energy just below the cut for the cut to be audible"),
    Threshold("studio", "rt60", "<", 0.25, "s", "clean studio sound", "speech both dry (RT60 < 0.25 s) and clean and full-band (the hifi row)"),
    Threshold("hifi", "high_edge", ">=", 5000.0, "Hz", "clean, high-fidelity", "99% energy edge at >= 5 kHz with the noise floor below -55 dB and no clipping"),
    Threshold("clean_floor", "hiss_level", "<", -55.0, "dB", "", "quiet-frame energy above 3 kHz under -55 dB of the active level"),
    Threshold("hiss", "hiss_level", ">=", -45.0, "dB", "faint hiss", "quiet-frame energy above 3 kHz within 45 dB of the active level, noise-like (flatness >= 0.3)"),
    Threshold("hiss_loud", "hiss_level", ">=", -30.0, "dB", "hiss", "the same floor within 30 dB of the active level"),
    Threshold("hiss_flat", "hiss_flatness", ">=", 0.3, "ratio", "", "the floor above 3 kHz is noise, not a tone's harmonics"),
    Threshold("hum", "hum_prominence", ">=", 12.0, "dB", "hum", "50 or 60 Hz and two of its harmonics stand >= 12 dB over neighbouring bins; a 50 Hz hum 12 dB under noise bursts gives 15 dB, noise alone < 5"),
    Threshold("hum_quiet", "hum_level", "<", -10.0, "dB", "", "a hum is underneath, not the sound itself"),
    # room (decay after offsets: RT60 from the level slope, Schroeder style)
    Threshold("dry", "rt60", "<", 0.25, "s", "dry", "gated bursts decay in ~0.03 s; a room with RT60 < 0.25 s sounds dead"),
    Threshold("room", "rt60", "<", 0.6, "s", "indoor room", "RT60 0.25-0.6 s: living rooms and offices"),
    Threshold("reverberant", "rt60", ">=", 0.6, "s", "reverberant", "RT60 >= 0.6 s; bursts through an RT60 1.2 s response measure 1.1-1.3 s"),
    Threshold("long_reverb", "rt60", ">=", 1.5, "s", "long reverberation", "RT60 >= 1.5 s: halls, churches, long ringing decays"),
)
# fmt: on
T = {row.key: row for row in THRESHOLDS}


def _holds(key: str, m: Mapping[str, float]) -> bool:
    row = T[key]
    if row.unit == "x f0":
        value = m[row.attribute] / m["f0_median"] if m["f0_median"] > 0 else 0.0
    else:
        value = m[row.attribute]
    return value < row.threshold if row.op == "<" else value >= row.threshold


def phrases_for(m: Mapping[str, float], domain: str) -> dict[str, list[str]]:
    """The phrases of the table rows that hold for measurements `m`, by slot: pitch, range (after
    the noun), timbre, room, time, channel. Some rows only qualify others (gates without phrase)."""
    h = {key: _holds(key, m) for key in T}
    speech, music = domain == "speech", domain == "music"
    voiced = m["f0_median"] > 0 and h["speech_voiced" if speech else "pitched"]
    out: dict[str, list[str]] = {
        k: [] for k in ("pitch", "range", "timbre", "room", "time", "channel")
    }

    def add(slot: str, *keys: str) -> None:
        out[slot] += [T[k].phrase for k in keys]

    if voiced and speech:
        add("pitch", "low" if h["low"] else ("female" if h["female"] else "voice_high"))
        out["pitch"] = [p if p != T["female"].phrase else "higher-pitched" for p in out["pitch"]]
        add("range", *[k for k in ("male", "female") if h[k]][:1])
        add("timbre", *[k for k in ("neutral", "emotional") if h[k]])
        if h["vocal"] and h["pitched"]:
            add("timbre", "vocal")
    elif voiced:
        add("pitch", *([k for k in ("very_low", "low", "high") if h[k]][:1]))
        if music and h["bass"]:
            add("pitch", "bass")
        if h["harmonic"] and h["steady_voiced"]:
            add("timbre", "harmonic", *(["synthetic"] if h["synthetic"] else []))
            if music and h["monophonic"] and h["held"]:
                add("timbre", "monophonic")
        if h["buzz_low"] and h["buzz"]:
            add("timbre", "buzz")
        if h["melodic"] and h["melody_moves"]:
            add("timbre", "melodic")
    if h["clipping"]:  # damage first: it is what a listener notices
        out["timbre"].insert(0, T["clipping_heavy" if h["clipping_heavy"] else "clipping"].phrase)
    if h["noisy"]:
        add("timbre", "noisy")
    elif h["breathy"]:
        add("timbre", "breathy")
    if (
        h["metallic"]
        and h["metal_bright"]
        and h["ringing"]
        and h["metal_peaky"]
        and not (voiced or speech)
    ):
        add("timbre", "metallic")
    add("timbre", *[k for k in ("bright", "dark") if h[k]][:1])
    if h["dark"] and h["rumble"] and not voiced:
        add("timbre", "rumble")

    if m["rt60"] > 0:
        wet = [k for k in ("long_reverb", "reverberant") if h[k]][:1]
        add("room", *(wet or (["dry"] if h["dry"] else ["room"])))
        if wet and music:
            out["room"] = [T["long_reverb"].phrase if wet == ["long_reverb"] else "with reverb"]
        if speech and h["dry"]:
            out["room"] = ["dry, intimate"]

    if h["percussive"] and h["decays"] and m["onset_rate"] > 0:
        hit = "sudden percussion hit" if music else T["percussive"].phrase
        out["time"] += ["sudden, abrupt onset" if speech else hit]
        add("time", *[k for k in ("click", "thud") if h[k] and not speech][:1])
    elif h["abrupt"] and m["onset_rate"] > 0:
        add("time", "abrupt")
    if h["rustling"] and m["flatness"] >= T["breathy"].threshold:
        add("time", "rustling")
    if h["tempo_low"] and h["tempo_high"] and h["rhythmic"] and h["rhythm_long"]:
        beat = f"{T['rhythmic'].phrase}, {round(m['tempo'])} BPM"
        out["time"] += [T["mechanical"].phrase if h["mechanical"] else beat]
    if h["dynamic"]:
        add("time", "dynamic")
    elif h["compressed"] and h["compressed_steady"] and not voiced:
        add("time", "compressed")
    if h["ambient"] and h["ambient_noisy"] and h["ambient_sparse"] and h["ambient_steady"]:
        add("time", "ambient")
    if h["silence"]:
        add("time", "silence")
    elif h["cut_off"] and h["cut_off_len"]:
        add("time", "cut_off")

    if h["telephone"] and h["tele_top"] and h["tele_wide"] and (h["tele_no_f0"] or not voiced):
        add("channel", "telephone")
    elif h["lofi"] and h["lofi_mid"]:
        add("channel", "lofi")
    elif h["hifi"] and h["clean_floor"] and not h["clipping"]:
        add("channel", "studio" if speech and h["studio"] and m["rt60"] > 0 else "hifi")
    if h["hiss"] and h["hiss_flat"] and not h["noisy"]:
        add("channel", "hiss_loud" if h["hiss_loud"] else "hiss")
    if h["hum"] and h["hum_quiet"]:
        add("channel", "hum")
    return out


_NOTE_TEXT = re.compile(r"A single (?P<note>[A-G]#?\d) note,.*played on an? (?P<inst>[\w ]+?) instrument", re.I)  # fmt: skip


def _subject(text: str, text_kind: str, domain: str) -> tuple[str, str]:
    """(noun phrase for the sound, a closing sentence) from the corpus's own text, if any."""
    text = (text or "").strip()
    if text_kind == "transcript" and text:
        quoted = text.rstrip(".!?")
        return "voice", f'The speaker says "{quoted}".'
    if text_kind == "templated" and (found := _NOTE_TEXT.match(text)):
        return f"{found['note']} {found['inst']} note", ""
    if text_kind in ("templated", "object_text") and text:
        phrase = re.sub(r"^(an?|the)\s+", "", text.rstrip(".!? "), flags=re.I)
        phrase = re.sub(r"\bsound effect\b", "sound", phrase)
        if domain == "speech":
            return "voice", f"{phrase[:1].upper()}{phrase[1:]}."
        if text_kind == "object_text":
            return f"sound of {text.rstrip('.!? ')[:1].lower()}{text.rstrip('.!? ')[1:]}", ""
        return phrase, ""
    return {"speech": "voice", "music": "musical sound"}.get(domain, "sound"), ""


def describe(m: Mapping[str, float], *, domain: str, text: str = "", text_kind: str = "") -> str:
    """One clip's description from its measurements and the corpus's own text (never its labels)."""
    parts = phrases_for(m, domain)
    noun, closing = _subject(text, text_kind, domain)
    lead = ", ".join(parts["pitch"])
    head = f"{lead} {noun}" if lead else noun
    vowel = head[:1].lower() in "aeiou" or re.match(r"[AEF]#?\d", head)  # "an F#2" as spoken
    head = f"{'an' if vowel else 'a'} {head}" + "".join(f" {p}" for p in parts["range"])
    if domain == "speech":
        head = f"Speech: {head}"
    elif domain == "music" and _NOTE_TEXT.match(text or ""):
        head = f"{head[:1].upper()}{head[1:]}, instrumental music"
    else:
        head = f"{head[:1].upper()}{head[1:]}"
    body = [", ".join(parts[k]) for k in ("timbre", "room", "time", "channel") if parts[k]]
    sentence = head + (": " + "; ".join(body) if body else "")
    return f"{sentence}.{' ' + closing if closing else ''}"


def _table(m: Mapping[str, float]) -> str:
    return json.dumps([[k, round(float(m[k]), 4), MEASURE_UNITS[k]] for k in MEASURE_UNITS])


def acoustic_captions(shard: pa.Table) -> pa.Table:
    """Corpus rows (with `audio`) -> caption rows: measured description, measurement table in `raw`.
    Undecodable audio is a failed row with the reason, never a silent drop."""
    rows = shard.filter(pc.equal(shard.column("partition"), "pretrain")).to_pylist()
    out: list[dict[str, Any]] = []
    for row in rows:
        try:
            m = measure(decode_flac(row["audio"]))
        except AudioError as exc:
            out.append({"clip_id": row["clip_id"], "description": "", "status": "failed",
                        "error": f"cannot measure the audio: {exc}", "raw": "", "text_kind": "acoustic",
                        "domain": row["domain"]})  # fmt: skip
            continue
        text = describe(m, domain=row["domain"], text=row["text"] or "", text_kind=row["text_kind"] or "")  # fmt: skip
        out.append({"clip_id": row["clip_id"], "description": text, "status": "ok", "error": None,
                    "raw": _table(m), "text_kind": "acoustic", "domain": row["domain"]})  # fmt: skip
    return pa.Table.from_pylist(out, schema=CAPTION_SCHEMA)
