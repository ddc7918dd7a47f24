"""What a clip measurably sounds like: pitch, voicing, level dynamics, spectrum, onsets, clipping,
noise floor, band limits and decay, from a 16 kHz mono waveform with numpy/scipy only.

Every clip in the store is peak-normalised and trimmed of near-silence (uts.audio.clip), so nothing
here measures absolute level or stereo. All levels are relative to the clip itself. Fast enough to
run at far above real time on one core: one STFT, one autocorrelation pass, one Welch spectrum.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.signal import welch

from uts.audio.io import SAMPLE_RATE

__all__ = ["MEASURE_UNITS", "measure"]

Array = npt.NDArray[np.float64]

N_FFT, HOP = 512, 256  # 32 ms windows, 16 ms hop: spectrum, onsets, level envelope
PITCH_N, PITCH_HOP = 1024, 320  # 64 ms frames, 20 ms hop: lags down to 50 Hz fit twice
MIN_LAG, MAX_LAG = 7, 320  # 2286 Hz .. 50 Hz
YIN_THRESHOLD = 0.25  # a frame is periodic when its normalised difference dips below this
SILENT_DB = -80.0  # frame RMS below this (dBFS) is digital silence (padding), not sound
ACTIVE_DB = -35.0  # frames within this of the loudest frame count as the sound itself
EPS = 1e-12
ONSET_MIN_FLUX = 0.6  # mean log-power rise (bels per bin) an onset must exceed

# attribute -> unit, in the order a measurement table is written
MEASURE_UNITS: dict[str, str] = {
    "duration": "s",
    "sound_length": "s",
    "end_level": "dB",
    "silent_fraction": "ratio",
    "f0_median": "Hz",
    "f0_spread": "semitones",
    "pitch_classes": "count",
    "voiced_fraction": "ratio",
    "harmonicity": "ratio",
    "crest_factor": "dB",
    "rms_range": "dB",
    "centroid": "Hz",
    "bandwidth": "Hz",
    "flatness": "ratio",
    "low_edge": "Hz",
    "high_edge": "Hz",
    "occupied_band": "Hz",
    "mid_share": "dB",
    "hf_share": "dB",
    "onset_rate": "1/s",
    "attack": "s",
    "decay_drop": "dB",
    "tempo": "BPM",
    "ioi_cv": "ratio",
    "rt60": "s",
    "clipped_fraction": "ratio",
    "hiss_level": "dB",
    "hiss_flatness": "ratio",
    "hum_prominence": "dB",
    "hum_level": "dB",
}


def _db(power: Array | float) -> Array:
    return np.asarray(10.0 * np.log10(np.maximum(power, EPS)), dtype=np.float64)


def _frames(x: Array, size: int, hop: int) -> Array:
    if x.size < size:
        x = np.pad(x, (0, size - x.size))
    view = np.lib.stride_tricks.sliding_window_view(x, size)[::hop]
    return np.asarray(view, dtype=np.float64)


def _pitch(x: Array) -> dict[str, float]:
    """YIN-style cumulative mean normalised difference on 64 ms frames: f0 and periodicity."""
    frames = _frames(x, PITCH_N, PITCH_HOP)
    frames = frames - frames.mean(axis=1, keepdims=True)
    energy = (frames**2).sum(axis=1)
    keep = energy > max(float(energy.max()) * 10 ** (ACTIVE_DB / 10), EPS)
    frames = frames[keep]
    spectrum = np.fft.rfft(frames, n=2 * PITCH_N)
    acf = np.fft.irfft(np.abs(spectrum) ** 2)[:, : MAX_LAG + 2]  # (F, lags)
    csum = np.concatenate([np.zeros((len(frames), 1)), np.cumsum(frames**2, axis=1)], axis=1)
    lags = np.arange(MAX_LAG + 2)
    head = csum[:, PITCH_N - lags]  # energy of x[0 : N-tau]
    tail = csum[:, -1:] - csum[:, lags]  # energy of x[tau : N]
    diff = np.maximum(head + tail - 2 * acf, 0.0)
    cmndf = np.ones_like(diff)
    running = np.cumsum(diff[:, 1:], axis=1)
    cmndf[:, 1:] = diff[:, 1:] * lags[1:] / np.maximum(running, EPS)
    inner = cmndf[:, MIN_LAG:-1]
    local_min = (inner <= cmndf[:, MIN_LAG - 1 : -2]) & (inner <= cmndf[:, MIN_LAG + 1 :])
    dips = local_min & (inner < YIN_THRESHOLD)
    first = np.where(dips.any(axis=1), dips.argmax(axis=1), inner.argmin(axis=1)) + MIN_LAG
    rows = np.arange(len(frames))
    best = cmndf[rows, first]
    # parabolic interpolation around the chosen lag: (F,)
    left, right = cmndf[rows, first - 1], cmndf[rows, first + 1]
    bend = left - 2 * best + right
    shift = np.where(np.abs(bend) > EPS, 0.5 * (left - right) / np.where(bend == 0, 1, bend), 0.0)
    period = first + np.clip(shift, -0.5, 0.5)
    periodicity = np.clip(1.0 - best, 0.0, 1.0)
    voiced = best < YIN_THRESHOLD
    out = {"voiced_fraction": float(voiced.mean()), "harmonicity": float(np.median(periodicity))}
    if voiced.sum() >= 2:
        f0 = SAMPLE_RATE / period[voiced]
        semis = 12 * np.log2(f0 / 440.0)
        q75, q25 = np.percentile(semis, [75, 25])
        _, counts = np.unique(np.round(semis), return_counts=True)
        out |= {"f0_median": float(np.median(f0)), "f0_spread": float(q75 - q25),
                "pitch_classes": float((counts >= 3).sum())}  # fmt: skip
    else:
        out |= {"f0_median": 0.0, "f0_spread": 0.0, "pitch_classes": 0.0}
    return out


def _onsets(logspec: Array, env_db: Array) -> list[int]:
    """Frames where the log spectrum rises sharply (spectral flux peaks), the first sound included."""
    floor = np.full((1, logspec.shape[1]), logspec.min())
    flux = np.maximum(np.diff(logspec, axis=0, prepend=floor), 0.0).mean(axis=1)  # (F,) bels
    # Noise alone rises ~0.3 bel per bin between frames; a real onset rises several.
    threshold = max(ONSET_MIN_FLUX, float(np.median(flux) + 0.3 * (flux.max() - np.median(flux))))
    picked: list[int] = []
    for i in np.flatnonzero(flux > threshold):
        lo, hi = max(0, i - 3), min(flux.size, i + 4)
        is_peak = flux[i] == flux[lo:hi].max() and env_db[i] > env_db.max() - 40
        if is_peak and (not picked or i - picked[-1] >= 4):  # 64 ms apart at least
            picked.append(int(i))
    return picked


def _decays(env_db: Array) -> tuple[float, float]:
    """(median RT60 over the clip's offsets in seconds, median drop in dB within 300 ms of a peak).

    From each local level peak, follow the envelope down while it keeps falling (1 dB of wobble
    allowed); a fall of >= 12 dB is a decay event whose slope (dB/s, fitted between -3 dB and the
    bottom, at most -33 dB) gives RT60 = 60 / slope, a Schroeder-style estimate per event.
    """
    step = HOP / SAMPLE_RATE
    rts: list[float] = []
    drops: list[float] = []
    top = float(env_db.max())
    n = env_db.size
    for p in range(n):
        lo, hi = max(0, p - 6), min(n, p + 7)
        if env_db[p] < top - 30 or env_db[p] < env_db[lo:hi].max():
            continue
        if p + 1 < n and env_db[p + 1] == env_db[p]:
            continue
        j = p + 1
        while j < n and env_db[j] <= env_db[j - 1] + 1.0 and env_db[j] > env_db[p] - 60:
            j += 1
        seg = env_db[p:j] - env_db[p]
        win = env_db[p : min(n, p + int(0.3 / step) + 1)] - env_db[p]
        drops.append(float(-win.min()))
        if seg.size < 2 or -seg.min() < 12:
            continue
        bottom = max(float(seg.min()), -33.0)
        a = int(np.argmax(seg <= -3.0))
        b = int(np.argmax(seg <= bottom + 1e-9))
        if b - a >= 2:
            slope = float(np.polyfit(np.arange(a, b + 1) * step, seg[a : b + 1], 1)[0])
        else:
            slope = (bottom + 3.0) / max((b - a) * step, step)
        rts.append(60.0 / max(-slope, 1e-3))
    rt60 = float(np.median(rts)) if rts else 0.0
    return rt60, float(np.median(drops)) if drops else 0.0


def _hum(x: Array) -> tuple[float, float]:
    """(prominence dB, level dB re the clip) of a mains hum: 50 or 60 Hz plus harmonics in a fine
    Welch spectrum; prominence is the least of the fundamental's and the two strongest harmonics'
    peaks above their neighbouring bins (one chance peak in a short clip is not a hum)."""
    seg = min(x.size, 8192)
    freqs, psd = welch(x, fs=SAMPLE_RATE, nperseg=seg)
    best = (0.0, -120.0)
    for mains in (50.0, 60.0):
        proms, peaks = [], 0.0
        for k in range(1, 5):
            centre = k * mains
            near = np.abs(freqs - centre) <= 3.0
            side = (np.abs(freqs - centre) >= 8.0) & (np.abs(freqs - centre) <= 22.0)
            if not near.any() or not side.any():
                continue
            peak = float(psd[near].max())
            proms.append(float(_db(peak) - _db(float(np.median(psd[side])))))
            peaks += float(psd[near].sum())
        if len(proms) < 2:
            continue
        prominence = min(proms[0], sorted(proms[1:])[-2])  # the fundamental and two harmonics
        level = float(_db(peaks) - _db(max(float(psd.sum()), EPS)))
        if prominence > best[0]:
            best = (prominence, level)
    return best


def _clipped_fraction(x: Array, sounding: int) -> float:
    """Share of sounding samples inside runs of >= 3 equal extreme samples (flat tops)."""
    q = np.round(x * 32768.0).astype(np.int32)
    peak = int(np.abs(q).max())
    if peak == 0:
        return 0.0
    flat = (np.abs(q) >= peak - 1).astype(np.int8)
    edges = np.diff(np.concatenate([[0], flat, [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    lengths = ends - starts
    return float(lengths[lengths >= 3].sum() / max(sounding, 1))


def measure(wave: npt.NDArray[np.floating]) -> dict[str, float]:
    """One clip (samples,) at 16 kHz -> {attribute: value} with units in MEASURE_UNITS."""
    x = np.asarray(wave, dtype=np.float64)
    frames = _frames(x, N_FFT, HOP)
    rms_db = _db((frames**2).mean(axis=1))  # dBFS per frame
    sounding = rms_db > SILENT_DB
    if not sounding.any():
        return {key: 0.0 for key in MEASURE_UNITS} | {"silent_fraction": 1.0}
    window = np.hanning(N_FFT)
    power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2  # (F, 257)
    freqs = np.fft.rfftfreq(N_FFT, 1 / SAMPLE_RATE)
    env_db = _db(power.sum(axis=1))
    env_db = np.maximum(env_db, env_db.max() - 100.0)
    active = (env_db > env_db.max() + ACTIVE_DB) & sounding
    ltas = power[active].mean(axis=0)
    total = float(ltas.sum())
    centroid = float((freqs * ltas).sum() / total)
    bandwidth = float(np.sqrt(((freqs - centroid) ** 2 * ltas).sum() / total))
    body = power[active][:, 1:] + EPS * power.max()
    flatness = np.exp(np.log(body).mean(axis=1)) / body.mean(axis=1)
    cumulative = np.cumsum(ltas) / total
    mid = ltas[(freqs >= 1500) & (freqs < 3800)].sum()
    high = ltas[freqs >= 4300].sum()

    floor = np.percentile(power[sounding], 10, axis=0)  # (257,) quiet-frame spectrum per bin
    hiss = floor[freqs >= 3000].sum() / max(float(power[active].sum(axis=1).mean()), EPS)
    hiss_band = floor[freqs >= 3000] + EPS
    hiss_flatness = float(np.exp(np.log(hiss_band).mean()) / hiss_band.mean())

    logspec = np.log10(power + 1e-6 * power.max())
    onsets = _onsets(logspec, env_db)
    seconds = x.size / SAMPLE_RATE
    sounding_s = float(sounding.sum()) * HOP / SAMPLE_RATE
    iois = np.diff(onsets) * HOP / SAMPLE_RATE
    regular = len(onsets) >= 4 and float(iois.std() / max(iois.mean(), EPS)) < 0.3
    peak_frame = int(np.argmax(env_db[: onsets[0] + 13])) if onsets else int(np.argmax(env_db))
    attack = max(0, peak_frame - (onsets[0] if onsets else 0)) * HOP / SAMPLE_RATE
    rt60, drop = _decays(env_db)
    hum_prom, hum_level = _hum(x)
    mask = np.repeat(sounding, HOP)[: x.size]
    samples = x[np.pad(mask, (0, x.size - mask.size), mode="edge")]
    rms = float(np.sqrt(np.mean(samples**2))) if samples.size else EPS
    level = env_db[sounding]
    low_edge = float(freqs[int(np.searchsorted(cumulative, 0.01))])
    high_edge = float(freqs[min(int(np.searchsorted(cumulative, 0.99)), freqs.size - 1)])
    out = {
        "duration": seconds,
        "sound_length": float(active.sum()) * HOP / SAMPLE_RATE,
        "end_level": float(env_db[np.flatnonzero(sounding)[-1]] - env_db.max()),
        "silent_fraction": float(1.0 - sounding.mean()),
        **_pitch(x),
        "crest_factor": float(20 * np.log10(np.abs(x).max() / max(rms, EPS))),
        "rms_range": float(np.percentile(level, 95) - np.percentile(level, 10)),
        "centroid": centroid,
        "bandwidth": bandwidth,
        "flatness": float(np.median(flatness)),
        "low_edge": low_edge,
        "high_edge": high_edge,
        "occupied_band": high_edge - low_edge,
        "mid_share": float(_db(mid / total)),
        "hf_share": float(_db(high / total)),
        "onset_rate": len(onsets) / max(sounding_s, HOP / SAMPLE_RATE),
        "attack": attack,
        "decay_drop": drop,
        "tempo": float(60.0 / np.median(iois)) if regular else 0.0,
        "ioi_cv": float(iois.std() / max(iois.mean(), EPS)) if len(onsets) >= 3 else 0.0,
        "rt60": rt60,
        "clipped_fraction": _clipped_fraction(x, int(samples.size)),
        "hiss_level": float(_db(hiss)),
        "hiss_flatness": hiss_flatness,
        "hum_prominence": hum_prom,
        "hum_level": hum_level,
    }
    return {key: out[key] for key in MEASURE_UNITS}
