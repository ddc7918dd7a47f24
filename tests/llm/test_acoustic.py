"""The acoustic captioner on synthetic signals whose properties are known by construction."""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pytest
from scipy.signal import butter, sosfilt

from uts.audio import SAMPLE_RATE, decode_flac, encode_flac
from uts.llm.acoustic import ACOUSTIC_COLUMNS, THRESHOLDS, acoustic_captions, describe
from uts.llm.acoustic_measure import MEASURE_UNITS, measure
from uts.llm.backends import CAPTION_SCHEMA
from uts.llm.rules import rules_tags

SR = SAMPLE_RATE


def _t(seconds: float) -> np.ndarray:
    return np.arange(int(seconds * SR)) / SR


def tone(freq: float, seconds: float = 2.0) -> np.ndarray:
    return np.sin(2 * np.pi * freq * _t(seconds))


def white(seconds: float = 2.0, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(int(seconds * SR))


def clipped_tone() -> np.ndarray:
    return np.asarray(np.clip(tone(220.0), -0.3, 0.3))  # hard clipped at a third of the amplitude


def telephone_noise() -> np.ndarray:
    return np.asarray(
        sosfilt(butter(8, [300, 3400], "bandpass", fs=SR, output="sos"), white(seed=1))
    )


def burst_train(bursts: int = 6, every_s: float = 0.4, burst_s: float = 0.05) -> np.ndarray:
    """Noise bursts switched on and off with no decay at all: a dry source."""
    rng = np.random.default_rng(2)
    out = np.zeros(int((bursts * every_s + 0.1) * SR))
    n = int(burst_s * SR)
    for i in range(bursts):
        start = int(i * every_s * SR)
        out[start : start + n] = rng.standard_normal(n)
    return out


def reverberant_train(rt60: float = 1.2) -> np.ndarray:
    """The burst train through an exponentially decaying noise response: -60 dB after `rt60` s."""
    t = _t(2.0)
    response = np.random.default_rng(3).standard_normal(t.size) * np.exp(-6.91 * t / rt60)
    return np.convolve(burst_train(), response)


def hummed_noise() -> np.ndarray:
    """Decaying noise bursts with a 50 Hz mains hum (and 3 harmonics) ~12 dB under them."""
    t = _t(3.0)
    bursts = white(3.0, seed=4) * np.exp(-8 * (t % 0.5))
    hum = sum(np.sin(2 * np.pi * 50 * k * t) / np.sqrt(k) for k in range(1, 5))
    return np.asarray(bursts + 0.1 * hum)


def voice_like(f0: float, seconds: float = 1.5) -> np.ndarray:
    """A glottal-pulse-like buzz at `f0` through two vowel formants, with a slow pitch drift."""
    t = _t(seconds)
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.03 * np.sin(2 * np.pi * 3 * t))) / SR
    source = sum(np.sin(k * phase) / k for k in range(1, 30) if k * f0 * 1.1 < SR / 2)
    for centre in (700, 1200):
        source = sosfilt(butter(2, [centre * 0.8, centre * 1.2], "bandpass", fs=SR, output="sos"), source)  # fmt: skip
    return source * np.hanning(t.size) ** 0.2


def stored(wave: np.ndarray) -> np.ndarray:
    """What ingest keeps: peak-normalised to 0.9, FLAC 16-bit, decoded again."""
    return decode_flac(encode_flac((0.9 * wave / np.abs(wave).max()).astype(np.float32)))


# signal -> (a word its description must hold, words it must not hold)
SIGNALS: dict[str, tuple[Callable[[], np.ndarray], str, tuple[str, ...]]] = {
    "tone100": (lambda: tone(100.0), "low-pitched", ("high-pitched", "noisy")),
    "tone1500": (lambda: tone(1500.0), "high-pitched", ("low-pitched", "noisy")),
    "white": (white, "noisy", ("low-pitched", "high-pitched", "clipping")),
    "clipped": (clipped_tone, "clipping", ("noisy",)),
    "telephone": (telephone_noise, "telephone", ("high-fidelity",)),
    "dry": (burst_train, "dry", ("reverberant", "reverb", "reverberation")),
    "reverberant": (reverberant_train, "reverberant", ("dry",)),
}


@pytest.mark.parametrize("name", list(SIGNALS))
def test_each_synthetic_signal_is_described_by_what_it_is(name: str) -> None:
    make, wanted, unwanted = SIGNALS[name]
    text = describe(measure(stored(make())), domain="unknown")
    tags = rules_tags(text)
    # the word as the tagger writes it (it may lemmatise: clipping -> clip), within its first 10 tags
    assert rules_tags(wanted)[0] in tags, (name, text, tags)
    assert not {rules_tags(w)[0] for w in unwanted} & set(rules_tags(text, limit=100)), (name, text)


def test_clipping_is_also_called_distortion() -> None:
    text = describe(measure(stored(clipped_tone())), domain="unknown")
    assert "distortion" in text and "clipping" in text
    assert text.index("clipping") < text.index("dark")  # damage is named before timbre details


def test_measurements_match_the_construction() -> None:
    assert measure(stored(tone(100.0)))["f0_median"] == pytest.approx(100.0, rel=0.01)
    assert measure(stored(tone(1500.0)))["f0_median"] == pytest.approx(1500.0, rel=0.01)
    noise = measure(stored(white()))
    assert noise["voiced_fraction"] == 0.0 and noise["flatness"] == pytest.approx(0.56, abs=0.05)
    assert measure(stored(clipped_tone()))["clipped_fraction"] > 0.5
    assert measure(stored(tone(220.0)))["clipped_fraction"] == 0.0  # a sine's peaks are not flat
    phone = measure(stored(telephone_noise()))
    assert 250 <= phone["low_edge"] <= 400 and 3000 <= phone["high_edge"] <= 3800
    assert measure(stored(reverberant_train()))["rt60"] == pytest.approx(1.2, abs=0.25)
    assert measure(stored(reverberant_train(0.5)))["rt60"] == pytest.approx(0.5, abs=0.15)
    assert 0 < measure(stored(burst_train()))["rt60"] < 0.1
    burst = measure(stored(burst_train()))
    assert burst["tempo"] == pytest.approx(150.0, abs=3)  # one burst every 0.4 s


def test_a_hum_under_noise_is_heard_and_named() -> None:
    m = measure(stored(hummed_noise()))
    assert m["hum_prominence"] >= 12 and -20 < m["hum_level"] < -10
    assert "hum" in describe(m, domain="environment")
    assert "hum" not in describe(measure(stored(tone(100.0))), domain="music")  # 100 Hz is no mains


def test_voice_pitch_gives_a_pitch_range_only_for_speech() -> None:
    low, high = measure(stored(voice_like(120.0))), measure(stored(voice_like(210.0)))
    assert low["f0_median"] == pytest.approx(120, rel=0.05) and high["f0_median"] == pytest.approx(210, rel=0.05)  # fmt: skip
    assert "in the male range" in describe(low, domain="speech")
    assert "in the female range" in describe(high, domain="speech")
    assert "male" not in describe(low, domain="music")  # a 120 Hz note is not a man


def test_the_corpus_text_joins_and_identities_never_do() -> None:
    wave = stored(voice_like(120.0))
    text = describe(measure(wave), domain="speech", text="ow", text_kind="transcript")
    assert text.startswith("Speech: a low-pitched voice") and text.endswith(
        'The speaker says "ow".'
    )
    note = "A single E3 note, low in pitch, played on a flute instrument, loud."
    music = describe(measure(stored(tone(164.8))), domain="music", text=note, text_kind="templated")
    assert (
        music.startswith("A low-pitched E3 flute note, instrumental music") and "loud" not in music
    )
    flac = encode_flac(wave)
    shard = pa.Table.from_pylist([
        {"clip_id": "a", "audio": flac, "text": "ow", "text_kind": "transcript", "domain": "speech",
         "partition": "pretrain", "labels": json.dumps({"speaker": "Pirate"})},
        {"clip_id": "b", "audio": flac, "text": "", "text_kind": "none", "domain": "speech",
         "partition": "probe", "labels": "{}"},
        {"clip_id": "c", "audio": b"not audio", "text": "", "text_kind": "none", "domain": "music",
         "partition": "pretrain", "labels": "{}"},
    ])  # fmt: skip
    rows = acoustic_captions(shard.select(list(ACOUSTIC_COLUMNS))).to_pylist()
    assert [r["clip_id"] for r in rows] == ["a", "c"]  # probe clips are never captioned
    first, broken = rows
    assert "Pirate" not in first["description"] and first["text_kind"] == "acoustic"
    assert broken["status"] == "failed" and "cannot measure the audio" in broken["error"]
    table = json.loads(first["raw"])
    assert [row[0] for row in table] == list(MEASURE_UNITS)
    assert all(unit == MEASURE_UNITS[name] for name, _, unit in table)
    assert acoustic_captions(shard.select(list(ACOUSTIC_COLUMNS))).schema.equals(CAPTION_SCHEMA)


def test_the_threshold_table_is_well_formed_and_worded_positively() -> None:
    keys = [row.key for row in THRESHOLDS]
    assert len(keys) == len(set(keys))
    for row in THRESHOLDS:
        assert row.op in ("<", ">=") and row.why, row
        assert row.attribute in MEASURE_UNITS, row
        assert row.unit == MEASURE_UNITS[row.attribute] or row.unit == "x f0", row
        words = set(row.phrase.lower().replace(",", " ").split())
        assert not words & {"no", "not", "without", "lacks", "absent"}, row


@pytest.mark.parametrize("name", list(SIGNALS))
def test_descriptions_never_negate(name: str) -> None:
    text = describe(measure(stored(SIGNALS[name][0]())), domain="unknown").lower()
    assert not {"no", "not", "without"} & set(text.replace(",", " ").replace(";", " ").split())


def test_silence_padding_and_a_near_silent_clip_do_not_break_measurement() -> None:
    padded = np.concatenate([tone(440.0, 0.3), np.zeros(SR)])
    m = measure(stored(padded))
    assert m["silent_fraction"] > 0.5 and "silence" in describe(m, domain="unknown")
    zero = measure(np.zeros(SR, dtype=np.float32))
    assert zero["silent_fraction"] == 1.0
